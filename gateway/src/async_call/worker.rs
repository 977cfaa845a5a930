//! The consumer of async calls: receive, invoke through the platform's own path (admission,
//! scale from zero, metrics), then complete, retry with backoff, or dead-letter; tell the
//! caller's callback URL how it ended.
//!
//! A 2xx-4xx answer is the function's answer and final (a 4xx will not get better by
//! retrying); a 429, a 5xx or no answer is a failure and retried until the attempt limit.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use faas_api::backoff::Backoff;
use faas_api::contract;
use faas_runtime::CallContext;
use faas_runtime::cgi::CgiRoute;
use faas_runtime::target::read_bounded;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use tokio::sync::{Semaphore, watch};

use super::queue::{AsyncCall, AsyncQueue, Delivery};
use crate::platform::Platform;

/// Largest function answer forwarded to a callback.
const MAX_CALLBACK_BODY: usize = 1 << 20;
/// Longest a callback may take.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How the worker retries.
#[derive(Clone, Debug)]
pub struct AsyncSettings {
    /// Attempts before a call is dead-lettered (the first included).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each next one.
    pub retry_base: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// Calls invoked at once by this process.
    pub concurrency: usize,
    /// Whether callbacks may go to loopback and private addresses. Off in a cluster, where
    /// anyone who can reach the ALB names the URL (the gateway must not be their way into
    /// the VPC); on in local mode, where the callback is usually a local listener.
    pub internal_callbacks: bool,
}

impl Default for AsyncSettings {
    fn default() -> Self {
        AsyncSettings {
            max_attempts: 3,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            concurrency: 32,
            internal_callbacks: false,
        }
    }
}

impl AsyncSettings {
    /// Delay after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        faas_api::backoff::exponential(self.retry_base, attempt, self.retry_max)
    }
}

/// A running consumer.
pub struct Worker {
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Starts consuming `queue` for `platform`.
    pub fn start(
        platform: &Arc<Platform>,
        queue: Arc<dyn AsyncQueue>,
        settings: AsyncSettings,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let platform = Arc::downgrade(platform);
        let done = tokio::spawn(consume(platform, queue, settings, stopped));
        Worker { stop, done }
    }

    /// Stops receiving; calls in flight get `grace` to finish. A call cut off is delivered
    /// again later (its lease or visibility timeout runs out), never lost.
    pub async fn shutdown(self, grace: Duration) {
        self.stop.send_replace(true);
        if tokio::time::timeout(grace, self.done).await.is_err() {
            tracing::warn!(
                "async calls still running after the grace period; they will be delivered again"
            );
        }
    }
}

async fn consume(
    platform: Weak<Platform>,
    queue: Arc<dyn AsyncQueue>,
    settings: AsyncSettings,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    // A call names a function the registry must know: before the first list of functions
    // is in, a call would look like one for a deleted function.
    loop {
        match platform.upgrade() {
            Some(p) if p.is_ready() => break,
            Some(_) => {}
            None => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stopped.changed() => return,
        }
    }
    tracing::info!(queue = %queue.describe(), max_attempts = settings.max_attempts, "async calls: consuming");
    loop {
        if *stopped.borrow() {
            break;
        }
        let free = slots.available_permits().clamp(1, 10);
        // Wait for a free slot before receiving: a received call waiting here would use
        // up its visibility timeout doing nothing.
        let Ok(first) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let received = tokio::select! {
            received = queue.receive(free, Duration::from_secs(20)) => received,
            _ = stopped.changed() => break,
        };
        let deliveries = match received {
            Ok(deliveries) => deliveries,
            Err(e) => {
                tracing::warn!(queue = %queue.describe(), error = %e, "async calls: receive failed; retrying");
                drop(first);
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        let mut first = Some(first);
        for delivery in deliveries {
            let permit = match first.take() {
                Some(permit) => permit,
                None => match Arc::clone(&slots).acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let (platform, queue, settings) =
                (platform.clone(), Arc::clone(&queue), settings.clone());
            tokio::spawn(async move {
                let _permit = permit;
                handle(&platform, queue.as_ref(), &settings, delivery).await;
            });
        }
    }
    // Every slot back: every call in flight finished.
    let _ = slots
        .acquire_many(u32::try_from(settings.concurrency.max(1)).unwrap_or(u32::MAX))
        .await;
}

/// One delivery, from invocation to its settlement in the queue.
pub(crate) async fn handle(
    platform: &Weak<Platform>,
    queue: &dyn AsyncQueue,
    settings: &AsyncSettings,
    delivery: Delivery,
) {
    let call = match &delivery.call {
        Ok(call) => call.clone(),
        Err(why) => {
            tracing::warn!(reason = %why, "async calls: a message that is not a call; dead-lettered");
            settle(queue, &delivery, Settle::Dead(why.clone())).await;
            return;
        }
    };
    if delivery.attempt > settings.max_attempts {
        // Delivered again after its last attempt (a settlement that did not reach the
        // queue): never run a call more often than the limit says.
        let reason = format!(
            "delivered {} times, more than the {} attempts allowed",
            delivery.attempt, settings.max_attempts
        );
        settle(queue, &delivery, Settle::Dead(reason)).await;
        return;
    }
    let Some(platform) = platform.upgrade() else {
        return;
    };
    // Keep the call invisible to other consumers while it runs, however long it takes.
    let lease = queue.lease();
    let extending = async {
        let half = lease / 2;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + half, half);
        loop {
            ticks.tick().await;
            if let Err(e) = queue.extend(&delivery, lease).await {
                tracing::warn!(call_id = %call.call_id, error = %e, "async calls: cannot extend the call's visibility");
            }
        }
    };
    let limit = platform
        .registry
        .get(&call.function)
        .map_or(Duration::ZERO, |e| e.limits.timeout)
        + INVOKE_MARGIN;
    let invoked = tokio::select! {
        invoked = tokio::time::timeout(limit, invoke(&platform, &call, delivery.attempt)) => invoked.ok(),
        () = extending => None,
    };
    let (status, headers, body) = invoked.unwrap_or_else(|| {
        let body = format!(
            "no complete answer within {}",
            humantime::format_duration(limit)
        );
        (
            StatusCode::GATEWAY_TIMEOUT,
            http::HeaderMap::new(),
            Bytes::from(body),
        )
    });
    let failed = status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        // Not in the registry: deleted or renamed. Retried (it may come back), then
        // dead-lettered, never dropped.
        || headers.contains_key(NOT_FOUND_MARK);
    let last = delivery.attempt >= settings.max_attempts;
    let outcome = match (failed, last) {
        (false, _) => "succeeded",
        (true, false) => "retried",
        (true, true) => "dead_lettered",
    };
    platform
        .metrics
        .async_calls
        .with_label_values(&[call.function.as_str(), outcome])
        .inc();
    tracing::info!(function = %call.function, call_id = %call.call_id, attempt = delivery.attempt, status = status.as_u16(), outcome, "async call");
    if failed && !last {
        let delay = settings.backoff(delivery.attempt);
        settle(queue, &delivery, Settle::Retry(delay)).await;
        return;
    }
    if let Some(url) = &call.callback_url {
        let sent = tokio::time::timeout(
            CALLBACK_TIMEOUT,
            callback(
                url,
                &call,
                delivery.attempt,
                status,
                &headers,
                body,
                settings.internal_callbacks,
            ),
        )
        .await
        .map_or_else(
            |_| Err("timed out".to_owned()),
            |sent| sent.map_err(|e| e.to_string()),
        );
        // The URL may carry a token (query, user info): logs get scheme, host and path.
        let url = redacted(url);
        match sent {
            Ok(code) if (200..300).contains(&code) => {}
            Ok(code) => {
                tracing::warn!(call_id = %call.call_id, %url, code, "async callback refused");
                platform
                    .metrics
                    .async_calls
                    .with_label_values(&[call.function.as_str(), "callback_failed"])
                    .inc();
            }
            Err(why) => {
                tracing::warn!(call_id = %call.call_id, %url, reason = %why, "async callback failed");
                platform
                    .metrics
                    .async_calls
                    .with_label_values(&[call.function.as_str(), "callback_failed"])
                    .inc();
            }
        }
    }
    let settlement = if failed {
        Settle::Dead(format!(
            "failed {} attempt(s); last answer {}",
            delivery.attempt,
            status.as_u16()
        ))
    } else {
        Settle::Done
    };
    settle(queue, &delivery, settlement).await;
}

enum Settle {
    Done,
    Retry(Duration),
    Dead(String),
}

/// How many times a settlement the queue refuses is tried (a full disk, a network blip), the
/// waits growing from [`SETTLE_FIRST_WAIT`] to [`SETTLE_MAX_WAIT`] (about 16 s in all). Without
/// them a call that ran would wait out its lease (15 minutes on SQLite) and run again for want
/// of one write. After the last try the lease or visibility timeout brings it back: at least
/// once, never lost. A shutdown's grace period bounds the tries too.
const SETTLE_TRIES: u32 = 8;
const SETTLE_FIRST_WAIT: Duration = Duration::from_millis(200);
const SETTLE_MAX_WAIT: Duration = Duration::from_secs(5);

async fn settle(queue: &dyn AsyncQueue, delivery: &Delivery, settlement: Settle) {
    let mut waits = Backoff::new(SETTLE_FIRST_WAIT, SETTLE_MAX_WAIT);
    loop {
        let result = match &settlement {
            Settle::Done => queue.complete(delivery).await,
            Settle::Retry(delay) => queue.retry(delivery, *delay).await,
            Settle::Dead(reason) => queue.dead_letter(delivery, reason).await,
        };
        let Err(e) = result else {
            if waits.failures() > 0 {
                tracing::info!(queue = %queue.describe(), tries = waits.failures() + 1, "async calls: a call settled after the queue refused it");
            }
            return;
        };
        if waits.failures() + 1 >= SETTLE_TRIES {
            tracing::warn!(queue = %queue.describe(), error = %e, tries = SETTLE_TRIES, "async calls: cannot settle a call; it will be delivered again");
            return;
        }
        let wait = waits.fail();
        tracing::warn!(queue = %queue.describe(), error = %e, retry_in = ?wait, "async calls: cannot settle a call; trying again");
        tokio::time::sleep(wait).await;
    }
}

/// Added to the function's timeout for the whole of one attempt (a hold while a replica
/// starts, reading the answer): past it the attempt failed.
const INVOKE_MARGIN: Duration = Duration::from_secs(60);
/// Marks the answer made up when the function is not in the registry.
const NOT_FOUND_MARK: &str = "x-faas-function-missing";

/// `scheme://host/path` of a URL, without user info or query.
fn redacted(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("?"),
            uri.host().unwrap_or("?"),
            uri.path()
        ),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// Calls the function; its status, headers and (bounded) body.
async fn invoke(
    platform: &Arc<Platform>,
    call: &AsyncCall,
    attempt: u32,
) -> (StatusCode, http::HeaderMap, Bytes) {
    let Some(entry) = platform.registry.get(&call.function) else {
        let body = format!("function {} not found (deleted?)", call.function);
        let mut headers = http::HeaderMap::new();
        headers.insert(NOT_FOUND_MARK, HeaderValue::from_static("1"));
        return (StatusCode::NOT_FOUND, headers, Bytes::from(body));
    };
    let request = Request::builder()
        .method(call.method.as_str())
        .uri(call.path.as_str())
        .body(call.body.clone());
    let mut request = match request {
        Ok(request) => request,
        Err(e) => {
            let body = format!("the queued call is not a valid request: {e}");
            return (
                StatusCode::BAD_REQUEST,
                http::HeaderMap::new(),
                Bytes::from(body),
            );
        }
    };
    let headers = request.headers_mut();
    for (name, value) in &call.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    // The platform's own headers replace whatever a caller sent under those names.
    let own = [
        ("x-call-id", call.call_id.clone()),
        (contract::ASYNC_HEADER, "true".to_owned()),
        (contract::ATTEMPT_HEADER, attempt.to_string()),
    ];
    for (name, value) in own {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    let mount = format!("/function/{}", call.function);
    request.extensions_mut().insert(CgiRoute {
        script_name: mount,
        path_info: call.path.split('?').next().unwrap_or("/").to_owned(),
        server_name: "localhost".to_owned(),
        server_port: 0,
        remote_addr: None,
    });
    let ctx = CallContext::new(call.call_id.clone(), call.function.clone());
    let response = crate::invoke::invoke(platform, &entry, request, ctx).await;
    let (parts, body) = response.into_parts();
    let read = read_bounded(body, MAX_CALLBACK_BODY).await;
    (parts.status, parts.headers, read.kept)
}

/// POSTs the function's answer to the caller's callback URL.
async fn callback(
    url: &str,
    call: &AsyncCall,
    attempt: u32,
    status: StatusCode,
    headers: &http::HeaderMap,
    body: Bytes,
    internal: bool,
) -> Result<u16, faas_outbound::PostError> {
    let value = |v: &str| HeaderValue::from_str(v).ok();
    let mut sent = vec![
        (HeaderName::from_static("x-call-id"), value(&call.call_id)),
        (
            HeaderName::from_static("x-function-name"),
            value(&call.function),
        ),
        (
            HeaderName::from_static("x-function-status"),
            value(status.as_str()),
        ),
        (
            HeaderName::from_static(contract::ATTEMPTS_HEADER),
            value(&attempt.to_string()),
        ),
    ];
    if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
        sent.push((http::header::CONTENT_TYPE, Some(content_type.clone())));
    }
    faas_outbound::post_to(url, sent, body, "faas-async", internal).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_settlement_the_queue_refuses_for_a_while_is_tried_again() {
        use crate::async_call::sqlite::SqliteQueue;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("async.db");
        let queue = SqliteQueue::open(&path).expect("open");
        let call = AsyncCall {
            call_id: "c1".into(),
            function: "f".into(),
            method: "POST".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: bytes::Bytes::from_static(b"x"),
            callback_url: None,
            accepted_at: "2026-12-07T00:00:00Z".into(),
        };
        queue.send(&call).await.expect("send");
        let delivery = queue
            .receive(1, Duration::ZERO)
            .await
            .expect("receive")
            .pop()
            .expect("a delivery");
        // The store refuses to delete (standing for a full disk) until the test lets it.
        let other = rusqlite::Connection::open(&path).expect("open");
        other
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE DELETE ON async_calls
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            )
            .expect("trigger");
        let settling = settle(&queue, &delivery, Settle::Done);
        let freeing = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            other
                .execute_batch("DROP TRIGGER refuse")
                .expect("drop trigger");
        };
        tokio::join!(settling, freeing);
        assert_eq!(queue.pending().await.expect("pending"), 0, "settled");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = AsyncSettings {
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(10),
            ..AsyncSettings::default()
        };
        let delays: Vec<u64> = (1..=5).map(|a| s.backoff(a).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 10, 10]);
    }
}
