//! `mode: lambda`: unmodified Lambda handlers (any runtime interface client: `awslambdaric`,
//! the Rust `lambda_runtime` crate, ...) served through the Lambda Runtime API.
//!
//! A pool of handler processes, one invocation at a time each, up to `spec.concurrency`,
//! started on demand (one at load). Each has its own Runtime API server on loopback
//! ([`slot`]); invocations wait in one queue and go to whichever process asks first.
//! [`events`] turns requests into Lambda events and results back into responses.

pub mod events;
mod slot;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use self::events::{Identity, Shape};
use super::ProcessSpec;
use crate::{CallContext, InvokeError, ResponseBody, full_body};

/// How an invocation ended, as the slot reports it.
enum Outcome {
    /// `POST .../response`: the handler's result.
    Result(Bytes),
    /// `POST .../error`: the handler's error JSON.
    HandlerError(Bytes),
    /// The process died, or the deadline passed.
    Failed(InvokeError),
}

/// Why no process can take invocations now.
#[derive(Clone, Debug)]
enum Failure {
    Init(String),
}

/// One invocation waiting for a process.
struct Invocation {
    id: String,
    event: Bytes,
    deadline: Instant,
    deadline_ms: i64,
    timeout: Duration,
    trace_id: String,
    reply: oneshot::Sender<Outcome>,
}

/// What the slots share.
struct Pool {
    spec: Arc<ProcessSpec>,
    identity: Identity,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    /// Processes waiting in `next`.
    idle: AtomicUsize,
    /// Set when a process failed before it asked for work; cleared when one asks.
    failure: watch::Sender<Option<Failure>>,
}

impl Pool {
    /// The variables Lambda sets for a handler, plus the function's own env (which may not
    /// override the Runtime API address).
    fn environment(&self, runtime_api: &str) -> Vec<(String, String)> {
        let spec = &self.spec;
        let name = &self.identity.function;
        let day = jiff::Timestamp::now().strftime("%Y/%m/%d").to_string();
        let handler = spec
            .env
            .iter()
            .find(|(k, _)| k == "_HANDLER")
            .map(|(_, v)| v.clone())
            .or_else(|| spec.argv.last().cloned())
            .unwrap_or_default();
        let root = spec
            .working_dir
            .as_deref()
            .unwrap_or(Path::new("."))
            .to_string_lossy()
            .into_owned();
        let mut env: Vec<(String, String)> = spec
            .env
            .iter()
            .filter(|(k, _)| k != "AWS_LAMBDA_RUNTIME_API" && k != "AWS_LAMBDA_MAX_CONCURRENCY")
            .cloned()
            .collect();
        let region = self.identity.region.clone();
        env.extend(
            [
                ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
                ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
                (
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    (spec.limits.memory_bytes >> 20).to_string(),
                ),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
                ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
                ("AWS_LAMBDA_LOG_STREAM_NAME", format!("{day}/[$LATEST]faas")),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
                ("AWS_REGION", region.clone()),
                ("AWS_DEFAULT_REGION", region),
                ("_HANDLER", handler),
                ("LAMBDA_TASK_ROOT", root.clone()),
                ("LAMBDA_RUNTIME_DIR", root),
                ("TZ", ":UTC".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }
}

/// A Lambda handler function.
pub struct LambdaFunction {
    pool: Arc<Pool>,
    queue: mpsc::UnboundedSender<Invocation>,
    stop: watch::Sender<bool>,
    slots: AtomicUsize,
    max_slots: usize,
    ids: AtomicU64,
}

impl LambdaFunction {
    /// Starts the first handler process of `spec`.
    pub fn start(spec: ProcessSpec) -> Self {
        let region = spec
            .env
            .iter()
            .find(|(k, _)| k == "AWS_REGION")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let identity = Identity {
            function: spec.name.to_string(),
            region,
            account: "000000000000".to_owned(),
        };
        let (queue, receiver) = mpsc::unbounded_channel();
        let (failure, _) = watch::channel(None);
        let max_slots = spec.limits.concurrency.max(1) as usize;
        let pool = Arc::new(Pool {
            spec: Arc::new(spec),
            identity,
            queue: tokio::sync::Mutex::new(receiver),
            idle: AtomicUsize::new(0),
            failure,
        });
        let (stop, _) = watch::channel(false);
        let function = LambdaFunction {
            pool,
            queue,
            stop,
            slots: AtomicUsize::new(0),
            max_slots,
            ids: AtomicU64::new(0),
        };
        function.add_slot();
        function
    }

    fn add_slot(&self) {
        self.slots.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(slot::run(Arc::clone(&self.pool), self.stop.subscribe()));
    }

    /// Handler processes, how many wait for work, and why none can start, if so.
    pub fn status(&self) -> serde_json::Value {
        let failure = self.pool.failure.borrow().clone();
        serde_json::json!({
            "handlerProcesses": self.slots.load(Ordering::SeqCst),
            "maxHandlerProcesses": self.max_slots,
            "idle": self.pool.idle.load(Ordering::SeqCst),
            "initError": failure.map(|Failure::Init(why)| why),
        })
    }

    /// Runs one invocation.
    pub async fn call(
        &self,
        ctx: CallContext,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<ResponseBody>, InvokeError> {
        let shape = Shape::of(&request);
        let event = events::event(shape, &self.pool.identity, &request);
        let timeout = ctx.timeout_or(self.pool.spec.limits.timeout);
        let deadline = Instant::now() + timeout;
        let deadline_ms = jiff::Timestamp::now().as_millisecond()
            + i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 2);
        let (reply, outcome) = oneshot::channel();
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n:08x}", ctx.call_id);
        let invocation = Invocation {
            id,
            event,
            deadline,
            deadline_ms,
            timeout,
            trace_id: format!("Root=1-{:08x}-{:024x};Sampled=0", deadline_ms / 1000, n),
            reply,
        };
        if self.queue.send(invocation).is_err() {
            return Err(InvokeError::Unavailable("the function is stopping".into()));
        }
        // More processes when every one is busy, up to spec.concurrency.
        if self.pool.idle.load(Ordering::SeqCst) == 0
            && self.slots.load(Ordering::SeqCst) < self.max_slots
        {
            self.add_slot();
        }
        let mut failure = self.pool.failure.subscribe();
        let init_failed = async {
            let failed = failure.wait_for(Option::is_some).await.map(|f| f.clone());
            match failed {
                Ok(Some(Failure::Init(why))) => why,
                _ => std::future::pending().await,
            }
        };
        // Backstop behind the slot's own deadline timer.
        let waited = tokio::time::timeout(timeout + Duration::from_secs(2), outcome);
        let outcome = tokio::select! {
            outcome = waited => match outcome {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Outcome::Failed(InvokeError::ProcessFailed("the handler process went away".into())),
                Err(_) => Outcome::Failed(InvokeError::Timeout(timeout)),
            },
            why = init_failed => Outcome::Failed(InvokeError::ProcessFailed(format!(
                "the handler failed to initialize: {why}"
            ))),
        };
        match outcome {
            Outcome::Result(result) => Ok(events::response(shape, result)?.map(full_body)),
            Outcome::HandlerError(body) => {
                let kind = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["errorType"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "Unhandled".to_owned());
                tracing::info!(function = %self.pool.spec.name, call_id = %ctx.call_id, error = %slot::describe_error(&body), "lambda: handler error");
                let mut response = http::Response::new(full_body(body));
                *response.status_mut() = http::StatusCode::BAD_GATEWAY;
                let headers = response.headers_mut();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                if let Ok(kind) = http::HeaderValue::from_str(&kind) {
                    headers.insert("x-amz-function-error", kind);
                }
                Ok(response)
            }
            Outcome::Failed(err) => Err(err),
        }
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
