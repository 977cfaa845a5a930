//! A container function's workload: Deployment (+ Service, + PDB when it keeps two or more
//! replicas). The pod is locked down (non-root, read-only root filesystem with a `/tmp`
//! emptyDir, no capabilities, no privilege escalation, RuntimeDefault seccomp), sized from the
//! spec, probed, and given a `preStop` pause plus a grace period longer than the function
//! timeout, so a spot drain lets requests in flight finish. Lambda handlers and functions with
//! SQS triggers get `faas-runtime sidecar` as a native sidecar (an init container with
//! `restartPolicy: Always`): the Runtime API, the pollers and metrics beside the app.

use std::collections::BTreeMap;

use faas_api::{ContainerMode, Function, contract};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, Service, ServicePort, ServiceSpec, SleepAction, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::placement::placement;
use super::{
    ClusterDefaults, IMDS_DISABLED_ENV, downward, imds_disabled, labels, object_name,
    platform_aws_env, selector,
};

/// The user and group function pods run as (the distroless `nonroot` user).
pub const NON_ROOT_UID: i64 = 65532;
/// Port of the sidecar's HTTP front (the Service targets it for Lambda handlers).
pub const SIDECAR_HTTP_PORT: i32 = 8080;
/// Port of the sidecar's Lambda Runtime API, on the pod's loopback.
pub const RUNTIME_API_PORT: i32 = 9001;
/// The `preStop` pause: the load balancer stops sending before the process is told to stop.
pub const PRE_STOP_SECONDS: i64 = 10;

/// The objects of a container function.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub deployment: Deployment,
    pub service: Service,
    pub pdb: Option<PodDisruptionBudget>,
}

fn meta(function: &Function) -> ObjectMeta {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    ObjectMeta {
        name: Some(object_name(name)),
        namespace: function.metadata.namespace.clone(),
        labels: Some(labels(name)),
        ..ObjectMeta::default()
    }
}

/// The pod-level security of every function and pool pod.
pub(super) fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        // A numeric non-root user for every image: `runAsNonRoot` alone refuses images whose
        // USER is root (the AWS Lambda base images among them) with
        // CreateContainerConfigError. With a read-only root filesystem and /tmp as the only
        // writable place, few images care which user they run as.
        run_as_user: Some(NON_ROOT_UID),
        run_as_group: Some(NON_ROOT_UID),
        fs_group: Some(NON_ROOT_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The `preStop` pause: the pod keeps serving while endpoints (Service, gateway, ALB) stop
/// sending to it.
pub(super) fn pre_stop_pause() -> Lifecycle {
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: PRE_STOP_SECONDS,
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    }
}

/// `/tmp` of a function pod: what Lambda gives (512 MB); past it the kubelet evicts the pod
/// instead of letting one function fill the node's disk.
pub const TMP_SIZE_LIMIT: &str = "512Mi";

/// The writable `/tmp` of a pod whose root filesystem is read-only, at most `size_limit`.
pub(super) fn tmp_volume(size_limit: &str) -> Volume {
    Volume {
        name: "tmp".to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(size_limit.to_owned())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Where [`tmp_volume`] is mounted.
pub(super) fn tmp_mount() -> VolumeMount {
    VolumeMount {
        name: "tmp".to_owned(),
        mount_path: "/tmp".to_owned(),
        ..VolumeMount::default()
    }
}

pub(super) fn locked_down() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

fn tcp_probe(port: i32, period: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(port),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

pub(super) fn http_probe(path: &str, port: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(port),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

/// What Lambda sets for a handler (`faas_api::lambda_env`, the same list local mode uses),
/// pointed at the sidecar's Runtime API. The log stream is the pod's name, so every pod
/// renders the same spec.
fn lambda_environment(
    function: &Function,
    container: &faas_api::ContainerRuntime,
    limits: faas_api::Limits,
    defaults: &ClusterDefaults,
) -> Vec<EnvVar> {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let handler = container.args.last().cloned().unwrap_or_default();
    let identity = faas_api::lambda_env::LambdaIdentity {
        function: name,
        memory_mib: limits.memory_bytes >> 20,
        region: &defaults.region,
        handler: &handler,
        task_root: container.working_dir.as_deref().unwrap_or("/var/task"),
        log_stream: "",
        per_process: limits.per_process,
    };
    let value = |name: &str, value: String| EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..EnvVar::default()
    };
    let mut env = vec![value(
        "AWS_LAMBDA_RUNTIME_API",
        format!("127.0.0.1:{RUNTIME_API_PORT}"),
    )];
    for (key, v) in faas_api::lambda_env::handler_environment(&identity) {
        match key {
            // The image's own CMD names the handler when args do not.
            "_HANDLER" if v.is_empty() => {}
            "AWS_LAMBDA_LOG_STREAM_NAME" => env.push(EnvVar {
                name: key.to_owned(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".to_owned(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            }),
            // spec.env wins for the region (a function reading another region's queues).
            "AWS_REGION" | "AWS_DEFAULT_REGION" if function.spec.env.contains_key(key) => {}
            _ => env.push(value(key, v)),
        }
    }
    env
}

/// The Function as the sidecar reads it (`FAAS_FUNCTION_MANIFEST`): identity and spec, no
/// status or server-managed metadata, so the rendered pod changes only with the spec.
fn sidecar_manifest(function: &Function) -> String {
    serde_json::json!({
        "apiVersion": faas_api::API_VERSION,
        "kind": "Function",
        "metadata": {
            "name": function.metadata.name,
            "namespace": function.metadata.namespace,
        },
        "spec": function.spec,
    })
    .to_string()
}

/// The label a platform team's `SecurityGroupPolicy` selects pods by.
pub const SECURITY_GROUP_LABEL: &str = "faas.dev/security-group";

/// The pods' labels: the function's, plus the security-group label when the spec asks for
/// security groups for pods.
pub(super) fn pod_labels(function: &Function) -> BTreeMap<String, String> {
    let mut labels = labels(function.metadata.name.as_deref().unwrap_or_default());
    if let Some(group) = function
        .spec
        .placement
        .as_ref()
        .and_then(|p| p.security_group.clone())
    {
        labels.insert(SECURITY_GROUP_LABEL.to_owned(), group);
    }
    if super::network::egress_restricted(function) {
        // Left out by the chart's namespace-wide egress policy, which would otherwise add
        // "anywhere" to the function's own list (NetworkPolicies add up).
        labels.insert(
            super::network::EGRESS_LABEL.to_owned(),
            "restricted".to_owned(),
        );
    }
    labels
}

/// Whether the function needs the `faas-runtime` sidecar.
pub fn needs_sidecar(function: &Function) -> bool {
    let lambda = function
        .spec
        .runtime
        .container
        .as_ref()
        .is_some_and(|c| c.mode == ContainerMode::Lambda);
    let sqs = function
        .spec
        .triggers
        .as_ref()
        .is_some_and(|t| !t.sqs.is_empty());
    lambda || sqs
}

/// The workload of a container function; `None` for WASM functions (they run in pools).
pub fn workload(function: &Function, defaults: &ClusterDefaults) -> Option<Workload> {
    let container = function.spec.runtime.container.as_ref()?;
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let limits = function.spec.limits().unwrap_or_default();
    let lambda = container.mode == ContainerMode::Lambda;
    let app_port = container.port.map(i32::from);

    let mut env = spec_env(function);
    if lambda {
        env.extend(lambda_environment(function, container, limits, defaults));
    }
    env.push(imds_disabled());
    let probe = app_port.filter(|_| container.mode == ContainerMode::Http);
    let app = Container {
        name: contract::FUNCTION_CONTAINER.to_owned(),
        image: container.image.clone(),
        // In a cluster the image's own entrypoint runs: `command` is local mode's stand-in.
        args: (!container.args.is_empty()).then(|| container.args.clone()),
        working_dir: container.working_dir.clone(),
        env: (!env.is_empty()).then_some(env),
        ports: app_port.map(|port| {
            vec![ContainerPort {
                name: Some("http".to_owned()),
                container_port: port,
                ..ContainerPort::default()
            }]
        }),
        resources: Some(resources(function, limits, defaults)),
        // The same readiness the runtime uses locally: the path when the spec names one.
        readiness_probe: probe.map(|p| match &container.readiness_path {
            Some(path) => http_probe(path, p, 5),
            None => tcp_probe(p, 5),
        }),
        liveness_probe: probe.map(|p| tcp_probe(p, 20)),
        lifecycle: Some(pre_stop_pause()),
        security_context: Some(locked_down()),
        volume_mounts: Some(vec![tmp_mount()]),
        ..Container::default()
    };
    let sidecar = needs_sidecar(function).then(|| Container {
        name: "faas-runtime".to_owned(),
        image: Some(defaults.runtime_image.clone()),
        args: Some(vec!["sidecar".to_owned()]),
        // A native sidecar: started before the app, stopped after it.
        restart_policy: Some("Always".to_owned()),
        env: Some(
            [
                EnvVar {
                    // The whole function, as `faas-runtime sidecar` reads it: a change of spec
                    // rolls the pods, which is what a new trigger or timeout needs anyway.
                    name: "FAAS_FUNCTION_MANIFEST".to_owned(),
                    value: Some(sidecar_manifest(function)),
                    ..EnvVar::default()
                },
                downward("POD_NAMESPACE", "metadata.namespace"),
            ]
            .into_iter()
            .chain(platform_aws_env())
            .collect(),
        ),
        ports: Some(vec![
            ContainerPort {
                name: Some("sidecar".to_owned()),
                container_port: SIDECAR_HTTP_PORT,
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("runtime-api".to_owned()),
                container_port: RUNTIME_API_PORT,
                ..ContainerPort::default()
            },
        ]),
        // Ready when the function is: a Lambda handler that asked for work, a server
        // beside that accepts connections.
        readiness_probe: Some(http_probe("/readyz", SIDECAR_HTTP_PORT, 2)),
        security_context: Some(locked_down()),
        ..Container::default()
    });
    let place = placement(function, defaults);
    let timeout = i64::try_from(limits.timeout.as_secs()).unwrap_or(i64::MAX / 4);
    let pod = PodSpec {
        service_account_name: Some(object_name(name)),
        containers: vec![app],
        init_containers: sidecar.map(|s| vec![s]),
        security_context: Some(pod_security()),
        volumes: Some(vec![tmp_volume(TMP_SIZE_LIMIT)]),
        // Neither the function nor the sidecar talks to the Kubernetes API. IRSA does not
        // need this token either: the EKS webhook mounts its own projected token
        // (`aws-iam-token`, audience sts.amazonaws.com) whatever this says.
        automount_service_account_token: Some(false),
        // The pause, then the longest request, then a margin to exit.
        termination_grace_period_seconds: Some(PRE_STOP_SECONDS + timeout + 5),
        tolerations: (!place.tolerations.is_empty()).then_some(place.tolerations),
        affinity: Some(place.affinity),
        topology_spread_constraints: Some(place.topology_spread),
        ..PodSpec::default()
    };
    // What the controller keeps when it owns `replicas` (`faas_api::scaling`): without KEDA,
    // an SQS trigger keeps one up. When KEDA or the gateway owns the field, the
    // reconcile leaves it out of the apply.
    let min = function.spec.min_replicas(false);
    let deployment = Deployment {
        metadata: meta(function),
        spec: DeploymentSpec {
            replicas: Some(i32::try_from(min).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(selector(name)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels(function)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    };
    let target = if lambda {
        Some(SIDECAR_HTTP_PORT)
    } else {
        app_port
    };
    let service = Service {
        metadata: meta(function),
        spec: Some(ServiceSpec {
            selector: Some(selector(name)),
            ports: target.map(|port| {
                vec![ServicePort {
                    name: Some("http".to_owned()),
                    port: 80,
                    target_port: Some(IntOrString::Int(port)),
                    ..ServicePort::default()
                }]
            }),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let pdb = (min >= 2).then(|| PodDisruptionBudget {
        metadata: meta(function),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(name)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    });
    Some(Workload {
        deployment,
        service,
        pdb,
    })
}

/// `spec.env` as a function container's environment. The function cannot turn the metadata
/// switch back off: its value is the platform's. Kubernetes Secrets the Kubernetes way: a
/// `secretKeyRef` the kubelet resolves, so the value is never in the Function nor in anything
/// the controller writes. (SSM and Secrets Manager entries are refused for container
/// functions in a cluster: `faas_api::validate_for_cluster`.)
pub(super) fn spec_env(function: &Function) -> Vec<EnvVar> {
    function
        .spec
        .env
        .entries()
        .iter()
        .filter(|e| e.name != IMDS_DISABLED_ENV)
        .filter_map(|e| match &e.value_from {
            None => Some(EnvVar {
                name: e.name.clone(),
                value: Some(e.value.clone().unwrap_or_default()),
                ..EnvVar::default()
            }),
            Some(from) => match from.source() {
                Ok(faas_api::SecretRef::Kubernetes(secret)) => Some(EnvVar {
                    name: e.name.clone(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: secret.name,
                            key: secret.key,
                            optional: Some(false),
                        }),
                        ..EnvVarSource::default()
                    }),
                    ..EnvVar::default()
                }),
                _ => None,
            },
        })
        .collect()
}

/// Requests and limits of a function container: its memory as request and limit, its CPU
/// (or the chart's default) as request only.
pub(super) fn resources(
    function: &Function,
    limits: faas_api::Limits,
    defaults: &ClusterDefaults,
) -> ResourceRequirements {
    let memory = Quantity(format!("{}Mi", (limits.memory_bytes >> 20).max(1)));
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            (
                "cpu".to_owned(),
                Quantity(
                    function
                        .spec
                        .cpu
                        .clone()
                        .unwrap_or_else(|| defaults.default_cpu_request.clone()),
                ),
            ),
            ("memory".to_owned(), memory.clone()),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), memory)])),
        ..ResourceRequirements::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{
        ContainerRuntime, FunctionSpec, RuntimeSpec, ScaleSpec, SqsTrigger, TriggersSpec,
    };

    fn function(mode: ContainerMode, port: Option<u16>) -> Function {
        let mut f = Function::new(
            "orders",
            FunctionSpec {
                runtime: RuntimeSpec {
                    container: Some(ContainerRuntime {
                        image: Some("registry.example.com/orders:1.2".into()),
                        command: vec!["python3".into(), "local-only.py".into()],
                        port,
                        mode,
                        ..ContainerRuntime::default()
                    }),
                    ..RuntimeSpec::default()
                },
                timeout: Some("60s".into()),
                memory: Some("256Mi".into()),
                env: [("LOG_LEVEL".to_owned(), "info".to_owned())]
                    .into_iter()
                    .collect(),
                ..FunctionSpec::default()
            },
        );
        f.metadata.namespace = Some("shop".into());
        f
    }

    fn pod(w: &Workload) -> &PodSpec {
        w.deployment.spec.template.spec.as_ref().expect("pod spec")
    }

    #[test]
    fn an_http_container_is_locked_down_sized_probed_and_drains() {
        let w = workload(
            &function(ContainerMode::Http, Some(8000)),
            &ClusterDefaults::default(),
        )
        .expect("a container function has a workload");
        assert_eq!(w.deployment.metadata.name.as_deref(), Some("fn-orders"));
        assert_eq!(w.deployment.metadata.namespace.as_deref(), Some("shop"));
        let pod = pod(&w);
        assert_eq!(pod.service_account_name.as_deref(), Some("fn-orders"));
        assert!(
            pod.init_containers.is_none(),
            "no sidecar for a plain http function"
        );
        let app = &pod.containers[0];
        assert_eq!(
            app.image.as_deref(),
            Some("registry.example.com/orders:1.2")
        );
        assert_eq!(
            app.command, None,
            "the image's entrypoint runs in a cluster"
        );
        let sc = app.security_context.as_ref().expect("security context");
        assert_eq!(sc.run_as_non_root, Some(true));
        let pod_sc = pod.security_context.as_ref().expect("pod security context");
        assert_eq!(pod_sc.run_as_user, Some(NON_ROOT_UID));
        assert_eq!(pod_sc.fs_group, Some(NON_ROOT_UID));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_owned()])
        );
        let pod_sc = pod.security_context.as_ref().expect("pod security context");
        assert_eq!(
            pod_sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault")
        );
        assert_eq!(
            app.volume_mounts.as_ref().expect("mounts")[0].mount_path,
            "/tmp"
        );
        // /tmp is bounded; the pod gets no Kubernetes API token it does not use.
        let tmp = &pod.volumes.as_ref().expect("volumes")[0];
        assert_eq!(
            tmp.empty_dir.as_ref().and_then(|e| e.size_limit.clone()),
            Some(Quantity(TMP_SIZE_LIMIT.to_owned()))
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        let resources = app.resources.as_ref().expect("resources");
        assert_eq!(
            resources.limits.as_ref().expect("limits")["memory"].0,
            "256Mi"
        );
        assert_eq!(
            resources.requests.as_ref().expect("requests")["cpu"].0,
            "100m"
        );
        let readiness = app.readiness_probe.as_ref().expect("readiness");
        assert_eq!(
            readiness.tcp_socket.as_ref().map(|t| t.port.clone()),
            Some(IntOrString::Int(8000))
        );
        assert!(app.liveness_probe.is_some());
        let pre_stop = app
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|p| p.sleep.as_ref())
            .expect("preStop sleep");
        assert_eq!(pre_stop.seconds, PRE_STOP_SECONDS);
        // 10 s pause + 60 s timeout + 5 s to exit.
        assert_eq!(pod.termination_grace_period_seconds, Some(75));
        let env = app.env.as_ref().expect("env");
        assert_eq!(
            (env[0].name.as_str(), env[0].value.as_deref()),
            ("LOG_LEVEL", Some("info"))
        );
        let port = &w
            .service
            .spec
            .as_ref()
            .expect("service")
            .ports
            .as_ref()
            .expect("ports")[0];
        assert_eq!(
            (port.port, port.target_port.clone()),
            (80, Some(IntOrString::Int(8000)))
        );
        assert_eq!(w.deployment.spec.replicas, Some(0));
        assert!(w.pdb.is_none());
    }

    #[test]
    fn a_lambda_handler_gets_the_runtime_sidecar_and_the_service_targets_it() {
        let defaults = ClusterDefaults {
            runtime_image: "registry.example.com/faas-runtime:0.1".into(),
            ..ClusterDefaults::default()
        };
        let w = workload(&function(ContainerMode::Lambda, None), &defaults).expect("workload");
        let pod = pod(&w);
        let sidecar = &pod.init_containers.as_ref().expect("native sidecar")[0];
        assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            sidecar.image.as_deref(),
            Some("registry.example.com/faas-runtime:0.1")
        );
        assert_eq!(sidecar.args, Some(vec!["sidecar".to_owned()]));
        let app = &pod.containers[0];
        let api = app
            .env
            .as_ref()
            .expect("env")
            .iter()
            .find(|e| e.name == "AWS_LAMBDA_RUNTIME_API")
            .and_then(|e| e.value.clone());
        assert_eq!(api.as_deref(), Some("127.0.0.1:9001"));
        let env = app.env.as_ref().expect("env");
        let get = |k: &str| env.iter().find(|e| e.name == k);
        // What the Rust `lambda_runtime` crate refuses to start without.
        for required in faas_api::lambda_env::REQUIRED_BY_LAMBDA_RUNTIME {
            assert!(get(required).is_some(), "{required} missing");
        }
        assert!(get("AWS_LAMBDA_MAX_CONCURRENCY").is_none());
        let stream = get("AWS_LAMBDA_LOG_STREAM_NAME").and_then(|e| e.value_from.clone());
        assert_eq!(
            stream.and_then(|s| s.field_ref).map(|f| f.field_path),
            Some("metadata.name".to_owned()),
            "one log stream per pod, and the same rendered spec for every pod"
        );
        assert!(
            app.readiness_probe.is_none(),
            "the handler has no port to probe"
        );
        // The sidecar gets the function as a manifest it accepts, and is probed on /readyz
        // (ready once the handler asked for work).
        let manifest = sidecar
            .env
            .as_ref()
            .and_then(|env| env.iter().find(|e| e.name == "FAAS_FUNCTION_MANIFEST"))
            .and_then(|e| e.value.clone())
            .expect("FAAS_FUNCTION_MANIFEST");
        let parsed = faas_api::manifest::parse_functions(&manifest, "sidecar env").expect("valid");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].spec, function(ContainerMode::Lambda, None).spec);
        let probe = sidecar
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.clone());
        assert_eq!(probe.and_then(|g| g.path).as_deref(), Some("/readyz"));
        let port = &w
            .service
            .spec
            .as_ref()
            .expect("service")
            .ports
            .as_ref()
            .expect("ports")[0];
        assert_eq!(port.target_port, Some(IntOrString::Int(SIDECAR_HTTP_PORT)));
    }

    #[test]
    fn sqs_triggers_add_the_sidecar_and_two_replicas_add_a_pdb() {
        let mut f = function(ContainerMode::Http, Some(8000));
        f.spec.triggers = Some(TriggersSpec {
            sqs: vec![SqsTrigger {
                queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/orders".into(),
                ..SqsTrigger::default()
            }],
        });
        f.spec.scale = Some(ScaleSpec {
            min: 2,
            max: Some(10),
            idle_after: None,
        });
        let w = workload(&f, &ClusterDefaults::default()).expect("workload");
        assert!(pod(&w).init_containers.is_some());
        assert_eq!(w.deployment.spec.replicas, Some(2));
        let pdb = w.pdb.expect("a PDB for two replicas");
        assert_eq!(
            pdb.spec.and_then(|s| s.max_unavailable),
            Some(IntOrString::Int(1))
        );
        // scale.min 0: still one replica, or nothing would poll the queue.
        f.spec.scale = None;
        let w = workload(&f, &ClusterDefaults::default()).expect("workload");
        assert_eq!(w.deployment.spec.replicas, Some(1));
        assert!(w.pdb.is_none());
    }

    #[test]
    fn a_readiness_path_becomes_an_http_probe() {
        let mut f = function(ContainerMode::Http, Some(8000));
        let w = workload(&f, &ClusterDefaults::default()).expect("workload");
        let app = &pod(&w).containers[0];
        assert!(
            app.readiness_probe
                .as_ref()
                .and_then(|p| p.tcp_socket.clone())
                .is_some()
        );
        if let Some(c) = f.spec.runtime.container.as_mut() {
            c.readiness_path = Some("/healthz".into());
        }
        let w = workload(&f, &ClusterDefaults::default()).expect("workload");
        let app = &pod(&w).containers[0];
        let get = app
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .expect("httpGet");
        assert_eq!(
            (get.path.as_deref(), get.port.clone()),
            (Some("/healthz"), IntOrString::Int(8000))
        );
        // Liveness stays a TCP check: a slow health endpoint must not get the pod killed.
        assert!(
            app.liveness_probe
                .as_ref()
                .and_then(|p| p.tcp_socket.clone())
                .is_some()
        );
    }

    #[test]
    fn cpu_and_security_groups_come_from_the_spec() {
        let mut f = function(ContainerMode::Http, Some(8000));
        f.spec.cpu = Some("750m".into());
        f.spec.placement = Some(faas_api::PlacementSpec {
            security_group: Some("orders-db".into()),
            ..faas_api::PlacementSpec::default()
        });
        let w = workload(&f, &ClusterDefaults::default()).expect("workload");
        let template = &w.deployment.spec.template;
        let labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .expect("labels");
        assert_eq!(
            labels.get(SECURITY_GROUP_LABEL).map(String::as_str),
            Some("orders-db")
        );
        // The selector stays the function's: pods are found the same way with or without.
        assert!(
            !w.deployment
                .spec
                .selector
                .match_labels
                .clone()
                .unwrap_or_default()
                .contains_key(SECURITY_GROUP_LABEL)
        );
        let pod = template.spec.as_ref().expect("pod");
        let requests = pod.containers[0]
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .expect("requests");
        assert_eq!(requests["cpu"].0, "750m");
    }

    #[test]
    fn a_secret_reaches_the_container_as_a_secret_key_ref_never_as_a_value() {
        let mut f = function(ContainerMode::Http, Some(8000));
        f.spec.env = serde_json::from_value(serde_json::json!([
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "DB_PASSWORD",
             "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        ]))
        .expect("env");
        let w = workload(&f, &ClusterDefaults::default()).expect("workload");
        let env = pod(&w).containers[0].env.clone().expect("env");
        let plain = env.iter().find(|e| e.name == "LOG_LEVEL").expect("plain");
        assert_eq!(plain.value.as_deref(), Some("info"));
        let secret = env
            .iter()
            .find(|e| e.name == "DB_PASSWORD")
            .expect("secret");
        assert_eq!(secret.value, None);
        let selector = secret
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .expect("a secretKeyRef");
        assert_eq!(
            (selector.name.as_str(), selector.key.as_str()),
            ("db", "password")
        );
        assert_eq!(
            selector.optional,
            Some(false),
            "a missing Secret keeps the pod from starting"
        );
    }

    #[test]
    fn wasm_functions_have_no_workload_of_their_own() {
        let f = Function::new("hello", FunctionSpec::default());
        assert!(workload(&f, &ClusterDefaults::default()).is_none());
    }
}
