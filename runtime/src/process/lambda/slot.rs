//! One handler process and the Runtime API it talks to: a loopback HTTP server of its own
//! (`AWS_LAMBDA_RUNTIME_API`), so the platform always knows which process holds which
//! invocation. The process takes one invocation at a time (`GET .../invocation/next`) from the
//! pool's queue, or up to `perProcessConcurrency` at once (`AWS_LAMBDA_MAX_CONCURRENCY`, Lambda
//! Managed Instances); a crash fails those it holds (502) and the process is restarted; an
//! invocation past its deadline gets 504 and its process is killed (failing the others it
//! held) and restarted.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, watch};

use super::{Failure, Invocation, Outcome, Pool};
use crate::InvokeError;
use crate::process::{Calls, OpenCall, exit_text, terminate, until_stopped};
use faas_api::backoff::Backoff;

const PREFIX: &str = "/2018-06-01/runtime";
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The invocation a process is working on.
struct Current {
    id: String,
    reply: tokio::sync::oneshot::Sender<Outcome>,
    /// When it must be done, a streamed answer included.
    deadline: Instant,
    /// Tags what the process prints with the invocation's call id while it holds it.
    _open: OpenCall,
}

/// What one slot's server and supervisor share.
struct Slot {
    pool: Arc<Pool>,
    /// The invocations the process holds, oldest first (at most `per_process`).
    current: Mutex<Vec<Current>>,
    /// Set by `/init/error`: why this process could not start.
    init_error: Mutex<Option<String>>,
    /// Rung when the current invocation passed its deadline: kill the process.
    kill: Notify,
    /// Whether this process asked for work at least once (it initialized).
    initialized: std::sync::atomic::AtomicBool,
    /// When this process was started (its init time ends at its first request for work).
    born: Instant,
    /// Invocations whose deadline passed, newest last (a few): the handler's late answer
    /// to one of them is accepted and dropped. Refusing it would make runtime clients
    /// exit (`awslambdaric` raises on a refused response), and a handler beside a
    /// container would then crash-loop over a slow call.
    expired: Mutex<std::collections::VecDeque<String>>,
    /// The invocation the process holds, for its output lines.
    calls: Arc<Calls>,
}

/// How many expired invocation ids a slot remembers.
const EXPIRED_KEPT: usize = 16;

impl Slot {
    fn new(pool: Arc<Pool>) -> Self {
        Slot {
            pool,
            current: Mutex::new(Vec::new()),
            init_error: Mutex::new(None),
            kill: Notify::new(),
            initialized: std::sync::atomic::AtomicBool::new(false),
            born: Instant::now(),
            expired: Mutex::new(std::collections::VecDeque::new()),
            calls: Arc::default(),
        }
    }

    fn expire(&self, id: String) {
        let mut expired = self.expired.lock().unwrap_or_else(|e| e.into_inner());
        if expired.len() == EXPIRED_KEPT {
            expired.pop_front();
        }
        expired.push_back(id);
    }

    fn has_expired(&self, id: &str) -> bool {
        let expired = self.expired.lock().unwrap_or_else(|e| e.into_inner());
        expired.iter().any(|e| e == id)
    }

    /// Hands the handler's answer to the caller waiting for invocation `id`.
    fn answer(&self, id: &str, outcome: Outcome) -> Reply {
        if let Some(current) = self.take_current(id) {
            let _ = current.reply.send(outcome);
            return reply(202, "{\"status\":\"OK\"}");
        }
        if self.has_expired(id) {
            tracing::info!(function = %self.pool.spec.name, request_id = %id, "lambda: late answer after the deadline dropped");
            return reply(202, "{\"status\":\"OK\"}");
        }
        reply(
            400,
            "{\"errorMessage\":\"no such invocation in progress\",\"errorType\":\"InvalidRequestID\"}",
        )
    }

    /// The invocation `id`, no longer held.
    fn take_current(&self, id: &str) -> Option<Current> {
        let mut current = self.held();
        let at = current.iter().position(|c| c.id == id)?;
        Some(current.remove(at))
    }

    /// Every invocation held (the process died, or the runtime stops).
    fn take_all(&self) -> Vec<Current> {
        std::mem::take(&mut *self.held())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Vec<Current>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs handler processes for `pool` one after another (restarting with backoff) until the
/// pool stops.
pub(super) async fn run(pool: Arc<Pool>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let slot = Arc::new(Slot::new(Arc::clone(&pool)));
        let started = Instant::now();
        let Some(reason) = run_process(&slot, &mut stop).await else {
            return;
        };
        let init_error = slot
            .init_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let initialized = slot.initialized.load(std::sync::atomic::Ordering::SeqCst);
        pool.crashed(reason.clone());
        if !initialized {
            // Never asked for work: waiting callers learn why now rather than at their deadline.
            let why = init_error
                .unwrap_or_else(|| format!("the handler process {reason} before asking for work"));
            pool.failure.send_replace(Some(Failure::Init(why)));
        }
        for current in slot.take_all() {
            let _ = current
                .reply
                .send(Outcome::Failed(InvokeError::ProcessFailed(format!(
                    "the handler process {reason} during the invocation"
                ))));
        }
        if started.elapsed() > Duration::from_secs(30) || initialized {
            backoff.reset();
        }
        let wait = backoff.fail();
        tracing::warn!(function = %pool.spec.name, %reason, retry_in = ?wait, "lambda: handler process ended; restarting");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = until_stopped(&mut stop) => return,
        }
    }
}

/// Serves the Runtime API on `listener` for a handler that runs elsewhere (the function's
/// container, beside the `faas-runtime sidecar`): nothing to start or restart here. The
/// handler's container restarts on its own (kubelet); a handler past its deadline cannot be
/// killed from here: its caller has had its 504, and its late answer is accepted and dropped.
pub(super) async fn serve_beside(
    pool: Arc<Pool>,
    listener: tokio::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let slot = Arc::new(Slot::new(Arc::clone(&pool)));
    let server = serve(listener, Arc::clone(&slot));
    let overdue = async {
        loop {
            slot.kill.notified().await;
            tracing::warn!(function = %pool.spec.name, "lambda: the handler is past its deadline; \
                its caller got 504 and its late answer will be dropped (it runs in another \
                container and cannot be stopped from here)");
        }
    };
    tokio::select! {
        () = server => {}
        () = overdue => {}
        () = until_stopped(&mut stop) => {}
    }
    for current in slot.take_all() {
        let _ = current.reply.send(Outcome::Failed(InvokeError::Unavailable(
            "the runtime is stopping".into(),
        )));
    }
}

/// One process lifetime. `None` when stopped on purpose, else why it ended.
async fn run_process(slot: &Arc<Slot>, stop: &mut watch::Receiver<bool>) -> Option<String> {
    let pool = &slot.pool;
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
        Ok(l) => l,
        Err(e) => return Some(format!("could not be given a Runtime API ({e})")),
    };
    let address = listener.local_addr().ok()?;
    let server = tokio::spawn(serve(listener, Arc::clone(slot)));
    let mut command = match pool.spec.command() {
        Ok(c) => c,
        Err(e) => {
            server.abort();
            return Some(format!("could not be started ({e})"));
        }
    };
    command
        .envs(pool.environment(&address.to_string()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            server.abort();
            return Some(format!(
                "could not be started ({:?}: {e})",
                pool.spec.argv[0]
            ));
        }
    };
    crate::process::forward_output(&pool.spec.name, &mut child, &slot.calls);
    let reason = tokio::select! {
        status = child.wait() => Some(match status {
            Ok(status) => exit_text(status),
            Err(e) => e.to_string(),
        }),
        () = slot.kill.notified() => {
            let _ = child.kill().await;
            Some("was killed after its invocation passed the deadline".to_owned())
        }
        () = until_stopped(stop) => {
            terminate(&mut child, Duration::from_secs(2)).await;
            None
        }
    };
    // Drops every connection of the dead process, so a pending `next` cannot take work.
    server.abort();
    reason
}

async fn serve(listener: tokio::net::TcpListener, slot: Arc<Slot>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let slot = Arc::clone(&slot);
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let slot = Arc::clone(&slot);
                async move { Ok::<_, Infallible>(route(&slot, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        // Reap finished connections.
        while connections.try_join_next().is_some() {}
    }
}

type Reply = http::Response<Full<Bytes>>;

fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response
}

async fn route(slot: &Arc<Slot>, request: http::Request<Incoming>) -> Reply {
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return reply(404, "unknown path");
    };
    let method = request.method().clone();
    let streamed = request
        .headers()
        .get(super::stream::MODE_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if streamed
        && method == http::Method::POST
        && let ["invocation", id, "response"] =
            rest.trim_start_matches('/').split('/').collect::<Vec<_>>()[..]
    {
        return stream_answer(slot, id, request).await;
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(400, "unreadable body"),
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["invocation", "next"]) => next(slot).await,
        ("POST", ["invocation", id, "response"]) => slot.answer(id, Outcome::Result(body)),
        ("POST", ["invocation", id, "error"]) => slot.answer(id, Outcome::HandlerError(body)),
        ("POST", ["init", "error"]) => {
            let text = describe_error(&body);
            tracing::warn!(function = %slot.pool.spec.name, error = %text, "lambda: handler init failed");
            *slot.init_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text.clone());
            // Callers waiting now learn why at once, rather than when the process exits (or,
            // for a handler in another container, never).
            slot.pool.failure.send_replace(Some(Failure::Init(text)));
            reply(202, "{\"status\":\"OK\"}")
        }
        _ => reply(404, "unknown path"),
    }
}

/// A streamed `POST .../response`: the caller gets the stream at once and it is fed as the
/// handler writes, within the invocation's deadline (past it, the stream is cut and the
/// process killed, as for any invocation past its deadline).
async fn stream_answer(slot: &Arc<Slot>, id: &str, request: http::Request<Incoming>) -> Reply {
    let Some(current) = slot.take_current(id) else {
        // Late or unknown: read and dropped, answered as a buffered answer would be.
        let _ = request.into_body().collect().await;
        return slot.answer(id, Outcome::Result(Bytes::new()));
    };
    let Current {
        reply: caller,
        deadline,
        _open: open,
        ..
    } = current;
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (tx, body) = super::stream::ChannelBody::new();
    let _ = caller.send(Outcome::Stream { content_type, body });
    let cut = tx.clone();
    let pumped = tokio::time::timeout_at(
        deadline.into(),
        super::stream::pump(request.into_body(), tx),
    )
    .await;
    if pumped.is_err() {
        let _ = cut
            .send(Err(format!(
                "the function exceeded its timeout while streaming (request {id})"
            )
            .into()))
            .await;
        slot.expire(id.to_owned());
        slot.kill.notify_one();
    }
    // The process's lines belong to this invocation until its stream is done.
    drop(open);
    reply(202, "{\"status\":\"OK\"}")
}

/// `errorType: errorMessage` of a Lambda error body.
pub(super) fn describe_error(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let kind = value["errorType"].as_str().unwrap_or("Error");
    let message = value["errorMessage"]
        .as_str()
        .map_or_else(|| String::from_utf8_lossy(body).into_owned(), str::to_owned);
    format!("{kind}: {message}")
}

/// One process waiting in `next`, for the pool's idle count.
struct Idle<'a>(&'a Pool);

impl<'a> Idle<'a> {
    fn enter(pool: &'a Pool) -> Self {
        pool.idle.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Idle(pool)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0
            .idle
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Hands the next invocation to the process (waits for one).
async fn next(slot: &Arc<Slot>) -> Reply {
    let pool = &slot.pool;
    // `per_process` invocations at a time per handler: asking for another while holding that
    // many means the handler lost one (a runtime client that restarted its loop, or, beside a
    // container, a handler container restarted by the kubelet): the oldest. Its caller gets
    // 502 now rather than a 504 at the deadline.
    let lost = {
        let mut held = slot.held();
        (held.len() >= pool.spec.limits.per_process.max(1) as usize).then(|| held.remove(0))
    };
    if let Some(lost) = lost {
        tracing::warn!(function = %pool.spec.name, request_id = %lost.id, "lambda: the handler asked for a new invocation without answering the one it held");
        let _ = lost.reply.send(Outcome::Failed(InvokeError::ProcessFailed(format!(
            "the handler asked for its next invocation without answering {} (it restarted or lost it)",
            lost.id
        ))));
    }
    if !slot
        .initialized
        .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        pool.spec
            .started
            .observe(crate::process::StartPhase::LambdaInit, slot.born.elapsed());
    }
    pool.asked.store(true, std::sync::atomic::Ordering::SeqCst);
    pool.failure.send_if_modified(|f| f.take().is_some());
    let invocation: Invocation = {
        // Counted idle while waiting, however the wait ends (the connection may be dropped
        // when the process dies): the pool scales up while more invocations wait than
        // processes do.
        let _idle = Idle::enter(pool);
        let mut queue = pool.queue.lock().await;
        let taken = loop {
            let received = queue.recv().await;
            if received.is_some() {
                pool.waiting
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
            match received {
                // Its caller gave up (timeout, init failure): never run it.
                Some(inv) if inv.reply.is_closed() => continue,
                // Its deadline passed while it waited for a handler: answer 504 now rather
                // than run it for no one.
                Some(inv) if inv.deadline <= Instant::now() => {
                    let _ = inv
                        .reply
                        .send(Outcome::Failed(InvokeError::Timeout(inv.timeout)));
                    continue;
                }
                other => break other,
            }
        };
        match taken {
            Some(inv) => inv,
            None => return reply(500, "the function is stopping"),
        }
    };
    let deadline_ms = invocation.deadline_ms;
    let id = invocation.id.clone();
    slot.held().push(Current {
        id: id.clone(),
        reply: invocation.reply,
        deadline: invocation.deadline,
        _open: slot.calls.open(&invocation.call_id),
    });
    // The deadline: answer 504 and kill the process if it is still on this invocation.
    let watcher = Arc::clone(slot);
    let timeout = invocation.timeout;
    let deadline = invocation.deadline;
    let timer_id = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(deadline.into()).await;
        if let Some(current) = watcher.take_current(&timer_id) {
            watcher.expire(timer_id);
            let _ = current
                .reply
                .send(Outcome::Failed(InvokeError::Timeout(timeout)));
            watcher.kill.notify_one();
        }
    });
    let mut response = reply(200, invocation.event);
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", id);
    put("lambda-runtime-deadline-ms", deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        pool.identity.function_arn(),
    );
    put("lambda-runtime-trace-id", invocation.trace_id);
    if let Some(context) = invocation.client_context {
        put("lambda-runtime-client-context", context);
    }
    put("content-type", "application/json".to_owned());
    response
}
