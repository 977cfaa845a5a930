//! `faas-runtime serve`: a runtime pool pod hosting the WASM functions of many teams, from a
//! folder or (in a cluster) the `Function` resources of its pool. HTTP and SQS pollers run
//! here; cron runs in the controller and calls in through HTTP; `/system` is read-only and
//! hides `spec.env`; host directories are never granted.

use super::{Capabilities, Extras, HostOptions, serve};
use crate::error::StartError;

/// Runs a runtime pool pod until SIGTERM/SIGINT.
pub async fn run(options: HostOptions) -> Result<(), StartError> {
    serve(options, Capabilities::pool(), Extras { cron: false }).await
}
