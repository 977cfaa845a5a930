//! Functions that are processes on this machine (`spec.runtime.container` in local mode:
//! `command` + `args` + `workingDir` stand in for the image's entrypoint).
//!
//! - [`cgi`]: a process per request, CGI-style (the same CGI code as WASI command modules).
//! - [`http`]: one long-running HTTP server per function, supervised (readiness, restarts
//!   with backoff, graceful stop) and proxied to with streaming bodies.
//! - [`lambda`]: unmodified Lambda handlers through the Lambda Runtime API.
//!
//! `http` and `lambda` also work with a process that runs elsewhere on the same loopback
//! (`HttpProcess::beside`, `LambdaFunction::beside`): the function container of a pod, next
//! to `faas-runtime sidecar`. Then the kubelet starts and restarts it; the runtime only
//! follows its readiness.

pub mod cgi;
pub mod http;
pub mod job;
pub mod lambda;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use faas_api::Limits;

/// What a process function runs, and under which limits.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    /// Function name (logs are tagged with it).
    pub name: Arc<str>,
    /// The program and its arguments (`command` then `args`); never empty.
    pub argv: Vec<String>,
    /// Working directory (`workingDir`, relative to the manifest's folder when relative).
    pub working_dir: Option<PathBuf>,
    /// `spec.env`.
    pub env: Vec<(String, String)>,
    /// `http` mode: the port the server listens on (on 127.0.0.1).
    pub port: Option<u16>,
    /// `http` mode: a path that answers 200-399 once the server can serve; `None`: a TCP
    /// connection is enough.
    pub readiness_path: Option<String>,
    /// Timeout, memory, concurrency, body size.
    pub limits: Limits,
    /// Told how long each start took (cold-start metrics).
    pub started: StartObserver,
}

/// A phase of a process function's start, as the cold-start metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPhase {
    /// `http` mode: from spawning the process (beside: from following it) to its port
    /// accepting connections.
    ProcessStart,
    /// `lambda` mode: from spawning the handler (beside: from serving its Runtime API) to its
    /// first request for work, i.e. its init code ran.
    LambdaInit,
}

/// Told how long a start phase took; nothing when empty (tests, tools).
#[derive(Clone, Default)]
pub struct StartObserver(Option<Arc<dyn Fn(StartPhase, Duration) + Send + Sync>>);

impl StartObserver {
    pub fn new(observe: impl Fn(StartPhase, Duration) + Send + Sync + 'static) -> Self {
        StartObserver(Some(Arc::new(observe)))
    }

    pub(crate) fn observe(&self, phase: StartPhase, took: Duration) {
        if let Some(observe) = &self.0 {
            observe(phase, took);
        }
    }
}

impl std::fmt::Debug for StartObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StartObserver"
        } else {
            "StartObserver(none)"
        })
    }
}

impl ProcessSpec {
    /// A command for this process: the program, its arguments, its folder and environment
    /// (`spec.env` on top of this process's own `PATH`, `HOME` and locale only: a function
    /// does not inherit the platform's credentials).
    fn command(&self) -> Result<tokio::process::Command, String> {
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| "spec.runtime.container.command is empty".to_owned())?;
        let mut command = tokio::process::Command::new(program);
        command.args(args).env_clear();
        for key in ["PATH", "HOME", "LANG", "LC_ALL", "TZ"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        die_with_the_platform(&mut command);
        Ok(command)
    }
}

/// Linux: the process is sent SIGKILL when the thread that started it ends. Function
/// processes are started from the runtime's worker threads, which live as long as the
/// platform, so that is when the platform ends, however it ends (SIGKILL, an OOM kill):
/// `kill_on_drop` covers only the ends that run destructors. Without it an orphan keeps the
/// function's port, and the next `faas up` cannot start the function. (A process started
/// from a `spawn_blocking` thread would die when that thread idles out: never do that.)
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_the_platform(command: &mut tokio::process::Command) {
    let platform = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes two system calls (prctl, getppid) and
    // builds errors without allocating.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))?;
            // The platform may have ended before the signal was asked for: then none comes.
            if rustix::process::getppid() != Some(platform) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            Ok(())
        });
    }
}

/// Asks `child` to stop with SIGTERM, then kills it after `grace`.
pub(crate) async fn terminate(child: &mut tokio::process::Child, grace: Duration) {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Which invocations a process is working on, so the lines it prints carry the call id: a
/// line printed while exactly one invocation is open belongs to it (a Lambda handler takes one
/// at a time; a server serving one request). A line printed just after that invocation ended
/// (output read from the pipe a moment after the answer) still belongs to it, until another
/// begins. With several open, a line is nobody's in particular.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    state: std::sync::Mutex<CallsState>,
}

#[derive(Debug, Default)]
struct CallsState {
    open: Vec<(u64, Arc<str>)>,
    next: u64,
    /// The last one to end, while none is open.
    last: Option<Arc<str>>,
}

/// An open invocation of a [`Calls`]; closes it when dropped.
pub(crate) struct OpenCall {
    calls: Arc<Calls>,
    key: u64,
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `call_id` open until the returned guard is dropped.
    pub(crate) fn open(self: &Arc<Self>, call_id: &str) -> OpenCall {
        let mut state = self.lock();
        state.next += 1;
        let key = state.next;
        state.open.push((key, Arc::from(call_id)));
        state.last = None;
        OpenCall {
            calls: Arc::clone(self),
            key,
        }
    }

    /// The call id a line printed now belongs to, when it is clear.
    pub(crate) fn current(&self) -> Option<Arc<str>> {
        let state = self.lock();
        match state.open.as_slice() {
            [(_, id)] => Some(Arc::clone(id)),
            [] => state.last.clone(),
            _ => None,
        }
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        let mut state = self.calls.lock();
        if let Some(at) = state.open.iter().position(|(key, _)| *key == self.key) {
            let (_, id) = state.open.remove(at);
            if state.open.is_empty() {
                state.last = Some(id);
            }
        }
    }
}

/// A process's stdout and stderr, line by line, into the platform's log, each line with the
/// call id `calls` attributes it to.
pub(crate) fn forward_output(
    function: &Arc<str>,
    child: &mut tokio::process::Child,
    calls: &Arc<Calls>,
) {
    use tokio::io::AsyncBufReadExt;
    let streams: [(
        Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
        &'static str,
    ); 2] = [
        (child.stdout.take().map(|s| Box::new(s) as _), "stdout"),
        (child.stderr.take().map(|s| Box::new(s) as _), "stderr"),
    ];
    for (stream, name) in streams {
        let Some(stream) = stream else { continue };
        let function = Arc::clone(function);
        let calls = Arc::clone(calls);
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match calls.current() {
                    Some(call_id) => {
                        tracing::info!(target: "faas::guest", function = %function, call_id = %call_id, stream = name, "{line}")
                    }
                    None => {
                        tracing::info!(target: "faas::guest", function = %function, stream = name, "{line}")
                    }
                }
            }
        });
    }
}

/// Resolves once a stop was asked for (or the handle that asks is gone).
pub(crate) async fn until_stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here, not in a select! arm.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// A process's exit, in words.
pub(crate) fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "exited".to_owned(),
    }
}

/// A process function behind the [`crate::Invoker`] interface.
pub enum ProcessFunction {
    Cgi(cgi::CgiProcess),
    Http(Box<http::HttpProcess>),
    Lambda(Box<lambda::LambdaFunction>),
    Job(job::JobProcess),
}

impl crate::Invoker for ProcessFunction {
    fn invoke(
        &self,
        ctx: crate::CallContext,
        request: ::http::Request<bytes::Bytes>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<::http::Response<crate::ResponseBody>, crate::InvokeError>,
                > + Send
                + '_,
        >,
    > {
        match self {
            ProcessFunction::Cgi(f) => Box::pin(f.call(ctx, request)),
            ProcessFunction::Http(f) => Box::pin(f.call(ctx, request)),
            ProcessFunction::Lambda(f) => Box::pin(f.call(ctx, request)),
            ProcessFunction::Job(f) => Box::pin(f.call(ctx, request)),
        }
    }

    fn status(&self) -> Option<serde_json::Value> {
        match self {
            ProcessFunction::Cgi(_) | ProcessFunction::Job(_) => None,
            ProcessFunction::Http(f) => {
                let mut value = serde_json::to_value(f.state()).ok()?;
                value["restarts"] = f.restarts().into();
                Some(value)
            }
            ProcessFunction::Lambda(f) => Some(f.status()),
        }
    }

    fn readiness(&self) -> Result<(), String> {
        match self {
            ProcessFunction::Cgi(_) | ProcessFunction::Job(_) => Ok(()),
            ProcessFunction::Http(f) => f.readiness(),
            ProcessFunction::Lambda(f) => f.readiness(),
        }
    }

    fn degraded(&self) -> Option<faas_invoke::Degradation> {
        match self {
            ProcessFunction::Http(f) => f.degraded(),
            ProcessFunction::Lambda(f) => f.degraded(),
            ProcessFunction::Cgi(_) | ProcessFunction::Job(_) => None,
        }
        .map(faas_invoke::Degradation::restarting)
    }
}
