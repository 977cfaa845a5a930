//! A small HTTP client for the gateway's management API and function calls.

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The gateway a command talks to.
pub struct Gateway {
    base: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// A response, fully read.
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Reads a whole response.
    pub async fn read(response: http::Response<hyper::body::Incoming>) -> anyhow::Result<Reply> {
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("reading the response")?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// The `error` field of a JSON error body, or the body text.
    pub fn error_message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_owned())
    }
}

impl Gateway {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("--gateway must be an http:// or https:// URL, got {base:?}");
        }
        // HTTPS for gateways behind a load balancer (a function's public URL in a cluster).
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .context("loading the system's CA certificates")?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            base,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let url = format!("{}{}", self.base, path);
        let mut builder = http::Request::builder().method(method).uri(&url);
        if path.starts_with("/system/") {
            builder = management_headers(builder);
        }
        for (k, v) in headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(body))
            .with_context(|| format!("invalid request to {url}"))?;
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("cannot reach the gateway at {} (is `faas up` running? set --gateway or FAAS_GATEWAY)", self.base))?;
        Reply::read(response).await
    }

    pub async fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.json_of(http::Method::GET, path).await
    }

    /// `POST path` without a body (an action: cancel, replay, redrive); its JSON answer
    /// (`null` when it has none), or the gateway's error as the message.
    pub async fn post_action(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.json_of(http::Method::POST, path).await
    }

    async fn json_of(&self, method: http::Method, path: &str) -> anyhow::Result<serde_json::Value> {
        let reply = self.send(method, path, &[], Bytes::new()).await?;
        if !reply.status.is_success() {
            bail!("{}", reply.error_message());
        }
        if reply.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&reply.body).context("the gateway answered with invalid JSON")
    }
}

/// What every management request carries: the header a web page cannot send
/// (`X-Faas-Request`, see `faas_gateway::guard`) and, when `FAAS_MANAGEMENT_TOKEN` is set,
/// the token of a gateway started with `--allow-remote-management`. Only management
/// requests: a function never sees the token.
fn management_headers(mut builder: http::request::Builder) -> http::request::Builder {
    builder = builder.header(faas_gateway::guard::REQUEST_HEADER, "1");
    if let Ok(token) = std::env::var(faas_gateway::guard::TOKEN_ENV)
        && !token.is_empty()
    {
        builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder
}

/// A `multipart/form-data` body with the given (name, filename, bytes) parts.
pub fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Bytes) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let boundary = format!("faas-boundary-{nanos:x}");
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(body),
    )
}
