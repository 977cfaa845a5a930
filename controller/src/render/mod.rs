//! Rendering: a `Function` (plus the cluster's defaults) to the Kubernetes objects it should
//! have. Pure functions, no I/O: the reconcile shell (next) applies what these return with
//! server-side apply, and every branch is tested here field by field.
//!
//! - [`service_account`]: `fn-<name>`, with the IRSA role annotations.
//! - [`placement`]: tolerations, node affinity (spot / on-demand / any, node group) and zone
//!   spreading for function pods.
//! - [`workload`]: a container function's Deployment, Service and PodDisruptionBudget, with
//!   the `faas-runtime` native sidecar for Lambda handlers and SQS triggers.
//! - [`job`]: a `mode: job` run's Kubernetes Job, and what its end means for the run.
//! - [`pool`]: a WASM runtime pool's objects; [`pool_access`]: which of its members'
//!   ServiceAccount tokens (their IAM roles) and Secrets its pods may have.
//! - [`network`]: the NetworkPolicies of function and pool pods (ingress from the platform
//!   only, egress never to instance metadata, `allowedOutboundHosts` as address rules).

pub mod job;
pub mod network;
pub mod placement;
pub mod pool;
pub mod pool_access;
pub mod scaling;
pub mod service_account;
pub mod workload;

use std::collections::BTreeMap;

use faas_api::contract;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Toleration};

/// What the chart tells the controller about the cluster.
#[derive(Clone, Debug)]
pub struct ClusterDefaults {
    /// Tolerations of the functions node group's taints.
    pub function_tolerations: Vec<Toleration>,
    /// Labels a functions node must have (`node-group: functions`).
    pub function_node_labels: BTreeMap<String, String>,
    /// The `faas-runtime` image (sidecar, WASM pools).
    pub runtime_image: String,
    /// CPU requested per function container when nothing else says (`100m`).
    pub default_cpu_request: String,
    /// The cluster's AWS region: `AWS_REGION` of Lambda handlers.
    pub region: String,
    /// Replicas of each WASM runtime pool (the fewest, when it autoscales).
    pub pool_replicas: i32,
    /// The most replicas a pool's HorizontalPodAutoscaler may give it on CPU load; at or
    /// below [`ClusterDefaults::pool_replicas`], pools keep `pool_replicas` and have none.
    pub pool_max_replicas: i32,
    /// The average CPU use (percent of the pool pods' request) the autoscaler aims at.
    pub pool_cpu_target_percent: i32,
    /// Memory of a pool pod (request and limit).
    pub pool_memory: String,
    /// CPU requested by a pool pod.
    pub pool_cpu_request: String,
    /// A `kubernetes.io/dockerconfigjson` Secret mounted into pool pods (in each pool's
    /// namespace): the credentials of their artifact pulls. `None`: only ECR logins with the
    /// pool's role and anonymous registries.
    pub pool_registry_secret: Option<String>,
    /// The IAM role of every pool's ServiceAccount (IRSA): the platform's identity for ECR
    /// pulls of `oci://` artifacts. No function ever gets it (each gets its own role's
    /// credentials from the pool pod); `None`: pools have no AWS identity of their own.
    pub pool_role_arn: Option<String>,
    /// What the platform team allows Functions (role ARNs per namespace, node groups, node
    /// labels); its `pool_memory_bytes` is [`ClusterDefaults::pool_memory`] parsed.
    pub policy: faas_api::ClusterPolicy,
    /// NetworkPolicies for function and pool pods; `None`: none are rendered.
    pub network: Option<network::NetworkDefaults>,
}

impl Default for ClusterDefaults {
    fn default() -> Self {
        ClusterDefaults {
            function_tolerations: Vec::new(),
            function_node_labels: BTreeMap::new(),
            runtime_image: "ghcr.io/faas-dev/faas-runtime:latest".to_owned(),
            default_cpu_request: "100m".to_owned(),
            region: "us-east-1".to_owned(),
            pool_replicas: 2,
            pool_max_replicas: 2,
            pool_cpu_target_percent: 70,
            pool_memory: "1Gi".to_owned(),
            pool_cpu_request: "250m".to_owned(),
            pool_registry_secret: None,
            pool_role_arn: None,
            policy: faas_api::ClusterPolicy {
                pool_memory_bytes: Some(1 << 30),
                ..faas_api::ClusterPolicy::default()
            },
            network: None,
        }
    }
}

/// The name of the objects of function `name` (`fn-<name>`).
pub fn object_name(function: &str) -> String {
    contract::function_object(function)
}

/// Labels every object of a function carries; the selector of its pods.
pub fn labels(function: &str) -> BTreeMap<String, String> {
    [
        (contract::NAME_LABEL, object_name(function)),
        (contract::MANAGED_BY_LABEL, contract::CONTROLLER.to_owned()),
        (contract::FUNCTION_LABEL, function.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The selector subset of [`labels`] (stable across controller versions).
pub fn selector(function: &str) -> BTreeMap<String, String> {
    [(contract::FUNCTION_LABEL.to_owned(), function.to_owned())]
        .into_iter()
        .collect()
}

/// Set in every container the controller renders (function, sidecar, pool): the AWS SDKs
/// never ask the instance metadata service for the node's role. The pod's own identity is
/// IRSA; a function or platform process falling back to the node's would act with every
/// permission of the node group. (The NetworkPolicy refuses the address too; this also stops
/// SDKs from waiting on it.)
pub const IMDS_DISABLED_ENV: &str = "AWS_EC2_METADATA_DISABLED";

/// `AWS_EC2_METADATA_DISABLED=true`, last in a container's env so it wins.
pub fn imds_disabled() -> EnvVar {
    EnvVar {
        name: IMDS_DISABLED_ENV.to_owned(),
        value: Some("true".to_owned()),
        ..EnvVar::default()
    }
}

/// The downward API's field `path` as an environment variable.
pub fn downward(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The environment of a platform process (sidecar, pool) that calls AWS: IMDS off, and its
/// ServiceAccount so a missing IRSA role is named (`faas_sqs::aws_credentials`).
pub fn platform_aws_env() -> Vec<EnvVar> {
    vec![
        downward("POD_SERVICE_ACCOUNT", "spec.serviceAccountName"),
        imds_disabled(),
    ]
}
