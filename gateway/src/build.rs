//! Cargo builds, in one place: the builds a folder's manifests ask for (`faas up --build`,
//! `faas deploy --build`) and the component a crate builds to (`faas deploy --wasm DIR`).
//! What runs is `cargo build --release --target ...` with cargo's own progress on stderr.
//! When to build again under `faas up` is [`crate::rebuild`]'s concern.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use faas_api::Function;
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

/// One cargo build that manifests ask for: one cargo call per (directory, target), for the
/// packages and functions that share it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Where cargo runs.
    pub dir: PathBuf,
    /// The Rust target (`wasm32-wasip2` unless the manifest says otherwise).
    pub target: String,
    /// `-p` arguments, sorted; empty builds the crate in `dir`.
    pub packages: Vec<String>,
    /// The functions it builds, sorted.
    pub functions: Vec<String>,
}

/// The builds that `manifests` (each manifest file's path and the functions it defines) ask
/// for, sorted by directory and target.
pub fn jobs<'a>(manifests: impl IntoIterator<Item = (&'a Path, &'a [Function])>) -> Vec<Job> {
    let mut jobs: BTreeMap<(PathBuf, String), Job> = BTreeMap::new();
    for (path, functions) in manifests {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
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
            let dir = base.join(cargo.dir.as_deref().unwrap_or("."));
            let target = cargo
                .target
                .clone()
                .unwrap_or_else(|| "wasm32-wasip2".to_owned());
            let job = jobs
                .entry((dir.clone(), target.clone()))
                .or_insert_with(|| Job {
                    dir,
                    target,
                    packages: Vec::new(),
                    functions: Vec::new(),
                });
            job.packages.extend(cargo.package.clone());
            job.functions
                .push(function.metadata.name.clone().unwrap_or_default());
        }
    }
    jobs.into_values()
        .map(|mut job| {
            job.packages.sort();
            job.packages.dedup();
            job.functions.sort();
            job
        })
        .collect()
}

/// Runs the cargo builds that manifests under `dir` ask for, one after the other, with
/// cargo's own progress on stderr. Failures are reported; the functions concerned then fail
/// to load with a clear reason (missing artifact).
pub fn build_all(dir: &Path) {
    let files: Vec<_> = load_path(dir)
        .into_iter()
        .filter_map(|f| Some((f.path, f.result.ok()?)))
        .collect();
    for job in jobs(files.iter().map(|(p, f)| (p.as_path(), f.as_slice()))) {
        // `run` has reported the outcome.
        let _ = run(&job);
    }
}

/// Runs one build, passing cargo's output through to stderr between a `building` and a
/// `built` (or `build of ... failed`) line. On failure, returns why in one line: cargo's
/// first error and where it is (`error[E0308]: mismatched types --> src/lib.rs:3:5`).
pub fn run(job: &Job) -> Result<(), String> {
    let names = job.functions.join(", ");
    eprintln!(
        "faas: building {names} (cargo build --release --target {} in {})",
        job.target,
        job.dir.display()
    );
    let mut command = cargo();
    command
        .current_dir(&job.dir)
        .args(["build", "--release", "--target", &job.target])
        .stderr(Stdio::piped());
    for package in &job.packages {
        command.args(["-p", package]);
    }
    let failed = |why: String| {
        eprintln!("faas: build of {names} failed: {why}");
        Err(why)
    };
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => return failed(format!("could not run cargo (is it installed?): {err}")),
    };
    let mut first_error = FirstError::default();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            first_error.read(&line);
        }
    }
    match child.wait() {
        Ok(status) if status.success() => {
            eprintln!("faas: built {names}");
            Ok(())
        }
        Ok(status) => failed(
            first_error
                .summary()
                .unwrap_or_else(|| format!("cargo build failed ({status})")),
        ),
        Err(err) => failed(format!("waiting for cargo: {err}")),
    }
}

/// The first `error...` line of cargo's output and the `-->` location after it.
#[derive(Default)]
struct FirstError {
    error: Option<String>,
    location: Option<String>,
    done: bool,
}

impl FirstError {
    fn read(&mut self, line: &str) {
        let line = line.trim();
        if self.done || line.is_empty() {
            return;
        }
        match &self.error {
            None if line.starts_with("error") => self.error = Some(line.to_owned()),
            None => {}
            Some(_) => {
                if line.starts_with("-->") {
                    self.location = Some(line.to_owned());
                }
                self.done = true;
            }
        }
    }

    fn summary(&self) -> Option<String> {
        let error = self.error.clone()?;
        Some(match &self.location {
            Some(location) => format!("{error} {location}"),
            None => error,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_first_error_and_its_location_say_why_a_build_failed() {
        let mut first = FirstError::default();
        for line in [
            "   Compiling guest v0.1.0 (/tmp/guest)",
            "error[E0308]: mismatched types",
            " --> src/main.rs:3:5",
            "  |",
            "error: could not compile `guest` (bin \"guest\") due to 1 previous error",
        ] {
            first.read(line);
        }
        assert_eq!(
            first.summary().unwrap(),
            "error[E0308]: mismatched types --> src/main.rs:3:5"
        );
        assert_eq!(FirstError::default().summary(), None);
    }

    #[test]
    fn functions_sharing_a_directory_and_target_share_one_build() {
        let parse = |yaml: &str| -> Function { serde_yaml::from_str(yaml).unwrap() };
        let function = |name: &str, cargo: &str| {
            parse(&format!(
                "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime: {{wasm: {{source: x.wasm, build: {{cargo: {cargo}}}}}}}\n"
            ))
        };
        let functions = vec![
            function("b", "{dir: .., package: pb}"),
            function("a", "{dir: .., package: pa}"),
            function("c", "{target: wasm32-wasip1}"),
            parse(
                "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: plain}\nspec:\n  runtime: {wasm: {source: x.wasm}}\n",
            ),
        ];
        let path = Path::new("/work/fns/f.yaml");
        let jobs = jobs([(path, functions.as_slice())]);
        assert_eq!(jobs.len(), 2, "{jobs:?}");
        assert_eq!(jobs[0].dir, Path::new("/work/fns/."));
        assert_eq!(jobs[0].target, "wasm32-wasip1");
        assert_eq!(jobs[0].functions, ["c"]);
        assert_eq!(jobs[1].dir, Path::new("/work/fns/.."));
        assert_eq!(jobs[1].packages, ["pa", "pb"]);
        assert_eq!(jobs[1].functions, ["a", "b"]);
    }
}
