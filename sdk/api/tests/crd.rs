//! The generated CRDs: valid YAML, structural enough for the API server.

use faas_api::{Function, FunctionRun, crd_yaml};
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
    let crd = Function::crd();
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
    assert_eq!(mode["enum"], serde_json::json!(["http", "cgi", "lambda"]));

    // env is a free map of strings.
    let env = &spec["properties"]["env"];
    assert_eq!(env["type"], "object");
    assert_eq!(env["additionalProperties"]["type"], "string");

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
