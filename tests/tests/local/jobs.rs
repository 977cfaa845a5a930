//! `mode: job` under `faas up`, through the `faas` binary: a script runs to completion once
//! per run with its options as `FAAS_OPTION_*` variables and its payload on stdin; its exit
//! code decides the run; its whole log is kept and followed live; bad options are refused
//! before any run exists; the timeout stops the whole process group; and nothing but a run
//! can call it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use faas_e2e::*;
use serde_json::Value;

use super::runs::output;

const REPORT: &str = r#"#!/bin/sh
echo "report for $FAAS_OPTION_DAYS days in $FAAS_OPTION_REGION (dry run: $FAAS_OPTION_DRY_RUN)"
echo "token is ${#FAAS_OPTION_TOKEN} characters long"
echo "payload: $(cat)"
i=1
while [ $i -le 3000 ]; do echo "row $i"; i=$((i + 1)); done
echo "a warning" >&2
if [ "$FAAS_OPTION_DAYS" = 13 ]; then echo "unlucky" >&2; exit 13; fi
printf '{"days": %s, "rows": 3000}' "$FAAS_OPTION_DAYS" > "$FAAS_OUTPUT"
"#;

fn report(dir: &Path, extra: &str) {
    std::fs::write(dir.join("report.sh"), REPORT).unwrap();
    std::fs::write(
        dir.join("report.yaml"),
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: report}}\nspec:\n  \
             runtime:\n    container:\n      command: [sh, report.sh]\n      mode: job\n  \
             timeout: 30s\n  options:\n  - {{name: days, type: number, required: true}}\n  \
             - {{name: dry_run, type: boolean, default: false}}\n  \
             - {{name: region, type: enum, values: [eu, us], default: eu}}\n  \
             - {{name: token, secret: true}}\n{extra}"
        ),
    )
    .unwrap();
}

async fn runs_of(faas: &Faas, function: &str) -> Vec<Value> {
    let reply = get(&faas.url(&format!("/system/functions/{function}/runs"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json().as_array().cloned().unwrap_or_default()
}

fn run_id(stderr: &str) -> String {
    after_target(stderr)
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id in {stderr}"))
        .to_owned()
}

#[tokio::test]
async fn a_job_runs_with_its_options_and_its_exit_code_decides_the_run() {
    let dir = tempfile::tempdir().unwrap();
    report(dir.path(), "");
    let faas = Faas::start(dir.path());

    let mut cmd = faas.cli();
    cmd.args([
        "run",
        "report",
        "--option",
        "days=3",
        "--option",
        "token=s3cret",
        "--option",
        "region=us",
        "-d",
        "hello",
    ]);
    let (code, out, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        r#"{"days": 3, "rows": 3000}"#,
        "the output file is the run's output"
    );
    let id = run_id(&err);

    let mut cmd = faas.cli();
    cmd.args(["runs", "show", &id, "-o", "json"]);
    let (code, out, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["status"]["phase"], "Succeeded");
    assert_eq!(run["status"]["exitCode"], 0);
    assert_eq!(
        run["spec"]["options"],
        serde_json::json!({"days": 3, "dry_run": false, "region": "us", "token": "********"}),
        "resolved options are recorded, the secret redacted"
    );
    assert!(!out.contains("s3cret"), "{out}");

    // The whole log, far past the 4 KiB tail: every line, and the platform's own lines.
    let mut cmd = faas.cli();
    cmd.args(["runs", "logs", &id]);
    let (code, log, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    for line in [
        "[faas] attempt 1 of 1 started at ",
        "report for 3 days in us (dry run: false)\n",
        "token is 6 characters long\n",
        "payload: hello\n",
        "row 1\n",
        "row 3000\n",
        "a warning\n",
        "[faas] attempt 1 ended Succeeded\n",
    ] {
        assert!(
            log.contains(line),
            "{line:?} missing from the run's log:\n{}",
            &log[..log.len().min(2000)]
        );
    }
    assert!(!log.contains("s3cret"));

    // A failing exit code fails the run and says which.
    let mut cmd = faas.cli();
    cmd.args(["run", "report", "--option", "days=13"]);
    let (code, _, err) = output(cmd);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("the job exited with code 13"), "{err}");
    let id = run_id(&err);
    let run = get(&faas.url(&format!("/system/runs/{id}"))).await.json();
    assert_eq!(run["status"]["phase"], "Failed");
    assert_eq!(run["status"]["exitCode"], 13);
    let log = get(&faas.url(&format!("/system/runs/{id}/log")))
        .await
        .json();
    assert!(
        log["text"].as_str().unwrap_or_default().contains("unlucky"),
        "{log}"
    );
    assert_eq!(log["done"], true);
}

#[tokio::test]
async fn bad_options_are_refused_naming_each_and_no_run_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    report(dir.path(), "");
    let faas = Faas::start(dir.path());

    for (args, says) in [
        (
            vec!["--option", "days=many", "--option", "colour=red"],
            vec![
                "option colour: unknown; this function's options are days, dry_run, region, token",
                "option days: must be a number, got \"many\"",
            ],
        ),
        (vec![], vec!["option days: is required and has no default"]),
        (
            vec!["--option", "days=1", "--option", "region=mars"],
            vec!["option region: must be one of eu, us, got \"mars\""],
        ),
        (
            vec!["--option", "days=1", "--option", "dry_run=maybe"],
            vec!["option dry_run: must be true or false, got \"maybe\""],
        ),
        (
            vec!["--option", "days"],
            vec!["--option \"days\": expected NAME=VALUE"],
        ),
        (
            vec!["--option", "days=1", "--option", "days=2"],
            vec!["--option days: given twice"],
        ),
    ] {
        let mut cmd = faas.cli();
        cmd.args(["run", "report"]).args(&args);
        let (code, _, err) = output(cmd);
        assert_ne!(code, Some(0), "{args:?}: {err}");
        for said in says {
            assert!(
                err.contains(said),
                "{args:?}: {said:?} missing from:\n{err}"
            );
        }
    }
    // The API answers 400 naming the option, and records nothing either.
    let reply = send(
        "POST",
        &faas.url("/system/functions/report/runs?option=days%3Dten"),
        &[MANAGE],
        "",
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["reason"], "InvalidOptions");
    assert!(
        reply.text().contains("option days: must be a number"),
        "{}",
        reply.text()
    );
    assert!(
        runs_of(&faas, "report").await.is_empty(),
        "a refused run was recorded"
    );
}

#[tokio::test]
async fn nothing_but_a_run_calls_a_job() {
    let dir = tempfile::tempdir().unwrap();
    report(dir.path(), "");
    let faas = Faas::start(dir.path());
    for (method, path) in [
        ("POST", "/function/report"),
        ("GET", "/function/report/anything"),
        ("POST", "/async-function/report"),
        ("POST", "/2015-03-31/functions/report/invocations"),
    ] {
        let reply = send(method, &faas.url(path), &[], "{}").await;
        assert_eq!(reply.status, 409, "{method} {path}: {}", reply.text());
        assert!(reply.text().contains("faas run"), "{}", reply.text());
        if path.starts_with("/2015-03-31/") {
            // Lambda's own error for a resource that cannot take the call.
            assert_eq!(
                reply.headers["x-amzn-errortype"],
                "ResourceConflictException"
            );
        } else {
            assert_eq!(reply.json()["reason"], "JobNotCallable", "{method} {path}");
        }
    }
    assert!(runs_of(&faas, "report").await.is_empty());
}

#[tokio::test]
async fn a_schedule_fires_the_job_with_its_own_options() {
    let dir = tempfile::tempdir().unwrap();
    report(
        dir.path(),
        "  schedules:\n  - name: often\n    cron: \"* * * * * *\"\n    options: {days: 7, dry_run: true}\n    payload: scheduled\n",
    );
    let faas = Faas::start(dir.path());
    let fired = std::sync::Arc::new(std::sync::Mutex::new(None));
    faas.eventually("a scheduled run succeeded", || {
        let faas = &faas;
        let fired = fired.clone();
        async move {
            let runs = runs_of(faas, "report").await;
            let found = runs
                .into_iter()
                .find(|r| r["status"]["phase"] == "Succeeded" && r["spec"]["trigger"] == "cron");
            let done = found.is_some();
            *fired.lock().unwrap() = found;
            done
        }
    })
    .await;
    let run = fired.lock().unwrap().take().unwrap();
    assert_eq!(run["spec"]["options"]["days"], 7);
    assert_eq!(run["spec"]["options"]["dry_run"], true);
    let id = run["metadata"]["name"].as_str().unwrap();
    let log = get(&faas.url(&format!("/system/runs/{id}/log")))
        .await
        .json();
    let text = log["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("report for 7 days in eu (dry run: true)"),
        "{text}"
    );
    assert!(text.contains("payload: scheduled"), "{text}");
}

#[tokio::test]
async fn a_run_log_is_followed_live_and_the_timeout_stops_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    // Prints a line every 100 ms; a background child ignores SIGTERM; stops on SIGTERM.
    std::fs::write(
        dir.path().join("slow.sh"),
        "(trap '' TERM; sleep 60) &\necho $! > child.pid\ntrap 'echo stopping; exit 143' TERM\n\
         i=0\nwhile true; do i=$((i + 1)); echo \"tick $i\"; sleep 0.1; done\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("slow.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: slow}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, slow.sh]\n      mode: job\n  timeout: 2s\n",
    )
    .unwrap();
    let faas = Faas::start(dir.path());
    let mut cmd = faas.cli();
    cmd.args(["run", "slow", "--detach"]);
    let (code, out, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    let id = out.trim().to_owned();

    // `-f` prints while the run goes on and returns once it ended.
    let mut follow = faas.cli();
    follow
        .args(["runs", "logs", &id, "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let followed = tokio::task::spawn_blocking(move || follow.output().unwrap())
        .await
        .unwrap();
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let text = String::from_utf8_lossy(&followed.stdout);
    for line in [
        "tick 1\n",
        "tick 5\n",
        "stopping\n",
        "[faas] attempt 1 ended TimedOut",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing from the followed log:\n{text}"
        );
    }
    let run = get(&faas.url(&format!("/system/runs/{id}"))).await.json();
    assert_eq!(run["status"]["phase"], "TimedOut", "{run}");

    let child: u32 = std::fs::read_to_string(dir.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{child}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    };
    for _ in 0..100 {
        if !alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(), "the job's background process outlived its run");
}
