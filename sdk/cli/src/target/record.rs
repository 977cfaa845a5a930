//! What `faas` keeps in the user's config directory so that the target is explicit: the
//! target chosen with `faas target set` (`target.json`), and one record per running `faas up`
//! (`local/PID.json`), so that commands prefer a local platform the user started over the
//! cluster a kubeconfig happens to point at.
//!
//! The directory is `FAAS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/faas`, else `~/.config/faas`.
//! A record whose process is gone or whose gateway does not answer is stale and ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The user's faas directory, when one can be named.
pub fn dir() -> Option<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("FAAS_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = set("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join("faas"));
    }
    set("HOME").map(|home| PathBuf::from(home).join(".config").join("faas"))
}

/// A target the user chose with `faas target set`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Chosen {
    /// A local platform: this gateway, or without one the running `faas up` (else the
    /// default address).
    Local {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gateway: Option<String>,
    },
    /// A cluster context, pinned by name (a later `kubectl config use-context` does not move
    /// it), and a namespace (default: the context's).
    Cluster {
        context: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
}

/// Where the chosen target is kept.
pub fn chosen_path() -> Option<PathBuf> {
    dir().map(|dir| dir.join("target.json"))
}

/// The chosen target, if any. A file that cannot be read is an error: it would silently
/// change where commands go.
pub fn chosen() -> anyhow::Result<Option<Chosen>> {
    let Some(path) = chosen_path() else {
        return Ok(None);
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
            format!(
                "{} is not a faas target; hint: `faas target unset`, or `faas target set local|cluster`",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Saves `chosen` as the target, returning the file written.
pub fn choose(chosen: &Chosen) -> anyhow::Result<PathBuf> {
    let path = chosen_path()
        .context("no config directory to save the target in; hint: set HOME or FAAS_CONFIG_DIR")?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let text = serde_json::to_vec_pretty(chosen)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Forgets the chosen target; `true` when there was one.
pub fn unchoose() -> anyhow::Result<bool> {
    let Some(path) = chosen_path() else {
        return Ok(false);
    };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// A running `faas up`, as it records itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPlatform {
    /// Its gateway, `http://ADDRESS`.
    pub url: String,
    pub pid: u32,
    /// The folder of manifests it serves.
    pub dir: PathBuf,
    /// When it started (RFC 3339).
    pub started: String,
}

fn records_dir() -> Option<PathBuf> {
    dir().map(|dir| dir.join("local"))
}

/// The record of this process, removed when dropped (a clean exit of `faas up`).
#[derive(Debug)]
pub struct Recorded {
    path: PathBuf,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Records `platform` (this process) as a running local platform. Failing to is not fatal to
/// `faas up`: the caller warns, and commands then need `--gateway`.
pub fn record(platform: &LocalPlatform) -> anyhow::Result<Recorded> {
    let dir = records_dir()
        .context("no config directory (set HOME or FAAS_CONFIG_DIR) to record this platform in")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.json", platform.pid));
    let text = serde_json::to_vec_pretty(platform)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(Recorded { path })
}

/// The running local platforms, newest first: records whose process is alive and whose
/// gateway answers as a local platform. Stale records are removed on the way.
pub async fn running() -> Vec<LocalPlatform> {
    let Some(dir) = records_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(platform) = read_record(&path) else {
            continue;
        };
        if !alive(platform.pid) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if answers(&platform.url).await {
            found.push(platform);
        }
    }
    // RFC 3339 times in UTC sort as text.
    found.sort_by(|a, b| b.started.cmp(&a.started));
    found
}

fn read_record(path: &Path) -> Option<LocalPlatform> {
    if path.extension().is_none_or(|e| e != "json") {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Whether process `pid` exists (another user's counts: it exists).
fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Whether `url` is a local platform's gateway answering now (bounded: a hung port must not
/// hang every command).
async fn answers(url: &str) -> bool {
    let Ok(gateway) = crate::client::Gateway::new(url) else {
        return false;
    };
    let asked = tokio::time::timeout(
        Duration::from_millis(1500),
        gateway.get_json("/system/info"),
    )
    .await;
    matches!(asked, Ok(Ok(info)) if info["mode"] == "local")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn chosen_targets_round_trip_as_json() {
        let local = Chosen::Local { gateway: None };
        let text = serde_json::to_string(&local).unwrap();
        assert_eq!(text, r#"{"kind":"local"}"#);
        let cluster: Chosen =
            serde_json::from_str(r#"{"kind":"cluster","context":"prod","namespace":"pay"}"#)
                .unwrap();
        assert_eq!(
            cluster,
            Chosen::Cluster {
                context: "prod".into(),
                namespace: Some("pay".into())
            }
        );
    }

    #[test]
    fn this_process_is_alive_and_an_unused_pid_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(0));
        assert!(!alive(u32::MAX));
    }
}
