//! Schedules suspended by an operator (the dashboard, `POST /system/functions/F/schedules/S/
//! suspend`) in local mode: an override on top of the manifest's `suspend`, so pausing a noisy
//! job needs no edit of a file someone else owns. Kept in `<state>/suspended-schedules.json`,
//! so it survives a restart, and shown as an override wherever the schedule is shown. It
//! only ever adds a suspension: a schedule the manifest suspends stays suspended.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use faas_schedule::Job;

/// Why an override could not be kept.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct SaveError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The suspended `(function, schedule)` pairs and the file they are kept in.
#[derive(Debug)]
pub struct Suspensions {
    path: PathBuf,
    set: Mutex<BTreeSet<(String, String)>>,
}

impl Suspensions {
    /// The overrides kept in `<state>/suspended-schedules.json`; none when it is missing or
    /// unreadable (said in the log: a schedule that fires is safer to notice than one that
    /// silently does not).
    pub fn load(state_dir: &std::path::Path) -> Self {
        let path = state_dir.join("suspended-schedules.json");
        let set = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<(String, String)>>(&bytes)
                .map(|pairs| pairs.into_iter().collect())
                .unwrap_or_else(|err| {
                    tracing::warn!(file = %path.display(), error = %err, "ignoring unreadable schedule suspensions");
                    BTreeSet::new()
                }),
            Err(_) => BTreeSet::new(),
        };
        Self {
            path,
            set: Mutex::new(set),
        }
    }

    fn set(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, String)>> {
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an operator suspended `schedule` of `function`.
    pub fn contains(&self, function: &str, schedule: &str) -> bool {
        self.set()
            .contains(&(function.to_owned(), schedule.to_owned()))
    }

    /// Suspends (`true`) or resumes (`false`) a schedule and writes the file.
    pub fn put(&self, function: &str, schedule: &str, suspend: bool) -> Result<(), SaveError> {
        let mut set = self.set();
        let key = (function.to_owned(), schedule.to_owned());
        if suspend {
            set.insert(key);
        } else {
            set.remove(&key);
        }
        let pairs: Vec<&(String, String)> = set.iter().collect();
        let text = serde_json::to_vec_pretty(&pairs).unwrap_or_default();
        // Written beside and renamed, so a crash leaves the old file or the new one.
        let partial = self.path.with_extension("json.partial");
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &self.path))
            .map_err(|source| SaveError {
                path: self.path.clone(),
                source,
            })
    }

    /// `job` with the operator's suspension applied.
    pub fn apply(&self, mut job: Job) -> Job {
        if self.contains(&job.key.function, &job.key.schedule) {
            job.suspend = true;
        }
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspensions_survive_reloading_and_resume_removes_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let kept = Suspensions::load(dir.path());
        kept.put("report", "nightly", true).expect("saved");
        assert!(Suspensions::load(dir.path()).contains("report", "nightly"));
        kept.put("report", "nightly", false).expect("saved");
        assert!(!Suspensions::load(dir.path()).contains("report", "nightly"));
        std::fs::write(dir.path().join("suspended-schedules.json"), "nonsense").expect("write");
        assert!(!Suspensions::load(dir.path()).contains("report", "nightly"));
    }
}
