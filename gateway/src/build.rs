//! Cargo builds, in one place: the builds a folder's manifests ask for (`faas up --build`,
//! `faas deploy --build`) and the component a crate builds to (`faas deploy --wasm DIR`).
//! What runs is `cargo build --release --target ...` with cargo's own progress on stderr.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use faas_api::manifest::load_path;

/// Why a crate's component could not be found or built (each names the `--wasm` folder).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The folder is not a Rust crate.
    #[error("--wasm {}: a folder must be a Rust crate (no Cargo.toml)", .0.display())]
    NotACrate(PathBuf),
    /// cargo could not be started.
    #[error("running cargo {step} (is cargo installed?): {source}")]
    NoCargo {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// `cargo metadata` failed; its stderr.
    #[error("--wasm {}: cargo metadata failed: {stderr}", dir.display())]
    Metadata { dir: PathBuf, stderr: String },
    /// `cargo metadata` printed something that is not its JSON.
    #[error("cargo metadata: {0}")]
    MetadataJson(#[from] serde_json::Error),
    /// The crate's manifest cannot be resolved.
    #[error("{}: {source}", path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `cargo metadata` does not list the crate.
    #[error("--wasm {}: cargo metadata does not list this crate", .0.display())]
    NotListed(PathBuf),
    /// The crate builds no component.
    #[error(
        "--wasm {}: the crate has no cdylib library (add [lib] crate-type = [\"cdylib\"]; `faas new NAME` makes one)",
        .0.display()
    )]
    NoCdylib(PathBuf),
    /// `cargo build` failed (its output is on stderr).
    #[error("--wasm {}: cargo build failed (see above)", .0.display())]
    BuildFailed(PathBuf),
}

/// The cargo to run: the one running us when there is one (`CARGO`), else `cargo`.
fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The component a Rust crate builds to (`cargo build --release --target wasm32-wasip2`, run
/// here when `build`), found through `cargo metadata` (the target dir may be a workspace's).
pub fn crate_artifact(dir: &Path, build: bool) -> Result<PathBuf, BuildError> {
    if !dir.join("Cargo.toml").exists() {
        return Err(BuildError::NotACrate(dir.to_path_buf()));
    }
    let metadata = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(dir)
        .output()
        .map_err(|source| BuildError::NoCargo {
            step: "metadata",
            source,
        })?;
    if !metadata.status.success() {
        return Err(BuildError::Metadata {
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&metadata.stderr).trim().to_owned(),
        });
    }
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    let manifest_path = dir.join("Cargo.toml");
    let manifest = std::fs::canonicalize(&manifest_path).map_err(|source| BuildError::Path {
        path: manifest_path,
        source,
    })?;
    let package = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["manifest_path"]
                .as_str()
                .and_then(|m| std::fs::canonicalize(m).ok())
                .is_some_and(|m| m == manifest)
        })
        .ok_or_else(|| BuildError::NotListed(dir.to_path_buf()))?;
    let library = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["crate_types"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .and_then(|t| t["name"].as_str())
        .ok_or_else(|| BuildError::NoCdylib(dir.to_path_buf()))?;
    let target_dir = PathBuf::from(metadata["target_directory"].as_str().unwrap_or("target"));
    if build {
        eprintln!("faas: building {} for wasm32-wasip2", dir.display());
        let status = cargo()
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(dir)
            .status()
            .map_err(|source| BuildError::NoCargo {
                step: "build",
                source,
            })?;
        if !status.success() {
            return Err(BuildError::BuildFailed(dir.to_path_buf()));
        }
    }
    Ok(target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", library.replace('-', "_"))))
}

/// Runs the cargo builds that manifests under `dir` ask for, one cargo call per
/// (directory, target), with cargo's own progress on stderr. Failures are reported; the
/// functions concerned then fail to load with a clear reason (missing artifact).
pub fn build_all(dir: &Path) {
    // (cargo dir, target) -> [(function, package)]
    type Jobs = HashMap<(PathBuf, String), Vec<(String, Option<String>)>>;
    let mut jobs: Jobs = HashMap::new();
    for file in load_path(dir) {
        let Ok(functions) = file.result else { continue };
        let base = file
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for function in functions {
            let Some(cargo) = function
                .spec
                .runtime
                .wasm
                .as_ref()
                .and_then(|w| w.build.as_ref())
                .and_then(|b| b.cargo.as_ref())
            else {
                continue;
            };
            let cargo_dir = base.join(cargo.dir.as_deref().unwrap_or("."));
            let target = cargo
                .target
                .clone()
                .unwrap_or_else(|| "wasm32-wasip2".to_owned());
            let name = function.metadata.name.clone().unwrap_or_default();
            jobs.entry((cargo_dir, target))
                .or_default()
                .push((name, cargo.package.clone()));
        }
    }
    let mut keys: Vec<_> = jobs.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let functions = &jobs[&key];
        let (cargo_dir, target) = &key;
        let names: Vec<&str> = functions.iter().map(|(n, _)| n.as_str()).collect();
        eprintln!(
            "faas: building {} (cargo build --release --target {target} in {})",
            names.join(", "),
            cargo_dir.display()
        );
        let mut command = cargo();
        command
            .current_dir(cargo_dir)
            .args(["build", "--release", "--target", target]);
        for package in functions.iter().filter_map(|(_, p)| p.as_ref()) {
            command.args(["-p", package]);
        }
        match command.status() {
            Ok(status) if status.success() => eprintln!("faas: built {}", names.join(", ")),
            Ok(status) => eprintln!(
                "faas: build of {} failed ({status}); see cargo's output above",
                names.join(", ")
            ),
            Err(err) => eprintln!("faas: could not run cargo for {}: {err}", names.join(", ")),
        }
    }
}
