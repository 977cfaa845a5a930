//! The platform's own POSTs to URLs users gave it (a run notification, an async call's
//! callback), under the same address rules as guests' outbound requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::{Refused, Target};

/// The longest each step (connect, TLS and HTTP handshake, waiting for the answer) may take;
/// callers bound the whole POST more tightly.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a POST was not answered. One line naming the cause.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("bad URL: {0}")]
    BadUrl(#[from] http::uri::InvalidUri),
    #[error("URL has no host")]
    NoHost,
    /// The address rules refused where the URL's host resolved to.
    #[error("{host}: {refused}")]
    Refused { host: String, refused: Refused },
    /// A header or the URI could not go into a request.
    #[error("{0}")]
    Request(#[from] http::Error),
    #[error("connection error: {0}")]
    Connect(std::io::Error),
    #[error("connection timeout")]
    ConnectionTimeout,
    #[error("connection read timeout")]
    ReadTimeout,
    #[error("invalid DNS name: {0}")]
    InvalidDnsName(String),
    #[error("TLS error: {0}")]
    Tls(std::io::Error),
    #[error("hyper error: {0}")]
    Hyper(#[from] hyper::Error),
}

/// POSTs `body` to `url` (a run notification, an async call's callback) under the same
/// address rules as guests' outbound requests: never the instance metadata service, whatever
/// the name resolves to. Returns the status the receiver answered, or why nothing was sent.
pub async fn post(
    url: &str,
    headers: Vec<(http::HeaderName, Option<http::HeaderValue>)>,
    body: Bytes,
    user_agent: &str,
) -> Result<u16, PostError> {
    post_to(url, headers, body, user_agent, true).await
}

/// [`post`]; with `internal` false, also never to loopback or private addresses
/// ([`Target::checked_public_uri`]).
pub async fn post_to(
    url: &str,
    headers: Vec<(http::HeaderName, Option<http::HeaderValue>)>,
    body: Bytes,
    user_agent: &str,
    internal: bool,
) -> Result<u16, PostError> {
    let uri: http::Uri = url.parse()?;
    let target = Target::of(&uri).map_err(|_| PostError::NoHost)?;
    let host = target.host.clone();
    let checked = target
        .checked_public_uri(internal)
        .await
        .map_err(|refused| PostError::Refused {
            host: host.clone(),
            refused,
        })?;
    let mut request = http::Request::post(checked)
        .header(
            http::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or(&host),
        )
        .header(http::header::USER_AGENT, user_agent);
    for (name, value) in headers {
        if let Some(value) = value {
            request = request.header(name, value);
        }
    }
    let response = send(request.body(Full::new(body))?).await?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(status)
}

/// Sends one request over a fresh HTTP/1 connection to the URI's authority (TLS with the
/// webpki roots for `https`), the way guests' outbound requests are sent.
async fn send(
    mut request: http::Request<Full<Bytes>>,
) -> Result<http::Response<Incoming>, PostError> {
    let uri = request.uri().clone();
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let host = uri
        .host()
        .ok_or(PostError::NoHost)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| PostError::ConnectionTimeout)?
        .map_err(PostError::Connect)?;
    // The request line carries only the path: the authority is in `Host:`.
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = http::Uri::builder().path_and_query(path).build()?;
    if !tls {
        return exchange(tcp, request).await;
    }
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PostError::Tls(std::io::Error::other(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name =
        ServerName::try_from(host.clone()).map_err(|e| PostError::InvalidDnsName(e.to_string()))?;
    let stream = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| PostError::ConnectionTimeout)?
    .map_err(PostError::Tls)?;
    exchange(stream, request).await
}

/// The HTTP/1 handshake on `io`, then `request`; the connection is driven by its own task
/// until the response body has been read.
async fn exchange<IO>(
    io: IO,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<Incoming>, PostError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = tokio::time::timeout(
        STEP_TIMEOUT,
        hyper::client::conn::http1::handshake(TokioIo::new(io)),
    )
    .await
    .map_err(|_| PostError::ConnectionTimeout)??;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "outbound POST connection ended with an error");
        }
    });
    tokio::time::timeout(STEP_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| PostError::ReadTimeout)?
        .map_err(PostError::from)
}
