//! The HTTP server: dispatch by route, `X-Call-Id` on every response, and graceful shutdown
//! (stop accepting, drain in-flight requests within the grace period).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use faas_runtime::ResponseBody;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::platform::Platform;
use crate::reply::{json_error, with_type, withhold_detail};
use crate::routes::{Audience, Route, route_for};

/// Time allowed for a request head, idle keep-alive included (see `serve`).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(75);

/// Which routes a listener answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// Everything (local mode, runtime pods).
    All,
    /// What a load balancer may reach: functions (not the private ones: `spec.http.public:
    /// false`), their async calls, `/healthz`, `/readyz`. The cluster gateway's public
    /// listener: its management is the Kubernetes API.
    Public,
    /// The in-cluster listener, never behind the load balancer: every function, private ones
    /// included, by `/function/...`, `/async-function/...` and path prefixes (not by host:
    /// in-cluster callers address the gateway's Service), and the platform's own pages:
    /// `/system` (read-only in a cluster), `/ui`, `/metrics`, `/healthz`, `/readyz`.
    Admin,
}

impl Exposure {
    /// Whether this listener answers `route`.
    pub fn answers(self, route: &Route<'_>) -> bool {
        match (self, route) {
            (Exposure::All, _) => true,
            (_, Route::Health | Route::Ready | Route::NotFound) => true,
            // Never the Lambda Invoke API: who may invoke is who reaches the admin listener.
            (Exposure::Public, route) => matches!(
                route,
                Route::Function { .. } | Route::AsyncFunction { .. } | Route::Webhook { .. }
            ),
            (Exposure::Admin, _) => true,
        }
    }

    /// Who asks through this listener.
    pub fn audience(self) -> Audience {
        match self {
            Exposure::Public => Audience::Public,
            Exposure::All | Exposure::Admin => Audience::Internal,
        }
    }
}

/// Serves until `shutdown` resolves, then drains. Returns when every connection is closed or
/// the grace period is over.
pub async fn serve(
    listener: TcpListener,
    platform: Arc<Platform>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_exposed(listener, platform, Exposure::All, shutdown).await
}

/// [`serve`], answering only the routes of `exposure` (404 for the others).
pub async fn serve_exposed(
    listener: TcpListener,
    platform: Arc<Platform>,
    exposure: Exposure,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local_port = listener.local_addr()?.port();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Tells connections still waiting for their first byte that the server is closing.
    let (closing, _) = tokio::sync::watch::channel(false);
    let ids = Arc::new(CallIds::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let platform = Arc::clone(&platform);
        let ids = Arc::clone(&ids);
        let service = service_fn(move |request| {
            let platform = Arc::clone(&platform);
            // Behind the cluster gateway, the call id it gave the client is the call's id; the
            // platform's own callers on the admin listener name theirs (a run's id), so the
            // function's log lines carry the id its run record has.
            let from_platform = crate::inbound::is_platform(
                exposure,
                platform.config.platform_token.as_deref(),
                request.headers(),
            );
            let keeps_id = platform.config.host.behind_gateway
                || (exposure == Exposure::Admin && from_platform);
            let call_id = keeps_id
                .then(|| forwarded_call_id(&request))
                .flatten()
                .unwrap_or_else(|| ids.next());
            // Boxed: hyper keeps room for the service's future in every connection, in use or
            // not, and the whole request path's future is about 20 KiB (heaptrack: 20.7 KiB of
            // every idle keep-alive connection's 33); a box is 8 bytes until a request comes.
            Box::pin(async move {
                Ok::<_, Infallible>(
                    dispatch(
                        &platform,
                        exposure,
                        from_platform,
                        request,
                        &call_id,
                        local_port,
                        Some(remote),
                    )
                    .await,
                )
            })
        });
        let watcher = graceful.watcher();
        let mut closed = closing.subscribe();
        tokio::spawn(async move {
            // hyper's buffers and state (16 to 18 KiB) are made once the connection has
            // something to read: until its first request, an open connection holds only its
            // socket and this task. The wait is bounded as hyper bounds a request head's (so
            // a silent client holds a connection at most twice that, at this small cost).
            // A peek, not `readable()`, whose readiness may be a false positive: it waits for a
            // first byte (or the end of the stream, which ends the connection).
            let mut first = [0u8; 1];
            tokio::select! {
                peeked = stream.peek(&mut first) => if !matches!(peeked, Ok(1..)) {
                    return;
                },
                () = tokio::time::sleep(HEADER_READ_TIMEOUT) => return,
                _ = closed.wait_for(|closing| *closing) => return,
            }
            // Bounds how long a connection may sit before a complete request head arrives
            // (slowloris). hyper starts this clock when it waits for the next request, so it
            // is also the idle keep-alive timeout: it must exceed the ALB's idle timeout (60 s
            // by default), or the ALB reuses connections we just closed and answers 502.
            // Bodies are bounded by `invoke::BODY_READ_TIMEOUT`.
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection).await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    // Closing the listener refuses new connections at once; in-flight requests go on, and
    // connections that never sent a byte are closed.
    drop(listener);
    closing.send_replace(true);
    platform.set_draining();
    let grace = platform.config.shutdown_grace;
    tracing::info!(grace = ?grace, "shutting down: draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}

/// Routes one request and stamps it with its call id; `from_platform` says whether its caller
/// is the platform itself (`inbound::is_platform`), whose `x-faas-*` headers are kept.
pub async fn dispatch(
    platform: &Arc<Platform>,
    exposure: Exposure,
    from_platform: bool,
    mut request: Request<Incoming>,
    call_id: &str,
    local_port: u16,
    remote: Option<SocketAddr>,
) -> Response<ResponseBody> {
    crate::request_host::from_target(&mut request);
    let routes = platform.registry.routes();
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let path = request.uri().path().to_owned();
    let audience = exposure.audience();
    let route = match (exposure, path.as_str()) {
        (Exposure::All, _) => route_for(&routes, host.as_deref(), &path, audience),
        // The probes of a load balancer or the kubelet (Host: the pod's IP) must reach the
        // platform whatever host routes functions declare.
        (Exposure::Public, "/healthz") | (Exposure::Admin, "/healthz") => Route::Health,
        (Exposure::Public, "/readyz") | (Exposure::Admin, "/readyz") => Route::Ready,
        (Exposure::Public, _) => route_for(&routes, host.as_deref(), &path, audience),
        // In-cluster callers address the gateway's Service: host routes do not apply there.
        (Exposure::Admin, _) => route_for(&routes, None, &path, audience),
    };
    // Errors the platform makes while serving a function keep their detail only in local
    // mode (the developer's own machine); callers elsewhere get the reason (see `reply`).
    let serves_function = matches!(
        route,
        Route::Function { .. } | Route::AsyncFunction { .. } | Route::NotFound
    );
    let withhold = serves_function && !platform.config.host.shows_error_detail;
    if serves_function
        && let crate::inbound::Caller::Outside { removed } =
            crate::inbound::sort_out(from_platform, request.headers_mut())
        && removed > 0
    {
        tracing::debug!(removed, path = %path, "removed platform headers a caller sent");
    }
    let mut response = match route {
        _ if !exposure.answers(&route) => json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!(
                "nothing is routed at {path} on this listener{}",
                match exposure {
                    Exposure::Public => " (the platform's own pages are on the admin listener)",
                    _ => "",
                }
            ),
        ),
        // A private function does not exist for the public: the same 404 as an unknown one.
        Route::AsyncFunction { name, prefix } | Route::Function { name, prefix }
            if !routes.reaches(name, audience) =>
        {
            function_not_found(prefix, name)
        }
        Route::AsyncFunction { name, prefix } => {
            let prefix = prefix.to_owned();
            crate::async_call::accept(platform, name, &prefix, request, call_id).await
        }
        Route::Function { name, prefix } => match platform.registry.get(name) {
            Some(entry) => {
                let prefix = prefix.to_owned();
                crate::invoke::call_function(
                    platform, entry, &prefix, request, call_id, local_port, remote,
                )
                .await
            }
            None => function_not_found(prefix, name),
        },
        Route::Webhook { name } => crate::webhook::serve(platform, name, request).await,
        Route::LambdaInvoke { function } => {
            crate::lambda_api::handle(platform, function, request, call_id, local_port).await
        }
        // A local process asking for its role's credentials: the token is the proof.
        Route::System if path == crate::process_credentials::PATH => platform
            .process_credentials
            .serve(remote, request.headers()),
        Route::System | Route::Ui
            if let Err(refused) = crate::guard::admit(
                &platform.config,
                remote,
                request.method(),
                request.headers(),
            ) =>
        {
            refused.response()
        }
        Route::System => crate::management::handle(platform, request).await,
        // Runtime pods serve functions only: in a cluster the dashboard belongs on the
        // gateway's admin listener, never on a pod a load balancer reaches.
        Route::Ui if !platform.config.host.has_dashboard => json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no dashboard in a runtime pod",
        ),
        Route::Ui => crate::ui::handle(platform, &request).await,
        Route::Health => with_type(StatusCode::OK, "text/plain", "ok\n"),
        Route::Ready => match platform.readiness() {
            Ok(()) => with_type(StatusCode::OK, "text/plain", "ready\n"),
            Err(why) => with_type(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        Route::Metrics => with_type(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            platform.metrics.render(),
        ),
        Route::NotFound => json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("nothing is routed at {path}; functions live under /function/{{name}}"),
        ),
    };
    if withhold {
        response = withhold_detail(response, call_id);
    }
    if let Ok(value) = HeaderValue::from_str(call_id) {
        response.headers_mut().insert("x-call-id", value);
    }
    response
}

/// The 404 of `/function/{name}` (or `/async-function/{name}`) that leads nowhere: unknown,
/// or private on this listener; the name as the caller wrote it (the key for a host route).
fn function_not_found(prefix: &str, key: &str) -> Response<ResponseBody> {
    let name = prefix
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(key);
    json_error(
        StatusCode::NOT_FOUND,
        "FunctionNotFound",
        &format!("function {name} not found"),
    )
}

/// The `X-Call-Id` the cluster gateway set, when it is a plausible id.
fn forwarded_call_id<B>(request: &Request<B>) -> Option<String> {
    let id = request.headers().get("x-call-id")?.to_str().ok()?;
    (!id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
    .then(|| id.to_owned())
}

/// Call ids: unique per process start and cheap (no randomness per request).
struct CallIds {
    prefix: String,
    counter: AtomicU64,
}

impl CallIds {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self {
            prefix: format!(
                "{:08x}{:04x}",
                (nanos >> 16) as u32,
                std::process::id() as u16
            ),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        format!(
            "{}-{:08x}",
            self.prefix,
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Exposure;
    use crate::routes::Route;

    #[test]
    fn the_public_listener_answers_functions_only() {
        let function = Route::Function {
            name: "a",
            prefix: "/function/a",
        };
        let queued = Route::AsyncFunction {
            name: "a",
            prefix: "/async-function/a",
        };
        for route in [&function, &queued, &Route::Health, &Route::Ready] {
            assert!(Exposure::Public.answers(route), "{route:?}");
            assert!(Exposure::All.answers(route), "{route:?}");
        }
        for route in [&Route::System, &Route::Ui, &Route::Metrics] {
            assert!(!Exposure::Public.answers(route), "{route:?}");
            assert!(Exposure::Admin.answers(route), "{route:?}");
        }
        // In-cluster callers reach functions on the admin listener.
        assert!(Exposure::Admin.answers(&function));
        assert!(Exposure::Admin.answers(&queued));
        assert_eq!(Exposure::Public.audience(), crate::routes::Audience::Public);
        assert_eq!(
            Exposure::Admin.audience(),
            crate::routes::Audience::Internal
        );
    }
}
