//! The run store of local mode: one SQLite file (`<state>/runs.db`).
//!
//! All writes go through one thread that commits whatever queued up meanwhile in a single
//! transaction ("group commit"): at 10,000 runs a second a commit per write would be the
//! bottleneck, one per batch is not. Reads use their own connection (WAL lets them run beside
//! the writer) on the blocking pool. Two platforms may open the same file; SQLite's locking and
//! `busy_timeout` serialize them.

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use faas_api::{FunctionRun, RunPhase};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::job::JobKey;
use super::run_log::{LogChunk, LogDir};
use super::store::{Cursor, Prune, RunQuery, RunStore, StoreError, StoreFuture, phase, run_id};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 1024;

/// Indexes are the minimum the writes need: every index is maintained on each of the three
/// writes of a run (claim, final record, pruning). Listing by phase scans; it is rare.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL,
    schedule TEXT NOT NULL,
    phase    TEXT NOT NULL,
    body     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_schedule ON runs (function, schedule, seq);
CREATE TABLE IF NOT EXISTS cursors (
    function TEXT NOT NULL,
    schedule TEXT NOT NULL,
    timing   TEXT NOT NULL,
    last     TEXT NOT NULL,
    PRIMARY KEY (function, schedule)
);
";

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A run as stored. Serialized by the caller (on the async runtime's threads, in parallel),
/// so the one writer thread only executes statements.
struct Row {
    id: String,
    function: String,
    schedule: String,
    phase: &'static str,
    body: String,
}

impl Row {
    fn of(run: &FunctionRun) -> Result<Row, StoreError> {
        Ok(Row {
            id: run_id(run).to_owned(),
            function: run.spec.function.clone(),
            schedule: run.spec.schedule.clone(),
            phase: phase(run).as_str(),
            body: serde_json::to_string(run).map_err(backend)?,
        })
    }
}

enum Write {
    Create(Row, Option<Cursor>, Option<Prune>, Reply<bool>),
    CreateMany(Vec<(Row, Option<Cursor>)>, Reply<Vec<bool>>),
    Update(Row, Option<Prune>, Reply<()>),
    SetCursor(Cursor, Reply<()>),
}

/// SQLite-backed [`RunStore`].
pub struct SqliteStore {
    writes: mpsc::Sender<Write>,
    reader: Arc<Mutex<Connection>>,
    /// Whole run logs, beside the database (`run-logs/`); `None` when the folder cannot be made.
    logs: Option<LogDir>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, and the run logs in the folder
    /// `run-logs` beside it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = connect(path)?;
        writer.execute_batch(SCHEMA).map_err(backend)?;
        let reader = connect(path)?;
        let logs_dir = path.with_file_name("run-logs");
        let logs = match LogDir::open(&logs_dir) {
            Ok(logs) => Some(logs),
            Err(e) => {
                tracing::warn!(dir = %logs_dir.display(), error = %e, "run logs cannot be kept: only each run's tail is recorded");
                None
            }
        };
        let (writes, queue) = mpsc::channel();
        let pruned_logs = logs.clone();
        std::thread::Builder::new()
            .name("faas-runs-writer".into())
            .spawn(move || write_loop(writer, queue, pruned_logs))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            writes,
            reader: Arc::new(Mutex::new(reader)),
            logs,
        })
    }

    /// With another cap on each run's log (tests).
    pub fn with_log_cap(mut self, cap: u64) -> Self {
        self.logs = self.logs.map(|logs| logs.with_cap(cap));
        self
    }

    fn write<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> Result<Write, StoreError>,
    ) -> StoreFuture<'_, T> {
        let (reply, answer) = oneshot::channel();
        let sent =
            make(reply).and_then(|write| self.writes.send(write).map_err(|_| StoreError::Closed));
        Box::pin(async move {
            sent?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let reader = Arc::clone(&self.reader);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let connection = reader.lock().unwrap_or_else(|p| p.into_inner());
                query(&connection).map_err(backend)
            })
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
        })
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(backend)?;
    Ok(connection)
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

fn write_loop(mut connection: Connection, queue: mpsc::Receiver<Write>, logs: Option<LogDir>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        commit_batch(&mut connection, batch, logs.as_ref());
    }
}

/// Applies a batch in one transaction. A write that fails alone (bad record) gets its own
/// error and leaves nothing of itself committed ([`apply_batch`]); a failed commit fails them all, and nobody is told "done" before the commit. The
/// logs of the runs it pruned are deleted once the commit is done, before anyone is told: a
/// record never loses its log while it exists, and a log never outlives its record.
fn commit_batch(connection: &mut Connection, batch: Vec<Write>, logs: Option<&LogDir>) {
    // The common case costs one transaction; only a batch in which a write failed is done
    // again, each write in a savepoint of its own (see `apply`).
    let applied = match apply_batch(connection, &batch, false) {
        Ok(Some(applied)) => Ok(applied),
        Ok(None) => apply_batch(connection, &batch, true).map(|a| a.unwrap_or_default()),
        Err(err) => Err(err),
    };
    let (outcomes, pruned) = match applied {
        Ok(applied) => applied,
        Err(err) => {
            let message = err.to_string();
            for write in batch {
                fail(write, &message);
            }
            return;
        }
    };
    if let Some(logs) = logs {
        logs.remove(&pruned);
    }
    for (write, outcome) in batch.into_iter().zip(outcomes) {
        let outcome = outcome.map_err(backend);
        // A caller that stopped waiting is not an error of the store.
        match write {
            Write::Create(.., reply) => {
                let _ = reply.send(outcome.map(|c| matches!(c, Created::One(true))));
            }
            Write::CreateMany(_, reply) => {
                let _ = reply.send(outcome.map(|c| match c {
                    Created::Many(created) => created,
                    _ => Vec::new(),
                }));
            }
            Write::Update(.., reply) | Write::SetCursor(_, reply) => {
                let _ = reply.send(outcome.map(drop));
            }
        }
    }
}

/// Each write's outcome and the ids of the runs pruned, once committed.
type Applied = (Vec<rusqlite::Result<Created>>, Vec<String>);

/// Applies `batch` in one transaction and commits it. Without `isolate`, the first failed
/// write rolls the whole transaction back and the answer is `None` (do it again isolated): a
/// write that failed half-way must not be committed with the rest. With `isolate`, each
/// write runs in a savepoint that is rolled back if it fails, so a failed write leaves
/// nothing behind (its caller is told it failed: a claimed run nobody executes would stay
/// `Running`) and the others commit.
fn apply_batch(
    connection: &mut Connection,
    batch: &[Write],
    isolate: bool,
) -> rusqlite::Result<Option<Applied>> {
    let mut tx = connection.transaction()?;
    let mut pruned = Vec::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    for write in batch {
        let outcome = if isolate {
            let mut its_pruned = Vec::new();
            let savepoint = tx.savepoint()?;
            let outcome = apply(&savepoint, write, &mut its_pruned);
            if outcome.is_ok() {
                savepoint.commit()?;
                pruned.append(&mut its_pruned);
            }
            // Dropped uncommitted otherwise: rolled back to where the write began.
            outcome
        } else {
            let outcome = apply(&tx, write, &mut pruned);
            if outcome.is_err() {
                return Ok(None);
            }
            outcome
        };
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(Some((outcomes, pruned)))
}

/// Applies one write's statements.
fn apply(db: &Connection, write: &Write, pruned: &mut Vec<String>) -> rusqlite::Result<Created> {
    match write {
        Write::Create(run, cursor, prune, _) => {
            create(db, run, cursor.as_ref(), prune.as_ref(), pruned).map(Created::One)
        }
        Write::CreateMany(rows, _) => rows
            .iter()
            .map(|(row, cursor)| create(db, row, cursor.as_ref(), None, pruned))
            .collect::<rusqlite::Result<Vec<bool>>>()
            .map(Created::Many),
        Write::Update(run, prune, _) => {
            update(db, run, prune.as_ref(), pruned).map(|()| Created::Nothing)
        }
        Write::SetCursor(cursor, _) => set_cursor(db, cursor).map(|()| Created::Nothing),
    }
}

/// What a write created, for its reply.
enum Created {
    Nothing,
    One(bool),
    Many(Vec<bool>),
}

fn fail(write: Write, message: &str) {
    let err = StoreError::Backend(message.to_owned());
    match write {
        Write::Create(.., reply) => {
            let _ = reply.send(Err(err));
        }
        Write::CreateMany(_, reply) => {
            let _ = reply.send(Err(err));
        }
        Write::Update(.., reply) | Write::SetCursor(_, reply) => {
            let _ = reply.send(Err(err));
        }
    }
}

fn create(
    tx: &Connection,
    row: &Row,
    cursor: Option<&Cursor>,
    prune: Option<&Prune>,
    pruned: &mut Vec<String>,
) -> rusqlite::Result<bool> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO runs (id, function, schedule, phase, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![row.id, row.function, row.schedule, row.phase, row.body])?
        == 1;
    if inserted {
        if let Some(cursor) = cursor {
            set_cursor(tx, cursor)?;
        }
        if let Some(prune) = prune {
            prune_schedule(tx, prune, pruned)?;
        }
    }
    Ok(inserted)
}

fn update(
    tx: &Connection,
    row: &Row,
    prune: Option<&Prune>,
    pruned: &mut Vec<String>,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE runs SET phase = ?2, body = ?3 WHERE id = ?1")?
        .execute(params![row.id, row.phase, row.body])?;
    if let Some(prune) = prune {
        prune_schedule(tx, prune, pruned)?;
    }
    Ok(())
}

fn set_cursor(tx: &Connection, cursor: &Cursor) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO cursors (function, schedule, timing, last) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (function, schedule) DO UPDATE SET timing = ?3, last = ?4",
    )?
    .execute(params![
        &*cursor.key.function,
        &*cursor.key.schedule,
        cursor.timing,
        cursor.last.to_string()
    ])?;
    Ok(())
}

/// Deletes the finished runs of a schedule past its history limits, without reading rows
/// first: the rule of [`super::store::prune_victims`] in SQL (succeeded beyond their count,
/// every other final phase beyond theirs, any that ended before `keepFor`'s cutoff). The
/// ids deleted are added to `pruned`.
fn prune_schedule(
    tx: &Connection,
    prune: &Prune,
    pruned: &mut Vec<String>,
) -> rusqlite::Result<()> {
    let key = (&*prune.key.function, &*prune.key.schedule);
    let mut delete = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<()> {
        let mut statement = tx.prepare_cached(sql)?;
        for id in statement.query_map(params, |row| row.get::<_, String>(0))? {
            pruned.push(id?);
        }
        Ok(())
    };
    delete(
        "DELETE FROM runs WHERE function = ?1 AND schedule = ?2 AND phase = 'Succeeded'
         AND seq <= (SELECT seq FROM runs WHERE function = ?1 AND schedule = ?2 AND phase = 'Succeeded'
                     ORDER BY seq DESC LIMIT 1 OFFSET ?3)
         RETURNING id",
        params![key.0, key.1, prune.history.succeeded],
    )?;
    delete(
        "DELETE FROM runs WHERE function = ?1 AND schedule = ?2
         AND phase IN ('Failed', 'TimedOut', 'Interrupted', 'Skipped')
         AND seq <= (SELECT seq FROM runs WHERE function = ?1 AND schedule = ?2
                     AND phase IN ('Failed', 'TimedOut', 'Interrupted', 'Skipped')
                     ORDER BY seq DESC LIMIT 1 OFFSET ?3)
         RETURNING id",
        params![key.0, key.1, prune.history.failed],
    )?;
    // End times are RFC 3339 in UTC (`plan::rfc3339`), which order as text.
    if let Some(cutoff) = prune.cutoff() {
        delete(
            "DELETE FROM runs WHERE function = ?1 AND schedule = ?2
             AND phase IN ('Succeeded', 'Failed', 'TimedOut', 'Interrupted', 'Skipped')
             AND json_extract(body, '$.status.endTime') < ?3
             RETURNING id",
            params![key.0, key.1, super::plan::rfc3339(cutoff)],
        )?;
    }
    Ok(())
}

fn parse_run(body: String) -> rusqlite::Result<FunctionRun> {
    serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl RunStore for SqliteStore {
    fn create(
        &self,
        run: FunctionRun,
        cursor: Option<Cursor>,
        prune: Option<Prune>,
    ) -> StoreFuture<'_, bool> {
        self.write(|reply| Ok(Write::Create(Row::of(&run)?, cursor, prune, reply)))
    }

    fn create_many<'a>(
        &'a self,
        runs: &'a [(FunctionRun, Option<Cursor>)],
    ) -> StoreFuture<'a, Vec<bool>> {
        self.write(|reply| {
            let rows = runs
                .iter()
                .map(|(run, cursor)| Ok((Row::of(run)?, cursor.clone())))
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Write::CreateMany(rows, reply))
        })
    }

    fn update(&self, run: FunctionRun, prune: Option<Prune>) -> StoreFuture<'_, ()> {
        self.write(|reply| Ok(Write::Update(Row::of(&run)?, prune, reply)))
    }

    fn get(&self, id: String) -> StoreFuture<'_, Option<FunctionRun>> {
        self.read(move |c| {
            c.query_row("SELECT body FROM runs WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?
            .map(parse_run)
            .transpose()
        })
    }

    fn list(&self, query: RunQuery) -> StoreFuture<'_, Vec<FunctionRun>> {
        self.read(move |c| {
            let limit = query
                .limit
                .and_then(|l| i64::try_from(l).ok())
                .unwrap_or(-1);
            let mut select = c.prepare_cached(
                "SELECT body FROM runs WHERE (?1 IS NULL OR function = ?1) AND (?2 IS NULL OR schedule = ?2)
                 AND (?3 IS NULL OR phase = ?3) ORDER BY seq DESC LIMIT ?4",
            )?;
            let phase = query.phase.map(RunPhase::as_str);
            select
                .query_map(
                    params![query.function, query.schedule, phase, limit],
                    |row| row.get::<_, String>(0),
                )?
                .map(|body| body.and_then(parse_run))
                .collect()
        })
    }

    fn cursors(&self) -> StoreFuture<'_, Vec<Cursor>> {
        self.read(|c| {
            let mut select = c.prepare("SELECT function, schedule, timing, last FROM cursors")?;
            let rows = select.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })?;
            let mut cursors = Vec::new();
            for row in rows {
                let (function, schedule, timing, last) = row?;
                // A cursor that does not parse is as good as none: the schedule starts afresh.
                if let Ok(last) = last.parse::<Timestamp>() {
                    cursors.push(Cursor {
                        key: JobKey::new(&function, &schedule),
                        timing,
                        last,
                    });
                }
            }
            Ok(cursors)
        })
    }

    fn set_cursor(&self, cursor: Cursor) -> StoreFuture<'_, ()> {
        self.write(|reply| Ok(Write::SetCursor(cursor, reply)))
    }

    fn run_log(&self, id: &str) -> Option<faas_invoke::RunLog> {
        self.logs.as_ref()?.writer(id)
    }

    fn read_log(&self, id: String, offset: u64, limit: usize) -> StoreFuture<'_, Option<LogChunk>> {
        let logs = self.logs.clone();
        Box::pin(async move {
            let Some(logs) = logs else {
                return Ok(None);
            };
            tokio::task::spawn_blocking(move || logs.read(&id, offset, limit))
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?
                .map_err(|e| StoreError::Backend(format!("reading the run's log: {e}")))
        })
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<FunctionRun>> {
        self.read(|c| {
            let mut select = c.prepare(
                "SELECT body FROM runs WHERE phase IN ('Pending', 'Running') ORDER BY seq",
            )?;
            select
                .query_map([], |row| row.get::<_, String>(0))?
                .map(|body| body.and_then(parse_run))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunStore;
    use faas_api::{FunctionRunSpec, FunctionRunStatus, RunPhase};

    fn running(id: &str) -> FunctionRun {
        let mut run = FunctionRun::new(
            id,
            FunctionRunSpec {
                function: "fn".into(),
                schedule: "tick".into(),
                trigger: "cron".into(),
                attempt: 1,
                ..Default::default()
            },
        );
        run.status = Some(FunctionRunStatus {
            phase: RunPhase::Running,
            ..Default::default()
        });
        run
    }

    #[tokio::test]
    async fn a_write_that_fails_in_a_group_commit_leaves_nothing_and_the_others_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("runs.db");
        let store = SqliteStore::open(&path).expect("open");
        // The database refuses one run (standing for any failure inside a write: a full
        // disk, a constraint) after the write's first row went in.
        Connection::open(&path)
            .expect("open")
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON runs WHEN NEW.id = 'fn.tick.bad'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("trigger");
        let rows = [
            (running("fn.tick.first"), None),
            (running("fn.tick.bad"), None),
        ];
        let many = store.create_many(&rows);
        let other = store.create(running("fn.tick.other"), None, None);
        let (many, other) = tokio::join!(many, other);
        assert!(many.is_err(), "{many:?}");
        assert_eq!(other.ok(), Some(true), "a neighbour in the batch commits");
        // Told it failed, its caller never executes fn.tick.first: it must not exist, or it
        // would stay Running with nobody behind it.
        assert!(
            store
                .get("fn.tick.first".into())
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            store
                .get("fn.tick.other".into())
                .await
                .expect("get")
                .is_some()
        );
    }
}
