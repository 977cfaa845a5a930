//! Queue-depth scaling with KEDA, when its CRDs are installed: a `ScaledObject` on the
//! function's Deployment with one `aws-sqs-queue` trigger per queue, and a
//! `TriggerAuthentication` that makes KEDA read the queue with the function's own IAM role
//! (`podIdentity: {provider: aws, identityOwner: workload}`: KEDA assumes the role named on
//! the workload's ServiceAccount, so the role's trust policy must also trust KEDA's
//! ServiceAccount; see docs/eks.md).
//!
//! Rendered as JSON (KEDA's types are not in k8s-openapi); applied as dynamic objects.

use faas_api::Function;
use faas_api::sqs::QueueUrl;
use serde_json::{Value, json};

use super::{ClusterDefaults, labels, object_name};

/// KEDA's API group/version.
pub const KEDA_API_VERSION: &str = "keda.sh/v1alpha1";
/// KEDA's default `maxReplicaCount`, used when `scale.max` is not set.
const DEFAULT_MAX_REPLICAS: u32 = 10;
/// Messages per replica KEDA aims for when the trigger says nothing: what one replica takes
/// at once (batch size x concurrent batches), at least one.
fn queue_length(trigger: &faas_api::SqsTrigger) -> u32 {
    let batch = trigger.batch_size.unwrap_or(10);
    let concurrency = trigger.max_concurrency.unwrap_or(5);
    (batch * concurrency).max(1)
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
    let keda_triggers: Vec<Value> = triggers
        .iter()
        .filter(|t| t.enabled != Some(false))
        .map(|t| {
            let region = QueueUrl::parse(&t.queue_url)
                .ok()
                .and_then(|q| q.region)
                .unwrap_or_else(|| defaults.region.clone());
            json!({
                "type": "aws-sqs-queue",
                "authenticationRef": {"name": object},
                "metadata": {
                    "queueURL": t.queue_url,
                    "queueLength": queue_length(t).to_string(),
                    "awsRegion": region,
                    // Messages being handled count too: scaling down mid-batch would
                    // release them.
                    "scaleOnInFlight": "true",
                },
            })
        })
        .collect();
    if keda_triggers.is_empty() {
        return None;
    }
    let metadata = json!({
        "name": object,
        "namespace": function.metadata.namespace,
        "labels": labels(name),
    });
    let scaled_object = json!({
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"name": object},
            "minReplicaCount": scale.min,
            "maxReplicaCount": scale.max.unwrap_or(DEFAULT_MAX_REPLICAS).max(scale.min).max(1),
            "triggers": keda_triggers,
        },
    });
    let authentication = json!({
        "apiVersion": KEDA_API_VERSION,
        "kind": "TriggerAuthentication",
        "metadata": metadata,
        "spec": {"podIdentity": {"provider": "aws", "identityOwner": "workload"}},
    });
    Some((scaled_object, authentication))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{ContainerRuntime, ScaleSpec, SqsTrigger, TriggersSpec};

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
        // A VPC endpoint URL names no region: the cluster's.
        assert_eq!(t[1]["metadata"]["awsRegion"], "eu-central-1");
        assert_eq!(t[1]["metadata"]["queueLength"], "6");
        assert_eq!(
            auth["spec"]["podIdentity"],
            json!({"provider": "aws", "identityOwner": "workload"})
        );
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
            Some(ScaleSpec { min: 12, max: None }),
        );
        let (so, _) = scaling(&f, &ClusterDefaults::default()).expect("scaled");
        assert_eq!(so["spec"]["maxReplicaCount"], 12);
        assert_eq!(so["spec"]["minReplicaCount"], 12);
    }
}
