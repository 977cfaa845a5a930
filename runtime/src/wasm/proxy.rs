//! Serving one request with a `wasi:http/proxy` component: fresh store, fresh instance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use super::WasmFunction;
use super::sandbox::{self, MemoryCap, ProxyState};
use crate::guest_log::{GuestLog, Stream};
use crate::outbound::OutboundHooks;
use crate::{BoxError, CallContext, InvokeError, ResponseBody};
use faas_invoke::failure_log::Verdict;

/// How long past the deadline the host waits for a guest stuck in a host call (where epoch
/// interruption cannot reach it) before dropping the instance.
const HOST_CALL_GRACE: Duration = Duration::from_millis(100);

pub(super) async fn invoke(
    function: &WasmFunction,
    pre: &ProxyPre<ProxyState>,
    slot: super::share::Held,
    ctx: CallContext,
    request: http::Request<Bytes>,
) -> Result<http::Response<ResponseBody>, InvokeError> {
    let (runtime, settings) = (&function.runtime, &function.settings);
    let log_rate = Arc::clone(&function.log_rate);
    let failures = Arc::clone(&function.failures);
    let log = GuestLog::new(
        Arc::clone(&settings.name),
        ctx.call_id.as_str().into(),
        runtime.config.log_budget,
    )
    .with_sink(ctx.log_tail.clone())
    .with_run_log(ctx.run_log.clone())
    .with_rate(log_rate);
    let mut builder = sandbox::wasi_builder(settings)?;
    builder
        .stdout(log.writer(Stream::Stdout))
        .stderr(log.writer(Stream::Stderr));
    let (limits, memory_exceeded) = MemoryCap::new(settings.limits.memory_bytes);
    // Host-side state the guest makes us hold is bounded too: handles, and header maps.
    let mut table = ResourceTable::new();
    table.set_max_capacity(runtime.config.max_host_resources);
    let mut http = WasiHttpCtx::new();
    http.set_field_size_limit(runtime.config.max_header_bytes);
    let state = ProxyState {
        wasi: builder.build(),
        http,
        table,
        limits,
        hooks: OutboundHooks::new(Arc::clone(&settings.outbound), Arc::clone(&settings.name)),
        _slot: slot,
    };
    let mut store = runtime.new_store(state);
    store.limiter(|s| &mut s.limits);
    let timeout = ctx.timeout_or(settings.limits.timeout);
    let deadline = Instant::now() + timeout;
    sandbox::arm_deadline(&mut store, deadline);

    let request = with_authority(request);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let setup = |e: wasmtime::Error| InvokeError::Instantiate(format!("{e:#}"));
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request.map(Full::new))
        .map_err(setup)?;
    let outparam = store
        .data_mut()
        .http()
        .new_response_outparam(tx)
        .map_err(setup)?;

    let pre = pre.clone();
    let observer = Arc::clone(runtime);
    let function = Arc::clone(&settings.name);
    // The guest runs in its own task because it keeps writing the body after it has handed
    // over the response head; the store lives exactly as long as that task.
    let mut task = sandbox::GuestTask::spawn(async move {
        let started = Instant::now();
        let proxy = pre.instantiate_async(&mut store).await?;
        observer.observe_instantiate(&function, started.elapsed());
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, outparam)
            .await
    });

    let hard_deadline = tokio::time::Instant::from_std(deadline + HOST_CALL_GRACE);
    let head = tokio::select! {
        head = rx => head,
        _ = tokio::time::sleep_until(hard_deadline) => {
            task.abort();
            log.finish();
            return Err(InvokeError::Timeout(timeout));
        }
    };
    match head {
        Ok(Ok(response)) => {
            // Let the body finish streaming under the same deadline, then account for it.
            let settings = Arc::clone(settings);
            // From here the body stream owns the guest: it ends with the body or the deadline.
            let mut task = task.detach();
            tokio::spawn(async move {
                match tokio::time::timeout_at(hard_deadline, &mut task).await {
                    Ok(Ok(Ok(()))) => {}
                    // A few lines a second per function (`faas_invoke::failure_log`): a guest
                    // failing this way on every call must not fill the shared log.
                    Ok(Ok(Err(err))) => {
                        let err = sandbox::classify(err, &settings, timeout, &memory_exceeded);
                        if let Verdict::Log { suppressed } = failures.admit(Instant::now()) {
                            tracing::warn!(function = %settings.name, call_id = %ctx.call_id, error = %err, suppressed, "function failed after sending its response head");
                        }
                    }
                    Ok(Err(join)) => {
                        tracing::warn!(function = %settings.name, error = %join, "guest task ended abnormally")
                    }
                    Err(_) => {
                        task.abort();
                        if let Verdict::Log { suppressed } = failures.admit(Instant::now()) {
                            tracing::warn!(function = %settings.name, call_id = %ctx.call_id, suppressed, "function exceeded its timeout while streaming its body");
                        }
                    }
                }
                log.finish();
            });
            Ok(response.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
        }
        Ok(Err(code)) => {
            log.finish();
            Err(InvokeError::BadResponse(format!(
                "guest returned wasi:http error {code:?}"
            )))
        }
        // The guest never set a response: its task ended (trap, timeout, or plain return).
        Err(_) => {
            let ended = tokio::time::timeout_at(hard_deadline, &mut task).await;
            log.finish();
            match ended {
                Ok(Ok(Ok(()))) => Err(InvokeError::NoResponse),
                Ok(Ok(Err(err))) => {
                    Err(sandbox::classify(err, settings, timeout, &memory_exceeded))
                }
                Ok(Err(join)) => Err(InvokeError::Trap(format!("guest task failed: {join}"))),
                Err(_) => {
                    task.abort();
                    Err(InvokeError::Timeout(timeout))
                }
            }
        }
    }
}

/// `wasi:http` needs an authority (from the URI or `Host`); requests that reach us through a
/// proxy always have `Host`, but direct invocations (cron, SQS) may not.
fn with_authority(mut request: http::Request<Bytes>) -> http::Request<Bytes> {
    if request.uri().authority().is_none() && !request.headers().contains_key(http::header::HOST) {
        request.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
    }
    request
}
