//! `mode: cgi`: a process per request. The request body on stdin, the CGI variables (RFC 3875)
//! in the environment, the response (`Status:`, headers, blank line, body) parsed from
//! stdout by the same code as WASI command modules; stderr goes to the function's log.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ProcessSpec, exit_text};
use crate::cgi::{self, CgiRoute};
use crate::guest_log::{GuestLog, Stream};
use crate::wasm::WasmConfig;
use crate::{CallContext, InvokeError, ResponseBody, full_body};

/// A CGI process function.
pub struct CgiProcess {
    spec: Arc<ProcessSpec>,
    /// Longest stdout accepted (the response), and the log budget.
    max_response: usize,
    log_budget: usize,
}

impl CgiProcess {
    /// A function running `spec` once per request.
    pub fn new(spec: ProcessSpec) -> Self {
        let defaults = WasmConfig::default();
        CgiProcess {
            spec: Arc::new(spec),
            max_response: defaults.max_cgi_response_bytes,
            log_budget: defaults.log_budget,
        }
    }

    /// Runs one request.
    ///
    /// The process runs in a process group of its own, and the whole group is killed when
    /// the request ends, however it ends (answer, timeout, the caller gone): what a script
    /// started in the background (`cmd &`) dies with the request instead of piling up. The
    /// wait for its output ends at the timeout even when a background process still holds
    /// stdout or stderr open.
    pub async fn call(
        &self,
        ctx: CallContext,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<ResponseBody>, InvokeError> {
        let route = CgiRoute::of(&request);
        let mut command = self.spec.command().map_err(InvokeError::Unavailable)?;
        command
            .envs(cgi::environment(&request, &route))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().map_err(|e| {
            InvokeError::Unavailable(format!("cannot start {:?}: {e}", self.spec.argv[0]))
        })?;
        // Declared right after the spawn, so it is dropped (the group killed) on every path,
        // before `child` is dropped (and reaped): a group is only ever signalled while its
        // leader's pid cannot have been reused.
        let group = ProcessGroup::of(&child);
        let log = GuestLog::new(
            Arc::clone(&self.spec.name),
            ctx.call_id.as_str().into(),
            self.log_budget,
        )
        .with_sink(ctx.log_tail.clone())
        .with_run_log(ctx.run_log.clone());
        let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(InvokeError::Unavailable("no pipes to the process".into()));
        };
        let body = request.into_body();
        // A script that does not read its input must not block on a full pipe; a write error
        // (it exited early) is not the request's failure.
        let feed = tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
        });
        let mut log_writer = log.writer(Stream::Stderr);
        let mut logs = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut log_writer).await;
        });
        let limit = self.max_response;
        let read = async move {
            let mut out = Vec::new();
            let read = stdout.take(limit as u64 + 1).read_to_end(&mut out).await;
            read.map(|_| out)
        };
        let timeout = ctx.timeout_or(self.spec.limits.timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        // stdout ends when every process holding it closed it, then the process itself ends;
        // both within the deadline.
        let run = async {
            let out = read.await;
            let status = child.wait().await;
            (out, status)
        };
        let outcome = tokio::time::timeout_at(deadline, run).await;
        feed.abort();
        group.kill();
        let (out, status) = match outcome {
            Ok(done) => done,
            Err(_) => {
                // The group is killed; `kill_on_drop` reaps the process.
                logs.abort();
                log.finish();
                return Err(InvokeError::Timeout(timeout));
            }
        };
        // The group is dead, so stderr is at its end unless a process left the group
        // (setsid) and holds it: then its last lines are not waited for.
        if tokio::time::timeout(STDERR_GRACE, &mut logs).await.is_err() {
            logs.abort();
        }
        log.finish();
        let out = out.map_err(|e| InvokeError::ProcessFailed(format!("reading stdout: {e}")))?;
        if out.len() > limit {
            return Err(InvokeError::BadResponse(format!(
                "the response is longer than {limit} bytes"
            )));
        }
        let status = status.map_err(|e| InvokeError::ProcessFailed(e.to_string()))?;
        if out.is_empty() {
            return Err(if status.success() {
                InvokeError::NoResponse
            } else {
                InvokeError::ProcessFailed(exit_text(status))
            });
        }
        let response = cgi::parse_response(&out).map_err(|e| {
            InvokeError::BadResponse(format!("{e} (the process {})", exit_text(status)))
        })?;
        Ok(response.map(full_body))
    }
}

/// How long stderr may still be read once the process group is dead.
const STDERR_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The process group of one CGI process (it leads it: `process_group(0)`), killed with
/// SIGKILL by [`ProcessGroup::kill`] or on drop.
pub(super) struct ProcessGroup(Option<rustix::process::Pid>);

impl ProcessGroup {
    pub(super) fn of(child: &tokio::process::Child) -> Self {
        ProcessGroup(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(rustix::process::Pid::from_raw),
        )
    }

    /// Asks every process of the group to stop (SIGTERM).
    pub(super) fn terminate(&self) {
        if let Some(group) = self.0 {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
        }
    }

    pub(super) fn kill(&self) {
        if let Some(group) = self.0 {
            // ESRCH (nobody left) is the usual outcome after a clean exit.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
