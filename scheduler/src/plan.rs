//! The pure decisions of the scheduler: run ids, deadlines, catch-up, retry backoff, phases.
//! Nothing here touches a clock, a store or a task, so every rule is testable with plain values.

use std::time::Duration;

use faas_api::{CatchUpPolicy, RunPhase};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::job::{Job, ScheduleError};

/// Schedule name of runs started by hand without naming a schedule.
pub const MANUAL: &str = "manual";

/// Longest wait between two attempts, whatever the backoff and attempt count say.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The id of the run of `schedule` due at `due`. Deterministic, so that two schedulers racing
/// for the same time both try to create the same record and only one succeeds. It is a valid
/// Kubernetes object name (function and schedule names are DNS labels).
pub fn scheduled_run_id(function: &str, schedule: &str, due: Timestamp) -> String {
    // Hand-formatted: this runs for every fire, and `strftime` interprets its format each time.
    let t = jiff::tz::Offset::UTC.to_datetime(due);
    format!(
        "{function}.{schedule}.{:04}{:02}{:02}t{:02}{:02}{:02}z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A fresh id for a run started by hand (`faas run`, the dashboard, a requested
/// `FunctionRun`): `{function}.manual.{hex}` without a schedule, `{function}.{schedule}.run.{hex}`
/// with one, so an id says which settings the run used and is never mistaken for a run of no
/// schedule. Scheduled runs' ids end in `z` (a time), these in 16 hex digits: they cannot
/// collide.
pub fn manual_run_id(function: &str, schedule: &str) -> String {
    if schedule == MANUAL {
        format!("{function}.{MANUAL}.{:016x}", random_u64())
    } else {
        format!("{function}.{schedule}.run.{:016x}", random_u64())
    }
}

/// Whether a run due at `due` may still start at `now`.
pub fn within_deadline(due: Timestamp, now: Timestamp, deadline: Option<Duration>) -> bool {
    match deadline {
        None => true,
        Some(deadline) => now.duration_since(due).unsigned_abs() <= deadline || now < due,
    }
}

/// Most missed fire times `catchUp: all` runs after a gap: the newest ones.
pub const MAX_CATCH_UP: usize = 100;
/// Most fire times looked at to find them (an every-second schedule down for 11 days).
const MAX_CATCH_UP_SEARCH: usize = 1_000_000;

/// What to do about fire times missed while no scheduler ran (platform stopped, standby
/// taking over), as the schedule's `catchUp` says. `since` is the last time this schedule
/// was handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Nothing was missed.
    Nothing,
    /// `latest`: run the latest missed time now.
    Run(Timestamp),
    /// `latest`: the latest missed time is past its starting deadline: record it `Skipped`.
    Skip(Timestamp),
    /// `all`: each missed time, oldest first (at most [`MAX_CATCH_UP`], the newest), one run
    /// after the other; the starting deadline still applies to each.
    Each(Vec<Timestamp>),
    /// `none`: nothing runs; the schedule moves past the latest missed time.
    Drop(Timestamp),
}

/// Decides the catch-up for `job` after a gap that ended at `now`.
pub fn catch_up(job: &Job, since: Timestamp, now: Timestamp) -> CatchUp {
    let Some(latest) = job.cron.latest_between(since, now, &job.zone) else {
        return CatchUp::Nothing;
    };
    match job.catch_up {
        CatchUpPolicy::None => CatchUp::Drop(latest),
        CatchUpPolicy::Latest if within_deadline(latest, now, job.starting_deadline) => {
            CatchUp::Run(latest)
        }
        CatchUpPolicy::Latest => CatchUp::Skip(latest),
        CatchUpPolicy::All => {
            let mut missed = std::collections::VecDeque::with_capacity(MAX_CATCH_UP);
            let mut at = since;
            for _ in 0..MAX_CATCH_UP_SEARCH {
                match job.cron.next_after(at, &job.zone) {
                    Some(due) if due <= now => {
                        if missed.len() == MAX_CATCH_UP {
                            missed.pop_front();
                        }
                        missed.push_back(due);
                        at = due;
                    }
                    _ => break,
                }
            }
            // The search gave up before reaching `now`: the latest is still among them.
            if missed.back() != Some(&latest) {
                if missed.len() == MAX_CATCH_UP {
                    missed.pop_front();
                }
                missed.push_back(latest);
            }
            CatchUp::Each(missed.into())
        }
    }
}

/// The next fire time of `job` strictly after `after`.
pub fn next_fire(job: &Job, after: Timestamp) -> Option<Timestamp> {
    job.cron.next_after(after, &job.zone)
}

/// The wait before attempt `failed + 1`, after attempt `failed` (1-based) failed: `base`
/// doubled per failure, capped, with "equal jitter" (half fixed, half random) so that many
/// runs failing together do not retry together. `jitter` is a uniform sample in `[0, 1)`.
pub fn retry_backoff(base: Duration, failed: u32, jitter: f64) -> Duration {
    let full = faas_api::backoff::exponential(base, failed, MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// The phase an attempt ended in, from the HTTP status the function answered with.
pub fn phase_of_status(status: u16) -> RunPhase {
    match status {
        200..=299 => RunPhase::Succeeded,
        // The runtime answers 504 when the run's deadline passed (epoch interruption).
        504 => RunPhase::TimedOut,
        _ => RunPhase::Failed,
    }
}

/// Whether a phase is final.
pub fn is_final(phase: RunPhase) -> bool {
    !matches!(phase, RunPhase::Pending | RunPhase::Running)
}

/// Which history limit a finished run counts against: `true` for the succeeded limit, `false`
/// for the failed one (every other final phase, as CronJob counts them).
pub fn counts_as_success(phase: RunPhase) -> bool {
    phase == RunPhase::Succeeded
}

/// A uniform sample in `[0, 1)` for jitter.
pub fn jitter_sample() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// 64 random bits from the standard library's per-process random hash keys and a counter (no
/// `rand` dependency for ids and jitter; not for cryptography).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(since_epoch) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(since_epoch.as_nanos());
    }
    hasher.finish()
}

/// The fire times of a schedule that a user checks before deploying (`faas schedules`).
pub fn preview(job: &Job, after: Timestamp, count: usize) -> Vec<Timestamp> {
    job.cron.upcoming(after, &job.zone).take(count).collect()
}

/// Formats `t` as RFC 3339 in UTC with second precision (run records).
pub fn rfc3339(t: Timestamp) -> String {
    // `Timestamp`'s Display is RFC 3339 in UTC, with a fraction only when there is one.
    t.round(jiff::Unit::Millisecond).unwrap_or(t).to_string()
}

/// The zone a schedule names, `UTC` when none.
pub fn zone_of(name: Option<&str>) -> Result<TimeZone, ScheduleError> {
    match name {
        None => Ok(TimeZone::UTC),
        Some(name) => {
            faas_api::cron::time_zone(name).map_err(|e| ScheduleError::new("timeZone", e))
        }
    }
}

/// `250ms`, `2m 3s`: durations in messages, to the second above one second (the same
/// formatter `faas list` uses).
pub fn humanize(d: Duration) -> String {
    let shown = if d.as_secs() > 0 {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(d.subsec_millis().into())
    };
    humantime::format_duration(shown).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::Schedule;

    fn job(cron: &str, tz: Option<&str>, deadline: Option<&str>) -> Job {
        let schedule = Schedule {
            name: "nightly".into(),
            cron: cron.into(),
            time_zone: tz.map(Into::into),
            starting_deadline: deadline.map(Into::into),
            ..Schedule::default()
        };
        Job::from_schedule("report", &schedule).expect("valid schedule")
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn scheduled_ids_are_deterministic_object_names() {
        let id = scheduled_run_id("report", "nightly", ts("2026-03-29T01:30:00Z"));
        assert_eq!(id, "report.nightly.20260329t013000z");
        assert_eq!(
            id,
            scheduled_run_id("report", "nightly", ts("2026-03-29T01:30:00Z"))
        );
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        );
    }

    #[test]
    fn manual_ids_differ() {
        let a = manual_run_id("report", MANUAL);
        let b = manual_run_id("report", MANUAL);
        assert_ne!(a, b);
        assert!(a.starts_with("report.manual."));
        assert_eq!(a.len(), "report.manual.".len() + 16);
        // With a schedule's settings the id names the schedule, not `manual`.
        let c = manual_run_id("report", "nightly");
        assert!(c.starts_with("report.nightly.run."), "{c}");
        assert_eq!(c.len(), "report.nightly.run.".len() + 16);
    }

    #[test]
    fn deadline_is_inclusive_and_absent_means_always() {
        let due = ts("2026-01-01T00:00:00Z");
        let d = Some(Duration::from_secs(30));
        assert!(within_deadline(due, ts("2026-01-01T00:00:30Z"), d));
        assert!(!within_deadline(due, ts("2026-01-01T00:00:31Z"), d));
        assert!(within_deadline(due, ts("2026-01-02T00:00:00Z"), None));
    }

    #[test]
    fn catch_up_runs_only_the_latest_missed_time() {
        let j = job("0 * * * *", None, None);
        // Stopped after the 10:00 run, back at 12:30: 11:00 and 12:00 were missed; one run, 12:00.
        assert_eq!(
            catch_up(&j, ts("2026-01-01T10:00:00Z"), ts("2026-01-01T12:30:00Z")),
            CatchUp::Run(ts("2026-01-01T12:00:00Z"))
        );
        assert_eq!(
            catch_up(&j, ts("2026-01-01T10:00:00Z"), ts("2026-01-01T10:59:59Z")),
            CatchUp::Nothing
        );
    }

    #[test]
    fn catch_up_past_the_deadline_is_a_recorded_skip() {
        let j = job("0 * * * *", None, Some("10m"));
        assert_eq!(
            catch_up(&j, ts("2026-01-01T10:00:00Z"), ts("2026-01-01T12:30:00Z")),
            CatchUp::Skip(ts("2026-01-01T12:00:00Z"))
        );
        assert_eq!(
            catch_up(&j, ts("2026-01-01T10:00:00Z"), ts("2026-01-01T12:05:00Z")),
            CatchUp::Run(ts("2026-01-01T12:00:00Z"))
        );
    }

    #[test]
    fn catch_up_all_runs_each_missed_time_in_order_and_none_runs_none() {
        let mut j = job("0 * * * *", None, None);
        j.catch_up = CatchUpPolicy::All;
        assert_eq!(
            catch_up(&j, ts("2026-01-01T10:00:00Z"), ts("2026-01-01T12:30:00Z")),
            CatchUp::Each(vec![ts("2026-01-01T11:00:00Z"), ts("2026-01-01T12:00:00Z")])
        );
        // A long gap: the newest 100, oldest first.
        let CatchUp::Each(missed) =
            catch_up(&j, ts("2026-01-01T00:00:00Z"), ts("2026-01-11T00:30:00Z"))
        else {
            panic!("catchUp: all after 10 days");
        };
        assert_eq!(missed.len(), MAX_CATCH_UP);
        assert_eq!(missed.last(), Some(&ts("2026-01-11T00:00:00Z")));
        assert_eq!(missed.first(), Some(&ts("2026-01-06T21:00:00Z")));
        assert!(missed.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            catch_up(&j, ts("2026-01-01T10:00:00Z"), ts("2026-01-01T10:59:59Z")),
            CatchUp::Nothing
        );
        j.catch_up = CatchUpPolicy::None;
        assert_eq!(
            catch_up(&j, ts("2026-01-01T10:00:00Z"), ts("2026-01-01T12:30:00Z")),
            CatchUp::Drop(ts("2026-01-01T12:00:00Z"))
        );
    }

    #[test]
    fn catch_up_uses_the_schedule_zone() {
        // 02:30 local on Paris' spring-forward day does not exist: it fired at 03:00 local.
        let j = job("30 2 * * *", Some("Europe/Paris"), None);
        assert_eq!(
            catch_up(&j, ts("2026-03-28T12:00:00Z"), ts("2026-03-29T06:00:00Z")),
            CatchUp::Run(ts("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_secs(10);
        assert_eq!(retry_backoff(base, 1, 0.0), Duration::from_secs(5));
        assert_eq!(retry_backoff(base, 1, 0.999_999).as_secs(), 9);
        assert_eq!(retry_backoff(base, 2, 0.0), Duration::from_secs(10));
        assert_eq!(retry_backoff(base, 3, 0.0), Duration::from_secs(20));
        assert_eq!(retry_backoff(base, 40, 1.0), MAX_BACKOFF);
        for _ in 0..100 {
            let j = jitter_sample();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn phases_from_status() {
        assert_eq!(phase_of_status(200), RunPhase::Succeeded);
        assert_eq!(phase_of_status(204), RunPhase::Succeeded);
        assert_eq!(phase_of_status(504), RunPhase::TimedOut);
        assert_eq!(phase_of_status(500), RunPhase::Failed);
        assert_eq!(phase_of_status(429), RunPhase::Failed);
        assert!(is_final(RunPhase::Skipped) && !is_final(RunPhase::Pending));
        assert!(counts_as_success(RunPhase::Succeeded) && !counts_as_success(RunPhase::Skipped));
    }

    #[test]
    fn timestamps_render_in_utc() {
        assert_eq!(
            rfc3339(ts("2026-03-29T01:30:00.1234Z")),
            "2026-03-29T01:30:00.123Z"
        );
        assert_eq!(rfc3339(ts("2026-03-29T01:30:00Z")), "2026-03-29T01:30:00Z");
    }
}
