//! Scheduler policies under tokio's paused clock: the calendar is virtual, so hours of
//! schedule run in milliseconds and every timing is exact. The store is the in-memory one (a
//! store doing I/O on threads would race the paused clock); the SQLite store has its own tests
//! below, on the real clock.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use faas_api::{ConcurrencyPolicy, FunctionRun, HistorySpec, RetrySpec, RunPhase, Schedule};
use faas_invoke::{CallContext, ResponseBody, full_body};
use faas_schedule::store::{phase, run_id};
use faas_schedule::{
    Clock, CronMetrics, Cursor, FunctionTarget, Job, Leadership, MemoryStore, Role, RunQuery,
    RunStore, Runner, Scheduler, SchedulerOptions, SqliteStore,
};
use http::{Request, Response};
use jiff::Timestamp;

/// One call the stand-in saw: when, its headers, its body.
type Call = (Timestamp, HashMap<String, String>, Bytes);

/// A function stand-in: answers `status` after `delay` (virtual time), counting calls and
/// how many overlap.
#[derive(Default)]
struct Fake {
    behaviour: Mutex<HashMap<String, (Duration, Vec<u16>)>>,
    calls: Mutex<Vec<Call>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    clock: Mutex<Option<Clock>>,
}

impl Fake {
    fn new(clock: Clock) -> Arc<Self> {
        let fake = Arc::new(Fake::default());
        *fake.clock.lock().unwrap() = Some(clock);
        fake
    }

    /// `statuses` are answered in order; the last one repeats.
    fn behave(&self, function: &str, delay: Duration, statuses: &[u16]) {
        self.behaviour
            .lock()
            .unwrap()
            .insert(function.to_owned(), (delay, statuses.to_vec()));
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

struct Running<'a>(&'a AtomicUsize);
impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FunctionTarget for Fake {
    fn call(
        &self,
        function: &str,
        request: Request<Bytes>,
        _ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send + '_>> {
        let now = self.clock.lock().unwrap().expect("clock").now();
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        self.calls
            .lock()
            .unwrap()
            .push((now, headers, request.body().clone()));
        let (delay, status) = {
            let mut behaviour = self.behaviour.lock().unwrap();
            let (delay, statuses) = behaviour
                .entry(function.to_owned())
                .or_insert((Duration::ZERO, vec![200]));
            let status = if statuses.len() > 1 {
                statuses.remove(0)
            } else {
                statuses[0]
            };
            (*delay, status)
        };
        Box::pin(async move {
            let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now_running, Ordering::SeqCst);
            let _running = Running(&self.running);
            tokio::time::sleep(delay).await;
            // Codes past 999 stand for a job's exit code (1003: exit 3); 599 for an
            // interrupted run (a disrupted pod).
            let mut response = Response::new(full_body(format!("status {status}")));
            let (http_status, exit) = match status {
                1000.. => (if status == 1000 { 200 } else { 500 }, Some(status - 1000)),
                599 => (503, None),
                _ => (status, None),
            };
            *response.status_mut() = http::StatusCode::from_u16(http_status).expect("status");
            if let Some(code) = exit {
                response
                    .headers_mut()
                    .insert("x-faas-exit-code", http::HeaderValue::from(code));
            }
            if status == 599 {
                response.headers_mut().insert(
                    "x-faas-interrupted",
                    http::HeaderValue::from_static("the run's pod was disrupted"),
                );
            }
            response
        })
    }
}

const ORIGIN: &str = "2026-01-01T00:00:00.5Z";

struct Setup {
    store: Arc<MemoryStore>,
    fake: Arc<Fake>,
    scheduler: Arc<Scheduler>,
    metrics: CronMetrics,
}

fn start(store: Arc<MemoryStore>, origin: &str, owner: &str) -> Setup {
    let clock = Clock::starting_at(origin.parse().expect("origin"));
    let fake = Fake::new(clock);
    let metrics = CronMetrics::unregistered();
    let runner = Runner::new(
        store.clone(),
        fake.clone(),
        metrics.clone(),
        clock,
        owner.to_owned(),
    );
    let scheduler = Scheduler::start(runner, SchedulerOptions::default());
    Setup {
        store,
        fake,
        scheduler,
        metrics,
    }
}

fn schedule(name: &str, cron: &str) -> Schedule {
    Schedule {
        name: name.into(),
        cron: cron.into(),
        history: Some(HistorySpec {
            succeeded: Some(100),
            failed: Some(100),
            keep_for: None,
        }),
        ..Schedule::default()
    }
}

fn job(function: &str, schedule: &Schedule) -> Job {
    Job::from_schedule(function, schedule).expect("valid schedule")
}

async fn runs(store: &MemoryStore, function: &str) -> Vec<FunctionRun> {
    let mut runs = store
        .list(RunQuery {
            function: Some(function.into()),
            ..RunQuery::default()
        })
        .await
        .expect("list");
    runs.reverse();
    runs
}

fn phases(runs: &[FunctionRun]) -> Vec<RunPhase> {
    runs.iter().map(phase).collect()
}

fn message(run: &FunctionRun) -> String {
    run.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

async fn sleep_secs(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn fires_each_due_second_once_with_headers_and_history_limits() {
    let s = start(Arc::default(), ORIGIN, "a");
    let mut every_second = schedule("tick", "* * * * * *");
    every_second.history = None; // defaults: 3 succeeded, 1 failed
    every_second.payload = Some(serde_json::json!({"hello": "cron"}));
    s.scheduler.set_jobs(vec![job("fn", &every_second)]);
    sleep_secs(5.2).await;

    let calls = s.fake.calls();
    assert_eq!(calls.len(), 5, "one run per second, seconds 1..=5");
    for (i, (at, headers, body)) in calls.iter().enumerate() {
        let due = format!("2026-01-01T00:00:0{}Z", i + 1);
        assert_eq!(at.to_string(), due, "started on time");
        assert_eq!(headers["x-faas-schedule"], "tick");
        assert_eq!(headers["x-faas-trigger"], "cron");
        assert_eq!(headers["x-faas-attempt"], "1");
        assert_eq!(headers["x-faas-scheduled-time"], due);
        assert_eq!(
            headers["x-faas-run-id"],
            format!("fn.tick.20260101t00000{}z", i + 1)
        );
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body, &Bytes::from_static(br#"{"hello":"cron"}"#));
    }
    let kept = runs(&s.store, "fn").await;
    assert_eq!(
        kept.iter()
            .map(|r| run_id(r).to_owned())
            .collect::<Vec<_>>(),
        [
            "fn.tick.20260101t000003z",
            "fn.tick.20260101t000004z",
            "fn.tick.20260101t000005z"
        ],
        "history keeps the 3 newest succeeded runs"
    );
    let status = kept[2].status.clone().expect("status");
    assert_eq!(status.phase, RunPhase::Succeeded);
    assert_eq!(status.http_status, Some(200));
    assert_eq!(status.output.as_deref(), Some("status 200"));
    assert_eq!(status.start_time.as_deref(), Some("2026-01-01T00:00:05Z"));
    assert_eq!(
        s.metrics
            .runs
            .with_label_values(&["fn", "tick", "Succeeded"])
            .get(),
        5
    );
    assert_eq!(s.metrics.lateness.get_sample_count(), 5);
    assert_eq!(
        s.metrics.next_fire.with_label_values(&["fn", "tick"]).get(),
        1_767_225_606.0,
        "next fire: 00:00:06"
    );
}

#[tokio::test(start_paused = true)]
async fn forbid_skips_and_records_while_a_run_is_going() {
    let s = start(Arc::default(), ORIGIN, "a");
    s.fake.behave("slow", Duration::from_millis(2500), &[200]);
    let mut forbid = schedule("tick", "* * * * * *");
    forbid.concurrency_policy = ConcurrencyPolicy::Forbid;
    s.scheduler.set_jobs(vec![job("slow", &forbid)]);
    sleep_secs(5.7).await;

    let all = runs(&s.store, "slow").await;
    // 1 runs to 3.5; 2 and 3 are skipped; 4 runs to 6.5 (still running); 5 and 6 skipped.
    assert_eq!(
        phases(&all),
        [
            RunPhase::Succeeded,
            RunPhase::Skipped,
            RunPhase::Skipped,
            RunPhase::Running,
            RunPhase::Skipped,
            RunPhase::Skipped
        ]
    );
    assert!(
        message(&all[1]).contains("slow.tick.20260101t000001z is still running"),
        "{}",
        message(&all[1])
    );
    assert_eq!(s.fake.max_running.load(Ordering::SeqCst), 1);
    assert_eq!(s.fake.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn replace_interrupts_the_running_run_and_starts_the_new_one() {
    let s = start(Arc::default(), ORIGIN, "a");
    s.fake.behave("long", Duration::from_secs(30), &[200]);
    let mut replace = schedule("tick", "*/2 * * * * *");
    replace.concurrency_policy = ConcurrencyPolicy::Replace;
    s.scheduler.set_jobs(vec![job("long", &replace)]);
    sleep_secs(6.2).await;

    let all = runs(&s.store, "long").await;
    assert_eq!(
        phases(&all),
        [
            RunPhase::Interrupted,
            RunPhase::Interrupted,
            RunPhase::Running
        ]
    );
    assert_eq!(
        message(&all[0]),
        "replaced by run long.tick.20260101t000004z (concurrencyPolicy: Replace)"
    );
    // The replaced calls were dropped: nothing of theirs is still running.
    assert_eq!(s.fake.running.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn allow_overlaps_runs() {
    let s = start(Arc::default(), ORIGIN, "a");
    s.fake.behave("long", Duration::from_millis(3500), &[200]);
    s.scheduler
        .set_jobs(vec![job("long", &schedule("tick", "* * * * * *"))]);
    sleep_secs(5.2).await;
    assert_eq!(s.fake.max_running.load(Ordering::SeqCst), 4);
}

async fn seed_cursor(store: &MemoryStore, job: &Job, last: &str) {
    store
        .set_cursor(Cursor {
            key: job.key.clone(),
            timing: job.timing().to_owned(),
            last: last.parse().expect("timestamp"),
        })
        .await
        .expect("cursor");
}

#[tokio::test(start_paused = true)]
async fn downtime_is_caught_up_once_for_the_latest_missed_time() {
    let store: Arc<MemoryStore> = Arc::default();
    let hourly = job("report", &schedule("hourly", "0 * * * *"));
    // The last run was at 09:00; the platform comes back at 12:30.
    seed_cursor(&store, &hourly, "2026-01-01T09:00:00Z").await;
    let s = start(store, "2026-01-01T12:30:00Z", "a");
    s.scheduler.set_jobs(vec![hourly]);
    sleep_secs(600.0).await;

    let all = runs(&s.store, "report").await;
    assert_eq!(all.len(), 1, "one catch-up run, not three");
    assert_eq!(run_id(&all[0]), "report.hourly.20260101t120000z");
    assert_eq!(phase(&all[0]), RunPhase::Succeeded);
    // Then the normal 13:00 fire.
    sleep_secs(1800.0).await;
    let all = runs(&s.store, "report").await;
    assert_eq!(all.len(), 2);
    assert_eq!(run_id(&all[1]), "report.hourly.20260101t130000z");
}

#[tokio::test(start_paused = true)]
async fn catch_up_all_runs_each_missed_time_one_after_the_other_and_none_runs_none() {
    let store: Arc<MemoryStore> = Arc::default();
    let mut every = schedule("hourly", "0 * * * *");
    every.catch_up = Some(faas_api::CatchUpPolicy::All);
    let every = job("billing", &every);
    let mut never = schedule("hourly", "0 * * * *");
    never.catch_up = Some(faas_api::CatchUpPolicy::None);
    let never = job("digest", &never);
    // The last runs were at 09:00; the platform comes back at 12:30.
    seed_cursor(&store, &every, "2026-01-01T09:00:00Z").await;
    seed_cursor(&store, &never, "2026-01-01T09:00:00Z").await;
    let s = start(store, "2026-01-01T12:30:00Z", "a");
    // Each run takes a minute: the catch-up runs must not overlap.
    s.fake.behave("billing", Duration::from_secs(60), &[200]);
    s.scheduler.set_jobs(vec![every, never]);
    sleep_secs(600.0).await;

    let billing = runs(&s.store, "billing").await;
    let ids: Vec<&str> = billing.iter().map(run_id).collect();
    assert_eq!(
        ids,
        [
            "billing.hourly.20260101t100000z",
            "billing.hourly.20260101t110000z",
            "billing.hourly.20260101t120000z"
        ]
    );
    assert!(billing.iter().all(|r| phase(r) == RunPhase::Succeeded));
    assert_eq!(
        s.fake.max_running.load(Ordering::SeqCst),
        1,
        "catch-up runs overlapped"
    );
    assert!(
        runs(&s.store, "digest").await.is_empty(),
        "catchUp: none ran a missed time"
    );
    // Both go on at 13:00 as usual.
    sleep_secs(1800.0).await;
    assert_eq!(runs(&s.store, "billing").await.len(), 4);
    assert_eq!(runs(&s.store, "digest").await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn history_by_age_deletes_finished_runs_older_than_keep_for() {
    let s = start(Arc::default(), ORIGIN, "a");
    let mut hourly = schedule("hourly", "0 * * * *");
    hourly.history = Some(HistorySpec {
        succeeded: Some(100),
        failed: Some(100),
        keep_for: Some("3h30m".into()),
    });
    s.scheduler.set_jobs(vec![job("report", &hourly)]);
    sleep_secs(10.0 * 3600.0 + 60.0).await;
    let kept = runs(&s.store, "report").await;
    let ids: Vec<&str> = kept.iter().map(run_id).collect();
    assert_eq!(
        ids,
        [
            "report.hourly.20260101t070000z",
            "report.hourly.20260101t080000z",
            "report.hourly.20260101t090000z",
            "report.hourly.20260101t100000z"
        ],
        "runs of 01:00 to 06:00 ended more than 3h30m before the 10:00 run's"
    );
}

#[tokio::test(start_paused = true)]
async fn a_missed_time_past_its_starting_deadline_is_recorded_skipped() {
    let store: Arc<MemoryStore> = Arc::default();
    let mut spec = schedule("hourly", "0 * * * *");
    spec.starting_deadline = Some("10m".into());
    let hourly = job("report", &spec);
    seed_cursor(&store, &hourly, "2026-01-01T09:00:00Z").await;
    let s = start(store, "2026-01-01T12:30:00Z", "a");
    s.scheduler.set_jobs(vec![hourly]);
    sleep_secs(1.0).await;

    let all = runs(&s.store, "report").await;
    assert_eq!(phases(&all), [RunPhase::Skipped]);
    assert_eq!(run_id(&all[0]), "report.hourly.20260101t120000z");
    assert_eq!(
        message(&all[0]),
        "not started within its startingDeadline of 10m (the scheduler reached it 30m late)"
    );
    assert!(s.fake.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_changed_expression_starts_afresh_instead_of_catching_up() {
    let store: Arc<MemoryStore> = Arc::default();
    let old = job("report", &schedule("hourly", "0 * * * *"));
    seed_cursor(&store, &old, "2026-01-01T09:00:00Z").await;
    let s = start(store, "2026-01-01T12:30:00Z", "a");
    s.scheduler
        .set_jobs(vec![job("report", &schedule("hourly", "15 * * * *"))]);
    sleep_secs(60.0).await;
    assert!(runs(&s.store, "report").await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_with_jitter_then_succeed() {
    let s = start(Arc::default(), ORIGIN, "a");
    s.fake.behave("flaky", Duration::ZERO, &[500, 503, 200]);
    let mut spec = schedule("daily", "0 0 * * *");
    spec.retries = Some(RetrySpec {
        limit: 3,
        backoff: Some("10s".into()),
    });
    s.scheduler.set_jobs(vec![job("flaky", &spec)]);
    // First fire: 2026-01-02T00:00:00Z.
    sleep_secs(86_500.0).await;

    let calls = s.fake.calls();
    assert_eq!(calls.len(), 3);
    let gap = |a: usize, b: usize| calls[b].0.duration_since(calls[a].0).as_secs_f64();
    assert!(
        (5.0..10.0).contains(&gap(0, 1)),
        "first backoff {}",
        gap(0, 1)
    );
    assert!(
        (10.0..20.0).contains(&gap(1, 2)),
        "second backoff {}",
        gap(1, 2)
    );
    assert_eq!(calls[2].1["x-faas-attempt"], "3");
    let all = runs(&s.store, "flaky").await;
    let status = all[0].status.clone().expect("status");
    assert_eq!(status.phase, RunPhase::Succeeded);
    assert_eq!(all[0].spec.attempt, 3);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_fail_the_run() {
    let s = start(Arc::default(), ORIGIN, "a");
    s.fake.behave("broken", Duration::ZERO, &[500]);
    let mut spec = schedule("daily", "0 0 * * *");
    spec.retries = Some(RetrySpec {
        limit: 1,
        backoff: Some("1s".into()),
    });
    s.scheduler.set_jobs(vec![job("broken", &spec)]);
    sleep_secs(86_500.0).await;
    let all = runs(&s.store, "broken").await;
    assert_eq!(phases(&all), [RunPhase::Failed]);
    assert_eq!(all[0].spec.attempt, 2);
    assert_eq!(message(&all[0]), "function answered HTTP 500");
    assert_eq!(s.fake.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_jobs_exit_code_and_an_interruption_are_recorded_and_retried_by_policy() {
    let s = start(Arc::default(), ORIGIN, "a");
    // Interrupted (a spot node taken away), then exit 3, then exit 0.
    s.fake.behave("job", Duration::ZERO, &[599, 1003, 1000]);
    let mut spec = schedule("daily", "0 0 * * *");
    spec.retries = Some(RetrySpec {
        limit: 2,
        backoff: Some("1s".into()),
    });
    s.scheduler.set_jobs(vec![job("job", &spec)]);
    sleep_secs(86_500.0).await;
    let all = runs(&s.store, "job").await;
    assert_eq!(phases(&all), [RunPhase::Succeeded]);
    assert_eq!(all[0].spec.attempt, 3);
    assert_eq!(all[0].status.as_ref().and_then(|s| s.exit_code), Some(0));

    // Without retries each ends the run as it is.
    s.fake.behave("once", Duration::ZERO, &[599]);
    s.fake.behave("fails", Duration::ZERO, &[1003]);
    let daily = schedule("daily", "0 0 * * *");
    s.scheduler
        .set_jobs(vec![job("once", &daily), job("fails", &daily)]);
    sleep_secs(86_400.0).await;
    let once = runs(&s.store, "once").await;
    assert_eq!(phases(&once), [RunPhase::Interrupted]);
    assert_eq!(message(&once[0]), "the run's pod was disrupted");
    let fails = runs(&s.store, "fails").await;
    assert_eq!(phases(&fails), [RunPhase::Failed]);
    assert_eq!(message(&fails[0]), "the job exited with code 3");
    assert_eq!(fails[0].status.as_ref().and_then(|s| s.exit_code), Some(3));
}

#[tokio::test(start_paused = true)]
async fn a_run_past_its_timeout_is_timed_out_by_the_backstop() {
    // The executor enforces `timeout` itself (504 -> TimedOut, tested end to end); this is the
    // backstop for a target that never answers.
    let s = start(Arc::default(), ORIGIN, "a");
    s.fake.behave("hang", Duration::from_secs(3600), &[200]);
    let mut spec = schedule("daily", "0 0 * * *");
    spec.timeout = Some("2s".into());
    s.scheduler.set_jobs(vec![job("hang", &spec)]);
    sleep_secs(86_500.0).await;
    let all = runs(&s.store, "hang").await;
    assert_eq!(phases(&all), [RunPhase::TimedOut]);
    // 2 s, plus the slack for a cluster gateway's scale-from-zero hold.
    assert_eq!(message(&all[0]), "no answer within 1m 32s");
}

#[tokio::test(start_paused = true)]
async fn suspended_schedules_do_not_fire_and_resume_without_catching_up() {
    let s = start(Arc::default(), ORIGIN, "a");
    let mut spec = schedule("tick", "*/10 * * * * *");
    spec.suspend = true;
    s.scheduler.set_jobs(vec![job("fn", &spec)]);
    sleep_secs(60.0).await;
    assert!(s.fake.calls().is_empty());
    spec.suspend = false;
    s.scheduler.set_jobs(vec![job("fn", &spec)]);
    sleep_secs(5.0).await;
    assert!(
        s.fake.calls().is_empty(),
        "no catch-up of the suspended time"
    );
    sleep_secs(10.0).await;
    assert_eq!(s.fake.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_removed_schedule_stops_firing() {
    let s = start(Arc::default(), ORIGIN, "a");
    s.scheduler
        .set_jobs(vec![job("fn", &schedule("tick", "* * * * * *"))]);
    sleep_secs(2.2).await;
    s.scheduler.set_jobs(vec![]);
    sleep_secs(5.0).await;
    assert_eq!(s.fake.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn two_schedulers_on_one_store_run_each_time_once() {
    // Both believe they lead (no lock): the deterministic run id still lets only one run.
    let store: Arc<MemoryStore> = Arc::default();
    let a = start(store.clone(), ORIGIN, "a");
    let b = start(store.clone(), ORIGIN, "b");
    let spec = schedule("tick", "* * * * * *");
    a.scheduler.set_jobs(vec![job("fn", &spec)]);
    b.scheduler.set_jobs(vec![job("fn", &spec)]);
    sleep_secs(5.2).await;
    assert_eq!(a.fake.calls().len() + b.fake.calls().len(), 5);
    assert_eq!(runs(&store, "fn").await.len(), 5);
}

/// Schedulers of one platform's state that take turns by its lock file (as `faas up`
/// restarts, or a standby beside it, do), sharing one store and one paused clock.
struct LockedSchedulers {
    _dir: tempfile::TempDir,
    store: Arc<MemoryStore>,
    clock: Clock,
    options: SchedulerOptions,
}

impl LockedSchedulers {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SchedulerOptions {
            leadership: Leadership::LockFile(dir.path().join("scheduler.lock")),
            standby_retry: Duration::from_secs(1),
        };
        LockedSchedulers {
            _dir: dir,
            store: Arc::default(),
            clock: Clock::starting_at(ORIGIN.parse().expect("origin")),
            options,
        }
    }

    /// A scheduler named `owner`, and the function target it calls.
    fn start(&self, owner: &str) -> (Arc<Fake>, Arc<Scheduler>) {
        let fake = Fake::new(self.clock);
        let runner = Runner::new(
            self.store.clone(),
            fake.clone(),
            CronMetrics::unregistered(),
            self.clock,
            owner.to_owned(),
        );
        (fake, Scheduler::start(runner, self.options.clone()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_standby_takes_over_interrupts_orphans_and_catches_up() {
    let schedulers = LockedSchedulers::new();
    let store = Arc::clone(&schedulers.store);
    let make = |owner: &str| schedulers.start(owner);
    let (fake_a, a) = make("a");
    a.wait_for_role(Role::Leader).await;
    let (fake_b, b) = make("b");
    let every_ten = schedule("tick", "*/10 * * * * *");
    a.set_jobs(vec![job("fn", &every_ten)]);
    b.set_jobs(vec![job("fn", &every_ten)]);
    fake_a.behave("fn", Duration::from_secs(3600), &[200]);
    sleep_secs(2.0).await;
    assert_eq!(b.role(), Role::Standby);

    // 00:00:10 starts on a (and hangs); a then dies without finishing it (its task is gone:
    // shutdown with no grace interrupts it, so make it an orphan by hand instead).
    sleep_secs(10.0).await;
    assert_eq!(fake_a.calls().len(), 1);
    let orphan = runs(&store, "fn").await.pop().expect("run");
    a.shutdown(Duration::ZERO).await;
    let mut orphan_again = orphan.clone();
    orphan_again.status.as_mut().expect("status").phase = RunPhase::Running;
    store.update(orphan_again, None).await.expect("update");
    sleep_secs(30.0).await;

    assert_eq!(b.role(), Role::Leader);
    let all = runs(&store, "fn").await;
    assert_eq!(run_id(&all[0]), "fn.tick.20260101t000010z");
    assert_eq!(phase(&all[0]), RunPhase::Interrupted);
    assert_eq!(
        message(&all[0]),
        "the scheduler that ran it stopped before it finished"
    );
    // b fired 00:00:20 (caught up or on time, once), 00:00:30 and 00:00:40.
    let ids: Vec<_> = all[1..].iter().map(|r| run_id(r).to_owned()).collect();
    assert_eq!(
        ids,
        [
            "fn.tick.20260101t000020z",
            "fn.tick.20260101t000030z",
            "fn.tick.20260101t000040z"
        ]
    );
    assert_eq!(fake_b.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn manual_runs_use_the_schedule_or_stand_alone() {
    let s = start(Arc::default(), ORIGIN, "a");
    let mut spec = schedule("nightly", "0 3 * * *");
    spec.payload = Some(serde_json::json!("from the schedule"));
    s.scheduler.set_jobs(vec![job("fn", &spec)]);

    let handle = s
        .scheduler
        .run_now("fn", Some("nightly"), None, None)
        .expect("known schedule");
    assert!(handle.id.starts_with("fn.nightly.run."), "{}", handle.id);
    let run = handle
        .done
        .await
        .expect("task")
        .expect("store")
        .expect("claimed");
    assert_eq!(phase(&run), RunPhase::Succeeded);
    assert_eq!(run.spec.trigger, "manual");
    assert_eq!(run.spec.schedule, "nightly");
    assert!(run.spec.scheduled_time.is_none());
    assert_eq!(s.fake.calls()[0].2, Bytes::from("from the schedule"));

    let handle = s
        .scheduler
        .run_now("fn", None, Some(Bytes::from("given")), None)
        .expect("plain manual run");
    assert!(handle.id.starts_with("fn.manual."));
    let run = handle
        .done
        .await
        .expect("task")
        .expect("store")
        .expect("claimed");
    assert_eq!(run.spec.schedule, "manual");
    assert_eq!(s.fake.calls()[1].2, Bytes::from("given"));
    assert_eq!(s.fake.calls()[1].1["x-faas-run-id"], handle.id);

    let err = s.scheduler.run_now("fn", Some("weekly"), None, None).err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("function fn has no schedule named \"weekly\"")
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_runs_finish_within_grace_then_interrupts() {
    let s = start(Arc::default(), ORIGIN, "a");
    s.fake.behave("short", Duration::from_secs(2), &[200]);
    s.fake.behave("long", Duration::from_secs(600), &[200]);
    s.scheduler.set_jobs(vec![
        job("short", &schedule("once", "1 0 0 * * *")),
        job("long", &schedule("once", "1 0 0 * * *")),
    ]);
    sleep_secs(1.0).await;
    s.scheduler.shutdown(Duration::from_secs(10)).await;
    assert_eq!(s.scheduler.role(), Role::Stopped);
    assert_eq!(
        phases(&runs(&s.store, "short").await),
        [RunPhase::Succeeded]
    );
    let long = runs(&s.store, "long").await;
    assert_eq!(phases(&long), [RunPhase::Interrupted]);
    assert_eq!(
        message(&long[0]),
        "the platform shut down before the run finished"
    );
}

// ---- SQLite store, real clock ----

fn record(function: &str, schedule: &str, id: &str, phase: RunPhase) -> FunctionRun {
    let mut run = FunctionRun::new(
        id,
        faas_api::FunctionRunSpec {
            function: function.into(),
            schedule: schedule.into(),
            trigger: "cron".into(),
            scheduled_time: None,
            attempt: 1,
            options: Default::default(),
            ..Default::default()
        },
    );
    run.status = Some(faas_api::FunctionRunStatus {
        phase,
        ..Default::default()
    });
    run
}

#[tokio::test]
async fn sqlite_store_prunes_by_age_and_deletes_the_pruned_runs_logs() {
    use faas_schedule::JobKey;
    use faas_schedule::job::History;
    use faas_schedule::store::Prune;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("runs.db")).expect("open");
    let ended = |id: &str, at: &str| {
        let mut run = record("fn", "tick", id, RunPhase::Succeeded);
        if let Some(status) = run.status.as_mut() {
            status.end_time = Some(at.into());
        }
        run
    };
    for (id, at) in [
        ("fn.tick.old", "2026-01-01T00:00:00Z"),
        ("fn.tick.recent", "2026-01-08T00:00:00.250Z"),
        ("fn.tick.new", "2026-01-09T23:00:00Z"),
    ] {
        store
            .create(ended(id, at), None, None)
            .await
            .expect("create");
        store.run_log(id).expect("a log").append(b"output\n");
    }
    let prune = Prune {
        key: JobKey::new("fn", "tick"),
        history: History {
            succeeded: 100,
            failed: 100,
            keep_for: Some(Duration::from_secs(7 * 86_400)),
        },
        now: "2026-01-10T00:00:00Z".parse().expect("ts"),
    };
    store
        .update(ended("fn.tick.new", "2026-01-09T23:00:00Z"), Some(prune))
        .await
        .expect("update");
    let left: Vec<String> = store
        .list(RunQuery::default())
        .await
        .expect("list")
        .iter()
        .map(|r| run_id(r).to_owned())
        .collect();
    assert_eq!(left, ["fn.tick.new", "fn.tick.recent"]);
    let log = |id: &str| {
        let store = &store;
        let id = id.to_owned();
        async move { store.read_log(id, 0, 100).await.expect("read") }
    };
    assert_eq!(
        log("fn.tick.old").await,
        None,
        "a pruned run's log is deleted with it"
    );
    assert_eq!(
        log("fn.tick.recent").await.map(|c| c.bytes),
        Some(b"output\n".to_vec())
    );
}

#[tokio::test]
async fn sqlite_store_claims_once_prunes_and_survives_reopening() {
    use faas_schedule::JobKey;
    use faas_schedule::job::History;
    use faas_schedule::store::Prune;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path).expect("open");
    let key = JobKey::new("fn", "tick");
    let prune = Prune {
        key: key.clone(),
        history: History {
            succeeded: 2,
            failed: 1,
            keep_for: None,
        },
        now: "2026-01-01T00:00:00Z".parse().expect("ts"),
    };
    let cursor = Cursor {
        key: key.clone(),
        timing: "* * * * *|UTC".into(),
        last: "2026-01-01T00:00:00Z".parse().expect("ts"),
    };
    assert!(
        store
            .create(
                record("fn", "tick", "r1", RunPhase::Running),
                Some(cursor.clone()),
                None
            )
            .await
            .expect("create")
    );
    assert!(
        !store
            .create(record("fn", "tick", "r1", RunPhase::Running), None, None)
            .await
            .expect("create"),
        "the same id is created once"
    );
    for (id, phase) in [
        ("r2", RunPhase::Failed),
        ("r3", RunPhase::Succeeded),
        ("r4", RunPhase::Skipped),
        ("r5", RunPhase::Succeeded),
    ] {
        store
            .create(record("fn", "tick", id, phase), None, Some(prune.clone()))
            .await
            .expect("create");
    }
    store
        .create(record("other", "tick", "o1", RunPhase::Failed), None, None)
        .await
        .expect("create");
    store
        .update(record("fn", "tick", "r1", RunPhase::Succeeded), Some(prune))
        .await
        .expect("update");
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    let ids = |runs: Vec<FunctionRun>| {
        runs.iter()
            .map(|r| run_id(r).to_owned())
            .collect::<Vec<_>>()
    };
    let listed = store
        .list(RunQuery {
            function: Some("fn".into()),
            ..RunQuery::default()
        })
        .await
        .expect("list");
    // Newest first; of succeeded r5, r3, r1 two stay; of failed r4 (skipped), r2 one stays.
    assert_eq!(ids(listed), ["r5", "r4", "r3"]);
    let failed = store
        .list(RunQuery {
            phase: Some(RunPhase::Failed),
            ..RunQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(ids(failed), ["o1"]);
    assert_eq!(store.cursors().await.expect("cursors"), [cursor]);
    assert_eq!(
        store
            .get("r5".into())
            .await
            .expect("get")
            .map(|r| phase(&r)),
        Some(RunPhase::Succeeded)
    );
    assert!(store.get("r1".into()).await.expect("get").is_none());
}

#[tokio::test]
async fn sqlite_store_group_commits_concurrent_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("runs.db")).expect("open"));
    let writes = (0..2000).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create(
                    record("fn", "tick", &format!("run-{i}"), RunPhase::Succeeded),
                    None,
                    None,
                )
                .await
        })
    });
    for write in writes {
        assert!(write.await.expect("task").expect("create"));
    }
    let all = store.list(RunQuery::default()).await.expect("list");
    assert_eq!(all.len(), 2000);
}

// ---- Notifications, real clock and a real HTTP listener on loopback ----

#[tokio::test]
async fn a_failed_run_posts_a_json_summary_to_the_notify_url() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the body announced by Content-Length is complete.
        loop {
            let n = socket.read(&mut buf).await.expect("read");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    socket
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .expect("write");
                    return (head.to_owned(), body.to_owned());
                }
            }
            if n == 0 {
                panic!("connection closed early");
            }
        }
    });

    let clock = Clock::System;
    let fake = Fake::new(clock);
    fake.behave("broken", Duration::ZERO, &[500]);
    let runner = Runner::new(
        Arc::new(MemoryStore::default()),
        fake.clone(),
        CronMetrics::unregistered(),
        clock,
        "a".into(),
    );
    let scheduler = Scheduler::start(runner, SchedulerOptions::default());
    let mut spec = schedule("tick", "* * * * * *");
    spec.notify = Some(faas_api::NotifySpec {
        url: format!("http://127.0.0.1:{port}/hook"),
        on_success: false,
        ..Default::default()
    });
    scheduler.set_jobs(vec![job("broken", &spec)]);

    let (head, body) = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .expect("a notification within 10 s")
        .expect("listener task");
    scheduler.shutdown(Duration::from_secs(1)).await;
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let summary: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(summary["function"], "broken");
    assert_eq!(summary["schedule"], "tick");
    assert_eq!(summary["phase"], "Failed");
    assert_eq!(summary["httpStatus"], 500);
    assert_eq!(summary["message"], "function answered HTTP 500");
    assert!(
        summary["runId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("broken.tick.")
    );
    assert!(
        summary["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Failed")
    );
}

/// A loopback receiver that answers its requests with `statuses` in turn (the last one
/// repeating) and sends each body it got.
async fn receiver(statuses: Vec<u16>) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (sent, bodies) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter().peekable();
        let mut last = 204;
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let status = statuses.next().unwrap_or(last);
            last = status;
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.read(&mut buf).await {
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                        let _ = socket.write_all(reply.as_bytes()).await;
                        let _ = sent.send(body.to_owned());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
        }
    });
    (port, bodies)
}

#[tokio::test]
async fn notifications_on_start_and_failure_in_slack_form_are_retried_past_a_5xx() {
    let (port, mut bodies) = receiver(vec![503, 204]).await;
    let clock = Clock::System;
    let fake = Fake::new(clock);
    fake.behave("broken", Duration::ZERO, &[1003]);
    let runner = Runner::new(
        Arc::new(MemoryStore::default()),
        fake.clone(),
        CronMetrics::unregistered(),
        clock,
        "a".into(),
    );
    let scheduler = Scheduler::start(runner, SchedulerOptions::default());
    let mut spec = schedule("tick", "@yearly");
    spec.notify = Some(faas_api::NotifySpec {
        url: format!("http://127.0.0.1:{port}/services/T0/B0/secret"),
        on_start: true,
        format: Some(faas_api::NotifyFormat::Slack),
        ..Default::default()
    });
    scheduler.set_jobs(vec![job("broken", &spec)]);
    let handle = scheduler
        .run_now("broken", Some("tick"), None, None)
        .expect("run");
    let _ = handle.done.await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let body = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
            .await
            .expect("a notification within 10 s")
            .expect("receiver");
        got.push(serde_json::from_str::<serde_json::Value>(&body).expect("JSON"));
    }
    scheduler.shutdown(Duration::from_secs(1)).await;
    let texts: Vec<&str> = got.iter().filter_map(|b| b["text"].as_str()).collect();
    // The start notification and the failure one (order between them is not fixed); one of
    // them was answered 503 and sent again.
    assert!(texts.iter().any(|t| t.ends_with(": started")), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.ends_with(": Failed (the job exited with code 3)")),
        "{texts:?}"
    );
    assert_eq!(got.len(), 3, "two notifications, one sent twice: {texts:?}");
    assert!(
        got.iter()
            .all(|b| b.as_object().is_some_and(|o| o.len() == 1)),
        "Slack's form is text only"
    );
}

#[tokio::test]
async fn a_notify_url_at_the_metadata_address_is_refused_before_connecting() {
    // Whatever the spec says, the summary never goes to instance metadata; the address is
    // refused before any connection, so nothing can leave the machine even if this fails.
    let run = record("fn", "tick", "fn.tick.x", RunPhase::Failed);
    let body = faas_schedule::notify::summary(&run, faas_schedule::notify::Event::Failure);
    let refused = faas_schedule::notify::deliver(
        "http://169.254.169.254/latest/meta-data",
        Bytes::from(body.to_string()),
    )
    .await;
    let err = refused.expect_err("metadata address refused").to_string();
    assert!(err.starts_with("169.254.169.254:"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_lease_decides_who_fires_and_losing_it_stops_firing_at_once() {
    let store: Arc<MemoryStore> = Arc::default();
    let clock = Clock::starting_at(ORIGIN.parse().expect("origin"));
    let (lease, leading) = tokio::sync::watch::channel(false);
    let fake = Fake::new(clock);
    let runner = Runner::new(
        store.clone(),
        fake.clone(),
        CronMetrics::unregistered(),
        clock,
        "controller-0".to_owned(),
    );
    let scheduler = Scheduler::start(
        runner,
        SchedulerOptions {
            leadership: Leadership::Watch(leading),
            standby_retry: Duration::from_secs(1),
        },
    );
    scheduler.set_jobs(vec![job("fn", &schedule("tick", "* * * * * *"))]);
    scheduler.wait_for_role(Role::Standby).await;
    sleep_secs(3.2).await;
    assert_eq!(fake.calls().len(), 0, "no lease, no fires");

    lease.send_replace(true);
    scheduler.wait_for_role(Role::Leader).await;
    sleep_secs(3.0).await;
    let while_leading = fake.calls().len();
    // Taking over catches up the latest missed second once, then one per second.
    assert!((3..=4).contains(&while_leading), "{while_leading}");

    lease.send_replace(false);
    scheduler.wait_for_role(Role::Standby).await;
    sleep_secs(5.0).await;
    assert_eq!(fake.calls().len(), while_leading, "fired without the lease");

    lease.send_replace(true);
    scheduler.wait_for_role(Role::Leader).await;
    sleep_secs(1.0).await;
    // One catch-up for the 5 s without the lease (not five), then on time again.
    let after = fake.calls().len() - while_leading;
    assert!((1..=2).contains(&after), "{after}");
    scheduler.shutdown(Duration::ZERO).await;
}

/// A run its scheduler left unfinished is the schedule's failed attempt: the scheduler that
/// takes over gives it its next attempt when `retries` allow (same record, same fire time,
/// attempt 2, now its own), and marks it `Interrupted` when they are used up.
#[tokio::test(start_paused = true)]
async fn a_standby_resumes_an_orphaned_run_as_its_next_attempt_while_retries_allow() {
    let schedulers = LockedSchedulers::new();
    let store = Arc::clone(&schedulers.store);
    let make = |owner: &str| schedulers.start(owner);
    let (fake_a, a) = make("a");
    a.wait_for_role(Role::Leader).await;
    let (fake_b, b) = make("b");
    let mut minutely = schedule("tick", "10 * * * * *");
    minutely.retries = Some(faas_api::RetrySpec {
        limit: 1,
        backoff: None,
    });
    a.set_jobs(vec![job("fn", &minutely)]);
    b.set_jobs(vec![job("fn", &minutely)]);
    fake_a.behave("fn", Duration::from_secs(3600), &[200]);
    sleep_secs(12.0).await;
    assert_eq!(fake_a.calls().len(), 1);
    let orphan = runs(&store, "fn").await.pop().expect("run");
    assert_eq!(orphan.spec.attempt, 1);
    a.shutdown(Duration::ZERO).await;
    let mut orphan_again = orphan.clone();
    orphan_again.status.as_mut().expect("status").phase = RunPhase::Running;
    store.update(orphan_again, None).await.expect("update");
    sleep_secs(5.0).await;

    assert_eq!(b.role(), Role::Leader);
    let all = runs(&store, "fn").await;
    assert_eq!(all.len(), 1, "no second run of the fire time");
    let resumed = &all[0];
    assert_eq!(run_id(resumed), "fn.tick.20260101t000010z");
    assert_eq!(phase(resumed), RunPhase::Succeeded, "{resumed:?}");
    assert_eq!(resumed.spec.attempt, 2);
    assert!(faas_schedule::run::owned_by(resumed, "b"));
    let calls = fake_b.calls();
    assert_eq!(calls.len(), 1);
    let headers = &calls[0].1;
    assert_eq!(
        headers.get("x-faas-run-id").map(String::as_str),
        Some("fn.tick.20260101t000010z")
    );
    assert_eq!(headers.get("x-faas-attempt").map(String::as_str), Some("2"));

    // Interrupted again during its last attempt: nothing left to retry.
    let mut exhausted = resumed.clone();
    exhausted.status.as_mut().expect("status").phase = RunPhase::Running;
    let (_fake_c, c) = make("c");
    store.update(exhausted, None).await.expect("update");
    b.shutdown(Duration::ZERO).await;
    sleep_secs(3.0).await;
    assert_eq!(c.role(), Role::Leader);
    let all = runs(&store, "fn").await;
    assert_eq!(phase(&all[0]), RunPhase::Interrupted);
    assert_eq!(all[0].spec.attempt, 2);
}

/// A spot drain or a rollout: the run its grace period did not cover is left `Pending` when
/// its schedule allows another attempt, and the scheduler that takes over gives it that
/// attempt; without retries it ends `Interrupted` (above).
#[tokio::test(start_paused = true)]
async fn a_run_cut_off_by_shutdown_is_resumed_by_the_next_scheduler_when_retries_allow() {
    let schedulers = LockedSchedulers::new();
    let store = Arc::clone(&schedulers.store);
    let make = |owner: &str| schedulers.start(owner);
    let (fake_a, a) = make("a");
    a.wait_for_role(Role::Leader).await;
    let mut once = schedule("once", "1 0 0 * * *");
    once.retries = Some(faas_api::RetrySpec {
        limit: 2,
        backoff: None,
    });
    a.set_jobs(vec![job("long", &once)]);
    fake_a.behave("long", Duration::from_secs(600), &[200]);
    sleep_secs(1.0).await;
    assert_eq!(fake_a.calls().len(), 1);
    a.shutdown(Duration::from_secs(10)).await;
    let cut = runs(&store, "long").await;
    assert_eq!(phases(&cut), [RunPhase::Pending]);
    assert_eq!(
        message(&cut[0]),
        "attempt 1 was cut off (the platform shut down before the run finished); the next scheduler gives it attempt 2"
    );

    let (fake_b, b) = make("b");
    b.set_jobs(vec![job("long", &once)]);
    b.wait_for_role(Role::Leader).await;
    sleep_secs(1.0).await;
    let done = runs(&store, "long").await;
    assert_eq!(done.len(), 1, "the fire time still has one run");
    assert_eq!(phase(&done[0]), RunPhase::Succeeded, "{:?}", done[0]);
    assert_eq!(done[0].spec.attempt, 2);
    assert_eq!(fake_b.calls().len(), 1);
    assert_eq!(fake_b.calls()[0].1["x-faas-attempt"], "2");
}

/// A store whose claims of function `stuck`'s runs never answer (a disk that hangs), every
/// other write going to the memory store.
struct StallingStore(Arc<MemoryStore>);

impl StallingStore {
    fn stuck(run: &FunctionRun) -> bool {
        run.spec.function == "stuck"
    }
}

impl RunStore for StallingStore {
    fn create(
        &self,
        run: FunctionRun,
        cursor: Option<Cursor>,
        prune: Option<faas_schedule::store::Prune>,
    ) -> faas_schedule::store::StoreFuture<'_, bool> {
        if Self::stuck(&run) {
            return Box::pin(std::future::pending());
        }
        self.0.create(run, cursor, prune)
    }
    fn create_many<'a>(
        &'a self,
        runs: &'a [(FunctionRun, Option<Cursor>)],
    ) -> faas_schedule::store::StoreFuture<'a, Vec<bool>> {
        if runs.iter().any(|(run, _)| Self::stuck(run)) {
            return Box::pin(std::future::pending());
        }
        self.0.create_many(runs)
    }
    fn update(
        &self,
        run: FunctionRun,
        prune: Option<faas_schedule::store::Prune>,
    ) -> faas_schedule::store::StoreFuture<'_, ()> {
        self.0.update(run, prune)
    }
    fn get(&self, id: String) -> faas_schedule::store::StoreFuture<'_, Option<FunctionRun>> {
        self.0.get(id)
    }
    fn list(&self, query: RunQuery) -> faas_schedule::store::StoreFuture<'_, Vec<FunctionRun>> {
        self.0.list(query)
    }
    fn cursors(&self) -> faas_schedule::store::StoreFuture<'_, Vec<Cursor>> {
        self.0.cursors()
    }
    fn set_cursor(&self, cursor: Cursor) -> faas_schedule::store::StoreFuture<'_, ()> {
        self.0.set_cursor(cursor)
    }
    fn unfinished(&self) -> faas_schedule::store::StoreFuture<'_, Vec<FunctionRun>> {
        self.0.unfinished()
    }
}

/// ARCHITECTURE.md: the scheduler loop never awaits the store. Claims of one schedule's
/// runs hang for ever (they fire on even seconds); another schedule (odd seconds) still fires
/// every time, on time.
#[tokio::test(start_paused = true)]
async fn a_store_that_hangs_on_one_schedule_does_not_hold_back_the_others() {
    let memory = Arc::new(MemoryStore::default());
    let clock = Clock::starting_at(ORIGIN.parse().expect("origin"));
    let fake = Fake::new(clock);
    let runner = Runner::new(
        Arc::new(StallingStore(Arc::clone(&memory))),
        fake.clone(),
        CronMetrics::unregistered(),
        clock,
        "a".to_owned(),
    );
    let scheduler = Scheduler::start(runner, SchedulerOptions::default());
    scheduler.set_jobs(vec![
        job("stuck", &schedule("even", "*/2 * * * * *")),
        job("fine", &schedule("odd", "1/2 * * * * *")),
    ]);
    sleep_secs(10.2).await;
    let calls: Vec<String> = fake
        .calls()
        .iter()
        .map(|(at, _, _)| at.to_string())
        .collect();
    assert_eq!(
        calls,
        [
            "2026-01-01T00:00:01Z",
            "2026-01-01T00:00:03Z",
            "2026-01-01T00:00:05Z",
            "2026-01-01T00:00:07Z",
            "2026-01-01T00:00:09Z"
        ],
        "every odd second, on time, while the even ones' claims hang"
    );
    assert_eq!(runs(&memory, "fine").await.len(), 5);
    assert!(runs(&memory, "stuck").await.is_empty());
}
