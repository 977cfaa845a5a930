//! Serving one request with a WASI preview1 command module, CGI-style: body on stdin, CGI
//! variables in the environment, response parsed from stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

use super::sandbox::{self, CgiState, MemoryCap};
use super::{FunctionSettings, WasmRuntime};
use crate::cgi::{self, CgiRoute};
use crate::guest_log::{BoundedCapture, GuestLog, Stream};
use crate::{CallContext, InvokeError, ResponseBody};

pub(super) async fn invoke(
    runtime: &Arc<WasmRuntime>,
    pre: &wasmtime::InstancePre<CgiState>,
    settings: &Arc<FunctionSettings>,
    slot: super::share::Held,
    log_rate: Arc<crate::guest_log::LogBucket>,
    ctx: CallContext,
    request: http::Request<Bytes>,
) -> Result<http::Response<ResponseBody>, InvokeError> {
    let route = CgiRoute::of(&request);
    let log = GuestLog::new(
        Arc::clone(&settings.name),
        ctx.call_id.as_str().into(),
        runtime.config.log_budget,
    )
    .with_sink(ctx.log_tail.clone())
    .with_run_log(ctx.run_log.clone())
    .with_rate(log_rate);
    let stdout = BoundedCapture::new(runtime.config.max_cgi_response_bytes);

    let mut builder = sandbox::wasi_builder(settings)?;
    // CGI variables override same-named `spec.env` entries: they describe this request.
    builder
        .envs(&cgi::environment(&request, &route))
        .args(&[settings.name.as_ref()])
        .stdin(MemoryInputPipe::new(request.body().clone()))
        .stdout(stdout.clone())
        .stderr(log.writer(Stream::Stderr));
    let (limits, memory_exceeded) = MemoryCap::new(settings.limits.memory_bytes);
    let mut store = runtime.new_store(CgiState {
        wasi: builder.build_p1(),
        limits,
        _slot: slot,
    });
    store.limiter(|s| &mut s.limits);
    let timeout = ctx.timeout_or(settings.limits.timeout);
    let deadline = Instant::now() + timeout;
    sandbox::arm_deadline(&mut store, deadline);

    let pre = pre.clone();
    let observer = Arc::clone(runtime);
    let function = Arc::clone(&settings.name);
    let mut task = sandbox::GuestTask::spawn(async move {
        let started = Instant::now();
        let instance = pre.instantiate_async(&mut store).await?;
        observer.observe_instantiate(&function, started.elapsed());
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call_async(&mut store, ()).await
    });
    let hard_deadline = tokio::time::Instant::from_std(deadline + Duration::from_millis(100));
    let ended = tokio::time::timeout_at(hard_deadline, &mut task).await;
    log.finish();
    let outcome = match ended {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => return Err(InvokeError::Trap(format!("guest task failed: {join}"))),
        Err(_) => {
            task.abort();
            return Err(InvokeError::Timeout(timeout));
        }
    };
    if let Err(err) = outcome {
        // `proc_exit(0)` arrives as an error but is a normal end of a command.
        match err.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => {}
            Some(I32Exit(code)) => {
                return Err(InvokeError::BadResponse(format!(
                    "command exited with status {code}"
                )));
            }
            None => return Err(sandbox::classify(err, settings, timeout, &memory_exceeded)),
        }
    }
    let (out, overflowed) = stdout.take();
    if overflowed {
        return Err(InvokeError::BadResponse(format!(
            "response larger than {} bytes",
            runtime.config.max_cgi_response_bytes
        )));
    }
    let response =
        cgi::parse_response(&out).map_err(|e| InvokeError::BadResponse(e.to_string()))?;
    Ok(response.map(crate::full_body))
}
