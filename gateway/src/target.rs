//! How event sources (the cron scheduler, SQS pollers) call the functions of a platform:
//! through the same path as HTTP requests ([`crate::invoke::invoke`]: admission, concurrency
//! limits, metrics, executor).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use faas_runtime::cgi::CgiRoute;
use faas_runtime::target::FunctionTarget;
use faas_runtime::{CallContext, ResponseBody};
use http::{Request, Response, StatusCode};

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
        ctx: CallContext,
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
            crate::invoke::invoke(&platform, &entry, request, ctx).await
        })
    }
}
