//! Async calls in an embedded SQLite table (local mode): the same interface as SQS, with a
//! lease in place of the visibility timeout and a `dead` flag in place of the dead-letter
//! queue. Calls survive a restart; ones leased by the previous process are delivered again.
//!
//! Leases have owners. Two `faas up` may share a state directory (the second one's
//! scheduler stands by), so opening the queue must not take back the calls a live neighbour
//! is running: each process holds an exclusive lock on a file named after it
//! (`async.db.owners/<owner>`) for as long as it has the queue open, and an opening process
//! releases only the leases of owners whose file it can lock, i.e. of processes that are
//! gone (the kernel drops a killed process's locks). Durability: the database is in WAL mode
//! with SQLite's default `synchronous = FULL`, so an accepted call (the 202) is on disk
//! before it is answered, even through a power loss.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, params};
use tokio::sync::Notify;

use super::queue::{
    AsyncCall, AsyncQueue, DeadLetter, Delivery, QueueError, QueueFuture, Selection, Settled,
};

/// How long a received call stays invisible if its worker never says what happened.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// How often a waiting receive looks for calls whose retry delay ran out.
const POLL: Duration = Duration::from_millis(250);

/// The local queue.
pub struct SqliteQueue {
    db: Arc<Mutex<Connection>>,
    path: PathBuf,
    arrived: Notify,
    /// Whose leases this process's are, and the lock that says it is alive.
    owner: Owner,
}

/// A lease owner: a name unique to this opening of the queue, and the locked file that
/// tells other processes it is alive. Dropping it (or the process dying) releases the lock.
struct Owner {
    name: String,
    file: PathBuf,
    _lock: std::fs::File,
}

impl Owner {
    fn take(db_path: &Path) -> Result<Owner, QueueError> {
        let dir = owners_dir(db_path);
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let name = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let file = dir.join(&name);
        let lock =
            std::fs::File::create(&file).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        lock.try_lock()
            .map_err(|e| fail(format!("{}: {e}", file.display())))?;
        Ok(Owner {
            name,
            file,
            _lock: lock,
        })
    }

    /// Whether the owner `name` of leases in the queue at `db_path` is gone: its file can be
    /// locked (or never existed: leases from before owners were recorded).
    fn is_gone(db_path: &Path, name: &str) -> bool {
        let file = owners_dir(db_path).join(name);
        match std::fs::File::options().write(true).open(&file) {
            Ok(handle) => match handle.try_lock() {
                Ok(()) => {
                    let _ = std::fs::remove_file(&file);
                    true
                }
                Err(_) => false,
            },
            Err(_) => true,
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

fn owners_dir(db_path: &Path) -> PathBuf {
    let mut dir = db_path.as_os_str().to_owned();
    dir.push(".owners");
    PathBuf::from(dir)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn fail(e: impl std::fmt::Display) -> QueueError {
    QueueError(e.to_string())
}

impl SqliteQueue {
    /// Opens (creating) the queue at `path`; calls leased by a process that is gone are made
    /// visible again, a live one's are left to it.
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        let db = Connection::open(path).map_err(fail)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS async_calls (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 call_id TEXT NOT NULL,
                 function TEXT NOT NULL,
                 message TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 visible_at INTEGER NOT NULL,
                 leased INTEGER NOT NULL DEFAULT 0,
                 dead INTEGER NOT NULL DEFAULT 0,
                 reason TEXT
             );
             CREATE INDEX IF NOT EXISTS async_calls_ready ON async_calls (dead, visible_at);",
        )
        .map_err(fail)?;
        // Databases from before lease owners were recorded gain the column.
        let has_owner = db
            .prepare("SELECT 1 FROM pragma_table_info('async_calls') WHERE name = 'owner'")
            .and_then(|mut s| s.exists([]))
            .map_err(fail)?;
        if !has_owner {
            db.execute("ALTER TABLE async_calls ADD COLUMN owner TEXT", [])
                .map_err(fail)?;
        }
        let owner = Owner::take(path)?;
        let holders: Vec<Option<String>> = db
            .prepare("SELECT DISTINCT owner FROM async_calls WHERE dead = 0 AND leased = 1")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
            .map_err(fail)?;
        for holder in holders {
            let gone = holder.as_deref().is_none_or(|h| Owner::is_gone(path, h));
            if gone {
                let released = db
                    .execute(
                        "UPDATE async_calls SET visible_at = ?1, leased = 0
                         WHERE dead = 0 AND leased = 1 AND owner IS ?2",
                        params![now_ms(), holder],
                    )
                    .map_err(fail)?;
                tracing::info!(owner = ?holder, calls = released, "async calls of a stopped process delivered again");
            }
        }
        Ok(SqliteQueue {
            db: Arc::new(Mutex::new(db)),
            path: path.to_owned(),
            arrived: Notify::new(),
            owner,
        })
    }

    async fn with_db<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueueError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let db = db.lock().unwrap_or_else(|p| p.into_inner());
            work(&db)
        })
        .await
        .map_err(fail)?
        .map_err(fail)
    }

    /// Takes up to `max` visible calls, leasing them.
    async fn take(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let owner = self.owner.name.clone();
        self.with_db(move |db| {
            let now = now_ms();
            let lease = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
            let mut statement = db.prepare(
                "UPDATE async_calls SET attempts = attempts + 1, visible_at = ?1, leased = 1,
                                        owner = ?4
                 WHERE id IN (SELECT id FROM async_calls WHERE dead = 0 AND visible_at <= ?2
                              ORDER BY visible_at, id LIMIT ?3)
                 RETURNING id, message, attempts",
            )?;
            let rows = statement.query_map(params![lease, now, max as i64, owner], |row| {
                let id: i64 = row.get(0)?;
                let message: String = row.get(1)?;
                let attempts: u32 = row.get(2)?;
                Ok(Delivery {
                    call: AsyncCall::decode(&message),
                    attempt: attempts,
                    handle: id.to_string(),
                    raw: message,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// The dead-lettered calls, newest first (what `GET /system/async` lists).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.with_db(|db| {
            let mut statement = db.prepare(
                "SELECT call_id, function, attempts, COALESCE(reason, ''), message
                 FROM async_calls WHERE dead = 1 ORDER BY id DESC",
            )?;
            let rows = statement.query_map([], |row| {
                let (call_id, function): (String, String) = (row.get(0)?, row.get(1)?);
                let message: String = row.get(4)?;
                Ok(DeadLetter::of(
                    &message,
                    Some(row.get(2)?),
                    row.get(3)?,
                    (&call_id, &function),
                ))
            })?;
            rows.collect()
        })
        .await
    }

    /// Applies `statement` (with `?1` the time now) to the dead letters `which` selects;
    /// returns how many rows it changed.
    async fn settle(&self, statement: &'static str, which: &Selection) -> Result<u64, QueueError> {
        let which = which.clone();
        self.with_db(move |db| {
            let sql = format!(
                "{statement} WHERE dead = 1 AND (?2 IS NULL OR call_id = ?2) \
                 AND (?3 IS NULL OR function = ?3)"
            );
            let changed = db.execute(&sql, params![now_ms(), which.call_id, which.function])?;
            Ok(changed as u64)
        })
        .await
    }

    /// Calls waiting or leased (not dead).
    pub async fn pending(&self) -> Result<u64, QueueError> {
        self.with_db(|db| {
            db.query_row(
                "SELECT COUNT(*) FROM async_calls WHERE dead = 0",
                [],
                |row| row.get(0),
            )
        })
        .await
    }
}

impl AsyncQueue for SqliteQueue {
    fn send(&self, call: &AsyncCall) -> QueueFuture<'_, ()> {
        let (call_id, function, message) =
            (call.call_id.clone(), call.function.clone(), call.encode());
        Box::pin(async move {
            self.with_db(move |db| {
                db.execute(
                    "INSERT INTO async_calls (call_id, function, message, visible_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![call_id, function, message, now_ms()],
                )
            })
            .await?;
            self.arrived.notify_waiters();
            Ok(())
        })
    }

    fn receive(&self, max: usize, wait: Duration) -> QueueFuture<'_, Vec<Delivery>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let arrived = self.arrived.notified();
                let taken = self.take(max).await?;
                if !taken.is_empty() || tokio::time::Instant::now() >= deadline {
                    return Ok(taken);
                }
                // A send wakes us at once; a retry delay running out is seen by the poll.
                let _ = tokio::time::timeout(POLL, arrived).await;
            }
        })
    }

    fn complete<'a>(&'a self, delivery: &'a Delivery) -> QueueFuture<'a, ()> {
        let id = delivery.handle.clone();
        Box::pin(async move {
            self.with_db(move |db| {
                db.execute("DELETE FROM async_calls WHERE id = ?1", params![id])
            })
            .await?;
            Ok(())
        })
    }

    fn retry<'a>(&'a self, delivery: &'a Delivery, delay: Duration) -> QueueFuture<'a, ()> {
        let id = delivery.handle.clone();
        Box::pin(async move {
            let at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            self.with_db(move |db| {
                db.execute(
                    "UPDATE async_calls SET visible_at = ?1, leased = 0 WHERE id = ?2",
                    params![at, id],
                )
            })
            .await?;
            Ok(())
        })
    }

    fn lease(&self) -> Duration {
        LEASE
    }

    fn extend<'a>(&'a self, delivery: &'a Delivery, by: Duration) -> QueueFuture<'a, ()> {
        let id = delivery.handle.clone();
        Box::pin(async move {
            let at = now_ms() + i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            self.with_db(move |db| {
                db.execute(
                    "UPDATE async_calls SET visible_at = ?1 WHERE id = ?2 AND leased = 1",
                    params![at, id],
                )
            })
            .await?;
            Ok(())
        })
    }

    fn dead_letter<'a>(&'a self, delivery: &'a Delivery, reason: &'a str) -> QueueFuture<'a, ()> {
        let (id, reason) = (delivery.handle.clone(), reason.to_owned());
        Box::pin(async move {
            self.with_db(move |db| {
                db.execute(
                    "UPDATE async_calls SET dead = 1, leased = 0, reason = ?1 WHERE id = ?2",
                    params![reason, id],
                )
            })
            .await?;
            Ok(())
        })
    }

    fn inspect(&self) -> QueueFuture<'_, serde_json::Value> {
        Box::pin(async move {
            let pending = self.pending().await?;
            let mut dead = self.dead_letters().await?;
            dead.truncate(100);
            Ok(serde_json::json!({
                "kind": "sqlite",
                "path": self.path.display().to_string(),
                "pending": pending,
                "deadLetters": dead,
            }))
        })
    }

    fn replay<'a>(&'a self, which: &'a Selection) -> QueueFuture<'a, Settled> {
        Box::pin(async move {
            // Delivered again as new: attempt 1, visible now, no reason.
            let count = self
                .settle(
                    "UPDATE async_calls SET dead = 0, leased = 0, attempts = 0, visible_at = ?1, \
                     reason = NULL",
                    which,
                )
                .await?;
            if count > 0 {
                self.arrived.notify_waiters();
            }
            Ok(Settled { count })
        })
    }

    fn discard<'a>(&'a self, which: &'a Selection) -> QueueFuture<'a, Settled> {
        Box::pin(async move {
            let count = self.settle("DELETE FROM async_calls", which).await?;
            Ok(Settled { count })
        })
    }

    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> AsyncCall {
        AsyncCall {
            call_id: id.to_owned(),
            function: "f".to_owned(),
            method: "POST".to_owned(),
            path: "/".to_owned(),
            headers: Vec::new(),
            body: bytes::Bytes::from_static(b"x"),
            callback_url: None,
            accepted_at: "2026-12-07T00:00:00Z".to_owned(),
        }
    }

    #[tokio::test]
    async fn opening_the_queue_takes_back_only_the_leases_of_processes_that_are_gone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("async.db");
        let running = SqliteQueue::open(&path).expect("open");
        running.send(&call("a")).await.expect("send");
        running.send(&call("b")).await.expect("send");
        let taken = running.receive(1, Duration::ZERO).await.expect("receive");
        assert_eq!(taken.len(), 1);

        // A neighbour on the same state directory: the call leased by the live process
        // stays with it; the other one is free.
        let neighbour = SqliteQueue::open(&path).expect("open");
        let free = neighbour
            .receive(10, Duration::ZERO)
            .await
            .expect("receive");
        assert_eq!(free.len(), 1, "only the call nobody holds");
        assert_ne!(free[0].handle, taken[0].handle);
        assert!(
            neighbour
                .receive(10, Duration::ZERO)
                .await
                .expect("receive")
                .is_empty()
        );

        // The first process goes (its lock with it): its lease is released at the next
        // opening, and the call is delivered again as its next attempt. The neighbour's
        // lease stays: it is still alive.
        drop(running);
        let restarted = SqliteQueue::open(&path).expect("open");
        let again = restarted
            .receive(10, Duration::ZERO)
            .await
            .expect("receive");
        assert_eq!(
            again.len(),
            1,
            "{:?}",
            again.iter().map(|d| &d.handle).collect::<Vec<_>>()
        );
        assert_eq!(again[0].handle, taken[0].handle);
        assert_eq!(again[0].attempt, 2);
        drop(neighbour);
        drop(restarted);
        // Every owner's file goes with it.
        let left: Vec<_> = std::fs::read_dir(owners_dir(&path))
            .expect("owners dir")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn leases_from_before_owners_were_recorded_are_released() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("async.db");
        {
            let db = Connection::open(&path).expect("open");
            db.execute_batch(
                "CREATE TABLE async_calls (id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL,
                 function TEXT NOT NULL, message TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                 visible_at INTEGER NOT NULL, leased INTEGER NOT NULL DEFAULT 0,
                 dead INTEGER NOT NULL DEFAULT 0, reason TEXT);",
            )
            .expect("old schema");
            db.execute(
                "INSERT INTO async_calls (call_id, function, message, attempts, visible_at, leased)
                 VALUES ('old', 'f', ?1, 1, 9999999999999, 1)",
                params![call("old").encode()],
            )
            .expect("a leased call");
        }
        let queue = SqliteQueue::open(&path).expect("open");
        let again = queue.receive(10, Duration::ZERO).await.expect("receive");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempt, 2);
    }
}
