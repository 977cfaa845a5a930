//! A function's SQS triggers as the poller runs them: `spec.triggers.sqs[]` with defaults
//! applied and durations parsed.

use std::time::Duration;

use faas_api::Function;
use faas_api::limits::parse_duration;
use faas_api::sqs::QueueUrl;

/// Batches in flight per poller when `maxConcurrency` is absent (the cluster contract's, which
/// KEDA's target per replica is computed from).
pub const DEFAULT_MAX_CONCURRENCY: usize = faas_api::contract::SQS_DEFAULT_MAX_CONCURRENCY as usize;
/// Messages per batch when `batchSize` is absent (Lambda's default; the cluster contract's).
pub const DEFAULT_BATCH_SIZE: usize = faas_api::contract::SQS_DEFAULT_BATCH_SIZE as usize;
/// Largest event a batch may make (Lambda's synchronous payload limit): a batch window stops
/// gathering when the bodies reach it.
pub const MAX_BATCH_BYTES: usize = 6 * 1024 * 1024;

/// One trigger of one function.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerConfig {
    pub function: String,
    pub queue_url: String,
    pub queue: QueueUrl,
    pub batch_size: usize,
    pub batch_window: Duration,
    pub max_concurrency: usize,
    pub report_batch_item_failures: bool,
    pub enabled: bool,
    /// `filterCriteria`: a message matching none is deleted without a call. Empty: all pass.
    pub filters: Vec<faas_api::filter::Pattern>,
    /// The function's timeout: the longest a batch can be in flight (visibility is extended
    /// up to it).
    pub function_timeout: Duration,
    /// How long a receive waits for messages: SQS's maximum, 20 s (fewest empty receives).
    /// Not in the spec; tests shorten it to work around an SQS emulator whose long polls
    /// miss FIFO groups unlocked while they wait.
    pub long_poll: Duration,
}

impl TriggerConfig {
    /// Identifies the poller: one per (function, queue).
    pub fn key(&self) -> (String, String) {
        (self.function.clone(), self.queue_url.clone())
    }
}

/// Why an SQS trigger of a Function does not convert (only possible for a spec that skipped
/// validation): the field and the cause.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TriggerError {
    /// The path of the field, `spec.triggers.sqs[2].queueUrl`.
    pub field: String,
    pub reason: String,
}

/// The SQS triggers of `function`. Entries that do not parse (a spec that skipped validation)
/// come back as errors naming the field.
pub fn triggers_of(function: &Function) -> Vec<Result<TriggerConfig, TriggerError>> {
    let name = function.metadata.name.clone().unwrap_or_default();
    let timeout = function
        .spec
        .limits()
        .map(|l| l.timeout)
        .unwrap_or(faas_api::limits::DEFAULT_TIMEOUT);
    let Some(triggers) = &function.spec.triggers else {
        return Vec::new();
    };
    triggers
        .sqs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let error = |field: &str, reason: &dyn std::fmt::Display| TriggerError {
                field: format!("spec.triggers.sqs[{i}].{field}"),
                reason: reason.to_string(),
            };
            let queue = QueueUrl::parse(&t.queue_url).map_err(|e| error("queueUrl", &e))?;
            let batch_window = t
                .batch_window
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| error("batchWindow", &e))?
                .unwrap_or_default();
            let filters = t
                .filters()
                .map_err(|(j, e)| error(&format!("filterCriteria.filters[{j}].pattern"), &e))?;
            Ok(TriggerConfig {
                function: name.clone(),
                queue_url: t.queue_url.clone(),
                queue,
                batch_size: t
                    .batch_size
                    .map_or(DEFAULT_BATCH_SIZE, |b| b.max(1) as usize),
                batch_window,
                max_concurrency: t
                    .max_concurrency
                    .map_or(DEFAULT_MAX_CONCURRENCY, |c| c.max(1) as usize),
                report_batch_item_failures: t.report_batch_item_failures,
                enabled: t.enabled.unwrap_or(true),
                filters,
                function_timeout: timeout,
                long_poll: super::client::LONG_POLL,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_fields() {
        let f: Function = serde_yaml::from_str(
            r#"
apiVersion: faas.dev/v1alpha1
kind: Function
metadata: {name: images}
spec:
  runtime: {wasm: {source: x.wasm}}
  timeout: 2m
  triggers:
    sqs:
    - queueUrl: https://sqs.eu-west-3.amazonaws.com/123456789012/images
    - queueUrl: https://sqs.eu-west-3.amazonaws.com/123456789012/big
      batchSize: 500
      batchWindow: 5s
      maxConcurrency: 20
      reportBatchItemFailures: true
      enabled: false
    - queueUrl: nope
"#,
        )
        .expect("yaml");
        let t = triggers_of(&f);
        let first = t[0].as_ref().expect("valid");
        assert_eq!(first.function, "images");
        assert_eq!(
            (first.batch_size, first.batch_window, first.max_concurrency),
            (10, Duration::ZERO, 5)
        );
        assert!(first.enabled && !first.report_batch_item_failures);
        assert_eq!(first.function_timeout, Duration::from_secs(120));
        let second = t[1].as_ref().expect("valid");
        assert_eq!(
            (
                second.batch_size,
                second.batch_window,
                second.max_concurrency
            ),
            (500, Duration::from_secs(5), 20)
        );
        assert!(!second.enabled && second.report_batch_item_failures);
        let third = t[2].as_ref().expect_err("bad url");
        assert_eq!(third.field, "spec.triggers.sqs[2].queueUrl");
        assert!(
            third
                .to_string()
                .starts_with("spec.triggers.sqs[2].queueUrl:"),
            "{third}"
        );
    }
}
