//! The scheduler: one task, one timer over a heap of next fire times. It sleeps until the
//! earliest one (never polls), fires what is due, and re-arms those schedules. Changes to the
//! set of schedules arrive as a whole new set and are diffed.
//!
//! Only one scheduler fires per state store. In local mode that is whoever holds an exclusive
//! lock on `<state>/scheduler.lock`; in a cluster, the holder of the controller's Lease
//! ([`Leadership`]). The others stand by and retry, and whoever takes over
//! interrupts the runs the previous holder left unfinished and catches up what it missed (at
//! most one run per schedule). Two schedulers that both believe they lead still cannot run a
//! fire time twice: its run id is deterministic and the store creates it once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use faas_api::ConcurrencyPolicy;
use faas_api::chain::Parent;
use faas_api::options::Resolved;
use jiff::Timestamp;
use tokio::sync::watch;

use super::job::{Job, JobKey};
use super::plan::humanize;
use super::plan::{self, CatchUp};
use super::run::{Fire, RunHandle, Runner, Trigger, interrupted, owned_by, resumable};
use super::store::Cursor;

/// Longest single sleep: the timer re-checks the clock at least this often, which bounds the
/// effect of a wall-clock jump (NTP step, suspended laptop) on fire times.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Why a run a previous scheduler left unfinished ended (or got another attempt).
const ORPHANED: &str = "the scheduler that ran it stopped before it finished";

/// Schedules re-armed between two yields to the runtime after a burst.
const REARM_BATCH: usize = 256;

/// Whether this scheduler fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// Not yet tried to take the lock.
    Starting,
    /// Holds the lock and fires.
    Leader,
    /// Another scheduler holds the lock; this one waits to take over.
    Standby,
    /// Shut down.
    Stopped,
}

/// How a scheduler knows it is the one that fires.
#[derive(Clone, Debug, Default)]
pub enum Leadership {
    /// Always (tests, a single process).
    #[default]
    Always,
    /// While it holds an exclusive lock on this file (local mode: one per state directory).
    LockFile(PathBuf),
    /// While this says `true` (cluster mode: the controller's Kubernetes Lease). When it turns
    /// `false` the scheduler stops firing at once; runs in flight go on, and the next leader
    /// finds them through the store.
    Watch(watch::Receiver<bool>),
}

/// Scheduler settings.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// What makes this the only scheduler of its store.
    pub leadership: Leadership,
    /// How often a standby scheduler retries the lock.
    pub standby_retry: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            leadership: Leadership::Always,
            standby_retry: Duration::from_secs(1),
        }
    }
}

/// Why a run could not start by hand.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("function {function} has no schedule named {schedule:?}")]
    UnknownSchedule { function: String, schedule: String },
}

/// A running scheduler.
pub struct Scheduler {
    runner: Arc<Runner>,
    jobs: Arc<Mutex<HashMap<JobKey, Arc<Job>>>>,
    changes: watch::Sender<u64>,
    role: watch::Receiver<Role>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Scheduler {
    /// Starts the scheduler task with no schedules.
    pub fn start(runner: Arc<Runner>, options: SchedulerOptions) -> Arc<Self> {
        let jobs = Arc::new(Mutex::new(HashMap::new()));
        let (changes, changed) = watch::channel(0);
        let (role_tx, role) = watch::channel(Role::Starting);
        let (stop, stopped) = watch::channel(false);
        let state = Loop {
            runner: Arc::clone(&runner),
            jobs: Arc::clone(&jobs),
            options,
            role: role_tx,
            leading: false,
            lock: None,
            armed: HashMap::new(),
            heap: BinaryHeap::new(),
            cursors: HashMap::new(),
            generation: 0,
        };
        let task = tokio::spawn(state.run(changed, stopped));
        Arc::new(Self {
            runner,
            jobs,
            changes,
            role,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// Replaces the set of schedules.
    pub fn set_jobs(&self, jobs: Vec<Job>) {
        let table = jobs
            .into_iter()
            .map(|job| (job.key.clone(), Arc::new(job)))
            .collect();
        *self.jobs.lock().unwrap_or_else(|p| p.into_inner()) = table;
        self.changes.send_modify(|n| *n += 1);
    }

    /// Every schedule, in no particular order.
    pub fn jobs(&self) -> Vec<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The schedule `key`, if it exists.
    pub fn job(&self, key: &JobKey) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    pub fn role(&self) -> Role {
        *self.role.borrow()
    }

    /// A receiver of role changes.
    pub fn role_changes(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Waits until the role is `role` (tests, startup logs).
    pub async fn wait_for_role(&self, role: Role) {
        let mut watch = self.role.clone();
        let _ = watch.wait_for(|r| *r == role).await;
    }

    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// Runs `function` now, with the settings of `schedule` when named (its payload unless
    /// `payload` is given, its timeout, retries, history and notification) or as a plain
    /// manual run. Concurrency policies do not apply: a person asked for this run.
    ///
    /// `options`: the run's own, resolved by the caller against the function's declarations
    /// (`faas_api::options::resolve`, the schedule's values under the person's); `None` runs
    /// with the schedule's.
    pub fn run_now(
        &self,
        function: &str,
        schedule: Option<&str>,
        payload: Option<Bytes>,
        options: Option<Resolved>,
    ) -> Result<RunHandle, StartError> {
        let job = self.manual_job(function, schedule, options)?;
        Ok(self.runner.start(job, Trigger::Manual, None, payload))
    }

    /// A run started by the function's webhook: [`Scheduler::run_now`] recorded as
    /// `trigger: webhook`.
    pub fn run_from_webhook(
        &self,
        function: &str,
        schedule: Option<&str>,
        payload: Option<Bytes>,
        options: Resolved,
    ) -> Result<RunHandle, StartError> {
        let job = self.manual_job(function, schedule, Some(options))?;
        Ok(self.runner.start(job, Trigger::Webhook, None, payload))
    }

    /// A run started by `parent`'s `then` (`faas_api::chain`): [`Scheduler::run_now`] that
    /// records its parent and depth.
    pub fn run_chained(
        &self,
        function: &str,
        schedule: Option<&str>,
        payload: Option<Bytes>,
        options: Resolved,
        parent: Parent,
    ) -> Result<RunHandle, StartError> {
        let job = self.manual_job(function, schedule, Some(options))?;
        let job = Arc::new(job.with_parent(Some(parent)));
        Ok(self.runner.start(job, Trigger::Chain, None, payload))
    }

    /// [`Scheduler::run_now`] under the id of a run record someone created to ask for it:
    /// `trigger` says who (a person, a webhook); `parent` when another run's `then` asked
    /// (a cluster's chained run, whatever `trigger` says).
    #[allow(clippy::too_many_arguments)]
    pub fn run_requested(
        &self,
        function: &str,
        schedule: Option<&str>,
        payload: Option<Bytes>,
        options: Option<Resolved>,
        id: String,
        trigger: Trigger,
        parent: Option<Parent>,
    ) -> Result<RunHandle, StartError> {
        let job = self.manual_job(function, schedule, options)?;
        let (job, trigger) = match parent {
            Some(parent) => (Arc::new(job.with_parent(Some(parent))), Trigger::Chain),
            None => (job, trigger),
        };
        Ok(self.runner.start_as(job, trigger, None, payload, id))
    }

    fn manual_job(
        &self,
        function: &str,
        schedule: Option<&str>,
        options: Option<Resolved>,
    ) -> Result<Arc<Job>, StartError> {
        let job = match schedule {
            None => Arc::new(Job::manual(function)),
            Some(name) => self.job(&JobKey::new(function, name)).ok_or_else(|| {
                StartError::UnknownSchedule {
                    function: function.to_owned(),
                    schedule: name.to_owned(),
                }
            })?,
        };
        Ok(match options {
            Some(options) => Arc::new(job.with_options(options)),
            None => job,
        })
    }

    /// Stops firing and releases the lock (a standby takes over), lets runs in flight finish
    /// within `grace`, then interrupts the rest and waits for their records.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        if !self.runner.wait_idle(grace).await {
            let left = self.runner.in_flight();
            tracing::warn!(
                runs = left,
                "runs still going at the end of the grace period: interrupting them"
            );
            self.runner
                .cancel_all("the platform shut down before the run finished");
            self.runner.wait_idle(Duration::from_secs(5)).await;
        }
    }
}

/// Resolves when an external leadership changes; never without one.
async fn leader_changed(
    leadership: &mut Option<watch::Receiver<bool>>,
) -> Result<(), watch::error::RecvError> {
    match leadership {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

struct Armed {
    job: Arc<Job>,
    next: Option<Timestamp>,
    generation: u64,
}

struct Loop {
    runner: Arc<Runner>,
    jobs: Arc<Mutex<HashMap<JobKey, Arc<Job>>>>,
    options: SchedulerOptions,
    role: watch::Sender<Role>,
    /// Whether this scheduler fires.
    leading: bool,
    /// The lock held while leading; closing it releases the lock.
    lock: Option<File>,
    armed: HashMap<JobKey, Armed>,
    /// Next fire times. Entries of re-armed or removed schedules stay until popped and are
    /// recognised as stale by their generation (cheaper than removing from the middle).
    heap: BinaryHeap<Reverse<(Timestamp, u64, JobKey)>>,
    cursors: HashMap<JobKey, Cursor>,
    generation: u64,
}

impl Loop {
    async fn run(mut self, mut changes: watch::Receiver<u64>, mut stop: watch::Receiver<bool>) {
        changes.mark_changed();
        let mut leadership = match &self.options.leadership {
            Leadership::Watch(rx) => Some(rx.clone()),
            _ => None,
        };
        loop {
            if self.leading && !self.still_leading() {
                self.step_down();
            }
            if !self.leading && self.try_lead() {
                self.leading = true;
                self.take_over().await;
            }
            let leading = self.leading;
            let sleep = if leading {
                self.heap
                    .peek()
                    .map_or(MAX_SLEEP, |Reverse((at, ..))| {
                        self.runner.clock().until(*at)
                    })
                    .min(MAX_SLEEP)
            } else {
                self.options.standby_retry
            };
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.apply_jobs();
                }
                () = tokio::time::sleep(sleep) => {
                    if leading && self.still_leading() {
                        self.fire_due().await;
                    }
                }
                // A lost Lease stops the firing now, not at the next fire time.
                changed = leader_changed(&mut leadership) => {
                    if changed.is_err() {
                        leadership = None;
                    }
                }
            }
        }
        for key in self.armed.keys() {
            self.runner.metrics().set_next(key, None);
        }
        self.role.send_replace(Role::Stopped);
        drop(self.lock.take());
    }

    /// Whether an external leadership still says this scheduler leads.
    fn still_leading(&self) -> bool {
        match &self.options.leadership {
            Leadership::Watch(rx) => *rx.borrow(),
            Leadership::Always | Leadership::LockFile(_) => true,
        }
    }

    /// Stops firing: nothing stays armed; taking over again re-reads the store and catches
    /// up what was missed meanwhile.
    fn step_down(&mut self) {
        tracing::warn!("scheduler: leadership lost, not firing until it comes back");
        self.leading = false;
        self.heap.clear();
        self.role.send_replace(Role::Standby);
    }

    /// Takes the lead if it can: the lock if free, or the external leadership's word.
    fn try_lead(&mut self) -> bool {
        let path = match &self.options.leadership {
            Leadership::Always => return true,
            Leadership::Watch(rx) => {
                let leads = *rx.borrow();
                if !leads && *self.role.borrow() != Role::Standby {
                    self.role.send_replace(Role::Standby);
                }
                return leads;
            }
            Leadership::LockFile(path) => path,
        };
        let file = match File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
        {
            Ok(file) => file,
            Err(err) => {
                tracing::error!(path = %path.display(), error = %err, "cannot open the scheduler lock");
                return false;
            }
        };
        match file.try_lock() {
            Ok(()) => {
                self.lock = Some(file);
                true
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                if *self.role.borrow() != Role::Standby {
                    self.role.send_replace(Role::Standby);
                }
                false
            }
            Err(std::fs::TryLockError::Error(err)) => {
                tracing::error!(path = %path.display(), error = %err, "cannot lock the scheduler lock");
                false
            }
        }
    }

    /// Becoming the scheduler: finish the previous holder's business (its unfinished runs
    /// get their next attempt when their schedule's retries allow, else are `Interrupted`),
    /// then arm everything with catch-up.
    async fn take_over(&mut self) {
        let store = Arc::clone(self.runner.store());
        let now = self.runner.clock().now();
        match store.unfinished().await {
            Ok(runs) => {
                for run in runs {
                    // Runs started by hand on another platform are that platform's business.
                    if run.spec.trigger != "cron" || owned_by(&run, self.runner.owner()) {
                        continue;
                    }
                    // Its schedule's retry policy decides, as for an attempt that failed.
                    let key = JobKey::new(&run.spec.function, &run.spec.schedule);
                    let job = self
                        .jobs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&key)
                        .cloned();
                    if let Some(job) = job
                        && resumable(&run, &job)
                    {
                        let _ = self.runner.resume(job, run, ORPHANED);
                        continue;
                    }
                    let run = interrupted(run, now, ORPHANED);
                    if let Err(err) = store.update(run, None).await {
                        tracing::warn!(error = %err, "could not mark an orphaned run interrupted");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not look for orphaned runs"),
        }
        match store.cursors().await {
            Ok(cursors) => {
                self.cursors = cursors.into_iter().map(|c| (c.key.clone(), c)).collect();
            }
            Err(err) => {
                tracing::error!(error = %err, "could not read schedule cursors: missed runs are not caught up")
            }
        }
        tracing::debug!("scheduler lock taken");
        self.role.send_replace(Role::Leader);
        let jobs: Vec<_> = self.armed.values().map(|a| Arc::clone(&a.job)).collect();
        for job in jobs {
            self.arm(job, false);
        }
    }

    /// Diffs the new set of schedules against the armed one.
    fn apply_jobs(&mut self) {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let removed: Vec<JobKey> = self
            .armed
            .keys()
            .filter(|key| !jobs.contains_key(*key))
            .cloned()
            .collect();
        for key in removed {
            self.armed.remove(&key);
            self.runner.metrics().set_next(&key, None);
        }
        for (key, job) in jobs {
            let previous = self.armed.get(&key).map(|a| Arc::clone(&a.job));
            if previous.as_deref() == Some(&*job) {
                continue;
            }
            let resumed = previous.is_some_and(|p| p.suspend && !job.suspend);
            if self.leading {
                self.arm(job, resumed);
            } else {
                self.armed.insert(
                    key,
                    Armed {
                        job,
                        next: None,
                        generation: 0,
                    },
                );
            }
        }
    }

    /// Moves a schedule's cursor without a run, and records it in the background (the loop
    /// never awaits the store).
    fn move_cursor(&mut self, cursor: Cursor) {
        self.cursors.insert(cursor.key.clone(), cursor.clone());
        let store = Arc::clone(self.runner.store());
        tokio::spawn(async move {
            if let Err(err) = store.set_cursor(cursor).await {
                tracing::warn!(error = %err, "could not record a schedule cursor");
            }
        });
    }

    /// Puts `job` on the timer: catch up what its cursor says was missed, then wait for its
    /// next time. `fresh` starts it from now (a schedule resumed after `suspend` does not run
    /// what fell in the suspension).
    fn arm(&mut self, job: Arc<Job>, fresh: bool) {
        self.generation += 1;
        let generation = self.generation;
        let key = job.key.clone();
        let now = self.runner.clock().now();
        if job.suspend {
            self.runner.metrics().set_next(&key, None);
            self.armed.insert(
                key,
                Armed {
                    job,
                    next: None,
                    generation,
                },
            );
            return;
        }
        let timing = job.timing().to_owned();
        let cursor = self
            .cursors
            .get(&key)
            .filter(|c| c.timing == timing && !fresh)
            .cloned();
        match cursor {
            Some(cursor) => match plan::catch_up(&job, cursor.last, now) {
                CatchUp::Nothing => {}
                CatchUp::Run(due) | CatchUp::Skip(due) => {
                    tracing::info!(schedule = %key, due = %due, "catching up a missed run");
                    if let Some(fire) = self.fire(&job, due, now) {
                        self.runner.start_burst(vec![fire]);
                    }
                }
                CatchUp::Each(missed) => {
                    tracing::info!(schedule = %key, missed = missed.len(), "catching up every missed run, one after the other (catchUp: all)");
                    let fires: Vec<Fire> = missed
                        .into_iter()
                        .filter_map(|due| self.fire(&job, due, now))
                        .collect();
                    self.runner.start_in_order(fires);
                }
                CatchUp::Drop(latest) => {
                    tracing::info!(schedule = %key, latest = %latest, "missed runs not caught up (catchUp: none)");
                    self.move_cursor(Cursor {
                        key: key.clone(),
                        timing: timing.clone(),
                        last: latest,
                    });
                }
            },
            // A schedule seen for the first time (or with a new expression) starts now.
            None => self.move_cursor(Cursor {
                key: key.clone(),
                timing,
                last: now,
            }),
        }
        let next = plan::next_fire(&job, now);
        self.runner.metrics().set_next(&key, next);
        if let Some(at) = next {
            self.heap.push(Reverse((at, generation, key.clone())));
        }
        self.armed.insert(
            key,
            Armed {
                job,
                next,
                generation,
            },
        );
    }

    /// Fires every schedule that is due, then re-arms them. Starting all runs before computing
    /// any next time keeps the lateness of the last due schedule low, and yielding while
    /// re-arming lets the runs of a big burst use this thread too.
    async fn fire_due(&mut self) {
        let now = self.runner.clock().now();
        let mut fired = Vec::new();
        let mut starting = Vec::new();
        while let Some(Reverse((at, generation, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            let (at, generation) = (*at, *generation);
            let Some(Reverse((_, _, key))) = self.heap.pop() else {
                break;
            };
            let Some(armed) = self.armed.get(&key) else {
                continue;
            };
            if armed.generation != generation || armed.next != Some(at) {
                continue;
            }
            let job = Arc::clone(&armed.job);
            // Woken more than a second late (a suspended machine): run only the latest time
            // that passed, never a burst.
            let due = if now.duration_since(at) >= jiff::SignedDuration::from_secs(1) {
                job.cron.latest_between(at, now, &job.zone).unwrap_or(at)
            } else {
                at
            };
            if let Some(fire) = self.fire(&job, due, now) {
                starting.push(fire);
            }
            fired.push(job);
        }
        self.runner.start_burst(starting);
        for (n, job) in fired.into_iter().enumerate() {
            if n % REARM_BATCH == REARM_BATCH - 1 {
                tokio::task::yield_now().await;
            }
            let next = plan::next_fire(&job, now);
            self.runner.metrics().set_next(&job.key, next);
            if let Some(armed) = self.armed.get_mut(&job.key) {
                armed.next = next;
                if let Some(at) = next {
                    self.heap
                        .push(Reverse((at, armed.generation, job.key.clone())));
                }
            }
        }
    }

    /// One fire time of `job`: the run to start, or `None` after recording why not.
    fn fire(&mut self, job: &Arc<Job>, due: Timestamp, now: Timestamp) -> Option<Fire> {
        let cursor = Cursor {
            key: job.key.clone(),
            timing: job.timing().to_owned(),
            last: due,
        };
        self.cursors.insert(job.key.clone(), cursor.clone());
        if !plan::within_deadline(due, now, job.starting_deadline) {
            let late = std::time::Duration::try_from(now.duration_since(due)).unwrap_or_default();
            let deadline = job.starting_deadline.unwrap_or_default();
            let reason = format!(
                "not started within its startingDeadline of {} (the scheduler reached it {} late)",
                humanize(deadline),
                humanize(late)
            );
            self.runner.skip(job, due, cursor, reason);
            return None;
        }
        match job.policy {
            ConcurrencyPolicy::Forbid => {
                if let Some(running) = self.runner.running(&job.key).first() {
                    let reason =
                        format!("run {running} is still running (concurrencyPolicy: Forbid)");
                    self.runner.skip(job, due, cursor, reason);
                    return None;
                }
            }
            ConcurrencyPolicy::Replace => {
                let id = plan::scheduled_run_id(&job.key.function, &job.key.schedule, due);
                self.runner.cancel_schedule(
                    &job.key,
                    &format!("replaced by run {id} (concurrencyPolicy: Replace)"),
                );
            }
            ConcurrencyPolicy::Allow => {}
        }
        Some(Fire {
            job: Arc::clone(job),
            due,
            cursor,
        })
    }
}
