//! The runs part of the management API:
//!
//! - `POST /system/functions/{name}/runs[?schedule=S][&detach=true][&option=NAME=VALUE…]`: run
//!   now, with the schedule's options under those given (400 `InvalidOptions` naming each bad
//!   one, and no run). The body, when not empty, is the payload (else the schedule's). Waits for the end and answers the final
//!   record (200), or answers 202 with the record as started when detached.
//! - `GET /system/functions/{name}/runs` and `GET /system/runs`: history, newest first
//!   (`?schedule=&phase=&limit=`; `/system/runs` also takes `function=`).
//! - `GET /system/runs/{id}`: one run. `POST /system/runs/{id}/cancel`: interrupt it.
//!   `GET /system/runs/{id}/log?offset=N`: its whole log, piece by piece (`crate::runs_log`).
//! - `GET /system/scheduler`: leadership and every schedule with its next fire time.
//! - `POST /system/functions/{name}/schedules/{schedule}/suspend|resume`: an operator's
//!   suspension of one schedule, kept across restarts (`crate::suspend`).

use std::sync::Arc;

use faas_api::{FunctionRun, RunPhase};
use faas_runtime::ResponseBody;
use faas_schedule::plan::{next_fire, rfc3339};
use faas_schedule::store::phase;
use faas_schedule::{Job, RunQuery, Scheduler};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::platform::Platform;
use crate::reply::{json_error, json_response};

/// Listing size when the client gives no `limit`.
const DEFAULT_LIMIT: usize = 50;
/// Largest `limit` accepted.
const MAX_LIMIT: usize = 1000;

/// Serves the runs endpoints; `None` when `segments` is not one of them.
pub async fn handle(
    platform: &Arc<Platform>,
    request: Request<Incoming>,
    segments: &[&str],
) -> Option<Response<ResponseBody>> {
    let method = request.method().clone();
    let query = Query::parse(request.uri().query());
    let response = match (&method, segments) {
        (&Method::POST, ["system", "functions", name, "runs"]) => {
            run_now(platform, name, &query, request).await
        }
        (&Method::GET, ["system", "functions", name, "runs"]) => {
            if platform.registry.get(name).is_none() {
                return Some(function_not_found(name));
            }
            list(platform, Some((*name).to_owned()), &query).await
        }
        (&Method::GET, ["system", "runs"]) => {
            let function = query.get("function").map(str::to_owned);
            list(platform, function, &query).await
        }
        (&Method::GET, ["system", "runs", id]) => get(platform, id).await,
        (&Method::POST, ["system", "runs", id, "cancel"]) => cancel(platform, id).await,
        (&Method::GET, ["system", "runs", id, "log"]) => {
            crate::runs_log::serve(platform, id, &query).await
        }
        (&Method::GET, ["system", "scheduler"]) => scheduler_status(platform),
        (&Method::POST, ["system", "functions", name, "schedules", schedule, action])
            if matches!(*action, "suspend" | "resume") =>
        {
            suspend(platform, name, schedule, *action == "suspend")
        }
        (
            _,
            [
                "system",
                "functions",
                _,
                "schedules",
                _,
                "suspend" | "resume",
            ],
        )
        | (_, ["system", "functions", _, "runs"])
        | (_, ["system", "runs", ..])
        | (_, ["system", "scheduler"]) => json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{method} is not supported here"),
        ),
        _ => return None,
    };
    Some(response)
}

/// An error answer, boxed: `Result`s carrying a whole response stay small.
type Refusal = Box<Response<ResponseBody>>;

fn scheduler(platform: &Platform) -> Result<&Arc<Scheduler>, Refusal> {
    platform.scheduler.get().ok_or_else(|| {
        Box::new(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SchedulerUnavailable",
            "this gateway runs no scheduler",
        ))
    })
}

fn function_not_found(name: &str) -> Response<ResponseBody> {
    json_error(
        StatusCode::NOT_FOUND,
        "FunctionNotFound",
        &format!("function {name} not found"),
    )
}

async fn run_now(
    platform: &Arc<Platform>,
    name: &str,
    query: &Query,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let scheduler = match scheduler(platform) {
        Ok(s) => Arc::clone(s),
        Err(response) => return *response,
    };
    let Some(entry) = platform.registry.get(name) else {
        return function_not_found(name);
    };
    let detach = match query.flag("detach") {
        Ok(detach) => detach,
        Err(response) => return *response,
    };
    // Checked before the body is read: a run with bad options never exists.
    let options = match run_options(&entry.function, query) {
        Ok(options) => options,
        Err(response) => return *response,
    };
    let (parts, body) = request.into_parts();
    // The charge is held until this handler answers (the run is over, or detached).
    let (body, _charge) =
        match crate::invoke::read_body(platform, &entry, &parts.headers, body).await {
            Ok(read) => read,
            Err(refused) => return *refused,
        };
    let payload = (!body.is_empty()).then_some(body);
    let handle = match scheduler.run_now(name, query.get("schedule"), payload, Some(options)) {
        Ok(handle) => handle,
        Err(err) => return json_error(StatusCode::NOT_FOUND, "ScheduleNotFound", &err.to_string()),
    };
    tracing::info!(function = %name, run = %handle.id, "run started by hand");
    if detach {
        let started = serde_json::json!({
            "metadata": { "name": handle.id },
            "spec": { "function": name, "schedule": query.get("schedule").unwrap_or("manual"), "trigger": "manual" },
            "status": { "phase": "Running" },
        });
        return json_response(StatusCode::ACCEPTED, &started);
    }
    match handle.done.await {
        Ok(Ok(Some(run))) => json_response(StatusCode::OK, &run),
        Ok(Ok(None)) => json_error(
            StatusCode::CONFLICT,
            "AlreadyClaimed",
            "the run was claimed elsewhere",
        ),
        Ok(Err(err)) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "RunStoreFailed",
            &err.to_string(),
        ),
        Err(err) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "RunFailed",
            &err.to_string(),
        ),
    }
}

/// The options of a run by hand: `option=NAME=VALUE` parameters over the named schedule's
/// values, resolved against the function's `spec.options`; 400 naming each bad option.
fn run_options(
    function: &faas_api::Function,
    query: &Query,
) -> Result<faas_api::options::Resolved, Refusal> {
    let bad = |message: String| {
        Box::new(json_error(
            StatusCode::BAD_REQUEST,
            "InvalidOptions",
            &message,
        ))
    };
    let mut given = std::collections::BTreeMap::new();
    for pair in query.all("option") {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(bad(format!("option {pair:?}: expected NAME=VALUE")));
        };
        let value = serde_json::Value::String(value.to_owned());
        if given.insert(name.to_owned(), value).is_some() {
            return Err(bad(format!("option {name}: given twice")));
        }
    }
    faas_api::options::for_run(function, query.get("schedule"), &given)
        .map_err(|e| bad(e.to_string()))
}

async fn list(
    platform: &Arc<Platform>,
    function: Option<String>,
    query: &Query,
) -> Response<ResponseBody> {
    let scheduler = match scheduler(platform) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let phase = match query.get("phase") {
        None => None,
        Some(text) => {
            match serde_json::from_value::<RunPhase>(serde_json::Value::String(text.to_owned())) {
                Ok(phase) => Some(phase),
                Err(_) => {
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        "BadQuery",
                        &format!(
                            "phase: {text:?} is not one of Pending, Running, Succeeded, Failed, TimedOut, Interrupted, Skipped"
                        ),
                    );
                }
            }
        }
    };
    let limit = match query.get("limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "BadQuery",
                &format!("limit: must be a number from 1 to {MAX_LIMIT}"),
            );
        }
    };
    let runs = scheduler
        .runner()
        .store()
        .list(RunQuery {
            function,
            schedule: query.get("schedule").map(str::to_owned),
            phase,
            limit: Some(limit),
        })
        .await;
    match runs {
        Ok(runs) => json_response(StatusCode::OK, &runs),
        Err(err) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "RunStoreFailed",
            &err.to_string(),
        ),
    }
}

async fn find(scheduler: &Scheduler, id: &str) -> Result<FunctionRun, Refusal> {
    match scheduler.runner().store().get(id.to_owned()).await {
        Ok(Some(run)) => Ok(run),
        Ok(None) => Err(Box::new(json_error(
            StatusCode::NOT_FOUND,
            "RunNotFound",
            &format!("run {id} not found (history keeps only the newest runs of each schedule)"),
        ))),
        Err(err) => Err(Box::new(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "RunStoreFailed",
            &err.to_string(),
        ))),
    }
}

async fn get(platform: &Arc<Platform>, id: &str) -> Response<ResponseBody> {
    let found = match scheduler(platform) {
        Ok(scheduler) => find(scheduler, id).await,
        Err(refused) => Err(refused),
    };
    match found {
        Ok(run) => json_response(StatusCode::OK, &run),
        Err(response) => *response,
    }
}

async fn cancel(platform: &Arc<Platform>, id: &str) -> Response<ResponseBody> {
    let scheduler = match scheduler(platform) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let run = match find(scheduler, id).await {
        Ok(run) => run,
        Err(response) => return *response,
    };
    if faas_schedule::plan::is_final(phase(&run)) {
        return json_error(
            StatusCode::CONFLICT,
            "RunFinished",
            &format!("run {id} already ended {:?}", phase(&run)),
        );
    }
    if scheduler.runner().cancel_run(id, "cancelled by request") {
        json_response(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "id": id, "cancelled": true }),
        )
    } else {
        json_error(
            StatusCode::CONFLICT,
            "RunNotHere",
            &format!("run {id} is not running on this platform"),
        )
    }
}

/// Suspends or resumes one schedule by an operator's override, and re-feeds the scheduler.
fn suspend(
    platform: &Arc<Platform>,
    name: &str,
    schedule: &str,
    suspend: bool,
) -> Response<ResponseBody> {
    let scheduler = match scheduler(platform) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let Some(suspended) = platform.suspended.get() else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SchedulerUnavailable",
            "this gateway keeps no schedule overrides",
        );
    };
    if platform.registry.get(name).is_none() {
        return function_not_found(name);
    }
    let key = faas_schedule::JobKey::new(name, schedule);
    let Some(job) = scheduler.job(&key) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "ScheduleNotFound",
            &format!("function {name} has no schedule named {schedule:?}"),
        );
    };
    if let Err(err) = suspended.put(name, schedule, suspend) {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "StateNotSaved",
            &err.to_string(),
        );
    }
    crate::cron::feed(platform);
    tracing::info!(schedule = %key, suspend, "schedule suspension changed by request");
    let job = scheduler.job(&key).unwrap_or(job);
    json_response(StatusCode::OK, &schedule_view(platform, scheduler, &job))
}

fn scheduler_status(platform: &Arc<Platform>) -> Response<ResponseBody> {
    let scheduler = match scheduler(platform) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let mut schedules: Vec<_> = scheduler
        .jobs()
        .iter()
        .map(|job| schedule_view(platform, scheduler, job))
        .collect();
    schedules.sort_by_key(|s| (s["function"].to_string(), s["schedule"].to_string()));
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "role": scheduler.role(),
            "runsInFlight": scheduler.runner().in_flight(),
            "schedules": schedules,
        }),
    )
}

/// One schedule as the API shows it: expression, zone, next fire time (UTC and local), who
/// suspended it (`suspendedBy`: `spec` or `operator`), the runs of it going on here.
fn schedule_view(platform: &Platform, scheduler: &Scheduler, job: &Job) -> serde_json::Value {
    let now = scheduler.runner().clock().now();
    let next = (!job.suspend).then(|| next_fire(job, now)).flatten();
    let by_operator = platform
        .suspended
        .get()
        .is_some_and(|s| s.contains(&job.key.function, &job.key.schedule));
    let suspended_by = match (job.suspend, by_operator) {
        (false, _) => None,
        (true, true) => Some("operator"),
        (true, false) => Some("spec"),
    };
    serde_json::json!({
        "function": &*job.key.function,
        "schedule": &*job.key.schedule,
        "cron": job.cron.as_str(),
        "timeZone": job.zone.iana_name().unwrap_or("UTC"),
        "suspend": job.suspend,
        "suspendedBy": suspended_by,
        "nextFire": next.map(rfc3339),
        "nextFireLocal": next.map(|t| t.to_zoned(job.zone.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()),
        "running": scheduler.runner().running(&job.key),
    })
}

/// A function's schedules as the API shows them (next fire times), by name; none without a
/// scheduler.
pub fn function_schedules(platform: &Platform, function: &str) -> Vec<serde_json::Value> {
    let Some(scheduler) = platform.scheduler.get() else {
        return Vec::new();
    };
    let mut schedules: Vec<_> = scheduler
        .jobs()
        .iter()
        .filter(|job| &*job.key.function == function)
        .map(|job| schedule_view(platform, scheduler, job))
        .collect();
    schedules.sort_by_key(|s| s["schedule"].to_string());
    schedules
}

/// What `GET /system/functions/{name}` adds about runs: the function's schedules with their
/// next fire times, and its most recent runs.
pub async fn function_runs_detail(platform: &Platform, function: &str) -> serde_json::Value {
    let Some(scheduler) = platform.scheduler.get() else {
        return serde_json::json!({});
    };
    let schedules = function_schedules(platform, function);
    let recent = scheduler
        .runner()
        .store()
        .list(RunQuery {
            function: Some(function.to_owned()),
            limit: Some(5),
            ..RunQuery::default()
        })
        .await
        .unwrap_or_default();
    serde_json::json!({ "schedules": schedules, "recentRuns": recent })
}

/// `a=b&c=d`, percent-decoded: the CLI escapes every value it sends, so a filter holding a
/// reserved character arrives as that character (and a name that cannot exist simply matches
/// nothing) instead of splitting into other parameters.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Query(
            query
                .unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => (decoded(k), decoded(v)),
                    None => (decoded(pair), String::new()),
                })
                .collect(),
        )
    }

    /// The value of `key`, if it is there and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `key`, in order (a parameter given several times).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> Result<bool, Refusal> {
        match self
            .0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
        {
            None | Some("false") | Some("0") => Ok(false),
            Some("") | Some("true") | Some("1") => Ok(true),
            Some(other) => Err(Box::new(json_error(
                StatusCode::BAD_REQUEST,
                "BadQuery",
                &format!("{key}: {other:?} is not true or false"),
            ))),
        }
    }
}

/// One percent-decoded URL component (path segment or query key/value); bytes that are not
/// UTF-8 become U+FFFD, which no name, phase or number contains.
pub fn decoded(component: &str) -> String {
    percent_encoding::percent_decode_str(component)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded_and_stay_one_parameter() {
        let query = Query::parse(Some("schedule=a%26phase%3DFailed&phase=Succeeded&limit=5"));
        assert_eq!(query.get("schedule"), Some("a&phase=Failed"));
        assert_eq!(query.get("phase"), Some("Succeeded"));
        assert_eq!(query.get("limit"), Some("5"));
        assert_eq!(Query::parse(Some("name=%FF")).get("name"), Some("\u{fffd}"));
    }
}
