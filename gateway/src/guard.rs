//! Who may use the management API (`/system/...`) and the dashboard (`/ui/`).
//!
//! Locally they have no login: whoever can reach them can deploy and run code on this
//! machine. A loopback peer is not enough to know who that is, because a browser on this
//! machine is a loopback peer for every web page it shows:
//!
//! - **DNS rebinding**: a page at `evil.example` re-resolves its own name to 127.0.0.1 and
//!   reads the answers as same-origin. Its requests carry `Host: evil.example`, so only
//!   loopback `Host` names are served (`localhost`, `127.0.0.0/8`, `[::1]`, any port).
//! - **Cross-site requests**: a page can send a form POST to `http://127.0.0.1:8080/...`
//!   without reading the answer. State-changing methods need [`REQUEST_HEADER`], which a
//!   form cannot send and a cross-origin `fetch` can only send after a CORS preflight this
//!   server never grants; and their `Origin`, when present, must be this very server's
//!   loopback origin (same host and port as `Host`).
//!
//! `--allow-remote-management` serves other peers and `Host` names, but only with the
//! bearer token (`--management-token` / `FAAS_MANAGEMENT_TOKEN`), compared in constant time.
//! A browser never sends a bearer token by itself, so an authenticated request is nobody's
//! forged one.

use std::net::{IpAddr, SocketAddr};

use faas_runtime::ResponseBody;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use subtle::ConstantTimeEq as _;

use crate::platform::GatewayConfig;
use crate::reply::json_error;

/// The header every state-changing management request carries (`X-Faas-Request: 1`): the
/// `faas` CLI and the dashboard's script send it, an HTML form cannot.
pub const REQUEST_HEADER: &str = faas_api::contract::REQUEST_HEADER;

/// The environment variable holding the management token (server and CLI).
pub const TOKEN_ENV: &str = "FAAS_MANAGEMENT_TOKEN";

/// Shortest token accepted: a guessable token would make remote management an open door.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a management request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a loopback peer, and remote management is off.
    NotLoopback,
    /// A `Host` that is not a loopback name (DNS rebinding), without the token.
    ForeignHost,
    /// A state-changing request from another origin.
    CrossOrigin,
    /// A state-changing request without [`REQUEST_HEADER`].
    MissingHeader,
    /// Remote management needs the token, and this request has none.
    TokenRequired,
    /// The token does not match.
    BadToken,
}

impl Refusal {
    /// The answer: JSON with a stable reason (401 for the token, 403 otherwise).
    pub fn response(self) -> http::Response<ResponseBody> {
        let (status, reason, message) = match self {
            Refusal::NotLoopback => (
                StatusCode::FORBIDDEN,
                "ManagementForbidden",
                "the management API and the dashboard only answer loopback clients (start with --allow-remote-management and a --management-token to change that)",
            ),
            Refusal::ForeignHost => (
                StatusCode::FORBIDDEN,
                "ForeignHost",
                "the management API and the dashboard only answer requests addressed to localhost, 127.0.0.0/8 or [::1] (the Host header)",
            ),
            Refusal::CrossOrigin => (
                StatusCode::FORBIDDEN,
                "CrossOrigin",
                "a state-changing management request must come from this server's own origin",
            ),
            Refusal::MissingHeader => (
                StatusCode::FORBIDDEN,
                "MissingRequestHeader",
                "a state-changing management request must carry the header X-Faas-Request: 1 (the faas CLI and the dashboard send it)",
            ),
            Refusal::TokenRequired => (
                StatusCode::UNAUTHORIZED,
                "ManagementTokenRequired",
                "remote management needs the management token: Authorization: Bearer <token> (the faas CLI sends FAAS_MANAGEMENT_TOKEN)",
            ),
            Refusal::BadToken => (
                StatusCode::UNAUTHORIZED,
                "BadManagementToken",
                "the management token does not match",
            ),
        };
        let mut response = json_error(status, reason, message);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"faas management\""),
            );
        }
        response
    }
}

/// The settings the guard needs, checked: remote management without a (long enough) token
/// is refused at startup, not discovered by the first stranger.
pub fn check_settings(config: &GatewayConfig) -> Result<(), SettingsError> {
    match (&config.management_token, config.remote_management) {
        (Some(token), _) if token.len() < MIN_TOKEN_LEN => Err(SettingsError::ShortToken),
        (None, true) => Err(SettingsError::NoToken),
        _ => Ok(()),
    }
}

/// Why the management settings are refused at startup.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The token is too easy to guess.
    #[error("the management token must be at least {MIN_TOKEN_LEN} characters long")]
    ShortToken,
    /// Remote management without a token.
    #[error(
        "--allow-remote-management needs a token: --management-token or {TOKEN_ENV} (at \
         least {MIN_TOKEN_LEN} characters); remote clients send it as Authorization: Bearer"
    )]
    NoToken,
}

/// Whether a request for `/system` or `/ui` may be served.
pub fn admit(
    config: &GatewayConfig,
    remote: Option<SocketAddr>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let authenticated = match (bearer(headers), &config.management_token) {
        (Some(given), Some(token)) => {
            if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                return Err(Refusal::BadToken);
            }
            true
        }
        // A token given to a server that has none: it proves nothing.
        (Some(_), None) | (None, _) => false,
    };
    let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && !headers.contains_key(REQUEST_HEADER) {
        return Err(Refusal::MissingHeader);
    }
    if authenticated {
        return Ok(());
    }
    let loopback_peer = remote.is_none_or(|r| r.ip().to_canonical().is_loopback());
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(Endpoint::of_host);
    let loopback_host = host.as_ref().is_some_and(Endpoint::is_loopback);
    if !loopback_peer || !loopback_host {
        return Err(match (config.remote_management, loopback_peer) {
            (true, _) => Refusal::TokenRequired,
            (false, false) => Refusal::NotLoopback,
            (false, true) => Refusal::ForeignHost,
        });
    }
    if changes_state && let Some(origin) = headers.get(http::header::ORIGIN) {
        let origin = origin.to_str().ok().and_then(Endpoint::of_origin);
        if origin.is_none() || origin != host {
            return Err(Refusal::CrossOrigin);
        }
    }
    Ok(())
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A host and port, as a `Host` header or an `Origin` names them.
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    /// Lowercase, IPv6 without brackets.
    host: String,
    port: u16,
}

impl Endpoint {
    /// `host[:port]` (port 80 when absent: the dashboard is plain HTTP).
    fn of_host(value: &str) -> Option<Endpoint> {
        let authority: http::uri::Authority = value.trim().parse().ok()?;
        Some(Endpoint {
            host: bare(authority.host()),
            port: authority.port_u16().unwrap_or(80),
        })
    }

    /// `scheme://host[:port]`; `null` and anything else is no origin of ours.
    fn of_origin(value: &str) -> Option<Endpoint> {
        let uri: http::Uri = value.trim().parse().ok()?;
        let default = match uri.scheme_str()? {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = uri.authority()?;
        Some(Endpoint {
            host: bare(authority.host()),
            port: authority.port_u16().unwrap_or(default),
        })
    }

    fn is_loopback(&self) -> bool {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => ip.to_canonical().is_loopback(),
            Err(_) => self.host == "localhost",
        }
    }
}

fn bare(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-token";

    fn config(remote: bool, token: Option<&str>) -> GatewayConfig {
        let mut config = GatewayConfig::new("/tmp/unused".into());
        config.remote_management = remote;
        config.management_token = token.map(str::to_owned);
        config
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().expect("socket address"))
    }

    const LOCAL: &str = "127.0.0.1:5000";

    #[test]
    fn loopback_host_names_only() {
        let config = config(false, None);
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.4.5.6:1",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
        ] {
            let h = headers(&[("host", host)]);
            assert_eq!(
                admit(&config, peer(LOCAL), &Method::GET, &h),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "[2001:db8::1]:8080",
            "0.0.0.0:8080",
            "",
        ] {
            let h = headers(&[("host", host)]);
            assert_eq!(
                admit(&config, peer(LOCAL), &Method::GET, &h),
                Err(Refusal::ForeignHost),
                "{host}"
            );
        }
        assert_eq!(
            admit(&config, peer(LOCAL), &Method::GET, &HeaderMap::new()),
            Err(Refusal::ForeignHost),
            "no Host at all"
        );
    }

    #[test]
    fn remote_peers_are_refused_unless_remote_management_with_the_token() {
        let h = headers(&[("host", "localhost:8080")]);
        for remote in ["10.0.0.8:5000", "[2001:db8::1]:5000"] {
            assert_eq!(
                admit(&config(false, None), peer(remote), &Method::GET, &h),
                Err(Refusal::NotLoopback)
            );
            assert_eq!(
                admit(&config(true, Some(TOKEN)), peer(remote), &Method::GET, &h),
                Err(Refusal::TokenRequired)
            );
        }
        let with = |token: &str| {
            let bearer = format!("Bearer {token}");
            headers(&[("host", "gateway.lan:8080"), ("authorization", &bearer)])
        };
        let remote = config(true, Some(TOKEN));
        assert_eq!(
            admit(&remote, peer("10.0.0.8:5000"), &Method::GET, &with(TOKEN)),
            Ok(())
        );
        assert_eq!(
            admit(
                &remote,
                peer("10.0.0.8:5000"),
                &Method::GET,
                &with("0123456789abcdef-tokeN")
            ),
            Err(Refusal::BadToken)
        );
        assert_eq!(
            admit(&remote, peer("10.0.0.8:5000"), &Method::GET, &with("short")),
            Err(Refusal::BadToken)
        );
        // A foreign Host from this machine (a rebinding page) needs the token too.
        let rebound = headers(&[("host", "evil.example")]);
        assert_eq!(
            admit(&remote, peer(LOCAL), &Method::GET, &rebound),
            Err(Refusal::TokenRequired)
        );
        // Authenticated writes still carry the request header.
        let mut write = with(TOKEN);
        assert_eq!(
            admit(&remote, peer("10.0.0.8:5000"), &Method::PUT, &write),
            Err(Refusal::MissingHeader)
        );
        write.insert(REQUEST_HEADER, HeaderValue::from_static("1"));
        assert_eq!(
            admit(&remote, peer("10.0.0.8:5000"), &Method::PUT, &write),
            Ok(())
        );
    }

    #[test]
    fn state_changing_requests_need_the_header_and_their_own_origin() {
        let config = config(false, None);
        let post = |pairs: &[(&'static str, &str)]| {
            admit(&config, peer(LOCAL), &Method::POST, &headers(pairs))
        };
        // A form POST: no request header.
        assert_eq!(
            post(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080")
            ]),
            Err(Refusal::MissingHeader)
        );
        assert_eq!(
            post(&[("host", "127.0.0.1:8080"), (REQUEST_HEADER, "1")]),
            Ok(()),
            "the CLI: no Origin"
        );
        assert_eq!(
            post(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
                (REQUEST_HEADER, "1")
            ]),
            Ok(()),
            "the dashboard"
        );
        for origin in [
            "http://evil.example",
            "http://localhost:3000",
            "http://127.0.0.1:8081",
            "http://localhost:8080",
            "null",
            "file://",
        ] {
            assert_eq!(
                post(&[
                    ("host", "127.0.0.1:8080"),
                    ("origin", origin),
                    (REQUEST_HEADER, "1")
                ]),
                Err(Refusal::CrossOrigin),
                "{origin}"
            );
        }
        // Default ports and IPv6 compare as the same origin.
        assert_eq!(
            post(&[
                ("host", "[::1]"),
                ("origin", "http://[::1]:80"),
                (REQUEST_HEADER, "1")
            ]),
            Ok(())
        );
        // Reads need neither.
        assert_eq!(
            admit(
                &config,
                peer(LOCAL),
                &Method::GET,
                &headers(&[
                    ("host", "localhost:8080"),
                    ("origin", "http://evil.example")
                ])
            ),
            Ok(())
        );
    }

    #[test]
    fn remote_management_without_a_long_token_does_not_start() {
        assert!(check_settings(&config(false, None)).is_ok());
        assert!(check_settings(&config(true, Some(TOKEN))).is_ok());
        let missing = check_settings(&config(true, None)).expect_err("no token");
        assert!(
            missing.to_string().contains("--management-token"),
            "{missing}"
        );
        assert!(check_settings(&config(true, Some("short"))).is_err());
    }
}
