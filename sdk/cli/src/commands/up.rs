//! `faas up DIR`: the local platform, serving every Function manifest under DIR. Once it
//! listens it records itself as the local target (see `crate::target::record`), so that
//! other `faas` commands on this machine act on it rather than on a cluster; the record goes
//! when it exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::target::record::{self, LocalPlatform};

/// `faas up`'s settings, as the command line gives them.
pub struct Up {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub state: PathBuf,
    pub no_build: bool,
    pub watch_interval: f64,
    pub json_logs: bool,
    pub allow_remote_management: bool,
    pub management_token: Option<String>,
    pub body_budget: u64,
    pub pool_keep_resident: usize,
    pub shutdown_grace: Duration,
    /// Where `secretKeyRef`s are read: `<secrets>/<secret>/<key>`.
    pub secrets: Option<PathBuf>,
    /// The longest `spec.timeout` a function may have here.
    pub max_timeout: Duration,
}

pub async fn run(up: Up) -> anyhow::Result<()> {
    faas_gateway::init_tracing(up.json_logs);
    let (listening, mut bound) = tokio::sync::watch::channel(None);
    let dir = std::path::absolute(&up.dir).unwrap_or_else(|_| up.dir.clone());
    // Held until `faas up` returns; dropping it removes the record.
    let recorder = tokio::spawn(async move {
        let Ok(address) = bound.wait_for(Option::is_some).await.map(|a| *a) else {
            return None;
        };
        let address = address?;
        let platform = LocalPlatform {
            url: format!("http://{}", faas_gateway::host::local_address(address)),
            pid: std::process::id(),
            dir,
            started: jiff::Timestamp::now().to_string(),
        };
        match record::record(&platform) {
            Ok(recorded) => Some(recorded),
            Err(e) => {
                eprintln!(
                    "faas: warning: not recorded as the local target ({}); other faas commands need --gateway {}",
                    crate::report::one_line(&e),
                    platform.url
                );
                None
            }
        }
    });
    let served = faas_gateway::host::run(faas_gateway::host::HostOptions {
        dir: up.dir,
        listen: up.listen,
        state_dir: up.state,
        build: !up.no_build,
        watch_interval: Duration::from_secs_f64(up.watch_interval.max(0.05)),
        remote_management: up.allow_remote_management,
        management_token: up.management_token,
        body_budget: up.body_budget,
        pool_keep_resident: up.pool_keep_resident,
        shutdown_grace: up.shutdown_grace,
        role: faas_gateway::host::Role::Local,
        source: faas_gateway::source::FunctionSource::Folder {
            secrets: up
                .secrets
                .map(|dir| std::path::absolute(&dir).unwrap_or(dir)),
        },
        drain_delay: Duration::ZERO,
        // Locally a callback is usually a listener on this machine.
        async_calls: Some(faas_gateway::async_call::AsyncSettings {
            internal_callbacks: true,
            ..Default::default()
        }),
        internal_cidrs: Vec::new(),
        pool_memory_bytes: None,
        max_timeout: Some(up.max_timeout),
        listening: Some(Arc::new(listening)),
    })
    .await;
    // The sender is gone, so the recorder has finished (recorded or not).
    drop(recorder.await);
    served.map_err(anyhow::Error::from)
}
