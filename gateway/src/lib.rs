//! `faas-gateway`: the HTTP edge of the platform.
//!
//! One request path for every mode: [`routes`] decides which function (pure), [`invoke`]
//! admits the request (body limit, concurrency) and calls the function's invoker,
//! [`management`] serves `/system/...`, [`server`] accepts connections and drains them on
//! shutdown. [`local`] is local mode (`faas up`): functions from a folder, watched.

pub mod admission;
pub mod artifact;
pub mod async_call;
pub mod body;
pub mod cluster;
pub mod cron;
pub mod guard;
pub mod invoke;
pub mod local;
pub mod management;
pub mod metrics;
pub mod platform;
pub mod pool_source;
pub mod process;
pub mod registry;
pub mod reply;
pub mod routes;
pub mod runs_api;
pub mod server;
pub mod sqs;
pub mod stats;
pub mod target;
pub mod ui;

pub use platform::{GatewayConfig, Platform};

/// Installs the `tracing` subscriber: `RUST_LOG` filter (default `info`), JSON when `json`.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,cranelift=warn,wasmtime=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
