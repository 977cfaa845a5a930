//! `POST /hooks/{name}`: a function's webhook (`spec.webhook`), reachable where functions
//! are (the public listener too), for CI systems and other tools that start runs.
//!
//! The caller proves it holds the token one of three ways: `Authorization: Bearer <token>`,
//! `X-Gitlab-Token: <token>` (GitLab's webhooks), or `X-Hub-Signature-256: sha256=<hex>`,
//! the HMAC-SHA256 of the body keyed by the token (GitHub's). Every comparison is constant
//! time. The token is read from its source (`tokenSecret`, as `spec.env`'s secrets) and kept
//! as long as those are; one shorter than `faas_api::webhook::MIN_TOKEN_LEN` turns the
//! webhook off, saying so, rather than guarding it weakly.
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
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::platform::Platform;
use crate::reply::{json_error, json_response};

/// Largest body a webhook takes (a CI system's event fits).
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

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
    let starter = match (platform.scheduler.get(), platform.kube.get()) {
        (Some(scheduler), _) => Starter::Local(scheduler),
        (None, Some(client)) => Starter::Cluster(client),
        // A runtime pod: runs are started by `faas up` or, in a cluster, by the gateway.
        (None, None) => {
            return json_error(
                StatusCode::NOT_IMPLEMENTED,
                "WebhooksNotServedHere",
                "this host starts no runs",
            );
        }
    };
    let (parts, body) = request.into_parts();
    let guard = match guard(platform, &starter, &entry.function, entry.name(), &webhook).await {
        Ok(guard) => guard,
        Err(why) => {
            tracing::warn!(function = %entry.name(), %why, "a webhook is not usable");
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "WebhookUnavailable", &why);
        }
    };
    // A bearer token is checked before the body is read: a stranger's body is not read.
    let shown_early = guard.shown(&parts.headers, None);
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
    if !shown_early && !guard.shown(&parts.headers, Some(&body)) {
        return unauthorized(entry.name());
    }
    let (given, options) = match options_of(&entry.function, &webhook, &body) {
        Ok(options) => options,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, "InvalidOptions", &why),
    };
    let started = match starter {
        Starter::Local(scheduler) => scheduler
            .run_from_webhook(
                entry.name(),
                webhook.schedule.as_deref(),
                (!body.is_empty()).then(|| body.clone()),
                options,
            )
            .map(|handle| handle.id)
            .map_err(|err| json_error(StatusCode::NOT_FOUND, "ScheduleNotFound", &err.to_string())),
        Starter::Cluster(client) => {
            request_run(client, &entry.function, &webhook, &given, options, &body).await
        }
    };
    match started {
        Ok(id) => {
            tracing::info!(function = %entry.name(), run = %id, "run started by webhook");
            json_response(
                StatusCode::ACCEPTED,
                &serde_json::json!({"run": id, "function": entry.function.metadata.name, "phase": "Requested"}),
            )
        }
        Err(refused) => refused,
    }
}

/// Where a webhook's run starts: this platform's scheduler (`faas up`), or, in a cluster, a
/// requested `FunctionRun` the controller runs.
enum Starter<'a> {
    Local(&'a Arc<faas_schedule::Scheduler>),
    Cluster(&'a kube::Client),
}

/// How a webhook's calls are checked: against the token itself (local mode reads it), or,
/// in a cluster, against the keyed digest the controller published (the gateway reads no
/// Secret; GitHub's signatures need the token itself, so there only a shown token counts).
enum Guard {
    Token(String),
    Digest { key: String, digest: String },
}

impl Guard {
    fn shown(&self, headers: &HeaderMap, body: Option<&[u8]>) -> bool {
        match self {
            Guard::Token(token) => shows_token(headers, body, token.as_bytes()),
            Guard::Digest { key, digest } => shown_tokens(headers)
                .any(|shown| faas_api::webhook::matches_digest(key.as_bytes(), shown, digest)),
        }
    }
}

/// The guard of `webhook`: a cluster's from the Function's `status.webhook`, else the token
/// read from its source.
async fn guard(
    platform: &Platform,
    starter: &Starter<'_>,
    function: &Function,
    key: &str,
    webhook: &WebhookSpec,
) -> Result<Guard, String> {
    if let Starter::Local(_) = starter {
        return token(platform, function, key, webhook)
            .await
            .map(Guard::Token);
    }
    let published = function.status.as_ref().and_then(|s| s.webhook.as_ref());
    let digest = published
        .and_then(|w| w.token_digest.clone())
        .ok_or_else(|| {
            published
                .and_then(|w| w.message.clone())
                .unwrap_or_else(|| {
                    "the controller has not published the webhook's token yet".to_owned()
                })
        })?;
    let key = platform
        .config
        .platform_token
        .clone()
        .ok_or("this gateway has no platform token, so it cannot check webhook tokens")?;
    Ok(Guard::Digest { key, digest })
}

/// A run of `function` asked of the cluster: a requested `FunctionRun` in its namespace
/// (`faas_api::requested_run`, `trigger: webhook`), which the leading controller runs.
async fn request_run(
    client: &kube::Client,
    function: &Function,
    webhook: &WebhookSpec,
    given: &BTreeMap<String, Value>,
    options: faas_api::options::Resolved,
    body: &Bytes,
) -> Result<String, Response<ResponseBody>> {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let namespace = function.metadata.namespace.as_deref().unwrap_or("default");
    let schedule = webhook
        .schedule
        .as_deref()
        .unwrap_or(faas_schedule::plan::MANUAL);
    let id = faas_schedule::plan::manual_run_id(name, schedule);
    let asked = faas_api::requested_run(faas_api::RunRequest {
        id: &id,
        function: name,
        schedule,
        given,
        shown: options.shown(),
        payload: (!body.is_empty()).then_some(&body[..]),
        parent: None,
        trigger: faas_api::webhook::TRIGGER,
    })
    .map_err(|why| json_error(StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", &why))?;
    let runs: kube::Api<faas_api::FunctionRun> = kube::Api::namespaced(client.clone(), namespace);
    runs.create(&crate::cluster::scaler::write_params(), &asked)
        .await
        .map_err(|e| {
            tracing::warn!(run = %id, error = %e, "a webhook's run could not be requested");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "RunNotRequested",
                "the run could not be requested; try again",
            )
        })?;
    Ok(id)
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
    let token = faas_api::webhook::token_of(&token).to_owned();
    if let Some(why) = faas_api::webhook::too_short(&token) {
        return Err(format!("{source}: {why}"));
    }
    Ok(token)
}

/// The tokens a request shows as they are: its bearer token and GitLab's header.
fn shown_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let gitlab = headers.get("x-gitlab-token").map(|v| v.as_bytes());
    bearer.into_iter().chain(gitlab)
}

/// Whether the request shows `token`: as a bearer token or GitLab's header, or, given the
/// `body`, as GitHub's HMAC signature of it.
pub fn shows_token(headers: &HeaderMap, body: Option<&[u8]>, token: &[u8]) -> bool {
    if shown_tokens(headers).any(|shown| bool::from(shown.ct_eq(token))) {
        return true;
    }
    match (body, headers.get(SIGNATURE_HEADER)) {
        (Some(body), Some(signature)) => {
            faas_api::webhook::matches_signature(token, body, signature.as_bytes())
        }
        _ => false,
    }
}

/// The run's options from the body: by `optionsFromBody` pointers, else the body's `options`
/// object when it is a JSON object that has one; as given, and resolved against the
/// function's declarations over the webhook's schedule's values.
fn options_of(
    function: &Function,
    webhook: &WebhookSpec,
    body: &Bytes,
) -> Result<(BTreeMap<String, Value>, faas_api::options::Resolved), String> {
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
    let resolved = faas_api::options::for_run(function, webhook.schedule.as_deref(), &given)
        .map_err(|e| e.to_string())?;
    Ok((given, resolved))
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
        use hmac::{Hmac, Mac};
        use sha2::Sha256;
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

    #[tokio::test]
    async fn a_cluster_run_is_requested_under_the_gateways_field_manager() {
        let function: Function = serde_yaml::from_str(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: deploy, namespace: shop}\n\
             spec:\n  runtime: {container: {image: deploy:1, mode: job}}\n  \
             webhook:\n    tokenSecret: {secretKeyRef: {name: hooks, key: deploy}}\n",
        )
        .expect("a function");
        let webhook = function.spec.webhook.clone().expect("a webhook");
        let body = Bytes::from_static(b"{}");
        let (given, resolved) = options_of(&function, &webhook, &body).expect("resolved");
        let (client, mut handle) = faas_kube_mock::client("shop");
        let requesting = tokio::spawn(async move {
            request_run(&client, &function, &webhook, &given, resolved, &body).await
        });
        let (run, reply) = faas_kube_mock::expect(
            &mut handle,
            "POST",
            "/apis/faas.dev/v1alpha1/namespaces/shop/functionruns?&fieldManager=faas-gateway",
        )
        .await;
        assert_eq!(run["spec"]["function"], "deploy", "{run}");
        assert_eq!(run["spec"]["trigger"], "webhook", "{run}");
        reply.json(201, &run);
        let id = requesting.await.expect("joined").expect("requested");
        assert_eq!(run["metadata"]["name"], id.as_str());
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
        let (_, resolved) = options_of(&function, &webhook, &body).expect("resolved");
        assert_eq!(resolved.shown()["branch"], "main");
        assert_eq!(resolved.shown()["dry_run"], true);

        let err = options_of(&function, &webhook, &Bytes::from_static(b"not json"))
            .expect_err("branch is required");
        assert!(err.contains("branch"), "{err}");

        webhook.options_from_body = [("branch".to_owned(), "/ref".to_owned())].into();
        let push = Bytes::from_static(br#"{"ref": "refs/heads/main", "options": {"branch": "x"}}"#);
        let (given, resolved) = options_of(&function, &webhook, &push).expect("resolved");
        assert_eq!(
            given["branch"], "refs/heads/main",
            "what a cluster request carries"
        );
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
