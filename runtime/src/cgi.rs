//! CGI (RFC 3875 subset) for command-style functions: the request becomes environment
//! variables plus stdin, and stdout is parsed back into an HTTP response.
//!
//! Pure functions only, so the WASM command executor and the process executor (container
//! functions in `cgi` mode) share one implementation.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

/// Largest CGI header section accepted from a function.
pub const MAX_HEADER_SECTION: usize = 64 * 1024;
/// Most header lines accepted from a function.
pub const MAX_HEADERS: usize = 100;

/// Where the function is mounted, for `SCRIPT_NAME` / `PATH_INFO`.
#[derive(Clone, Debug, Default)]
pub struct CgiRoute {
    /// The part of the path that selected the function, e.g. `/function/echo`.
    pub script_name: String,
    /// The rest of the path after it (`/a/b`), possibly empty.
    pub path_info: String,
    /// Host the request was addressed to.
    pub server_name: String,
    /// Port the platform listens on.
    pub server_port: u16,
    /// Peer address of the client, when known.
    pub remote_addr: Option<String>,
}

impl CgiRoute {
    /// The route the gateway attached to `request`, else the whole path as `PATH_INFO` on
    /// `localhost:80` (a request that did not come through the gateway: tests, benchmarks).
    pub fn of(request: &http::Request<Bytes>) -> CgiRoute {
        request
            .extensions()
            .get::<CgiRoute>()
            .cloned()
            .unwrap_or_else(|| CgiRoute {
                script_name: String::new(),
                path_info: request.uri().path().to_owned(),
                server_name: "localhost".into(),
                server_port: 80,
                remote_addr: None,
            })
    }
}

/// The CGI meta-variables for a request (RFC 3875 section 4.1), plus `HTTP_*` for headers.
pub fn environment(req: &http::Request<Bytes>, route: &CgiRoute) -> Vec<(String, String)> {
    let mut env = vec![
        ("GATEWAY_INTERFACE".to_owned(), "CGI/1.1".to_owned()),
        ("SERVER_SOFTWARE".to_owned(), "faas".to_owned()),
        ("SERVER_PROTOCOL".to_owned(), format!("{:?}", req.version())),
        (
            "REQUEST_METHOD".to_owned(),
            req.method().as_str().to_owned(),
        ),
        ("SCRIPT_NAME".to_owned(), route.script_name.clone()),
        ("PATH_INFO".to_owned(), route.path_info.clone()),
        (
            "QUERY_STRING".to_owned(),
            req.uri().query().unwrap_or("").to_owned(),
        ),
        ("SERVER_NAME".to_owned(), route.server_name.clone()),
        ("SERVER_PORT".to_owned(), route.server_port.to_string()),
        ("CONTENT_LENGTH".to_owned(), req.body().len().to_string()),
    ];
    if let Some(addr) = &route.remote_addr {
        env.push(("REMOTE_ADDR".to_owned(), addr.clone()));
    }
    if let Some(ct) = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        env.push(("CONTENT_TYPE".to_owned(), ct.to_owned()));
    }
    for (name, value) in req.headers() {
        if !passed_to_cgi(name.as_str()) {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        match env.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => env.push((key, value.to_owned())),
        }
    }
    env
}

/// Whether request header `name` (lowercase) becomes an `HTTP_*` variable.
///
/// - Credentials and hop-by-hop headers are not passed on, as RFC 3875 4.1.18 allows; the
///   length and type already have their own variables.
/// - `Proxy` never is: it would become `HTTP_PROXY`, which HTTP clients in the function
///   (curl, Go's net/http in CGI, Python requests, ...) read as their proxy setting, sending
///   the function's own outbound calls, credentials included, to whoever sent the header
///   ("httpoxy", CVE-2016-5385 and friends).
/// - Names with `_` are not either (as Apache and nginx do): `X-Real_IP` would otherwise
///   arrive as the same variable as `X-Real-IP` and could pass for a header a proxy set.
fn passed_to_cgi(name: &str) -> bool {
    !matches!(
        name,
        "authorization"
            | "proxy-authorization"
            | "proxy"
            | "connection"
            | "content-length"
            | "content-type"
    ) && !name.contains('_')
}

/// Why a function's CGI output is not a valid response.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CgiError {
    /// Nothing at all on stdout.
    #[error("the function wrote nothing to stdout")]
    Empty,
    /// No blank line ends the header section.
    #[error("no blank line after the CGI headers (first {0} bytes scanned)")]
    Unterminated(usize),
    /// The header section is larger than [`MAX_HEADER_SECTION`] or has too many lines.
    #[error("CGI header section too large")]
    TooLarge,
    /// A header line is not `Name: value`.
    #[error("malformed CGI header line {line}: {text:?}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The line, truncated.
        text: String,
    },
    /// `Status:` is not a 3-digit code in 100..=599.
    #[error("invalid CGI Status {0:?}")]
    BadStatus(String),
    /// Neither `Content-Type`, `Location` nor `Status` was given (RFC 3875 6.2 wants one).
    #[error("CGI response has none of Content-Type, Location or Status")]
    NoCgiField,
}

/// Parses a CGI response: header lines (`\n` or `\r\n`), a blank line, then the body.
pub fn parse_response(stdout: &[u8]) -> Result<http::Response<Bytes>, CgiError> {
    if stdout.is_empty() {
        return Err(CgiError::Empty);
    }
    let (head, body) = split_head(stdout)?;
    let head = std::str::from_utf8(head).map_err(|_| CgiError::Malformed {
        line: 0,
        text: "header section is not UTF-8".to_owned(),
    })?;

    let mut response = http::Response::new(Bytes::copy_from_slice(body));
    let mut status: Option<StatusCode> = None;
    let mut has_cgi_field = false;
    let mut has_location = false;
    for (index, raw) in head.lines().enumerate() {
        if index >= MAX_HEADERS {
            return Err(CgiError::TooLarge);
        }
        let malformed = || CgiError::Malformed {
            line: index + 1,
            text: raw.chars().take(80).collect(),
        };
        let (name, value) = raw.split_once(':').ok_or_else(malformed)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            has_cgi_field = true;
            let code = value.split_whitespace().next().unwrap_or("");
            let parsed = (code.len() == 3)
                .then(|| code.parse::<u16>().ok())
                .flatten()
                .filter(|c| (100..=599).contains(c))
                .and_then(|c| StatusCode::from_u16(c).ok());
            status = Some(parsed.ok_or_else(|| CgiError::BadStatus(value.to_owned()))?);
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| malformed())?;
        let value = HeaderValue::from_str(value).map_err(|_| malformed())?;
        if name == http::header::CONTENT_TYPE {
            has_cgi_field = true;
        }
        if name == http::header::LOCATION {
            has_cgi_field = true;
            has_location = true;
        }
        response.headers_mut().append(name, value);
    }
    if !has_cgi_field {
        return Err(CgiError::NoCgiField);
    }
    *response.status_mut() = match status {
        Some(status) => status,
        None if has_location => StatusCode::FOUND,
        None => StatusCode::OK,
    };
    Ok(response)
}

/// Splits at the first empty line; accepts `\n\n`, `\r\n\r\n` and mixed endings.
fn split_head(out: &[u8]) -> Result<(&[u8], &[u8]), CgiError> {
    let mut line_start = 0;
    let limit = out.len().min(MAX_HEADER_SECTION);
    while line_start <= limit {
        let rest = &out[line_start..];
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let line = &rest[..nl];
        if line.is_empty() || line == b"\r" {
            let head = &out[..line_start];
            return Ok((head, &out[line_start + nl + 1..]));
        }
        line_start += nl + 1;
    }
    if out.len() > MAX_HEADER_SECTION {
        Err(CgiError::TooLarge)
    } else {
        Err(CgiError::Unterminated(out.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_headers_and_body() {
        let out = b"Content-Type: text/plain\r\nStatus: 201 Created\r\nX-A: 1\r\n\r\nhello\n";
        let resp = parse_response(out).expect("valid");
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()["x-a"], "1");
        assert_eq!(resp.headers()["content-type"], "text/plain");
        assert_eq!(resp.body().as_ref(), b"hello\n");
    }

    #[test]
    fn location_without_status_is_a_redirect() {
        let resp = parse_response(b"Location: /elsewhere\n\n").expect("valid");
        assert_eq!(resp.status(), StatusCode::FOUND);
    }

    #[test]
    fn default_status_is_200_and_body_may_be_empty() {
        let resp = parse_response(b"Content-Type: text/plain\n\n").expect("valid");
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.body().is_empty());
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        let err = |out: &[u8]| parse_response(out).expect_err("must be rejected");
        assert_eq!(err(b""), CgiError::Empty);
        assert!(matches!(
            parse_response(b"no headers here"),
            Err(CgiError::Unterminated(_))
        ));
        assert!(matches!(
            parse_response(b"this is not a header\n\nbody"),
            Err(CgiError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            parse_response(b"Bad Name: x\n\n"),
            Err(CgiError::Malformed { line: 1, .. })
        ));
        assert_eq!(
            err(b"Status: 999 Nope\nContent-Type: a/b\n\n"),
            CgiError::BadStatus("999 Nope".to_owned())
        );
        assert_eq!(
            err(b"Status: abc\n\n"),
            CgiError::BadStatus("abc".to_owned())
        );
        assert_eq!(err(b"X-Only: 1\n\nbody"), CgiError::NoCgiField);
        let huge = vec![b'a'; MAX_HEADER_SECTION + 10];
        assert_eq!(err(&huge), CgiError::TooLarge);
    }

    #[test]
    fn environment_has_cgi_variables_and_headers() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/function/echo/a/b?x=1&y=2")
            .header("content-type", "text/plain")
            .header("x-test", "one")
            .header("x-test", "two")
            .header("authorization", "secret")
            .body(Bytes::from_static(b"abc"))
            .expect("request");
        let route = CgiRoute {
            script_name: "/function/echo".into(),
            path_info: "/a/b".into(),
            server_name: "localhost".into(),
            server_port: 8080,
            remote_addr: Some("127.0.0.1".into()),
        };
        let env = environment(&req, &route);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("REQUEST_METHOD"), Some("POST"));
        assert_eq!(get("PATH_INFO"), Some("/a/b"));
        assert_eq!(get("QUERY_STRING"), Some("x=1&y=2"));
        assert_eq!(get("CONTENT_LENGTH"), Some("3"));
        assert_eq!(get("CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get("HTTP_X_TEST"), Some("one, two"));
        assert_eq!(get("HTTP_AUTHORIZATION"), None);
    }

    #[test]
    fn a_proxy_header_never_becomes_http_proxy() {
        let req = http::Request::builder()
            .uri("/")
            .header("proxy", "http://127.0.0.1:9/")
            .header("x-real_ip", "10.0.0.1")
            .header("x-real-ip", "127.0.0.1")
            .body(Bytes::new())
            .expect("request");
        let env = environment(&req, &CgiRoute::default());
        assert!(
            !env.iter().any(|(k, _)| k == "HTTP_PROXY"),
            "httpoxy: {env:?}"
        );
        let real_ip: Vec<_> = env.iter().filter(|(k, _)| k == "HTTP_X_REAL_IP").collect();
        assert_eq!(
            real_ip,
            [&("HTTP_X_REAL_IP".to_owned(), "127.0.0.1".to_owned())]
        );
    }
}
