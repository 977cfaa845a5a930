//! `faas-gateway`: the HTTP edge of the platform.
//!
//! One request path for every host: [`routes`] decides which function (pure), [`invoke`]
//! admits the request (body limit, concurrency) and calls the function's invoker,
//! [`management`] serves `/system/...`, [`server`] accepts connections.
//!
//! Around it, one shape: [`host`] holds the composition roots (`faas up`, pool pod, sidecar,
//! cluster gateway), each deciding its [`host::Capabilities`] once; [`source`] holds the
//! adapters functions come from (folder, pool watch, cluster watch), all feeding
//! [`Platform`]; [`load`] holds a loader per kind of function (wasm, process, beside-process,
//! remote); [`lifecycle`] is the one shutdown sequence; [`build`] runs cargo.

pub mod admission;
pub mod artifact;
pub mod async_call;
pub mod body;
pub mod build;
pub mod chain;
pub mod cluster;
pub mod cold_start;
pub mod cron;
pub mod error;
pub mod guard;
pub mod health;
pub mod host;
pub mod identity;
pub mod inbound;
pub mod invoke;
pub mod lambda_api;
pub mod lifecycle;
pub mod load;
pub mod logs;
pub mod management;
pub mod metrics;
pub mod platform;
pub mod process_credentials;
pub mod rebuild;
pub mod registry;
pub mod reply;
pub mod request_host;
pub mod routes;
pub mod run_history;
pub mod run_tail;
pub mod runs_api;
pub mod runs_log;
pub mod secrets;
pub mod server;
pub mod source;
pub mod sqs;
pub mod stats;
pub mod suspend;
pub mod target;
pub mod ui;
pub mod webhook;

pub use error::StartError;
pub use platform::{GatewayConfig, Platform};

/// The one `tracing` setup ([`faas_telemetry::init_tracing`]), with each function's recent
/// output kept for `faas logs` ([`logs`]).
pub fn init_tracing(json: bool) {
    faas_telemetry::init_tracing_with(json, logs::Layer);
}
