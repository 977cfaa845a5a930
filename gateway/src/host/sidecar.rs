//! `faas-runtime sidecar`: beside one container function in its pod. The function's process
//! runs in the other container; this serves its Lambda Runtime API, its HTTP front, its SQS
//! pollers and metrics, and the pod is ready only when the function is. No WASM engine is
//! built here.

use std::net::SocketAddr;

use super::{Capabilities, Extras, HostOptions, serve};
use crate::error::StartError;

/// Runs the sidecar until SIGTERM/SIGINT; the function's Lambda handler reaches its Runtime
/// API on `runtime_api`.
pub async fn run(options: HostOptions, runtime_api: SocketAddr) -> Result<(), StartError> {
    serve(
        options,
        Capabilities::sidecar(runtime_api),
        Extras { cron: false },
    )
    .await
}
