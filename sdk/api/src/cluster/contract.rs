//! The cluster contract: what the controller, the gateway, the pool pods, the runtime sidecar
//! and the CLI must agree on, in one place so that they cannot drift apart: the names of the
//! objects a Function gets, the labels and annotations on them, the `x-faas-*` headers event
//! sources set, SQS defaults, the platform's reserved paths, and [`placement`]: where a
//! Function is served in a cluster, or why it is not.
//!
//! Pure, like [`crate::scaling`] (who owns `replicas`): every part links this module rather
//! than spelling a name or deciding a placement itself, and each decision is tested branch
//! by branch here.

use std::fmt;

use crate::{ContainerMode, Function, SqsTrigger};

// ---------------------------------------------------------------------------------------
// Object names
// ---------------------------------------------------------------------------------------

/// The body of an error the platform answers itself (not the function): `{"error":
/// message, "reason": reason, "status": code}`, on every host.
pub fn error_body(status: u16, reason: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": message, "reason": reason, "status": status })
}

/// `(reason, message)` of a platform error body ([`error_body`]), `None` for anything else (a
/// function's own answer, even one with an `error` field).
pub fn read_error_body(body: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let object = value.as_object()?;
    if object.len() != 3 || !object.get("status")?.is_u64() {
        return None;
    }
    Some((
        object.get("reason")?.as_str()?.to_owned(),
        object.get("error")?.as_str()?.to_owned(),
    ))
}

/// The name of every object of a container function (ServiceAccount, Deployment, Service,
/// PodDisruptionBudget, NetworkPolicy, KEDA objects): `fn-<name>`. A WASM function gets its
/// ServiceAccount by this name too: the identity its pool exchanges for its IAM role.
pub fn function_object(function: &str) -> String {
    format!("fn-{function}")
}

/// The ConfigMap holding a WASM function's module when no registry is used: `fn-<name>-wasm`.
pub fn wasm_config_map(function: &str) -> String {
    format!("fn-{function}-wasm")
}

/// The name of every object of a WASM runtime pool (ServiceAccount, Deployment, Service,
/// RoleBinding, PodDisruptionBudget, NetworkPolicy): `pool-<pool>`.
pub fn pool_object(pool: &str) -> String {
    format!("pool-{pool}")
}

/// The pool's Role (and its RoleBinding) that lets its pods request ServiceAccount tokens of
/// its member functions that have an IAM role and read the Secrets its members name, and
/// nothing of anyone else: `pool-<pool>-members`.
pub fn pool_member_access_object(pool: &str) -> String {
    format!("pool-{pool}-members")
}

/// The audience of the ServiceAccount tokens a function's identity is proven with: what
/// IRSA's tokens carry and the cluster's OIDC provider in IAM expects.
pub const TOKEN_AUDIENCE: &str = "sts.amazonaws.com";

/// The name of a pool pod's container (what `kubectl logs -c` and the pods/log API name).
pub const POOL_CONTAINER: &str = "faas-runtime";
/// The name of a container function's own container in its pod (beside the sidecar, when it
/// has one): where its output is read for a run's log tail.
pub const FUNCTION_CONTAINER: &str = "function";

/// The namespace's Role that pool pods are bound to (read Functions and ConfigMaps, report
/// load states).
pub const POOL_ROLE: &str = "faas-pool";

/// The controller: its field manager, and the value of [`MANAGED_BY_LABEL`] on what it makes.
pub const CONTROLLER: &str = "faas-controller";
/// Field manager of everything the cron scheduler writes (run records, schedule cursors).
pub const SCHEDULER_MANAGER: &str = "faas-scheduler";
/// The gateway: its field manager (scale from and to zero, activity Leases).
pub const GATEWAY: &str = "faas-gateway";
/// The name of the controller's leader-election Lease (in the release namespace).
pub const CONTROLLER_LEASE: &str = CONTROLLER;

/// Field manager of pool pod `pod`'s report in a Function's `status.loadState`: each pod owns
/// its own entry, and the reconciler never applies that field.
pub fn pool_pod_manager(pod: &str) -> String {
    format!("faas-pool-{pod}")
}
/// The controller's finalizer on Functions.
pub const FINALIZER: &str = "faas.dev/cleanup";

// ---------------------------------------------------------------------------------------
// Labels and annotations
// ---------------------------------------------------------------------------------------

/// `app.kubernetes.io/name`: the object's name (`fn-<name>`, `pool-<pool>`).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/managed-by`: [`CONTROLLER`] on what the controller made; an object
/// without it (and without a Function owner) is never taken over.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/component`: [`POOL_COMPONENT`] on a pool's objects.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// The component of a WASM runtime pool's objects.
pub const POOL_COMPONENT: &str = "runtime-pool";
/// The function a pod, object or run belongs to; the selector of a function's pods.
pub const FUNCTION_LABEL: &str = "faas.dev/function";
/// The schedule a run belongs to (or `manual`).
pub const SCHEDULE_LABEL: &str = "faas.dev/schedule";
/// The namespace of the function a gateway activity Lease is about (the Lease lives in the
/// gateway's namespace).
pub const NAMESPACE_LABEL: &str = "faas.dev/namespace";
pub use crate::pool::POOL_LABEL;
pub use crate::run::{PAYLOAD_ANNOTATION, REQUESTED_LABEL};

/// IRSA: the IAM role the EKS pod identity webhook injects credentials for.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// IRSA: use the regional STS endpoint (lower latency, no dependency on us-east-1).
pub const REGIONAL_STS_ANNOTATION: &str = "eks.amazonaws.com/sts-regional-endpoints";

// ---------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------

/// What started an invocation: [`TRIGGER_SQS`], [`TRIGGER_CRON`], `manual`, `retry`. The
/// Lambda sidecar shapes its event from it.
pub const TRIGGER_HEADER: &str = "x-faas-trigger";
/// The value of [`TRIGGER_HEADER`] on SQS batches.
pub const TRIGGER_SQS: &str = "sqs";
/// The value of [`TRIGGER_HEADER`] on scheduled runs.
pub const TRIGGER_CRON: &str = "cron";
/// [`TRIGGER_HEADER`] of a Lambda Invoke API call: the payload is the event, passed as is,
/// and the result is the answer (no HTTP translation for a Lambda handler).
pub const TRIGGER_INVOKE: &str = "invoke";
/// The AWS account in the ARNs the platform makes up for a function (a Lambda handler's
/// `invoked_function_arn`, the Invoke API's messages): no AWS account owns a function here.
pub const LOCAL_ACCOUNT: &str = "000000000000";
/// The run a cron or manual invocation belongs to.
pub const RUN_ID_HEADER: &str = "x-faas-run-id";
/// The schedule of a run (or `manual`).
pub const SCHEDULE_HEADER: &str = "x-faas-schedule";
/// When a scheduled run was due (RFC 3339).
pub const SCHEDULED_TIME_HEADER: &str = "x-faas-scheduled-time";
/// The attempt number of a run or an async call (1 for the first).
pub const ATTEMPT_HEADER: &str = "x-faas-attempt";
/// How many attempts an async call made (on its dead letter / callback).
pub const ATTEMPTS_HEADER: &str = "x-faas-attempts";
/// A run's options (`faas_api::options::Resolved::header_value`): a JSON object in ASCII.
pub const OPTIONS_HEADER: &str = "x-faas-options";
/// On a `mode: job` run's answer: the process's exit code.
pub const EXIT_CODE_HEADER: &str = "x-faas-exit-code";
/// On a `mode: job` run's answer: the signal that ended the process.
pub const EXIT_SIGNAL_HEADER: &str = "x-faas-exit-signal";
/// On a run's answer: the run was interrupted (its pod disrupted), and why; the scheduler
/// records it `Interrupted` and its retries decide.
pub const INTERRUPTED_HEADER: &str = "x-faas-interrupted";
/// Set (`true`) on invocations of an async call.
pub const ASYNC_HEADER: &str = "x-faas-async";
/// Carried by every state-changing management request (`X-Faas-Request: 1`): the CLI and
/// the dashboard's script send it, an HTML form cannot.
pub const REQUEST_HEADER: &str = "x-faas-request";

/// A run's own timeout (a schedule's `timeout`), in milliseconds: the call's deadline instead
/// of the function's, set by the platform's callers and passed on by the gateway to the pod.
pub const TIMEOUT_HEADER: &str = "x-faas-timeout-ms";
/// The platform's own callers (the controller's cron) prove themselves to the gateway's admin
/// listener with the platform token (a Secret the chart makes, [`PLATFORM_TOKEN_ENV`] in the
/// gateway and the controller): only then are their platform headers believed.
pub const PLATFORM_TOKEN_HEADER: &str = "x-faas-platform-token";
/// The environment variable that holds the platform token.
pub const PLATFORM_TOKEN_ENV: &str = "FAAS_PLATFORM_TOKEN";
/// On the answer to a platform caller's run ([`RUN_ID_HEADER`]) from a pod that runs the
/// function itself (a pool): the last lines the guest printed, [`encode_log_tail`]d, for the
/// run record. The controller's runs go through the gateway, so this is how their tail comes
/// back from the pod.
pub const LOG_TAIL_HEADER: &str = "x-faas-log-tail";
/// Header of a run's answer naming where its whole log is kept (a cluster's job runs:
/// `s3://bucket/prefix/namespace/run/`, one object per attempt), recorded as the run's
/// `status.logLocation`.
pub const LOG_LOCATION_HEADER: &str = "x-faas-log-location";
/// On the answer to a platform caller's run ([`RUN_ID_HEADER`]) from a container function's
/// own pod: the name of the pod that answered (from its EndpointSlice), set by the gateway,
/// so the controller reads the run's log tail from that pod's log (`pods/log`, container
/// [`FUNCTION_CONTAINER`]). A function's own answer never carries it: the gateway removes
/// every platform header from what a function's own server sends.
pub const POD_HEADER: &str = "x-faas-pod";
/// The most of a tail [`LOG_TAIL_HEADER`] carries, in bytes before encoding (its end).
pub const MAX_LOG_TAIL_BYTES: usize = 4096;

/// [`LOG_TAIL_HEADER`]'s value for `tail`: its last [`MAX_LOG_TAIL_BYTES`] (from a character
/// boundary), base64 (a header value cannot hold line breaks).
pub fn encode_log_tail(tail: &str) -> String {
    use base64::Engine as _;
    let mut start = tail.len().saturating_sub(MAX_LOG_TAIL_BYTES);
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    base64::engine::general_purpose::STANDARD.encode(&tail[start..])
}

/// [`LOG_TAIL_HEADER`]'s value read back; `None` for anything [`encode_log_tail`] does not
/// write (too long, not base64, not UTF-8).
pub fn decode_log_tail(value: &str) -> Option<String> {
    use base64::Engine as _;
    if value.len() > MAX_LOG_TAIL_BYTES.div_ceil(3) * 4 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Longest timeout [`TIMEOUT_HEADER`] may ask for.
pub const MAX_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The value of [`TIMEOUT_HEADER`] for `timeout`.
pub fn call_timeout_value(timeout: std::time::Duration) -> String {
    timeout.as_millis().to_string()
}

/// [`TIMEOUT_HEADER`]'s value read back: whole milliseconds, at least 1, at most
/// [`MAX_CALL_TIMEOUT`]; anything else is ignored (the function's own timeout applies).
pub fn parse_call_timeout(value: &str) -> Option<std::time::Duration> {
    let millis: u64 = value.trim().parse().ok()?;
    let timeout = std::time::Duration::from_millis(millis);
    (millis > 0 && timeout <= MAX_CALL_TIMEOUT).then_some(timeout)
}

/// What every header above starts with. They are the platform's word (this batch came from
/// SQS, this run from a schedule, this is attempt 3), so where requests enter from outside the
/// platform (the gateway's public listener) a client's own are removed: no internet caller can
/// pose as a trigger to a handler that trusts its event's shape.
pub const PLATFORM_HEADER_PREFIX: &str = "x-faas-";

/// Whether `name` (lower case, as `http::HeaderName` keeps it) is one of the platform's headers.
pub fn is_platform_header(name: &str) -> bool {
    name.starts_with(PLATFORM_HEADER_PREFIX)
}

// ---------------------------------------------------------------------------------------
// SQS
// ---------------------------------------------------------------------------------------

/// Messages per batch when `batchSize` is absent (Lambda's default).
pub const SQS_DEFAULT_BATCH_SIZE: u32 = 10;
/// Batches in flight per poller when `maxConcurrency` is absent: where Lambda starts an
/// event source mapping before it scales up.
pub const SQS_DEFAULT_MAX_CONCURRENCY: u32 = 5;

/// Messages one replica's poller takes at once (batch size x concurrent batches, at least
/// one): what KEDA aims for per replica.
pub fn sqs_messages_per_replica(trigger: &SqsTrigger) -> u32 {
    let batch = trigger.batch_size.unwrap_or(SQS_DEFAULT_BATCH_SIZE);
    let concurrency = trigger
        .max_concurrency
        .unwrap_or(SQS_DEFAULT_MAX_CONCURRENCY);
    batch.saturating_mul(concurrency).max(1)
}

// ---------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------

pub use crate::routing::RESERVED_PATHS;

/// `/function/<name>`: where a function is called on the gateway, and on what serves it when
/// that routes by function (pool pods, the Lambda sidecar).
pub fn function_path(function: &str) -> String {
    format!("/function/{function}")
}

// ---------------------------------------------------------------------------------------
// Placement
// ---------------------------------------------------------------------------------------

/// What runs a Function in a cluster, decided from its spec alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// A WASM function: loaded by the pods of a shared runtime pool.
    Pool,
    /// A container function: its own Deployment (`fn-<name>`), serving HTTP directly.
    Http,
    /// A Lambda handler: its own Deployment, behind the `faas-runtime` sidecar, which routes
    /// by function like a pool.
    Lambda,
    /// `mode: job`: no Deployment and no Service; a Kubernetes Job per run, which the
    /// scheduler creates.
    Job,
}

impl Workload {
    /// Whether the pod enforces a call's deadline itself (answering 504): the platform's
    /// router runs in front of the function (a pool, the Lambda sidecar). A plain HTTP
    /// container's Service points at the function's own port, so only the gateway can cut a
    /// call at `spec.timeout` (or a run's timeout).
    pub fn enforces_deadline_in_pod(self) -> bool {
        match self {
            // A Job's `activeDeadlineSeconds` is the run's timeout.
            Workload::Pool | Workload::Lambda | Workload::Job => true,
            Workload::Http => false,
        }
    }
}

/// Where a Function's requests go in a cluster: a Service, and the path prefix put before
/// the request's own path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Upstream {
    /// Namespace of the Service (the Function's).
    pub namespace: String,
    /// `fn-<name>` or `pool-<pool>`.
    pub service: String,
    /// `""` for an HTTP container; `/function/<name>` for what routes by function.
    pub path_prefix: String,
}

impl Upstream {
    /// `http://<service>.<namespace>.<domain><prefix><path>`: the in-cluster URL of `path`
    /// (`domain` is `svc.cluster.local` or `svc`).
    pub fn url(&self, domain: &str, path: &str) -> String {
        format!(
            "http://{}.{}.{domain}{}{path}",
            self.service, self.namespace, self.path_prefix
        )
    }
}

/// Why a Function is not served in a cluster (now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The spec does not validate: the problems, each naming its field.
    InvalidSpec(String),
    /// The cluster profile refuses it ([`crate::validate_for_cluster`]'s static rules).
    NotAllowedInCluster(String),
    /// A container function without an image (`command` is local mode only).
    NoImage,
    /// `mode: cgi`, which starts a process per request: local mode only.
    CgiNotSupportedInCluster,
    /// A WASM function the controller has not placed in a pool (yet, or because the pool it
    /// names has another placement): `status.pool` is unset.
    NotPlaced,
    /// `mode: job`: nothing serves requests; runs are Jobs.
    JobNotCallable,
}

impl Reason {
    /// The condition reason / error code (`NoImage`, `CgiNotSupportedInCluster`...).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::InvalidSpec(_) => "InvalidSpec",
            Reason::NotAllowedInCluster(_) => "NotAllowedInCluster",
            Reason::NoImage => "NoImage",
            Reason::CgiNotSupportedInCluster => "CgiNotSupportedInCluster",
            Reason::NotPlaced => "NotPlaced",
            Reason::JobNotCallable => "JobNotCallable",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::InvalidSpec(why) | Reason::NotAllowedInCluster(why) => f.write_str(why),
            Reason::NoImage => f.write_str(
                "spec.runtime.container.image is required in a cluster (command and args are \
                 local mode's stand-in for the image's entrypoint)",
            ),
            Reason::CgiNotSupportedInCluster => f.write_str(
                "spec.runtime.container.mode: cgi starts a process per request, which only \
                 local mode can do; use http or lambda in a cluster (or job for a script that \
                 runs to completion)",
            ),
            Reason::NotPlaced => {
                f.write_str("waiting for the controller to place it in a runtime pool")
            }
            Reason::JobNotCallable => f.write_str(JOB_NOT_CALLABLE),
        }
    }
}

impl std::error::Error for Reason {}

/// Why a `mode: job` function answers no request, in every host.
pub const JOB_NOT_CALLABLE: &str = "a job (spec.runtime.container.mode: job) runs to completion \
     once per run and answers no HTTP request: start a run with `faas run`, the runs API or a \
     schedule";

/// What runs `function` in a cluster, or why nothing can: from the spec alone (the
/// controller renders from this; [`placement`] adds where the controller put it).
pub fn workload(function: &Function) -> Result<Workload, Reason> {
    crate::validate(function).map_err(|e| Reason::InvalidSpec(e.to_string()))?;
    crate::validate_for_cluster(function, None)
        .map_err(|e| Reason::NotAllowedInCluster(e.to_string()))?;
    let Some(container) = &function.spec.runtime.container else {
        // Validation guarantees exactly one runtime.
        return Ok(Workload::Pool);
    };
    let workload = match container.mode {
        ContainerMode::Http => Workload::Http,
        ContainerMode::Lambda => Workload::Lambda,
        ContainerMode::Job => Workload::Job,
        // Whatever the image: no cluster part starts a process per request.
        ContainerMode::Cgi => return Err(Reason::CgiNotSupportedInCluster),
    };
    if container.image.is_none() {
        return Err(Reason::NoImage);
    }
    Ok(workload)
}

/// Where `function`'s requests go in a cluster, or why they cannot go anywhere: the one
/// decision the gateway (HTTP, async calls) and the controller's cron (scheduled and manual
/// runs) both follow.
///
/// A WASM function goes to the pool the controller placed it in (`status.pool`), never to a
/// pool its labels name: a label the Function's author could set would route its traffic to
/// another pool's pods (and identity).
pub fn placement(function: &Function) -> Result<Upstream, Reason> {
    let workload = workload(function)?;
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let namespace = function
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let (service, path_prefix) = match workload {
        Workload::Pool => {
            let pool = function
                .status
                .as_ref()
                .and_then(|s| s.pool.as_deref())
                .ok_or(Reason::NotPlaced)?;
            (pool_object(pool), function_path(name))
        }
        Workload::Http => (function_object(name), String::new()),
        Workload::Lambda => (function_object(name), function_path(name)),
        Workload::Job => return Err(Reason::JobNotCallable),
    };
    Ok(Upstream {
        namespace,
        service,
        path_prefix,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_platform_error_body_is_read_back_and_a_functions_is_not() {
        let body = super::error_body(504, "Timeout", "the Job ran past its deadline").to_string();
        assert_eq!(
            super::read_error_body(&body),
            Some((
                "Timeout".to_owned(),
                "the Job ran past its deadline".to_owned()
            ))
        );
        for other in [
            r#"{"error": "x", "reason": "y"}"#,
            r#"{"error": "x", "reason": "y", "status": 500, "more": 1}"#,
            r#"{"error": "x", "reason": "y", "status": "500"}"#,
            "not json",
            "[]",
        ] {
            assert_eq!(super::read_error_body(other), None, "{other}");
        }
    }

    use super::*;
    use crate::{ContainerRuntime, DirGrant, FunctionSpec, FunctionStatus, RuntimeSpec};

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_call_timeout_is_whole_milliseconds_within_a_day() {
        let ninety = std::time::Duration::from_secs(90);
        assert_eq!(
            parse_call_timeout(&call_timeout_value(ninety)),
            Some(ninety)
        );
        assert_eq!(
            parse_call_timeout(" 1500 "),
            Some(std::time::Duration::from_millis(1500))
        );
        for bad in [
            "0",
            "-5",
            "1.5",
            "",
            "90s",
            "86400001",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_call_timeout(bad), None, "{bad:?}");
        }
        assert_eq!(parse_call_timeout("86400000"), Some(MAX_CALL_TIMEOUT));
    }

    #[test]
    fn a_log_tail_travels_as_its_last_bytes_in_base64() {
        let tail = "line 1\nligne 2 é\n";
        assert_eq!(
            decode_log_tail(&encode_log_tail(tail)).as_deref(),
            Some(tail)
        );
        // Longer: its end, cut at a character boundary (é is two bytes).
        let long = format!("{}{}", "é".repeat(MAX_LOG_TAIL_BYTES), "last line\n");
        let kept = decode_log_tail(&encode_log_tail(&long)).expect("decodes");
        assert!(kept.len() <= MAX_LOG_TAIL_BYTES && kept.ends_with("last line\n"));
        assert!(kept.starts_with('é'));
        for bad in ["not base64!", "//8=", &"A".repeat(8000)] {
            assert_eq!(decode_log_tail(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_platform_header_is_recognised_as_one() {
        for header in [
            TRIGGER_HEADER,
            RUN_ID_HEADER,
            SCHEDULE_HEADER,
            SCHEDULED_TIME_HEADER,
            ATTEMPT_HEADER,
            ATTEMPTS_HEADER,
            ASYNC_HEADER,
            REQUEST_HEADER,
            TIMEOUT_HEADER,
            PLATFORM_TOKEN_HEADER,
            LOG_TAIL_HEADER,
        ] {
            assert!(is_platform_header(header), "{header}");
        }
        for header in ["x-faa", "x-forwarded-for", "content-type", "faas-x-trigger"] {
            assert!(!is_platform_header(header), "{header}");
        }
    }

    fn function(runtime: RuntimeSpec) -> Function {
        let mut f = Function::new(
            "orders",
            FunctionSpec {
                runtime,
                ..FunctionSpec::default()
            },
        );
        f.metadata.namespace = Some("shop".into());
        f
    }

    fn container(image: Option<&str>, mode: ContainerMode) -> Function {
        function(RuntimeSpec {
            container: Some(ContainerRuntime {
                image: image.map(str::to_owned),
                command: image
                    .is_none()
                    .then(|| "python3".to_owned())
                    .into_iter()
                    .collect(),
                port: Some(8080),
                mode,
                ..ContainerRuntime::default()
            }),
            wasm: None,
        })
    }

    fn wasm(source: &str, pool: Option<&str>) -> Function {
        let mut f = function(RuntimeSpec {
            wasm: Some(crate::WasmRuntime {
                source: source.into(),
                ..crate::WasmRuntime::default()
            }),
            container: None,
        });
        f.status = pool.map(|p| FunctionStatus {
            pool: Some(p.into()),
            ..FunctionStatus::default()
        });
        f
    }

    fn upstream(service: &str, path_prefix: &str) -> Result<Upstream, Reason> {
        Ok(Upstream {
            namespace: "shop".into(),
            service: service.into(),
            path_prefix: path_prefix.into(),
        })
    }

    #[test]
    fn an_http_container_is_its_own_service_at_the_root() {
        let f = container(Some("r.example.com/orders:1"), ContainerMode::Http);
        assert_eq!(workload(&f), Ok(Workload::Http));
        // Nothing of the platform's is in front of it in its pod: the gateway cuts calls.
        assert!(!Workload::Http.enforces_deadline_in_pod());
        assert_eq!(placement(&f), upstream("fn-orders", ""));
        assert_eq!(
            placement(&f).map(|u| u.url("svc.cluster.local", "/a?b=1")),
            Ok("http://fn-orders.shop.svc.cluster.local/a?b=1".to_owned())
        );
    }

    #[test]
    fn a_lambda_handler_is_its_own_service_routed_by_function() {
        let f = container(Some("r.example.com/orders:1"), ContainerMode::Lambda);
        assert_eq!(workload(&f), Ok(Workload::Lambda));
        assert!(
            Workload::Lambda.enforces_deadline_in_pod(),
            "its sidecar does"
        );
        assert!(
            Workload::Pool.enforces_deadline_in_pod(),
            "the pool pod does"
        );
        assert_eq!(placement(&f), upstream("fn-orders", "/function/orders"));
    }

    #[test]
    fn cgi_and_imageless_containers_say_why() {
        let cgi = container(Some("r.example.com/orders:1"), ContainerMode::Cgi);
        assert_eq!(placement(&cgi), Err(Reason::CgiNotSupportedInCluster));
        assert_eq!(
            Reason::CgiNotSupportedInCluster.code(),
            "CgiNotSupportedInCluster"
        );
        let local = container(None, ContainerMode::Http);
        assert_eq!(placement(&local), Err(Reason::NoImage));
        assert!(
            Reason::NoImage
                .to_string()
                .contains("spec.runtime.container.image"),
            "names the field"
        );
    }

    #[test]
    fn a_wasm_function_goes_to_the_pool_the_controller_placed_it_in() {
        let source = format!("oci://r.example.com/fn/orders@sha256:{DIGEST}");
        assert_eq!(workload(&wasm(&source, None)), Ok(Workload::Pool));
        assert_eq!(placement(&wasm(&source, None)), Err(Reason::NotPlaced));
        assert_eq!(
            placement(&wasm(&source, Some("p0123456789"))),
            upstream("pool-p0123456789", "/function/orders")
        );
        // A label naming a pool places nothing.
        let mut labelled = wasm(&source, None);
        labelled.metadata.labels = Some([(POOL_LABEL.to_owned(), "default".to_owned())].into());
        assert_eq!(placement(&labelled), Err(Reason::NotPlaced));
    }

    #[test]
    fn what_the_cluster_refuses_or_what_does_not_validate_is_never_placed() {
        let unpinned = wasm("oci://r.example.com/fn/orders:1", Some("default"));
        let refused = placement(&unpinned).expect_err("unpinned");
        assert_eq!(refused.code(), "NotAllowedInCluster");
        assert!(refused.to_string().contains("spec.runtime.wasm.source"));
        let mut dirs = wasm("configmap://fn-orders/a.wasm", Some("default"));
        if let Some(w) = dirs.spec.runtime.wasm.as_mut() {
            w.dirs = vec![DirGrant {
                host_path: "/tmp".into(),
                guest_path: "/data".into(),
                read_only: true,
            }];
        }
        assert_eq!(
            placement(&dirs).map_err(|r| r.code()),
            Err("NotAllowedInCluster")
        );
        let mut invalid = container(Some("r.example.com/orders:1"), ContainerMode::Http);
        invalid.spec.timeout = Some("soon".into());
        let reason = placement(&invalid).expect_err("invalid");
        assert_eq!(reason.code(), "InvalidSpec");
        assert!(reason.to_string().contains("spec.timeout"), "{reason}");
    }

    #[test]
    fn a_function_without_a_namespace_is_in_default() {
        let mut f = container(Some("r.example.com/orders:1"), ContainerMode::Http);
        f.metadata.namespace = None;
        assert_eq!(placement(&f).map(|u| u.namespace), Ok("default".to_owned()));
    }

    #[test]
    fn names_and_sqs_defaults() {
        assert_eq!(function_object("orders"), "fn-orders");
        assert_eq!(pool_object("default"), "pool-default");
        assert_eq!(function_path("orders"), "/function/orders");
        let mut trigger = SqsTrigger::default();
        assert_eq!(sqs_messages_per_replica(&trigger), 50);
        trigger.batch_size = Some(2);
        trigger.max_concurrency = Some(3);
        assert_eq!(sqs_messages_per_replica(&trigger), 6);
        trigger.batch_size = Some(0);
        assert_eq!(sqs_messages_per_replica(&trigger), 1);
        assert!(RESERVED_PATHS.contains(&"/function"));
    }
}
