//! Container functions in local mode: `spec.runtime.container` runs `command` + `args` on
//! this machine (the stand-in for the image's entrypoint) through the runtime's process
//! executors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use faas_api::{ContainerMode, ContainerRuntime, Function, Limits};
use faas_runtime::process::cgi::CgiProcess;
use faas_runtime::process::http::HttpProcess;
use faas_runtime::process::lambda::LambdaFunction;
use faas_runtime::process::{ProcessFunction, ProcessSpec};

use crate::platform::Role;
use crate::registry::Loaded;

/// Starts (http) or prepares (cgi) the process function of `container`; beside a function
/// container (the sidecar role), follows the process that runs there.
pub fn load(
    function: &Function,
    container: &ContainerRuntime,
    limits: Limits,
    base_dir: Option<&Path>,
    role: Role,
) -> Result<Loaded, String> {
    match role {
        Role::Local => {}
        Role::Cluster => {
            return Err(
                "the cluster gateway forwards to a function's pods; it runs no process".to_owned(),
            );
        }
        Role::Pool => {
            return Err(
                "spec.runtime.container: a runtime pool hosts WASM functions only; \
                 a container function runs in its own pods (beside faas-runtime sidecar)"
                    .to_owned(),
            );
        }
        Role::Sidecar { runtime_api } => return beside(function, container, limits, runtime_api),
    }
    if container.command.is_empty() {
        return Err(match &container.image {
            Some(image) => format!(
                "spec.runtime.container.command: local mode runs a process on this machine, not \\
                 the image {image}; set command (and args) to what the image's entrypoint runs"
            ),
            None => "spec.runtime.container.command: required in local mode".to_owned(),
        });
    }
    // Absolute paths: a relative program path would be resolved from the working directory
    // the process is started in, not from where the manifest is.
    let base_dir = base_dir.map(absolute);
    let base_dir = base_dir.as_deref();
    let working_dir = container.working_dir.as_ref().map(|dir| {
        let dir = PathBuf::from(dir);
        match base_dir {
            Some(base) if dir.is_relative() => base.join(dir),
            _ => dir,
        }
    });
    // A relative program path is relative to the manifest's folder too, like workingDir.
    let mut argv: Vec<String> = container.command.clone();
    if argv[0].contains('/')
        && Path::new(&argv[0]).is_relative()
        && let Some(base) = working_dir.as_deref().or(base_dir)
    {
        argv[0] = base.join(&argv[0]).to_string_lossy().into_owned();
    }
    argv.extend(container.args.iter().cloned());
    let spec = ProcessSpec {
        name: function.metadata.name.as_deref().unwrap_or_default().into(),
        argv,
        working_dir: working_dir.or_else(|| base_dir.map(Path::to_path_buf)),
        env: crate::platform::env_of(function),
        port: container.port,
        readiness_path: container.readiness_path.clone(),
        limits,
    };
    let (invoker, kind) = match container.mode {
        ContainerMode::Cgi => (ProcessFunction::Cgi(CgiProcess::new(spec)), "process-cgi"),
        ContainerMode::Http => (
            ProcessFunction::Http(Box::new(HttpProcess::start(spec)?)),
            "process-http",
        ),
        ContainerMode::Lambda => (
            ProcessFunction::Lambda(Box::new(LambdaFunction::start(spec))),
            "lambda",
        ),
    };
    Ok(Loaded {
        invoker: Arc::new(invoker),
        sha256: String::new(),
        kind,
    })
}

/// The process runs in the function container of the same pod (same loopback); the kubelet
/// starts and restarts it. `command` is local mode's stand-in for the image and is ignored.
fn beside(
    function: &Function,
    container: &ContainerRuntime,
    limits: Limits,
    runtime_api: std::net::SocketAddr,
) -> Result<Loaded, String> {
    let spec = ProcessSpec {
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

/// `path` made absolute against the current directory (not resolving symlinks).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}
