//! `faas runs`, `faas runs show`: runs of functions (cron and by hand), printed from the same
//! `FunctionRun` values whichever platform keeps them, every time marked with its zone.
//! (`faas run` and `faas runs cancel` are in `run.rs`.)

use faas_api::FunctionRun;
use jiff::tz::TimeZone;

use super::table::{Column, left, print_value, render, right};
use super::zone::{display_zone, marked_text};
use crate::args::Output;
use crate::backend::{Backend, RunFilter};
use crate::stdout::out;

/// `faas runs [NAME]`: history, newest first.
pub async fn list(
    backend: &dyn Backend,
    filter: RunFilter<'_>,
    tz: Option<&str>,
    output: Output,
) -> anyhow::Result<()> {
    let zone = display_zone(tz)?;
    let runs = backend.runs(&filter).await?;
    if output != Output::Table {
        return print_value(&runs.raw, output);
    }
    if runs.value.is_empty() {
        eprintln!("no runs{}", backend.scope());
        return Ok(());
    }
    out!("{}", table_in(&runs.value, "", &zone))
}

const COLUMNS: [Column; 10] = [
    left("ID"),
    left("FUNCTION"),
    left("SCHEDULE"),
    left("TRIGGER"),
    left("SCHEDULED"),
    left("STARTED"),
    right("DURATION"),
    right("ATTEMPT"),
    left("PHASE"),
    left("STATUS"),
];

/// The runs table (also in `faas describe`), each line starting with `indent`, times in the
/// user's zone.
pub fn table(runs: &[FunctionRun], indent: &str) -> String {
    table_in(runs, indent, &display_zone(None).unwrap_or(TimeZone::UTC))
}

/// The runs table with times in `zone`.
pub fn table_in(runs: &[FunctionRun], indent: &str, zone: &TimeZone) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let status = run.status.as_ref();
            vec![
                run.metadata.name.clone().unwrap_or_else(|| "-".into()),
                run.spec.function.clone(),
                run.spec.schedule.clone(),
                run.spec.trigger.clone(),
                marked_text(run.spec.scheduled_time.as_deref(), zone),
                marked_text(status.and_then(|s| s.start_time.as_deref()), zone),
                duration(run),
                run.spec.attempt.to_string(),
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
pub async fn show(
    backend: &dyn Backend,
    id: &str,
    tz: Option<&str>,
    output: Output,
) -> anyhow::Result<()> {
    let zone = display_zone(tz)?;
    let run = backend.run(id).await?;
    if output != Output::Table {
        return print_value(&run.raw, output);
    }
    out!("{}", shown(&run.value, &zone))
}

/// One run as `faas runs show` prints it, times in `zone`.
pub fn shown(run: &FunctionRun, zone: &TimeZone) -> String {
    let status = run.status.clone().unwrap_or_default();
    let dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    let mut fields = vec![
        ("Run:", dash(run.metadata.name.as_deref())),
        ("Function:", run.spec.function.clone()),
        ("Schedule:", run.spec.schedule.clone()),
        ("Trigger:", run.spec.trigger.clone()),
        (
            "Scheduled:",
            marked_text(run.spec.scheduled_time.as_deref(), zone),
        ),
        ("Started:", marked_text(status.start_time.as_deref(), zone)),
        ("Ended:", marked_text(status.end_time.as_deref(), zone)),
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
    if !run.spec.options.is_empty() {
        let options: Vec<String> = run
            .spec
            .options
            .iter()
            .map(|(k, v)| format!("{k}={}", faas_api::options::text_of(v)))
            .collect();
        fields.push(("Options:", options.join(" ")));
    }
    if let Some(parent) = &run.spec.parent_run {
        fields.push((
            "Parent:",
            format!("{parent} (chained run {} deep)", run.spec.chain_depth),
        ));
    }
    if !status.next_runs.is_empty() {
        fields.push(("Then:", status.next_runs.join(" ")));
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

/// How the run's last attempt ended, in words: `exit 3` for a job, `HTTP 200` otherwise.
pub(super) fn end_of(run: &FunctionRun) -> Option<String> {
    let status = run.status.as_ref()?;
    match (status.exit_code, status.http_status) {
        (Some(code), _) => Some(format!("exit {code}")),
        (None, Some(http)) => Some(format!("HTTP {http}")),
        (None, None) => None,
    }
}

/// The STATUS column: a job's exit code (`exit 3`), else the HTTP status, else `-`.
pub(super) fn http_status(run: &FunctionRun) -> String {
    let status = run.status.as_ref();
    match (
        status.and_then(|s| s.exit_code),
        status.and_then(|s| s.http_status),
    ) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(http)) => http.to_string(),
        (None, None) => "-".into(),
    }
}

/// How long the run took (`running` while it goes on).
pub(super) fn duration(run: &FunctionRun) -> String {
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
