//! Where runs are recorded, behind one trait: SQLite in local mode ([`super::sqlite`]),
//! `FunctionRun` resources in cluster mode (wired by the controller), memory for tests and
//! benchmarks of the scheduler alone.
//!
//! Records are `FunctionRun` objects in every backend, so the CLI and the API show the same
//! shape whichever store is behind them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use faas_api::{FunctionRun, RunPhase};
use jiff::Timestamp;

use super::job::{History, JobKey};
use super::plan::{counts_as_success, is_final};

/// A store operation in flight.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why the store did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("run store: {0}")]
    Backend(String),
    #[error("run store is closed")]
    Closed,
}

/// The last fire time a schedule handled (fired or skipped), and the timing it was computed
/// with (see [`super::Job::timing`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    pub key: JobKey,
    pub timing: String,
    pub last: Timestamp,
}

/// Drop finished runs of one schedule beyond its history limits, or older than its
/// `keep_for` at `now`.
#[derive(Clone, Debug, PartialEq)]
pub struct Prune {
    pub key: JobKey,
    pub history: History,
    pub now: Timestamp,
}

impl Prune {
    /// Finished runs that ended before this go whatever the counts.
    pub fn cutoff(&self) -> Option<Timestamp> {
        let keep = jiff::SignedDuration::try_from(self.history.keep_for?).ok()?;
        self.now.checked_sub(keep).ok()
    }
}

/// Which runs to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    pub function: Option<String>,
    pub schedule: Option<String>,
    pub phase: Option<RunPhase>,
    pub limit: Option<usize>,
}

impl RunQuery {
    pub fn matches(&self, run: &FunctionRun) -> bool {
        self.function
            .as_ref()
            .is_none_or(|f| *f == run.spec.function)
            && self
                .schedule
                .as_ref()
                .is_none_or(|s| *s == run.spec.schedule)
            && self
                .phase
                .is_none_or(|p| run.status.as_ref().map(|s| s.phase) == Some(p))
    }
}

/// Run records and schedule cursors.
pub trait RunStore: Send + Sync + 'static {
    /// Creates `run` unless a run with its id exists (returns whether it created it); in the
    /// same transaction moves `cursor` and prunes. A scheduled run's id is deterministic, so
    /// `false` means another scheduler already claimed this fire time.
    fn create(
        &self,
        run: FunctionRun,
        cursor: Option<Cursor>,
        prune: Option<Prune>,
    ) -> StoreFuture<'_, bool>;
    /// [`RunStore::create`] for many runs (a burst of fire times), in one transaction where the
    /// backend has them. Says, in order, whether each was created.
    fn create_many<'a>(
        &'a self,
        runs: &'a [(FunctionRun, Option<Cursor>)],
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            let mut created = Vec::with_capacity(runs.len());
            for (run, cursor) in runs {
                created.push(self.create(run.clone(), cursor.clone(), None).await?);
            }
            Ok(created)
        })
    }
    /// Replaces an existing run's record, then prunes.
    fn update(&self, run: FunctionRun, prune: Option<Prune>) -> StoreFuture<'_, ()>;
    fn get(&self, id: String) -> StoreFuture<'_, Option<FunctionRun>>;
    fn list(&self, query: RunQuery) -> StoreFuture<'_, Vec<FunctionRun>>;
    fn cursors(&self) -> StoreFuture<'_, Vec<Cursor>>;
    fn set_cursor(&self, cursor: Cursor) -> StoreFuture<'_, ()>;
    /// Runs still `Pending` or `Running`.
    fn unfinished(&self) -> StoreFuture<'_, Vec<FunctionRun>>;
    /// Where run `id`'s whole log is written, when this store keeps logs.
    fn run_log(&self, _id: &str) -> Option<faas_invoke::RunLog> {
        None
    }
    /// Up to `limit` bytes of run `id`'s log from `offset`; `None` when there is none.
    fn read_log(
        &self,
        _id: String,
        _offset: u64,
        _limit: usize,
    ) -> StoreFuture<'_, Option<crate::run_log::LogChunk>> {
        Box::pin(async { Ok(None) })
    }
}

/// Run id of a record.
pub fn run_id(run: &FunctionRun) -> &str {
    run.metadata.name.as_deref().unwrap_or_default()
}

/// Phase of a record (`Pending` without a status).
pub fn phase(run: &FunctionRun) -> RunPhase {
    run.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

/// Ids to delete so that at most `history` finished runs of each kind remain and none that
/// ended before the cutoff of `keep_for`; `runs` is newest first and holds only runs of the
/// pruned schedule. Unfinished runs are never victims.
pub fn prune_victims<'a>(
    runs: impl Iterator<Item = &'a FunctionRun>,
    prune: &Prune,
) -> Vec<&'a str> {
    let cutoff = prune.cutoff();
    let (mut succeeded, mut failed) = (0u32, 0u32);
    let mut victims = Vec::new();
    for run in runs {
        let phase = phase(run);
        if !is_final(phase) {
            continue;
        }
        let (seen, keep) = if counts_as_success(phase) {
            (&mut succeeded, prune.history.succeeded)
        } else {
            (&mut failed, prune.history.failed)
        };
        *seen += 1;
        let ended = run
            .status
            .as_ref()
            .and_then(|s| s.end_time.as_deref())
            .and_then(|t| t.parse::<Timestamp>().ok());
        let too_old = matches!((cutoff, ended), (Some(cutoff), Some(ended)) if ended < cutoff);
        if *seen > keep || too_old {
            victims.push(run_id(run));
        }
    }
    victims
}

/// A store in memory: the scheduler's tests under a paused clock (no I/O threads that the
/// paused clock would race) and its benchmark without disk.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    next_seq: u64,
    runs: HashMap<String, (u64, FunctionRun)>,
    /// Run ids of each schedule by creation order, so pruning one schedule never scans
    /// the others.
    by_schedule: HashMap<JobKey, BTreeMap<u64, String>>,
    cursors: HashMap<JobKey, Cursor>,
}

impl Memory {
    fn prune(&mut self, prune: &Prune) {
        let Some(ids) = self.by_schedule.get_mut(&prune.key) else {
            return;
        };
        let runs = &self.runs;
        let victims: Vec<(u64, String)> = {
            let listed: Vec<(u64, &FunctionRun)> = ids
                .iter()
                .rev()
                .filter_map(|(seq, id)| runs.get(id).map(|(_, run)| (*seq, run)))
                .collect();
            let doomed = prune_victims(listed.iter().map(|(_, run)| *run), prune);
            listed
                .iter()
                .filter(|(_, run)| doomed.contains(&run_id(run)))
                .map(|(seq, run)| (*seq, run_id(run).to_owned()))
                .collect()
        };
        for (seq, id) in victims {
            ids.remove(&seq);
            self.runs.remove(&id);
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RunStore for MemoryStore {
    fn create(
        &self,
        run: FunctionRun,
        cursor: Option<Cursor>,
        prune: Option<Prune>,
    ) -> StoreFuture<'_, bool> {
        let mut memory = self.lock();
        let id = run_id(&run).to_owned();
        let created = !memory.runs.contains_key(&id);
        if created {
            memory.next_seq += 1;
            let seq = memory.next_seq;
            memory
                .by_schedule
                .entry(JobKey::new(&run.spec.function, &run.spec.schedule))
                .or_default()
                .insert(seq, id.clone());
            memory.runs.insert(id, (seq, run));
            if let Some(cursor) = cursor {
                memory.cursors.insert(cursor.key.clone(), cursor);
            }
            if let Some(prune) = prune {
                memory.prune(&prune);
            }
        }
        Box::pin(std::future::ready(Ok(created)))
    }

    fn update(&self, run: FunctionRun, prune: Option<Prune>) -> StoreFuture<'_, ()> {
        let mut memory = self.lock();
        let id = run_id(&run).to_owned();
        if let Some(slot) = memory.runs.get_mut(&id) {
            slot.1 = run;
        }
        if let Some(prune) = prune {
            memory.prune(&prune);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn get(&self, id: String) -> StoreFuture<'_, Option<FunctionRun>> {
        let found = self.lock().runs.get(&id).map(|(_, r)| r.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn list(&self, query: RunQuery) -> StoreFuture<'_, Vec<FunctionRun>> {
        let memory = self.lock();
        let mut runs: Vec<_> = memory
            .runs
            .values()
            .filter(|(_, r)| query.matches(r))
            .collect();
        runs.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        let runs = runs
            .into_iter()
            .take(query.limit.unwrap_or(usize::MAX))
            .map(|(_, r)| r.clone())
            .collect();
        Box::pin(std::future::ready(Ok(runs)))
    }

    fn cursors(&self) -> StoreFuture<'_, Vec<Cursor>> {
        let cursors = self.lock().cursors.values().cloned().collect();
        Box::pin(std::future::ready(Ok(cursors)))
    }

    fn set_cursor(&self, cursor: Cursor) -> StoreFuture<'_, ()> {
        self.lock().cursors.insert(cursor.key.clone(), cursor);
        Box::pin(std::future::ready(Ok(())))
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<FunctionRun>> {
        let runs = self
            .lock()
            .runs
            .values()
            .filter(|(_, r)| !is_final(phase(r)))
            .map(|(_, r)| r.clone())
            .collect();
        Box::pin(std::future::ready(Ok(runs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, phase: RunPhase, ended: Option<&str>) -> FunctionRun {
        let mut run = FunctionRun::new(id, faas_api::FunctionRunSpec::default());
        run.status = Some(faas_api::FunctionRunStatus {
            phase,
            end_time: ended.map(Into::into),
            ..Default::default()
        });
        run
    }

    fn prune(keep_for: Option<std::time::Duration>) -> Prune {
        Prune {
            key: JobKey::new("f", "s"),
            history: History {
                succeeded: 3,
                failed: 1,
                keep_for,
            },
            now: "2026-01-10T00:00:00Z".parse().expect("ts"),
        }
    }

    #[test]
    fn prune_keeps_the_newest_of_each_kind_and_never_unfinished_runs() {
        use RunPhase::*;
        let runs: Vec<FunctionRun> = [
            ("r9", Running),
            ("r8", Succeeded),
            ("r7", Failed),
            ("r6", Succeeded),
            ("r5", Skipped),
            ("r4", Succeeded),
            ("r3", Succeeded),
            ("r2", TimedOut),
            ("r1", Pending),
        ]
        .iter()
        .map(|(id, p)| record(id, *p, None))
        .collect();
        let victims = prune_victims(runs.iter(), &prune(None));
        assert_eq!(victims, ["r5", "r3", "r2"]);
    }

    #[test]
    fn prune_by_age_takes_finished_runs_ended_before_the_cutoff_whatever_the_counts() {
        use RunPhase::*;
        let day = std::time::Duration::from_secs(86_400);
        let runs = [
            record("r4", Running, None),
            record("r3", Succeeded, Some("2026-01-09T12:00:00Z")),
            record("r2", Failed, Some("2026-01-02T00:00:00Z")),
            record("r1", Succeeded, Some("2026-01-01T00:00:00Z")),
            // An old record without an end time is left to the counts.
            record("r0", Succeeded, None),
        ];
        assert_eq!(
            prune_victims(runs.iter(), &prune(Some(7 * day))),
            ["r2", "r1"]
        );
        assert_eq!(
            prune_victims(runs.iter(), &prune(Some(30 * day))),
            Vec::<&str>::new()
        );
        assert_eq!(prune(None).cutoff(), None);
    }
}
