//! The folder source (`faas up DIR`, and runtime pods given a folder or a sidecar's
//! manifest): functions come from a folder of manifests, with their artifacts as files, and
//! are reloaded live when a manifest or artifact changes, through [`Platform::apply`]. With
//! builds on (`faas up` without `--no-build`), the builds manifests ask for run at start, when
//! a `build:` appears and when their sources change ([`crate::rebuild`]); a new artifact is
//! then an ordinary artifact change, and a failed build leaves the old one serving.
//!
//! Watching is by polling (once a second by default): it works the same on every filesystem
//! (bind mounts, network shares, editors that replace files) and costs a few stat calls per
//! second. The OS's change notifications ([`super::folder_events`]) only make a poll come
//! early: a manifest saved serves in milliseconds, and one missed event costs a poll interval,
//! never a change.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use faas_api::Function;
use faas_api::manifest::{Listing, list_manifest_files, load_path, scan_file};

use crate::platform::Platform;
use crate::rebuild::Rebuilds;
use crate::registry::Origin;

use super::folder_events::{FolderEvents, Followed};

/// How long after a change notification the folder is scanned: an editor's save is often a
/// few operations (write a temporary file, rename it, set its mode), and one scan after the
/// last of them reads the result instead of a half-saved state.
const SETTLE: Duration = Duration::from_millis(10);

/// Loads the folder once (building first when `build`), then keeps following it, every
/// `interval` and at each change the OS reports, for as long as the process runs.
pub async fn start(platform: &Arc<Platform>, dir: PathBuf, interval: Duration, build: bool) {
    let mut watcher = Watcher::new(dir);
    if build {
        watcher = watcher.with_builds();
    }
    let mut events = FolderEvents::new();
    watcher.sync(platform).await;
    events.follow(watcher.followed());
    let watched = Arc::clone(platform);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = events.changed() => tokio::time::sleep(SETTLE).await,
            }
            watcher.sync(&watched).await;
            if events.follow(watcher.followed()) {
                // A directory new since the scan: what was written in it before its watch
                // began sent no event.
                watcher.sync(&watched).await;
            }
        }
    });
}

/// What was applied for one function, to detect changes.
#[derive(PartialEq)]
struct Applied {
    file: PathBuf,
    spec: String,
    artifact: Option<Stamp>,
}

/// Polls a folder of manifests and applies what changed.
pub struct Watcher {
    dir: PathBuf,
    applied: HashMap<String, Applied>,
    file_errors: HashMap<PathBuf, String>,
    /// Last parse of each manifest file, with the (mtime, size) it was read at.
    parsed: HashMap<PathBuf, (Option<Stamp>, Option<Arc<ParsedFile>>)>,
    /// The builds manifests ask for, when this watcher runs them.
    rebuilds: Option<Rebuilds>,
    /// The directories the last scan walked.
    dirs: Vec<PathBuf>,
    /// The artifact files the functions of the last scan name.
    artifacts: HashSet<PathBuf>,
}

type ParsedFile = Result<Vec<Function>, String>;

/// (mtime, size) of a file: what the watcher compares to notice a change.
type Stamp = (SystemTime, u64);

impl Watcher {
    /// A watcher of `dir` that has applied nothing yet.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            applied: HashMap::new(),
            file_errors: HashMap::new(),
            parsed: HashMap::new(),
            rebuilds: None,
            dirs: Vec::new(),
            artifacts: HashSet::new(),
        }
    }

    /// What the last scan read, for change notifications: the walked directories, or the
    /// manifest when the folder is one file, and the artifacts.
    pub fn followed(&self) -> Followed {
        let mut files = self.artifacts.clone();
        if self.dirs.is_empty() {
            files.insert(self.dir.clone());
        }
        Followed {
            dirs: self.dirs.iter().cloned().collect(),
            files,
        }
    }

    /// Also runs the builds the manifests ask for: all of them on the first sync, then each
    /// when its sources change or it is new.
    pub fn with_builds(mut self) -> Self {
        self.rebuilds = Some(Rebuilds::default());
        self
    }

    /// Runs the builds that are due among those `scanned` manifests ask for, recording each
    /// outcome for the functions' status.
    async fn build(&mut self, platform: &Platform, scanned: &[(PathBuf, Arc<ParsedFile>, bool)]) {
        let Some(rebuilds) = &mut self.rebuilds else {
            return;
        };
        let jobs = crate::build::jobs(scanned.iter().filter_map(|(path, parsed, _)| {
            Some((path.as_path(), parsed.as_ref().as_ref().ok()?.as_slice()))
        }));
        let built: HashSet<&str> = jobs
            .iter()
            .flat_map(|j| j.functions.iter().map(String::as_str))
            .collect();
        platform.builds.retain(&built);
        for job in rebuilds.due(jobs) {
            let outcome = tokio::task::spawn_blocking({
                let job = job.clone();
                move || crate::build::run(&job)
            })
            .await
            .unwrap_or_else(|e| Err(format!("the build was interrupted: {e}")));
            if let Err(why) = &outcome {
                for name in &job.functions {
                    if platform.registry.get(name).is_some_and(|e| e.state.is_ok()) {
                        tracing::warn!(function = %name, error = %why, "build failed; the previous version keeps serving");
                        eprintln!("faas: {name}: the previous version keeps serving");
                    }
                }
            }
            platform.builds.record(&job.functions, &outcome);
        }
    }

    /// Parses the manifests under the folder, re-reading only files whose size or mtime
    /// changed since the last call (a folder of 1,000 manifests costs 1,000 stats per tick).
    /// Each entry says whether the file changed since the previous scan.
    fn scan(&mut self) -> Vec<(PathBuf, Arc<ParsedFile>, bool)> {
        let fresh = |f: faas_api::manifest::LoadedFile| {
            (f.path, Arc::new(f.result.map_err(|e| e.to_string())), true)
        };
        if !self.dir.is_dir() {
            self.dirs.clear();
            return load_path(&self.dir).into_iter().map(fresh).collect();
        }
        let Listing {
            files,
            dirs,
            errors,
        } = list_manifest_files(&self.dir);
        self.dirs = dirs;
        let mut out: Vec<_> = errors.into_iter().map(fresh).collect();
        let mut cache = HashMap::new();
        for file in files {
            let stamp = fingerprint(&file);
            let (parsed, changed) = match self.parsed.remove(&file) {
                Some((old_stamp, result)) if old_stamp == stamp && stamp.is_some() => {
                    (result, false)
                }
                _ => (
                    scan_file(&file).map(|f| Arc::new(f.result.map_err(|e| e.to_string()))),
                    true,
                ),
            };
            if let Some(result) = &parsed {
                out.push((file.clone(), Arc::clone(result), changed));
            }
            cache.insert(file, (stamp, parsed));
        }
        self.parsed = cache;
        out
    }

    /// Brings the registry in line with the folder.
    pub async fn sync(&mut self, platform: &Platform) {
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        let mut artifacts = HashSet::new();
        let mut broken_files = Vec::new();
        let scanned = self.scan();
        self.build(platform, &scanned).await;
        for (path, result, changed) in scanned {
            let functions = match &*result {
                Ok(functions) => {
                    self.file_errors.remove(&path);
                    functions
                }
                Err(message) => {
                    if self.file_errors.get(&path) != Some(message) {
                        tracing::warn!(file = %path.display(), error = %message, "manifest rejected; functions it defined keep their previous version");
                        eprintln!("faas: {}: {message}", path.display());
                        self.file_errors.insert(path.clone(), message.clone());
                        for (name, applied) in &self.applied {
                            if applied.file == path {
                                platform.registry.record_error(name, message.clone());
                            }
                        }
                    }
                    broken_files.push(path);
                    continue;
                }
            };
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            for function in functions {
                let name = function.metadata.name.clone().unwrap_or_default();
                if let Some(other) = seen.get(&name) {
                    let message = format!(
                        "function {name} is defined twice: in {} and {}",
                        other.display(),
                        path.display()
                    );
                    tracing::warn!("{message}");
                    continue;
                }
                seen.insert(name.clone(), path.clone());
                let artifact_path =
                    crate::artifact::local_path(function, &base).map_err(|e| e.to_string());
                let fingerprint = artifact_path.as_ref().ok().and_then(|p| fingerprint(p));
                if let Ok(path) = &artifact_path
                    && function.spec.runtime.container.is_none()
                {
                    artifacts.insert(path.clone());
                }
                // Unchanged manifest and artifact: nothing to do, and no need to serialize the
                // spec to find that out (this runs for every function every tick).
                if !changed
                    && self
                        .applied
                        .get(&name)
                        .is_some_and(|a| a.file == path && a.artifact == fingerprint)
                {
                    continue;
                }
                let applied = Applied {
                    file: path.clone(),
                    spec: serde_json::to_string(&function.spec).unwrap_or_default(),
                    artifact: fingerprint,
                };
                if self.applied.get(&name) == Some(&applied) {
                    continue;
                }
                // A process function has no artifact: its manifest is all there is.
                let bytes = if function.spec.runtime.container.is_some() {
                    Ok(Bytes::new())
                } else {
                    artifact_path
                        .and_then(|p| crate::artifact::read_file(&p).map_err(|e| e.to_string()))
                };
                let reloading = self.applied.contains_key(&name);
                match platform
                    .apply(
                        function.clone(),
                        bytes,
                        Origin::File(path.clone()),
                        Some(&base),
                    )
                    .await
                {
                    Ok(()) if reloading => eprintln!("faas: reloaded {name}"),
                    Ok(()) => {}
                    Err(reason) => eprintln!("faas: {name}: {reason}"),
                }
                self.applied.insert(name, applied);
            }
        }
        // (A broken manifest's artifacts are not followed: nothing reloads them until it
        // is fixed, and fixing it is a change of a followed file.)
        self.artifacts = artifacts;
        // Functions whose manifest is gone (not merely broken) are removed.
        let gone: Vec<String> = self
            .applied
            .iter()
            .filter(|(name, applied)| {
                !seen.contains_key(*name) && !broken_files.contains(&applied.file)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.applied.remove(&name);
            if platform
                .registry
                .get(&name)
                .is_some_and(|e| matches!(e.origin, Origin::File(_)))
            {
                platform.registry.remove(&name);
                eprintln!("faas: removed {name} (its manifest is gone)");
            }
        }
    }
}

fn fingerprint(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
