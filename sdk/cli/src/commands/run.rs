//! `faas run` and `faas runs cancel`: starting a run and following it to its end in the open
//! (its id first, then queued / running for Ns / attempt k of N on stderr), so a person
//! waiting knows what happens and, on Ctrl-C, that the run goes on and how to stop it.

use std::time::{Duration, Instant};

use anyhow::bail;
use faas_api::{FunctionRun, RunPhase};
use faas_schedule::plan::is_final;

use super::invoke::read_data;
use super::runs::{duration, end_of};
use super::table::print_value;
use crate::args::Output;
use crate::backend::{Backend, Fetched, RunRequest};
use crate::stdout::outln;

/// Between two looks at a run being followed.
const POLL: Duration = Duration::from_millis(500);
/// First "still running" line; each next one comes twice as late, at most [`MAX_QUIET`].
const FIRST_HEARTBEAT: Duration = Duration::from_secs(2);
const MAX_QUIET: Duration = Duration::from_secs(60);
/// How long a just-started run's record may take to appear.
const RECORD_WAIT: Duration = Duration::from_secs(10);
/// How long `faas runs cancel` waits to see the run recorded as ended.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
const INTERRUPTED_EXIT: i32 = 130;

/// What `faas run` was asked for.
pub struct Start<'a> {
    pub name: &'a str,
    pub schedule: Option<&'a str>,
    pub data: Option<&'a str>,
    /// `--option NAME=VALUE`, as given.
    pub options: &'a [String],
    pub detach: bool,
}

/// `--option NAME=VALUE` values, each split once at its first `=`; a name given twice or a
/// value without `=` is refused before anything is sent.
pub fn parse_options(given: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut options: Vec<(String, String)> = Vec::with_capacity(given.len());
    for pair in given {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--option {pair:?}: expected NAME=VALUE");
        };
        if name.is_empty() {
            bail!("--option {pair:?}: the option's name is missing before '='");
        }
        if options.iter().any(|(n, _)| n == name) {
            bail!("--option {name}: given twice");
        }
        options.push((name.to_owned(), value.to_owned()));
    }
    Ok(options)
}

/// `faas run NAME`: starts a run; unless `detach`, follows it to its end.
pub async fn start(backend: &dyn Backend, start: Start<'_>, output: Output) -> anyhow::Result<()> {
    let Start {
        name,
        schedule,
        data,
        options,
        detach,
    } = start;
    let request = RunRequest {
        function: name,
        schedule,
        payload: read_data(data)?,
        options: parse_options(options)?,
        // Always detached: this command follows the run itself, so it can say what happens
        // while it waits and leave the run going when interrupted.
        detach: true,
    };
    let started = backend.start_run(request).await?;
    let Some(id) = started.value.metadata.name.clone() else {
        bail!("the platform started a run without naming it");
    };
    if detach {
        if output != Output::Table {
            return print_value(&started.raw, output);
        }
        return outln!("{id}");
    }
    eprintln!("run {id} started (Ctrl-C stops waiting, not the run)");
    let attempts = attempts_of(backend, name, schedule).await;
    let finished = tokio::select! {
        finished = follow(backend, &id, attempts) => finished?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\nrun {id} continues on the platform; to stop it: faas runs cancel {id}");
            // The conventional status of a command ended by SIGINT; nothing is left to clean.
            std::process::exit(INTERRUPTED_EXIT);
        }
    };
    if output != Output::Table {
        return print_value(&finished.raw, output);
    }
    let run = finished.value;
    let status = run.status.clone().unwrap_or_default();
    // Steps shorter than a poll are never seen; the last line still says how many it took.
    let tries = match attempts {
        Some(1) => String::new(),
        _ => format!(" ({})", attempt_text(run.spec.attempt, attempts)),
    };
    eprintln!(
        "run {id}: {}{} in {}{tries}",
        status.phase.as_str(),
        end_of(&run).map(|e| format!(" ({e})")).unwrap_or_default(),
        duration(&run)
    );
    if let Some(out) = &status.output {
        outln!("{out}")?;
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

/// How many attempts a run of `schedule` may make (its retries + 1), when the platform says.
async fn attempts_of(backend: &dyn Backend, name: &str, schedule: Option<&str>) -> Option<u32> {
    let Some(schedule) = schedule else {
        // A run without a schedule's settings is tried once.
        return Some(1);
    };
    let function = backend.function(name).await.ok()?;
    let schedule = function
        .spec
        .schedules
        .iter()
        .find(|s| s.name == schedule)?;
    Some(schedule.retries.as_ref().map_or(0, |r| r.limit) + 1)
}

/// What a person following a run is told, from one look at its record.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// No scheduler has started it yet.
    Queued,
    /// Attempt `k` is under way.
    Running(u32),
    /// Waiting before the next attempt; the record says why.
    Retrying(String),
    Ended,
}

fn step_of(run: &FunctionRun) -> Step {
    match run.status.as_ref() {
        None => Step::Queued,
        Some(status) if is_final(status.phase) => Step::Ended,
        Some(status) if status.phase == RunPhase::Running => Step::Running(run.spec.attempt),
        Some(status) if status.start_time.is_none() => Step::Queued,
        Some(status) => Step::Retrying(status.message.clone().unwrap_or_default()),
    }
}

/// `attempt 2/3`, or `attempt 2` when the total is unknown.
fn attempt_text(k: u32, of: Option<u32>) -> String {
    match of {
        Some(n) => format!("attempt {k}/{n}"),
        None => format!("attempt {k}"),
    }
}

/// Looks at run `id` until it ends, saying on stderr each time its step changes and, while
/// it runs, for how long.
async fn follow(
    backend: &dyn Backend,
    id: &str,
    attempts: Option<u32>,
) -> anyhow::Result<Fetched<FunctionRun>> {
    let started = Instant::now();
    let mut last: Option<Step> = None;
    let mut quiet = FIRST_HEARTBEAT;
    let mut next_heartbeat = started + quiet;
    let mut seen = false;
    loop {
        // A run started detached is recorded a moment after the platform answered: until its
        // record has been read once, not finding it means "not yet", for a while.
        let run = match backend.run(id).await {
            Ok(run) => run,
            Err(_) if !seen && started.elapsed() < RECORD_WAIT => {
                tokio::time::sleep(POLL / 5).await;
                continue;
            }
            Err(err) => return Err(err),
        };
        seen = true;
        let step = step_of(&run.value);
        if step == Step::Ended {
            return Ok(run);
        }
        if last.as_ref() != Some(&step) {
            match &step {
                Step::Queued => eprintln!("  queued"),
                Step::Running(k) => eprintln!("  running ({})", attempt_text(*k, attempts)),
                Step::Retrying(why) => eprintln!("  {why}"),
                Step::Ended => {}
            }
            last = Some(step);
        } else if Instant::now() >= next_heartbeat {
            let waited = started.elapsed().as_secs();
            match &step {
                Step::Running(k) => {
                    eprintln!("  running for {waited}s ({})", attempt_text(*k, attempts))
                }
                Step::Queued => {
                    eprintln!("  queued for {waited}s (nothing has picked it up yet)")
                }
                Step::Retrying(_) | Step::Ended => {}
            }
            quiet = (quiet * 2).min(MAX_QUIET);
            next_heartbeat = Instant::now() + quiet;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `faas runs cancel ID`: stops the run and waits (briefly) to report how it was recorded.
pub async fn cancel(backend: &dyn Backend, id: &str) -> anyhow::Result<()> {
    backend.cancel_run(id).await?;
    let asked = Instant::now();
    while asked.elapsed() < CANCEL_WAIT {
        let run = backend.run(id).await?.value;
        if let Some(status) = run.status.as_ref().filter(|s| is_final(s.phase)) {
            eprintln!(
                "run {id}: {}{} ({})",
                status.phase.as_str(),
                end_of(&run).map(|e| format!(" ({e})")).unwrap_or_default(),
                status.message.as_deref().unwrap_or("cancelled")
            );
            return Ok(());
        }
        tokio::time::sleep(POLL / 5).await;
    }
    eprintln!("run {id}: cancel requested; `faas runs show {id}` shows how it ended");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{FunctionRunSpec, FunctionRunStatus};

    fn run(status: Option<FunctionRunStatus>, attempt: u32) -> FunctionRun {
        let mut run = FunctionRun::new(
            "f.manual.0",
            FunctionRunSpec {
                function: "f".into(),
                schedule: "manual".into(),
                trigger: "manual".into(),
                scheduled_time: None,
                attempt,
                options: Default::default(),
                ..Default::default()
            },
        );
        run.status = status;
        run
    }

    fn status(phase: RunPhase, started: bool, message: Option<&str>) -> Option<FunctionRunStatus> {
        Some(FunctionRunStatus {
            phase,
            start_time: started.then(|| "2026-01-01T00:00:00Z".into()),
            message: message.map(Into::into),
            ..FunctionRunStatus::default()
        })
    }

    #[test]
    fn steps_follow_the_record() {
        assert_eq!(step_of(&run(None, 1)), Step::Queued);
        assert_eq!(
            step_of(&run(status(RunPhase::Pending, false, None), 1)),
            Step::Queued
        );
        assert_eq!(
            step_of(&run(status(RunPhase::Running, true, None), 2)),
            Step::Running(2)
        );
        assert_eq!(
            step_of(&run(
                status(RunPhase::Pending, true, Some("retrying in 5s")),
                1
            )),
            Step::Retrying("retrying in 5s".into())
        );
        assert_eq!(
            step_of(&run(status(RunPhase::Interrupted, true, None), 1)),
            Step::Ended
        );
        assert_eq!(attempt_text(2, Some(3)), "attempt 2/3");
        assert_eq!(attempt_text(2, None), "attempt 2");
    }
}
