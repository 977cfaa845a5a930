//! `faas run`, `faas runs`, `faas runs show`: runs of functions (cron and by hand), printed
//! from the same `FunctionRun` values whichever platform keeps them.

use anyhow::bail;
use faas_api::{FunctionRun, RunPhase};

use super::invoke::read_data;
use super::table::{Column, left, print_value, render, right};
use crate::args::Output;
use crate::backend::{Backend, RunFilter, RunRequest};

/// `faas run NAME`: starts a run now; waits for it unless `detach`.
pub async fn start(
    backend: &dyn Backend,
    name: &str,
    schedule: Option<&str>,
    data: Option<&str>,
    detach: bool,
    output: Output,
) -> anyhow::Result<()> {
    let request = RunRequest {
        function: name,
        schedule,
        payload: read_data(data)?,
        detach,
    };
    let started = backend.start_run(request).await?;
    if output != Output::Table {
        return print_value(&started.raw, output);
    }
    let run = started.value;
    let id = run.metadata.name.as_deref().unwrap_or("-");
    if detach {
        println!("{id}");
        return Ok(());
    }
    let status = run.status.clone().unwrap_or_default();
    eprintln!(
        "run {id}: {}{} in {}",
        status.phase.as_str(),
        status
            .http_status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default(),
        duration(&run)
    );
    if let Some(out) = &status.output {
        println!("{out}");
    }
    if status.phase != RunPhase::Succeeded {
        bail!(
            "run {id} ended {}: {} (details: faas runs show {id})",
            status.phase.as_str(),
            status.message.as_deref().unwrap_or("no message")
        );
    }
    Ok(())
}

/// `faas runs [NAME]`: history, newest first.
pub async fn list(
    backend: &dyn Backend,
    filter: RunFilter<'_>,
    output: Output,
) -> anyhow::Result<()> {
    let runs = backend.runs(&filter).await?;
    if output != Output::Table {
        return print_value(&runs.raw, output);
    }
    if runs.value.is_empty() {
        eprintln!("no runs{}", backend.scope());
        return Ok(());
    }
    print!("{}", table(&runs.value, ""));
    Ok(())
}

const COLUMNS: [Column; 9] = [
    left("ID"),
    left("FUNCTION"),
    left("SCHEDULE"),
    left("TRIGGER"),
    left("SCHEDULED"),
    left("STARTED"),
    right("DURATION"),
    left("PHASE"),
    left("STATUS"),
];

/// The runs table (also in `faas describe`), each line starting with `indent`.
pub fn table(runs: &[FunctionRun], indent: &str) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let status = run.status.as_ref();
            vec![
                run.metadata.name.clone().unwrap_or_else(|| "-".into()),
                run.spec.function.clone(),
                run.spec.schedule.clone(),
                run.spec.trigger.clone(),
                short_time(run.spec.scheduled_time.as_deref()),
                short_time(status.and_then(|s| s.start_time.as_deref())),
                duration(run),
                status
                    .map(|s| s.phase.as_str())
                    .unwrap_or("Pending")
                    .to_owned(),
                http_status(run),
            ]
        })
        .collect();
    render(indent, &COLUMNS, &rows)
}

/// `faas runs show ID`: one run with its output and log tail.
pub async fn show(backend: &dyn Backend, id: &str, output: Output) -> anyhow::Result<()> {
    let run = backend.run(id).await?;
    if output != Output::Table {
        return print_value(&run.raw, output);
    }
    print!("{}", shown(&run.value));
    Ok(())
}

/// One run as `faas runs show` prints it.
pub fn shown(run: &FunctionRun) -> String {
    let status = run.status.clone().unwrap_or_default();
    let dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    let mut fields = vec![
        ("Run:", dash(run.metadata.name.as_deref())),
        ("Function:", run.spec.function.clone()),
        ("Schedule:", run.spec.schedule.clone()),
        ("Trigger:", run.spec.trigger.clone()),
        ("Scheduled:", dash(run.spec.scheduled_time.as_deref())),
        ("Started:", dash(status.start_time.as_deref())),
        ("Ended:", dash(status.end_time.as_deref())),
        ("Duration:", duration(run)),
        ("Attempt:", run.spec.attempt.to_string()),
        (
            "Phase:",
            if run.status.is_some() {
                status.phase.as_str()
            } else {
                "Pending"
            }
            .to_owned(),
        ),
        ("Status:", http_status(run)),
    ];
    if let Some(message) = &status.message {
        fields.push(("Message:", message.clone()));
    }
    let mut out = String::new();
    for (label, value) in fields {
        out.push_str(&format!("{label:<11} {value}\n"));
    }
    for (title, text) in [("Output:", &status.output), ("Log tail:", &status.log_tail)] {
        if let Some(text) = text {
            out.push_str(title);
            out.push('\n');
            for line in text.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}

fn http_status(run: &FunctionRun) -> String {
    run.status
        .as_ref()
        .and_then(|s| s.http_status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into())
}

/// `2026-01-01T10:00:00Z` -> `2026-01-01 10:00:00` (UTC, as recorded).
fn short_time(value: Option<&str>) -> String {
    value
        .map(|t| {
            t.replace('T', " ")
                .trim_end_matches('Z')
                .chars()
                .take(19)
                .collect()
        })
        .unwrap_or_else(|| "-".into())
}

/// How long the run took (`running` while it goes on).
fn duration(run: &FunctionRun) -> String {
    let status = run.status.as_ref();
    let time = |t: Option<&String>| t.and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match (
        time(status.and_then(|s| s.start_time.as_ref())),
        time(status.and_then(|s| s.end_time.as_ref())),
    ) {
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
