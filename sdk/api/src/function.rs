//! The `Function` resource (`faas.dev/v1alpha1`): one object says everything about a function.
//!
//! Durations and quantities stay strings in the spec (`"30s"`, `"128Mi"`), exactly as users write
//! them, so a server-side apply round-trips without reformatting. Typed values come from the
//! accessors in [`crate::limits`], which are only called on specs that passed [`crate::validate`].

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::env::Env;

/// Desired state of a function.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "faas.dev",
    version = "v1alpha1",
    kind = "Function",
    plural = "functions",
    shortname = "fn",
    namespaced,
    status = "FunctionStatus",
    printcolumn = r#"{"name":"Runtime","type":"string","jsonPath":".status.runtime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Schedules","type":"string","jsonPath":".spec.schedules[*].cron"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionSpec {
    /// What executes the function: exactly one of `wasm` or `container`.
    pub runtime: RuntimeSpec,
    /// Wall-clock limit of one invocation (`30s`, `5m`). Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// WASM linear-memory cap, or the container memory limit (`128Mi`). Default 128Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// CPU requested per replica of a container function (`250m`, `1`); the chart's default
    /// when unset. Not a limit: functions may burst on idle CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Invocations in flight per replica; excess waits briefly, then gets 429. Default 100;
    /// in a cluster's runtime pool, as many instances at `memory` as fit a pool pod (at most
    /// 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Replica bounds (container functions; WASM functions share pool pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleSpec>,
    /// Environment variables: a map of NAME: value, or Kubernetes' list form, each entry a
    /// name with a value, or with valueFrom naming one of secretKeyRef {name, key} (a Secret
    /// of the namespace), ssmParameter {name} or secretsManager {secretId, jsonKey}.
    #[serde(default, skip_serializing_if = "Env::is_empty")]
    pub env: Env,
    /// The IAM role the function runs as (IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<IamSpec>,
    /// Outbound network policy. Without it a WASM function has no network at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
    /// Where the function's pods run (cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
    /// HTTP exposure: extra path prefix and host routes, body limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSpec>,
    /// Cron schedules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    /// Event sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<TriggersSpec>,
    /// Named, typed parameters of the function's runs (`faas run --option`, a schedule's
    /// `options`): see `faas_api::options`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<crate::options::RunOption>,
    /// Runs of other functions started when one of this function's runs ends (a schedule's
    /// own `then` instead, for its runs): `faas_api::chain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<crate::chain::Then>,
    /// A URL that starts a run, for CI systems and other tools: `POST /hooks/{name}` on the
    /// public listener, with a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
}

/// `status.webhook`: written by the controller from the token's Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStatus {
    /// `faas_api::webhook::token_digest` of the token under the platform's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_digest: Option<String>,
    /// Why the webhook cannot be used (the Secret is missing, the token too short).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `spec.webhook`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSpec {
    /// Default true: `false` turns the URL off and keeps the settings.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Where the token is, as a `spec.env` entry's `valueFrom`: a Secret's key (locally the
    /// file `<name>/<key>` of `faas up --secrets DIR`), an SSM parameter or a Secrets Manager
    /// secret. At least 16 characters. Shown as `Authorization: Bearer <token>` (or
    /// `X-Gitlab-Token`), or as GitHub's `X-Hub-Signature-256` HMAC of the body.
    pub token_secret: crate::EnvSource,
    /// One of the function's schedules, whose settings the runs take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Option values read from the request's JSON body: option name to JSON pointer
    /// (`/ref`). Without it, the body's `options` object (when it has one) gives them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options_from_body: BTreeMap<String, String>,
}

/// Exactly one of `wasm` or `container` must be set (checked by validation, not by the type, so
/// that the CRD schema stays structural and the error can name the field).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<WasmRuntime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRuntime>,
}

/// A WebAssembly artifact: a `wasi:http/proxy` component, or a WASI preview1 command module
/// served CGI-style. The kind is detected from the bytes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WasmRuntime {
    /// `oci://registry/repo:tag`, `file:///abs/path.wasm`, or a path relative to the manifest.
    pub source: String,
    /// Expected sha256 of the artifact (hex). When set, a mismatch refuses the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// How to build the artifact before serving it (local mode and `faas deploy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
    /// Host directories granted to the guest. No filesystem at all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirGrant>,
}

/// A build step producing the artifact.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildSpec {
    /// `cargo build --release --target <target> [-p <package>]` in `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cargo: Option<CargoBuild>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CargoBuild {
    /// Directory to run cargo in, relative to the manifest. Default: the manifest's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Package to build (`-p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Rust target. Default `wasm32-wasip2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A host directory preopened for the guest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirGrant {
    /// Directory on the host (relative to the manifest in local mode).
    pub host_path: String,
    /// Path the guest sees.
    pub guest_path: String,
    #[serde(default)]
    pub read_only: bool,
}

/// A container function: `image` in a cluster; `command` + `args` + `workingDir` run on this
/// machine in local mode (the stand-in for the image's entrypoint).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerRuntime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub mode: ContainerMode,
    /// `http` mode: a path answered 200-399 once the server can serve (`/healthz`). Without
    /// it, accepting a TCP connection counts as ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_path: Option<String>,
    /// `lambda` mode: invocations one handler process serves at once (Lambda Managed
    /// Instances' `AWS_LAMBDA_MAX_CONCURRENCY`, for runtime clients that support it). Default
    /// 1: a process per invocation in flight, as classic Lambda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_process_concurrency: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContainerMode {
    #[default]
    Http,
    Cgi,
    Lambda,
    /// Runs to completion once per run, without HTTP: exit code 0 is success; stdout and
    /// stderr are the run's log, its options `FAAS_OPTION_<NAME>` variables, its payload on
    /// stdin. A Kubernetes Job per run in a cluster, a child process per run locally.
    Job,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleSpec {
    #[serde(default)]
    pub min: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// With `min: 0`: how long without requests before the gateway takes the function back
    /// to zero replicas (default 10m, at least 30s). A duration: `90s`, `15m`, `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_after: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamSpec {
    /// `arn:aws:iam::<account>:role/<name>`, set on the function's ServiceAccount.
    pub role_arn: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    /// `scheme://host[:port]`; host may be `*.domain`. The instance metadata endpoints are
    /// denied whatever this says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementSpec {
    #[serde(default)]
    pub capacity: Capacity,
    /// Shared WASM pool to run in (cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Node group override (cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_group: Option<String>,
    /// Tolerations added to the functions node group's (cluster mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<TolerationSpec>,
    /// Node labels required on top of the functions node group's (cluster mode).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Security groups for pods (cluster mode): the pods get the label
    /// `faas.dev/security-group: <name>`, which a `SecurityGroupPolicy` made by the platform
    /// team selects. Such pods are scarce on a node (a branch ENI each): ask only when the
    /// function must reach something guarded by a security group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group: Option<String>,
}

/// A toleration, as in a pod spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TolerationSpec {
    pub key: String,
    /// `Equal` (default) or `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; all three when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Capacity {
    #[default]
    Spot,
    OnDemand,
    Any,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSpec {
    /// Extra path prefix routed to the function (besides `/function/{name}`). In a cluster
    /// the oldest Function claiming it (or a prefix around it, from another namespace) gets
    /// it; the others get a `RouteConflict` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Host names routed to the function. In a cluster: first come, first served; never the
    /// platform's own host; `*.` wildcards only under the suffixes the platform allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Reachable through the shared ALB (cluster mode). Default true. `false`: only
    /// in-cluster callers (the gateway's admin port), cron, SQS and async calls reach it, and
    /// it has no `status.url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Largest request body accepted (`6Mi` default, like Lambda); larger gets 413.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<String>,
}

/// One cron schedule (see `faas_api::cron` for what the expression means and `faas_schedule`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    /// IANA time zone, default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetrySpec>,
    /// Per-run timeout; default the function's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Sent as the request body (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_json")]
    pub payload: Option<serde_json::Value>,
    #[serde(default)]
    pub suspend: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistorySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,
    /// What to do about fire times missed while no scheduler ran: `latest` (default) runs
    /// the latest one, `all` runs each, oldest first and one at a time (at most 100), `none`
    /// runs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUpPolicy>,
    /// Values of the function's `spec.options` for this schedule's runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::any_json_map")]
    pub options: BTreeMap<String, serde_json::Value>,
    /// Runs started when one of this schedule's runs ends, instead of the function's `then`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<crate::chain::Then>,
}

/// `schedules[].catchUp`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CatchUpPolicy {
    None,
    #[default]
    Latest,
    All,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConcurrencyPolicy {
    #[default]
    Allow,
    Forbid,
    Replace,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySpec {
    #[serde(default)]
    pub limit: u32,
    /// First backoff; doubles each attempt, with jitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistorySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u32>,
    /// Finished runs older than this (`30d`, `12h`) are deleted with their logs, whatever
    /// the counts, when the schedule next records a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_for: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifySpec {
    /// Where to POST; or `urlFrom`, for a URL that is itself a secret (a Slack webhook).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The URL from a secret, as a `spec.env` entry's `valueFrom` (in a cluster: a
    /// `secretKeyRef` of the Function's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_from: Option<crate::EnvSource>,
    /// After a run that succeeded. Default false.
    #[serde(default)]
    pub on_success: bool,
    /// After a run that did not succeed. Default true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub on_failure: bool,
    /// When a run starts. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_start: bool,
    /// When a scheduled run starts later than this after its time (`5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_late: Option<String>,
    /// `json` (default: the run's summary) or `slack` (an incoming webhook's `{"text"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<NotifyFormat>,
    /// A JSON template of the body instead: `{{runId}}`, `{{phase}}`... (`faas_api::notify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// `notify.format`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    #[default]
    Json,
    Slack,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for NotifySpec {
    fn default() -> Self {
        NotifySpec {
            url: String::new(),
            url_from: None,
            on_success: false,
            on_failure: true,
            on_start: false,
            on_late: None,
            format: None,
            body: None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggersSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sqs: Vec<SqsTrigger>,
}

/// An SQS event source: Lambda's event-source-mapping semantics (see `faas_sqs`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SqsTrigger {
    pub queue_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub report_batch_item_failures: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Which messages reach the function (Lambda's `FilterCriteria`): the rest are deleted
    /// without a call. Absent: every message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_criteria: Option<FilterCriteria>,
}

/// Lambda's `FilterCriteria` of an event source: a message is delivered when any filter's
/// pattern matches its record (see [`crate::filter`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterCriteria {
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
}

/// One filter: its pattern, a JSON object written as a string, as Lambda takes it
/// (`'{"body": {"type": ["order"]}}'`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterSpec {
    pub pattern: String,
}

impl FunctionSpec {
    /// `spec.runtime.container.mode: job`: runs to completion once per run and answers no
    /// call (`faas_api::contract::JOB_NOT_CALLABLE`).
    pub fn is_job(&self) -> bool {
        self.runtime
            .container
            .as_ref()
            .is_some_and(|c| c.mode == ContainerMode::Job)
    }

    /// `spec.triggers.sqs`, empty when there are no triggers.
    pub fn sqs_triggers(&self) -> &[SqsTrigger] {
        self.triggers.as_ref().map_or(&[][..], |t| &t.sqs[..])
    }
}

impl SqsTrigger {
    /// The compiled filter patterns, or the index and error of the first that does not compile.
    pub fn filters(
        &self,
    ) -> Result<Vec<crate::filter::Pattern>, (usize, crate::filter::PatternError)> {
        self.filter_criteria
            .iter()
            .flat_map(|c| &c.filters)
            .enumerate()
            .map(|(i, f)| crate::filter::Pattern::parse(&f.pattern).map_err(|e| (i, e)))
            .collect()
    }
}

/// Observed state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Last scheduled time per schedule name (RFC 3339). Written by the cluster scheduler
    /// (field manager `faas-scheduler`), not by the reconciler.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_schedules: BTreeMap<String, String>,
    /// The timing (expression and zone) each `lastSchedules` time was computed with: a
    /// changed timing starts again from now instead of catching up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schedule_timings: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// What runs it: `wasm`, `container-http`, `container-cgi` or `lambda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Pods that run the function (its Deployment's, or its pool's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Of those, the ready ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The runtime pool of a WASM function (`pool-<name>` objects in its namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Per pool pod (by pod name): whether it loaded this function. Each pod writes its own
    /// entry (field manager `faas-pool-<pod>`); the controller drops entries of pods that no
    /// longer exist.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub load_state: BTreeMap<String, PodLoadState>,
    /// A cluster's webhook (`spec.webhook`): the token's keyed digest the gateway checks
    /// calls against, or why there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookStatus>,
}

/// One pool pod's view of one function.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodLoadState {
    /// It serves the function's current spec.
    pub loaded: bool,
    /// The `metadata.generation` it loaded (or failed to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// sha256 of the artifact it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why it could not load it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Loaded, but it serves without something it should have (its role's credentials, a
    /// secret): the pod reports again when this changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<PodDegradation>,
}

/// Why a pool pod serves a function, but not as it should.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodDegradation {
    /// `IdentityUnavailable` or `SecretUnavailable`.
    pub reason: String,
    /// What a user reads: which role or secret, and why (never a value).
    pub message: String,
}

/// A status condition, shaped like the Kubernetes one (`Ready`, `Loaded`, ...).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}
