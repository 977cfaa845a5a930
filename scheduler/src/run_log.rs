//! Whole run logs of local mode: one file per run under `<state>/run-logs/`, written as the
//! function prints (every executor's output for the run, and the platform's lines about each
//! attempt), read back in pieces for `faas runs logs [-f]` and the dashboard, deleted with the
//! run's record when history is pruned.
//!
//! A run's log is capped at [`MAX_RUN_LOG_BYTES`]: past it the rest of the output is dropped
//! and one line says so. A write that fails (a full disk) stops that run's log, saying so once
//! in the platform's own log; the run itself goes on.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use faas_invoke::{RunLog, RunLogWriter};

/// Largest log kept per run.
pub const MAX_RUN_LOG_BYTES: u64 = 16 * 1024 * 1024;
/// Largest piece of a log one read returns.
pub const MAX_READ_BYTES: usize = 1024 * 1024;

/// A piece of a run's log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogChunk {
    /// The bytes from the offset asked for.
    pub bytes: Vec<u8>,
    /// Where the next read starts: the offset plus `bytes`.
    pub next: u64,
    /// The log's size when it was read.
    pub size: u64,
}

/// The folder of run logs.
#[derive(Clone, Debug)]
pub struct LogDir {
    dir: PathBuf,
    cap: u64,
}

impl LogDir {
    /// The folder `dir`, created (0700) when missing.
    pub fn open(dir: &Path) -> std::io::Result<LogDir> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(LogDir {
            dir: dir.to_path_buf(),
            cap: MAX_RUN_LOG_BYTES,
        })
    }

    /// With another cap per run (tests).
    pub fn with_cap(mut self, cap: u64) -> LogDir {
        self.cap = cap;
        self
    }

    /// The file of run `id`, when `id` is a run id: a run id never holds a path separator or
    /// starts with a dot, so a request cannot name a file outside the folder.
    fn path(&self, id: &str) -> Option<PathBuf> {
        let safe = !id.is_empty()
            && id.len() <= 253
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        safe.then(|| self.dir.join(format!("{id}.log")))
    }

    /// A writer appending to run `id`'s log (created at its first byte).
    pub fn writer(&self, id: &str) -> Option<RunLog> {
        let path = self.path(id)?;
        // A run resumed after a restart appends to what its first attempts wrote.
        let written = std::fs::metadata(&path).map_or(0, |m| m.len());
        Some(RunLog::new(FileLog {
            state: Mutex::new(FileState {
                path,
                file: None,
                written,
                failed: false,
            }),
            cap: self.cap,
        }))
    }

    /// Up to `limit` bytes (at most [`MAX_READ_BYTES`]) of run `id`'s log from `offset`;
    /// `None` when the run has no log.
    pub fn read(&self, id: &str, offset: u64, limit: usize) -> std::io::Result<Option<LogChunk>> {
        let Some(path) = self.path(id) else {
            return Ok(None);
        };
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = file.metadata()?.len();
        let mut bytes = Vec::new();
        let offset = offset.min(size);
        if offset < size {
            file.seek(SeekFrom::Start(offset))?;
            let want = limit.min(MAX_READ_BYTES) as u64;
            file.take(want).read_to_end(&mut bytes)?;
        }
        Ok(Some(LogChunk {
            next: offset + bytes.len() as u64,
            size: size.max(offset + bytes.len() as u64),
            bytes,
        }))
    }

    /// Deletes the logs of runs `ids` (their records were pruned).
    pub fn remove(&self, ids: &[String]) {
        for id in ids {
            if let Some(path) = self.path(id) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(run = %id, error = %e, "could not delete a pruned run's log")
                    }
                }
            }
        }
    }
}

struct FileLog {
    state: Mutex<FileState>,
    cap: u64,
}

struct FileState {
    path: PathBuf,
    file: Option<File>,
    written: u64,
    failed: bool,
}

impl RunLogWriter for FileLog {
    fn append(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.failed || state.written >= self.cap || bytes.is_empty() {
            return;
        }
        let room = usize::try_from(self.cap - state.written).unwrap_or(usize::MAX);
        let take = bytes.len().min(room);
        let result = state.write(&bytes[..take]);
        let result = result.and_then(|()| {
            if take < bytes.len() {
                let note = format!(
                    "\n[faas] this run's log reached its cap of {} MiB: the rest of its output is \
                     not kept\n",
                    self.cap / (1024 * 1024)
                );
                // The note goes past the cap, once: `written` is at the cap from now on.
                state.write(note.as_bytes())
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            state.failed = true;
            tracing::warn!(log = %state.path.display(), error = %e, "a run's log could not be written: the rest of it is lost");
        }
    }
}

impl FileState {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            self.file = Some(options.open(&self.path)?);
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(bytes)?;
        }
        self.written += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, LogDir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let logs = LogDir::open(&tmp.path().join("run-logs")).expect("open");
        (tmp, logs)
    }

    #[test]
    fn a_log_is_read_back_in_pieces_from_any_offset() {
        let (_tmp, logs) = dir();
        let log = logs
            .writer("report.nightly.20261207t030000z")
            .expect("a run id");
        log.append(b"line one\n");
        log.append(b"line two\n");
        let all = logs
            .read("report.nightly.20261207t030000z", 0, 1 << 20)
            .expect("read")
            .expect("a log");
        assert_eq!(all.bytes, b"line one\nline two\n");
        assert_eq!((all.next, all.size), (18, 18));
        let rest = logs
            .read("report.nightly.20261207t030000z", 9, 4)
            .expect("read")
            .expect("a log");
        assert_eq!(rest.bytes, b"line");
        assert_eq!(
            (rest.next, rest.size),
            (13, 18),
            "where the next read starts"
        );
        let past = logs
            .read("report.nightly.20261207t030000z", 18, 10)
            .expect("read")
            .expect("a log");
        assert!(past.bytes.is_empty());
        assert_eq!((past.next, past.size), (18, 18));
        let beyond = logs
            .read("report.nightly.20261207t030000z", 500, 10)
            .expect("read")
            .expect("a log");
        assert_eq!(
            (beyond.next, beyond.size),
            (18, 18),
            "an offset past the end reads from the end"
        );
        assert_eq!(logs.read("report.manual.0000", 0, 10).expect("read"), None);
    }

    #[test]
    fn a_log_past_its_cap_is_cut_once_with_a_note() {
        let (_tmp, logs) = dir();
        let logs = logs.with_cap(10);
        let log = logs.writer("f.manual.1").expect("id");
        log.append(b"0123456");
        log.append(b"789abcdef");
        log.append(b"more");
        let all = logs
            .read("f.manual.1", 0, 1 << 20)
            .expect("read")
            .expect("log");
        let text = String::from_utf8(all.bytes).expect("utf-8");
        assert!(
            text.starts_with("0123456789\n[faas] this run's log reached its cap"),
            "{text}"
        );
        assert_eq!(text.matches("[faas]").count(), 1, "{text}");
        assert!(!text.contains("abc") && !text.contains("more"), "{text}");
    }

    #[test]
    fn a_resumed_run_appends_and_counts_what_was_written_before() {
        let (_tmp, logs) = dir();
        let logs = logs.with_cap(12);
        logs.writer("f.s.1").expect("id").append(b"attempt 1\n");
        logs.writer("f.s.1").expect("id").append(b"attempt 2\n");
        let all = logs.read("f.s.1", 0, 1 << 20).expect("read").expect("log");
        assert!(
            all.bytes.starts_with(b"attempt 1\nat"),
            "{:?}",
            String::from_utf8_lossy(&all.bytes)
        );
    }

    #[test]
    fn names_that_are_not_run_ids_reach_no_file() {
        let (tmp, logs) = dir();
        std::fs::write(tmp.path().join("secret.log"), b"x").expect("write");
        for bad in [
            "../secret",
            "",
            ".hidden",
            "a/b",
            "a\0b",
            "..",
            &"x".repeat(300),
        ] {
            assert!(logs.writer(bad).is_none(), "{bad:?}");
            assert_eq!(logs.read(bad, 0, 10).expect("read"), None, "{bad:?}");
        }
        logs.remove(&["../secret".to_owned()]);
        assert!(tmp.path().join("secret.log").exists());
    }

    #[test]
    fn removing_deletes_the_files_and_tolerates_missing_ones() {
        let (_tmp, logs) = dir();
        logs.writer("f.s.1").expect("id").append(b"x");
        logs.remove(&["f.s.1".to_owned(), "f.s.2".to_owned()]);
        assert_eq!(logs.read("f.s.1", 0, 10).expect("read"), None);
    }
}
