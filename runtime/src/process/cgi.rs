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
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            InvokeError::Unavailable(format!("cannot start {:?}: {e}", self.spec.argv[0]))
        })?;
        let log = GuestLog::new(
            Arc::clone(&self.spec.name),
            ctx.call_id.as_str().into(),
            self.log_budget,
        )
        .with_sink(ctx.log_tail.clone());
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
        let logs = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut log_writer).await;
        });
        let limit = self.max_response;
        let read = async move {
            let mut out = Vec::new();
            let read = stdout.take(limit as u64 + 1).read_to_end(&mut out).await;
            read.map(|_| out)
        };
        let timeout = ctx.timeout_or(self.spec.limits.timeout);
        let run = async {
            let out = read.await;
            let status = child.wait().await;
            (out, status)
        };
        let outcome = tokio::time::timeout(timeout, run).await;
        feed.abort();
        let (out, status) = match outcome {
            Ok(done) => done,
            Err(_) => {
                // kill_on_drop ends the process; say why the request failed.
                log.finish();
                return Err(InvokeError::Timeout(timeout));
            }
        };
        let _ = logs.await;
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
