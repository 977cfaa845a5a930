//! API errors, answered as `kind: Status` bodies (what kube-rs parses into `kube::Error::Api`).

use serde_json::{Value, json};

/// An error the API answers with: an HTTP code, a Kubernetes `reason` and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// The HTTP status code, also `Status.code`.
    pub code: u16,
    /// `Status.reason`: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Gone`, ...
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    /// 404 NotFound.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(404, "NotFound", format!("{what} not found"))
    }

    /// 404 NotFound of a path that names no resource (or an unknown one).
    pub fn no_resource() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(what: impl std::fmt::Display) -> Self {
        Self::new(409, "AlreadyExists", format!("{what} already exists"))
    }

    /// 409 Conflict: a write based on a stale `resourceVersion`.
    pub fn conflict(what: impl std::fmt::Display) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {what}: the object has been modified; \
                 please apply your changes to the latest version and try again"
            ),
        )
    }

    /// 403 Forbidden: RBAC refused the request.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 422 Invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410 Gone (`Expired`): a watch from a resourceVersion older than the kept history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// The `kind: Status` body.
    pub fn status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// What a request handler returns.
pub type ApiResult<T> = Result<T, ApiError>;
