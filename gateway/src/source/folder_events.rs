//! Wakes the folder watcher ([`super::folder`]) as soon as something it reads changes, so a
//! saved manifest serves in milliseconds instead of at the next poll.
//!
//! The polling stays the source of truth: an event only says "scan now", and the scan decides
//! what changed as it always did (stat, re-parse what moved). That keeps what polling is good
//! at (editors that replace files, any filesystem) and makes events an optimization that can
//! be missing without harm: on a filesystem that sends none (network shares, some bind mounts),
//! when the OS refuses a watch (`fs.inotify.max_user_watches`), or for a `ConfigMap` mount
//! (whose swaps are renames of hidden `..data` entries), changes arrive at the next poll.
//!
//! Each walked directory and each artifact's directory gets a watch of its own, never a
//! recursive one: a folder of Rust or Node projects would otherwise put a watch on every
//! directory of `target/` and `node_modules/`, and the process's own writes (a state directory
//! inside the folder) would wake it for nothing. Only a change to an entry a scan reads wakes
//! it: a visible manifest or directory of a walked directory, or an artifact file itself. A
//! function's own files beside its manifest (a log it appends to, a database) do not: each
//! write would otherwise cost a scan. Nor do reads (the scan's own reads would otherwise wake
//! the next scan).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use faas_api::manifest::{has_manifest_extension, is_skipped};
use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{EventKind, EventKindMask, RecommendedWatcher, RecursiveMode, Watcher as _};

/// What a scan reads: the directories it walks and the files it reads outside them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Followed {
    /// Directories whose visible entries the scan reads.
    pub dirs: HashSet<PathBuf>,
    /// Single files the scan reads (artifacts, a manifest given as a file).
    pub files: HashSet<PathBuf>,
}

impl Followed {
    /// Whether a change at `path` can change what the scan finds.
    pub fn matters(&self, path: &Path) -> bool {
        // A file named without a directory is watched through `.`, whose events name it
        // `./file`.
        if self.files.contains(path)
            || path
                .strip_prefix(".")
                .is_ok_and(|bare| self.files.contains(bare))
        {
            return true;
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        self.dirs.contains(parent)
            && !is_skipped(&name.to_string_lossy())
            // A directory (new, or renamed) may hold manifests; one removed held files
            // whose removals each say so.
            && (has_manifest_extension(path) || path.is_dir())
    }

    /// The directories to watch: the walked ones and those holding the single files.
    fn watch_set(&self) -> HashSet<PathBuf> {
        let parents = self.files.iter().filter_map(|f| f.parent()).map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        });
        self.dirs.iter().cloned().chain(parents).collect()
    }
}

/// Whether an event of this kind is a change (not a read, not an access time).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

struct Shared {
    followed: Mutex<Followed>,
    woken: tokio::sync::Notify,
}

/// The OS's change notifications for what a folder scan reads.
pub struct FolderEvents {
    /// `None` when the OS gave no watcher: the folder is then only polled.
    watcher: Option<RecommendedWatcher>,
    shared: Arc<Shared>,
    watching: HashSet<PathBuf>,
    /// Whether a refused watch was already reported (once per process, not per scan).
    warned: bool,
}

impl FolderEvents {
    /// Starts the OS watcher, following nothing yet.
    pub fn new() -> Self {
        let shared = Arc::new(Shared {
            followed: Mutex::new(Followed::default()),
            woken: tokio::sync::Notify::new(),
        });
        let handler = {
            let shared = Arc::clone(&shared);
            move |event: notify::Result<notify::Event>| {
                let wake = match &event {
                    Ok(event) => {
                        is_change(&event.kind) && {
                            let followed =
                                shared.followed.lock().unwrap_or_else(|p| p.into_inner());
                            event.paths.iter().any(|p| followed.matters(p))
                        }
                    }
                    // Lost events (a queue overflow): scan, which finds whatever they were.
                    Err(_) => true,
                };
                if wake {
                    shared.woken.notify_one();
                }
            }
        };
        let config = notify::Config::default()
            .with_event_kinds(EventKindMask::CORE | EventKindMask::ACCESS_CLOSE);
        let watcher = match RecommendedWatcher::new(handler, config) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "no file change notifications: the folder is polled only");
                None
            }
        };
        Self {
            watcher,
            shared,
            watching: HashSet::new(),
            warned: false,
        }
    }

    /// Follows what a scan read. Returns whether a directory is watched that was not before:
    /// what was written in it between the scan and its watch sent no event, so the caller
    /// scans once more.
    pub fn follow(&mut self, followed: Followed) -> bool {
        let wanted = followed.watch_set();
        *self
            .shared
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = followed;
        let Some(watcher) = &mut self.watcher else {
            return false;
        };
        for gone in self.watching.difference(&wanted) {
            // A directory that no longer exists has lost its watch already.
            let _ = watcher.unwatch(gone);
        }
        let mut added = false;
        let mut refused = None;
        let mut watching = HashSet::with_capacity(wanted.len());
        for dir in wanted {
            if self.watching.contains(&dir) {
                watching.insert(dir);
                continue;
            }
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    added = true;
                    watching.insert(dir);
                }
                // A directory that does not exist (yet): the scan reports what matters.
                Err(e) if matches!(&e.kind, notify::ErrorKind::PathNotFound) => {}
                Err(e) => refused = Some((dir, e)),
            }
        }
        self.watching = watching;
        if let Some((dir, e)) = refused
            && !std::mem::replace(&mut self.warned, true)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "a directory gets no change notifications: its changes are seen at the next poll");
        }
        added
    }

    /// Resolves at the next change to something followed (at once if one came since the
    /// last call); never when there is no OS watcher.
    pub async fn changed(&self) {
        if self.watcher.is_none() {
            return std::future::pending().await;
        }
        self.shared.woken.notified().await;
    }
}

impl Default for FolderEvents {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Duration;

    fn followed(dirs: &[&Path], files: &[&Path]) -> Followed {
        Followed {
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            files: files.iter().map(|f| f.to_path_buf()).collect(),
        }
    }

    #[test]
    fn only_visible_entries_of_walked_directories_and_followed_files_matter() {
        let f = followed(
            &[Path::new("fns"), Path::new("fns/a")],
            &[Path::new("build/out/a.wasm")],
        );
        for path in ["fns/x.yaml", "fns/a/b.yml", "build/out/a.wasm"] {
            assert!(f.matters(Path::new(path)), "{path}");
        }
        for path in [
            "fns/a/hello.wasm",
            "fns/app.log",
            "fns/newdir",
            "fns/.x.yaml.tmp",
            "fns/target",
            "fns/node_modules",
            "fns/a/b/deep.yaml",
            "build/out/a.d",
            "elsewhere/x.yaml",
            "fns",
        ] {
            assert!(!f.matters(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn reads_and_access_times_are_not_changes() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_change(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::AccessTime
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
        assert!(is_change(&EventKind::Any));
    }

    #[test]
    fn a_file_outside_the_walked_directories_is_watched_through_its_directory() {
        let f = followed(
            &[Path::new("fns")],
            &[Path::new("out/a.wasm"), Path::new("b.yaml")],
        );
        // `b.yaml` as the events of its directory, `.`, name it.
        assert!(f.matters(Path::new("./b.yaml")));
        assert!(!f.matters(Path::new("./c.yaml")));
        let set = f.watch_set();
        let expected: HashSet<PathBuf> = ["fns", "out", "."].iter().map(PathBuf::from).collect();
        assert_eq!(set, expected);
    }

    /// Waits for a wake-up, at most `limit`.
    async fn woken_within(events: &FolderEvents, limit: Duration) -> bool {
        tokio::time::timeout(limit, events.changed()).await.is_ok()
    }

    #[tokio::test]
    async fn writes_wake_it_and_its_own_reads_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let outside = tempfile::tempdir().unwrap();
        let artifact = outside.path().join("a.wasm");
        std::fs::write(&artifact, b"v1").unwrap();
        std::fs::write(root.join("f.yaml"), "v1").unwrap();
        let mut events = FolderEvents::new();
        assert!(events.watcher.is_some(), "this OS gives file notifications");
        let added = events.follow(followed(&[&root], &[&artifact]));
        assert!(added, "new directories are reported, for one more scan");

        // Reading what a scan reads, and writing where it does not look: no wake-up.
        let _ = std::fs::read_to_string(root.join("f.yaml")).unwrap();
        let _ = std::fs::read(&artifact).unwrap();
        std::fs::write(root.join(".f.yaml.tmp"), "hidden").unwrap();
        std::fs::write(outside.path().join("a.d"), "deps").unwrap();
        std::fs::create_dir_all(root.join("target/debug")).unwrap();
        // A function's own log beside its manifest.
        std::fs::write(root.join("app.log"), "line\n").unwrap();
        assert!(
            !woken_within(&events, Duration::from_millis(300)).await,
            "woken by a read or an entry no scan reads"
        );

        // A manifest renamed into place, an artifact rewritten, a manifest removed.
        std::fs::rename(root.join(".f.yaml.tmp"), root.join("g.yaml")).unwrap();
        assert!(
            woken_within(&events, Duration::from_secs(10)).await,
            "rename"
        );
        std::fs::write(&artifact, b"v2").unwrap();
        assert!(
            woken_within(&events, Duration::from_secs(10)).await,
            "artifact"
        );
        std::fs::remove_file(root.join("f.yaml")).unwrap();
        assert!(
            woken_within(&events, Duration::from_secs(10)).await,
            "removal"
        );
        // A new directory, which may hold manifests.
        std::fs::create_dir(root.join("team")).unwrap();
        assert!(
            woken_within(&events, Duration::from_secs(10)).await,
            "new directory"
        );

        // Following the same set again adds no watch; dropping the artifact stops its wake-ups.
        assert!(!events.follow(followed(&[&root], &[&artifact])));
        assert!(!events.follow(followed(&[&root], &[])));
        while woken_within(&events, Duration::from_millis(100)).await {}
        std::fs::write(&artifact, b"v3").unwrap();
        assert!(
            !woken_within(&events, Duration::from_millis(300)).await,
            "woken by a file no longer followed"
        );
    }
}
