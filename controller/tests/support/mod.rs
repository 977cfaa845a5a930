//! The mock API server of the controller's request tests: `tower-test`'s handle, one request
//! at a time, checked for method and exact path and query, answered as the API server would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

/// The API server's end of the mock.
pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The next request, checked for method and exact path+query; its body as JSON (or Null).
/// A request that does not come within 5 s fails the test.
pub async fn expect(handle: &mut Handle, method: &str, uri: &str) -> (Value, Reply) {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request came; expected {method} {uri}"))
        .expect("the client went away");
    assert_eq!(
        (
            request.method().as_str(),
            request.uri().to_string().as_str()
        ),
        (method, uri),
        "unexpected request"
    );
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (body, Reply(send))
}

/// The answer to one request.
pub struct Reply(pub tower_test::mock::SendResponse<Response<Body>>);

impl Reply {
    /// Answers `status` with a JSON body.
    pub fn json(self, status: u16, body: &Value) {
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap();
        self.0.send_response(response);
    }

    /// Answers a failure `Status` with `code` and `reason`.
    pub fn status(self, code: u16, reason: &str) {
        self.json(
            code,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": reason, "code": code, "message": reason}),
        );
    }

    /// Answers 404 for `what`.
    pub fn not_found(self, what: &str) {
        self.json(
            404,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": format!("{what} not found")}),
        );
    }
}
