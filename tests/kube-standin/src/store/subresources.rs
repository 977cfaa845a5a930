//! The scale and token subresources.

use serde_json::{Value, json};

use super::{Store, Target, get_path, meta_str, set_path};
use crate::error::{ApiError, ApiResult};
use crate::patch::{self, PatchKind};
use crate::resources::{Resource, SelectorSource};
use crate::selector::render_label_selector;

impl Store {
    /// The `autoscaling/v1` Scale of an object.
    pub fn scale(&self, res: &Resource, ns: &str, name: &str) -> ApiResult<Value> {
        let object = self.get(res, ns, name)?;
        Self::scale_of(res, &object)
    }

    fn scale_of(res: &Resource, object: &Value) -> ApiResult<Value> {
        let Some(paths) = &res.scale else {
            return Err(ApiError::not_found(format!(
                "{}/scale",
                res.group_resource()
            )));
        };
        let number = |p: &[String]| get_path(object, p).and_then(Value::as_i64).unwrap_or(0);
        let selector = match &paths.selector {
            SelectorSource::LabelSelector(p) => get_path(object, p).map(render_label_selector),
            SelectorSource::String(p) => get_path(object, p)
                .and_then(Value::as_str)
                .map(str::to_string),
            SelectorSource::None => None,
        };
        let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
        let mut status = json!({"replicas": number(&paths.status_replicas)});
        if let Some(selector) = selector {
            status["selector"] = Value::String(selector);
        }
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
                "creationTimestamp": meta.get("creationTimestamp"),
            },
            "spec": {"replicas": number(&paths.spec_replicas)},
            "status": status,
        }))
    }

    /// `PUT` of a Scale, or `PATCH` (`patch` = `Some`): sets the object's replicas, with the
    /// same resourceVersion rule as every write.
    pub fn write_scale(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        body: &Value,
        patch: Option<PatchKind>,
    ) -> ApiResult<Value> {
        let existing = self.get(res, ns, name)?;
        let mut scale = Self::scale_of(res, &existing)?;
        match patch {
            Some(kind) => patch::apply(kind, &mut scale, body)?,
            None => scale = body.clone(),
        }
        if let Some(rv) = meta_str(&scale, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(&existing, "resourceVersion")
        {
            return Err(ApiError::conflict(Self::describe(res, name)));
        }
        let Some(replicas) = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .filter(|r| *r >= 0)
        else {
            return Err(ApiError::invalid(
                "Scale is invalid: spec.replicas: must be a non-negative integer",
            ));
        };
        let mut next = existing.clone();
        if let Some(paths) = &res.scale {
            set_path(&mut next, &paths.spec_replicas, json!(replicas));
        }
        let written = self.write(res, ns, name, existing, next, Target::Main)?;
        Self::scale_of(res, &written)
    }

    /// `POST serviceaccounts/{name}/token`: a TokenRequest with a made-up, signed-looking JWT.
    pub fn token_request(&mut self, ns: &str, name: &str, body: &Value) -> ApiResult<Value> {
        use base64::Engine as _;
        let account = self
            .find(&(String::new(), "serviceaccounts".to_string()), ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("serviceaccounts \"{name}\"")))?;
        let seconds = body
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(3600)
            .max(600);
        let audiences = body
            .pointer("/spec/audiences")
            .cloned()
            .unwrap_or_else(|| json!([]));
        let issued = jiff::Timestamp::now();
        let expires = issued
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .map_err(|e| ApiError::invalid(format!("expirationSeconds: {e}")))?;
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let header = json!({"alg": "RS256", "kid": "kube-standin"});
        let claims = json!({
            "aud": audiences,
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": format!("system:serviceaccount:{ns}:{name}"),
            "iat": issued.as_second(),
            "nbf": issued.as_second(),
            "exp": expires.as_second(),
            "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": meta_str(&account, "uid")}},
        });
        let signature: Vec<u8> = (0..4).flat_map(|_| self.random().to_be_bytes()).collect();
        let token = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes()),
            b64(&signature)
        );
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
            "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": body.pointer("/spec/boundObjectRef")},
            "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()},
        }))
    }
}
