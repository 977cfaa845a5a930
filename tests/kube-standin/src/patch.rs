//! PATCH bodies: which kind of patch a content type names, and applying it.

use bytes::Bytes;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// The patch types of `PATCH` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`: treated as a merge patch (lists are replaced,
    /// never merged by key; `$patch` directives are not understood).
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply as a merge patch of the applied object
    /// into the existing one, created if absent (no field ownership).
    Apply,
    /// `application/json-patch+json` (RFC 6902).
    Json,
}

impl PatchKind {
    /// The patch kind of a `Content-Type` (parameters ignored).
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            "application/json-patch+json" => Ok(PatchKind::Json),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
            ))),
        }
    }
}

/// A JSON body (or, for apply patches, JSON or YAML).
pub fn parse_body(kind: Option<PatchKind>, body: &Bytes) -> ApiResult<Value> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(json_err) if kind == Some(PatchKind::Apply) => {
            serde_yaml::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("error decoding YAML: {e} (as JSON: {json_err})"))
            })
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "error decoding JSON body: {e}"
        ))),
    }
}

/// Applies `patch` to `target` in place.
pub fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> ApiResult<()> {
    match kind {
        PatchKind::Merge | PatchKind::Strategic | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            // As the API server's JSON patch library: `test` of an absent path against
            // `null` passes (kube-rs's finalizer helper adds the first finalizer that way).
            // Ops apply in order, so absence is judged against the document as patched so far;
            // a failed op leaves `target` as it was.
            let mut patched = target.clone();
            for op in ops.0 {
                if let json_patch::PatchOperation::Test(test) = &op
                    && test.value.is_null()
                    && patched.pointer(test.path.as_str()).is_none()
                {
                    continue;
                }
                json_patch::patch(&mut patched, &[op])
                    .map_err(|e| ApiError::invalid(format!("the JSON patch failed: {e}")))?;
            }
            *target = patched;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_replaces_lists_and_deletes_nulls() {
        let mut doc = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        apply(
            PatchKind::Strategic,
            &mut doc,
            &json!({"a": {"c": [3]}, "d": null}),
        )
        .expect("patch");
        assert_eq!(doc, json!({"a": {"b": 1, "c": [3]}}));
    }

    #[test]
    fn json_patch_ops_and_failures() {
        let mut doc = json!({"metadata": {}, "spec": {"holder": "a"}});
        let ops = json!([{"op": "test", "path": "/spec/holder", "value": "a"}, {"op": "replace", "path": "/spec/holder", "value": "b"}]);
        apply(PatchKind::Json, &mut doc, &ops).expect("patch");
        assert_eq!(doc, json!({"metadata": {}, "spec": {"holder": "b"}}));
        let failing = json!([{"op": "test", "path": "/spec/holder", "value": "a"}]);
        assert_eq!(
            apply(PatchKind::Json, &mut doc, &failing).map_err(|e| e.code),
            Err(422)
        );
        // kube-rs's first finalizer: absent compares equal to null, present does not.
        let first = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                           {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]);
        apply(PatchKind::Json, &mut doc, &first).expect("absent is null");
        assert_eq!(doc["metadata"]["finalizers"], json!(["f"]));
        assert_eq!(
            apply(PatchKind::Json, &mut doc, &first).map_err(|e| e.code),
            Err(422),
            "present is not null, and nothing of the failed patch stays"
        );
        assert_eq!(doc["metadata"]["finalizers"], json!(["f"]));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml; charset=utf-8"),
            Ok(PatchKind::Apply)
        );
        assert_eq!(
            PatchKind::from_content_type("text/plain").map_err(|e| e.code),
            Err(415)
        );
        let yaml = Bytes::from_static(b"metadata:\n  name: x\n");
        assert_eq!(
            parse_body(Some(PatchKind::Apply), &yaml),
            Ok(json!({"metadata": {"name": "x"}}))
        );
    }
}
