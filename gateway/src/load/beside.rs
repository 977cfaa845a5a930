//! Container functions beside the sidecar: the function's process runs in the function
//! container of the same pod (same loopback) and the kubelet starts and restarts it; this
//! follows it (HTTP front, Lambda Runtime API). `command` is local mode's stand-in for the
//! image and is ignored here.

use std::sync::Arc;

use faas_api::{ContainerMode, ContainerRuntime, Function, Limits};
use faas_runtime::process::http::HttpProcess;
use faas_runtime::process::lambda::LambdaFunction;
use faas_runtime::process::{ProcessFunction, ProcessSpec};

use crate::registry::Loaded;

/// Follows the process of `container` in this pod; a Lambda handler reaches its Runtime API
/// on `runtime_api`.
pub fn load(
    function: &Function,
    container: &ContainerRuntime,
    limits: Limits,
    runtime_api: std::net::SocketAddr,
    started: faas_runtime::process::StartObserver,
) -> Result<Loaded, String> {
    let spec = ProcessSpec {
        started,
        name: function.metadata.name.as_deref().unwrap_or_default().into(),
        argv: Vec::new(),
        working_dir: None,
        env: crate::platform::env_of(function),
        port: container.port,
        readiness_path: container.readiness_path.clone(),
        limits,
    };
    let (invoker, kind) = match container.mode {
        ContainerMode::Cgi => {
            return Err(
                "spec.runtime.container.mode: cgi starts a process per request, which \
                 only works where the runtime runs the program itself (local mode); in a pod \
                 use http or lambda"
                    .to_owned(),
            );
        }
        ContainerMode::Job => {
            // A job's pod is a Kubernetes Job of its own, with no sidecar.
            return Err(faas_api::contract::JOB_NOT_CALLABLE.to_owned());
        }
        ContainerMode::Http => (
            ProcessFunction::Http(Box::new(HttpProcess::beside(spec)?)),
            "container-http",
        ),
        ContainerMode::Lambda => (
            ProcessFunction::Lambda(Box::new(LambdaFunction::beside(spec, runtime_api)?)),
            "container-lambda",
        ),
    };
    Ok(Loaded {
        invoker: Arc::new(invoker),
        sha256: String::new(),
        kind,
    })
}
