//! `faas up DIR`: the whole platform in one process for one developer. Functions come from a
//! watched folder (and the management API, which may deploy and delete); WASM and process
//! functions load here; cron, SQS pollers and async calls run here; errors keep their detail.

use super::{Capabilities, Extras, HostOptions, serve};
use crate::error::StartError;

/// Runs local mode until SIGTERM/SIGINT.
pub async fn run(options: HostOptions) -> Result<(), StartError> {
    serve(options, Capabilities::local(), Extras { cron: true }).await
}
