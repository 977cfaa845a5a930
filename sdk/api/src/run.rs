//! The `FunctionRun` resource: one cron, manual or retried run of a function.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Label on a `FunctionRun` that someone created to ask for a run (`faas run` against a
/// cluster): the leading controller runs it under that name and removes the label.
pub const REQUESTED_LABEL: &str = "faas.dev/requested";
/// Annotation of a requested run carrying its payload (base64), when it has one.
pub const PAYLOAD_ANNOTATION: &str = "faas.dev/payload";
/// Annotation of a requested run carrying the options given for it: a JSON object of option
/// names to values, resolved by the controller against the Function's `spec.options`.
pub const OPTIONS_ANNOTATION: &str = "faas.dev/options";
/// Largest payload a requested run may carry in its annotation (annotations share 256 KiB).
pub const MAX_REQUESTED_PAYLOAD: usize = 128 * 1024;

/// What started a run.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "faas.dev",
    version = "v1alpha1",
    kind = "FunctionRun",
    plural = "functionruns",
    shortname = "fnrun",
    namespaced,
    status = "FunctionRunStatus",
    printcolumn = r#"{"name":"Function","type":"string","jsonPath":".spec.function"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionRunSpec {
    pub function: String,
    /// Schedule name, or `manual`.
    pub schedule: String,
    /// `cron`, `manual`, `retry`.
    pub trigger: String,
    /// RFC 3339 time the run was due (scheduled runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<String>,
    #[serde(default = "one")]
    pub attempt: u32,
    /// The run's options as resolved (`faas_api::options`), secrets redacted.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::any_json_map")]
    pub options: std::collections::BTreeMap<String, serde_json::Value>,
    /// The run whose `then` started this one (`trigger: chain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run: Option<String>,
    /// How many chained runs lead to this one (`faas_api::chain::MAX_DEPTH` at most).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chain_depth: u32,
}

/// A run to ask a cluster's leading controller for (`faas run`, a chained run): what
/// [`requested_run`] makes.
#[derive(Clone, Debug)]
pub struct RunRequest<'a> {
    /// The run's id (`faas_schedule::plan::manual_run_id`).
    pub id: &'a str,
    pub function: &'a str,
    /// A schedule's name, or `manual`.
    pub schedule: &'a str,
    /// The option values given (the controller resolves them again).
    pub given: &'a std::collections::BTreeMap<String, serde_json::Value>,
    /// The same, resolved and redacted, for the record.
    pub shown: std::collections::BTreeMap<String, serde_json::Value>,
    pub payload: Option<&'a [u8]>,
    /// The run whose `then` asks for it.
    pub parent: Option<&'a crate::chain::Parent>,
    /// `manual` (a person), `webhook`; a request with a parent is always `chain`.
    pub trigger: &'a str,
}

/// The `FunctionRun` that asks for `request`: labelled [`REQUESTED_LABEL`] (the leading
/// controller runs it under its name and removes the label), its options and payload in
/// annotations ([`OPTIONS_ANNOTATION`], [`PAYLOAD_ANNOTATION`]). Fails on a payload larger
/// than [`MAX_REQUESTED_PAYLOAD`], saying so.
pub fn requested_run(request: RunRequest<'_>) -> Result<FunctionRun, String> {
    use crate::contract::{FUNCTION_LABEL, SCHEDULE_LABEL};
    use base64::Engine as _;
    let mut annotations = std::collections::BTreeMap::new();
    if !request.given.is_empty() {
        let given = serde_json::to_string(request.given).map_err(|e| e.to_string())?;
        annotations.insert(OPTIONS_ANNOTATION.to_owned(), given);
    }
    if let Some(payload) = request.payload {
        if payload.len() > MAX_REQUESTED_PAYLOAD {
            return Err(format!(
                "the payload is {} KiB; a run requested through the cluster carries at most {} KiB",
                payload.len().div_ceil(1024),
                MAX_REQUESTED_PAYLOAD / 1024
            ));
        }
        annotations.insert(
            PAYLOAD_ANNOTATION.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(payload),
        );
    }
    let trigger = match request.parent {
        Some(_) => crate::chain::TRIGGER,
        None => request.trigger,
    };
    let mut run = FunctionRun::new(
        request.id,
        FunctionRunSpec {
            function: request.function.to_owned(),
            schedule: request.schedule.to_owned(),
            trigger: trigger.to_owned(),
            scheduled_time: None,
            attempt: 1,
            options: request.shown,
            parent_run: request.parent.map(|p| p.run.clone()),
            chain_depth: request.parent.map_or(0, |p| p.depth),
        },
    );
    run.metadata.labels = Some(
        [
            (REQUESTED_LABEL.to_owned(), "true".to_owned()),
            (FUNCTION_LABEL.to_owned(), request.function.to_owned()),
            (SCHEDULE_LABEL.to_owned(), request.schedule.to_owned()),
        ]
        .into(),
    );
    run.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Ok(run)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn one() -> u32 {
    1
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RunPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Interrupted,
    Skipped,
}

impl RunPhase {
    /// The name as serialized (`Succeeded`, `TimedOut`...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Pending => "Pending",
            RunPhase::Running => "Running",
            RunPhase::Succeeded => "Succeeded",
            RunPhase::Failed => "Failed",
            RunPhase::TimedOut => "TimedOut",
            RunPhase::Interrupted => "Interrupted",
            RunPhase::Skipped => "Skipped",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionRunStatus {
    #[serde(default)]
    pub phase: RunPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// A `mode: job` run's exit code (absent when a signal ended it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Response body, bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Last lines of the function's log, bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the run's whole log is kept, when not by the platform that ran it (a cluster:
    /// `s3://bucket/prefix/namespace/run/`, an object per attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_location: Option<String>,
    /// The runs this run's `then` started (`faas_api::chain`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_runs: Vec<String>,
}

/// Run records newest first, the one order every history shows: by creation, then by name
/// (a run id ends with its time).
pub fn newest_first(runs: &mut [FunctionRun]) {
    runs.sort_by(|a, b| {
        let created = |r: &FunctionRun| r.metadata.creation_timestamp.clone().map(|t| t.0);
        let name = |r: &FunctionRun| r.metadata.name.clone().unwrap_or_default();
        created(b)
            .cmp(&created(a))
            .then_with(|| name(b).cmp(&name(a)))
    });
}
