//! `faas schedules`: the next fire times of a cron expression or of a function's schedules, in
//! the schedule's own time zone, to check an expression before deploying it; each also in the
//! user's zone (`--tz` for a function, else `TZ` or this machine's) when that differs.

use anyhow::bail;
use faas_api::cron::CronSchedule;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use faas_api::Schedule;

use super::table::print_value;
use super::zone::{display_zone, marked};
use crate::args::Output;
use crate::backend::Backend;

/// One schedule to explain.
struct Explained {
    name: String,
    cron: String,
    zone: String,
    tz: TimeZone,
    next: Vec<String>,
    /// The same fire times as instants.
    at: Vec<Timestamp>,
}

/// `t` in `shown_in`, when that reads differently from `t` in the schedule's zone `own`.
fn elsewhere(t: Timestamp, own: &TimeZone, shown_in: &TimeZone) -> Option<String> {
    let there = marked(t, shown_in);
    (there != marked(t, own)).then_some(there)
}

/// Prints the next `count` fire times of `--cron EXPR [--tz ZONE]`, or of every schedule of
/// function `name`.
pub async fn run(
    backend: &dyn Backend,
    name: Option<&str>,
    cron: Option<&str>,
    tz: Option<&str>,
    count: usize,
    output: Output,
) -> anyhow::Result<()> {
    let function = match (name, cron) {
        (Some(name), None) => Some(backend.function(name).await?),
        _ => None,
    };
    let schedules = name.zip(function.as_ref().map(|f| f.spec.schedules.as_slice()));
    print(schedules, cron, tz, count, output)
}

/// Prints the next fire times of `--cron` or of a function's `spec.schedules`.
pub fn print(
    function: Option<(&str, &[Schedule])>,
    cron: Option<&str>,
    tz: Option<&str>,
    count: usize,
    output: Output,
) -> anyhow::Result<()> {
    let now = Timestamp::now();
    // With `--cron`, `--tz` is the expression's zone; with a function, each schedule fires in
    // its own zone and `--tz` only chooses where the times are shown too.
    let (explained, shown_in) = match (function, cron) {
        (None, Some(expr)) => (
            vec![explain(
                ("--cron", "--tz"),
                expr,
                tz.unwrap_or("UTC"),
                now,
                count,
            )?],
            display_zone(None)?,
        ),
        (Some((name, schedules)), None) => {
            if schedules.is_empty() {
                bail!("function {name} has no spec.schedules");
            }
            let shown_in = display_zone(tz)?;
            let mut all = Vec::new();
            for schedule in schedules {
                let zone = schedule.time_zone.as_deref().unwrap_or("UTC");
                let labels = (schedule.name.as_str(), schedule.name.as_str());
                all.push(explain(labels, &schedule.cron, zone, now, count)?);
            }
            (all, shown_in)
        }
        (Some(_), Some(_)) => bail!("give a function NAME or --cron EXPR, not both"),
        (None, None) => bail!("give a function NAME or --cron EXPR (with --tz ZONE)"),
    };
    match output {
        Output::Table => {
            for schedule in &explained {
                println!("{} ({}, {}):", schedule.name, schedule.cron, schedule.zone);
                for (time, at) in schedule.next.iter().zip(&schedule.at) {
                    match elsewhere(*at, &schedule.tz, &shown_in) {
                        Some(there) => println!("  {time}  = {there}"),
                        None => println!("  {time}"),
                    }
                }
            }
        }
        Output::Json | Output::Yaml => {
            let value: Vec<serde_json::Value> = explained
                .iter()
                .map(|s| serde_json::json!({"name": s.name, "cron": s.cron, "timeZone": s.zone, "next": s.next}))
                .collect();
            print_value(&serde_json::Value::Array(value), output)?;
        }
    }
    Ok(())
}

/// `labels` name where the expression and the zone came from, for errors: each is blamed
/// on its own flag (`--cron`, `--tz`), or on the schedule that holds both.
fn explain(
    (cron_label, zone_label): (&str, &str),
    expr: &str,
    zone: &str,
    now: Timestamp,
    count: usize,
) -> anyhow::Result<Explained> {
    let schedule = CronSchedule::parse(expr).map_err(|e| anyhow::anyhow!("{cron_label}: {e}"))?;
    let tz = faas_api::cron::time_zone(zone).map_err(|e| anyhow::anyhow!("{zone_label}: {e}"))?;
    let at: Vec<Timestamp> = schedule.upcoming(now, &tz).take(count).collect();
    let next = at
        .iter()
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z (%:z)")
                .to_string()
        })
        .collect();
    Ok(Explained {
        name: cron_label.to_owned(),
        cron: expr.to_owned(),
        zone: zone.to_owned(),
        tz,
        next,
        at,
    })
}

/// The next fire time of `cron` in `zone` after `now`, formatted for people.
pub fn next_fire(cron: &str, zone: &str, now: Timestamp) -> Result<String, String> {
    explain(("schedule", "schedule"), cron, zone, now, 1)
        .map_err(|e| e.to_string())
        .map(|e| e.next.into_iter().next().unwrap_or_else(|| "never".into()))
}
