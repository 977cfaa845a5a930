//! Executes runs: claim, attempts with retry backoff, bounded output, cancellation, the final
//! record, metrics and the notification. Shared by the scheduler loop (cron runs) and the
//! management API (runs started by hand).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use faas_api::{FunctionRun, FunctionRunSpec, FunctionRunStatus, RunPhase};
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use jiff::Timestamp;
use tokio::sync::{Notify, oneshot};

use super::clock::Clock;
use super::job::{Job, JobKey};
use super::metrics::CronMetrics;
use super::plan::{self, rfc3339};
use super::store::{Cursor, Prune, RunStore, StoreError};
use crate::{CallContext, LogTailSink, ResponseBody};

/// Bytes of a run's response body kept in its record.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Annotation naming the platform process that executes a run (orphan detection).
pub const OWNER_ANNOTATION: &str = "faas.dev/owner";
/// Longest a run may go on when neither the schedule nor the function bounds it: a backstop
/// behind the executor's own deadline, in case an executor fails to enforce it.
const BACKSTOP: Duration = Duration::from_secs(3600);
/// Slack given to the executor to enforce a run timeout itself before the backstop fires.
const BACKSTOP_SLACK: Duration = Duration::from_secs(5);

/// Longest wait for the guest's log tail after its response ended (executors that keep no
/// log, such as a test target, never fill it).
const TAIL_WAIT: Duration = Duration::from_millis(500);

/// The platform's invocation path, as runs see it: admission, metrics and the executor of
/// the function's current version, exactly as for an HTTP request. Errors come back as
/// responses (status + JSON body), as they would for a client.
pub trait RunTarget: Send + Sync + 'static {
    fn call(
        &self,
        function: &str,
        request: Request<Bytes>,
        ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send + '_>>;
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler, for the fire time `due`.
    Cron { due: Timestamp },
    /// A person or a tool (`faas run`, the dashboard).
    Manual,
}

/// Cancels or waits for runs of this process.
type Cancel = oneshot::Sender<String>;

/// Executes runs and tracks those in flight.
pub struct Runner {
    store: Arc<dyn RunStore>,
    target: Arc<dyn RunTarget>,
    metrics: CronMetrics,
    clock: Clock,
    owner: String,
    active: Mutex<HashMap<JobKey, HashMap<String, Cancel>>>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Runner {
    /// A runner recording into `store`, calling `target`. `owner` names this process in the
    /// records it writes.
    pub fn new(
        store: Arc<dyn RunStore>,
        target: Arc<dyn RunTarget>,
        metrics: CronMetrics,
        clock: Clock,
        owner: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            target,
            metrics,
            clock,
            owner,
            active: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    pub fn store(&self) -> &Arc<dyn RunStore> {
        &self.store
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub fn metrics(&self) -> &CronMetrics {
        &self.metrics
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, HashMap<String, Cancel>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ids of the runs of `key` in flight in this process.
    pub fn running(&self, key: &JobKey) -> Vec<String> {
        self.active()
            .get(key)
            .map(|runs| runs.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Runs in flight in this process.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Cancels every run of `key`; each records `Interrupted` with `reason`.
    pub fn cancel_schedule(&self, key: &JobKey, reason: &str) -> usize {
        let runs = self.active().remove(key).unwrap_or_default();
        let count = runs.len();
        for (_, cancel) in runs {
            let _ = cancel.send(reason.to_owned());
        }
        count
    }

    /// Cancels one run of this process. Returns whether it was running here.
    pub fn cancel_run(&self, id: &str, reason: &str) -> bool {
        let cancel = self.active().values_mut().find_map(|runs| runs.remove(id));
        cancel.is_some_and(|cancel| cancel.send(reason.to_owned()).is_ok())
    }

    /// Cancels everything in flight (shutdown).
    pub fn cancel_all(&self, reason: &str) {
        let all: Vec<_> = self.active().drain().collect();
        for (_, runs) in all {
            for (_, cancel) in runs {
                let _ = cancel.send(reason.to_owned());
            }
        }
    }

    /// Waits until no run is in flight, or `limit` passed. Returns whether all finished.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Records a fire time that does not run (deadline passed, `Forbid`), moving the cursor.
    pub fn skip(self: &Arc<Self>, job: &Job, due: Timestamp, cursor: Cursor, reason: String) {
        let now = self.clock.now();
        let mut run = new_record(
            job,
            &plan::scheduled_run_id(&job.key.function, &job.key.schedule, due),
            Trigger::Cron { due },
            &self.owner,
        );
        run.status = Some(FunctionRunStatus {
            phase: RunPhase::Skipped,
            end_time: Some(rfc3339(now)),
            message: Some(reason.clone()),
            ..FunctionRunStatus::default()
        });
        tracing::info!(schedule = %job.key, due = %due, %reason, "run skipped");
        let this = Arc::clone(self);
        let prune = prune_of(job);
        let key = job.key.clone();
        tokio::spawn(async move {
            match this.store.create(run, Some(cursor), Some(prune)).await {
                Ok(true) => this.metrics.count(&key, RunPhase::Skipped),
                Ok(false) => {}
                Err(err) => {
                    tracing::error!(schedule = %key, error = %err, "could not record a skipped run")
                }
            }
        });
    }

    /// Starts a run of `job`. It is registered as running at once (so a `Forbid` check right
    /// after sees it) and claimed in the store before the function is called. The handle
    /// resolves to the final record, or to `None` when another scheduler had claimed it.
    pub fn start(
        self: &Arc<Self>,
        job: Arc<Job>,
        trigger: Trigger,
        cursor: Option<Cursor>,
        payload: Option<Bytes>,
    ) -> RunHandle {
        let id = match trigger {
            Trigger::Cron { due } => {
                plan::scheduled_run_id(&job.key.function, &job.key.schedule, due)
            }
            Trigger::Manual => plan::manual_run_id(&job.key.function),
        };
        let (cancel, cancelled) = oneshot::channel();
        self.active()
            .entry(job.key.clone())
            .or_default()
            .insert(id.clone(), cancel);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let this = Arc::clone(self);
        let run_id = id.clone();
        let done = tokio::spawn(async move {
            let result = this
                .claim_and_execute(&job, &run_id, trigger, cursor, payload, cancelled)
                .await;
            if let Err(err) = &result {
                tracing::error!(run = %run_id, schedule = %job.key, error = %err, "run not recorded");
            }
            if let Some(runs) = this.active().get_mut(&job.key) {
                runs.remove(&run_id);
            }
            if this.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
                this.idle.notify_waiters();
            }
            result
        });
        RunHandle { id, done }
    }

    async fn claim_and_execute(
        self: &Arc<Self>,
        job: &Arc<Job>,
        id: &str,
        trigger: Trigger,
        cursor: Option<Cursor>,
        payload: Option<Bytes>,
        cancelled: oneshot::Receiver<String>,
    ) -> Result<Option<FunctionRun>, StoreError> {
        let mut run = new_record(job, id, trigger, &self.owner);
        let started = self.clock.now();
        run.status = Some(FunctionRunStatus {
            phase: RunPhase::Running,
            start_time: Some(rfc3339(started)),
            ..FunctionRunStatus::default()
        });
        if !self.store.create(run.clone(), cursor, None).await? {
            tracing::debug!(run = id, "run already claimed by another scheduler");
            return Ok(None);
        }
        if let Trigger::Cron { due } = trigger {
            let late = self.clock.now().duration_since(due).as_secs_f64().max(0.0);
            self.metrics.lateness.observe(late);
        }
        tracing::info!(run = id, schedule = %job.key, "run started");
        let attempts = self.attempts(job, &mut run, payload);
        let interrupted = tokio::select! {
            () = attempts => None,
            reason = cancelled => Some(reason.unwrap_or_else(|_| "cancelled".to_owned())),
        };
        let status = run.status.get_or_insert_with(FunctionRunStatus::default);
        if let Some(reason) = interrupted {
            status.phase = RunPhase::Interrupted;
            status.message = Some(reason);
        }
        status.end_time = Some(rfc3339(self.clock.now()));
        let final_phase = status.phase;
        self.store.update(run.clone(), Some(prune_of(job))).await?;
        self.metrics.count(&job.key, final_phase);
        tracing::info!(run = id, schedule = %job.key, phase = ?final_phase, "run finished");
        if let Some(notify) = &job.notify
            && (final_phase != RunPhase::Succeeded || notify.on_success)
        {
            tokio::spawn(super::notify::send(notify.url.clone(), run.clone()));
        }
        Ok(Some(run))
    }

    /// Calls the function until an attempt succeeds or the retries are used up, recording
    /// each step. Dropping this future (cancellation) drops the call, which stops the guest.
    async fn attempts(&self, job: &Job, run: &mut FunctionRun, payload: Option<Bytes>) {
        let (body, content_type) = match (payload, &job.payload) {
            (Some(body), _) => (body, "application/octet-stream"),
            (None, Some((body, content_type))) => (body.clone(), *content_type),
            (None, None) => (Bytes::new(), "application/octet-stream"),
        };
        let mut attempt = 1;
        loop {
            run.spec.attempt = attempt;
            let outcome = self.call_once(job, run, body.clone(), content_type).await;
            let status = run.status.get_or_insert_with(FunctionRunStatus::default);
            status.phase = outcome.phase;
            status.http_status = outcome.http_status;
            status.output = outcome.output;
            status.log_tail = outcome.log_tail;
            status.message = outcome.message;
            if outcome.phase == RunPhase::Succeeded || attempt > job.retries {
                return;
            }
            let wait = plan::retry_backoff(job.backoff, attempt, plan::jitter_sample());
            status.phase = RunPhase::Pending;
            status.message = Some(format!(
                "attempt {attempt} ended {:?}{}; retrying in {}",
                outcome.phase,
                status
                    .message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default(),
                humanize(wait)
            ));
            if let Err(err) = self.store.update(run.clone(), None).await {
                tracing::warn!(run = %plan_id(run), error = %err, "could not record a retry");
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
            if let Some(status) = run.status.as_mut() {
                status.phase = RunPhase::Running;
            }
            if let Err(err) = self.store.update(run.clone(), None).await {
                tracing::warn!(run = %plan_id(run), error = %err, "could not record an attempt");
            }
        }
    }

    async fn call_once(
        &self,
        job: &Job,
        run: &FunctionRun,
        body: Bytes,
        content_type: &'static str,
    ) -> Outcome {
        let id = plan_id(run);
        let mut request = Request::new(body);
        *request.method_mut() = http::Method::POST;
        let headers = request.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        let mut put = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        put("x-faas-run-id", id);
        put("x-faas-schedule", &run.spec.schedule);
        put("x-faas-trigger", &run.spec.trigger);
        put("x-faas-attempt", &run.spec.attempt.to_string());
        if let Some(due) = &run.spec.scheduled_time {
            put("x-faas-scheduled-time", due);
        }
        let log_tail = LogTailSink::default();
        let ctx = CallContext {
            timeout: job.timeout,
            log_tail: Some(log_tail.clone()),
            ..CallContext::new(id, &*job.key.function)
        };
        let limit = job.timeout.map_or(BACKSTOP, |t| t + BACKSTOP_SLACK);
        let call = async {
            let response = self.target.call(&job.key.function, request, ctx).await;
            let status = response.status().as_u16();
            let output = read_bounded(response.into_body(), MAX_OUTPUT).await;
            (status, output)
        };
        let Ok((status, output)) = tokio::time::timeout(limit, call).await else {
            return Outcome {
                phase: RunPhase::TimedOut,
                http_status: None,
                output: None,
                log_tail: log_tail.take(),
                message: Some(format!("no answer within {}", humanize(limit))),
            };
        };
        let tail = log_tail.wait(TAIL_WAIT).await;
        let phase = plan::phase_of_status(status);
        let message =
            (phase != RunPhase::Succeeded).then(|| format!("function answered HTTP {status}"));
        Outcome {
            phase,
            http_status: Some(status),
            output: Some(output).filter(|o| !o.is_empty()),
            log_tail: tail.filter(|t| !t.is_empty()),
            message,
        }
    }
}

/// A started run.
pub struct RunHandle {
    /// Its id (also its record's name).
    pub id: String,
    /// Resolves to the final record; `Ok(None)` when another scheduler had claimed the run.
    pub done: tokio::task::JoinHandle<Result<Option<FunctionRun>, StoreError>>,
}

struct Outcome {
    phase: RunPhase,
    http_status: Option<u16>,
    output: Option<String>,
    log_tail: Option<String>,
    message: Option<String>,
}

fn plan_id(run: &FunctionRun) -> &str {
    super::store::run_id(run)
}

fn new_record(job: &Job, id: &str, trigger: Trigger, owner: &str) -> FunctionRun {
    let (trigger, scheduled_time) = match trigger {
        Trigger::Cron { due } => ("cron", Some(rfc3339(due))),
        Trigger::Manual => ("manual", None),
    };
    let mut run = FunctionRun::new(
        id,
        FunctionRunSpec {
            function: job.key.function.to_string(),
            schedule: job.key.schedule.to_string(),
            trigger: trigger.to_owned(),
            scheduled_time,
            attempt: 1,
        },
    );
    run.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(OWNER_ANNOTATION.to_owned(), owner.to_owned());
    run
}

fn prune_of(job: &Job) -> Prune {
    Prune {
        key: job.key.clone(),
        history: job.history,
    }
}

/// Marks `run`, left unfinished by a process that is gone, `Interrupted`.
pub fn interrupted(mut run: FunctionRun, now: Timestamp, reason: &str) -> FunctionRun {
    let status = run.status.get_or_insert_with(FunctionRunStatus::default);
    status.phase = RunPhase::Interrupted;
    status.end_time = Some(rfc3339(now));
    status.message = Some(reason.to_owned());
    run
}

/// Whether `run` is recorded as executed by `owner`.
pub fn owned_by(run: &FunctionRun, owner: &str) -> bool {
    run.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OWNER_ANNOTATION))
        .is_some_and(|o| o == owner)
}

/// Reads the whole body (the function runs until it is sent) but keeps at most `limit` bytes.
async fn read_bounded(mut body: ResponseBody, limit: usize) -> String {
    let mut kept = BytesMut::new();
    let mut total = 0usize;
    let mut error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    total += data.len();
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Err(err) => {
                error = Some(err.to_string());
                break;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if total > kept.len() {
        text.push_str(&format!(
            "\n[output truncated: {total} bytes, first {limit} kept]"
        ));
    }
    if let Some(error) = error {
        text.push_str(&format!("\n[response body failed: {error}]"));
    }
    text
}

/// `250ms`, `2m3s`: durations in messages, to the second above one second.
pub fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("owner", &self.owner)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
