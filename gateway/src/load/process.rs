//! Container functions in local mode: `spec.runtime.container` runs `command` + `args` on
//! this machine (the stand-in for the image's entrypoint) through the runtime's process
//! executors. In a pod the process runs beside the sidecar instead ([`super::beside`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use faas_api::{ContainerMode, ContainerRuntime, Function, Limits};
use faas_runtime::process::cgi::CgiProcess;
use faas_runtime::process::http::HttpProcess;
use faas_runtime::process::job::JobProcess;
use faas_runtime::process::lambda::LambdaFunction;
use faas_runtime::process::{ProcessFunction, ProcessSpec};

use crate::registry::Loaded;

/// Starts (http) or prepares (cgi) the process function of `container` on this machine.
pub fn load(
    function: &Function,
    container: &ContainerRuntime,
    limits: Limits,
    base_dir: Option<&Path>,
    secrets: Vec<(String, String)>,
    started: faas_runtime::process::StartObserver,
) -> Result<Loaded, String> {
    if container.command.is_empty() {
        return Err(match &container.image {
            Some(image) => format!(
                "spec.runtime.container.command: local mode runs a process on this machine, not \
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
        started,
        name: function.metadata.name.as_deref().unwrap_or_default().into(),
        argv,
        working_dir: working_dir.or_else(|| base_dir.map(Path::to_path_buf)),
        env: crate::platform::env_of(function)
            .into_iter()
            .chain(secrets)
            .collect(),
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
        ContainerMode::Job => (ProcessFunction::Job(JobProcess::new(spec)), "process-job"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A container function without a command is refused in one clean line that names the
    /// field and the image (no stray backslash or line break from the source's wrapping).
    #[test]
    fn refusal_without_command_is_one_clean_line() {
        let function: Function = serde_yaml::from_str(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata:\n  name: shop\n\
             spec:\n  runtime:\n    container:\n      image: registry.example/shop:1\n",
        )
        .expect("manifest");
        let container = function.spec.runtime.container.clone().expect("container");
        let Err(message) = load(
            &function,
            &container,
            Limits::default(),
            None,
            Vec::new(),
            Default::default(),
        ) else {
            panic!("a container function without a command must be refused");
        };
        assert!(!message.contains('\\'), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(!message.contains("  "), "{message}");
        assert!(
            message.starts_with("spec.runtime.container.command: ")
                && message.contains("not the image registry.example/shop:1;"),
            "{message}"
        );
    }
}
