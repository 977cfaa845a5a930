//! `faas-telemetry`: how every binary (gateway, pool pod, sidecar, controller, CLI) sets up
//! its logs, so that `RUST_LOG` and `--json-logs` mean the same thing everywhere.

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the `tracing` subscriber on stderr: the `RUST_LOG` filter (default `info`, with
/// wasmtime's and cranelift's chatter at `warn`), JSON lines when `json`, colours only as
/// [`colour`] says. A second call (tests, an embedding binary) leaves the first subscriber in
/// place.
pub fn init_tracing(json: bool) {
    init_tracing_with(json, tracing_subscriber::layer::Identity::new());
}

/// [`init_tracing`], with `extra` also seeing every event the filter lets through (local
/// mode keeps each function's recent output for `faas logs` this way).
pub fn init_tracing_with<L>(json: bool, extra: L)
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,cranelift=warn,wasmtime=warn")
    });
    let stack = tracing_subscriber::registry().with(extra);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ));
    let _ = if json {
        stack.with(fmt.json()).with(filter).try_init()
    } else {
        stack.with(fmt).with(filter).try_init()
    };
}

/// Whether log lines on stderr are coloured: only for a person at a terminal, and not when
/// `NO_COLOR` is set to anything (<https://no-color.org>). A redirected log (`faas up >
/// log 2>&1`, a pod's log, a test's pipe) gets plain text.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".as_ref())));
        assert!(!colour(true, Some("1".as_ref())));
        assert!(!colour(false, None));
    }
}
