//! `mode: http`: the function is an HTTP server on `port`. One process per function, started
//! here, probed until it accepts connections, proxied to (bodies stream both ways), restarted
//! with backoff when it dies, and stopped with SIGTERM (then SIGKILL) when the function is
//! replaced or removed.

use std::future::Future as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::sync::watch;

use super::{Calls, OpenCall, ProcessSpec, exit_text, terminate, until_stopped};
use crate::{CallContext, InvokeError, ResponseBody};
use faas_api::backoff::Backoff;

/// How long a new process may take to accept connections before it is restarted.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// First wait before a restart; doubles up to [`MAX_RESTART_BACKOFF`].
const FIRST_RESTART_BACKOFF: Duration = Duration::from_millis(500);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before dying starts the backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// SIGTERM to SIGKILL when stopping.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Restarts within this window make a serving function `Degraded` (see
/// [`HttpProcess::degraded`]).
const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// Starts in a row that ended without the server ever accepting connections, from which the
/// process counts as crash-looping: requests then fail at once with the reason rather than
/// wait out their timeout for a server that keeps failing the same way.
const CRASH_LOOP_STARTS: u32 = 2;

/// The restarts of one supervised process: how many, and the recent ones with their reason.
#[derive(Debug, Default)]
struct Restarts {
    count: u32,
    /// When and why, within [`RESTART_WINDOW`], oldest first.
    recent: std::collections::VecDeque<(Instant, String)>,
    /// Starts in a row, up to the last, that ended before the server accepted connections.
    unready_streak: u32,
}

impl Restarts {
    fn record(&mut self, reason: String, was_ready: bool) {
        self.unready_streak = if was_ready {
            0
        } else {
            self.unready_streak + 1
        };
        self.count += 1;
        self.recent.push_back((Instant::now(), reason));
        self.forget_old();
    }

    fn forget_old(&mut self) {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| at.elapsed() > RESTART_WINDOW)
        {
            self.recent.pop_front();
        }
    }
}

/// Where the process is, for the function's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ProcessState {
    /// Started, not yet accepting connections.
    Starting { attempt: u32 },
    /// Accepting connections. No pid for a server in another container.
    Ready {
        #[serde(skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// A server in another container stopped accepting connections (its container is
    /// restarting, or it is overloaded); probed again every second.
    Unreachable { reason: String },
    /// Died or never became ready; restarting after a backoff.
    Restarting {
        attempt: u32,
        reason: String,
        #[serde(rename = "retryInMs")]
        retry_in_ms: u64,
    },
    /// Stopped (the function was replaced or removed).
    Stopped,
}

/// A supervised HTTP server process.
pub struct HttpProcess {
    spec: Arc<ProcessSpec>,
    port: u16,
    state: watch::Receiver<ProcessState>,
    stop: watch::Sender<bool>,
    client: Client<HttpConnector, Full<Bytes>>,
    restarts: Arc<Mutex<Restarts>>,
    /// The incarnation (restart count) in which a request last met a connection closed
    /// under it: that process is dying, so the next such failure in the same incarnation
    /// met a server already on its way out (see `call`). -1: none.
    dying: std::sync::atomic::AtomicI64,
    /// Requests in flight, for the call ids of the lines the process prints.
    calls: Arc<Calls>,
}

impl HttpProcess {
    /// Starts supervising `spec` (which has a port).
    pub fn start(spec: ProcessSpec) -> Result<Self, String> {
        let port = port_of(&spec)?;
        let spec = Arc::new(spec);
        let (state_tx, state) = watch::channel(ProcessState::Starting { attempt: 1 });
        let (stop, stop_rx) = watch::channel(false);
        let restarts = Arc::new(Mutex::new(Restarts::default()));
        let calls = Arc::new(Calls::default());
        tokio::spawn(supervise(
            Arc::clone(&spec),
            port,
            state_tx,
            stop_rx,
            Arc::clone(&restarts),
            Arc::clone(&calls),
        ));
        Ok(Self::proxying(spec, port, state, stop, restarts, calls))
    }

    /// Proxies to a server that runs elsewhere on this host's loopback (the function
    /// container beside `faas-runtime sidecar`, which shares the pod's network): nothing to
    /// start or restart, only readiness to follow. A request that arrives while the server
    /// is unreachable waits for it within its timeout, as with a process starting here.
    pub fn beside(spec: ProcessSpec) -> Result<Self, String> {
        let port = port_of(&spec)?;
        let spec = Arc::new(spec);
        let (state_tx, state) = watch::channel(ProcessState::Starting { attempt: 1 });
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(follow_beside(Arc::clone(&spec), port, state_tx, stop_rx));
        Ok(Self::proxying(
            spec,
            port,
            state,
            stop,
            Arc::new(Mutex::new(Restarts::default())),
            Arc::default(),
        ))
    }

    fn proxying(
        spec: Arc<ProcessSpec>,
        port: u16,
        state: watch::Receiver<ProcessState>,
        stop: watch::Sender<bool>,
        restarts: Arc<Mutex<Restarts>>,
        calls: Arc<Calls>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        HttpProcess {
            spec,
            port,
            state,
            stop,
            client: Client::builder(TokioExecutor::new()).build(connector),
            restarts,
            dying: std::sync::atomic::AtomicI64::new(-1),
            calls,
        }
    }

    /// The process's state now.
    pub fn state(&self) -> ProcessState {
        self.state.borrow().clone()
    }

    /// Whether the server takes requests now, or why not.
    pub fn readiness(&self) -> Result<(), String> {
        match self.state() {
            ProcessState::Ready { .. } => Ok(()),
            other => Err(describe(&other)),
        }
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count
    }

    /// Why the server, though it may be serving now, is not healthy: it restarted within
    /// the last ten minutes (how often, and the last reason).
    pub fn degraded(&self) -> Option<String> {
        let mut restarts = self.restarts.lock().unwrap_or_else(|e| e.into_inner());
        restarts.forget_old();
        let (_, last) = restarts.recent.back()?;
        Some(format!(
            "the process restarted {} time(s) in the last {} min (last: {last})",
            restarts.recent.len(),
            RESTART_WINDOW.as_secs() / 60
        ))
    }

    /// Whether the process keeps failing before it ever accepts connections: its last
    /// [`CRASH_LOOP_STARTS`] (or more) starts did, and it is not serving now.
    fn crash_looping(&self, state: &ProcessState) -> Option<u32> {
        if matches!(state, ProcessState::Ready { .. }) {
            return None;
        }
        let streak = self
            .restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unready_streak;
        (streak >= CRASH_LOOP_STARTS).then_some(streak)
    }

    /// Waits until the process is ready, up to `within`; fails at once (503, with the
    /// reason) for a crash-looping process, and as soon as a starting one turns out to be.
    pub async fn ready(&self, within: Duration) -> Result<(), InvokeError> {
        let mut state = self.state.clone();
        let ready = state.wait_for(|s| {
            matches!(s, ProcessState::Ready { .. } | ProcessState::Stopped)
                || self.crash_looping(s).is_some()
        });
        let now = match tokio::time::timeout(within, ready).await {
            Ok(Ok(s)) if matches!(*s, ProcessState::Ready { .. }) => return Ok(()),
            _ => self.state(),
        };
        Err(InvokeError::Unavailable(match self.crash_looping(&now) {
            Some(streak) => format!(
                "the process is crash-looping: its last {streak} starts failed before it \
                 accepted connections; {}",
                describe(&now)
            ),
            None => describe(&now),
        }))
    }

    /// Whether a send failed on a connection the server closed under it, in an incarnation
    /// where that already happened once. The first such failure may be the request that
    /// killed the server (a 502, never retried: it reached a live server); a later one in the
    /// same incarnation was sent to a server already dying (accepted by the kernel, never read
    /// by the process), so it may be retried after the restart. (A live server that resets its
    /// connections on purpose gets those later requests retried once: it is broken anyway.)
    fn met_a_dying_server(
        &self,
        err: &hyper_util::client::legacy::Error,
        incarnation: u32,
    ) -> bool {
        use std::sync::atomic::Ordering;
        let closed = std::error::Error::source(err)
            .and_then(|source| source.downcast_ref::<hyper::Error>())
            .is_some_and(|e| {
                let reset = std::error::Error::source(e)
                    .and_then(|io| io.downcast_ref::<std::io::Error>())
                    .is_some_and(|io| {
                        matches!(
                            io.kind(),
                            std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::ConnectionAborted
                                | std::io::ErrorKind::BrokenPipe
                        )
                    });
                e.is_incomplete_message() || e.is_closed() || e.is_canceled() || reset
            });
        if !closed {
            return false;
        }
        self.dying.swap(i64::from(incarnation), Ordering::AcqRel) == i64::from(incarnation)
    }

    /// Proxies one request to the process. A process still starting (or restarting) is
    /// waited for within the request's timeout.
    pub async fn call(
        &self,
        ctx: CallContext,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<ResponseBody>, InvokeError> {
        let timeout = ctx.timeout_or(self.spec.limits.timeout);
        let deadline = Instant::now() + timeout;
        self.ready(timeout).await?;
        // Open until the response body is done or dropped.
        let open = self.calls.open(&ctx.call_id);
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let uri: http::Uri = format!("http://127.0.0.1:{}{path}", self.port)
            .parse()
            .map_err(|e| InvokeError::BadResponse(format!("request path: {e}")))?;
        strip_hop_by_hop(&mut parts.headers);
        let mut retried = false;
        let incarnation = self.restarts();
        let response = loop {
            let mut request = http::Request::new(Full::new(body.clone()));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = parts.headers.clone();
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.client.request(request)).await {
                Err(_) => return Err(InvokeError::Timeout(timeout)),
                Ok(Ok(response)) => break response,
                // Refused, or a kept-alive connection closed under the request by a process
                // that has since died: the supervisor had not seen the exit yet and the
                // request never reached a live server, so wait for the restart (within the
                // deadline) and try once more.
                Ok(Err(err))
                    if !retried
                        && (err.is_connect() || self.met_a_dying_server(&err, incarnation)) =>
                {
                    retried = true;
                    let seen = self.state();
                    let mut state = self.state.clone();
                    let changed = state.wait_for(|s| *s != seen);
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let _ = tokio::time::timeout(remaining, changed).await;
                    self.ready(deadline.saturating_duration_since(Instant::now()))
                        .await?;
                }
                Ok(Err(err)) => {
                    return Err(InvokeError::ProcessFailed(format!(
                        "the server on port {} did not answer: {err}",
                        self.port
                    )));
                }
            }
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // Streams through; an error mid-body ends the client's response early, and so does
        // the deadline: a server that sent its headers and then hangs must not hold the
        // function's concurrency slot past its timeout.
        let body = Deadline {
            inner: body.map_err(|e| -> crate::BoxError { Box::new(e) }),
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            timeout,
            _open: open,
        }
        .boxed_unsync();
        Ok(http::Response::from_parts(parts, body))
    }
}

impl Drop for HttpProcess {
    fn drop(&mut self) {
        // The supervisor stops the process (SIGTERM, then SIGKILL).
        self.stop.send_replace(true);
    }
}

/// A response body cut with an error when the function's deadline passes.
struct Deadline<B> {
    inner: B,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    _open: OpenCall,
}

impl<B> hyper::body::Body for Deadline<B>
where
    B: hyper::body::Body<Data = Bytes, Error = crate::BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let std::task::Poll::Ready(frame) = std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            return std::task::Poll::Ready(frame);
        }
        match this.sleep.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Some(Err(format!(
                "the response body was cut: the function exceeded its timeout of {}",
                humantime::format_duration(this.timeout)
            )
            .into()))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The port of an http-mode process, which the spec must name.
fn port_of(spec: &ProcessSpec) -> Result<u16, String> {
    spec.port
        .ok_or_else(|| "spec.runtime.container.port is required in http mode".to_owned())
}

/// Whether nothing listens on 127.0.0.1:`port` yet, or who would answer in the function's
/// place.
fn port_is_free(port: u16) -> Result<(), String> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(format!(
            "port {port} (spec.runtime.container.port) is already in use on 127.0.0.1 by \
             another program, not this function's server (the faas gateway listens on 8080 by \
             default): choose a free port"
        )),
        Err(e) => Err(format!("cannot check port {port} on 127.0.0.1: {e}")),
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes what describes one connection rather than the message: the hop-by-hop headers
/// and every header a `Connection` header names. What a proxy does on both legs: this
/// executor's, and the cluster gateway's forwarding to pods.
pub fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in listed {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Why a request cannot be served, from the state.
fn describe(state: &ProcessState) -> String {
    match state {
        ProcessState::Starting { attempt } => {
            format!("the process is starting (attempt {attempt}) and not accepting connections yet")
        }
        ProcessState::Ready { .. } => "the process is ready".into(),
        ProcessState::Unreachable { reason } => {
            format!("the server is not accepting connections: {reason}")
        }
        ProcessState::Restarting {
            attempt, reason, ..
        } => format!("the process is restarting (attempt {attempt}): {reason}"),
        ProcessState::Stopped => "the process was stopped".into(),
    }
}

/// Whether the server on 127.0.0.1:`port` can serve, within a second: it accepts a
/// connection and, with a readiness path, answers it with 200-399 (as a Kubernetes `httpGet`
/// probe would).
async fn accepts(port: u16, path: Option<&str>) -> Result<(), String> {
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
    let stream = match tokio::time::timeout(Duration::from_secs(1), connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("127.0.0.1:{port}: {e}")),
        Err(_) => return Err(format!("127.0.0.1:{port}: no answer to connect within 1s")),
    };
    let Some(path) = path else {
        return Ok(());
    };
    let probe = async {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = http::Request::get(path)
            .header(http::header::HOST, format!("127.0.0.1:{port}"))
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(response.status())
    };
    match tokio::time::timeout(Duration::from_secs(1), probe).await {
        Ok(Ok(status)) if (200..400).contains(&status.as_u16()) => Ok(()),
        Ok(Ok(status)) => Err(format!("GET {path} answered {status}")),
        Ok(Err(e)) => Err(format!("GET {path}: {e}")),
        Err(_) => Err(format!("GET {path}: no answer within 1s")),
    }
}

/// Follows the readiness of a server in another container: probed every 250 ms until it
/// accepts connections, then every second.
async fn follow_beside(
    spec: Arc<ProcessSpec>,
    port: u16,
    state: watch::Sender<ProcessState>,
    mut stop: watch::Receiver<bool>,
) {
    let following = Instant::now();
    loop {
        let probed = accepts(port, spec.readiness_path.as_deref()).await;
        // Not ready yet is normal while the function container starts; after it was ready
        // once, not answering is worth reporting.
        let never_ready = matches!(*state.borrow(), ProcessState::Starting { .. });
        let now = match probed {
            Ok(()) => ProcessState::Ready { pid: None },
            Err(_) if never_ready => ProcessState::Starting { attempt: 1 },
            Err(reason) => ProcessState::Unreachable { reason },
        };
        let wait = if matches!(now, ProcessState::Ready { .. }) {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(250)
        };
        state.send_if_modified(|current| {
            if *current == now {
                return false;
            }
            match &now {
                ProcessState::Ready { .. } => {
                    if matches!(current, ProcessState::Starting { .. }) {
                        spec.started
                            .observe(super::StartPhase::ProcessStart, following.elapsed());
                    }
                    tracing::info!(function = %spec.name, port, "process: the server beside accepts connections")
                }
                ProcessState::Unreachable { reason } => {
                    tracing::warn!(function = %spec.name, %reason, "process: the server beside stopped accepting connections")
                }
                _ => {}
            }
            *current = now.clone();
            true
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = until_stopped(&mut stop) => break,
        }
    }
    state.send_replace(ProcessState::Stopped);
}

async fn supervise(
    spec: Arc<ProcessSpec>,
    port: u16,
    state: watch::Sender<ProcessState>,
    mut stop: watch::Receiver<bool>,
    restarts: Arc<Mutex<Restarts>>,
    calls: Arc<Calls>,
) {
    let mut backoff = Backoff::new(FIRST_RESTART_BACKOFF, MAX_RESTART_BACKOFF);
    let mut attempt = 1u32;
    loop {
        state.send_replace(ProcessState::Starting { attempt });
        let started = Instant::now();
        let reason = match run_once(&spec, port, &state, &mut stop, &calls).await {
            None => break,
            Some(reason) => reason,
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff.reset();
        }
        let wait = backoff.fail();
        tracing::warn!(function = %spec.name, attempt, %reason, retry_in = ?wait, "process: restarting");
        let was_ready = matches!(*state.borrow(), ProcessState::Ready { .. });
        // Recorded before the state changes: a request waiting on the state sees a crash
        // loop as soon as it starts.
        restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(reason.clone(), was_ready);
        state.send_replace(ProcessState::Restarting {
            attempt,
            reason,
            retry_in_ms: wait.as_millis() as u64,
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = until_stopped(&mut stop) => break,
        }
        attempt += 1;
    }
    state.send_replace(ProcessState::Stopped);
}

/// Runs the process once: start, wait until it accepts connections, wait for it to end.
/// `None` when stopped on purpose, else why it has to be restarted.
async fn run_once(
    spec: &ProcessSpec,
    port: u16,
    state: &watch::Sender<ProcessState>,
    stop: &mut watch::Receiver<bool>,
    calls: &Arc<Calls>,
) -> Option<String> {
    // Someone else on the port would answer the readiness probe for a server that never
    // started (the gateway itself, when a function keeps the gateway's default 8080): the
    // process would be reported ready and its calls would reach the wrong server.
    if let Err(reason) = port_is_free(port) {
        return Some(reason);
    }
    let mut command = match spec.command() {
        Ok(command) => command,
        Err(reason) => return Some(reason),
    };
    command
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Some(format!("cannot start {:?}: {e}", spec.argv[0])),
    };
    super::forward_output(&spec.name, &mut child, calls);
    let pid = child.id().unwrap_or_default();
    tracing::info!(function = %spec.name, pid, port, "process: started");
    let spawned = Instant::now();
    // Readiness: the port accepts a connection.
    let probe = async {
        while accepts(port, spec.readiness_path.as_deref()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    tokio::select! {
        ready = tokio::time::timeout(STARTUP_TIMEOUT, probe) => {
            if ready.is_err() {
                // Why, in the probe's words ("connection refused", "GET /healthz answered
                // 503"), before the process goes.
                let why = accepts(port, spec.readiness_path.as_deref())
                    .await
                    .err()
                    .unwrap_or_default();
                terminate(&mut child, STOP_GRACE).await;
                return Some(format!(
                    "not ready on 127.0.0.1:{port} after {}s ({why})",
                    STARTUP_TIMEOUT.as_secs()
                ));
            }
        }
        status = child.wait() => {
            return Some(match status {
                Ok(status) => format!("{} before accepting connections on port {port}", exit_text(status)),
                Err(e) => e.to_string(),
            });
        }
        () = until_stopped(stop) => {
            terminate(&mut child, STOP_GRACE).await;
            return None;
        }
    }
    spec.started
        .observe(super::StartPhase::ProcessStart, spawned.elapsed());
    state.send_replace(ProcessState::Ready { pid: Some(pid) });
    tracing::info!(function = %spec.name, pid, port, "process: ready");
    tokio::select! {
        status = child.wait() => Some(match status {
            Ok(status) => exit_text(status),
            Err(e) => e.to_string(),
        }),
        () = until_stopped(stop) => {
            terminate(&mut child, STOP_GRACE).await;
            tracing::info!(function = %spec.name, pid, "process: stopped");
            None
        }
    }
}
