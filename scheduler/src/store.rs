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

/// Drop finished runs of one schedule beyond its history limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Prune {
    pub key: JobKey,
    pub history: History,
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

/// Ids to delete so that at most `history` finished runs of each kind remain; `runs` is
/// newest first and holds only runs of the pruned schedule.
pub fn prune_victims<'a>(
    runs: impl Iterator<Item = (&'a str, RunPhase)>,
    history: History,
) -> Vec<&'a str> {
    let (mut succeeded, mut failed) = (0u32, 0u32);
    let mut victims = Vec::new();
    for (id, phase) in runs {
        if !is_final(phase) {
            continue;
        }
        let (seen, keep) = if counts_as_success(phase) {
            (&mut succeeded, history.succeeded)
        } else {
            (&mut failed, history.failed)
        };
        *seen += 1;
        if *seen > keep {
            victims.push(id);
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
            let newest_first = ids.iter().rev().filter_map(|(seq, id)| {
                runs.get(id)
                    .map(|(_, run)| ((*seq, id.as_str()), phase(run)))
            });
            let listed: Vec<_> = newest_first.collect();
            let doomed = prune_victims(listed.iter().map(|((_, id), p)| (*id, *p)), prune.history);
            listed
                .iter()
                .filter(|((_, id), _)| doomed.contains(id))
                .map(|((seq, id), _)| (*seq, (*id).to_owned()))
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

    #[test]
    fn prune_keeps_the_newest_of_each_kind_and_never_unfinished_runs() {
        use RunPhase::*;
        let runs = [
            ("r9", Running),
            ("r8", Succeeded),
            ("r7", Failed),
            ("r6", Succeeded),
            ("r5", Skipped),
            ("r4", Succeeded),
            ("r3", Succeeded),
            ("r2", TimedOut),
            ("r1", Pending),
        ];
        let victims = prune_victims(
            runs.iter().map(|(id, p)| (*id, *p)),
            History {
                succeeded: 3,
                failed: 1,
            },
        );
        assert_eq!(victims, ["r5", "r3", "r2"]);
    }
}
