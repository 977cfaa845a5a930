//! The pages. Each reads what the `/system/` endpoints read (the registry summaries, the run
//! history, the scheduler's schedules, the SQS trigger states, the async queue, `stats`) and
//! renders it.

use crate::run_history::HistoryQuery;
use faas_api::{FunctionRun, RunPhase};
use maud::{Markup, html};

use super::charts;
use crate::platform::Platform;

/// Longest output or log tail shown on a page.
const MAX_SHOWN: usize = 64 * 1024;

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The function's state (`crate::health`): Ready, Degraded or Not ready, with the reasons.
fn readiness(summary: &serde_json::Value) -> Markup {
    let reasons: Vec<&str> = summary["reasons"]
        .as_array()
        .map(|all| all.iter().filter_map(|r| r["message"].as_str()).collect())
        .unwrap_or_default();
    let (class, label) = match summary["state"].as_str() {
        Some("Ready") => ("ok", "Ready"),
        Some("Degraded") => ("warn", "Degraded"),
        _ => ("bad", "Not ready"),
    };
    html! {
        span class=(class) data-state=(label) { (label) }
        @for reason in &reasons { div.reason { (reason) } }
    }
}

/// A recorded RFC 3339 time as `2026-12-05 02:00:00 UTC`: always with its zone, so it is
/// never read as local time beside next-fire times shown in a schedule's zone.
fn utc(value: Option<&str>) -> String {
    value
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| value.unwrap_or("-").to_owned())
}

/// How long a run took: `1.234 s`, `running` while it goes on, `-` before it started.
fn run_duration(run: &FunctionRun) -> String {
    let status = run.status.as_ref();
    let time = |t: Option<&String>| t.and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match (
        time(status.and_then(|s| s.start_time.as_ref())),
        time(status.and_then(|s| s.end_time.as_ref())),
    ) {
        (Some(start), Some(end)) => format!(
            "{:.3} s",
            (end.as_millisecond() - start.as_millisecond()) as f64 / 1000.0
        ),
        (Some(_), None) => "running".to_owned(),
        _ => "-".to_owned(),
    }
}

/// The newest run of each of `function`'s schedules is what an operator checks first.
async fn last_run(platform: &Platform, function: &str) -> Option<FunctionRun> {
    platform
        .run_history
        .get()?
        .list(HistoryQuery {
            function: Some(function.to_owned()),
            limit: 1,
            ..HistoryQuery::default()
        })
        .await
        .into_iter()
        .next()
}

/// The page of one run: its namespace too in a cluster (names are unique per namespace).
fn run_link(run: &FunctionRun) -> String {
    let id = run.metadata.name.as_deref().unwrap_or_default();
    // Names and namespaces are DNS names: nothing in them needs escaping in a URL.
    match run.metadata.namespace.as_deref() {
        Some(namespace) => format!("/ui/runs/{id}?namespace={namespace}"),
        None => format!("/ui/runs/{id}"),
    }
}

/// The dashboard's name of a run's function: its registry key (`name.namespace` in a cluster).
fn function_key(run: &FunctionRun) -> String {
    match run.metadata.namespace.as_deref() {
        Some(namespace) => faas_api::routing::qualified_name(&run.spec.function, namespace),
        None => run.spec.function.clone(),
    }
}

/// A run's result and when it ended (or started), linked to the run.
fn run_result(run: Option<&FunctionRun>) -> Markup {
    html! {
        @if let Some(run) = run {
            @let status = run.status.clone().unwrap_or_default();
            a href=(run_link(run)) { span class=(phase_class(status.phase.as_str())) { (status.phase.as_str()) } }
            div.reason { (utc(status.end_time.as_deref().or(status.start_time.as_deref()))) }
        } @else {
            span.muted { "never" }
        }
    }
}

fn phase_class(phase: &str) -> &'static str {
    match phase {
        "Succeeded" => "ok",
        "Running" | "Pending" => "warn",
        "Skipped" => "muted",
        _ => "bad",
    }
}

fn summary_of(platform: &Platform, name: &str) -> Option<serde_json::Value> {
    platform.registry.get(name).map(|entry| {
        serde_json::to_value(crate::management::Summary::in_platform(platform, &entry))
            .unwrap_or_default()
    })
}

/// Every function: runtime, readiness, triggers, the last run of scheduled ones, the hour's
/// traffic.
pub async fn functions(platform: &Platform) -> Markup {
    let mut entries = platform.registry.list();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let now = now();
    let mut rows = Vec::new();
    for entry in &entries {
        // The registry key: in a cluster `name.namespace`, what its page and series use.
        let name = entry.key.clone();
        let summary =
            serde_json::to_value(crate::management::Summary::in_platform(platform, entry))
                .unwrap_or_default();
        let schedules = crate::runs_api::function_schedules(platform, &name);
        // One indexed read per scheduled function: this page refreshes every 2 s.
        let last = if schedules.is_empty() {
            None
        } else {
            last_run(platform, &name).await
        };
        let hour = platform.stats.hour(&name, now);
        rows.push((
            name,
            summary,
            schedules,
            hour,
            entry.function.spec.triggers.clone(),
            last,
        ));
    }
    html! {
        @if rows.is_empty() {
            p.empty { "No functions yet. Put a manifest in the folder `faas up` watches, or `faas deploy -f function.yaml`." }
        } @else {
            table {
                thead { tr {
                    th { "Function" } th { "Runtime" } th { "Status" } th { "Triggers" }
                    th { "Last run" } th { "Calls/min" } th { "p50 / p99" } th { "Errors" } th { "Last hour" }
                } }
                tbody {
                    @for (name, summary, schedules, hour, triggers, last) in &rows {
                        tr data-function=(name) {
                            td { a href={"/ui/functions/" (name)} { (name) } }
                            td { (summary["kind"].as_str().unwrap_or("-")) }
                            td { (readiness(summary)) }
                            td {
                                @for route in summary["routes"].as_array().into_iter().flatten().take(2) {
                                    div { code { (route.as_str().unwrap_or("")) } }
                                }
                                @for sqs in triggers.iter().flat_map(|t| &t.sqs) {
                                    div { "SQS " code { (sqs.queue_url.rsplit('/').next().unwrap_or("")) } }
                                }
                                @for schedule in schedules {
                                    div {
                                        "cron " code { (schedule["cron"].as_str().unwrap_or("")) }
                                        @if schedule["suspend"].as_bool().unwrap_or(false) {
                                            span.reason { " suspended" }
                                        } @else {
                                            span.reason { " next " (schedule["nextFireLocal"].as_str().unwrap_or("-")) }
                                        }
                                    }
                                }
                            }
                            td.last-run {
                                @if !schedules.is_empty() { (run_result(last.as_ref())) }
                            }
                            td { (format!("{:.1}", hour.per_minute)) }
                            td { (charts::ms(hour.p50_ms)) " / " (charts::ms(hour.p99_ms)) }
                            td { (format!("{:.1}%", hour.error_rate * 100.0)) }
                            td { (charts::calls(hour)) }
                        }
                    }
                }
            }
        }
    }
}

/// The Run now form: outside the live part, so a refresh never eats what is being typed.
pub fn run_now_form(platform: &Platform, name: &str) -> Markup {
    if platform.scheduler.get().is_none() {
        // The cluster gateway's read-only dashboard: runs belong to the controller there.
        return html! {
            p { "Runs are started by the controller in a cluster: " code { "faas run " (name) } }
        };
    }
    let schedules: Vec<String> = platform
        .scheduler
        .get()
        .map(|s| {
            s.jobs()
                .iter()
                .filter(|j| &*j.key.function == name)
                .map(|j| j.key.schedule.to_string())
                .collect()
        })
        .unwrap_or_default();
    let options = platform
        .registry
        .get(name)
        .map(|entry| entry.function.spec.options.clone())
        .unwrap_or_default();
    html! {
        @if !options.is_empty() {
            fieldset.options {
                legend { "Options" }
                @for option in &options { (option_input(option)) }
            }
        }
        label for="payload" { "Payload (request body of the run; empty: the schedule's)" }
        textarea id="payload" name="payload" {}
        p {
            button type="button" data-run=(name) { "Run now" }
            @for schedule in &schedules {
                " "
                button.secondary type="button" data-run=(name) data-schedule=(schedule) { "Run " (schedule) }
            }
            " " span id="action-error" {}
        }
    }
}

/// One input of the Run now form per declared option, of its type, empty: only what is typed
/// or picked is sent, so a "Run <schedule>" keeps that schedule's values for the rest, and
/// the default shows as a hint (never a secret option's).
fn option_input(option: &faas_api::options::RunOption) -> Markup {
    use faas_api::options::OptionType;
    let id = format!("option-{}", option.name);
    let hint = match &option.default {
        Some(default) if !option.secret => {
            format!("default: {}", faas_api::options::text_of(default))
        }
        _ => String::new(),
    };
    let choices: Vec<&str> = match option.kind {
        OptionType::Enum => option.values.iter().map(String::as_str).collect(),
        OptionType::Boolean => vec!["true", "false"],
        OptionType::Number | OptionType::String => Vec::new(),
    };
    html! {
        label for=(id) {
            span { (option.name) @if option.required { " *" } }
            @match option.kind {
                OptionType::Enum | OptionType::Boolean => {
                    select id=(id) data-option=(option.name) {
                        option value="" { (if hint.is_empty() { "(not given)".to_owned() } else { format!("({hint})") }) }
                        @for value in &choices { option value=(value) { (value) } }
                    }
                }
                _ if option.secret => {
                    input id=(id) type="password" autocomplete="off" data-option=(option.name);
                }
                OptionType::Number => {
                    input id=(id) type="number" step="any" data-option=(option.name) placeholder=(hint);
                }
                OptionType::String => {
                    input id=(id) type="text" data-option=(option.name) placeholder=(hint);
                }
            }
            @if let Some(description) = &option.description { span.reason { (description) } }
        }
    }
}

/// One function: summary, traffic charts, SQS triggers, schedules, recent runs.
pub async fn function(platform: &Platform, name: &str) -> Markup {
    let Some(summary) = summary_of(platform, name) else {
        return html! { p.empty { "function " (name) " no longer exists" } };
    };
    let entry = platform.registry.get(name);
    let spec = entry
        .as_ref()
        .map(|e| serde_yaml::to_string(&e.function.spec).unwrap_or_default())
        .unwrap_or_default();
    let hour = platform.stats.hour(name, now());
    let runs = crate::runs_api::function_runs_detail(platform, name).await;
    let sqs = crate::sqs::status_json(platform, name);
    html! {
        dl {
            dt { "Status" } dd { (readiness(&summary)) }
            dt { "Runtime" } dd { (summary["kind"].as_str().unwrap_or("-")) }
            dt { "Routes" } dd { @for r in summary["routes"].as_array().into_iter().flatten() { code { (r.as_str().unwrap_or("")) } " " } }
            dt { "Limits" } dd { "timeout " (summary["timeout"].as_str().unwrap_or("-")) ", concurrency " (summary["concurrency"]) ", in flight " (summary["inFlight"]) ", waiting " (summary["waiting"]) }
            @if let Some(sha) = summary["sha256"].as_str() { dt { "Artifact" } dd { code { (sha) } } }
            @if let Some(error) = summary["lastError"].as_str() { dt { "Last error" } dd.bad { (error) } }
        }
        h2 { "Last hour" }
        div.charts {
            figure.chart { (charts::calls(&hour)) figcaption { "calls per minute: " (hour.count) " calls, " (format!("{:.1}", hour.per_minute)) "/min, " (hour.errors) " errors (" (format!("{:.1}%", hour.error_rate * 100.0)) ")" } }
            figure.chart { (charts::latency(&hour)) figcaption { "latency: p50 " (charts::ms(hour.p50_ms)) " (blue), p99 " (charts::ms(hour.p99_ms)) " (orange)" } }
        }
        @let codes = status_classes(&hour);
        p.muted {
            "Status codes, last hour: "
            @if codes.is_empty() { "none" }
            @for (class, n) in &codes { span class=(if *class == "5xx" { "bad" } else if *class == "4xx" { "warn" } else { "ok" }) { (class) } " × " (n) "  " }
        }
        @let loads = platform.stats.loads(name);
        p.muted {
            "Cold loads: " (loads.count)
            @if let Some(last) = loads.recent.back() {
                " (last " (last.at) ": " (last.source) ", " (format!("{:.0}", last.millis)) " ms)"
            }
        }
        @let cold = platform.metrics.cold_starts.summary(name);
        @if !cold.is_empty() {
            table.cold-starts {
                thead { tr { th { "Cold-start phase" } th { "Last" } th { "p50" } th { "Count" } } }
                tbody { @for p in &cold { tr data-phase=(p.phase) {
                    td { (p.phase) } td { (took(p.last_ms)) } td { (took(p.p50_ms)) } td { (p.count) }
                } } }
            }
        }
        @if let Some(triggers) = sqs.as_array().filter(|t| !t.is_empty()) {
            h2 { "SQS triggers" }
            table {
                thead { tr { th { "Queue" } th { "State" } th { "In flight" } th { "Deleted" } th { "Failed" } th { "Released" } th { "Last error" } } }
                tbody { @for t in triggers { tr {
                    td { code { (t["queueUrl"].as_str().unwrap_or("")) } }
                    td { (t["state"].as_str().unwrap_or("-")) @if let Some(m) = t["message"].as_str() { div.reason { (m) } } }
                    td { (t["batchesInFlight"]) } td { (t["deleted"]) } td { (t["failed"]) } td { (t["released"]) }
                    td.reason { (t["lastFailure"].as_str().unwrap_or("")) }
                } } }
            }
        }
        @if let Some(schedules) = runs["schedules"].as_array().filter(|s| !s.is_empty()) {
            h2 { "Schedules" }
            table {
                thead { tr { th { "Schedule" } th { "Cron" } th { "Zone" } th { "Next" } th { "Running" } th { "" } } }
                tbody { @for s in schedules {
                    @let schedule = s["schedule"].as_str().unwrap_or("");
                    @let by = s["suspendedBy"].as_str();
                    tr data-schedule=(schedule) {
                    td { a href={"/ui/runs?function=" (name) "&schedule=" (schedule)} { (schedule) } }
                    td { code { (s["cron"].as_str().unwrap_or("")) } }
                    td { (s["timeZone"].as_str().unwrap_or("UTC")) }
                    td.next {
                        @match by {
                            Some("operator") => span.warn { "suspended by an operator" },
                            Some(_) => span.muted { "suspended in the manifest" },
                            None => (s["nextFireLocal"].as_str().unwrap_or("-")),
                        }
                    }
                    td { (s["running"].as_array().map(Vec::len).unwrap_or(0)) }
                    td {
                        @match by {
                            Some("operator") => button.secondary type="button" data-suspend=(name) data-schedule=(schedule) data-action="resume" { "Resume" },
                            Some(_) => {},
                            None => button.secondary type="button" data-suspend=(name) data-schedule=(schedule) data-action="suspend" { "Suspend" },
                        }
                    }
                } } }
            }
        }
        h2 { "Recent runs " a.reason href={"/ui/runs?function=" (name)} { "all" } }
        (run_table(&serde_json::from_value::<Vec<FunctionRun>>(runs["recentRuns"].clone()).unwrap_or_default()))
        h2 { "Spec" }
        pre { (spec) }
    }
}

/// Answers of the hour by status class.
fn status_classes(hour: &crate::stats::Hour) -> Vec<(&'static str, u64)> {
    let mut total: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for minute in &hour.minutes {
        for (class, n) in &minute.codes {
            *total.entry(class).or_default() += n;
        }
    }
    total.into_iter().collect()
}

fn run_table(runs: &[FunctionRun]) -> Markup {
    html! {
        @if runs.is_empty() { p.empty { "No runs." } } @else {
            table {
                thead { tr { th { "Run" } th { "Function" } th { "Schedule" } th { "Phase" } th { "Scheduled" } th { "Started" } th { "Duration" } th { "Attempt" } th { "Status" } } }
                tbody { @for run in runs {
                    @let status = run.status.clone().unwrap_or_default();
                    @let id = run.metadata.name.clone().unwrap_or_default();
                    tr data-run-id=(id) {
                        td { a href=(run_link(run)) { (id) } }
                        td { a href={"/ui/functions/" (function_key(run))} { (function_key(run)) } }
                        td { (run.spec.schedule) }
                        td { span class=(phase_class(status.phase.as_str())) { (status.phase.as_str()) } }
                        td { (utc(run.spec.scheduled_time.as_deref())) }
                        td { (utc(status.start_time.as_deref())) }
                        td.duration { (run_duration(run)) }
                        td.attempt { (run.spec.attempt) }
                        td { (status.http_status.map(|c| c.to_string()).unwrap_or_else(|| "-".into())) }
                    }
                } }
            }
        }
    }
}

/// Run history with filters: function, schedule, phase, time range.
pub async fn runs(platform: &Platform, query: &str) -> Markup {
    let function = super::query_value(query, "function").filter(|v| !v.is_empty());
    let schedule = super::query_value(query, "schedule").filter(|v| !v.is_empty());
    let phase_text = super::query_value(query, "phase").filter(|v| !v.is_empty());
    let since = super::query_value(query, "since").filter(|v| !v.is_empty());
    let phase: Option<RunPhase> = phase_text
        .as_ref()
        .and_then(|p| serde_json::from_value(serde_json::Value::String(p.clone())).ok());
    let cutoff = since
        .as_deref()
        .and_then(|s| faas_api::limits::parse_duration(s).ok())
        .map(|d| jiff::Timestamp::now().as_second() - d.as_secs() as i64);
    let mut found = match platform.run_history.get() {
        Some(history) => {
            history
                .list(HistoryQuery {
                    function: function.clone(),
                    schedule: schedule.clone(),
                    phase,
                    limit: 200,
                })
                .await
        }
        None => Vec::new(),
    };
    if let Some(cutoff) = cutoff {
        found.retain(|run| {
            let started = run
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_deref().or(s.end_time.as_deref()))
                .or(run.spec.scheduled_time.as_deref())
                .and_then(|t| t.parse::<jiff::Timestamp>().ok());
            started.is_none_or(|t| t.as_second() >= cutoff)
        });
    }
    let mut names: Vec<String> = platform
        .registry
        .list()
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    names.sort();
    let phases = [
        "Running",
        "Succeeded",
        "Failed",
        "TimedOut",
        "Interrupted",
        "Skipped",
    ];
    html! {
        form.filters method="get" action="/ui/runs" {
            label { "Function" select name="function" {
                option value="" { "all" }
                @for n in &names { option value=(n) selected[function.as_deref() == Some(n.as_str())] { (n) } }
            } }
            label { "Schedule" input name="schedule" value=(schedule.clone().unwrap_or_default()) placeholder="any, or manual"; }
            label { "Phase" select name="phase" {
                option value="" { "any" }
                @for p in phases { option value=(p) selected[phase_text.as_deref() == Some(p)] { (p) } }
            } }
            label { "Since" select name="since" {
                option value="" { "any time" }
                @for (v, label) in [("1h", "last hour"), ("24h", "last day"), ("168h", "last week")] {
                    option value=(v) selected[since.as_deref() == Some(v)] { (label) }
                }
            } }
            button type="submit" { "Filter" }
        }
        (run_table(&found))
    }
}

/// The async-call queue (`GET /system/async`): locally the calls waiting and the dead
/// letters, each with its function, attempts, request and last failure, to replay or delete
/// one or all; with SQS (a cluster) both queues' approximate depths and where they are
/// (listing the dead-letter queue here would hide its messages from whoever handles them),
/// and replay or delete all.
pub async fn async_calls(platform: &Platform) -> Markup {
    let Some(queue) = platform.async_queue.get() else {
        return html! { p.empty { "Asynchronous calls are not configured here." } };
    };
    let state = match queue.inspect().await {
        Ok(state) => state,
        Err(err) => {
            return html! { p.bad { "The queue cannot be read: " (err) } };
        }
    };
    let count = |v: &serde_json::Value| v.as_u64().map_or("?".to_owned(), |n| n.to_string());
    html! {
        @if state["kind"] == "sqs" {
            dl {
                dt { "Queue" } dd { code { (state["queue"].as_str().unwrap_or("-")) } }
                dt { "Waiting" } dd data-count="waiting" { (count(&state["messages"]["visible"])) }
                dt { "Being called" } dd data-count="in-flight" { (count(&state["messages"]["inFlight"])) }
                dt { "Dead-letter queue" } dd { code { (state["deadLetterQueue"].as_str().unwrap_or("-")) } }
                dt { "Dead letters" } dd data-count="dead" {
                    @let dead = &state["deadLetterMessages"];
                    (dead["visible"].as_u64().zip(dead["inFlight"].as_u64()).map_or("?".to_owned(), |(a, b)| (a + b).to_string()))
                }
            }
            p.muted { "Counts are SQS's approximations. Dead letters stay in their queue until replayed (sent back to the queue as new calls) or deleted here, or handled by whoever else reads that queue. Below, a sample of up to 10 as SQS picks them, read without hiding them from anyone." }
            h2 { "Dead letters" }
            (dead_letter_table(&state["deadLetters"]))
        } @else {
            dl {
                dt { "Waiting" } dd data-count="waiting" { (count(&state["pending"])) }
            }
            h2 { "Dead letters" }
            (dead_letter_table(&state["deadLetters"]))
        }
    }
}

/// The dead letters with their request and last failure, each to replay or delete, and all
/// of them at once.
fn dead_letter_table(letters: &serde_json::Value) -> Markup {
    let count = |v: &serde_json::Value| v.as_u64().map_or("?".to_owned(), |n| n.to_string());
    let dead = letters.as_array().cloned().unwrap_or_default();
    html! {
        @if dead.is_empty() { p.empty { "None." } } @else {
            p {
                button type="button" data-dead-letter="replay" { "Replay all" } " "
                button.secondary type="button" data-dead-letter="discard" { "Delete all" } " "
                span id="action-error" {}
            }
            table {
                thead { tr { th { "Call" } th { "Function" } th { "Attempts" } th { "Request" } th { "Last failure" } th {} } }
                tbody { @for letter in &dead {
                    @let function = letter["function"].as_str().unwrap_or_default();
                    @let call_id = letter["callId"].as_str().unwrap_or_default();
                    tr data-call-id=(call_id) {
                        td { code { (call_id) } }
                        td { a href={"/ui/functions/" (function)} { (function) } }
                        td { (count(&letter["attempts"])) }
                        td.request { (dead_letter_request(letter)) }
                        td { (letter["reason"].as_str().unwrap_or_default()) }
                        td {
                            button.secondary type="button" data-dead-letter="replay" data-call-id=(call_id) { "Replay" } " "
                            button.secondary type="button" data-dead-letter="discard" data-call-id=(call_id) { "Delete" }
                        }
                    }
                } }
            }
        }
    }
}

/// What a dead letter asked: method and path, then its body as text (escaped by the page),
/// or its size when it is not text.
fn dead_letter_request(letter: &serde_json::Value) -> Markup {
    let (Some(method), Some(path)) = (letter["method"].as_str(), letter["path"].as_str()) else {
        return html! { span.muted { "(not a call)" } };
    };
    html! {
        code { (method) " " (path) }
        @if let Some(body) = letter["body"].as_str().filter(|b| !b.is_empty()) {
            pre { (body) }
        } @else if let Some(bytes) = letter["bodyBytes"].as_u64().filter(|n| *n > 0) {
            span.muted { " (" (bytes) " bytes, binary)" }
        }
    }
}

/// One run: times, attempt, status, output and log tail; Cancel while it runs.
pub async fn run(platform: &Platform, id: &str, namespace: Option<&str>) -> Option<Markup> {
    let run = platform.run_history.get()?.get(namespace, id).await?;
    let status = run.status.clone().unwrap_or_default();
    // A run whose whole log is kept shows that (below, `run_log_section`) instead of its tail.
    let whole_log = match platform.scheduler.get() {
        Some(scheduler) => matches!(
            scheduler
                .runner()
                .store()
                .read_log(id.to_owned(), 0, 0)
                .await,
            Ok(Some(_))
        ),
        None => false,
    };
    let duration = run_duration(&run);
    let shown = |text: &Option<String>| {
        text.as_deref().map(|t| {
            if t.len() > MAX_SHOWN {
                let mut cut = MAX_SHOWN;
                while !t.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}\n… ({} bytes more)", &t[..cut], t.len() - cut)
            } else {
                t.to_owned()
            }
        })
    };
    Some(html! {
        dl {
            dt { "Function" } dd { a href={"/ui/functions/" (run.spec.function)} { (run.spec.function) } }
            dt { "Schedule" } dd { (run.spec.schedule) " (" (run.spec.trigger) ")" }
            dt { "Phase" } dd { span class=(phase_class(status.phase.as_str())) id="phase" { (status.phase.as_str()) } }
            dt { "Scheduled" } dd { (utc(run.spec.scheduled_time.as_deref())) }
            dt { "Started" } dd { (utc(status.start_time.as_deref())) }
            dt { "Ended" } dd { (utc(status.end_time.as_deref())) }
            dt { "Duration" } dd { (duration) }
            dt { "Attempt" } dd { (run.spec.attempt) }
            @if let Some(code) = status.exit_code {
                dt { "Exit code" } dd { (code) }
            } @else {
                dt { "HTTP status" } dd { (status.http_status.map(|c| c.to_string()).unwrap_or_else(|| "-".into())) }
            }
            @if let Some(message) = &status.message { dt { "Message" } dd { (message) } }
            @for (name, value) in &run.spec.options {
                dt { "Option " (name) } dd { code { (faas_api::options::text_of(value)) } }
            }
            @if let Some(parent) = &run.spec.parent_run {
                dt { "Started by" } dd { a href={"/ui/runs/" (parent)} { (parent) } }
            }
            @if !status.next_runs.is_empty() {
                dt { "Then started" } dd { @for next in &status.next_runs {
                    a href={"/ui/runs/" (next)} { (next) } " "
                } }
            }
        }
        // A cluster's dashboard is read-only: runs are the controller's (FunctionRuns, RBAC).
        @if platform.config.host.manages_functions { p {
            @if status.phase == RunPhase::Running {
                button.secondary type="button" data-cancel=(id) { "Cancel" } " "
            } @else if platform.registry.get(&run.spec.function).is_some() {
                // Again with the same schedule's settings (and its payload: a run's own
                // payload is not recorded).
                @if run.spec.schedule == faas_schedule::plan::MANUAL {
                    button.secondary type="button" data-run=(run.spec.function) { "Run again" } " "
                } @else {
                    button.secondary type="button" data-run=(run.spec.function) data-schedule=(run.spec.schedule) { "Run again" } " "
                }
            }
            span id="action-error" {}
        } }
        h2 { "Output" }
        pre id="output" { (shown(&status.output).unwrap_or_default()) }
        @if !whole_log && let Some(tail) = shown(&status.log_tail) { h2 { "Log tail" } pre id="log" { (tail) } }
    })
}

/// A run's whole log, below its live details: filled and followed by the page's script from
/// `GET /system/runs/{id}/log` (where the scheduler keeps logs: `faas up`).
pub fn run_log_section(platform: &Platform, id: &str) -> Option<Markup> {
    platform.scheduler.get()?;
    Some(html! {
        h2 { "Log" }
        pre id="runlog" data-log=(id) {}
    })
}

/// A cold-start phase's time, readable from microseconds (instantiation) to minutes.
fn took(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.0} µs", ms * 1000.0)
    }
}
