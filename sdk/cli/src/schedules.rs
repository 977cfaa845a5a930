//! `faas schedules`: the next fire times of a cron expression or of a function's schedules, in
//! the schedule's own time zone, to check an expression before deploying it.

use anyhow::bail;
use faas_api::cron::CronSchedule;
use jiff::Timestamp;

use crate::Output;
use crate::client::Gateway;

/// One schedule to explain.
struct Explained {
    name: String,
    cron: String,
    zone: String,
    next: Vec<String>,
}

/// Prints the next `count` fire times of `--cron EXPR [--tz ZONE]`, or of every schedule of
/// function `name` (read from the gateway).
pub async fn run(
    gateway: &str,
    name: Option<&str>,
    cron: Option<&str>,
    tz: Option<&str>,
    count: usize,
    output: Output,
) -> anyhow::Result<()> {
    let schedules = match (name, cron) {
        (Some(name), None) => {
            let detail = Gateway::new(gateway)?
                .get_json(&format!("/system/functions/{name}"))
                .await?;
            Some((name, detail["function"]["spec"]["schedules"].clone()))
        }
        _ => None,
    };
    let schedules = schedules.as_ref().map(|(name, list)| (*name, list));
    print(schedules, cron, tz, count, output)
}

/// Prints the next fire times of `--cron` or of a function's `spec.schedules` (as JSON).
pub fn print(
    function: Option<(&str, &serde_json::Value)>,
    cron: Option<&str>,
    tz: Option<&str>,
    count: usize,
    output: Output,
) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let explained = match (function, cron) {
        (None, Some(expr)) => vec![explain("--cron", expr, tz.unwrap_or("UTC"), now, count)?],
        (Some((name, schedules)), None) => {
            let schedules = schedules.as_array().cloned().unwrap_or_default();
            if schedules.is_empty() {
                bail!("function {name} has no spec.schedules");
            }
            let mut all = Vec::new();
            for schedule in schedules {
                let label = schedule["name"].as_str().unwrap_or("?").to_owned();
                let expr = schedule["cron"].as_str().unwrap_or_default();
                let zone = tz.or(schedule["timeZone"].as_str()).unwrap_or("UTC");
                all.push(explain(&label, expr, zone, now, count)?);
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
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print!("{}", serde_yaml::to_string(&value)?);
            }
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
