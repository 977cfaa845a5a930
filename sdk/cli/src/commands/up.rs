//! `faas up DIR`: the local platform, serving every Function manifest under DIR.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
}

pub async fn run(up: Up) -> anyhow::Result<()> {
    faas_gateway::init_tracing(up.json_logs);
    faas_gateway::host::run(faas_gateway::host::HostOptions {
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
        source: faas_gateway::source::FunctionSource::Folder,
        drain_delay: Duration::ZERO,
        // Locally a callback is usually a listener on this machine.
        async_calls: Some(faas_gateway::async_call::AsyncSettings {
            internal_callbacks: true,
            ..Default::default()
        }),
        internal_cidrs: Vec::new(),
    })
    .await
    .map_err(anyhow::Error::from)
}
