//! The one interface every executor implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

use crate::InvokeError;

/// Error type of streamed response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body that may still be produced by the guest while it is sent.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Who is calling, for logs and run records.
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    /// Unique id of this invocation; also returned to the client as `X-Call-Id`.
    pub call_id: String,
    /// Function name (logs are tagged with it).
    pub function: String,
    /// Overrides the function's timeout for this call (a cron schedule's `timeout`).
    pub timeout: Option<Duration>,
    /// Receives the tail of the guest's output once the invocation ended (run records).
    pub log_tail: Option<LogTailSink>,
    /// The call is a run (a schedule's fire, a run by hand): the only calls a `mode: job`
    /// function takes.
    pub as_run: bool,
    /// Receives the guest's whole output as it is written (a run's log).
    pub run_log: Option<RunLog>,
}

/// Where an executor writes a run's whole output as it is printed, unbudgeted (the writer
/// bounds it): `faas runs logs`.
#[derive(Clone)]
pub struct RunLog(Arc<dyn RunLogWriter>);

/// The storage side of a [`RunLog`].
pub trait RunLogWriter: Send + Sync {
    /// Appends output bytes. Never blocks for long: a local file, a buffer.
    fn append(&self, bytes: &[u8]);

    /// Appends a line of the platform's own about the run (an attempt started or ended). A
    /// writer may hold such lines back until the run prints something, or until
    /// [`Self::finish`] says they are worth keeping: a silent run that succeeded at once
    /// then costs no storage at all.
    fn note(&self, line: &str) {
        self.append(format!("[faas] {line}\n").as_bytes());
    }

    /// The run is over: `keep_notes` says whether lines held back by [`Self::note`] are
    /// still wanted (the run did not succeed at its first attempt).
    fn finish(&self, _keep_notes: bool) {}
}

impl RunLog {
    pub fn new(writer: impl RunLogWriter + 'static) -> Self {
        RunLog(Arc::new(writer))
    }

    pub fn append(&self, bytes: &[u8]) {
        self.0.append(bytes);
    }

    /// A platform line about the run ([`RunLogWriter::note`]).
    pub fn note(&self, line: &str) {
        self.0.note(line);
    }

    /// The run is over ([`RunLogWriter::finish`]).
    pub fn finish(&self, keep_notes: bool) {
        self.0.finish(keep_notes);
    }
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunLog")
    }
}

impl CallContext {
    /// A context for one call of `function`.
    pub fn new(call_id: impl Into<String>, function: impl Into<String>) -> Self {
        Self {
            call_id: call_id.into(),
            function: function.into(),
            ..Self::default()
        }
    }

    /// The deadline this call runs under.
    pub fn timeout_or(&self, function_timeout: Duration) -> Duration {
        self.timeout.unwrap_or(function_timeout)
    }
}

/// Where an executor leaves the last lines a guest printed, for whoever records the run.
#[derive(Clone, Debug, Default)]
pub struct LogTailSink(Arc<TailSlot>);

#[derive(Debug, Default)]
struct TailSlot {
    tail: Mutex<Option<String>>,
    filled: tokio::sync::Notify,
}

impl LogTailSink {
    /// Stores the tail (the executor calls this once, when the guest's output is complete).
    pub fn set(&self, tail: String) {
        if let Ok(mut slot) = self.0.tail.lock() {
            *slot = Some(tail);
        }
        self.0.filled.notify_waiters();
    }

    /// The tail, if the invocation has ended and printed anything.
    pub fn take(&self) -> Option<String> {
        self.0.tail.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Waits (at most `limit`) for the tail: a streamed response can end a moment before
    /// the guest's task does, and the tail is complete only then. Returns at once when no
    /// one else holds the sink any more (an executor that keeps no log).
    pub async fn wait(&self, limit: std::time::Duration) -> Option<String> {
        let wait = async {
            loop {
                let filled = self.0.filled.notified();
                if let Some(tail) = self.take() {
                    return Some(tail);
                }
                if Arc::strong_count(&self.0) == 1 {
                    return None;
                }
                filled.await;
            }
        };
        tokio::time::timeout(limit, wait).await.ok().flatten()
    }
}

impl Drop for LogTailSink {
    /// Wakes a waiter to re-check whether anyone can still fill the sink.
    fn drop(&mut self) {
        self.0.filled.notify_waiters();
    }
}

/// Something that can run one invocation of one function.
///
/// Requests arrive with their body already read and bounded by the gateway: the body limit is
/// an admission decision (413) that must be taken before any guest code runs.
pub trait Invoker: Send + Sync + 'static {
    /// Runs one invocation. The returned body may still be streaming from a running guest; the
    /// function's deadline keeps applying until it ends.
    fn invoke(
        &self,
        ctx: CallContext,
        request: http::Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, InvokeError>> + Send + '_>>;

    /// What the executor wants users to see about its state (a process starting, restarting
    /// and why); `None` when there is nothing beyond "loaded".
    fn status(&self) -> Option<serde_json::Value> {
        None
    }

    /// Whether it can serve now, or why not (a server process not accepting connections, a
    /// Lambda handler that never asked for work). A loaded WASM function always can. A pod
    /// that hosts one function fails its readiness probe on this.
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }

    /// Why it serves, but not as it should (a server process that keeps restarting, a role
    /// that cannot be assumed), for the function's `Degraded` state; `None` when all is well.
    fn degraded(&self) -> Option<Degradation> {
        None
    }
}

/// Why a function serves, but not as it should: a stable code and the sentence a user reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Degradation {
    /// `Restarting` (its process), `IdentityUnavailable` (its role's credentials),
    /// `SecretUnavailable` (a `spec.env` secret).
    pub reason: &'static str,
    pub message: String,
}

impl Degradation {
    /// Its process keeps ending and being restarted.
    pub fn restarting(message: String) -> Self {
        Degradation {
            reason: "Restarting",
            message,
        }
    }

    /// Its invocations run without some of their `spec.env` secrets.
    pub fn secret_unavailable(message: String) -> Self {
        Degradation {
            reason: "SecretUnavailable",
            message,
        }
    }

    /// Its invocations run without its role's credentials.
    pub fn identity_unavailable(message: String) -> Self {
        Degradation {
            reason: "IdentityUnavailable",
            message,
        }
    }
}

/// Environment variables decided at each invocation rather than at load: what changes while
/// a function stays loaded (its role's temporary credentials, renewed before they expire).
/// An executor adds them after the function's own `spec.env`, so they win over a same-named
/// entry, as Lambda's reserved variables do.
pub trait InvocationEnv: Send + Sync + 'static {
    /// Calls `put` with each variable, as of now. Runs at every invocation: a borrow and a
    /// few copies, never I/O.
    fn each(&self, put: &mut dyn FnMut(&str, &str));

    /// Why the function's invocations do not get what they should (a role that cannot be
    /// assumed, a secret that cannot be read), for its `Degraded` state; `None` when all is
    /// well.
    fn problem(&self) -> Option<Degradation> {
        None
    }
}

/// A complete in-memory body.
pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
