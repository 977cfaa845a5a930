//! `faas run`, `faas runs`, `faas runs show`: runs of functions (cron and by hand).

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::Output;
use crate::client::Gateway;
use crate::commands::{print_value, read_data};

/// `faas run NAME`: starts a run now; waits for it unless `detach`.
pub async fn run(
    gateway: &str,
    name: &str,
    schedule: Option<&str>,
    data: Option<&str>,
    detach: bool,
    output: Output,
) -> anyhow::Result<()> {
    let body = read_data(data)?.unwrap_or_default();
    let mut path = format!("/system/functions/{name}/runs?detach={detach}");
    if let Some(schedule) = schedule {
        path.push_str(&format!("&schedule={schedule}"));
    }
    let reply = Gateway::new(gateway)?
        .send(http::Method::POST, &path, &[], body)
        .await?;
    if !reply.status.is_success() {
        bail!("{}", reply.error_message());
    }
    let run: Value =
        serde_json::from_slice(&reply.body).context("the gateway answered with invalid JSON")?;
    if output != Output::Table {
        return print_value(&run, output);
    }
    let id = str_at(&run, "/metadata/name");
    if detach {
        println!("{id}");
        return Ok(());
    }
    let phase = str_at(&run, "/status/phase");
    eprintln!(
        "run {id}: {phase}{} in {}",
        run.pointer("/status/httpStatus")
            .and_then(Value::as_u64)
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default(),
        duration(&run)
    );
    if let Some(out) = run.pointer("/status/output").and_then(Value::as_str) {
        println!("{out}");
    }
    if phase != "Succeeded" {
        let message = run
            .pointer("/status/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        bail!("run {id} ended {phase}: {message} (details: faas runs show {id})");
    }
    Ok(())
}

/// Filters of `faas runs`.
pub struct Filter<'a> {
    pub function: Option<&'a str>,
    pub schedule: Option<&'a str>,
    pub phase: Option<&'a str>,
    pub limit: usize,
}

/// `faas runs [NAME]`: history, newest first.
pub async fn list(gateway: &str, filter: Filter<'_>, output: Output) -> anyhow::Result<()> {
    let mut path = match filter.function {
        Some(name) => format!("/system/functions/{name}/runs?limit={}", filter.limit),
        None => format!("/system/runs?limit={}", filter.limit),
    };
    if let Some(schedule) = filter.schedule {
        path.push_str(&format!("&schedule={schedule}"));
    }
    if let Some(phase) = filter.phase {
        path.push_str(&format!("&phase={phase}"));
    }
    let runs = Gateway::new(gateway)?.get_json(&path).await?;
    if output != Output::Table {
        return print_value(&runs, output);
    }
    let rows = runs.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        eprintln!("no runs");
        return Ok(());
    }
    println!(
        "{:<44} {:<7} {:<20} {:<20} {:>9} {:<12} STATUS",
        "ID", "TRIGGER", "SCHEDULED", "STARTED", "DURATION", "PHASE"
    );
    for run in rows {
        println!(
            "{:<44} {:<7} {:<20} {:<20} {:>9} {:<12} {}",
            str_at(&run, "/metadata/name"),
            str_at(&run, "/spec/trigger"),
            short_time(run.pointer("/spec/scheduledTime")),
            short_time(run.pointer("/status/startTime")),
            duration(&run),
            str_at(&run, "/status/phase"),
            run.pointer("/status/httpStatus")
                .and_then(Value::as_u64)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
        );
    }
    Ok(())
}

/// `faas runs show ID`: one run with its output and log tail.
pub async fn show(gateway: &str, id: &str, output: Output) -> anyhow::Result<()> {
    let run = Gateway::new(gateway)?
        .get_json(&format!("/system/runs/{id}"))
        .await?;
    if output != Output::Table {
        return print_value(&run, output);
    }
    let field = |label: &str, value: String| println!("{label:<11} {value}");
    field("Run:", str_at(&run, "/metadata/name"));
    field("Function:", str_at(&run, "/spec/function"));
    field("Schedule:", str_at(&run, "/spec/schedule"));
    field("Trigger:", str_at(&run, "/spec/trigger"));
    field("Scheduled:", str_at(&run, "/spec/scheduledTime"));
    field("Started:", str_at(&run, "/status/startTime"));
    field("Ended:", str_at(&run, "/status/endTime"));
    field("Duration:", duration(&run));
    field(
        "Attempt:",
        run.pointer("/spec/attempt")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .to_string(),
    );
    field("Phase:", str_at(&run, "/status/phase"));
    field(
        "Status:",
        run.pointer("/status/httpStatus")
            .and_then(Value::as_u64)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
    );
    if let Some(message) = run.pointer("/status/message").and_then(Value::as_str) {
        field("Message:", message.to_owned());
    }
    for (title, pointer) in [
        ("Output:", "/status/output"),
        ("Log tail:", "/status/logTail"),
    ] {
        if let Some(text) = run.pointer(pointer).and_then(Value::as_str) {
            println!("{title}");
            for line in text.lines() {
                println!("  {line}");
            }
        }
    }
    Ok(())
}

fn str_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_owned()
}

/// `2026-01-01T10:00:00Z` -> `2026-01-01 10:00:00` (UTC, as recorded).
fn short_time(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .map(|t| {
            t.replace('T', " ")
                .trim_end_matches('Z')
                .chars()
                .take(19)
                .collect()
        })
        .unwrap_or_else(|| "-".into())
}

fn duration(run: &Value) -> String {
    let time = |p: &str| {
        run.pointer(p)
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    match (time("/status/startTime"), time("/status/endTime")) {
        (Some(start), Some(end)) => {
            let ms = end.duration_since(start).as_millis().max(0);
            if ms < 1000 {
                format!("{ms}ms")
            } else {
                format!("{:.1}s", ms as f64 / 1000.0)
            }
        }
        (Some(_), None) => "running".into(),
        _ => "-".into(),
    }
}
