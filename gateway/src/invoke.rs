//! The function request path: admission (body size, concurrency), the call itself, and the
//! accounting around it (call id, metrics, in-flight tracking until the body is fully sent).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use faas_runtime::cgi::CgiRoute;
use faas_runtime::{CallContext, ResponseBody};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prometheus::IntGauge;
use tokio::sync::OwnedSemaphorePermit;

use crate::admission::Rejected;
use crate::body::{Charge, Refused};
use crate::platform::Platform;
use crate::registry::{Entry, Loaded};
use crate::reply::json_error;
use crate::routes::function_path;
use faas_invoke::failure_log::Verdict;

/// How long a client may take to send a request body. The body is read once a concurrency
/// slot is held, so a slow sender holds one of its function's slots for at most this long.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Calls function `entry` with `request`, mounted at `prefix`.
///
/// The concurrency slot comes first, then the body: a function's uploads in memory are
/// bounded by its own `concurrency x maxBodySize` (requests waiting in its queue have read
/// nothing), and all bodies together by the process's [`crate::body::BodyBudget`].
pub async fn call_function(
    platform: &Arc<Platform>,
    entry: Arc<Entry>,
    prefix: &str,
    request: Request<Incoming>,
    call_id: &str,
    local_port: u16,
    remote: Option<std::net::SocketAddr>,
) -> Response<ResponseBody> {
    let name = entry.name().to_owned();
    if entry.function.spec.is_job() {
        return job_not_callable();
    }
    if let Err(not_ready) = loaded(platform, &entry) {
        return *not_ready;
    }
    let permit = match admit(platform, &entry).await {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };

    let (mut parts, body) = request.into_parts();
    let (body, charge) = match read_body(platform, &entry, &parts.headers, body).await {
        Ok(read) => read,
        Err(refused) => return *refused,
    };

    // The function sees the path relative to its mount point; the mount point travels in
    // X-Forwarded-Prefix so it can build absolute links.
    let original_path = parts.uri.path().to_owned();
    let inner_path = function_path(&original_path, prefix);
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{inner_path}?{q}"),
        None => inner_path.clone(),
    };
    parts.uri = match path_and_query.parse() {
        Ok(uri) => uri,
        Err(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "BadPath",
                "request path is not a valid URI",
            );
        }
    };
    // Behind the cluster gateway the client's mount point (a host or path route) is the one
    // the gateway sent, not the `/function/{name}` it used to reach this pod.
    // Anywhere else the mount point is this route's alone: a client's own header would let it
    // choose the links a function builds (and a shared cache keeps).
    let forwarded =
        platform.config.host.behind_gateway && parts.headers.contains_key("x-forwarded-prefix");
    if !forwarded {
        parts.headers.remove("x-forwarded-prefix");
        if !prefix.is_empty()
            && let Ok(value) = HeaderValue::from_str(prefix)
        {
            parts.headers.insert("x-forwarded-prefix", value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(call_id) {
        parts.headers.insert("x-call-id", value);
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map(|(h, _)| h).unwrap_or(h).to_owned())
        .unwrap_or_else(|| "localhost".to_owned());
    parts.extensions.insert(CgiRoute {
        script_name: prefix.to_owned(),
        path_info: if prefix.is_empty() {
            original_path
        } else {
            inner_path.trim_end_matches('/').to_owned()
        },
        server_name: host,
        server_port: local_port,
        remote_addr: remote.map(|r| r.ip().to_string()),
    });
    // A run's own deadline: only a platform caller's header survived `inbound::sort_out`.
    let timeout = parts
        .headers
        .get(faas_api::contract::TIMEOUT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(faas_api::contract::parse_call_timeout);
    // A run of the controller's: its tail goes back with the answer (`run_tail`).
    let tail = crate::run_tail::wanted(&parts.headers);
    let request = Request::from_parts(parts, body);
    let held = Held {
        _permit: permit,
        _charge: charge,
    };
    let response = invoke_admitted(
        platform,
        &entry,
        request,
        CallContext {
            timeout,
            log_tail: tail.clone(),
            ..CallContext::new(call_id, name)
        },
        held,
    )
    .await;
    match tail {
        Some(sink) => crate::run_tail::attach(response, sink).await,
        None => response,
    }
}

/// Reads the body of a call of `entry` within its size limit (`spec.http.maxBodySize`: 413),
/// [`BODY_READ_TIMEOUT`] (408) and the process's body budget (503). The size is decided
/// before any guest code runs, from Content-Length when present and while reading otherwise,
/// so a huge upload costs at most the limit in memory. The [`Charge`] is the budget the body
/// holds: keep it as long as the bytes.
pub async fn read_body(
    platform: &Platform,
    entry: &Entry,
    headers: &http::HeaderMap,
    body: Incoming,
) -> Result<(Bytes, Charge), Box<Response<ResponseBody>>> {
    let name = entry.name();
    let limit = entry.limits.max_body_bytes;
    read_body_within(platform, &entry.key, headers, body, limit, || {
        format!(
            "request body exceeds the limit of {limit} bytes for function {name} (spec.http.maxBodySize)"
        )
    })
    .await
}

/// [`read_body`] with any `limit`, `too_large` saying which limit a 413 is about.
pub async fn read_body_within(
    platform: &Platform,
    name: &str,
    headers: &http::HeaderMap,
    body: Incoming,
    limit: u64,
    too_large: impl FnOnce() -> String,
) -> Result<(Bytes, Charge), Box<Response<ResponseBody>>> {
    let declared = crate::body::declared_length(headers);
    let read = crate::body::read(&platform.bodies, declared, body, limit, BODY_READ_TIMEOUT).await;
    let refused = match read {
        Ok(read) => return Ok(read),
        Err(refused) => refused,
    };
    let (reason, response) = match refused {
        Refused::TooLarge => (
            "body_too_large",
            json_error(StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", &too_large()),
        ),
        Refused::Timeout => (
            "body_timeout",
            json_error(
                StatusCode::REQUEST_TIMEOUT,
                "BodyReadTimeout",
                &format!("the request body did not arrive within {BODY_READ_TIMEOUT:?}"),
            ),
        ),
        Refused::BudgetFull => {
            // Debug, not warn: under a flood a line per refusal would be the next thing to
            // flood; `faas_rejected_total{reason="body_budget"}` counts them.
            tracing::debug!(function = %name, declared, budget = platform.bodies.total(), "request body refused: the body budget is full");
            let mut response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "BodyBudgetExhausted",
                "the gateway holds as many request bodies in memory as it may (--body-budget); retry shortly",
            );
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            ("body_budget", response)
        }
        Refused::Broken(err) => (
            "body_broken",
            json_error(
                StatusCode::BAD_REQUEST,
                "BadRequestBody",
                &format!("could not read the request body: {err}"),
            ),
        ),
    };
    platform
        .metrics
        .rejected
        .with_label_values(&[name, reason])
        .inc();
    Err(Box::new(response))
}

/// The function's serving version, or the 503 that says why there is none.
fn loaded(platform: &Platform, entry: &Entry) -> Result<Arc<Loaded>, Box<Response<ResponseBody>>> {
    match &entry.state {
        Ok(loaded) => Ok(Arc::clone(loaded)),
        Err(reason) => {
            let name = entry.name();
            platform
                .metrics
                .rejected
                .with_label_values(&[entry.key.as_str(), "not_ready"])
                .inc();
            Err(Box::new(json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "FunctionNotReady",
                &format!("function {name} is not ready: {reason}"),
            )))
        }
    }
}

/// A concurrency slot of `entry`, or the 429 that says why not.
async fn admit(
    platform: &Platform,
    entry: &Entry,
) -> Result<OwnedSemaphorePermit, Box<Response<ResponseBody>>> {
    let name = entry.name();
    let why = match entry.admission.admit().await {
        Ok(permit) => return Ok(permit),
        Err(why) => why,
    };
    platform
        .metrics
        .rejected
        .with_label_values(&[entry.key.as_str(), "overloaded"])
        .inc();
    let detail = match why {
        Rejected::QueueFull => "its queue is full",
        Rejected::WaitedTooLong => "no slot freed up in time",
    };
    let mut response = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        &format!(
            "function {name} is at its concurrency limit of {} and {detail}",
            entry.limits.concurrency
        ),
    );
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    Err(Box::new(response))
}

/// Runs one admitted-or-refused call of `entry` with a request whose body is already read:
/// concurrency admission, in-flight accounting, the executor, metrics. HTTP requests and
/// cron/manual runs both come through here, so a run sees exactly what a request sees.
pub async fn invoke(
    platform: &Arc<Platform>,
    entry: &Entry,
    request: Request<Bytes>,
    ctx: CallContext,
) -> Response<ResponseBody> {
    // Cron and runs by hand are the only calls a job takes (an async call, the Invoke API and
    // an SQS batch are not runs).
    if entry.function.spec.is_job() && !ctx.as_run {
        return job_not_callable();
    }
    if let Err(not_ready) = loaded(platform, entry) {
        return *not_ready;
    }
    let permit = match admit(platform, entry).await {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let held = Held {
        _permit: permit,
        _charge: Charge::default(),
    };
    invoke_admitted(platform, entry, request, ctx, held).await
}

/// 409 for a call of a `mode: job` function, which only runs.
pub fn job_not_callable() -> Response<ResponseBody> {
    json_error(
        StatusCode::CONFLICT,
        "JobNotCallable",
        faas_api::contract::JOB_NOT_CALLABLE,
    )
}

/// What an admitted call holds until its response is sent: its concurrency slot and the
/// body budget its request body takes.
struct Held {
    _permit: OwnedSemaphorePermit,
    _charge: Charge,
}

/// The call itself, once admitted.
async fn invoke_admitted(
    platform: &Arc<Platform>,
    entry: &Entry,
    request: Request<Bytes>,
    ctx: CallContext,
    held: Held,
) -> Response<ResponseBody> {
    let name = entry.name().to_owned();
    let loaded = match loaded(platform, entry) {
        Ok(loaded) => loaded,
        Err(not_ready) => return *not_ready,
    };

    // Series and statistics by registry key (see `Entry::key`); messages by name.
    let label = entry.key.as_str();
    let in_flight = platform.metrics.in_flight.with_label_values(&[label]);
    in_flight.inc();
    let guard = InFlight {
        gauge: in_flight,
        _held: held,
    };
    let started = Instant::now();
    let call_id = ctx.call_id.clone();
    let result = loaded.invoker.invoke(ctx, request).await;
    platform
        .metrics
        .duration
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
    let response = match result {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, guard_body(body, guard))
        }
        Err(err) => {
            // At most a few lines a second per function (`failure_log`): the caller, the
            // metrics and the statistics still see every failure.
            if let Verdict::Log { suppressed } = entry.failure_log.admit(Instant::now()) {
                tracing::warn!(function = %name, %call_id, reason = err.reason(), error = %err, suppressed, "invocation failed");
            }
            drop(guard);
            json_error(
                err.status(),
                err.reason(),
                &format!("function {name}: {err}"),
            )
        }
    };
    platform
        .metrics
        .invocations
        .with_label_values(&[label, response.status().as_str()])
        .inc();
    platform.stats.record(
        label,
        response.status().as_u16(),
        started.elapsed(),
        jiff::Timestamp::now().as_second(),
    );
    response
}

/// Holds the concurrency slot, the body's budget and the in-flight gauge until the response
/// body is done.
struct InFlight {
    gauge: IntGauge,
    _held: Held,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// `body`, holding `guard` until it is fully sent or dropped: what is counted while a response
/// streams (a concurrency slot, a backend's in-flight count) stays counted until the end.
pub fn guard_body<G: Send + Unpin + 'static>(body: ResponseBody, guard: G) -> ResponseBody {
    Guarded {
        inner: body,
        _guard: guard,
    }
    .boxed_unsync()
}

struct Guarded<G> {
    inner: ResponseBody,
    _guard: G,
}

impl<G: Unpin> Body for Guarded<G> {
    type Data = Bytes;
    type Error = faas_runtime::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
