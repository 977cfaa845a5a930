//! Loaders, one per kind of function: [`wasm`] compiles a component or module in this
//! process, [`process`] starts the function's program on this machine (local mode),
//! [`beside`] follows the process in the function container of the same pod (the sidecar),
//! [`remote`] forwards to the function's pods (the cluster gateway).
//!
//! Which loaders a process has is its host's decision ([`crate::host::Capabilities`]): a
//! loader the host does not have is never built (the cluster gateway and the sidecar build
//! no wasmtime engine), and a function that needs it is refused with the host's reason.

pub mod beside;
pub mod process;
pub mod remote;
pub mod wasm;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use faas_api::{Function, Limits};

use crate::platform::Platform;
use crate::registry::Loaded;

/// How this host loads WASM functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmLoading {
    /// In this process, for one developer (`faas up`): host directories may be granted.
    Local,
    /// In a runtime pool pod, shared by many teams: no host directory, and the cluster's own
    /// address ranges count as internal for outbound rules.
    Pool,
    /// Not here, for this reason (no engine is built).
    Refused(&'static str),
}

/// How this host loads container functions (`spec.runtime.container`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessLoading {
    /// Runs `command` on this machine ([`process`]).
    Local,
    /// Follows the process in the function container of this pod, whose Lambda handler
    /// reaches the Runtime API on `runtime_api` ([`beside`]).
    Beside { runtime_api: SocketAddr },
    /// Not here, for this reason.
    Refused(&'static str),
}

/// Loads one function version with the loader its kind needs, as this host has it. The
/// error is the reason shown to users.
pub(crate) async fn load(
    platform: &Platform,
    function: &Function,
    artifact: Bytes,
    limits: Limits,
    base_dir: Option<&Path>,
) -> Result<Loaded, String> {
    if let Some(container) = &function.spec.runtime.container {
        let started = platform
            .metrics
            .cold_starts
            .process_observer(function.metadata.name.as_deref().unwrap_or_default());
        return match platform.config.host.process {
            ProcessLoading::Local => {
                // A process's environment is fixed when it starts: its secrets are read now;
                // its role's credentials it fetches itself, from a token given now.
                let mut env = local_secrets(platform, function).await?;
                let grant = local_grant(platform, function).await?;
                if let Some(grant) = &grant {
                    env.extend(grant.env(function, platform.listener.get().copied()));
                }
                let loaded = process::load(function, container, limits, base_dir, env, started)?;
                Ok(match grant {
                    Some(grant) => Loaded {
                        invoker: Arc::new(crate::process_credentials::WithIdentity {
                            inner: loaded.invoker,
                            grant,
                        }),
                        ..loaded
                    },
                    None => loaded,
                })
            }
            ProcessLoading::Beside { runtime_api } => {
                beside::load(function, container, limits, runtime_api, started)
            }
            ProcessLoading::Refused(reason) => Err(reason.to_owned()),
        };
    }
    let wasm =
        function.spec.runtime.wasm.as_ref().ok_or_else(|| {
            "spec.runtime: exactly one of wasm or container must be set".to_owned()
        })?;
    match (platform.config.host.wasm, &platform.runtime) {
        (WasmLoading::Refused(reason), _) => Err(reason.to_owned()),
        (_, None) => Err("spec.runtime.wasm: this process has no WASM runtime".to_owned()),
        (mode, Some(runtime)) => {
            wasm::load(
                platform, runtime, mode, function, wasm, artifact, limits, base_dir,
            )
            .await
        }
    }
}

/// A token for the role's credentials of a container function run here (`None` without a
/// role): its process fetches them, and renews them, from this gateway.
async fn local_grant(
    platform: &Platform,
    function: &Function,
) -> Result<Option<crate::process_credentials::Grant>, String> {
    let Some(identities) = platform.identities.get() else {
        return Ok(None);
    };
    let Some(identity) = identities.of(function).await else {
        return Ok(None);
    };
    platform.process_credentials.grant(identity).map(Some)
}

/// The `spec.env` secrets of a container function run here, read once: every one, or an
/// error naming those that could not be read (a process started without them would run
/// broken until its next start).
async fn local_secrets(
    platform: &Platform,
    function: &Function,
) -> Result<Vec<(String, String)>, String> {
    let Some(secrets) = platform.secrets.get() else {
        return Ok(Vec::new());
    };
    let Some(read) = secrets.of(function, None).await else {
        return Ok(Vec::new());
    };
    match faas_invoke::InvocationEnv::problem(read.as_ref()) {
        None => Ok(read.values()),
        Some(problem) => Err(format!(
            "spec.env: {} (read when the process starts: fix it, then save the manifest again)",
            problem.message
        )),
    }
}
