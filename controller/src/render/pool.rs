//! WASM runtime pools: WebAssembly functions do not get a Deployment each (pods per node are
//! scarce on EKS, see DESIGN.md); they share pool pods running `faas-runtime serve`, hundreds
//! per pod. Which pool a function belongs to is `faas_api::pool::pool_of` (the pool pods run
//! the same rule, and are given their key with `--pool-key`, so a label cannot put a
//! Function in a pool).
//!
//! A pool is `pool-<name>`: ServiceAccount (with the platform's pull role), Deployment, Service, and a
//! RoleBinding to the namespace's `faas-pool` Role (read Functions and ConfigMaps: how pool
//! pods learn their functions and fetch ConfigMap artifacts). Pool objects belong to no
//! single Function; the reconciler deletes a pool when its last member goes.

use std::collections::BTreeMap;

use faas_api::contract;
use faas_api::{Function, FunctionSpec, PlacementSpec};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, KeyToPath, ObjectFieldSelector, PodSpec,
    PodTemplateSpec, ResourceRequirements, SecretVolumeSource, Service, ServiceAccount,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ClusterDefaults;
use super::placement::placement;
use super::service_account::{REGIONAL_STS_ANNOTATION, ROLE_ARN_ANNOTATION};
use super::workload::{
    PRE_STOP_SECONDS, SECURITY_GROUP_LABEL, http_probe, locked_down, pod_security, pre_stop_pause,
    tmp_mount, tmp_volume,
};

pub use faas_api::pool::{POOL_LABEL, Pool, PoolKey, conflict, pool_of};

/// The namespace's Role that pool pods are bound to.
pub const POOL_ROLE: &str = contract::POOL_ROLE;
/// Port of `faas-runtime serve` in pool pods.
pub const POOL_HTTP_PORT: i32 = 8080;
/// `/tmp` of a pool pod (its compiled-code cache).
pub const POOL_TMP_SIZE_LIMIT: &str = "2Gi";
/// Where the registry Secret is mounted (`DOCKER_CONFIG`: docker's `config.json` inside).
pub const POOL_DOCKER_CONFIG_DIR: &str = "/var/run/faas/registry";

/// The objects of one pool.
#[derive(Clone, Debug)]
pub struct PoolObjects {
    pub role: Role,
    pub role_binding: RoleBinding,
    pub service_account: ServiceAccount,
    pub deployment: Deployment,
    pub service: Service,
    pub pdb: Option<PodDisruptionBudget>,
    /// Scales the Deployment on CPU load between the chart's bounds; `None` when the bounds
    /// are one number (the Deployment then has that many replicas).
    pub autoscaler: Option<HorizontalPodAutoscaler>,
}

/// Labels of every object of a pool (its NetworkPolicy's too).
pub fn pool_labels(pool: &Pool) -> BTreeMap<String, String> {
    [
        (contract::NAME_LABEL, pool.object_name()),
        (
            contract::COMPONENT_LABEL,
            contract::POOL_COMPONENT.to_owned(),
        ),
        (contract::MANAGED_BY_LABEL, contract::CONTROLLER.to_owned()),
        (POOL_LABEL, pool.name.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn meta(pool: &Pool, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(pool.key.namespace.clone()),
        labels: Some(pool_labels(pool)),
        ..ObjectMeta::default()
    }
}

/// The pool's objects; `longest_timeout` (seconds) is the longest timeout of its members, so
/// a drain lets every request finish.
pub fn pool_objects(pool: &Pool, longest_timeout: u64, defaults: &ClusterDefaults) -> PoolObjects {
    let name = pool.object_name();
    let namespace = pool.key.namespace.clone();
    let role = Role {
        metadata: ObjectMeta {
            name: Some(POOL_ROLE.to_owned()),
            namespace: Some(namespace.clone()),
            labels: Some(
                [(
                    contract::MANAGED_BY_LABEL.to_owned(),
                    contract::CONTROLLER.to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec!["faas.dev".to_owned()]),
                resources: Some(vec!["functions".to_owned()]),
                verbs: vec!["get".to_owned(), "list".to_owned(), "watch".to_owned()],
                ..PolicyRule::default()
            },
            // Each pod reports whether it loaded each function (`status.loadState`).
            PolicyRule {
                api_groups: Some(vec!["faas.dev".to_owned()]),
                resources: Some(vec!["functions/status".to_owned()]),
                verbs: vec!["patch".to_owned()],
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["configmaps".to_owned()]),
                verbs: vec!["get".to_owned()],
                ..PolicyRule::default()
            },
        ]),
    };
    let role_binding = RoleBinding {
        metadata: meta(pool, name.clone()),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: POOL_ROLE.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: name.clone(),
            namespace: Some(namespace.clone()),
            ..Subject::default()
        }]),
    };
    // The pool's own identity is the platform's pull role, never a member's: members get
    // their own roles' credentials from the pod (TokenRequest + STS), one by one.
    let annotations: Option<BTreeMap<String, String>> =
        defaults.pool_role_arn.as_ref().map(|arn| {
            [
                (ROLE_ARN_ANNOTATION.to_owned(), arn.clone()),
                (REGIONAL_STS_ANNOTATION.to_owned(), "true".to_owned()),
            ]
            .into()
        });
    let service_account = ServiceAccount {
        metadata: ObjectMeta {
            annotations,
            ..meta(pool, name.clone())
        },
        ..ServiceAccount::default()
    };

    // The placement code works on a Function: give it one with the pool's placement.
    let stand_in = Function::new(
        &name,
        FunctionSpec {
            placement: Some(PlacementSpec {
                capacity: pool.key.capacity,
                pool: None,
                node_group: pool.key.node_group.clone(),
                tolerations: pool.key.tolerations.clone(),
                node_selector: pool.key.node_selector.clone(),
                security_group: None,
            }),
            ..FunctionSpec::default()
        },
    );
    let mut place = placement(&stand_in, defaults);
    // Spread the pool's pods, not a function's.
    for spread in &mut place.topology_spread {
        spread.label_selector = Some(LabelSelector {
            match_labels: Some([(POOL_LABEL.to_owned(), pool.name.clone())].into()),
            ..LabelSelector::default()
        });
    }
    let mut pod_labels = pool_labels(pool);
    if let Some(group) = &pool.key.security_group {
        pod_labels.insert(SECURITY_GROUP_LABEL.to_owned(), group.clone());
    }
    let field = |path: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.to_owned(),
            ..ObjectFieldSelector::default()
        }),
        ..EnvVarSource::default()
    };
    let mut runtime = Container {
        name: contract::POOL_CONTAINER.to_owned(),
        image: Some(defaults.runtime_image.clone()),
        args: Some(vec![
            "serve".to_owned(),
            "--pool".to_owned(),
            pool.name.clone(),
            // The pods load only Functions whose computed key is this one.
            "--pool-key".to_owned(),
            pool.key.digest(),
            // Sizes the default concurrency of its functions, as the gateway's admission
            // and the controller's validation size it.
            "--pool-memory".to_owned(),
            defaults.pool_memory.clone(),
            "--json-logs".to_owned(),
        ]),
        env: Some(vec![
            EnvVar {
                name: "POD_NAMESPACE".to_owned(),
                value_from: Some(field("metadata.namespace")),
                ..EnvVar::default()
            },
            EnvVar {
                name: "POD_NAME".to_owned(),
                value_from: Some(field("metadata.name")),
                ..EnvVar::default()
            },
            EnvVar {
                name: "AWS_REGION".to_owned(),
                value: Some(defaults.region.clone()),
                ..EnvVar::default()
            },
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: POOL_HTTP_PORT,
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                (
                    "cpu".to_owned(),
                    Quantity(defaults.pool_cpu_request.clone()),
                ),
                ("memory".to_owned(), Quantity(defaults.pool_memory.clone())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity(defaults.pool_memory.clone()),
            )])),
            ..ResourceRequirements::default()
        }),
        readiness_probe: Some(http_probe("/readyz", POOL_HTTP_PORT, 2)),
        liveness_probe: Some(http_probe("/healthz", POOL_HTTP_PORT, 10)),
        lifecycle: Some(pre_stop_pause()),
        security_context: Some(locked_down()),
        volume_mounts: Some(vec![tmp_mount()]),
        ..Container::default()
    };
    // The pool's SQS pollers and guests' SDKs never use the node's role.
    runtime
        .env
        .get_or_insert_with(Vec::new)
        .extend(super::platform_aws_env());
    let mut volumes = vec![tmp_volume(POOL_TMP_SIZE_LIMIT)];
    if let Some(secret) = &defaults.pool_registry_secret {
        let (volume, mount, env) = registry_secret(secret);
        volumes.push(volume);
        runtime
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(mount);
        runtime.env.get_or_insert_with(Vec::new).push(env);
    }
    let grace = PRE_STOP_SECONDS + i64::try_from(longest_timeout).unwrap_or(i64::MAX / 4) + 5;
    let replicas = defaults.pool_replicas.max(1);
    // Many teams' functions share a pool, so its load is theirs together: CPU, which every
    // WASM call spends, says it (requests are answered by least in-flight across pods).
    // With an autoscaler it alone owns `replicas`, which the apply then leaves out.
    let autoscaler = (defaults.pool_max_replicas > replicas).then(|| HorizontalPodAutoscaler {
        metadata: meta(pool, name.clone()),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: name.clone(),
            },
            min_replicas: Some(replicas),
            max_replicas: defaults.pool_max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(defaults.pool_cpu_target_percent),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        },
        ..HorizontalPodAutoscaler::default()
    });
    let deployment = Deployment {
        metadata: meta(pool, name.clone()),
        spec: DeploymentSpec {
            replicas: autoscaler.is_none().then_some(replicas),
            selector: LabelSelector {
                match_labels: Some([(POOL_LABEL.to_owned(), pool.name.clone())].into()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name.clone()),
                    containers: vec![runtime],
                    security_context: Some(pod_security()),
                    // The compile cache lives here; guests get no filesystem in a cluster.
                    volumes: Some(volumes),
                    tolerations: (!place.tolerations.is_empty()).then_some(place.tolerations),
                    affinity: Some(place.affinity),
                    topology_spread_constraints: (!place.topology_spread.is_empty())
                        .then_some(place.topology_spread),
                    termination_grace_period_seconds: Some(grace),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    };
    let service = Service {
        metadata: meta(pool, name.clone()),
        spec: Some(ServiceSpec {
            selector: Some([(POOL_LABEL.to_owned(), pool.name.clone())].into()),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: 80,
                target_port: Some(IntOrString::Int(POOL_HTTP_PORT)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let pdb = (replicas >= 2).then(|| PodDisruptionBudget {
        metadata: meta(pool, name.clone()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some([(POOL_LABEL.to_owned(), pool.name.clone())].into()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    });
    PoolObjects {
        role,
        role_binding,
        service_account,
        deployment,
        service,
        pdb,
        autoscaler,
    }
}

/// The registry Secret as the pod's docker config: its `.dockerconfigjson` as
/// `config.json` in [`POOL_DOCKER_CONFIG_DIR`], named by `DOCKER_CONFIG`. Optional, so a
/// namespace without the Secret still runs its pools (ConfigMap artifacts, ECR with the
/// pools' pull role); a pull that needed it names the registry that refused.
fn registry_secret(secret: &str) -> (Volume, VolumeMount, EnvVar) {
    let volume = Volume {
        name: "registry".to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            items: Some(vec![KeyToPath {
                key: ".dockerconfigjson".to_owned(),
                path: "config.json".to_owned(),
                ..KeyToPath::default()
            }]),
            optional: Some(true),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: "registry".to_owned(),
        mount_path: POOL_DOCKER_CONFIG_DIR.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    let env = EnvVar {
        name: "DOCKER_CONFIG".to_owned(),
        value: Some(POOL_DOCKER_CONFIG_DIR.to_owned()),
        ..EnvVar::default()
    };
    (volume, mount, env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{IamSpec, RuntimeSpec, WasmRuntime};

    fn wasm(name: &str, namespace: &str) -> Function {
        let mut f = Function::new(
            name,
            FunctionSpec {
                runtime: RuntimeSpec {
                    wasm: Some(WasmRuntime {
                        source: "configmap://fn-a/a.wasm".into(),
                        ..WasmRuntime::default()
                    }),
                    container: None,
                },
                ..FunctionSpec::default()
            },
        );
        f.metadata.namespace = Some(namespace.into());
        f
    }

    fn with_role(mut f: Function, arn: &str) -> Function {
        f.spec.iam = Some(IamSpec {
            role_arn: arn.into(),
        });
        f
    }

    #[test]
    fn the_registry_secret_is_the_pool_pods_docker_config() {
        let pool = pool_of(&wasm("a", "shop"));
        let without = pool_objects(&pool, 30, &ClusterDefaults::default());
        let pod = without.deployment.spec.template.spec.expect("pod");
        assert_eq!(pod.volumes.as_ref().map(Vec::len), Some(1));
        assert!(
            !pod.containers[0]
                .env
                .iter()
                .flatten()
                .any(|e| e.name == "DOCKER_CONFIG")
        );

        let defaults = ClusterDefaults {
            pool_registry_secret: Some("registry-credentials".into()),
            ..ClusterDefaults::default()
        };
        let objects = pool_objects(&pool, 30, &defaults);
        let pod = objects.deployment.spec.template.spec.expect("pod");
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "registry")
            .expect("registry volume");
        let secret = volume.secret.as_ref().expect("a Secret volume");
        assert_eq!(secret.secret_name.as_deref(), Some("registry-credentials"));
        let items = secret.items.clone().unwrap_or_default();
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            (".dockerconfigjson", "config.json")
        );
        let container = &pod.containers[0];
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "registry")
            .expect("mounted");
        assert_eq!(mount.mount_path, POOL_DOCKER_CONFIG_DIR);
        assert_eq!(mount.read_only, Some(true));
        let docker_config = container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "DOCKER_CONFIG")
            .and_then(|e| e.value.clone());
        assert_eq!(docker_config.as_deref(), Some(POOL_DOCKER_CONFIG_DIR));
    }

    #[test]
    fn a_pool_is_a_locked_down_serve_deployment_with_the_pools_identity() {
        let pull = "arn:aws:iam::123456789012:role/faas-pool-pull";
        // A member's role is never the pool's identity.
        let pool = pool_of(&with_role(
            wasm("a", "shop"),
            "arn:aws:iam::123456789012:role/resize",
        ));
        let without = pool_objects(&pool, 30, &ClusterDefaults::default());
        assert_eq!(without.service_account.metadata.annotations, None);
        let defaults = ClusterDefaults {
            runtime_image: "registry.example.com/faas-runtime:0.1".into(),
            pool_role_arn: Some(pull.into()),
            ..ClusterDefaults::default()
        };
        let objects = pool_objects(&pool, 30, &defaults);
        let name = pool.object_name();
        assert_eq!(
            objects
                .service_account
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ROLE_ARN_ANNOTATION))
                .map(String::as_str),
            Some(pull)
        );
        let pod = objects.deployment.spec.template.spec.as_ref().expect("pod");
        assert_eq!(pod.service_account_name.as_deref(), Some(name.as_str()));
        let container = &pod.containers[0];
        assert_eq!(
            container.args.clone().unwrap_or_default()[..7],
            [
                "serve".to_owned(),
                "--pool".to_owned(),
                pool.name.clone(),
                "--pool-key".to_owned(),
                pool.key.digest(),
                "--pool-memory".to_owned(),
                "1Gi".to_owned(),
            ]
        );
        assert_eq!(
            container.image.as_deref(),
            Some("registry.example.com/faas-runtime:0.1")
        );
        assert_eq!(pod.termination_grace_period_seconds, Some(10 + 30 + 5));
        assert_eq!(
            pod.security_context.as_ref().and_then(|s| s.run_as_user),
            Some(super::super::workload::NON_ROOT_UID)
        );
        assert_eq!(
            container
                .security_context
                .as_ref()
                .and_then(|s| s.read_only_root_filesystem),
            Some(true)
        );
        // Spot by default, like any function.
        let required = pod
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| {
                s.node_selector_terms[0]
                    .match_expressions
                    .clone()
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        assert!(
            required
                .iter()
                .any(|r| r.values == Some(vec!["SPOT".to_owned()]))
        );
        assert_eq!(
            objects
                .role_binding
                .subjects
                .as_ref()
                .map(|s| s[0].name.clone()),
            Some(name.clone())
        );
        assert_eq!(objects.role_binding.role_ref.name, POOL_ROLE);
        assert_eq!(objects.deployment.spec.replicas, Some(2));
        assert!(objects.pdb.is_some(), "two replicas: a PDB");
        assert!(objects.autoscaler.is_none(), "bounds of one number: fixed");
        let ports = objects
            .service
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .expect("ports");
        assert_eq!(ports[0].target_port, Some(IntOrString::Int(POOL_HTTP_PORT)));
    }

    #[test]
    fn a_pool_scales_on_cpu_within_the_charts_bounds_and_the_autoscaler_owns_replicas() {
        let defaults = ClusterDefaults {
            pool_replicas: 3,
            pool_max_replicas: 12,
            pool_cpu_target_percent: 60,
            ..ClusterDefaults::default()
        };
        let pool = pool_of(&wasm("a", "shop"));
        let objects = pool_objects(&pool, 30, &defaults);
        assert_eq!(objects.deployment.spec.replicas, None, "the autoscaler's");
        let autoscaler = objects.autoscaler.expect("an autoscaler");
        assert_eq!(autoscaler.metadata.name.as_deref(), Some("pool-default"));
        let spec = autoscaler.spec;
        assert_eq!(
            (
                spec.scale_target_ref.kind.as_str(),
                spec.scale_target_ref.name.as_str()
            ),
            ("Deployment", "pool-default")
        );
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(3), 12));
        let metric = &spec.metrics.expect("metrics")[0];
        let resource = metric.resource.as_ref().expect("a resource metric");
        assert_eq!(resource.name, "cpu");
        assert_eq!(resource.target.average_utilization, Some(60));
        // Its floor is what the PDB protects.
        assert!(objects.pdb.is_some());
    }
}
