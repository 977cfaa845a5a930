//! Conversions from handler return values to [`Response`].

use crate::{Bytes, Response, StatusCode};
use http::header::{CONTENT_TYPE, HeaderValue};
use std::fmt::Display;

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Anything a handler may return.
///
/// Text bodies (`String`, `&'static str`, the text in a tuple or an error) are sent with
/// `content-type: text/plain; charset=utf-8`; a [`Response`] is sent exactly as built.
///
/// | value | status | body |
/// |---|---|---|
/// | [`Response`] | its own | its own |
/// | `String`, `&'static str` | 200 | the text |
/// | `(StatusCode, String)`, `(StatusCode, &'static str)` | the code | the text |
/// | [`StatusCode`] | the code | empty |
/// | `Ok(T)` | as `T` | as `T` |
/// | `Err(E)` with `E: Display` | 500 | the error's `Display` text |
pub trait IntoResponse {
    /// Converts `self` into the response sent to the client.
    fn into_response(self) -> Response;
}

fn text(status: StatusCode, body: Bytes) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    resp
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        text(StatusCode::OK, Bytes::from(self))
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        text(StatusCode::OK, Bytes::from_static(self.as_bytes()))
    }
}

impl IntoResponse for (StatusCode, String) {
    fn into_response(self) -> Response {
        text(self.0, Bytes::from(self.1))
    }
}

impl IntoResponse for (StatusCode, &'static str) {
    fn into_response(self) -> Response {
        text(self.0, Bytes::from_static(self.1.as_bytes()))
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut resp = Response::new(Bytes::new());
        *resp.status_mut() = self;
        resp
    }
}

impl<T, E> IntoResponse for Result<T, E>
where
    T: IntoResponse,
    E: Display,
{
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(err) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from(err.to_string()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_type(resp: &Response) -> Option<&str> {
        resp.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    fn strings_are_200_text() {
        let resp = String::from("hi").into_response();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.body().as_ref(), b"hi");
        assert_eq!(content_type(&resp), Some(TEXT_PLAIN));
        let resp = "static".into_response();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.body().as_ref(), b"static");
    }

    #[test]
    fn tuples_carry_the_status() {
        let resp = (StatusCode::NOT_FOUND, String::from("nope")).into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.body().as_ref(), b"nope");
        let resp = (StatusCode::ACCEPTED, "queued").into_response();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert_eq!(resp.body().as_ref(), b"queued");
    }

    #[test]
    fn status_code_alone_has_empty_body() {
        let resp = StatusCode::NO_CONTENT.into_response();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert!(resp.body().is_empty());
        assert_eq!(content_type(&resp), None);
    }

    #[test]
    fn response_passes_through_unchanged() {
        let built = http::Response::builder()
            .status(StatusCode::IM_A_TEAPOT)
            .header("x-custom", "1")
            .body(Bytes::from_static(b"tea"))
            .expect("valid response");
        let resp = built.into_response();
        assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(resp.headers()["x-custom"], "1");
        assert_eq!(content_type(&resp), None);
    }

    #[test]
    fn results_map_errors_to_500() {
        let ok: Result<&'static str, std::io::Error> = Ok("fine");
        assert_eq!(ok.into_response().status(), StatusCode::OK);
        let err: Result<String, String> = Err("database unreachable".into());
        let resp = err.into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.body().as_ref(), b"database unreachable");
        assert_eq!(content_type(&resp), Some(TEXT_PLAIN));
    }
}
