//! `faas run` as a person waiting sees it (run id first, progress, Ctrl-C that leaves the run
//! going and says how to stop it), `faas runs cancel`, and run tables whose times carry their
//! zone.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use faas_e2e::*;
use serde_json::Value;

pub(crate) fn output(mut command: std::process::Command) -> (Option<i32>, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn phase_of(run: &Value) -> &str {
    run.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `hostile` with a schedule in Paris whose runs time out after a second, retried once.
fn hostile(dir: &std::path::Path) {
    write_function(
        dir,
        "hostile",
        &guest("hostile"),
        "  timeout: 60s\n  schedules:\n  - name: nightly\n    cron: \"0 3 * * *\"\n    timeZone: Europe/Paris\n    payload: sleep 5000\n    timeout: 1500ms\n    retries: {limit: 1, backoff: 1s}\n",
    );
}

#[tokio::test]
async fn faas_run_prints_its_id_first_then_progress_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    hostile(dir.path());
    let faas = Faas::start(dir.path());

    // A run with the schedule's settings: named for the schedule, two attempts both shown.
    let mut cmd = faas.cli();
    cmd.args(["run", "hostile", "--schedule", "nightly"]);
    let (code, _, err) = output(cmd);
    assert_eq!(code, Some(1), "{err}");
    let err = after_target(&err);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("run hostile.nightly.run.") && first.contains("started"),
        "{err}"
    );
    for step in [
        "running (attempt 1/2)",
        "attempt 1 ended TimedOut",
        "running (attempt 2/2)",
        ": TimedOut (HTTP 504) in ",
        "(attempt 2/2)\nfaas: error: run hostile.nightly.run.",
    ] {
        assert!(err.contains(step), "{step:?} missing from:\n{err}");
    }

    // A slow run: told how long it has been running.
    let mut cmd = faas.cli();
    cmd.args(["run", "hostile", "-d", "sleep 3500"]);
    let (code, out, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "slept");
    assert!(err.contains("running (attempt 1/1)"), "{err}");
    assert!(err.contains("  running for "), "{err}");
    assert!(err.contains(": Succeeded (HTTP 200)"), "{err}");
}

#[tokio::test]
async fn ctrl_c_leaves_the_run_going_and_runs_cancel_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    hostile(dir.path());
    let faas = Faas::start(dir.path());

    let mut child = faas
        .cli()
        .args(["run", "hostile", "-d", "sleep 30000"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut target = String::new();
    stderr.read_line(&mut target).unwrap();
    assert!(target.starts_with("→ local "), "{target:?}");
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let id = first
        .strip_prefix("run ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id first: {first:?}"))
        .to_owned();
    assert!(id.starts_with("hostile.manual."), "{id}");
    faas.eventually("the run is running", || async {
        phase_of(&get(&faas.url(&format!("/system/runs/{id}"))).await.json()) == "Running"
    })
    .await;
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains(&format!(
            "run {id} continues on the platform; to stop it: faas runs cancel {id}"
        )),
        "{rest}"
    );
    // Interrupting the CLI did not interrupt the run.
    let run = get(&faas.url(&format!("/system/runs/{id}"))).await.json();
    assert_eq!(phase_of(&run), "Running", "{run}");

    let mut cmd = faas.cli();
    cmd.args(["runs", "cancel", &id]);
    let (code, _, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!("run {id}: Interrupted (cancelled by request)")),
        "{err}"
    );
    let run = get(&faas.url(&format!("/system/runs/{id}"))).await.json();
    assert_eq!(phase_of(&run), "Interrupted", "{run}");
    faas.eventually("the guest was stopped", || async {
        get(&faas.url("/metrics"))
            .await
            .text()
            .contains(r#"faas_invocations_in_flight{function="hostile"} 0"#)
    })
    .await;

    // Cancelling what has ended, or what does not exist, says so.
    let mut cmd = faas.cli();
    cmd.args(["runs", "cancel", &id]);
    let (code, _, err) = output(cmd);
    assert_eq!(code, Some(1));
    assert!(err.contains("already ended Interrupted"), "{err}");
    let mut cmd = faas.cli();
    cmd.args(["runs", "cancel", "hostile.manual.0000000000000000"]);
    let (code, _, err) = output(cmd);
    assert_eq!(code, Some(1));
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test]
async fn run_tables_and_schedules_mark_every_time_with_its_zone() {
    let dir = tempfile::tempdir().unwrap();
    hostile(dir.path());
    let faas = Faas::start(dir.path());
    let mut cmd = faas.cli();
    cmd.args(["run", "hostile", "-d", "ok"]);
    let (code, _, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    let id = after_target(&err)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();

    let mut cmd = faas.cli();
    cmd.args(["runs", "hostile", "--tz", "Asia/Tokyo"]);
    let (code, table, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.contains("DURATION") && header.contains("ATTEMPT"),
        "{table}"
    );
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(row.contains(&id) && row.contains(" JST"), "{table}");

    let mut cmd = faas.cli();
    cmd.args(["runs", "show", &id]).env("TZ", "UTC");
    let (code, shown, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    let started = shown
        .lines()
        .find(|l| l.starts_with("Started:"))
        .unwrap_or_default();
    assert!(started.ends_with(" UTC"), "{shown}");

    let mut cmd = faas.cli();
    cmd.args(["runs", "--tz", "Mars/Olympus"]);
    let (code, _, err) = output(cmd);
    assert_eq!(code, Some(1));
    assert!(err.contains("--tz: unknown time zone"), "{err}");

    // Next fire times in the schedule's zone, and in the one asked for beside them.
    let mut cmd = faas.cli();
    cmd.args(["schedules", "hostile", "--tz", "Asia/Tokyo", "-c", "2"]);
    let (code, text, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    let times: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(times.len(), 2, "{text}");
    for time in times {
        assert!(time.contains(" 03:00:00 CE"), "{text}");
        assert!(time.contains("= ") && time.ends_with(" JST"), "{text}");
    }
}
