//! The AWS SDK for Rust in a function (feature `aws`): [`config`] gives an `SdkConfig` for any
//! `aws-sdk-*` client, from what the platform puts in the function's environment at each
//! invocation, as Lambda does:
//!
//! * credentials of the function's own IAM role (`spec.iam.roleArn`): `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, renewed by the platform before they expire
//!   (so build the config in the handler, not once in a static);
//! * `AWS_REGION` (or `AWS_DEFAULT_REGION`);
//! * `AWS_ENDPOINT_URL`, when set (`spec.env`), for every service (a local stand-in such as
//!   moto or LocalStack).
//!
//! Requests go out through the host's `wasi:http` ([`crate::send`]), so the function's
//! `spec.network.allowedOutboundHosts` must list the service endpoints it calls
//! (`https://s3.eu-west-3.amazonaws.com`, ...). Depend on the `aws-sdk-*` crates with
//! `default-features = false` (no tokio, no TLS stack: the host makes the connections).
//!
//! ```ignore
//! async fn handle(_req: faas_sdk::Request) -> faas_sdk::Response {
//!     let s3 = aws_sdk_s3::Client::new(&faas_sdk::aws::config());
//!     ...
//! }
//! faas_sdk::export_handler!(async handle);
//! ```

use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_smithy_async::rt::sleep::{AsyncSleep, Sleep};
use aws_smithy_async::time::SystemTimeSource;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_smithy_runtime_api::http::{Response as SdkResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_types::SdkConfig;
use aws_types::region::Region;
use bytes::Bytes;

/// An `SdkConfig` from this invocation's environment (see the module's documentation). Without
/// credentials in the environment (a function without `spec.iam.roleArn`), clients built from
/// it fail their calls with the SDK's usual "no credentials" error.
pub fn config() -> SdkConfig {
    config_from(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// [`config`] with the variables read through `var` (for tests).
pub fn config_from(var: impl Fn(&str) -> Option<String>) -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(WasiHttp)
        .sleep_impl(WasiSleep)
        .time_source(SystemTimeSource::new())
        // Its checks are timers polled beside the body; our bodies are whole in memory.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        builder = builder.region(Region::new(region));
    }
    // Always a provider: with none, the SDK would send unsigned requests (anonymous S3) rather
    // than say there are no credentials.
    let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => SharedCredentialsProvider::new(Credentials::new(
            id,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "faas",
        )),
        _ => SharedCredentialsProvider::new(NoCredentials),
    };
    builder = builder.credentials_provider(credentials);
    if let Some(endpoint) = var("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    builder.build()
}

/// The credentials of a function without a role: none, saying why.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no AWS credentials in the environment: the function has no spec.iam.roleArn \
             (or its role could not be assumed: see faas describe)",
        )))
    }
}

/// The SDK's HTTP client: each request through [`crate::send`], answered before the future is
/// returned (the host does the I/O; there is no reactor in a function).
#[derive(Debug, Clone, Copy)]
struct WasiHttp;

impl HttpClient for WasiHttp {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(WasiHttp)
    }
}

impl HttpConnector for WasiHttp {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(call(request))
    }
}

fn call(request: HttpRequest) -> Result<SdkResponse<SdkBody>, ConnectorError> {
    let body = match request.body().bytes() {
        Some(bytes) => Bytes::copy_from_slice(bytes),
        None => {
            return Err(ConnectorError::other(
                "a streaming request body (send it from memory: ByteStream::from(Vec<u8>))".into(),
                None,
            ));
        }
    };
    let mut outgoing = http::Request::builder()
        .method(request.method())
        .uri(request.uri());
    for (name, value) in request.headers() {
        outgoing = outgoing.header(name, value);
    }
    let outgoing = outgoing
        .body(body)
        .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    let answer = crate::send(outgoing).map_err(|e| ConnectorError::io(Box::new(e)))?;
    let status = StatusCode::try_from(answer.status().as_u16())
        .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    let (parts, body) = answer.into_parts();
    let mut response = SdkResponse::new(status, SdkBody::from(body));
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            response
                .headers_mut()
                .append(name.as_str().to_owned(), value.to_owned());
        }
    }
    Ok(response)
}

/// The SDK's timer (retry back-off): done once its time has passed. Each poll before then
/// waits at most a millisecond, so a timer raced against a ready answer (a timeout) costs
/// nothing, and [`crate::block_on`] polls again.
#[derive(Debug, Clone, Copy)]
struct WasiSleep;

impl AsyncSleep for WasiSleep {
    fn sleep(&self, duration: Duration) -> Sleep {
        let deadline = Instant::now() + duration;
        Sleep::new(std::future::poll_fn(move |_| {
            let now = Instant::now();
            if now >= deadline {
                return std::task::Poll::Ready(());
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(1)));
            std::task::Poll::Pending
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_of(vars: &[(&str, &str)]) -> SdkConfig {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_roles_credentials_region_and_endpoint_come_from_the_environment() {
        let config = config_of(&[
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_DEFAULT_REGION", "eu-west-3"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ]);
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-3"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:4566"));
        assert!(config.credentials_provider().is_some());
        assert!(config.http_client().is_some() && config.sleep_impl().is_some());
    }

    #[test]
    fn without_a_role_there_are_no_credentials_and_aws_region_wins() {
        let config = config_of(&[("AWS_REGION", "us-east-1"), ("AWS_DEFAULT_REGION", "x")]);
        let provider = config
            .credentials_provider()
            .expect("a provider that says why");
        let error = crate::block_on(provider.provide_credentials()).expect_err("none");
        assert!(
            format!("{:?}", error).contains("no spec.iam.roleArn"),
            "{error:?}"
        );
        assert_eq!(config.region().map(Region::as_ref), Some("us-east-1"));
        assert_eq!(config.endpoint_url(), None);
    }

    #[test]
    fn a_timer_ends_once_its_time_has_passed() {
        let started = Instant::now();
        crate::block_on(WasiSleep.sleep(Duration::from_millis(20)));
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
