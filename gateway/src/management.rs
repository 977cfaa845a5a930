//! The management API of local mode: list, describe, deploy (manifest + artifact), delete.
//!
//! `PUT /system/functions/{name}` takes either `multipart/form-data` with a `manifest` part
//! (YAML or JSON) and an `artifact` part (the `.wasm`), or a bare manifest whose source the
//! server can read itself. A deploy is synchronous: the artifact is compiled before the answer,
//! so a broken artifact is refused with the reason and the running version keeps serving.
//! Deployed functions are persisted under the state directory and come back after a restart.

use std::sync::Arc;

use bytes::Bytes;
use faas_api::Function;
use faas_runtime::ResponseBody;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;

use crate::platform::Platform;
use crate::registry::{Entry, Origin};
use crate::reply::{json_error, json_response};

/// What `GET /system/functions` lists for each function.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    name: String,
    /// Whether it can serve now (`state` is not `NotReady`).
    ready: bool,
    /// `Ready`, `Degraded` or `NotReady` ([`crate::health`]).
    state: crate::health::State,
    /// Why the state is not `Ready`; empty when it is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<crate::health::Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    routes: Vec<String>,
    timeout: String,
    memory_bytes: u64,
    concurrency: u32,
    max_body_bytes: u64,
    in_flight: usize,
    /// Calls queued for a concurrency slot (at most `concurrency` of them; more get 429).
    waiting: usize,
    origin: Origin,
    updated: String,
}

impl Summary {
    /// Summarizes one entry of `platform`, its SQS triggers' state included.
    pub fn in_platform(platform: &Platform, entry: &Entry) -> Self {
        Self::with_triggers(
            entry,
            &triggers_of(platform, entry),
            platform.builds.of(entry.name()).as_deref(),
        )
    }

    /// The state of one entry of `platform`, its SQS triggers' state included.
    pub fn health_in(platform: &Platform, entry: &Entry) -> crate::health::Health {
        crate::health::of(
            entry,
            &triggers_of(platform, entry),
            platform.builds.of(entry.name()).as_deref(),
        )
    }

    /// Summarizes one entry, without its SQS triggers' state.
    pub fn of(entry: &Entry) -> Self {
        Self::with_triggers(entry, &[], None)
    }

    fn with_triggers(
        entry: &Entry,
        triggers: &[faas_sqs::TriggerStatus],
        build_failure: Option<&str>,
    ) -> Self {
        let health = crate::health::of(entry, triggers, build_failure);
        let name = entry.name().to_owned();
        let mut routes = vec![format!("/function/{name}")];
        if let Some(http) = &entry.function.spec.http {
            routes.extend(http.path.iter().cloned());
            routes.extend(http.hosts.iter().map(|h| format!("http://{h}/")));
        }
        let loaded = entry.state.as_ref().ok();
        let not_ready = health.state == crate::health::State::NotReady;
        Self {
            ready: !not_ready,
            // Why it cannot serve: what `ready: false` always came with.
            reason: not_ready.then(|| health.summary()),
            state: health.state,
            reasons: health.reasons,
            last_error: entry.last_error.clone().filter(|_| loaded.is_some()),
            kind: loaded.map(|l| l.kind),
            sha256: loaded.map(|l| l.sha256.clone()),
            routes,
            timeout: humantime::format_duration(entry.limits.timeout).to_string(),
            memory_bytes: entry.limits.memory_bytes,
            concurrency: entry.limits.concurrency,
            max_body_bytes: entry.limits.max_body_bytes,
            in_flight: entry.admission.in_flight(entry.limits.concurrency),
            waiting: entry.admission.waiting(),
            origin: entry.origin.clone(),
            updated: jiff::Timestamp::try_from(entry.updated)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            name,
        }
    }
}

/// What the SQS triggers of `entry` report now (none before the pollers start).
fn triggers_of(platform: &Platform, entry: &Entry) -> Vec<faas_sqs::TriggerStatus> {
    platform
        .sqs
        .get()
        .map(|p| p.status_of(entry.name()))
        .unwrap_or_default()
}

/// Serves `/system/...`.
pub async fn handle(
    platform: &Arc<Platform>,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = request.uri().path().trim_end_matches('/').to_owned();
    // Names arrive percent-encoded (the CLI escapes every segment it sends).
    let decoded: Vec<String> = path
        .split('/')
        .skip(1)
        .map(crate::runs_api::decoded)
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    if matches!(
        segments.as_slice(),
        ["system", "functions", _, "runs"]
            | ["system", "functions", _, "schedules", _, _]
            | ["system", "runs", ..]
            | ["system", "scheduler"]
    ) {
        if let Some(response) = crate::runs_api::handle(platform, request, &segments).await {
            return response;
        }
        return json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no management endpoint at {path}"),
        );
    }
    match (request.method(), segments.as_slice()) {
        (&Method::GET, ["system", "stats"]) => {
            let only = request
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|pair| pair.strip_prefix("function="))
                .map(crate::runs_api::decoded);
            json_response(StatusCode::OK, &stats_json(platform, only.as_deref()))
        }
        (&Method::GET, ["system", "functions"]) => {
            let all: Vec<Summary> = platform
                .registry
                .list()
                .iter()
                .map(|e| Summary::in_platform(platform, e))
                .collect();
            json_response(StatusCode::OK, &all)
        }
        (&Method::GET, ["system", "functions", name, "logs"]) => {
            if platform.registry.get(name).is_none() {
                return not_found(name);
            }
            let query = request.uri().query().unwrap_or_default();
            json_response(StatusCode::OK, &crate::logs::json(name, query))
        }
        (&Method::GET, ["system", "functions", name]) => match platform.registry.get(name) {
            Some(entry) => {
                let runs = crate::runs_api::function_runs_detail(platform, name).await;
                let detail = serde_json::json!({
                    "summary": Summary::in_platform(platform, &entry),
                    "function": crate::platform::shown(&entry.function, &platform.config.host),
                    "schedules": runs["schedules"],
                    "recentRuns": runs["recentRuns"],
                    "sqsTriggers": crate::sqs::status_json(platform, name),
                    "process": entry.state.as_ref().ok().and_then(|l| l.invoker.status()),
                });
                json_response(StatusCode::OK, &detail)
            }
            None => not_found(name),
        },
        (&Method::PUT | &Method::DELETE, ["system", "functions", _])
            if !platform.config.host.manages_functions =>
        {
            json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "ReadOnly",
                &format!(
                    "this is a faas-runtime {} pod: its functions come from Function resources \
                     (faas deploy, kubectl apply), not from this API",
                    platform.config.host.name
                ),
            )
        }
        (&Method::PUT, ["system", "functions", name]) => {
            let name = (*name).to_owned();
            deploy(platform, &name, request).await
        }
        (&Method::DELETE, ["system", "functions", name]) => {
            if let Some(refused) = refuse_file_delete(platform, name) {
                return refused;
            }
            delete(platform, name)
        }
        (&Method::GET, ["system", "info"]) => json_response(
            StatusCode::OK,
            &serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "mode": platform.config.host.name,
                "poolingAllocator": platform.runtime.as_ref().is_some_and(|r| r.pooling()),
            }),
        ),
        (&Method::GET, ["system", "triggers"]) => {
            json_response(StatusCode::OK, &crate::sqs::all_json(platform))
        }
        (&Method::GET, ["system", "async"]) => match platform.async_queue.get() {
            Some(queue) => match queue.inspect().await {
                Ok(state) => json_response(StatusCode::OK, &state),
                Err(e) => json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "QueueUnavailable",
                    &e.to_string(),
                ),
            },
            None => json_error(
                StatusCode::NOT_FOUND,
                "AsyncNotConfigured",
                "asynchronous calls are not configured here",
            ),
        },
        (
            &Method::POST,
            [
                "system",
                "async",
                "dead-letters",
                action @ ("replay" | "discard"),
            ],
        ) => {
            let query = crate::runs_api::Query::parse(request.uri().query());
            dead_letters(platform, action, &query).await
        }
        (&Method::POST, ["system", "functions", name, "triggers", "sqs", "redrive"]) => {
            let query = crate::runs_api::Query::parse(request.uri().query());
            sqs_redrive(platform, name, query.get("queue")).await
        }
        (_, ["system", "functions", ..])
        | (_, ["system", "info"])
        | (_, ["system", "async", ..])
        | (_, ["system", "triggers"]) => json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{} is not supported on {path}", request.method()),
        ),
        _ => json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no management endpoint at {path}"),
        ),
    }
}

/// `POST /system/functions/NAME/triggers/sqs/redrive[?queue=URL]`: moves the messages of
/// the dead-letter queue of each of the function's SQS triggers (or the one on `queue`) back
/// to the trigger's queue.
async fn sqs_redrive(
    platform: &Platform,
    name: &str,
    queue: Option<&str>,
) -> Response<ResponseBody> {
    use faas_sqs::redrive::RedriveError;
    let Some(entry) = platform.registry.get(name) else {
        return not_found(name);
    };
    match crate::sqs::redrive(platform, &entry.function, queue).await {
        Ok(queues) => json_response(
            StatusCode::OK,
            &serde_json::json!({"function": name, "queues": queues}),
        ),
        Err(Ok(why)) => json_error(StatusCode::CONFLICT, "NoQueueIdentity", &why),
        Err(Err(e @ RedriveError::NoTrigger(_))) => {
            json_error(StatusCode::NOT_FOUND, "NoSqsTrigger", &e.to_string())
        }
        Err(Err(e @ RedriveError::NoDeadLetterQueue(_))) => {
            json_error(StatusCode::CONFLICT, "NoDeadLetterQueue", &e.to_string())
        }
        Err(Err(e @ RedriveError::Queue(_))) => {
            json_error(StatusCode::BAD_GATEWAY, "QueueUnavailable", &e.to_string())
        }
    }
}

/// `POST /system/async/dead-letters/replay|discard[?callId=ID][&function=NAME]`: puts the
/// selected dead letters back in the queue (each a new call, attempt 1) or deletes them;
/// answers how many. Naming a call that is not a dead letter is a 404.
async fn dead_letters(
    platform: &Platform,
    action: &str,
    query: &crate::runs_api::Query,
) -> Response<ResponseBody> {
    let Some(queue) = platform.async_queue.get() else {
        return json_error(
            StatusCode::NOT_FOUND,
            "AsyncNotConfigured",
            "asynchronous calls are not configured here",
        );
    };
    let which = crate::async_call::Selection {
        call_id: query.get("callId").map(str::to_owned),
        function: query.get("function").map(str::to_owned),
    };
    let settled = match action {
        "replay" => queue.replay(&which).await,
        _ => queue.discard(&which).await,
    };
    match settled {
        Ok(settled) if settled.count == 0 && which.call_id.is_some() => json_error(
            StatusCode::NOT_FOUND,
            "DeadLetterNotFound",
            &format!(
                "no dead letter with call id {}",
                which.call_id.as_deref().unwrap_or_default()
            ),
        ),
        Ok(settled) => {
            tracing::info!(action, count = settled.count, call = ?which.call_id, function = ?which.function, "dead letters settled by request");
            let key = if action == "replay" {
                "replayed"
            } else {
                "discarded"
            };
            json_response(StatusCode::OK, &serde_json::json!({ key: settled.count }))
        }
        Err(e) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "QueueUnavailable",
            &e.to_string(),
        ),
    }
}

/// A function defined by a file of the served folder comes back with the file: deleting it here
/// would say `deleted` and be undone by the next edit, so it is refused with the way to do it.
fn refuse_file_delete(platform: &Platform, name: &str) -> Option<Response<ResponseBody>> {
    let entry = platform.registry.get(name)?;
    let Origin::File(path) = &entry.origin else {
        return None;
    };
    Some(json_error(
        StatusCode::CONFLICT,
        "DefinedByFile",
        &format!(
            "function {name} is defined by {}: delete or rename that file (or its document for {name}) and faas up removes it",
            path.display()
        ),
    ))
}

fn delete(platform: &Platform, name: &str) -> Response<ResponseBody> {
    match platform.registry.remove(name) {
        Some(_) => {
            forget(platform, name);
            tracing::info!(function = %name, "function deleted");
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(faas_runtime::full_body(Bytes::new()))
                .unwrap_or_else(|_| Response::new(faas_runtime::full_body(Bytes::new())))
        }
        None => not_found(name),
    }
}

/// Why deploying `function` onto the existing `entry` replaces a different function (empty:
/// a new version of the same one): another kind or artifact source (`faas_api::replace`), or
/// a function a file of the served folder defines (the file would win again on its next edit).
fn replacement(entry: &Entry, function: &Function, artifact: &Bytes) -> Vec<String> {
    let mut differences: Vec<String> = faas_api::replace::replacement(&entry.function, function)
        .iter()
        .map(ToString::to_string)
        .collect();
    if let Origin::File(path) = &entry.origin {
        differences.push(format!("defined by {} → faas deploy", path.display()));
    }
    if !differences.is_empty()
        && let Ok(loaded) = &entry.state
        && !artifact.is_empty()
    {
        let new = faas_runtime::wasm::sha256_hex(artifact);
        if new != loaded.sha256 {
            differences.push(format!(
                "digest {} → {}",
                short(&loaded.sha256),
                short(&new)
            ));
        }
    }
    differences
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn not_found(name: &str) -> Response<ResponseBody> {
    json_error(
        StatusCode::NOT_FOUND,
        "FunctionNotFound",
        &format!("function {name} not found"),
    )
}

async fn deploy(
    platform: &Arc<Platform>,
    name: &str,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (parts, body) = request.into_parts();
    let limit = platform.config.max_upload_bytes as u64;
    let (body, _charge) =
        match crate::invoke::read_body_within(platform, name, &parts.headers, body, limit, || {
            format!("upload exceeds {limit} bytes")
        })
        .await
        {
            Ok(read) => read,
            Err(refused) => return *refused,
        };
    let (manifest, artifact) = if content_type.starts_with("multipart/form-data") {
        match split_multipart(&content_type, body).await {
            Ok(parts) => parts,
            Err(message) => return json_error(StatusCode::BAD_REQUEST, "BadMultipart", &message),
        }
    } else {
        (body, None)
    };
    let text = match std::str::from_utf8(&manifest) {
        Ok(text) => text,
        Err(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "InvalidManifest",
                "manifest is not UTF-8",
            );
        }
    };
    let mut functions = match faas_api::manifest::parse_functions(text, "request body") {
        Ok(functions) => functions,
        Err(err) => {
            return json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "InvalidManifest",
                &err.to_string(),
            );
        }
    };
    if functions.len() != 1 {
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidManifest",
            &format!(
                "expected exactly one Function in the manifest, found {}",
                functions.len()
            ),
        );
    }
    let function = functions.remove(0);
    let declared = function.metadata.name.clone().unwrap_or_default();
    if declared != name {
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "NameMismatch",
            &format!("metadata.name is {declared:?} but the URL says {name:?}"),
        );
    }
    if let Some(names) = crate::chain::loop_with(platform, &function) {
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ChainLoop",
            &format!(
                "spec.then: deploying {name} would close a loop of chained runs ({names}); \
                 each run would start the next forever"
            ),
        );
    }
    let artifact = match artifact {
        Some(bytes) => bytes,
        None => match read_server_side_artifact(platform, &function) {
            Ok(bytes) => bytes,
            Err(message) => {
                return json_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "ArtifactMissing",
                    &message,
                );
            }
        },
    };
    let existing = platform.registry.get(name);
    let replace = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair == "replace=true");
    if let Some(entry) = &existing
        && !replace
    {
        let differences = replacement(entry, &function, &artifact);
        if !differences.is_empty() {
            return json_error(
                StatusCode::CONFLICT,
                "ReplaceRequired",
                &format!(
                    "function {name} exists and this deploy would replace it with a different function ({}); hint: faas deploy --replace (PUT ...?replace=true) if that is meant, or choose another name",
                    differences.join(", ")
                ),
            );
        }
    }
    let existed = existing.is_some();
    match platform
        .prepare(function.clone(), artifact.clone(), None)
        .await
    {
        Ok(entry) => {
            if let Err(err) = persist(platform, &function, &artifact) {
                tracing::warn!(function = %name, error = %err, "could not persist the deployment; it serves until restart");
            }
            let summary = Summary::in_platform(platform, &entry);
            platform.registry.upsert(entry);
            tracing::info!(function = %name, sha256 = summary.sha256.as_deref().unwrap_or(""), "function deployed");
            json_response(
                if existed {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                &summary,
            )
        }
        Err(reason) => json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ArtifactRejected",
            &format!("function {name} was not deployed: {reason}"),
        ),
    }
}

async fn split_multipart(
    content_type: &str,
    body: Bytes,
) -> Result<(Bytes, Option<Bytes>), String> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| format!("bad multipart content type: {e}"))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let (mut manifest, mut artifact) = (None, None);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| format!("bad multipart body: {e}"))?
    {
        let name = field.name().unwrap_or("").to_owned();
        let data = field
            .bytes()
            .await
            .map_err(|e| format!("bad multipart part {name}: {e}"))?;
        match name.as_str() {
            "manifest" => manifest = Some(data),
            "artifact" => artifact = Some(data),
            other => {
                return Err(format!(
                    "unexpected multipart part {other:?} (expected manifest and artifact)"
                ));
            }
        }
    }
    let manifest = manifest.ok_or("multipart body has no `manifest` part")?;
    Ok((manifest, artifact))
}

/// Without an uploaded artifact, the source must be something the server can read: an
/// absolute path or `file://` URL on this machine, or `sha256:<hex>` of an earlier upload.
fn read_server_side_artifact(platform: &Platform, function: &Function) -> Result<Bytes, String> {
    crate::artifact::server_side(function, &platform.config.state_dir).map_err(|e| e.to_string())
}

fn persist(platform: &Platform, function: &Function, artifact: &Bytes) -> std::io::Result<()> {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let functions = platform.config.state_dir.join("functions");
    std::fs::create_dir_all(&functions)?;
    let mut stored = function.clone();
    if let Some(wasm) = stored.spec.runtime.wasm.as_mut() {
        let digest = crate::artifact::upload::store(&platform.config.state_dir, artifact)?;
        wasm.source = format!("sha256:{digest}");
        wasm.build = None;
    }
    let yaml = serde_yaml::to_string(&stored).map_err(std::io::Error::other)?;
    let tmp = functions.join(format!(".{name}.yaml.tmp"));
    std::fs::write(&tmp, yaml)?;
    std::fs::rename(tmp, functions.join(format!("{name}.yaml")))
}

fn forget(platform: &Platform, name: &str) {
    platform.stats.forget(name);
    platform.metrics.cold_starts.forget(name);
    let _ = std::fs::remove_file(
        platform
            .config
            .state_dir
            .join("functions")
            .join(format!("{name}.yaml")),
    );
}

/// Re-registers functions deployed through the API before a restart.
pub async fn restore(platform: &Arc<Platform>) {
    let dir = platform.config.state_dir.join("functions");
    if !dir.is_dir() {
        return;
    }
    for file in faas_api::manifest::load_path(&dir) {
        match file.result {
            Ok(functions) => {
                for function in functions {
                    let artifact = read_server_side_artifact(platform, &function);
                    let _ = platform.apply(function, artifact, Origin::Api, None).await;
                }
            }
            Err(err) => {
                tracing::warn!(file = %file.path.display(), error = %err, "skipping a stored deployment")
            }
        }
    }
}

/// `GET /system/stats[?function=NAME]`: the last hour by minute of each function (or one),
/// and its cold loads.
pub fn stats_json(platform: &Platform, only: Option<&str>) -> serde_json::Value {
    let now = jiff::Timestamp::now().as_second();
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_owned()],
        None => platform
            .registry
            .list()
            .iter()
            // By registry key, as the statistics are recorded (`Entry::key`).
            .map(|e| e.key.clone())
            .collect(),
    };
    let map: serde_json::Map<String, serde_json::Value> = names
        .into_iter()
        .map(|name| {
            let mut value =
                serde_json::to_value(platform.stats.hour(&name, now)).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                let loads = serde_json::to_value(platform.stats.loads(&name)).unwrap_or_default();
                map.insert("loads".into(), loads);
            }
            (name, value)
        })
        .collect();
    serde_json::Value::Object(map)
}
