//! A function served by pods: the [`Invoker`] of cluster mode. The gateway has already
//! admitted the request (body limit, the function's concurrency); this picks a pod by least
//! in-flight among two chosen at random, holds the request while a function at zero replicas
//! starts, and forwards it.
//!
//! Power of two choices instead of a global least-loaded scan: it is O(1), needs no lock,
//! and with several gateway replicas (each seeing only its own requests) it avoids the herd
//! a deterministic "least loaded" pick makes when every replica picks the same idle pod.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use faas_runtime::process::http::strip_hop_by_hop;
use faas_runtime::{CallContext, InvokeError, Invoker, ResponseBody};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use super::endpoints::{Backend, Backends, ServiceKey};
use super::scaler::ScaleTarget;
use crate::invoke::guard_body;
use crate::reply::json_error;

/// The HTTP client to pods, shared by every function (one connection pool).
pub type PodClient = Client<HttpConnector, Full<Bytes>>;

/// Time to open a connection to a pod before trying another one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Added to the function's timeout while waiting for the answer of a pod that enforces the
/// deadline itself and answers 504 ([`faas_api::contract::Workload::enforces_deadline_in_pod`]):
/// this only catches a pod that never answers. A pod that does not gets no margin.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);
/// `Retry-After` of a 503 when no replica became ready in time.
const RETRY_AFTER_SECONDS: &str = "5";

/// Builds the client to pods.
pub fn pod_client() -> PodClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        // Below the pods' own keep-alive timeout (75 s), so a pooled connection is never
        // one the pod is closing.
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Where a function's pods are and how they expect requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// The Service whose endpoints serve it.
    pub service: ServiceKey,
    /// Put before the path the function sees: `/function/{name}` when the pods run the
    /// platform's router (runtime pools, Lambda sidecars), empty when the Service targets
    /// the function's own HTTP server.
    pub path_prefix: String,
}

impl From<faas_api::contract::Upstream> for Upstream {
    fn from(placed: faas_api::contract::Upstream) -> Self {
        Upstream {
            service: ServiceKey {
                namespace: placed.namespace,
                name: placed.service,
            },
            path_prefix: placed.path_prefix,
        }
    }
}

/// What a request is held for while the function has no ready replica.
pub struct Hold {
    /// Longest wait for a ready replica.
    pub limit: Duration,
    /// Asks for a replica when the gateway owns the function's `replicas`.
    pub scale: Option<Arc<ScaleTarget>>,
}

/// A function served by the pods behind a Service.
pub struct RemoteFunction {
    name: String,
    upstream: Upstream,
    backends: watch::Receiver<Backends>,
    hold: Hold,
    timeout: Duration,
    /// How much longer than the deadline the answer is awaited (see [`ANSWER_MARGIN`]).
    margin: Duration,
    client: PodClient,
}

impl RemoteFunction {
    /// A function named `name` behind `upstream`, whose ready backends `backends` follows;
    /// `timeout` is its own deadline, which its pod enforces too when `pod_enforces_deadline`.
    pub fn new(
        name: String,
        upstream: Upstream,
        backends: watch::Receiver<Backends>,
        hold: Hold,
        timeout: Duration,
        pod_enforces_deadline: bool,
        client: PodClient,
    ) -> Self {
        RemoteFunction {
            name,
            upstream,
            backends,
            hold,
            timeout,
            margin: if pod_enforces_deadline {
                ANSWER_MARGIN
            } else {
                Duration::ZERO
            },
            client,
        }
    }

    /// The ready backends, waiting (and asking for a replica) when there are none.
    async fn ready_backends(&self) -> Option<Backends> {
        let mut backends = self.backends.clone();
        let current = backends.borrow_and_update().clone();
        if !current.is_empty() {
            return Some(current);
        }
        if let Some(scale) = &self.hold.scale {
            scale.wake();
        }
        let held = std::time::Instant::now();
        let wait = async {
            loop {
                if backends.changed().await.is_err() {
                    return None;
                }
                let current = backends.borrow_and_update().clone();
                if !current.is_empty() {
                    return Some(current);
                }
            }
        };
        let ready = tokio::time::timeout(self.hold.limit, wait)
            .await
            .ok()
            .flatten();
        if let (Some(_), Some(scale)) = (&ready, &self.hold.scale) {
            scale.record_from_zero(held.elapsed());
        }
        ready
    }

    fn no_replica(&self) -> Response<ResponseBody> {
        if let Some(scale) = &self.hold.scale {
            scale.record("from_zero_timeout");
        }
        let message = if self.hold.scale.is_some() {
            format!(
                "function {} is starting from zero replicas and none was ready within {}; \
                 retry shortly",
                self.name,
                humantime::format_duration(self.hold.limit)
            )
        } else {
            // The Service's name is for the log, not for callers.
            tracing::info!(function = %self.name, service = %self.upstream.service, "no ready replica");
            format!(
                "function {} has no ready replica after waiting {}",
                self.name,
                humantime::format_duration(self.hold.limit)
            )
        };
        let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, "NoReadyReplica", &message);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        response
    }

    /// The platform's headers on an answer from `backend`. A function's own HTTP server
    /// (no platform router in front: no path prefix) cannot speak for the platform: its
    /// `x-faas-*` headers are dropped, so it can neither forge a run's log tail nor name
    /// another pod to read one from. A run's answer then names the pod that gave it
    /// ([`faas_api::contract::POD_HEADER`]) when there is no tail from a platform router.
    fn platform_headers(&self, headers: &mut http::HeaderMap, run: bool, backend: &Backend) {
        if self.upstream.path_prefix.is_empty() {
            let forged: Vec<http::HeaderName> = headers
                .keys()
                .filter(|name| faas_api::contract::is_platform_header(name.as_str()))
                .cloned()
                .collect();
            for name in forged {
                headers.remove(name);
            }
        } else {
            headers.remove(faas_api::contract::POD_HEADER);
        }
        if run
            && !headers.contains_key(faas_api::contract::LOG_TAIL_HEADER)
            && let Some(value) = backend
                .pod
                .as_deref()
                .and_then(|pod| HeaderValue::from_str(pod).ok())
        {
            headers.insert(faas_api::contract::POD_HEADER, value);
        }
    }

    /// The request as the pod at `addr` gets it.
    fn outbound(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        addr: SocketAddr,
    ) -> Result<Request<Full<Bytes>>, InvokeError> {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let uri = format!("http://{addr}{}{path}", self.upstream.path_prefix);
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(Full::new(body))
            .map_err(|e| InvokeError::BadResponse(format!("cannot forward the request: {e}")))?;
        let headers = request.headers_mut();
        *headers = parts.headers.clone();
        strip_hop_by_hop(headers);
        // The body is complete: `Full` gives its own length.
        headers.remove(header::CONTENT_LENGTH);
        if let Some(host) = parts.headers.get(header::HOST) {
            headers.insert("x-forwarded-host", host.clone());
        }
        if !self.upstream.path_prefix.is_empty() {
            // The pods' router must route by path: a Host of a function's host route would
            // send the request to that function with the wrong path.
            headers.remove(header::HOST);
            // The client's mount point, empty for a host route: the pod keeps it instead of
            // the `/function/{name}` it is reached by.
            if !headers.contains_key("x-forwarded-prefix") {
                headers.insert("x-forwarded-prefix", HeaderValue::from_static(""));
            }
        }
        let route = parts.extensions.get::<faas_runtime::cgi::CgiRoute>();
        if let Some(client) = route.and_then(|r| r.remote_addr.as_deref()) {
            // Every earlier hop, however many header lines they came in, then the client.
            let mut hops: Vec<&str> = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            hops.push(client);
            let forwarded = hops.join(", ");
            if let Ok(value) = HeaderValue::from_str(&forwarded) {
                headers.insert("x-forwarded-for", value);
            }
        }
        Ok(request)
    }
}

impl Invoker for RemoteFunction {
    fn invoke(
        &self,
        ctx: CallContext,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, InvokeError>> + Send + '_>>
    {
        Box::pin(async move {
            // A run's own timeout (a schedule's) replaces the function's, here and in the pod,
            // which reads it from the same header.
            let timeout = ctx.timeout_or(self.timeout);
            let activity = self.hold.scale.as_ref().map(|s| s.activity().start());
            let Some(backends) = self.ready_backends().await else {
                return Ok(self.no_replica());
            };
            let (mut parts, body) = request.into_parts();
            // Believed only from the platform (`crate::inbound` drops a client's own).
            let run = parts
                .headers
                .contains_key(faas_api::contract::RUN_ID_HEADER);
            parts.headers.remove(faas_api::contract::TIMEOUT_HEADER);
            if let Some(run_timeout) = ctx.timeout
                && let Ok(value) =
                    HeaderValue::from_str(&faas_api::contract::call_timeout_value(run_timeout))
            {
                parts
                    .headers
                    .insert(faas_api::contract::TIMEOUT_HEADER, value);
            }
            let mut refused: Option<SocketAddr> = None;
            loop {
                let Some(backend) = choose(&backends, refused) else {
                    return Err(InvokeError::Unavailable(format!(
                        "no pod of {} accepted a connection",
                        self.upstream.service
                    )));
                };
                let counted = backend.start();
                let request = self.outbound(&parts, body.clone(), backend.addr)?;
                let answer =
                    tokio::time::timeout(timeout + self.margin, self.client.request(request)).await;
                match answer {
                    Err(_) => return Err(InvokeError::Timeout(timeout)),
                    Ok(Ok(response)) => {
                        let (mut parts, body) = response.into_parts();
                        strip_hop_by_hop(&mut parts.headers);
                        self.platform_headers(&mut parts.headers, run, &backend);
                        let body = body.map_err(faas_runtime::BoxError::from).boxed_unsync();
                        return Ok(Response::from_parts(
                            parts,
                            guard_body(body, (counted, activity)),
                        ));
                    }
                    // Nothing reached the pod: another one may take it (a pod that just
                    // died, before its endpoint turned not-ready).
                    Ok(Err(e)) if e.is_connect() && refused.is_none() && backends.len() > 1 => {
                        tracing::debug!(function = %self.name, pod = %backend.addr, error = %e, "connection refused; trying another pod");
                        refused = Some(backend.addr);
                    }
                    Ok(Err(e)) if e.is_connect() => {
                        return Err(InvokeError::Unavailable(format!(
                            "cannot connect to {} ({}): {e}",
                            backend.addr, self.upstream.service
                        )));
                    }
                    Ok(Err(e)) => {
                        return Err(InvokeError::ProcessFailed(format!(
                            "pod {} of {}: {e}",
                            backend.addr, self.upstream.service
                        )));
                    }
                }
            }
        })
    }

    fn status(&self) -> Option<serde_json::Value> {
        let backends = self.backends.borrow().clone();
        Some(serde_json::json!({
            "service": self.upstream.service.to_string(),
            "readyPods": backends.len(),
            "inFlight": backends.iter().map(|b| b.in_flight()).sum::<usize>(),
            "scaledByGateway": self.hold.scale.is_some(),
        }))
    }

    fn readiness(&self) -> Result<(), String> {
        if self.backends.borrow().is_empty() {
            Err(format!("no ready pod behind {}", self.upstream.service))
        } else {
            Ok(())
        }
    }
}

/// Least in-flight of two backends picked at random (never `skip` when there is another).
pub fn choose(backends: &Backends, skip: Option<SocketAddr>) -> Option<Arc<Backend>> {
    let candidates: Vec<&Arc<Backend>> = backends.iter().filter(|b| Some(b.addr) != skip).collect();
    match candidates.as_slice() {
        [] => None,
        [only] => Some(Arc::clone(only)),
        many => {
            let n = many.len() as u64;
            let first = random() % n;
            // A second index different from the first.
            let second = (first + 1 + random() % (n - 1)) % n;
            let (a, b) = (many[first as usize], many[second as usize]);
            Some(Arc::clone(if b.in_flight() < a.in_flight() {
                b
            } else {
                a
            }))
        }
    }
}

/// A fast, good-enough random number (splitmix64 over a shared counter): the choice only
/// needs to be spread, not unpredictable.
fn random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: usize) -> Backends {
        (0..n)
            .map(|i| {
                let addr: SocketAddr = format!("10.0.0.{}:80", i + 1).parse().expect("addr");
                Arc::new(Backend::new(addr, None))
            })
            .collect::<Vec<_>>()
            .into()
    }

    #[test]
    fn two_choices_prefer_the_less_busy_pod() {
        let all = backends(2);
        let _busy: Vec<_> = (0..3).map(|_| all[0].start()).collect();
        // With two pods both are always the candidates: the idle one wins every time.
        for _ in 0..50 {
            assert_eq!(choose(&all, None).expect("one").addr, all[1].addr);
        }
    }

    #[test]
    fn load_spreads_and_a_refused_pod_is_skipped() {
        let all = backends(4);
        let mut held = Vec::new();
        for _ in 0..400 {
            let pick = choose(&all, None).expect("one");
            held.push(pick.start());
        }
        let counts: Vec<usize> = all.iter().map(|b| b.in_flight()).collect();
        // Least-in-flight keeps every pod within a couple of requests of the others.
        let (min, max) = (counts.iter().min(), counts.iter().max());
        assert!(
            max.zip(min).is_some_and(|(max, min)| max - min <= 2),
            "{counts:?}"
        );
        for _ in 0..50 {
            assert_ne!(
                choose(&all, Some(all[2].addr)).expect("one").addr,
                all[2].addr
            );
        }
        assert!(choose(&backends(1), Some("10.0.0.1:80".parse().expect("addr"))).is_none());
        assert!(choose(&backends(0), None).is_none());
    }
}
