//! `faas schedules`: the next fire times of a cron expression or of a function's schedules, in
//! the schedule's own time zone, to check an expression before deploying it.

use anyhow::bail;
use faas_api::cron::CronSchedule;
use jiff::Timestamp;

use faas_api::Schedule;

use super::table::print_value;
use crate::args::Output;
use crate::backend::Backend;

/// One schedule to explain.
struct Explained {
    name: String,
    cron: String,
    zone: String,
    next: Vec<String>,
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
    let explained = match (function, cron) {
        (None, Some(expr)) => vec![explain("--cron", expr, tz.unwrap_or("UTC"), now, count)?],
        (Some((name, schedules)), None) => {
            if schedules.is_empty() {
                bail!("function {name} has no spec.schedules");
            }
            let mut all = Vec::new();
            for schedule in schedules {
                let zone = tz.or(schedule.time_zone.as_deref()).unwrap_or("UTC");
                all.push(explain(&schedule.name, &schedule.cron, zone, now, count)?);
            }
            all
        }
        (Some(_), Some(_)) => bail!("give a function NAME or --cron EXPR, not both"),
        (None, None) => bail!("give a function NAME or --cron EXPR (with --tz ZONE)"),
    };
    match output {
        Output::Table => {
            for schedule in &explained {
                println!("{} ({}, {}):", schedule.name, schedule.cron, schedule.zone);
                for time in &schedule.next {
                    println!("  {time}");
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

fn explain(
    label: &str,
    expr: &str,
    zone: &str,
    now: Timestamp,
    count: usize,
) -> anyhow::Result<Explained> {
    let schedule = CronSchedule::parse(expr).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    let tz = faas_api::cron::time_zone(zone).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    let next = schedule
        .upcoming(now, &tz)
        .take(count)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z (%:z)")
                .to_string()
        })
        .collect();
    Ok(Explained {
        name: label.to_owned(),
        cron: expr.to_owned(),
        zone: zone.to_owned(),
        next,
    })
}

/// The next fire time of `cron` in `zone` after `now`, formatted for people.
pub fn next_fire(cron: &str, zone: &str, now: Timestamp) -> Result<String, String> {
    explain("schedule", cron, zone, now, 1)
        .map_err(|e| e.to_string())
        .map(|e| e.next.into_iter().next().unwrap_or_else(|| "never".into()))
}
