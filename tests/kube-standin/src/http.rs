//! Routing: paths and methods to store operations, bodies to JSON, errors to Status bodies.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::UnsyncBoxBody};
use serde_json::{Value, json};

use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::patch::{self, PatchKind};
use crate::rbac::{self, Attributes, Subject};
use crate::resources::Resource;
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::store::{DeleteOptions, Target};
use crate::watch::{self, WatchParams};

/// The response body: JSON, or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

const MAX_BODY: usize = 16 << 20;

/// What a path names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Version,
    Health,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
    Resource {
        group: String,
        version: String,
        namespace: Option<String>,
        plural: String,
        name: Option<String>,
        sub: Option<String>,
    },
}

fn decode(s: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn route(path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| decode(&s.replace('+', "%2B")))
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (group, version, rest) = match s.as_slice() {
        ["version"] => return Some(Route::Version),
        ["healthz" | "readyz" | "livez", ..] => return Some(Route::Health),
        ["api"] => return Some(Route::Api),
        ["apis"] => return Some(Route::Apis),
        ["apis", g] => return Some(Route::Group(g.to_string())),
        ["api", v] => return Some(Route::GroupVersion(String::new(), v.to_string())),
        ["apis", g, v] => return Some(Route::GroupVersion(g.to_string(), v.to_string())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    // `namespaces/{name}/status` is the Namespace's own subresource, not a resource in it.
    let namespace_sub =
        group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() && !namespace_sub => {
            (Some(ns.to_string()), tail)
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (p, None, None),
        [p, n] => (p, Some(n.to_string()), None),
        [p, n, sub] => (p, Some(n.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Route::Resource {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: plural.to_string(),
        name,
        sub,
    })
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.status())
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return error_response(&ApiError::bad_request(format!("reading the body: {e}"))),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let q = query(parts.uri.query());
    // Who the request acts as, when it says (see `rbac`): otherwise the admin.
    let acting_as = parts
        .headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(|user| {
            let groups = parts
                .headers
                .get_all("impersonate-group")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            Subject::impersonated(user, groups)
        });
    let result = dispatch(
        &shared,
        &parts.method,
        parts.uri.path(),
        &q,
        content_type,
        &body,
        acting_as.as_ref(),
    );
    match &result {
        Ok(_) => tracing::debug!(method = %parts.method, uri = %parts.uri, "served"),
        Err(e) => {
            tracing::debug!(method = %parts.method, uri = %parts.uri, code = e.code, reason = e.reason, "refused")
        }
    }
    result.unwrap_or_else(|e| error_response(&e))
}

fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    content_type: &str,
    body: &Bytes,
    acting_as: Option<&Subject>,
) -> ApiResult<Response<Body>> {
    let not_found = ApiError::no_resource;
    let route = route(path).ok_or_else(not_found)?;
    if *method != Method::GET && !matches!(route, Route::Resource { .. }) {
        return Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {path}"
        )));
    }
    let Route::Resource {
        group,
        version,
        namespace,
        plural,
        name,
        sub,
    } = route
    else {
        return crate::discovery::discovery(shared, &route).map(|v| json_response(200, &v));
    };
    if q.get("dryRun").is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::bad_request(
            "dryRun is not supported by the stand-in",
        ));
    }
    let mut store = shared.store();
    let res = store
        .registry()
        .find(&group, &version, &plural)
        .cloned()
        .ok_or_else(not_found)?;
    if (namespace.is_some() && !res.namespaced)
        || (res.namespaced && namespace.is_none() && name.is_some())
    {
        return Err(not_found());
    }
    let ns = namespace.clone().unwrap_or_default();
    let out = |mut v: Value| {
        if v.get("kind").and_then(Value::as_str) == Some(res.kind.as_str()) {
            v["apiVersion"] = Value::String(res.api_version(&version));
        }
        v
    };
    let selectors = || -> ApiResult<Selectors> {
        Ok(Selectors {
            labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?,
            fields: FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?,
        })
    };
    let parse = |kind: Option<PatchKind>| {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if kind.is_none()
            && !(media.is_empty() || media == "application/json" || media.ends_with("+json"))
        {
            // Protobuf or CBOR: client-go falls back to JSON on 415.
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json (got {media:?})"
            )));
        }
        patch::parse_body(kind, body)
    };
    let target = |sub: Option<&str>| match sub {
        None => Ok(Target::Main),
        Some("status") if res.status => Ok(Target::Status),
        Some(other) => Err(ApiError::not_found(format!(
            "{}/{other}",
            res.group_resource()
        ))),
    };
    let sub = sub.as_deref();
    let verb_of = |m: &Method| match (m, name.is_some()) {
        (&Method::GET, false) if is_watch(q) => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, false) => "deletecollection",
        (&Method::DELETE, true) => "delete",
        _ => "other",
    };
    store.count(verb_of(method));
    if let Some(who) = acting_as {
        let resource = match sub {
            Some(sub) => format!("{}/{sub}", res.plural),
            None => res.plural.clone(),
        };
        let attributes = Attributes {
            verb: verb_of(method),
            group: &res.group,
            resource: &resource,
            namespace: &ns,
            name: name.as_deref().unwrap_or_default(),
        };
        rbac::authorize(&store, who, &attributes)?;
    }
    let Some(name) = name else {
        return match *method {
            Method::GET if is_watch(q) => {
                let from = match q.get("resourceVersion").map(String::as_str) {
                    None | Some("") => None,
                    Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                    })?),
                };
                let params = WatchParams {
                    key: res.key(),
                    namespace: namespace.clone(),
                    api_version: res.api_version(&version),
                    kind: res.kind.clone(),
                    selectors: selectors()?,
                    bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
                    initial_events_end: q.get("sendInitialEvents").is_some_and(|v| v == "true"),
                    timeout: Duration::from_secs(
                        q.get("timeoutSeconds")
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(1800)
                            .max(1),
                    ),
                };
                // sendInitialEvents sends the current state first, whatever resourceVersion.
                let from = if params.initial_events_end {
                    None
                } else {
                    from
                };
                let start_rv = store.resource_version();
                let stream = match store.watch(&res.key(), namespace.as_deref(), from) {
                    Ok((first, feed)) => {
                        watch::start(Arc::clone(shared), params, first, feed, start_rv).boxed()
                    }
                    Err(e) => futures::stream::once(async move {
                        Ok(hyper::body::Frame::data(watch::error_line(&e)))
                    })
                    .boxed(),
                };
                drop(store);
                let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                Ok(response)
            }
            Method::GET => {
                let (items, rv) = store.list(&res.key(), namespace.as_deref(), &selectors()?);
                Ok(json_response(
                    200,
                    &list(&res, &version, items.into_iter().map(out).collect(), rv),
                ))
            }
            Method::POST => {
                let created = store.create(&res, &version, &ns, parse(None)?)?;
                Ok(json_response(201, &out(created)))
            }
            Method::DELETE => {
                let options = delete_options(q, body)?;
                let deleted =
                    store.delete_collection(&res, namespace.as_deref(), &selectors()?, &options);
                let rv = store.resource_version();
                Ok(json_response(
                    200,
                    &list(&res, &version, deleted.into_iter().map(out).collect(), rv),
                ))
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on a collection"
            ))),
        };
    };
    if sub == Some("log") && res.group.is_empty() && res.plural == "pods" {
        if *method != Method::GET {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on pods/log"
            )));
        }
        let pod = store.get(&res, &ns, &name)?;
        drop(store);
        let text = crate::logs::answer(shared.log_source().as_ref(), &pod, q)?;
        let mut response = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain"),
        );
        return Ok(response);
    }
    let value = match (method.clone(), sub) {
        (Method::GET, Some("scale")) => store.scale(&res, &ns, &name)?,
        (Method::PUT, Some("scale")) => store.write_scale(&res, &ns, &name, &parse(None)?, None)?,
        (Method::PATCH, Some("scale")) => {
            let kind = PatchKind::from_content_type(content_type)?;
            store.write_scale(&res, &ns, &name, &parse(Some(kind))?, Some(kind))?
        }
        (Method::POST, Some("token")) if res.token => {
            return Ok(json_response(
                201,
                &store.token_request(&ns, &name, &parse(None)?)?,
            ));
        }
        (Method::GET, sub) => {
            target(sub)?;
            out(store.get(&res, &ns, &name)?)
        }
        (Method::PUT, sub) => {
            let target = target(sub)?;
            out(store.update(&res, &ns, &name, parse(None)?, target)?)
        }
        (Method::PATCH, sub) => {
            let target = target(sub)?;
            let kind = PatchKind::from_content_type(content_type)?;
            // As the real API server: custom resources have no strategic merge (no patch
            // strategy metadata), so the patch is refused, not silently merged.
            if kind == PatchKind::Strategic && res.crd.is_some() {
                return Err(ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml ({} is a custom resource)",
                    res.plural
                )));
            }
            let (patched, created) = store.patch(
                &res,
                &version,
                &ns,
                &name,
                kind,
                &parse(Some(kind))?,
                target,
            )?;
            return Ok(json_response(
                if created { 201 } else { 200 },
                &out(patched),
            ));
        }
        (Method::DELETE, None) => out(store.delete(&res, &ns, &name, &delete_options(q, body)?)?),
        (_, Some(sub)) => {
            return Err(ApiError::not_found(format!(
                "{}/{sub}",
                res.group_resource()
            )));
        }
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on an object"
            )));
        }
    };
    Ok(json_response(200, &value))
}

fn is_watch(q: &HashMap<String, String>) -> bool {
    q.get("watch").is_some_and(|w| w == "true" || w == "1")
}

fn list(res: &Resource, version: &str, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", res.kind),
        "apiVersion": res.api_version(version),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

fn delete_options(q: &HashMap<String, String>, body: &Bytes) -> ApiResult<DeleteOptions> {
    let options: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        patch::parse_body(None, body)?
    };
    let policy = options
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or_else(|| q.get("propagationPolicy").map(String::as_str));
    let orphan = match policy {
        None | Some("Background" | "Foreground") => false,
        Some("Orphan") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown propagationPolicy {other:?}"
            )));
        }
    };
    let orphan = orphan || options.get("orphanDependents").and_then(Value::as_bool) == Some(true);
    let pre = |field: &str| {
        options
            .pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(DeleteOptions {
        orphan,
        uid: pre("uid"),
        resource_version: pre("resourceVersion"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |g: &str, v: &str, ns: Option<&str>, p: &str, n: Option<&str>, s: Option<&str>| {
            Some(Route::Resource {
                group: g.into(),
                version: v.into(),
                namespace: ns.map(Into::into),
                plural: p.into(),
                name: n.map(Into::into),
                sub: s.map(Into::into),
            })
        };
        assert_eq!(
            route("/api/v1/namespaces/a/pods"),
            r("", "v1", Some("a"), "pods", None, None)
        );
        assert_eq!(
            route("/api/v1/namespaces/a"),
            r("", "v1", None, "namespaces", Some("a"), None)
        );
        assert_eq!(
            route("/api/v1/namespaces/a/status"),
            r("", "v1", None, "namespaces", Some("a"), Some("status"))
        );
        assert_eq!(
            route("/api/v1/namespaces"),
            r("", "v1", None, "namespaces", None, None)
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/a/deployments/d/scale"),
            r(
                "apps",
                "v1",
                Some("a"),
                "deployments",
                Some("d"),
                Some("scale")
            )
        );
        assert_eq!(
            route("/apis/apps/v1/deployments"),
            r("apps", "v1", None, "deployments", None, None)
        );
        assert_eq!(
            route("/apis/apps/v1"),
            Some(Route::GroupVersion("apps".into(), "v1".into()))
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/a/deployments/d/scale/x"),
            None
        );
        assert_eq!(
            query(Some("labelSelector=a%3Db%2Cc+in+(d)&watch=1"))["labelSelector"],
            "a=b,c in (d)"
        );
    }
}
