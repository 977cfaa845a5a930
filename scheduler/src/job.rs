//! A schedule of a function in the typed form the scheduler works with. Built from a validated
//! `Function`; the conversion still checks every field, so a spec that skipped validation can
//! never panic the scheduler.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_api::chain::Parent;
use faas_api::cron::CronSchedule;
use faas_api::limits::parse_duration;
use faas_api::options::Resolved;
use faas_api::{CatchUpPolicy, ConcurrencyPolicy, Function, NotifySpec, Schedule};
use jiff::tz::TimeZone;

use super::plan::zone_of;

/// Why a schedule does not convert into a [`Job`] (only possible for a spec that skipped
/// validation): the field, relative to the schedule, and the cause.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ScheduleError {
    /// `cron`, `timeZone`, `startingDeadline`, `retries.backoff` or `timeout`.
    pub field: &'static str,
    pub reason: String,
}

impl ScheduleError {
    pub fn new(field: &'static str, reason: impl std::fmt::Display) -> Self {
        ScheduleError {
            field,
            reason: reason.to_string(),
        }
    }
}

/// Wait before the first retry when the spec gives no `retries.backoff`.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
/// History kept by default: CronJob's `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`.
pub const DEFAULT_KEEP_SUCCEEDED: u32 = 3;
/// See [`DEFAULT_KEEP_SUCCEEDED`].
pub const DEFAULT_KEEP_FAILED: u32 = 1;
/// History kept of runs started by hand without a schedule.
pub const MANUAL_KEEP: u32 = 10;

/// Identifies a schedule: function name and schedule name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    pub function: Arc<str>,
    pub schedule: Arc<str>,
}

impl JobKey {
    pub fn new(function: &str, schedule: &str) -> Self {
        Self {
            function: function.into(),
            schedule: schedule.into(),
        }
    }
}

impl std::fmt::Display for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.function, self.schedule)
    }
}

/// How many finished runs of a schedule to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct History {
    pub succeeded: u32,
    pub failed: u32,
    /// Finished runs older than this go too.
    pub keep_for: Option<Duration>,
}

/// One schedule, ready to fire.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub key: JobKey,
    pub cron: CronSchedule,
    pub zone: TimeZone,
    pub policy: ConcurrencyPolicy,
    pub catch_up: CatchUpPolicy,
    pub starting_deadline: Option<Duration>,
    /// Retries after the first attempt.
    pub retries: u32,
    pub backoff: Duration,
    /// Per-run timeout; `None` runs under the function's own.
    pub timeout: Option<Duration>,
    /// Request body and its content type.
    pub payload: Option<(Bytes, &'static str)>,
    pub suspend: bool,
    pub history: History,
    pub notify: Option<NotifySpec>,
    /// `notify.onLate`: a scheduled run starting later than this after its time is told.
    pub late_after: Option<Duration>,
    /// The options of its runs: the schedule's values and the function's defaults, resolved.
    pub options: Resolved,
    /// The run whose `then` starts this job's run (`faas_api::chain`); `None` otherwise.
    pub parent: Option<Parent>,
    /// See [`Job::timing`]; computed once, it is compared on every fire.
    timing: String,
}

impl Job {
    /// Converts `schedule` of `function`. The error names the field.
    pub fn from_schedule(function: &str, schedule: &Schedule) -> Result<Job, ScheduleError> {
        let cron =
            CronSchedule::parse(&schedule.cron).map_err(|e| ScheduleError::new("cron", e))?;
        let zone = zone_of(schedule.time_zone.as_deref())?;
        let duration = |field: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| ScheduleError::new(field, e))
        };
        let retries = schedule.retries.as_ref();
        let history = schedule.history.as_ref();
        let timing = timing_of(&cron, &zone);
        Ok(Job {
            key: JobKey::new(function, &schedule.name),
            timing,
            cron,
            zone,
            policy: schedule.concurrency_policy,
            catch_up: schedule.catch_up.unwrap_or_default(),
            starting_deadline: duration("startingDeadline", &schedule.starting_deadline)?,
            retries: retries.map_or(0, |r| r.limit),
            backoff: duration("retries.backoff", &retries.and_then(|r| r.backoff.clone()))?
                .unwrap_or(DEFAULT_BACKOFF),
            timeout: duration("timeout", &schedule.timeout)?,
            payload: schedule.payload.as_ref().map(payload_body),
            suspend: schedule.suspend,
            history: History {
                succeeded: history
                    .and_then(|h| h.succeeded)
                    .unwrap_or(DEFAULT_KEEP_SUCCEEDED),
                failed: history
                    .and_then(|h| h.failed)
                    .unwrap_or(DEFAULT_KEEP_FAILED),
                keep_for: duration("history.keepFor", &history.and_then(|h| h.keep_for.clone()))?,
            },
            notify: schedule.notify.clone(),
            late_after: duration(
                "notify.onLate",
                &schedule.notify.as_ref().and_then(|n| n.on_late.clone()),
            )?,
            options: Resolved::default(),
            parent: None,
        })
    }

    /// [`Job::from_schedule`] with the run options the schedule gives, checked against the
    /// function's declarations (`spec.options`).
    pub fn from_function_schedule(
        function: &Function,
        schedule: &Schedule,
    ) -> Result<Job, ScheduleError> {
        let name = function.metadata.name.as_deref().unwrap_or_default();
        let mut job = Job::from_schedule(name, schedule)?;
        job.options = faas_api::options::resolve(&function.spec.options, &[&schedule.options])
            .map_err(|e| ScheduleError::new("options", e))?;
        Ok(job)
    }

    /// This job with the options of one run instead of its own.
    pub fn with_options(&self, options: Resolved) -> Job {
        Job {
            options,
            ..self.clone()
        }
    }

    /// This job for a run started by `parent`'s `then`.
    pub fn with_parent(&self, parent: Option<Parent>) -> Job {
        Job {
            parent,
            ..self.clone()
        }
    }

    /// What identifies the fire times: a change here restarts the schedule from "now" instead
    /// of catching up times computed from the old expression.
    pub fn timing(&self) -> &str {
        &self.timing
    }

    /// The schedule of runs started by hand without naming one.
    pub fn manual(function: &str) -> Job {
        // Never armed; a run needs an expression only to exist.
        let cron = CronSchedule::parse("@yearly").expect("a constant expression");
        Job {
            key: JobKey::new(function, super::plan::MANUAL),
            timing: timing_of(&cron, &TimeZone::UTC),
            cron,
            zone: TimeZone::UTC,
            policy: ConcurrencyPolicy::Allow,
            catch_up: CatchUpPolicy::Latest,
            starting_deadline: None,
            retries: 0,
            backoff: DEFAULT_BACKOFF,
            timeout: None,
            payload: None,
            suspend: true,
            history: History {
                succeeded: MANUAL_KEEP,
                failed: MANUAL_KEEP,
                keep_for: None,
            },
            notify: None,
            late_after: None,
            options: Resolved::default(),
            parent: None,
        }
    }
}

fn timing_of(cron: &CronSchedule, zone: &TimeZone) -> String {
    format!("{}|{}", cron.as_str(), zone.iana_name().unwrap_or("UTC"))
}

/// A JSON string payload is sent as the text itself; anything else as JSON.
fn payload_body(value: &serde_json::Value) -> (Bytes, &'static str) {
    match value {
        serde_json::Value::String(text) => (Bytes::from(text.clone()), "text/plain; charset=utf-8"),
        other => (Bytes::from(other.to_string()), "application/json"),
    }
}

/// Every schedule of `function`. A schedule that does not convert (only possible for a spec
/// that skipped validation) is logged and left out; the others still run.
pub fn jobs_of(function: &Function) -> Vec<Job> {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    function
        .spec
        .schedules
        .iter()
        .filter_map(|schedule| match Job::from_function_schedule(function, schedule) {
            Ok(job) => Some(job),
            Err(reason) => {
                tracing::warn!(function = name, schedule = %schedule.name, %reason, "schedule ignored");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{HistorySpec, RetrySpec};

    #[test]
    fn defaults_follow_cronjob() {
        let job = Job::from_schedule(
            "f",
            &Schedule {
                name: "s".into(),
                cron: "*/5 * * * *".into(),
                ..Schedule::default()
            },
        )
        .expect("valid");
        assert_eq!(
            job.history,
            History {
                succeeded: 3,
                failed: 1,
                keep_for: None,
            }
        );
        assert_eq!(job.retries, 0);
        assert_eq!(job.zone, TimeZone::UTC);
        assert_eq!(job.timing(), "*/5 * * * *|UTC");
        assert!(job.payload.is_none() && job.timeout.is_none());
    }

    #[test]
    fn fields_convert_and_errors_name_the_field() {
        let mut schedule = Schedule {
            name: "s".into(),
            cron: "0 3 * * *".into(),
            time_zone: Some("Europe/Paris".into()),
            retries: Some(RetrySpec {
                limit: 2,
                backoff: Some("3s".into()),
            }),
            timeout: Some("90s".into()),
            payload: Some(serde_json::json!({"full": true})),
            history: Some(HistorySpec {
                succeeded: Some(5),
                failed: None,
                keep_for: Some("7d".into()),
            }),
            ..Schedule::default()
        };
        let job = Job::from_schedule("f", &schedule).expect("valid");
        assert_eq!(job.retries, 2);
        assert_eq!(job.backoff, Duration::from_secs(3));
        assert_eq!(job.timeout, Some(Duration::from_secs(90)));
        assert_eq!(
            job.payload,
            Some((Bytes::from_static(br#"{"full":true}"#), "application/json"))
        );
        assert_eq!(
            job.history,
            History {
                succeeded: 5,
                failed: 1,
                keep_for: Some(Duration::from_secs(7 * 86_400)),
            }
        );
        assert_eq!(job.timing(), "0 3 * * *|Europe/Paris");

        schedule.payload = Some(serde_json::json!("plain text"));
        let job = Job::from_schedule("f", &schedule).expect("valid");
        assert_eq!(job.payload.map(|p| p.0), Some(Bytes::from("plain text")));

        schedule.time_zone = Some("Mars/Olympus".into());
        let err = Job::from_schedule("f", &schedule).expect_err("bad zone");
        assert_eq!(err.field, "timeZone");
        assert!(err.to_string().starts_with("timeZone:"), "{err}");
        schedule.time_zone = None;
        schedule.cron = "61 * * * *".into();
        let err = Job::from_schedule("f", &schedule).expect_err("bad cron");
        assert_eq!(err.field, "cron");
        assert!(err.to_string().starts_with("cron:"), "{err}");
    }
}
