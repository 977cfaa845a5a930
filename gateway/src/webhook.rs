//! `POST /hooks/{name}`: a function's webhook (`spec.webhook`), reachable where functions
//! are (the public listener too), for CI systems and other tools that start runs.
//!
//! The caller proves it holds the token one of three ways: `Authorization: Bearer <token>`,
//! `X-Gitlab-Token: <token>` (GitLab's webhooks), or `X-Hub-Signature-256: sha256=<hex>`,
//! the HMAC-SHA256 of the body keyed by the token (GitHub's). Every comparison is constant
//! time. The token is read from its source (`tokenSecret`, as `spec.env`'s secrets) and kept
//! as long as those are; one shorter than [`MIN_TOKEN_LEN`] turns the webhook off, saying
//! so, rather than guarding it weakly.
//!
//! The body (at most [`MAX_BODY_BYTES`]) is the run's payload; the run's options come from it
//! by JSON pointer (`optionsFromBody`) or from its `options` object, and are resolved as a
//! run by hand's are (`faas_api::options::for_run`): 400 `InvalidOptions` naming each, and no
//! run. The answer is 202 with the run's id; the run is recorded `trigger: webhook`.
//!
//! A function without an enabled webhook and an unknown name get the same 404, so the public
//! learns nothing about which functions exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_api::{Function, SecretRef, WebhookSpec};
use faas_runtime::ResponseBody;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::platform::Platform;
use crate::reply::{json_error, json_response};

/// Largest body a webhook takes (a CI system's event fits).
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Shortest token a webhook accepts.
pub const MIN_TOKEN_LEN: usize = 16;

/// How long a token that could not be read is not asked for again: a stranger's calls must
/// not become a call to AWS each.
const FAILED_READ_KEPT: Duration = Duration::from_secs(5);

/// Webhook tokens read, by function: (source, value or why not, read at, kept for). A
/// changed source is read again at once.
#[derive(Default)]
pub struct Tokens {
    known: Mutex<HashMap<String, Read>>,
}

type Read = (SecretRef, Result<String, String>, Instant, Duration);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

impl Tokens {
    fn cached(&self, key: &str, source: &SecretRef) -> Option<Result<String, String>> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let (held, read, at, ttl) = known.get(key)?;
        (held == source && at.elapsed() < *ttl).then(|| read.clone())
    }

    fn keep(&self, key: &str, source: SecretRef, read: Result<String, String>, ttl: Duration) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), (source, read, Instant::now(), ttl));
    }
}

pub async fn serve(
    platform: &Arc<Platform>,
    name: &str,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let not_found = || {
        json_error(
            StatusCode::NOT_FOUND,
            "WebhookNotFound",
            &format!("no webhook at /hooks/{name}"),
        )
    };
    let Some(entry) = platform.registry.get(name) else {
        return not_found();
    };
    let Some(webhook) = entry.function.spec.webhook.clone().filter(|w| w.enabled) else {
        return not_found();
    };
    if request.method() != http::Method::POST {
        let mut refused = json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "a webhook takes POST",
        );
        refused
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        return refused;
    }
    let Some(scheduler) = platform.scheduler.get() else {
        return json_error(
            StatusCode::NOT_IMPLEMENTED,
            "WebhooksNotServedHere",
            "this gateway starts no runs: webhooks are served by `faas up` (a cluster's gateway does not serve them yet)",
        );
    };
    let (parts, body) = request.into_parts();
    let token = match token(platform, &entry.function, entry.name(), &webhook).await {
        Ok(token) => token,
        Err(why) => {
            tracing::warn!(function = %entry.name(), %why, "a webhook is not usable");
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "WebhookUnavailable", &why);
        }
    };
    // A bearer token is checked before the body is read: a stranger's body is not read.
    let shown_early = shows_token(&parts.headers, None, token.as_bytes());
    if !shown_early && !parts.headers.contains_key(SIGNATURE_HEADER) {
        return unauthorized(entry.name());
    }
    let (body, _charge) = match crate::invoke::read_body_within(
        platform,
        entry.name(),
        &parts.headers,
        body,
        MAX_BODY_BYTES,
        || format!("a webhook's body is at most {} KiB", MAX_BODY_BYTES / 1024),
    )
    .await
    {
        Ok(read) => read,
        Err(refused) => return *refused,
    };
    if !shown_early && !shows_token(&parts.headers, Some(&body), token.as_bytes()) {
        return unauthorized(entry.name());
    }
    let options = match options_of(&entry.function, &webhook, &body) {
        Ok(options) => options,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, "InvalidOptions", &why),
    };
    let payload = (!body.is_empty()).then_some(body);
    let function = entry.name().to_owned();
    match scheduler.run_from_webhook(&function, webhook.schedule.as_deref(), payload, options) {
        Ok(handle) => {
            tracing::info!(function = %function, run = %handle.id, "run started by webhook");
            json_response(
                StatusCode::ACCEPTED,
                &serde_json::json!({"run": handle.id, "function": function, "phase": "Running"}),
            )
        }
        Err(err) => json_error(StatusCode::NOT_FOUND, "ScheduleNotFound", &err.to_string()),
    }
}

/// GitHub's signature header: `sha256=` and the HMAC-SHA256 of the body, in hex.
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

fn unauthorized(function: &str) -> Response<ResponseBody> {
    tracing::info!(function, "a webhook call without its token was refused");
    let mut refused = json_error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "show the webhook's token: Authorization: Bearer <token>, X-Gitlab-Token, or X-Hub-Signature-256",
    );
    refused.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"faas webhook\""),
    );
    refused
}

/// The webhook's token, from the cache or its source; an error names why it cannot be used.
async fn token(
    platform: &Platform,
    function: &Function,
    key: &str,
    webhook: &WebhookSpec,
) -> Result<String, String> {
    let source = webhook
        .token_secret
        .source()
        .map_err(|why| format!("spec.webhook.tokenSecret {why}"))?;
    let token = match platform.webhook_tokens.cached(key, &source) {
        Some(read) => read?,
        None => {
            let secrets = platform
                .secrets
                .get()
                .ok_or("this gateway reads no secrets, so no webhook token")?;
            let namespace = function.metadata.namespace.as_deref().unwrap_or_default();
            let (read, ttl) = match secrets.read_one(namespace, &source).await {
                Ok((token, ttl)) => (Ok(token), ttl),
                Err(why) => (Err(why), FAILED_READ_KEPT),
            };
            platform
                .webhook_tokens
                .keep(key, source.clone(), read.clone(), ttl);
            read?
        }
    };
    // A file's trailing newline is not part of a token someone pastes.
    let token = token.trim_end_matches(['\n', '\r']).to_owned();
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "the webhook's token ({source}) is shorter than {MIN_TOKEN_LEN} characters: it is turned off until a longer one is set"
        ));
    }
    Ok(token)
}

/// Whether the request shows `token`: as a bearer token or GitLab's header, or, given the
/// `body`, as GitHub's HMAC signature of it.
pub fn shows_token(headers: &HeaderMap, body: Option<&[u8]>, token: &[u8]) -> bool {
    let same = |shown: &[u8]| bool::from(shown.ct_eq(token));
    if let Some(value) = headers.get(http::header::AUTHORIZATION)
        && let Some(shown) = value.as_bytes().strip_prefix(b"Bearer ")
        && same(shown)
    {
        return true;
    }
    if let Some(shown) = headers.get("x-gitlab-token")
        && same(shown.as_bytes())
    {
        return true;
    }
    if let Some(body) = body
        && let Some(signature) = headers.get(SIGNATURE_HEADER)
        && let Some(hex) = signature.as_bytes().strip_prefix(b"sha256=")
        && let Some(shown) = decode_hex(hex)
        && let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token)
    {
        mac.update(body);
        return mac.verify_slice(&shown).is_ok();
    }
    false
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// The run's options from the body: by `optionsFromBody` pointers, else the body's `options`
/// object when it is a JSON object that has one; resolved against the function's
/// declarations over the webhook's schedule's values.
fn options_of(
    function: &Function,
    webhook: &WebhookSpec,
    body: &Bytes,
) -> Result<faas_api::options::Resolved, String> {
    let text = std::str::from_utf8(body).ok();
    let given: BTreeMap<String, Value> = if webhook.options_from_body.is_empty() {
        text.and_then(|t| serde_json::from_str::<Value>(t).ok())
            .and_then(|v| match v.get("options") {
                Some(Value::Object(map)) => Some(map.clone().into_iter().collect()),
                _ => None,
            })
            .unwrap_or_default()
    } else {
        faas_api::options::from_document(text, &webhook.options_from_body, "the request body")?
    };
    faas_api::options::for_run(function, webhook.schedule.as_deref(), &given)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"0123456789abcdef-token";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("a header value"));
        }
        map
    }

    fn github_signature(body: &[u8], key: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key");
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    #[test]
    fn the_token_is_shown_by_bearer_gitlab_or_github_signature_and_nothing_else() {
        let body = br#"{"ref": "refs/heads/main"}"#;
        let bearer = format!("Bearer {}", std::str::from_utf8(TOKEN).unwrap_or_default());
        assert!(shows_token(
            &headers(&[("authorization", &bearer)]),
            None,
            TOKEN
        ));
        assert!(shows_token(
            &headers(&[("x-gitlab-token", "0123456789abcdef-token")]),
            None,
            TOKEN
        ));
        let signed = github_signature(body, TOKEN);
        assert!(shows_token(
            &headers(&[("x-hub-signature-256", &signed)]),
            Some(body),
            TOKEN
        ));
        assert!(
            !shows_token(&headers(&[("x-hub-signature-256", &signed)]), None, TOKEN),
            "a signature needs the body"
        );

        for refused in [
            headers(&[]),
            headers(&[("authorization", "Bearer 0123456789abcdef-toke")]),
            headers(&[("authorization", "Bearer 0123456789abcdef-token ")]),
            headers(&[("authorization", "Basic 0123456789abcdef-token")]),
            headers(&[("x-gitlab-token", "wrong")]),
            // Signed with another key, or over another body, or not hex.
            headers(&[("x-hub-signature-256", &github_signature(body, b"other"))]),
            headers(&[("x-hub-signature-256", &github_signature(b"{}", TOKEN))]),
            headers(&[("x-hub-signature-256", "sha256=zz")]),
            headers(&[("x-hub-signature-256", &signed.replace("sha256=", "sha1="))]),
        ] {
            assert!(!shows_token(&refused, Some(body), TOKEN), "{refused:?}");
        }
    }

    #[test]
    fn options_come_from_pointers_or_the_bodys_options_object() {
        let function: Function = serde_yaml::from_str(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: deploy}\nspec:\n  \
             runtime: {container: {command: [sh, d.sh], mode: job}}\n  options:\n  \
             - {name: branch, required: true}\n  - {name: dry_run, type: boolean, default: false}\n  \
             webhook:\n    tokenSecret: {secretKeyRef: {name: hooks, key: deploy}}\n",
        )
        .expect("a function");
        let mut webhook = function.spec.webhook.clone().expect("a webhook");
        let body = Bytes::from_static(br#"{"options": {"branch": "main", "dry_run": true}}"#);
        let resolved = options_of(&function, &webhook, &body).expect("resolved");
        assert_eq!(resolved.shown()["branch"], "main");
        assert_eq!(resolved.shown()["dry_run"], true);

        let err = options_of(&function, &webhook, &Bytes::from_static(b"not json"))
            .expect_err("branch is required");
        assert!(err.contains("branch"), "{err}");

        webhook.options_from_body = [("branch".to_owned(), "/ref".to_owned())].into();
        let push = Bytes::from_static(br#"{"ref": "refs/heads/main", "options": {"branch": "x"}}"#);
        let resolved = options_of(&function, &webhook, &push).expect("resolved");
        assert_eq!(
            resolved.shown()["branch"],
            "refs/heads/main",
            "the pointers win"
        );
        let err = options_of(&function, &webhook, &Bytes::from_static(b"{}"))
            .expect_err("nothing at /ref");
        assert_eq!(
            err,
            "option branch: the request body has nothing at \"/ref\""
        );
    }
}
