//! Outbound HTTP from guests: allowed only to `spec.network.allowedOutboundHosts`, and never to
//! the addresses `faas-outbound` refuses (the cloud metadata endpoints; in a pool, loopback and
//! internal addresses without a literal rule). This module is the `wasi:http` side of it; the
//! address rules themselves are [`faas_outbound`]'s, re-exported here.

use std::sync::Arc;

use faas_api::network::OutboundPolicy;
pub use faas_outbound::*;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The `wasi:http` error a refused destination becomes, as guests have always seen it.
fn to_http(refused: Refused) -> HttpError {
    match refused {
        Refused::DestinationNotFound => HttpError::DestinationNotFound,
        Refused::DestinationIpProhibited => HttpError::DestinationIpProhibited,
        Refused::UriInvalid => HttpError::HttpRequestUriInvalid,
    }
}

/// The `wasi:http` hooks of one invocation: every outgoing request goes through the policy.
pub struct OutboundHooks {
    policy: Arc<OutboundPolicy>,
    function: Arc<str>,
}

impl OutboundHooks {
    /// Hooks enforcing `policy` for `function`.
    pub fn new(policy: Arc<OutboundPolicy>, function: Arc<str>) -> Self {
        Self { policy, function }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let policy = Arc::clone(&self.policy);
        let function = Arc::clone(&self.function);
        Box::new(async move {
            let target = Target::of(request.uri()).map_err(to_http)?;
            if !policy.allows(&target.scheme, &target.host, target.port) {
                tracing::warn!(function = %function, scheme = %target.scheme, host = %target.host, port = target.port, "outbound request denied: not in spec.network.allowedOutboundHosts");
                return Err(HttpError::HttpRequestDenied);
            }
            let host = target.host.clone();
            // `Host:` already carries the original authority.
            *request.uri_mut() = target
                .admitted_uri(&policy)
                .await
                .inspect_err(|_| {
                    tracing::warn!(function = %function, %host, pool = policy.is_in_pool(), "outbound request denied: metadata/link-local address, or in a pool loopback or an internal address without a literal rule");
                })
                .map_err(to_http)?;
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}
