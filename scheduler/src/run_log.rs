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

    /// A writer appending to run `id`'s log. The file is created at the run's first output
    /// byte, or when [`RunLogWriter::finish`] keeps its platform lines: a run that prints
    /// nothing and succeeds at its first attempt (most runs of a busy schedule) costs no file.
    pub fn writer(&self, id: &str) -> Option<RunLog> {
        let path = self.path(id)?;
        Some(RunLog::new(FileLog {
            state: Mutex::new(FileState {
                path,
                file: None,
                written: 0,
                failed: false,
                held: Vec::new(),
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
    /// Opened at the first byte written; `written` counts from the file's size then (a run
    /// resumed after a restart appends to what its first attempts wrote).
    file: Option<File>,
    written: u64,
    failed: bool,
    /// Platform lines held back until the run prints or its end keeps them.
    held: Vec<u8>,
}

/// Platform lines held back for one run, at most: a run retried this often without printing
/// has its lines written out at once.
const MAX_HELD_BYTES: usize = 16 * 1024;

impl RunLogWriter for FileLog {
    fn append(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.release_held(self.cap);
        state.write_capped(bytes, self.cap);
    }

    fn note(&self, line: &str) {
        let mut state = self.lock();
        let line = format!("[faas] {line}\n");
        if state.file.is_some() || state.held.len() + line.len() > MAX_HELD_BYTES {
            state.release_held(self.cap);
            state.write_capped(line.as_bytes(), self.cap);
        } else {
            state.held.extend_from_slice(line.as_bytes());
        }
    }

    fn finish(&self, keep_notes: bool) {
        let mut state = self.lock();
        if keep_notes {
            state.release_held(self.cap);
        } else {
            state.held.clear();
        }
    }
}

impl FileLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl FileState {
    fn release_held(&mut self, cap: u64) {
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.write_capped(&held, cap);
        }
    }

    /// Writes up to the cap; the write that reaches it adds one note past it, and nothing is
    /// written after. A failed write stops the log, said once in the platform's own log.
    fn write_capped(&mut self, bytes: &[u8], cap: u64) {
        if self.failed || bytes.is_empty() {
            return;
        }
        if let Err(e) = self.open() {
            return self.fail(&e);
        }
        if self.written >= cap {
            return;
        }
        let room = usize::try_from(cap - self.written).unwrap_or(usize::MAX);
        let take = bytes.len().min(room);
        let mut result = self.write(&bytes[..take]);
        if result.is_ok() && take < bytes.len() {
            let note = format!(
                "\n[faas] this run's log reached its cap of {} MiB: the rest of its output is not \
                 kept\n",
                cap / (1024 * 1024)
            );
            // The note goes past the cap, once: `written` is at the cap from now on.
            result = self.write(note.as_bytes());
        }
        if let Err(e) = result {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        self.failed = true;
        tracing::warn!(log = %self.path.display(), error = %e, "a run's log could not be written: the rest of it is lost");
    }

    fn open(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let file = options.open(&self.path)?;
            self.written = file.metadata()?.len();
            self.file = Some(file);
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
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
    fn platform_lines_wait_for_output_and_a_silent_first_success_leaves_no_file() {
        let (tmp, logs) = dir();
        let silent = logs.writer("f.s.1").expect("id");
        silent.note("attempt 1 of 1 started");
        silent.note("attempt 1 ended Succeeded");
        silent.finish(false);
        assert_eq!(logs.read("f.s.1", 0, 100).expect("read"), None);
        assert!(!tmp.path().join("run-logs/f.s.1.log").exists());

        let printing = logs.writer("f.s.2").expect("id");
        printing.note("attempt 1 of 1 started");
        printing.append(b"hello\n");
        printing.note("attempt 1 ended Succeeded");
        printing.finish(false);
        let all = logs.read("f.s.2", 0, 100).expect("read").expect("log");
        assert_eq!(
            String::from_utf8_lossy(&all.bytes),
            "[faas] attempt 1 of 1 started\nhello\n[faas] attempt 1 ended Succeeded\n",
            "the held line comes first, the later one in order"
        );

        let failed = logs.writer("f.s.3").expect("id");
        failed.note("attempt 1 of 2 started");
        failed.note("attempt 1 ended Failed");
        failed.finish(true);
        let all = logs.read("f.s.3", 0, 100).expect("read").expect("log");
        assert_eq!(
            String::from_utf8_lossy(&all.bytes),
            "[faas] attempt 1 of 2 started\n[faas] attempt 1 ended Failed\n"
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
