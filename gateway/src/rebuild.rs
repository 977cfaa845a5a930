//! Rebuilding on source change under `faas up` (as `spin watch` does): which of the builds
//! that manifests ask for ([`crate::build::Job`]) are due, because they are new (a `build:`
//! added while it runs, or at start) or their sources changed and then stayed quiet for a
//! moment; and which functions' last build failed, so their status says so while the old
//! version keeps serving. Running a build is [`crate::build::run`]'s concern, swapping in the
//! new artifact the folder watcher's.
//!
//! Sources are the files under the build's directory, less `target/`, `Cargo.lock` and
//! hidden entries (`.git`), compared by path, size and mtime each time the folder is polled: the same
//! polling as manifests, for the same reasons (every filesystem, no extra dependency).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::build::Job;

/// How long sources must stay unchanged before a rebuild (an editor saving several files, a
/// `git checkout`, make one build).
pub const QUIET: Duration = Duration::from_millis(300);
/// Files looked at per build directory, at most (a build rooted at a large tree must not
/// make every poll slow).
const MAX_FILES: usize = 20_000;

/// What is known about one build (by directory and target).
#[derive(Default)]
struct Seen {
    /// The packages and functions of the last attempt.
    job: Option<Job>,
    /// The sources it was attempted at.
    attempted: Option<u64>,
    /// Sources seen changed since, and when first seen so.
    pending: Option<(u64, Instant)>,
}

/// The builds of a folder, followed from poll to poll.
#[derive(Default)]
pub struct Rebuilds {
    seen: HashMap<(PathBuf, String), Seen>,
}

impl Rebuilds {
    /// The builds of `jobs` to run now: new or changed ones at once, ones whose sources
    /// changed once they have been quiet for [`QUIET`]. Each returned build counts as
    /// attempted at the sources seen now (a failed one is not retried until they change).
    pub fn due(&mut self, jobs: Vec<Job>) -> Vec<Job> {
        let mut due = Vec::new();
        let mut next = HashMap::new();
        for job in jobs {
            let key = (job.dir.clone(), job.target.clone());
            let sources = sources_stamp(&job.dir);
            let mut seen = self.seen.remove(&key).unwrap_or_default();
            let changed_job = seen.job.as_ref() != Some(&job);
            let changed_sources = seen.attempted != Some(sources);
            let quiet = seen
                .pending
                .is_some_and(|(stamp, since)| stamp == sources && since.elapsed() >= QUIET);
            if changed_job || (changed_sources && quiet) {
                seen.attempted = Some(sources);
                seen.pending = None;
                seen.job = Some(job.clone());
                due.push(job);
            } else if changed_sources && seen.pending.map(|(stamp, _)| stamp) != Some(sources) {
                seen.pending = Some((sources, Instant::now()));
            }
            next.insert(key, seen);
        }
        self.seen = next;
        due
    }
}

/// A stamp of the sources under `dir`: changes when a file is added, removed, resized or
/// touched.
fn sources_stamp(dir: &Path) -> u64 {
    let mut hasher = DefaultHasher::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Cargo.lock is written by the build itself (changes to it a user makes come
            // with a Cargo.toml change).
            if name.starts_with('.')
                || name == "target"
                || name == "node_modules"
                || name == "Cargo.lock"
            {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            files += 1;
            if files > MAX_FILES {
                return hasher.finish();
            }
            entry.path().hash(&mut hasher);
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Why each function's last build failed, until one succeeds (shown as `BuildFailed` by
/// [`crate::health`]).
#[derive(Default)]
pub struct Failures {
    by_function: Mutex<HashMap<String, String>>,
}

impl Failures {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.by_function.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the outcome of a build of `functions`.
    pub fn record(&self, functions: &[String], outcome: &Result<(), String>) {
        let mut map = self.map();
        for function in functions {
            match outcome {
                Ok(()) => map.remove(function),
                Err(why) => map.insert(function.clone(), why.clone()),
            };
        }
    }

    /// Forgets functions that are no longer built (gone, or their `build:` removed).
    pub fn retain(&self, built: &HashSet<&str>) {
        self.map().retain(|name, _| built.contains(name.as_str()));
    }

    /// Why the last build of `function` failed, if it did.
    pub fn of(&self, function: &str) -> Option<String> {
        self.map().get(function).cloned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn job(dir: &Path) -> Job {
        Job {
            dir: dir.to_path_buf(),
            target: "wasm32-wasip1".into(),
            packages: Vec::new(),
            functions: vec!["f".into()],
        }
    }

    #[test]
    fn new_builds_run_at_once_changed_sources_once_quiet() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}").unwrap();
        let mut rebuilds = Rebuilds::default();
        assert_eq!(rebuilds.due(vec![job(dir.path())]).len(), 1, "new: at once");
        assert!(rebuilds.due(vec![job(dir.path())]).is_empty(), "unchanged");

        // Build output and hidden files are not sources.
        std::fs::write(dir.path().join("target/out.wasm"), "x").unwrap();
        std::fs::write(dir.path().join(".swp"), "x").unwrap();
        assert!(rebuilds.due(vec![job(dir.path())]).is_empty());

        std::fs::write(dir.path().join("src/main.rs"), "fn main() { }").unwrap();
        assert!(
            rebuilds.due(vec![job(dir.path())]).is_empty(),
            "not quiet yet"
        );
        std::thread::sleep(QUIET);
        assert_eq!(rebuilds.due(vec![job(dir.path())]).len(), 1, "quiet: due");
        assert!(rebuilds.due(vec![job(dir.path())]).is_empty(), "attempted");

        // Another function joins the build: at once.
        let mut two = job(dir.path());
        two.functions.push("g".into());
        assert_eq!(rebuilds.due(vec![two]).len(), 1);
    }

    #[test]
    fn failures_last_until_a_build_succeeds_or_the_function_goes() {
        let failures = Failures::default();
        let names = ["a".to_owned(), "b".to_owned()];
        failures.record(&names, &Err("error[E0308]".into()));
        assert_eq!(failures.of("a").as_deref(), Some("error[E0308]"));
        failures.record(&names[..1], &Ok(()));
        assert_eq!(failures.of("a"), None);
        failures.retain(&HashSet::from(["a"]));
        assert_eq!(failures.of("b"), None);
    }
}
