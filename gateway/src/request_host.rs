//! Which host a request is for, decided once, before anything reads it.
//!
//! RFC 9112 §3.2.2: a request whose target is in absolute form (`GET http://host:port/path`)
//! names its host there, and a `Host` header sent beside it is ignored; an HTTP/2 request
//! names it in `:authority`, which hyper puts in the URI too. Every layer that reads the host
//! reads the `Host` header: routing (host routes), the management guard, CGI's
//! `SERVER_NAME`, and the authority a `wasi:http` guest sees once the gateway has cut the URI
//! down to the function's path. So the target's authority becomes `Host` here, and all of them
//! agree on one host; before, a guest saw the `Host` header (or `localhost`) instead.

use http::header::HOST;
use http::{HeaderValue, Request};

/// Makes `Host` the authority of an absolute-form target (userinfo, which `http` URIs may not
/// carry, is dropped, never passed on as a host); leaves an origin-form request alone.
pub fn from_target<B>(request: &mut Request<B>) {
    let Some(authority) = request.uri().authority() else {
        return;
    };
    let host = match authority.port() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&host) {
        request.headers_mut().insert(HOST, value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn host_of(uri: &str, host: Option<&str>) -> Option<String> {
        let mut builder = Request::get(uri);
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        let mut request = builder.body(()).unwrap();
        from_target(&mut request);
        let all: Vec<_> = request.headers().get_all(HOST).iter().collect();
        assert!(all.len() <= 1, "one Host: {all:?}");
        all.first().map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn the_targets_authority_wins_over_the_host_header() {
        assert_eq!(
            host_of(
                "http://fn.example:8080/function/a/?q=1",
                Some("other.example")
            ),
            Some("fn.example:8080".to_owned())
        );
        assert_eq!(
            host_of("http://fn.example/x", None),
            Some("fn.example".to_owned())
        );
        assert_eq!(
            host_of("http://[::1]:9000/x", Some("a")),
            Some("[::1]:9000".to_owned())
        );
    }

    #[test]
    fn userinfo_is_never_a_host() {
        assert_eq!(
            host_of("http://user:secret@fn.example:81/x", Some("a")),
            Some("fn.example:81".to_owned())
        );
    }

    #[test]
    fn an_origin_form_request_keeps_its_host_header() {
        assert_eq!(
            host_of("/function/a/", Some("gateway.test")),
            Some("gateway.test".to_owned())
        );
        assert_eq!(host_of("/function/a/", None), None);
    }
}
