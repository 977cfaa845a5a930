//! `faas-gateway`: the HTTP edge of the platform.
//!
//! One request path for every mode: [`routes`] decides which function (pure), [`invoke`]
//! admits the request (body limit, concurrency) and calls the function's invoker,
//! [`management`] serves `/system/...`, [`server`] accepts connections and drains them on
//! shutdown. [`local`] is local mode (`faas up`): functions from a folder, watched.

pub mod admission;
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

pub use faas_telemetry::init_tracing;
