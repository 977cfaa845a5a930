//! Queue-depth scaling with KEDA, when its CRDs are installed: a `ScaledObject` on the
//! function's Deployment with one `aws-sqs-queue` trigger per queue, and a
//! `TriggerAuthentication` that makes KEDA read the queue with the function's own IAM role
//! (`podIdentity: {provider: aws, identityOwner: workload}`: KEDA assumes the role named on
//! the workload's ServiceAccount, so the role's trust policy must also trust KEDA's
//! ServiceAccount; see docs/eks.md). A runtime pool's members each have their own role, and
//! the pool's ServiceAccount holds none of them: KEDA reads the depth of their queues with its
//! operator's own identity (`identityOwner: keda`), which needs only `sqs:GetQueueAttributes`;
//! the messages themselves are only ever received with each function's own role.
//!
//! Rendered as JSON (KEDA's types are not in k8s-openapi); applied as dynamic objects.

use faas_api::contract::sqs_messages_per_replica;
use faas_api::sqs::QueueUrl;
use faas_api::{Function, SqsTrigger};
use serde_json::{Value, json};

use super::{ClusterDefaults, labels, object_name};

/// KEDA's API group/version.
pub const KEDA_API_VERSION: &str = "keda.sh/v1alpha1";
/// KEDA's default `maxReplicaCount`, used when `scale.max` is not set.
const DEFAULT_MAX_REPLICAS: u32 = 10;
/// Messages above which KEDA wakes a function at zero: any message at all, so a queue is
/// never left waiting while its only poller (the sidecar in the function's pod) is not
/// running. Rendered although it is KEDA's default, so a change of default cannot strand
/// messages.
const ACTIVATION_QUEUE_LENGTH: &str = "0";

/// One `aws-sqs-queue` trigger, read with the credentials of `authentication`.
fn queue_trigger(trigger: &SqsTrigger, authentication: &str, defaults: &ClusterDefaults) -> Value {
    let region = QueueUrl::parse(&trigger.queue_url)
        .ok()
        .and_then(|q| q.region)
        .unwrap_or_else(|| defaults.region.clone());
    json!({
        "type": "aws-sqs-queue",
        "authenticationRef": {"name": authentication},
        "metadata": {
            "queueURL": trigger.queue_url,
            // Messages per replica: what one replica's poller takes at once.
            "queueLength": sqs_messages_per_replica(trigger).to_string(),
            "activationQueueLength": ACTIVATION_QUEUE_LENGTH,
            "awsRegion": region,
            // Messages being handled count too: scaling down mid-batch would release them.
            "scaleOnInFlight": "true",
        },
    })
}

/// The `ScaledObject` of the Deployment `target` (both objects carry `metadata`), scaled by
/// `triggers` between `bounds`, and the `TriggerAuthentication` they read the queues with:
/// KEDA's `identity_owner` (`workload`: the function's role on its ServiceAccount; `keda`: the
/// operator's own, for pools).
fn keda_objects(
    metadata: &Value,
    target: &str,
    (min, max): (impl serde::Serialize, impl serde::Serialize),
    triggers: Vec<Value>,
    identity_owner: &str,
) -> (Value, Value) {
    let scaled_object = json!({
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"name": target},
            "minReplicaCount": min,
            "maxReplicaCount": max,
            "triggers": triggers,
        },
    });
    let authentication = json!({
        "apiVersion": KEDA_API_VERSION,
        "kind": "TriggerAuthentication",
        "metadata": metadata,
        "spec": {"podIdentity": {"provider": "aws", "identityOwner": identity_owner}},
    });
    (scaled_object, authentication)
}

/// `(ScaledObject, TriggerAuthentication)` of a WASM runtime pool whose members have SQS
/// triggers (their pollers run in the pool's pods), `None` when none has: KEDA then scales the
/// pool on the depth of every member's queue *and* on CPU, as the pool's own autoscaler
/// would without queues, between the chart's bounds. Never to zero: a pool also serves HTTP.
/// KEDA makes the pool's HorizontalPodAutoscaler itself, so the pool gets no other.
pub fn pool_scaling(
    pool: &super::pool::Pool,
    members: &[&Function],
    defaults: &ClusterDefaults,
) -> Option<(Value, Value)> {
    let object = pool.object_name();
    let mut triggers: Vec<Value> = members
        .iter()
        .flat_map(|f| f.spec.sqs_triggers())
        .filter(|t| t.enabled != Some(false))
        .map(|t| queue_trigger(t, &object, defaults))
        .collect();
    if triggers.is_empty() {
        return None;
    }
    triggers.push(json!({
        "type": "cpu",
        "metricType": "Utilization",
        "metadata": {"value": defaults.pool_cpu_target_percent.to_string()},
    }));
    let min = defaults.pool_replicas.max(1);
    let metadata = json!({
        "name": object,
        "namespace": pool.key.namespace,
        "labels": super::pool::pool_labels(pool),
    });
    let max = defaults.pool_max_replicas.max(min);
    Some(keda_objects(
        &metadata,
        &object,
        (min, max),
        triggers,
        "keda",
    ))
}

/// `(ScaledObject, TriggerAuthentication)` of a function with SQS triggers, `None` without.
pub fn scaling(function: &Function, defaults: &ClusterDefaults) -> Option<(Value, Value)> {
    let triggers = &function.spec.triggers.as_ref()?.sqs;
    if triggers.is_empty() || function.spec.runtime.container.is_none() {
        return None;
    }
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let object = object_name(name);
    let scale = function.spec.scale.clone().unwrap_or_default();
    // `scale.min`, or one when a schedule needs a replica up (`faas_api::scaling`).
    let min = function.spec.min_replicas(true);
    let keda_triggers: Vec<Value> = triggers
        .iter()
        .filter(|t| t.enabled != Some(false))
        .map(|t| queue_trigger(t, &object, defaults))
        .collect();
    if keda_triggers.is_empty() {
        return None;
    }
    let metadata = json!({
        "name": object,
        "namespace": function.metadata.namespace,
        "labels": labels(name),
    });
    let max = scale.max.unwrap_or(DEFAULT_MAX_REPLICAS).max(min).max(1);
    Some(keda_objects(
        &metadata,
        &object,
        (min, max),
        keda_triggers,
        "workload",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{ContainerRuntime, ScaleSpec, TriggersSpec};

    fn function(triggers: Vec<SqsTrigger>, scale: Option<ScaleSpec>) -> Function {
        let mut f = Function::new(
            "orders",
            faas_api::FunctionSpec {
                runtime: faas_api::RuntimeSpec {
                    container: Some(ContainerRuntime {
                        image: Some("registry.example.com/orders:1".into()),
                        port: Some(8080),
                        ..ContainerRuntime::default()
                    }),
                    ..faas_api::RuntimeSpec::default()
                },
                triggers: Some(TriggersSpec { sqs: triggers }),
                scale,
                ..faas_api::FunctionSpec::default()
            },
        );
        f.metadata.namespace = Some("shop".into());
        f
    }

    fn trigger(url: &str) -> SqsTrigger {
        SqsTrigger {
            queue_url: url.into(),
            ..SqsTrigger::default()
        }
    }

    #[test]
    fn one_sqs_trigger_per_queue_with_the_workloads_identity() {
        let f = function(
            vec![
                trigger("https://sqs.eu-west-3.amazonaws.com/123456789012/orders"),
                SqsTrigger {
                    batch_size: Some(2),
                    max_concurrency: Some(3),
                    ..trigger("https://vpce-1.sqs.eu-west-3.vpce.amazonaws.com/123456789012/b")
                },
            ],
            Some(ScaleSpec {
                min: 1,
                max: Some(20),
                idle_after: None,
            }),
        );
        let defaults = ClusterDefaults {
            region: "eu-central-1".into(),
            ..ClusterDefaults::default()
        };
        let (so, auth) = scaling(&f, &defaults).expect("scaled");
        assert_eq!(so["kind"], "ScaledObject");
        assert_eq!(so["metadata"]["name"], "fn-orders");
        assert_eq!(so["metadata"]["namespace"], "shop");
        assert_eq!(so["spec"]["scaleTargetRef"]["name"], "fn-orders");
        assert_eq!(so["spec"]["minReplicaCount"], 1);
        assert_eq!(so["spec"]["maxReplicaCount"], 20);
        let t = &so["spec"]["triggers"];
        assert_eq!(t[0]["type"], "aws-sqs-queue");
        assert_eq!(t[0]["authenticationRef"]["name"], "fn-orders");
        assert_eq!(t[0]["metadata"]["awsRegion"], "eu-west-3");
        assert_eq!(t[0]["metadata"]["queueLength"], "50");
        // The first message wakes a function at zero.
        assert_eq!(t[0]["metadata"]["activationQueueLength"], "0");
        // A VPC endpoint URL names no region: the cluster's.
        assert_eq!(t[1]["metadata"]["awsRegion"], "eu-central-1");
        assert_eq!(t[1]["metadata"]["queueLength"], "6");
        assert_eq!(
            auth["spec"]["podIdentity"],
            json!({"provider": "aws", "identityOwner": "workload"})
        );
    }

    /// The fields KEDA documents for what we render (keda.sh/docs/2.18: "ScaledObject
    /// specification", "TriggerAuthentication specification", and the `aws-sqs-queue`
    /// scaler's trigger metadata), written by hand: a field KEDA does not know would be
    /// dropped by the API server's pruning and silently not apply. `"string"`, `"integer"`
    /// and `"boolean"` are leaf types; an object is a map of allowed keys; a one-element
    /// array is a list of that.
    fn keda_fields() -> (Value, Value) {
        let scaled_object = json!({
            "apiVersion": "string", "kind": "string",
            "metadata": {"name": "string", "namespace": "string", "labels": {"*": "string"}},
            "spec": {
                "scaleTargetRef": {"apiVersion": "string", "kind": "string", "name": "string",
                                   "envSourceContainerName": "string"},
                "pollingInterval": "integer", "cooldownPeriod": "integer",
                "initialCooldownPeriod": "integer", "idleReplicaCount": "integer",
                "minReplicaCount": "integer", "maxReplicaCount": "integer",
                "fallback": {"failureThreshold": "integer", "replicas": "integer",
                             "behavior": "string"},
                "triggers": [{
                    "type": "string", "name": "string", "useCachedMetrics": "boolean",
                    "metricType": "string",
                    "authenticationRef": {"name": "string", "kind": "string"},
                    // aws-sqs-queue: every value is a string.
                    "metadata": {"queueURL": "string", "queueURLFromEnv": "string",
                                 "queueLength": "string", "activationQueueLength": "string",
                                 "awsRegion": "string", "awsEndpoint": "string",
                                 "scaleOnInFlight": "string", "scaleOnDelayed": "string",
                                 // cpu: the utilization target, and which container.
                                 "value": "string", "containerName": "string"},
                }],
            },
        });
        let authentication = json!({
            "apiVersion": "string", "kind": "string",
            "metadata": {"name": "string", "namespace": "string", "labels": {"*": "string"}},
            "spec": {"podIdentity": {"provider": "string", "identityOwner": "string",
                                     "roleArn": "string", "identityId": "string"}},
        });
        (scaled_object, authentication)
    }

    /// Every field of `value` is in `allowed`, with its type; returns the offending paths.
    fn unknown_fields(value: &Value, allowed: &Value, path: &str, bad: &mut Vec<String>) {
        match (value, allowed) {
            (Value::Object(fields), Value::Object(known)) => {
                for (key, v) in fields {
                    match known.get(key).or_else(|| known.get("*")) {
                        Some(rule) => unknown_fields(v, rule, &format!("{path}.{key}"), bad),
                        None => bad.push(format!("{path}.{key}: not a documented field")),
                    }
                }
            }
            (Value::Array(items), Value::Array(rule)) if rule.len() == 1 => {
                for (i, item) in items.iter().enumerate() {
                    unknown_fields(item, &rule[0], &format!("{path}[{i}]"), bad);
                }
            }
            (Value::String(_), Value::String(t)) if t == "string" => {}
            (Value::Number(n), Value::String(t)) if t == "integer" && n.is_u64() => {}
            (Value::Bool(_), Value::String(t)) if t == "boolean" => {}
            (v, rule) => bad.push(format!("{path}: {v} is not {rule}")),
        }
    }

    #[test]
    fn rendered_keda_objects_use_only_documented_fields() {
        let f = function(
            vec![
                trigger("https://sqs.eu-west-3.amazonaws.com/123456789012/orders"),
                SqsTrigger {
                    batch_size: Some(1),
                    ..trigger("https://sqs.eu-west-3.amazonaws.com/123456789012/b")
                },
            ],
            Some(ScaleSpec {
                min: 0,
                max: Some(7),
                idle_after: None,
            }),
        );
        let (so, auth) = scaling(&f, &ClusterDefaults::default()).expect("scaled");
        let (so_fields, auth_fields) = keda_fields();
        let mut bad = Vec::new();
        unknown_fields(&so, &so_fields, "ScaledObject", &mut bad);
        unknown_fields(&auth, &auth_fields, "TriggerAuthentication", &mut bad);
        assert!(bad.is_empty(), "{bad:#?}");
        // And the check itself bites: a misspelt field, a number where KEDA wants a string.
        let mut wrong = so.clone();
        wrong["spec"]["maxReplicas"] = json!(3);
        wrong["spec"]["triggers"][0]["metadata"]["queueLength"] = json!(5);
        let mut bad = Vec::new();
        unknown_fields(&wrong, &so_fields, "ScaledObject", &mut bad);
        assert_eq!(bad.len(), 2, "{bad:#?}");
        // Cross-references: the trigger's authentication is the rendered TriggerAuthentication.
        assert_eq!(
            so["spec"]["triggers"][1]["authenticationRef"]["name"],
            auth["metadata"]["name"]
        );
        assert_eq!(so["spec"]["triggers"][1]["metadata"]["queueLength"], "5");
    }

    #[test]
    fn nothing_without_enabled_triggers_and_max_never_below_min() {
        assert!(scaling(&function(vec![], None), &ClusterDefaults::default()).is_none());
        let disabled = SqsTrigger {
            enabled: Some(false),
            ..trigger("https://sqs.eu-west-3.amazonaws.com/123456789012/orders")
        };
        assert!(scaling(&function(vec![disabled], None), &ClusterDefaults::default()).is_none());
        let f = function(
            vec![trigger(
                "https://sqs.eu-west-3.amazonaws.com/123456789012/orders",
            )],
            Some(ScaleSpec {
                min: 12,
                max: None,
                idle_after: None,
            }),
        );
        let (so, _) = scaling(&f, &ClusterDefaults::default()).expect("scaled");
        assert_eq!(so["spec"]["maxReplicaCount"], 12);
        assert_eq!(so["spec"]["minReplicaCount"], 12);
    }

    #[test]
    fn queue_only_functions_may_sit_at_zero_and_scheduled_ones_keep_one() {
        let url = "https://sqs.eu-west-3.amazonaws.com/123456789012/orders";
        let mut f = function(vec![trigger(url)], None);
        let (so, _) = scaling(&f, &ClusterDefaults::default()).expect("scaled");
        assert_eq!(so["spec"]["minReplicaCount"], 0, "KEDA wakes it");
        f.spec.schedules = vec![faas_api::Schedule {
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            ..faas_api::Schedule::default()
        }];
        let (so, _) = scaling(&f, &ClusterDefaults::default()).expect("scaled");
        assert_eq!(
            so["spec"]["minReplicaCount"], 1,
            "cron goes through the gateway, which cannot wake what KEDA scales: one stays up"
        );
        assert_eq!(so["spec"]["maxReplicaCount"], 10);
    }

    fn wasm_member(name: &str, queues: &[&str]) -> Function {
        let mut f = function(queues.iter().map(|q| trigger(q)).collect(), None);
        f.metadata.name = Some(name.into());
        f.spec.runtime = faas_api::RuntimeSpec {
            wasm: Some(faas_api::WasmRuntime {
                source: format!("oci://r.example.com/{name}@sha256:{}", "0".repeat(64)),
                ..faas_api::WasmRuntime::default()
            }),
            ..faas_api::RuntimeSpec::default()
        };
        f
    }

    #[test]
    fn a_pool_scales_on_every_members_queue_and_on_cpu_never_below_its_floor() {
        let defaults = ClusterDefaults {
            pool_replicas: 2,
            pool_max_replicas: 8,
            pool_cpu_target_percent: 65,
            ..ClusterDefaults::default()
        };
        let a = wasm_member("a", &["https://sqs.eu-west-3.amazonaws.com/123456789012/a"]);
        let b = wasm_member(
            "b",
            &[
                "https://sqs.eu-west-3.amazonaws.com/123456789012/b1",
                "https://sqs.eu-west-3.amazonaws.com/123456789012/b2",
            ],
        );
        let quiet = wasm_member("quiet", &[]);
        let pool = crate::render::pool::pool_of(&a);
        let (so, auth) = pool_scaling(&pool, &[&a, &b, &quiet], &defaults).expect("scaled");
        assert_eq!(so["metadata"]["name"], "pool-default");
        assert_eq!(so["spec"]["scaleTargetRef"]["name"], "pool-default");
        assert_eq!(
            (
                so["spec"]["minReplicaCount"].clone(),
                so["spec"]["maxReplicaCount"].clone()
            ),
            (json!(2), json!(8))
        );
        let triggers = so["spec"]["triggers"].as_array().expect("triggers");
        let queues: Vec<&str> = triggers
            .iter()
            .filter_map(|t| t["metadata"]["queueURL"].as_str())
            .collect();
        assert_eq!(queues.len(), 3, "{queues:?}");
        assert!(queues.iter().all(|q| q.contains("/123456789012/")));
        let cpu = triggers.last().expect("a cpu trigger");
        assert_eq!(cpu["type"], "cpu");
        assert_eq!(cpu["metadata"]["value"], "65");
        assert_eq!(
            triggers[0]["authenticationRef"]["name"],
            auth["metadata"]["name"]
        );
        // The pool's ServiceAccount holds no member's role: KEDA reads depths as itself.
        assert_eq!(
            auth["spec"]["podIdentity"],
            json!({"provider": "aws", "identityOwner": "keda"})
        );
        let (so_fields, auth_fields) = keda_fields();
        let mut bad = Vec::new();
        unknown_fields(&so, &so_fields, "ScaledObject", &mut bad);
        unknown_fields(&auth, &auth_fields, "TriggerAuthentication", &mut bad);
        assert!(bad.is_empty(), "{bad:#?}");
        // No member with a queue: the pool's own CPU autoscaler, no KEDA objects.
        assert!(pool_scaling(&pool, &[&quiet], &defaults).is_none());
    }
}
