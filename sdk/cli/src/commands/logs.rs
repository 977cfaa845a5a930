//! `faas logs NAME`: a function's log lines on stdout, as they come.

use crate::backend::{Backend, LogOptions};
use crate::stdout::outln;

pub async fn run(backend: &dyn Backend, name: &str, options: &LogOptions) -> anyhow::Result<()> {
    backend
        .logs(name, options, &mut |line| outln!("{line}"))
        .await
}
