//! Executes runs: claim, attempts with retry backoff, bounded output, cancellation, the final
//! record, metrics and the notification. Shared by the scheduler loop (cron runs) and the
//! management API (runs started by hand).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use faas_api::{FunctionRun, FunctionRunSpec, FunctionRunStatus, RunPhase};
use jiff::Timestamp;
use tokio::sync::{Notify, oneshot};

use super::attempt;
use super::clock::Clock;
use super::job::{Job, JobKey};
use super::metrics::CronMetrics;
use super::notify::{Event, wants};
use super::plan::{self, rfc3339};
use super::store::{Cursor, Prune, RunStore, StoreError};
use faas_invoke::FunctionTarget;

/// Bytes of a run's response body kept in its record.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Annotation naming the platform process that executes a run (orphan detection).
pub const OWNER_ANNOTATION: &str = "faas.dev/owner";

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler, for the fire time `due`.
    Cron { due: Timestamp },
    /// A person or a tool (`faas run`, the dashboard).
    Manual,
    /// Another run's `then` (the job names the parent run).
    Chain,
    /// A function's webhook (`spec.webhook`), called by a CI system or another tool.
    Webhook,
}

/// Starts the runs a finished run's `then` lists (`faas_api::chain`): the host's, which knows
/// every function (the gateway's registry locally, the controller's Function cache in a
/// cluster).
pub trait Chains: Send + Sync {
    /// Starts the runs `run`'s `then` asks for, now that it has ended.
    fn after<'a>(
        &'a self,
        run: &'a FunctionRun,
    ) -> std::pin::Pin<Box<dyn Future<Output = ChainOutcome> + Send + 'a>>;
}

/// What [`Chains::after`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainOutcome {
    /// The ids of the runs started.
    pub started: Vec<String>,
    /// One line per run not started, naming the function and why.
    pub refused: Vec<String>,
}

/// Cancels or waits for runs of this process.
type Cancel = oneshot::Sender<String>;

/// Executes runs and tracks those in flight.
pub struct Runner {
    store: Arc<dyn RunStore>,
    target: Arc<dyn FunctionTarget>,
    metrics: CronMetrics,
    clock: Clock,
    owner: String,
    active: Mutex<HashMap<JobKey, HashMap<String, Cancel>>>,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Set by [`Runner::cancel_all`]: runs cut off from now on were stopped by a shutdown
    /// (a spot drain, a rollout), not by a person.
    shutting_down: AtomicBool,
    /// Where finished runs' `then`s are started, once the host has set it.
    chains: std::sync::OnceLock<Arc<dyn Chains>>,
    /// Where notify URLs from secrets are read, once the host has set it.
    secrets: std::sync::OnceLock<Arc<dyn super::notify::SecretReader>>,
}

impl Runner {
    /// A runner recording into `store`, calling `target`. `owner` names this process in the
    /// records it writes.
    pub fn new(
        store: Arc<dyn RunStore>,
        target: Arc<dyn FunctionTarget>,
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
            shutting_down: AtomicBool::new(false),
            chains: std::sync::OnceLock::new(),
            secrets: std::sync::OnceLock::new(),
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

    /// Cancels everything in flight (shutdown). A scheduled run with attempts left is left
    /// `Pending` for the next scheduler, which gives it its next attempt
    /// ([`Runner::resume`]); the others end `Interrupted`.
    pub fn cancel_all(&self, reason: &str) {
        self.shutting_down.store(true, Ordering::Release);
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
        let prune = prune_of(job, now);
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
            Trigger::Manual | Trigger::Chain | Trigger::Webhook => {
                plan::manual_run_id(&job.key.function, &job.key.schedule)
            }
        };
        self.start_as(job, trigger, cursor, payload, id)
    }

    /// [`Runner::start`] under a given run id: a run someone requested by creating its record
    /// (a `FunctionRun` made by `faas run` against a cluster), which the store adopts.
    pub fn start_as(
        self: &Arc<Self>,
        job: Arc<Job>,
        trigger: Trigger,
        cursor: Option<Cursor>,
        payload: Option<Bytes>,
        id: String,
    ) -> RunHandle {
        let run = running_record(&job, &id, trigger, &self.owner, self.clock.now());
        self.spawn(job, run, trigger, payload, Claim::Create(cursor))
    }

    /// Registers `run` as in flight at once (so a `Forbid` check right after sees it), then in
    /// the background claims it as `claim` says and executes it, unless another scheduler
    /// had claimed it.
    fn spawn(
        self: &Arc<Self>,
        job: Arc<Job>,
        run: FunctionRun,
        trigger: Trigger,
        payload: Option<Bytes>,
        claim: Claim,
    ) -> RunHandle {
        let id = super::store::run_id(&run).to_owned();
        let cancelled = self.register(&job.key, &id);
        let this = Arc::clone(self);
        let run_id = id.clone();
        let done = tokio::spawn(async move {
            let claimed = match claim {
                Claim::Create(cursor) => this.store.create(run.clone(), cursor, None).await,
                Claim::Take => this.store.update(run.clone(), None).await.map(|()| true),
            };
            let result = match claimed {
                Ok(true) => this
                    .execute(&job, run, trigger, payload, cancelled)
                    .await
                    .map(Some),
                Ok(false) => {
                    tracing::debug!(run = %run_id, "run already claimed by another scheduler");
                    Ok(None)
                }
                Err(err) => Err(err),
            };
            if let Err(err) = &result {
                tracing::error!(run = %run_id, schedule = %job.key, error = %err, "run not recorded");
            }
            this.unregister(&job.key, &run_id);
            result
        });
        RunHandle { id, done }
    }

    /// Resumes `run` of `job`, left unfinished during attempt `run.spec.attempt` by a scheduler
    /// that stopped (a leader change, a pod drained off a spot node, `kill -9`), as its next
    /// attempt: what the schedule's retry policy does for an attempt that failed. The record
    /// keeps its id, so the fire time still has exactly one run; it now names this owner.
    /// Only while attempts remain ([`resumable`]); the caller marks the others `Interrupted`.
    pub fn resume(
        self: &Arc<Self>,
        job: Arc<Job>,
        mut run: FunctionRun,
        reason: &str,
    ) -> RunHandle {
        let interrupted = run.spec.attempt.max(1);
        run.spec.attempt = interrupted + 1;
        run.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(OWNER_ANNOTATION.to_owned(), self.owner.clone());
        let status = run.status.get_or_insert_with(FunctionRunStatus::default);
        status.phase = RunPhase::Running;
        status.end_time = None;
        status.message = Some(format!(
            "attempt {interrupted} was interrupted ({reason}); attempt {} under way",
            interrupted + 1
        ));
        let trigger = match run.spec.scheduled_time.as_deref().map(str::parse) {
            Some(Ok(due)) => Trigger::Cron { due },
            _ => Trigger::Manual,
        };
        tracing::info!(run = %super::store::run_id(&run), schedule = %job.key, attempt = interrupted + 1, "resuming an interrupted run");
        self.spawn(job, run, trigger, None, Claim::Take)
    }

    /// Starts `fires` one after the other, each once the one before has ended (catching up
    /// every missed time of a schedule, `catchUp: all`). Never awaited by the caller.
    pub fn start_in_order(self: &Arc<Self>, fires: Vec<Fire>) {
        if fires.is_empty() {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            for fire in fires {
                let handle = this.start(
                    fire.job,
                    Trigger::Cron { due: fire.due },
                    Some(fire.cursor),
                    None,
                );
                let _ = handle.done.await;
            }
        });
    }

    /// Starts the runs of a burst of fire times (everything due at one wake-up of the
    /// scheduler). Claims go to the store in chunks, one operation each, and each chunk's runs
    /// start as soon as it is committed: with 10,000 schedules due in the same second, a
    /// claim per run would make the last run wait for 10,000 store round trips.
    pub fn start_burst(self: &Arc<Self>, fires: Vec<Fire>) {
        let now = self.clock.now();
        let mut fires = fires.into_iter().peekable();
        while fires.peek().is_some() {
            let chunk: Vec<(Fire, String, oneshot::Receiver<String>)> = fires
                .by_ref()
                .take(CLAIM_CHUNK)
                .map(|fire| {
                    let id = plan::scheduled_run_id(
                        &fire.job.key.function,
                        &fire.job.key.schedule,
                        fire.due,
                    );
                    let cancelled = self.register(&fire.job.key, &id);
                    (fire, id, cancelled)
                })
                .collect();
            let this = Arc::clone(self);
            tokio::spawn(async move { this.claim_chunk(chunk, now).await });
        }
    }

    async fn claim_chunk(
        self: Arc<Self>,
        chunk: Vec<(Fire, String, oneshot::Receiver<String>)>,
        now: Timestamp,
    ) {
        let records: Vec<(FunctionRun, Option<Cursor>)> = chunk
            .iter()
            .map(|(fire, id, _)| {
                let trigger = Trigger::Cron { due: fire.due };
                let run = running_record(&fire.job, id, trigger, &self.owner, now);
                (run, Some(fire.cursor.clone()))
            })
            .collect();
        let created = match self.store.create_many(&records).await {
            Ok(created) => created,
            Err(err) => {
                tracing::error!(runs = chunk.len(), error = %err, "could not claim runs: they do not run");
                for (fire, id, _) in &chunk {
                    self.unregister(&fire.job.key, id);
                }
                return;
            }
        };
        for (((fire, id, cancelled), (run, _)), created) in
            chunk.into_iter().zip(records).zip(created)
        {
            if !created {
                self.unregister(&fire.job.key, &id);
                continue;
            }
            let this = Arc::clone(&self);
            tokio::spawn(async move {
                let trigger = Trigger::Cron { due: fire.due };
                if let Err(err) = this.execute(&fire.job, run, trigger, None, cancelled).await {
                    tracing::error!(run = %id, error = %err, "run not recorded");
                }
                this.unregister(&fire.job.key, &id);
            });
        }
    }

    /// Tracks a run as in flight; the receiver hears why it is cancelled.
    fn register(&self, key: &JobKey, id: &str) -> oneshot::Receiver<String> {
        let (cancel, cancelled) = oneshot::channel();
        self.active()
            .entry(key.clone())
            .or_default()
            .insert(id.to_owned(), cancel);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        cancelled
    }

    fn unregister(&self, key: &JobKey, id: &str) {
        if let Some(runs) = self.active().get_mut(key) {
            runs.remove(id);
        }
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Runs a claimed run to its end and records it.
    async fn execute(
        self: &Arc<Self>,
        job: &Arc<Job>,
        mut run: FunctionRun,
        trigger: Trigger,
        payload: Option<Bytes>,
        cancelled: oneshot::Receiver<String>,
    ) -> Result<FunctionRun, StoreError> {
        // Lateness is the first attempt's: a resumed run is late by design.
        if let Trigger::Cron { due } = trigger
            && run.spec.attempt <= 1
        {
            let late = self.clock.now().duration_since(due).as_secs_f64().max(0.0);
            self.metrics.lateness.observe(late);
        }
        let id = super::store::run_id(&run).to_owned();
        tracing::info!(run = %id, schedule = %job.key, "run started");
        if let Some(notify) = &job.notify {
            if wants(notify, Event::Start) {
                tokio::spawn(super::notify::send(
                    notify.clone(),
                    run.clone(),
                    Event::Start,
                    self.secrets.get().cloned(),
                ));
            }
            if let (Trigger::Cron { due }, Some(limit)) = (trigger, job.late_after)
                && run.spec.attempt <= 1
                && self.clock.now().duration_since(due).as_secs_f64() > limit.as_secs_f64()
            {
                tokio::spawn(super::notify::send(
                    notify.clone(),
                    run.clone(),
                    Event::Late,
                    self.secrets.get().cloned(),
                ));
            }
        }
        let attempts = attempt::attempts(&*self.target, &*self.store, job, &mut run, payload);
        let interrupted = tokio::select! {
            () = attempts => None,
            reason = cancelled => Some(reason.unwrap_or_else(|_| "cancelled".to_owned())),
        };
        // Cut off by a shutdown with attempts left: the next scheduler resumes it.
        if let Some(reason) = &interrupted
            && self.shutting_down.load(Ordering::Acquire)
            && resumable(&run, job)
        {
            let status = run.status.get_or_insert_with(FunctionRunStatus::default);
            status.phase = RunPhase::Pending;
            status.message = Some(format!(
                "attempt {} was cut off ({reason}); the next scheduler gives it attempt {}",
                run.spec.attempt.max(1),
                run.spec.attempt.max(1) + 1
            ));
            self.store.update(run.clone(), None).await?;
            tracing::info!(run = %id, schedule = %job.key, "run cut off by shutdown; left for the next scheduler to resume");
            return Ok(run);
        }
        let status = run.status.get_or_insert_with(FunctionRunStatus::default);
        if let Some(reason) = interrupted {
            status.phase = RunPhase::Interrupted;
            status.message = Some(reason);
        }
        status.end_time = Some(rfc3339(self.clock.now()));
        let final_phase = status.phase;
        self.store
            .update(run.clone(), Some(prune_of(job, self.clock.now())))
            .await?;
        self.metrics.count(&job.key, final_phase);
        tracing::info!(run = %id, schedule = %job.key, phase = ?final_phase, "run finished");
        let event = Event::of_end(final_phase);
        if let Some(notify) = job.notify.as_ref().filter(|n| wants(n, event)) {
            tokio::spawn(super::notify::send(
                notify.clone(),
                run.clone(),
                event,
                self.secrets.get().cloned(),
            ));
        }
        self.start_next(&mut run).await;
        Ok(run)
    }
}

impl Runner {
    /// Where finished runs' `then`s are started (the host, once it knows its functions).
    /// Set once; later calls are ignored.
    pub fn set_chains(&self, chains: Arc<dyn Chains>) {
        let _ = self.chains.set(chains);
    }

    /// Where notify URLs given by `urlFrom` are read. Set once; later calls are ignored.
    pub fn set_secrets(&self, secrets: Arc<dyn super::notify::SecretReader>) {
        let _ = self.secrets.set(secrets);
    }

    /// Starts what `run`'s `then` asks for and records on it what was started and what
    /// was not (in `status.nextRuns` and its message). A run that was started is the
    /// other function's; one that could not be is said here, never silently dropped.
    async fn start_next(&self, run: &mut FunctionRun) {
        let Some(chains) = self.chains.get() else {
            return;
        };
        let outcome = chains.after(run).await;
        if outcome.started.is_empty() && outcome.refused.is_empty() {
            return;
        }
        let id = super::store::run_id(run).to_owned();
        for why in &outcome.refused {
            tracing::warn!(run = %id, %why, "a chained run was not started");
        }
        let status = run.status.get_or_insert_with(FunctionRunStatus::default);
        status.next_runs = outcome.started;
        if !outcome.refused.is_empty() {
            let refused = format!("then: {}", outcome.refused.join("; "));
            status.message = Some(match status.message.take() {
                Some(message) => format!("{message}; {refused}"),
                None => refused,
            });
        }
        if let Err(err) = self.store.update(run.clone(), None).await {
            tracing::warn!(run = %id, error = %err, "could not record the runs a run started");
        }
    }
}

/// How a run started in the background claims its record before it runs.
enum Claim {
    /// A new run: its record is created (with the schedule's cursor), unless another
    /// scheduler created it first.
    Create(Option<Cursor>),
    /// A run this scheduler takes over: its record is rewritten as its own.
    Take,
}

/// A fire time the scheduler decided to run.
pub struct Fire {
    pub job: Arc<Job>,
    pub due: Timestamp,
    /// The schedule's cursor once this fire time is claimed.
    pub cursor: Cursor,
}

/// Runs claimed per store operation in a burst: enough to amortize a transaction, few enough
/// that a burst's first runs start before all of it is claimed.
const CLAIM_CHUNK: usize = 256;

/// A started run.
pub struct RunHandle {
    /// Its id (also its record's name).
    pub id: String,
    /// Resolves to the final record; `Ok(None)` when another scheduler had claimed the run.
    pub done: tokio::task::JoinHandle<Result<Option<FunctionRun>, StoreError>>,
}

/// The record of a run that starts now.
fn running_record(
    job: &Job,
    id: &str,
    trigger: Trigger,
    owner: &str,
    now: Timestamp,
) -> FunctionRun {
    let mut run = new_record(job, id, trigger, owner);
    run.status = Some(FunctionRunStatus {
        phase: RunPhase::Running,
        start_time: Some(rfc3339(now)),
        ..FunctionRunStatus::default()
    });
    run
}

fn new_record(job: &Job, id: &str, trigger: Trigger, owner: &str) -> FunctionRun {
    let (trigger, scheduled_time) = match trigger {
        Trigger::Cron { due } => ("cron", Some(rfc3339(due))),
        Trigger::Manual => ("manual", None),
        Trigger::Chain => (faas_api::chain::TRIGGER, None),
        Trigger::Webhook => (faas_api::webhook::TRIGGER, None),
    };
    let mut run = FunctionRun::new(
        id,
        FunctionRunSpec {
            function: job.key.function.to_string(),
            schedule: job.key.schedule.to_string(),
            trigger: trigger.to_owned(),
            scheduled_time,
            attempt: 1,
            options: job.options.shown(),
            parent_run: job.parent.as_ref().map(|p| p.run.clone()),
            chain_depth: job.parent.as_ref().map_or(0, |p| p.depth),
        },
    );
    run.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(OWNER_ANNOTATION.to_owned(), owner.to_owned());
    run
}

fn prune_of(job: &Job, now: Timestamp) -> Prune {
    Prune {
        key: job.key.clone(),
        history: job.history,
        now,
    }
}

/// Whether `run` of `job`, left unfinished by a scheduler that is gone, gets another attempt:
/// a scheduled run whose schedule still exists and allows more attempts than it made
/// (`retries.limit` after the first). Runs started by hand are the caller's to repeat.
pub fn resumable(run: &FunctionRun, job: &Job) -> bool {
    run.spec.trigger == "cron" && run.spec.attempt.max(1) <= job.retries
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

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("owner", &self.owner)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
