//! Cron schedules end to end: `faas up` fires them, records runs in its state directory,
//! `faas run` / `faas runs` drive and read them, leadership and catch-up across restarts.

use std::path::Path;
use std::time::{Duration, Instant};

use faas_e2e::*;
use serde_json::Value;

fn runs_of(reply: &Reply) -> Vec<Value> {
    reply.json().as_array().cloned().unwrap_or_default()
}

fn field<'a>(run: &'a Value, pointer: &str) -> &'a str {
    run.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

async fn list_runs(faas: &Faas, function: &str) -> Vec<Value> {
    let reply = get(&faas.url(&format!("/system/functions/{function}/runs?limit=200"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    runs_of(&reply)
}

/// `hello` with one schedule `name` firing on `cron`, keeping `keep` succeeded runs.
fn scheduled_hello(dir: &Path, name: &str, cron: &str, keep: u32) {
    write_function(
        dir,
        "hello",
        &guest("hello"),
        &format!(
            "  schedules:\n  - name: {name}\n    cron: \"{cron}\"\n    history: {{succeeded: {keep}}}\n"
        ),
    );
}

fn cli_output(mut command: std::process::Command) -> (bool, String, String) {
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_one_second_schedule_fires_and_records_runs() {
    let dir = tempfile::tempdir().unwrap();
    scheduled_hello(dir.path(), "tick", "* * * * * *", 5);
    let faas = Faas::start(dir.path());
    faas.eventually("three runs recorded", || async {
        list_runs(&faas, "hello")
            .await
            .iter()
            .filter(|r| field(r, "/status/phase") == "Succeeded")
            .count()
            >= 3
    })
    .await;

    let runs = list_runs(&faas, "hello").await;
    let done: Vec<_> = runs
        .iter()
        .filter(|r| field(r, "/status/phase") == "Succeeded")
        .collect();
    let mut scheduled: Vec<jiff::Timestamp> = Vec::new();
    for run in &done {
        let due = field(run, "/spec/scheduledTime");
        let t: jiff::Timestamp = due.parse().unwrap();
        assert_eq!(t.subsec_nanosecond(), 0, "fires on whole seconds: {due}");
        assert_eq!(
            field(run, "/metadata/name"),
            format!("hello.tick.{}", t.strftime("%Y%m%dt%H%M%Sz")),
            "deterministic id"
        );
        assert_eq!(field(run, "/spec/trigger"), "cron");
        assert_eq!(run.pointer("/status/httpStatus"), Some(&Value::from(200)));
        assert_eq!(
            field(run, "/status/output").trim(),
            "Hello from faas: POST /"
        );
        let started: jiff::Timestamp = field(run, "/status/startTime").parse().unwrap();
        assert!(started >= t, "a run never starts before its time");
        scheduled.push(t);
    }
    scheduled.sort();
    scheduled.dedup();
    assert_eq!(scheduled.len(), done.len(), "each fire time once");
    assert!(
        runs.len() <= 5 + 1,
        "history keeps 5 succeeded (+1 running): {}",
        runs.len()
    );

    let metrics = get(&faas.url("/metrics")).await.text();
    assert!(
        metrics.contains(
            r#"faas_cron_runs_total{function="hello",phase="Succeeded",schedule="tick"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("faas_cron_lateness_seconds_count"));
    assert!(
        metrics
            .contains(r#"faas_cron_next_fire_timestamp_seconds{function="hello",schedule="tick"}"#)
    );

    // The CLI shows the same history.
    let mut cmd = faas.cli();
    cmd.args(["runs", "hello"]);
    let (ok, table, err) = cli_output(cmd);
    assert!(ok, "{err}");
    assert!(table.starts_with("ID "), "{table}");
    let id = field(done[0], "/metadata/name");
    assert!(table.contains(id), "{table}");
    let mut cmd = faas.cli();
    cmd.args(["runs", "show", id]);
    let (ok, shown, err) = cli_output(cmd);
    assert!(ok, "{err}");
    assert!(shown.contains("Phase:      Succeeded"), "{shown}");
    assert!(shown.contains("Hello from faas: POST /"), "{shown}");

    // `faas describe` shows the schedule's next fire time and the recent runs.
    let mut cmd = faas.cli();
    cmd.args(["describe", "hello", "-o", "json"]);
    let (ok, described, err) = cli_output(cmd);
    assert!(ok, "{err}");
    let described: Value = serde_json::from_str(&described).unwrap();
    assert_eq!(described["schedules"][0]["schedule"], "tick");
    assert!(
        described["schedules"][0]["nextFire"].is_string(),
        "{described}"
    );
    assert!(!described["recentRuns"].as_array().unwrap().is_empty());

    let status = get(&faas.url("/system/scheduler")).await.json();
    assert_eq!(status["role"], "Leader");
    assert_eq!(status["schedules"][0]["schedule"], "tick");
}

#[tokio::test]
async fn faas_run_runs_now_waits_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "hostile",
        &guest("hostile"),
        "  schedules:\n  - name: yearly\n    cron: \"@yearly\"\n    payload: log\n",
    );
    let faas = Faas::start(dir.path());

    // With the schedule's settings: its payload makes the guest log.
    let mut cmd = faas.cli();
    cmd.args(["run", "hostile", "--schedule", "yearly"]);
    let (ok, out, err) = cli_output(cmd);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "logged");
    assert!(err.contains(": Succeeded (HTTP 200)"), "{err}");
    let id = after_target(&err)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let run = get(&faas.url(&format!("/system/runs/{id}"))).await.json();
    assert_eq!(run["spec"]["trigger"], "manual");
    assert_eq!(run["spec"]["schedule"], "yearly");
    let tail = field(&run, "/status/logTail");
    assert!(
        tail.contains("log line 3") && tail.contains("log line to stderr"),
        "{run}"
    );

    // A payload the guest does not understand: 404, the run fails and the CLI says so.
    let mut cmd = faas.cli();
    cmd.args(["run", "hostile", "-d", "nonsense"]);
    let (ok, _, err) = cli_output(cmd);
    assert!(!ok);
    assert!(
        err.contains("ended Failed: function answered HTTP 404"),
        "{err}"
    );

    // Detached: the id comes back at once, the run finishes on its own.
    let mut cmd = faas.cli();
    cmd.args(["run", "hostile", "--detach", "-d", "sleep 300"]);
    let (ok, out, err) = cli_output(cmd);
    assert!(ok, "{err}");
    let id = out.trim().to_owned();
    assert!(id.starts_with("hostile.manual."), "{id}");
    faas.eventually("the detached run succeeds", || async {
        let run = get(&faas.url(&format!("/system/runs/{id}"))).await;
        run.status == 200 && field(&run.json(), "/status/phase") == "Succeeded"
    })
    .await;

    // Bad input: names in errors.
    let mut cmd = faas.cli();
    cmd.args(["run", "missing"]);
    let (ok, _, err) = cli_output(cmd);
    assert!(!ok && err.contains("function missing not found"), "{err}");
    let mut cmd = faas.cli();
    cmd.args(["run", "hostile", "--schedule", "weekly"]);
    let (ok, _, err) = cli_output(cmd);
    assert!(
        !ok && err.contains("has no schedule named \"weekly\""),
        "{err}"
    );
    let reply = get(&faas.url("/system/runs?phase=Done")).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.text().contains("phase: \\\"Done\\\" is not one of"),
        "{}",
        reply.text()
    );
    let reply = get(&faas.url("/system/runs/nope")).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn forbid_skips_while_a_slow_run_is_running() {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "hostile",
        &guest("hostile"),
        "  schedules:\n  - name: slow\n    cron: \"* * * * * *\"\n    concurrencyPolicy: Forbid\n    payload: sleep 2500\n    history: {succeeded: 20, failed: 20}\n",
    );
    let faas = Faas::start(dir.path());
    faas.eventually("a run succeeded after skips", || async {
        let runs = list_runs(&faas, "hostile").await;
        runs.iter()
            .any(|r| field(r, "/status/phase") == "Succeeded")
            && runs
                .iter()
                .filter(|r| field(r, "/status/phase") == "Skipped")
                .count()
                >= 2
    })
    .await;
    let runs = list_runs(&faas, "hostile").await;
    let running = runs
        .iter()
        .filter(|r| field(r, "/status/phase") == "Running")
        .count();
    assert!(running <= 1, "Forbid: never two at once");
    let skipped: Vec<_> = runs
        .iter()
        .filter(|r| field(r, "/status/phase") == "Skipped")
        .collect();
    let message = field(skipped[0], "/status/message");
    assert!(
        message.starts_with("run hostile.slow.")
            && message.ends_with("is still running (concurrencyPolicy: Forbid)"),
        "{message}"
    );
}

fn scheduled_times(runs: &[Value]) -> Vec<jiff::Timestamp> {
    let mut times: Vec<jiff::Timestamp> = runs
        .iter()
        .filter_map(|r| r.pointer("/spec/scheduledTime").and_then(Value::as_str))
        .map(|t| t.parse().unwrap())
        .collect();
    times.sort();
    times
}

#[tokio::test]
async fn a_restart_after_missed_times_catches_up_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    scheduled_hello(dir.path(), "even", "*/2 * * * * *", 50);
    let mut first = Faas::start_in_state(dir.path(), state.path());
    first
        .eventually("a first run", || async {
            !list_runs(&first, "hello").await.is_empty()
        })
        .await;
    first.sigterm();
    assert_eq!(first.wait_exit(Duration::from_secs(30)), Some(0));
    let before = scheduled_times(&list_runs_offline(state.path()).await);
    let last_before = *before.last().unwrap();

    // Down for long enough to miss at least two fire times.
    std::thread::sleep(Duration::from_secs(5));
    // The second platform may take long to start on a loaded machine: every fire time from
    // here to its start is missed, so the catch-up is judged against the time the platform
    // itself names (its log), and the wall clock gives only a bound that load cannot break.
    let restarted_at = jiff::Timestamp::now();
    let second = Faas::start_in_state(dir.path(), state.path());
    let catch_up = || {
        let log = second.stderr.lock().unwrap().clone();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains("catching up a missed run"))
            .map(str::to_owned)
            .collect();
        lines
    };
    second
        .eventually("the catch-up run, then the next regular one", || async {
            !catch_up().is_empty()
                && scheduled_times(&list_runs(&second, "hello").await).len() > before.len() + 1
        })
        .await;
    let lines = catch_up();
    assert_eq!(lines.len(), 1, "one catch-up run, not a burst: {lines:?}");
    let due: jiff::Timestamp = lines[0]
        .split_whitespace()
        .find_map(|field| field.strip_prefix("due="))
        .unwrap_or_else(|| panic!("no due= in {:?}", lines[0]))
        .parse()
        .unwrap();
    let after = scheduled_times(&list_runs(&second, "hello").await);
    let two = jiff::SignedDuration::from_secs(2);
    // Fire times were missed (down for 5 s), and none of them but the catch-up ran.
    assert!(
        due >= last_before.checked_add(two * 2).unwrap(),
        "{due} vs {last_before}"
    );
    let between: Vec<_> = after
        .iter()
        .filter(|t| **t > last_before && **t < due)
        .collect();
    assert!(between.is_empty(), "missed times run: {between:?}");
    assert!(after.contains(&due), "{due} not recorded: {after:?}");
    // It is the latest missed time: the next one ran on time, and it cannot precede the
    // restart by more than one period.
    let next = after.iter().find(|t| **t > due);
    assert_eq!(
        next,
        Some(&due.checked_add(two).unwrap()),
        "the next fire time after the catch-up: {after:?}"
    );
    assert!(
        due >= restarted_at.checked_sub(two).unwrap(),
        "{due} vs {restarted_at}"
    );
}

/// Runs recorded in a state directory whose platform is stopped: read through a platform
/// started on a copy (one on the state itself would take the lock and fire).
async fn list_runs_offline(state: &Path) -> Vec<Value> {
    let copy = tempfile::tempdir().unwrap();
    for name in ["runs.db", "runs.db-wal", "runs.db-shm"] {
        let from = state.join(name);
        if from.exists() {
            std::fs::copy(&from, copy.path().join(name)).unwrap();
        }
    }
    let empty = tempfile::tempdir().unwrap();
    let reader = Faas::start_in_state(empty.path(), copy.path());
    runs_of(&get(&reader.url("/system/runs?limit=200")).await)
}

#[tokio::test]
async fn two_platforms_on_one_state_fire_once_and_the_standby_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    scheduled_hello(dir.path(), "tick", "* * * * * *", 100);
    let mut leader = Faas::start_in_state(dir.path(), state.path());
    leader
        .eventually("leading", || async {
            get(&leader.url("/system/scheduler")).await.json()["role"] == "Leader"
        })
        .await;
    let standby = Faas::start_in_state(dir.path(), state.path());
    standby
        .eventually("standby reported", || async {
            standby
                .stderr
                .lock()
                .unwrap()
                .contains("scheduler: standby")
        })
        .await;
    assert_eq!(
        get(&standby.url("/system/scheduler")).await.json()["role"],
        "Standby"
    );
    assert!(
        !leader.stderr.lock().unwrap().contains("scheduler: standby"),
        "the leader never claims to be on standby"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    let calls = |text: &str| -> u64 {
        text.lines()
            .filter(|l| {
                l.starts_with("faas_invocations_total{") && l.contains(r#"function="hello""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let on_leader = calls(&get(&leader.url("/metrics")).await.text());
    let on_standby = calls(&get(&standby.url("/metrics")).await.text());
    assert_eq!(on_standby, 0, "the standby never fires");
    assert!(on_leader >= 3);

    leader.sigterm();
    assert_eq!(leader.wait_exit(Duration::from_secs(30)), Some(0));
    let stopped_at = Instant::now();
    standby
        .eventually("the standby took over and fires", || async {
            calls(&get(&standby.url("/metrics")).await.text()) >= 2
        })
        .await;
    assert!(stopped_at.elapsed() < Duration::from_secs(10));
    let times = scheduled_times(&list_runs(&standby, "hello").await);
    let mut unique = times.clone();
    unique.dedup();
    assert_eq!(unique.len(), times.len(), "no fire time ran twice");
}

#[tokio::test]
async fn bad_schedules_are_rejected_with_the_field_path_and_others_still_fire() {
    let dir = tempfile::tempdir().unwrap();
    let hello = guest("hello");
    write_function(
        dir.path(),
        "bad-cron",
        &hello,
        "  schedules:\n  - name: s\n    cron: \"61 * * * *\"\n",
    );
    write_function(
        dir.path(),
        "bad-zone",
        &hello,
        "  schedules:\n  - name: s\n    cron: \"@daily\"\n    timeZone: Mars/Olympus\n",
    );
    write_function(
        dir.path(),
        "bad-deadline",
        &hello,
        "  schedules:\n  - name: s\n    cron: \"@daily\"\n    startingDeadline: -5s\n",
    );
    write_function(
        dir.path(),
        "good",
        &hello,
        "  schedules:\n  - name: tick\n    cron: \"* * * * * *\"\n",
    );
    let faas = Faas::start(dir.path());
    let log = faas.stderr.lock().unwrap().clone();
    for expected in [
        "spec.schedules[0].cron: \"61 * * * *\": minute field \"61\" out of range 0-59",
        "spec.schedules[0].timeZone: unknown time zone \"Mars/Olympus\"",
        "spec.schedules[0].startingDeadline: invalid duration \"-5s\": must not be negative",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
    faas.eventually("the good schedule fires", || async {
        !list_runs(&faas, "good").await.is_empty()
    })
    .await;
    let scheduler = get(&faas.url("/system/scheduler")).await.json();
    let names: Vec<_> = scheduler["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["function"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["good"],
        "rejected functions have no schedules armed"
    );
}

#[tokio::test]
async fn sigterm_lets_a_running_run_finish_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    write_function(dir.path(), "hostile", &guest("hostile"), "");
    let mut faas = Faas::start_in_state(dir.path(), state.path());
    let mut cmd = faas.cli();
    cmd.args(["run", "hostile", "--detach", "-d", "sleep 1500"]);
    let (ok, out, err) = cli_output(cmd);
    assert!(ok, "{err}");
    let id = out.trim().to_owned();
    faas.sigterm();
    assert_eq!(faas.wait_exit(Duration::from_secs(30)), Some(0));
    drop(faas);
    let empty = tempfile::tempdir().unwrap();
    let reader = Faas::start_in_state(empty.path(), state.path());
    let run = get(&reader.url(&format!("/system/runs/{id}"))).await;
    assert_eq!(run.status, 200, "{}", run.text());
    assert_eq!(
        field(&run.json(), "/status/phase"),
        "Succeeded",
        "{}",
        run.text()
    );
}

#[tokio::test]
async fn a_running_run_can_be_cancelled_and_payloads_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "hostile",
        &guest("hostile"),
        "  timeout: 60s\n  http: {maxBodySize: 1Ki}\n",
    );
    let faas = Faas::start(dir.path());
    let started = send(
        "POST",
        &faas.url("/system/functions/hostile/runs?detach=true"),
        &[MANAGE],
        "sleep 30000",
    )
    .await;
    assert_eq!(started.status, 202, "{}", started.text());
    let id = started.json()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    faas.eventually("the run is running", || async {
        field(
            &get(&faas.url(&format!("/system/runs/{id}"))).await.json(),
            "/status/phase",
        ) == "Running"
    })
    .await;

    let cancelled = send(
        "POST",
        &faas.url(&format!("/system/runs/{id}/cancel")),
        &[MANAGE],
        "",
    )
    .await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.text());
    faas.eventually("the run is interrupted and its guest stopped", || async {
        let run = get(&faas.url(&format!("/system/runs/{id}"))).await.json();
        let metrics = get(&faas.url("/metrics")).await.text();
        field(&run, "/status/phase") == "Interrupted"
            && field(&run, "/status/message") == "cancelled by request"
            && metrics.contains(r#"faas_invocations_in_flight{function="hostile"} 0"#)
    })
    .await;
    let again = send(
        "POST",
        &faas.url(&format!("/system/runs/{id}/cancel")),
        &[MANAGE],
        "",
    )
    .await;
    assert_eq!(again.status, 409);
    assert!(
        again.text().contains("already ended Interrupted"),
        "{}",
        again.text()
    );

    // A payload over the function's body limit is refused before anything runs.
    let big = "x".repeat(2048);
    let refused = send(
        "POST",
        &faas.url("/system/functions/hostile/runs"),
        &[MANAGE],
        big,
    )
    .await;
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(refused.text().contains("spec.http.maxBodySize"));
    let runs = get(&faas.url("/system/functions/hostile/runs")).await;
    assert_eq!(runs_of(&runs).len(), 1, "the refused run left no record");
}
