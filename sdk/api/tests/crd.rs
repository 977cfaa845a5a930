//! The generated CRDs: valid YAML, structural enough for the API server.

use faas_api::{FunctionRun, crd_yaml};
use kube::CustomResourceExt;
use serde::Deserialize;
use serde_json::Value;

fn schema_of(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("an openAPIV3Schema");
    serde_json::to_value(schema).expect("schema to json")
}

/// Walks every sub-schema and reports what Kubernetes would refuse in a structural schema.
fn structural_problems(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        out.push(format!("{path}: not an object"));
        return;
    };
    for banned in [
        "$ref",
        "definitions",
        "$defs",
        "oneOf",
        "anyOf",
        "allOf",
        "const",
        "$schema",
    ] {
        if obj.contains_key(banned) {
            out.push(format!("{path}: has {banned}"));
        }
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !preserve && !int_or_string {
        out.push(format!("{path}: no type"));
    }
    if let Some(t) = obj.get("type")
        && !t.is_string()
    {
        out.push(format!("{path}: type is not a single string: {t}"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!("{path}: both properties and additionalProperties"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            structural_problems(v, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = obj.get("items") {
        structural_problems(items, &format!("{path}[]"), out);
    }
    if let Some(ap) = obj.get("additionalProperties")
        && ap.is_object()
    {
        structural_problems(ap, &format!("{path}{{}}"), out);
    }
}

#[test]
fn function_crd_is_structural() {
    let crd = faas_api::crd::function_crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("functions.faas.dev"));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["fn".to_string()]));
    let schema = schema_of(&crd);

    let spec = &schema["properties"]["spec"];
    assert!(spec["properties"]["runtime"].is_object(), "{spec:#}");
    assert!(
        spec["properties"]["runtime"]["properties"]["wasm"]["properties"]["source"].is_object()
    );
    let required: Vec<&str> = spec["required"]
        .as_array()
        .expect("spec.required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, ["runtime"]);

    let payload = &spec["properties"]["schedules"]["items"]["properties"]["payload"];
    assert_eq!(
        payload["x-kubernetes-preserve-unknown-fields"],
        Value::Bool(true),
        "{payload:#}"
    );

    let policy = &spec["properties"]["schedules"]["items"]["properties"]["concurrencyPolicy"];
    assert_eq!(policy["type"], "string");
    assert_eq!(
        policy["enum"],
        serde_json::json!(["Allow", "Forbid", "Replace"])
    );
    let mode = &spec["properties"]["runtime"]["properties"]["container"]["properties"]["mode"];
    assert_eq!(
        mode["enum"],
        serde_json::json!(["http", "cgi", "lambda", "job"])
    );

    // env is a map or a list: kept as written (a structural schema cannot say "object or
    // array"), checked by the platform's validation.
    let env = &spec["properties"]["env"];
    assert_eq!(
        env["x-kubernetes-preserve-unknown-fields"],
        Value::Bool(true),
        "{env:#}"
    );
    assert!(env.get("type").is_none(), "{env:#}");

    let mut problems = Vec::new();
    structural_problems(&schema["properties"]["spec"], "spec", &mut problems);
    structural_problems(&schema["properties"]["status"], "status", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn function_run_crd_is_structural() {
    let crd = FunctionRun::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("functionruns.faas.dev"));
    let schema = schema_of(&crd);
    let phase = &schema["properties"]["status"]["properties"]["phase"];
    assert_eq!(phase["type"], "string");
    let mut problems = Vec::new();
    structural_problems(&schema["properties"]["spec"], "spec", &mut problems);
    structural_problems(&schema["properties"]["status"], "status", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn crd_yaml_has_both_documents() {
    let text = crd_yaml();
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("yaml"))
        .collect();
    assert_eq!(docs.len(), 2);
    for (doc, name) in docs
        .iter()
        .zip(["functions.faas.dev", "functionruns.faas.dev"])
    {
        assert_eq!(doc["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(doc["kind"], "CustomResourceDefinition");
        assert_eq!(doc["metadata"]["name"], name);
        assert_eq!(doc["spec"]["versions"][0]["name"], "v1alpha1");
        assert_eq!(
            doc["spec"]["versions"][0]["subresources"]["status"],
            serde_json::json!({})
        );
    }
}

mod cel {
    //! The CRD's CEL rules evaluated client-side (kube-cel, the evaluator kube ships), the way
    //! the API server evaluates them on `kubectl apply`.

    use super::schema_of;
    use kube::core::cel::Validator;
    use serde_json::{Value, json};

    fn rules_in(node: &Value, out: &mut usize) {
        if let Some(obj) = node.as_object() {
            if let Some(rules) = obj
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
            {
                *out += rules.len();
            }
            for v in obj.values() {
                rules_in(v, out);
            }
        }
    }

    fn check(spec: Value) -> Result<(), Vec<String>> {
        let schema = schema_of(&faas_api::crd::function_crd());
        let object = json!({
            "apiVersion": "faas.dev/v1alpha1",
            "kind": "Function",
            "metadata": {"name": "orders", "namespace": "shop"},
            "spec": spec,
        });
        Validator::new()
            .validate(&schema, &object, None)
            .map_err(|errors| errors.iter().map(|e| e.message.clone()).collect())
    }

    #[test]
    fn every_rule_found_its_field() {
        let mut count = 0;
        rules_in(&schema_of(&faas_api::crd::function_crd()), &mut count);
        assert_eq!(count, faas_api::crd::function_rule_count());
    }

    #[test]
    fn valid_functions_pass() {
        let container = json!({"runtime": {"container": {"image": "r.example.com/a:1", "port": 8080}},
                               "scale": {"min": 1, "max": 3},
                               "schedules": [{"name": "a", "cron": "0 3 * * *"}, {"name": "b", "cron": "@hourly"}],
                               "triggers": {"sqs": [{"queueUrl": "https://sqs.eu-west-3.amazonaws.com/123456789012/q", "batchSize": 10}]}});
        assert_eq!(check(container), Ok(()));
        let lambda =
            json!({"runtime": {"container": {"image": "r.example.com/a:1", "mode": "lambda"}}});
        assert_eq!(check(lambda), Ok(()));
        let wasm = json!({"runtime": {"wasm": {"source": format!("oci://r.example.com/fn/a:1@sha256:{}", "ab".repeat(32))}}});
        assert_eq!(check(wasm), Ok(()));
    }

    #[test]
    fn broken_functions_fail_with_a_message_naming_the_field() {
        let cases = [
            (json!({"runtime": {}}), "exactly one of wasm or container"),
            (
                json!({"runtime": {"wasm": {"source": "a.wasm"}, "container": {"image": "a:1", "port": 1}}}),
                "exactly one of wasm or container",
            ),
            (
                json!({"runtime": {"container": {"command": ["python3"], "port": 8080}}}),
                "spec.runtime.container.image is required in a cluster",
            ),
            (
                json!({"runtime": {"container": {"image": "a:1"}}}),
                "spec.runtime.container.port is required in http mode",
            ),
            (
                json!({"runtime": {"container": {"image": "a:1", "mode": "cgi"}}}),
                "cgi is local mode only",
            ),
            (
                json!({"runtime": {"wasm": {"source": "a.wasm"}}, "scale": {"min": 3, "max": 1}}),
                "spec.scale.max must be at least spec.scale.min",
            ),
            (
                json!({"runtime": {"wasm": {"source": "a.wasm"}},
                       "schedules": [{"name": "a", "cron": "@daily"}, {"name": "a", "cron": "@hourly"}]}),
                "names must be unique",
            ),
            (
                json!({"runtime": {"wasm": {"source": "a.wasm"}},
                       "triggers": {"sqs": [{"queueUrl": "https://sqs.eu-west-3.amazonaws.com/1/q", "batchSize": 0}]}}),
                "batchSize must be between 1 and 10000",
            ),
            // A cluster never grants host directories (a pool pod's tokens, its compile cache).
            (
                json!({"runtime": {"wasm": {"source": "configmap://fn-a/a.wasm",
                       "dirs": [{"hostPath": "/var/run/secrets/kubernetes.io/serviceaccount", "guestPath": "/s"}]}}}),
                "spec.runtime.wasm.dirs[].hostPath: host directories are local mode only",
            ),
            (
                json!({"runtime": {"wasm": {"source": "configmap://fn-a/a.wasm",
                       "dirs": [{"hostPath": "/tmp/faas", "guestPath": "/cache"}]}}}),
                "host directories are local mode only",
            ),
            (
                json!({"runtime": {"wasm": {"source": "oci://r.example.com/fn/a:1"}}}),
                "must be pinned by digest",
            ),
            (
                json!({"runtime": {"wasm": {"source": "configmap://fn-a/a.wasm"}},
                       "placement": {"tolerations": [{"key": "", "operator": "Exists"}]}}),
                "an empty key tolerates every taint",
            ),
        ];
        for (spec, expected) in cases {
            let errors = check(spec.clone()).expect_err(&spec.to_string());
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{spec}: {errors:?}"
            );
        }
    }
}
