//! `mode: lambda`: unmodified Lambda handlers (any runtime interface client: `awslambdaric`,
//! the Rust `lambda_runtime` crate, ...) served through the Lambda Runtime API.
//!
//! A pool of handler processes, one invocation at a time each, up to `spec.concurrency`,
//! started on demand (one at load). Each has its own Runtime API server on loopback
//! ([`slot`]); invocations wait in one queue and go to whichever process asks first.
//! [`events`] turns requests into Lambda events and results back into responses.

pub mod events;
mod slot;
mod stream;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_api::lambda_env;
use tokio::sync::{mpsc, oneshot, watch};

use self::events::{Identity, Shape};
use super::ProcessSpec;
use crate::{CallContext, InvokeError, ResponseBody, full_body};

/// How an invocation ended, as the slot reports it.
enum Outcome {
    /// `POST .../response`: the handler's result.
    Result(Bytes),
    /// `POST .../response` in streaming mode: the result as the handler writes it.
    Stream {
        content_type: Option<String>,
        body: stream::ChannelBody,
    },
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
    /// The platform's call id (the request id above is unique per handler call), for the
    /// lines the handler prints.
    call_id: String,
    event: Bytes,
    deadline: Instant,
    deadline_ms: i64,
    timeout: Duration,
    trace_id: String,
    /// `Lambda-Runtime-Client-Context`: the caller's `X-Amz-Client-Context`, decoded.
    client_context: Option<String>,
    reply: oneshot::Sender<Outcome>,
}

/// What the slots share.
struct Pool {
    spec: Arc<ProcessSpec>,
    identity: Identity,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    /// Processes waiting in `next`.
    idle: AtomicUsize,
    /// Invocations queued that no process has taken yet.
    waiting: AtomicUsize,
    /// Set when a process failed before it asked for work; cleared when one asks.
    failure: watch::Sender<Option<Failure>>,
    /// A handler asked for work at least once: it initialized.
    asked: std::sync::atomic::AtomicBool,
    /// When and why handler processes ended unasked, within [`CRASH_WINDOW`], oldest first.
    crashes: std::sync::Mutex<std::collections::VecDeque<(Instant, String)>>,
}

/// Handler processes that ended (crashed, or were killed past a deadline) within this
/// window make the function `Degraded`, as restarts of a server process do.
const CRASH_WINDOW: Duration = Duration::from_secs(600);

impl Pool {
    /// Notes that a handler process ended unasked, and why.
    fn crashed(&self, reason: String) {
        let mut crashes = self.crashes.lock().unwrap_or_else(|e| e.into_inner());
        crashes.push_back((Instant::now(), reason));
        while crashes
            .front()
            .is_some_and(|(at, _)| at.elapsed() > CRASH_WINDOW)
        {
            crashes.pop_front();
        }
    }
}

impl Pool {
    /// The variables Lambda sets for a handler, plus the function's own env (which may not
    /// override the Runtime API address).
    fn environment(&self, runtime_api: &str) -> Vec<(String, String)> {
        let spec = &self.spec;
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
            .filter(|(k, _)| !lambda_env::RESERVED.contains(&k.as_str()))
            .cloned()
            .collect();
        env.push(("AWS_LAMBDA_RUNTIME_API".to_owned(), runtime_api.to_owned()));
        // A Python handler's prints reach the log (and the invocation they belong to) as
        // they happen, not when a pipe buffer fills, unless the function says otherwise.
        if !env.iter().any(|(k, _)| k == "PYTHONUNBUFFERED") {
            env.push(("PYTHONUNBUFFERED".to_owned(), "1".to_owned()));
        }
        let identity = lambda_env::LambdaIdentity {
            function: &self.identity.function,
            memory_mib: spec.limits.memory_bytes >> 20,
            region: &self.identity.region,
            handler: &handler,
            task_root: &root,
            log_stream: &format!("{day}/[$LATEST]faas"),
            per_process: spec.limits.per_process,
        };
        env.extend(
            lambda_env::handler_environment(&identity)
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
    /// Handler processes this function may start; 0 when the handler runs elsewhere.
    max_slots: usize,
    /// Where the Runtime API is served for a handler that runs elsewhere.
    beside: Option<std::net::SocketAddr>,
    ids: AtomicU64,
}

impl LambdaFunction {
    /// Starts the first handler process of `spec`; more start on demand, up to
    /// `spec.concurrency`.
    pub fn start(spec: ProcessSpec) -> Self {
        let function = Self::new(spec, None);
        function.add_slot();
        function
    }

    /// Serves the Runtime API on `address` for a handler that runs elsewhere and is given
    /// that address as `AWS_LAMBDA_RUNTIME_API`: the function container beside
    /// `faas-runtime sidecar`. One invocation at a time, as in a Lambda execution
    /// environment; more waiting ones queue (within the caller's timeout).
    pub fn beside(spec: ProcessSpec, address: std::net::SocketAddr) -> Result<Self, String> {
        let listener = std::net::TcpListener::bind(address)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(|e| format!("cannot serve the Lambda Runtime API on {address}: {e}"))?;
        let bound = listener.local_addr().unwrap_or(address);
        let function = Self::new(spec, Some(bound));
        tokio::spawn(slot::serve_beside(
            Arc::clone(&function.pool),
            listener,
            function.stop.subscribe(),
        ));
        tracing::info!(function = %function.pool.spec.name, runtime_api = %bound, "lambda: Runtime API ready for the handler");
        Ok(function)
    }

    fn new(spec: ProcessSpec, beside: Option<std::net::SocketAddr>) -> Self {
        let region = spec
            .env
            .iter()
            .find(|(k, _)| k == "AWS_REGION")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(faas_api::lambda_env::process_region);
        let identity = Identity {
            function: spec.name.to_string(),
            region,
            account: faas_api::contract::LOCAL_ACCOUNT.to_owned(),
        };
        let (queue, receiver) = mpsc::unbounded_channel();
        let (failure, _) = watch::channel(None);
        let max_slots = match beside {
            Some(_) => 0,
            None => spec.limits.processes() as usize,
        };
        let pool = Arc::new(Pool {
            spec: Arc::new(spec),
            identity,
            queue: tokio::sync::Mutex::new(receiver),
            idle: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            failure,
            asked: std::sync::atomic::AtomicBool::new(false),
            crashes: std::sync::Mutex::default(),
        });
        let (stop, _) = watch::channel(false);
        LambdaFunction {
            pool,
            queue,
            stop,
            slots: AtomicUsize::new(0),
            max_slots,
            beside,
            ids: AtomicU64::new(0),
        }
    }

    fn add_slot(&self) {
        self.slots.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(slot::run(Arc::clone(&self.pool), self.stop.subscribe()));
    }

    /// Handler processes, how many wait for work, and why none can start, if so.
    pub fn status(&self) -> serde_json::Value {
        let failure = self.pool.failure.borrow().clone();
        let mut status = serde_json::json!({
            "idle": self.pool.idle.load(Ordering::SeqCst),
            "initialized": self.pool.asked.load(Ordering::SeqCst),
            "initError": failure.map(|Failure::Init(why)| why),
        });
        match self.beside {
            Some(address) => status["runtimeApi"] = address.to_string().into(),
            None => {
                status["handlerProcesses"] = self.slots.load(Ordering::SeqCst).into();
                status["maxHandlerProcesses"] = self.max_slots.into();
            }
        }
        status
    }

    /// Whether a handler can take invocations: it asked for work once and did not report
    /// an init failure since.
    pub fn readiness(&self) -> Result<(), String> {
        if let Some(Failure::Init(why)) = self.pool.failure.borrow().clone() {
            return Err(format!("the handler failed to initialize: {why}"));
        }
        if !self.pool.asked.load(Ordering::SeqCst) {
            return Err(match self.beside {
                Some(address) => format!(
                    "waiting for the handler to ask for work on the Runtime API at {address}"
                ),
                None => "waiting for the handler process to ask for work".to_owned(),
            });
        }
        Ok(())
    }

    /// Why the function, though it may serve, is not healthy: handler processes ended
    /// within the last ten minutes (how many, and the last reason).
    pub fn degraded(&self) -> Option<String> {
        let mut crashes = self.pool.crashes.lock().unwrap_or_else(|e| e.into_inner());
        while crashes
            .front()
            .is_some_and(|(at, _)| at.elapsed() > CRASH_WINDOW)
        {
            crashes.pop_front();
        }
        let (_, last) = crashes.back()?;
        Some(format!(
            "the handler process ended {} time(s) in the last {} min and was restarted (last: {last})",
            crashes.len(),
            CRASH_WINDOW.as_secs() / 60
        ))
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
            call_id: ctx.call_id.clone(),
            event,
            deadline,
            deadline_ms,
            timeout,
            trace_id: format!("Root=1-{:08x}-{:024x};Sampled=0", deadline_ms / 1000, n),
            client_context: events::client_context(&request),
            reply,
        };
        self.pool.waiting.fetch_add(1, Ordering::SeqCst);
        if self.queue.send(invocation).is_err() {
            self.pool.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(InvokeError::Unavailable("the function is stopping".into()));
        }
        // More processes while more invocations wait than processes wait for work (a burst
        // must not queue behind the one idle process), up to spec.concurrency.
        if self.pool.waiting.load(Ordering::SeqCst) > self.pool.idle.load(Ordering::SeqCst)
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
            Outcome::Stream { content_type, body } => {
                stream::response(shape, content_type, body).await
            }
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
