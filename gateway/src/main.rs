//! `faas-gateway`: the gateway binary. In local mode it is what `faas up` runs.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "faas gateway: serves functions over HTTP")]
struct Args {
    /// Folder of Function manifests to serve and watch.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "FAAS_LISTEN")]
    listen: std::net::SocketAddr,
    /// State directory (compiled-artifact cache, deployments).
    #[arg(long, default_value = ".faas", env = "FAAS_STATE")]
    state: PathBuf,
    /// JSON logs (cluster mode).
    #[arg(long)]
    json_logs: bool,
    /// Serve the management API (/system) to non-loopback clients too.
    #[arg(long)]
    allow_remote_management: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    faas_gateway::init_tracing(args.json_logs);
    faas_gateway::local::run(faas_gateway::local::LocalOptions {
        dir: args.dir,
        listen: args.listen,
        state_dir: args.state,
        build: false,
        watch_interval: std::time::Duration::from_secs(1),
        remote_management: args.allow_remote_management,
        pool_keep_resident: faas_runtime::wasm::DEFAULT_KEEP_RESIDENT,
        role: faas_gateway::platform::Role::Local,
        source: faas_gateway::local::FunctionSource::Folder,
        shutdown_grace: std::time::Duration::from_secs(30),
    })
    .await
}
