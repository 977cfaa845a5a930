//! The mock Kubernetes API server of the request tests (the CLI's cluster commands, the
//! controller): `tower-test`'s handle, kube-rs's documented approach since no API server runs
//! here. A test plays the API server one request at a time: it checks the method and the exact
//! path and query, reads the body as JSON, and answers as the API server would. A request that
//! does not come in time fails the test; an unexpected one fails the assertion.
//!
//! A dev-dependency only: nothing in a shipped binary links it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

/// The API server's end of the mock.
pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// How long a test waits for a request it expects.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A client whose requests go to the returned handle; `namespace` is its default namespace.
pub fn client(namespace: &str) -> (kube::Client, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, namespace), handle)
}

/// The next request as it came, and the way to answer it; fails the test after [`PATIENCE`].
pub async fn next(handle: &mut Handle) -> (Request<Body>, Reply) {
    let (request, send) = tokio::time::timeout(PATIENCE, handle.next_request())
        .await
        .expect("no request came in time")
        .expect("the client went away");
    (request, Reply(send))
}

/// The next request, checked for method and exact path+query; its body as JSON (or Null).
pub async fn expect(handle: &mut Handle, method: &str, uri: &str) -> (Value, Reply) {
    let (request, send) = tokio::time::timeout(PATIENCE, handle.next_request())
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
    if method == "PATCH" {
        check_patch_type(&request);
    }
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (body, Reply(send))
}

/// What a real API server checks of a PATCH before anything else, checked here too (a path
/// match alone would let through a patch type a real server refuses with 415):
/// - a server-side apply (`fieldManager=` with `force=true`) is `application/apply-patch+yaml`;
/// - a custom resource (`/apis/faas.dev/...`) never takes a strategic merge patch;
/// - every patch names one of the types Kubernetes knows.
pub fn check_patch_type(request: &Request<Body>) {
    let uri = request.uri().to_string();
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let apply = uri.contains("fieldManager=") && uri.contains("force=true");
    if apply {
        assert_eq!(
            content_type, "application/apply-patch+yaml",
            "a server-side apply sent as {content_type:?}: PATCH {uri}"
        );
    }
    assert!(
        [
            "application/apply-patch+yaml",
            "application/merge-patch+json",
            "application/json-patch+json",
            "application/strategic-merge-patch+json",
        ]
        .contains(&content_type),
        "PATCH {uri} with content-type {content_type:?}"
    );
    if request.uri().path().starts_with("/apis/faas.dev/") {
        assert_ne!(
            content_type, "application/strategic-merge-patch+json",
            "a real API server refuses a strategic merge patch on a custom resource: PATCH {uri}"
        );
    }
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

    /// Answers `status` with raw bytes (a log stream, say).
    pub fn bytes(self, status: u16, body: Vec<u8>) {
        let response = Response::builder()
            .status(status)
            .body(Body::from(body))
            .unwrap();
        self.0.send_response(response);
    }

    /// Answers a failure `Status` with `code` and `reason` (also its message).
    pub fn status(self, code: u16, reason: &str) {
        self.failure(code, reason, reason);
    }

    /// Answers a failure `Status` with `code`, `reason` and `message`.
    pub fn failure(self, code: u16, reason: &str, message: &str) {
        self.json(
            code,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": reason, "code": code, "message": message}),
        );
    }

    /// Answers 404 for `what`.
    pub fn not_found(self, what: &str) {
        self.failure(404, "NotFound", &format!("{what} not found"));
    }
}
