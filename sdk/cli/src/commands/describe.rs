//! `faas describe NAME`: one function — its runtime, where to call it, its conditions,
//! schedules, pods, recent runs and events — the same description whichever platform runs it.
//! `-o json|yaml` (the default) prints the platform's own document instead.

use super::table::print_value;
use crate::args::Output;
use crate::backend::{Backend, Description};
use crate::stdout::out;

pub async fn run(backend: &dyn Backend, name: &str, output: Output) -> anyhow::Result<()> {
    let described = backend.describe(name).await?;
    if output != Output::Table {
        return print_value(&described.raw, output);
    }
    out!("{}", text(&described.value, jiff::Timestamp::now()))
}

/// The description as text, schedules' next fire times counted from `now`.
pub fn text(described: &Description, now: jiff::Timestamp) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let function = &described.function;
    let spec = &function.spec;
    let status = function.status.as_ref();
    line(format!(
        "Name:        {}",
        function.metadata.name.as_deref().unwrap_or("-")
    ));
    if let Some(namespace) = &described.namespace {
        line(format!("Namespace:   {namespace}"));
    }
    if let Some(kind) = status.and_then(|s| s.runtime.as_deref()) {
        line(format!("Kind:        {kind}"));
    }
    if let Some(wasm) = &spec.runtime.wasm {
        line(format!("Runtime:     wasm, {}", wasm.source));
        if let Some(sha) = &wasm.sha256 {
            line(format!("SHA256:      {sha}"));
        }
    }
    if let Some(container) = &spec.runtime.container {
        let what = match (&container.image, &container.command) {
            (Some(image), _) => image.clone(),
            (None, command) if !command.is_empty() => command.join(" "),
            _ => "-".to_owned(),
        };
        line(format!(
            "Runtime:     container ({:?}), {what}",
            container.mode
        ));
    }
    if let Some(pool) = status.and_then(|s| s.pool.as_deref()) {
        line(format!("Pool:        {pool}"));
    }
    if described.routes.is_empty() {
        line(format!(
            "URL:         {}",
            status
                .and_then(|s| s.url.as_deref())
                .unwrap_or("- (not public)")
        ));
    } else {
        line(format!("URL:         {}", described.routes.join(", ")));
    }
    if described.namespace.is_some() {
        line(format!(
            "Replicas:    {} ready of {}",
            status.and_then(|s| s.ready_replicas).unwrap_or(0),
            status.and_then(|s| s.replicas).unwrap_or(0)
        ));
    }
    if let Some(role) = spec.iam.as_ref().map(|i| i.role_arn.as_str()) {
        line(format!("IAM role:    {role}"));
    }
    for sqs in spec.sqs_triggers() {
        line(format!("SQS:         {}", sqs.queue_url));
    }
    if !spec.schedules.is_empty() {
        line("Schedules:".to_owned());
        for schedule in &spec.schedules {
            let zone = schedule.time_zone.as_deref().unwrap_or("UTC");
            let next = super::schedules::next_fire(&schedule.cron, zone, now)
                .unwrap_or_else(|why| format!("invalid: {why}"));
            let last = status
                .and_then(|s| s.last_schedules.get(&schedule.name))
                .map(String::as_str)
                .unwrap_or("never");
            line(format!(
                "  {:<16} {:<18} {:<16} next {next}; last {last}{}",
                schedule.name,
                schedule.cron,
                zone,
                if schedule.suspend { " (suspended)" } else { "" }
            ));
        }
    }
    line("Conditions:".to_owned());
    for c in status.map(|s| s.conditions.as_slice()).unwrap_or_default() {
        line(format!(
            "  {:<17} {:<7} {:<24} {}",
            c.type_,
            c.status,
            c.reason.as_deref().unwrap_or("-"),
            c.message.as_deref().unwrap_or("")
        ));
    }
    if let Some(loads) = status.map(|s| &s.load_state).filter(|l| !l.is_empty()) {
        line("Pool pods:".to_owned());
        for (pod, state) in loads {
            line(format!(
                "  {pod:<40} {}",
                if state.loaded {
                    "loaded".to_owned()
                } else {
                    format!("not loaded: {}", state.reason.as_deref().unwrap_or("-"))
                }
            ));
        }
    }
    if !described.recent_runs.is_empty() {
        line("Recent runs:".to_owned());
        out.push_str(&super::runs::table(&described.recent_runs, "  "));
    }
    if !described.events.is_empty() {
        out.push_str("Events:\n");
        for e in &described.events {
            out.push_str(&format!("  {:<8} {:<24} {}\n", e.kind, e.reason, e.message));
        }
    }
    out
}
