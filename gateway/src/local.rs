//! Local mode (`faas up DIR`): functions come from a folder of manifests, are built with cargo
//! when they say how, and are reloaded live when a manifest or artifact changes.
//!
//! Watching is by polling (once a second by default) rather than inotify: it works the same on
//! every filesystem (bind mounts, network shares, editors that replace files), costs a few
//! stat calls per second, and needs no extra dependency.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use faas_api::Function;
use faas_api::manifest::{list_manifest_files, load_path, scan_file};
use tokio::net::TcpListener;

use crate::platform::{GatewayConfig, Platform, Role};
use crate::registry::Origin;

/// Options of `faas up`.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Folder (or file) of Function manifests.
    pub dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// State directory.
    pub state_dir: PathBuf,
    /// Run the cargo builds the manifests ask for.
    pub build: bool,
    /// How often to look for changes.
    pub watch_interval: Duration,
    /// Serve the management API to non-loopback clients (with the token).
    pub remote_management: bool,
    /// `GatewayConfig::management_token`.
    pub management_token: Option<String>,
    /// `GatewayConfig::body_budget`.
    pub body_budget: u64,
    /// `WasmConfig::keep_resident_bytes`.
    pub pool_keep_resident: usize,
    /// `GatewayConfig::shutdown_grace`.
    pub shutdown_grace: Duration,
    /// What this process is: `faas up` is [`Role::Local`]; `faas-runtime serve` and
    /// `faas-runtime sidecar` run the same loop as a pool pod or a sidecar.
    pub role: Role,
    /// Where the functions come from.
    pub source: FunctionSource,
    /// After SIGTERM, how long requests are still taken while `/readyz` fails.
    pub drain_delay: Duration,
    /// Serve `/async-function/...` from a queue in the state directory, with these retries
    /// (`faas up`; runtime pods take no async calls: the cluster gateway does).
    pub async_calls: Option<crate::async_call::AsyncSettings>,
    /// `GatewayConfig::internal_cidrs` (runtime pools).
    pub internal_cidrs: Vec<faas_api::network::Cidr>,
}

/// Where a platform process gets its functions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionSource {
    /// The manifests under `LocalOptions::dir`, watched.
    Folder,
    /// The Functions of a runtime pool, from the Kubernetes API (`faas-runtime serve --pool`):
    /// those labelled `faas.dev/pool=<pool>` in the pod's namespace. `pod` (the pod's name)
    /// is how it reports, per function, whether it loaded it.
    Pool {
        pool: crate::pool_source::PoolIdentity,
        namespace: String,
        pod: Option<String>,
    },
}

/// Runs the local platform until SIGTERM/SIGINT.
pub async fn run(options: LocalOptions) -> anyhow::Result<()> {
    let mut config = GatewayConfig::new(options.state_dir.clone());
    config.role = options.role;
    config.remote_management = options.remote_management;
    config.management_token = options.management_token.clone();
    config.body_budget = options.body_budget;
    config.wasm.keep_resident_bytes = options.pool_keep_resident;
    config.shutdown_grace = options.shutdown_grace;
    config.internal_cidrs = options.internal_cidrs.clone();
    let platform = Platform::new(config)?;
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    if options.build {
        build_all(&options.dir);
    }
    let mut folder = None;
    match &options.source {
        FunctionSource::Folder => {
            let mut watcher = Watcher::new(options.dir.clone());
            watcher.sync(&platform).await;
            if options.role.manages_functions() {
                crate::management::restore(&platform).await;
            }
            platform.set_ready();
            folder = Some(watcher);
        }
        FunctionSource::Pool {
            pool,
            namespace,
            pod,
        } => {
            let client = kube::Client::try_default()
                .await
                .context("a runtime pool reads its functions from the Kubernetes API: no in-cluster config or KUBECONFIG")?;
            // Ready once the first list of the pool's Functions is loaded.
            crate::pool_source::start(
                &platform,
                client,
                namespace.clone(),
                pool.clone(),
                pod.clone(),
            );
        }
    }
    let (ready, failed) = platform.registry.counts();
    eprintln!("faas: {ready} function(s) ready, {failed} not ready");
    for entry in platform.registry.list() {
        match &entry.state {
            Ok(_) => eprintln!(
                "faas:   {:<24} http://{address}/function/{}",
                entry.name(),
                entry.name()
            ),
            Err(reason) => eprintln!("faas:   {:<24} NOT READY: {reason}", entry.name()),
        }
    }
    println!("faas: listening on http://{address}");

    if let Some(mut watcher) = folder {
        let watched = Arc::clone(&platform);
        let interval = options.watch_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                watcher.sync(&watched).await;
            }
        });
    }
    // Cron runs here only in local mode: in a cluster the controller's leader schedules and
    // calls in through HTTP, so a pool or sidecar replica never fires a schedule itself.
    let scheduler = match options.role {
        Role::Local => Some(crate::cron::start(&platform, address.port())?),
        Role::Pool | Role::Sidecar { .. } | Role::Cluster => None,
    };
    let pollers = crate::sqs::start(&platform, address.port())?;
    let async_worker = match options.async_calls.clone() {
        Some(settings) => {
            std::fs::create_dir_all(&options.state_dir)
                .with_context(|| format!("cannot create {}", options.state_dir.display()))?;
            let queue = crate::async_call::SqliteQueue::open(&options.state_dir.join("async.db"))
                .context("async calls: cannot open the queue")?;
            let queue: Arc<dyn crate::async_call::AsyncQueue> = Arc::new(queue);
            let _ = platform.async_queue.set(Arc::clone(&queue));
            Some(crate::async_call::Worker::start(&platform, queue, settings))
        }
        None => None,
    };
    let schedules: usize = platform
        .registry
        .list()
        .iter()
        .map(|entry| entry.function.spec.schedules.len())
        .sum();
    if schedules > 0 {
        eprintln!(
            "faas: {schedules} schedule(s); runs recorded in {}",
            options.state_dir.join("runs.db").display()
        );
    }

    // One signal stops the HTTP server (drain connections), the scheduler (no new fires; runs
    // in flight get the grace period, then are recorded Interrupted) and the SQS pollers (no
    // new receives; batches in flight get the grace period, then their messages are made
    // visible again at once).
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let grace = platform.config.shutdown_grace;
    let drain_delay = options.drain_delay;
    let draining = Arc::clone(&platform);
    let signal = async {
        shutdown_signal().await;
        crate::server::drain(&draining, drain_delay).await;
        stop.send_replace(true);
        eprintln!(
            "faas: stopping; requests, runs and SQS batches in flight get up to {} \
             (signal again to exit now)",
            humantime::format_duration(grace)
        );
        // A second signal is someone who does not want to wait: exit at once. SQS messages
        // in flight then come back after their visibility timeout, runs stay Running until
        // the next start marks them Interrupted.
        tokio::spawn(async {
            shutdown_signal().await;
            eprintln!("faas: second signal, exiting now");
            std::process::exit(130);
        });
    };
    let (served, ()) = tokio::join!(
        async {
            let served = crate::server::serve(listener, Arc::clone(&platform), signal).await;
            // Whatever ended the server ends the scheduler too.
            stop.send_replace(true);
            served
        },
        async {
            let _ = stopped.wait_for(|stop| *stop).await;
            let scheduler = async {
                if let Some(scheduler) = &scheduler {
                    scheduler.shutdown(grace).await;
                }
            };
            let worker = async {
                if let Some(worker) = async_worker {
                    worker.shutdown(grace).await;
                }
            };
            tokio::join!(scheduler, pollers.shutdown(grace), worker);
        }
    );
    served?;
    eprintln!("faas: stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            tracing::warn!("cannot install signal handlers; falling back to ctrl-c");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
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
            return load_path(&self.dir).into_iter().map(fresh).collect();
        }
        let (files, errors) = list_manifest_files(&self.dir);
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
        let mut broken_files = Vec::new();
        for (path, result, changed) in self.scan() {
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
                let artifact_path = artifact_path(function, &base);
                let fingerprint = artifact_path.as_ref().ok().and_then(|p| fingerprint(p));
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
                    artifact_path.and_then(|p| {
                        std::fs::read(&p).map(Bytes::from).map_err(|e| {
                            format!("spec.runtime.wasm.source: cannot read {}: {e}", p.display())
                        })
                    })
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

/// Where a manifest's artifact lives on this machine.
pub fn artifact_path(function: &Function, base: &Path) -> Result<PathBuf, String> {
    crate::artifact::local_path(function, base).map_err(|e| e.to_string())
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
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
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
