//! How event sources (the cron scheduler, SQS pollers) call the functions of a platform:
//! through the same path as HTTP requests ([`crate::invoke::invoke`]: admission, concurrency
//! limits, metrics, executor). A run's log tail comes from the executor when it keeps one
//! (WASM and CGI guests), else from the log book by the run's call id (server processes,
//! Lambda handlers).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use faas_runtime::cgi::CgiRoute;
use faas_runtime::target::FunctionTarget;
use faas_runtime::{CallContext, LogTailSink, ResponseBody};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::platform::Platform;
use crate::reply::json_error;

/// Calls functions of a platform for its event sources.
pub struct PlatformTarget {
    // Weak: the platform owns the scheduler and the pollers, which own this.
    platform: Weak<Platform>,
    local_port: u16,
}

impl PlatformTarget {
    /// A target calling the functions of `platform`, which serves HTTP on `local_port`.
    pub fn new(platform: &Arc<Platform>, local_port: u16) -> Self {
        PlatformTarget {
            platform: Arc::downgrade(platform),
            local_port,
        }
    }
}

impl FunctionTarget for PlatformTarget {
    fn call(
        &self,
        function: &str,
        mut request: Request<Bytes>,
        mut ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send + '_>> {
        let function = function.to_owned();
        Box::pin(async move {
            let Some(platform) = self.platform.upgrade() else {
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ShuttingDown",
                    "the platform is shutting down",
                );
            };
            let Some(entry) = platform.registry.get(&function) else {
                return json_error(
                    StatusCode::NOT_FOUND,
                    "FunctionNotFound",
                    &format!("function {function} not found (deleted?)"),
                );
            };
            // An event (a run, an SQS batch) is a POST to the function's root, as
            // `POST /function/{name}` would be.
            request.extensions_mut().insert(CgiRoute {
                script_name: format!("/function/{function}"),
                path_info: String::new(),
                server_name: "localhost".to_owned(),
                server_port: self.local_port,
                remote_addr: None,
            });
            let Some(wanted) = ctx.log_tail.take() else {
                return crate::invoke::invoke(&platform, &entry, request, ctx).await;
            };
            let own = LogTailSink::default();
            ctx.log_tail = Some(own.clone());
            let call_id = ctx.call_id.clone();
            let response = crate::invoke::invoke(&platform, &entry, request, ctx).await;
            let fill = TailFill {
                wanted: Some(wanted),
                own,
                function,
                call_id,
            };
            response.map(|body| {
                OnDrop {
                    inner: body,
                    _fill: fill,
                }
                .boxed_unsync()
            })
        })
    }
}

/// How long the executor's own tail is waited for before the log book is asked.
const OWN_TAIL_WAIT: std::time::Duration = std::time::Duration::from_millis(300);
/// Time for a process's last lines to come through its pipes once its answer is in.
const PIPE_SETTLE: std::time::Duration = std::time::Duration::from_millis(150);

/// Fills a run's tail once the response is done (dropped): the executor's, else the log
/// book's lines of the call.
struct TailFill {
    wanted: Option<LogTailSink>,
    own: LogTailSink,
    function: String,
    call_id: String,
}

impl Drop for TailFill {
    fn drop(&mut self) {
        let (Some(wanted), Ok(runtime)) =
            (self.wanted.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let own = self.own.clone();
        let function = std::mem::take(&mut self.function);
        let call_id = std::mem::take(&mut self.call_id);
        runtime.spawn(async move {
            let tail = match own.wait(OWN_TAIL_WAIT).await {
                Some(tail) => Some(tail),
                None => {
                    tokio::time::sleep(PIPE_SETTLE).await;
                    crate::logs::tail_of_call(&function, &call_id)
                }
            };
            if let Some(tail) = tail {
                wanted.set(tail);
            }
        });
    }
}

/// A response body that keeps `_fill` until the body is done with.
struct OnDrop {
    inner: ResponseBody,
    _fill: TailFill,
}

impl hyper::body::Body for OnDrop {
    type Data = Bytes;
    type Error = faas_runtime::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
