//! The gateway library's typed errors: why a platform process could not start (settings,
//! listeners, the Kubernetes client, the state directory, an event source). Binaries turn
//! them into one line; the library never returns `anyhow`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a host (local, pool, sidecar, cluster) or one of its parts could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The management settings are unsafe (see [`crate::guard::check_settings`]).
    #[error(transparent)]
    Settings(#[from] crate::guard::SettingsError),
    /// The WASM executor could not be built.
    #[error("wasm runtime: {0}")]
    Wasm(#[from] faas_runtime::wasm::LoadError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A listener failed while serving.
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
    /// No Kubernetes client: `what` says who needed it.
    #[error("{what}: no in-cluster config or KUBECONFIG ({source})")]
    Kubernetes {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    /// The state directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The queue of async calls could not be opened.
    #[error("async calls: cannot use the queue {queue}: {source}")]
    AsyncQueue {
        queue: String,
        #[source]
        source: crate::async_call::QueueError,
    },
    /// The store of cron runs could not be opened.
    #[error("scheduler: cannot open the runs store: {0}")]
    RunsStore(#[from] faas_schedule::StoreError),
    /// An event source (`what`: the scheduler, the SQS pollers) was started twice.
    #[error("{0} of this platform already started")]
    AlreadyStarted(&'static str),
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// This process was asked to run a host it cannot run this way.
    #[error("{0}")]
    Host(&'static str),
}
