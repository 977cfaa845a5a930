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
