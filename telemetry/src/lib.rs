//! `faas-telemetry`: how every binary (gateway, pool pod, sidecar, controller, CLI) sets up
//! its logs, so that `RUST_LOG` and `--json-logs` mean the same thing everywhere.

/// Installs the `tracing` subscriber on stderr: the `RUST_LOG` filter (default `info`, with
/// wasmtime's and cranelift's chatter at `warn`), JSON lines when `json`. A second call (tests,
/// an embedding binary) leaves the first subscriber in place.
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
