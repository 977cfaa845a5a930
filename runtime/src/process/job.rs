//! `mode: job`: a process that runs to completion once per run, without HTTP. The run's
//! payload is its stdin; its environment is `faas_api::job_env`'s (the run's identity,
//! `FAAS_OPTION_<NAME>` for its options, the payload again), the same as a Job's pod in a
//! cluster; stdout and stderr are its log.
//! Exit code 0 is success, anything else a failure with the code recorded. What the job
//! writes to the file named by `FAAS_OUTPUT` is the run's output (JSON or text).
//!
//! The answer is an HTTP response only because runs are recorded from one: 200 for exit 0
//! (body: the output), 500 otherwise; `x-faas-exit-code` (or `x-faas-exit-signal`) carries
//! how the process ended. At the deadline the whole process group gets SIGTERM, then SIGKILL
//! after [`JobProcess::grace`]; a run cancelled or abandoned kills the group at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_api::contract;
use tokio::io::AsyncWriteExt;

use super::{ProcessSpec, exit_text};
use crate::guest_log::{GuestLog, Stream};
use crate::wasm::WasmConfig;
use crate::{CallContext, InvokeError, ResponseBody, full_body};

/// Time between SIGTERM at the deadline and SIGKILL, as a Job's pod gets in a cluster.
pub const DEFAULT_GRACE: Duration = faas_api::job_env::STOP_GRACE;
/// Largest output (`$FAAS_OUTPUT`) kept; more is cut with a note.
pub const MAX_OUTPUT_BYTES: u64 = 256 * 1024;

/// A job function: `spec` started once per run.
pub struct JobProcess {
    spec: Arc<ProcessSpec>,
    log_budget: usize,
    grace: Duration,
}

impl JobProcess {
    pub fn new(spec: ProcessSpec) -> Self {
        JobProcess {
            spec: Arc::new(spec),
            log_budget: WasmConfig::default().log_budget,
            grace: DEFAULT_GRACE,
        }
    }

    /// With another grace between SIGTERM and SIGKILL at the deadline.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Runs the process once for the run in `ctx`.
    pub async fn call(
        &self,
        ctx: CallContext,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<ResponseBody>, InvokeError> {
        if !ctx.as_run {
            return Err(InvokeError::NotCallable(
                contract::JOB_NOT_CALLABLE.to_owned(),
            ));
        }
        let workspace = tempfile::Builder::new()
            .prefix("faas-job-")
            .tempdir()
            .map_err(|e| {
                InvokeError::Unavailable(format!("no temporary folder for the run: {e}"))
            })?;
        let output_path = workspace.path().join("output");
        let mut command = self.spec.command().map_err(InvokeError::Unavailable)?;
        let headers = request.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        command
            .envs(faas_api::job_env::environment(header, request.body()))
            .env(faas_api::job_env::OUTPUT_VARIABLE, &output_path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().map_err(|e| {
            InvokeError::Unavailable(format!("cannot start {:?}: {e}", self.spec.argv[0]))
        })?;
        // Dropped on every path: the group dies with the run however the run ends.
        let group = super::cgi::ProcessGroup::of(&child);
        let log = GuestLog::new(
            Arc::clone(&self.spec.name),
            ctx.call_id.as_str().into(),
            self.log_budget,
        )
        .with_sink(ctx.log_tail.clone())
        .with_run_log(ctx.run_log.clone());
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(InvokeError::Unavailable("no pipes to the process".into()));
        };
        let payload = request.into_body();
        // A job that does not read its input must not block on a full pipe.
        let feed = tokio::spawn(async move {
            let _ = stdin.write_all(&payload).await;
        });
        let mut out_writer = log.writer(Stream::Stdout);
        let mut err_writer = log.writer(Stream::Stderr);
        let mut logs = tokio::spawn(async move {
            let _ = tokio::join!(
                tokio::io::copy(&mut stdout, &mut out_writer),
                tokio::io::copy(&mut stderr, &mut err_writer),
            );
        });
        let timeout = ctx.timeout_or(self.spec.limits.timeout);
        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                group.terminate();
                tracing::info!(function = %self.spec.name, call_id = %ctx.call_id, grace = ?self.grace, "job past its timeout: SIGTERM sent to its process group");
                if tokio::time::timeout(self.grace, child.wait())
                    .await
                    .is_err()
                {
                    tracing::info!(function = %self.spec.name, call_id = %ctx.call_id, "job still running after the grace period: SIGKILL");
                }
                group.kill();
                feed.abort();
                finish_logs(&mut logs).await;
                log.finish();
                return Err(InvokeError::Timeout(timeout));
            }
        };
        feed.abort();
        // What the job left running in its group does not outlive the run.
        group.kill();
        finish_logs(&mut logs).await;
        log.finish();
        let status = status.map_err(|e| InvokeError::ProcessFailed(e.to_string()))?;
        Ok(answer(status, read_output(&output_path).await))
    }
}

/// Waits briefly for the pipes to drain once the group is dead; a process that left the
/// group (setsid) and holds them is not waited for.
async fn finish_logs(logs: &mut tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(Duration::from_secs(1), &mut *logs)
        .await
        .is_err()
    {
        logs.abort();
    }
}

/// The first [`MAX_OUTPUT_BYTES`] of what the job wrote to `$FAAS_OUTPUT`, if anything.
async fn read_output(path: &std::path::Path) -> Option<(Bytes, bool)> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut kept = Vec::new();
    let read = file.take(MAX_OUTPUT_BYTES + 1).read_to_end(&mut kept).await;
    read.ok()?;
    let cut = kept.len() as u64 > MAX_OUTPUT_BYTES;
    kept.truncate(MAX_OUTPUT_BYTES as usize);
    Some((Bytes::from(kept), cut))
}

/// The run's answer: 200 with the output for exit 0, else 500 saying how the process ended.
fn answer(
    status: std::process::ExitStatus,
    output: Option<(Bytes, bool)>,
) -> http::Response<ResponseBody> {
    use std::os::unix::process::ExitStatusExt;
    let mut response = http::Response::builder();
    if let Some(code) = status.code() {
        response = response.header(contract::EXIT_CODE_HEADER, code);
    } else if let Some(signal) = status.signal() {
        response = response.header(contract::EXIT_SIGNAL_HEADER, signal);
    }
    let response = if status.success() {
        let (body, cut) = output.unwrap_or_default();
        let json = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
        let mut body = body.to_vec();
        if cut {
            body.extend_from_slice(
                format!("\n[output truncated: first {MAX_OUTPUT_BYTES} bytes kept]").as_bytes(),
            );
        }
        response
            .status(http::StatusCode::OK)
            .header(
                http::header::CONTENT_TYPE,
                if json && !cut {
                    "application/json"
                } else {
                    "text/plain; charset=utf-8"
                },
            )
            .body(full_body(Bytes::from(body)))
    } else {
        let error = serde_json::json!({
            "reason": "JobFailed",
            "message": format!("the job {}", exit_text(status)),
        });
        response
            .status(http::StatusCode::INTERNAL_SERVER_ERROR)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(full_body(Bytes::from(error.to_string())))
    };
    response.unwrap_or_else(|_| http::Response::new(full_body(Bytes::new())))
}
