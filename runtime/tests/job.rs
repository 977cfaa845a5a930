//! `mode: job` processes run for real (`sh` scripts): exit codes, options and payload, the
//! output file, logs, the timeout's SIGTERM then SIGKILL to the whole group, cancellation, and
//! the refusal of anything that is not a run.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use faas_api::Limits;
use faas_runtime::process::job::JobProcess;
use faas_runtime::process::{ProcessFunction, ProcessSpec};
use faas_runtime::{CallContext, InvokeError, Invoker, LogTailSink, RunLog, RunLogWriter};
use http_body_util::BodyExt;

fn job(dir: &Path, script: &str, timeout: Duration) -> ProcessFunction {
    std::fs::write(dir.join("job.sh"), script).unwrap();
    ProcessFunction::Job(
        JobProcess::new(ProcessSpec {
            started: Default::default(),
            name: "nightly".into(),
            argv: vec!["sh".into(), "job.sh".into()],
            working_dir: Some(dir.to_path_buf()),
            env: vec![("GREETING".into(), "hi".into())],
            port: None,
            readiness_path: None,
            limits: Limits {
                timeout,
                ..Limits::default()
            },
        })
        .with_grace(Duration::from_millis(500)),
    )
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl RunLogWriter for Captured {
    fn append(&self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn run_ctx(log: &Captured, tail: &LogTailSink) -> CallContext {
    CallContext {
        as_run: true,
        run_log: Some(RunLog::new(log.clone())),
        log_tail: Some(tail.clone()),
        ..CallContext::new("nightly.manual.0123456789abcdef", "nightly")
    }
}

fn request(payload: &'static str, options: Option<&str>) -> http::Request<Bytes> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("x-faas-run-id", "nightly.manual.0123456789abcdef")
        .header("x-faas-trigger", "manual")
        .header("x-faas-schedule", "manual")
        .header("x-faas-attempt", "1");
    if let Some(options) = options {
        request = request.header("x-faas-options", options);
    }
    request
        .body(Bytes::from_static(payload.as_bytes()))
        .unwrap()
}

fn header<'a>(
    response: &'a http::Response<faas_runtime::ResponseBody>,
    name: &str,
) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn exit_zero_succeeds_with_its_output_file_and_every_line_logged() {
    let dir = tempfile::tempdir().unwrap();
    let f = job(
        dir.path(),
        r#"echo "run $FAAS_RUN_ID attempt $FAAS_ATTEMPT by $FAAS_TRIGGER"
echo "to stderr" >&2
echo "input: $(cat)"
echo "days=$FAAS_OPTION_DAYS dry=$FAAS_OPTION_DRY_RUN note=$FAAS_OPTION_NOTE greeting=$GREETING"
printf '{"rows": 42}' > "$FAAS_OUTPUT"
"#,
        Duration::from_secs(10),
    );
    let (log, tail) = (Captured::default(), LogTailSink::default());
    let response = f
        .invoke(
            run_ctx(&log, &tail),
            request(
                "yesterday",
                Some(r#"{"days":7,"dry_run":true,"note":"caf\u00e9 & co"}"#),
            ),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-faas-exit-code"), Some("0"));
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, Bytes::from_static(br#"{"rows": 42}"#));
    let text = log.text();
    for line in [
        "run nightly.manual.0123456789abcdef attempt 1 by manual\n",
        "to stderr\n",
        "input: yesterday\n",
        "days=7 dry=true note=café & co greeting=hi\n",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing from the run log {text:?}"
        );
    }
    let tail = tail.wait(Duration::from_secs(2)).await.unwrap_or_default();
    assert!(tail.contains("input: yesterday"), "{tail}");
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_its_code_and_no_output_file_is_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let f = job(
        dir.path(),
        "echo failing; exit 3\n",
        Duration::from_secs(10),
    );
    let (log, tail) = (Captured::default(), LogTailSink::default());
    let response = f
        .invoke(run_ctx(&log, &tail), request("", None))
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(header(&response, "x-faas-exit-code"), Some("3"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["reason"], "JobFailed");
    assert_eq!(body["message"], "the job exited with status 3");

    let ok = job(dir.path(), "true\n", Duration::from_secs(10));
    let response = ok
        .invoke(run_ctx(&log, &tail), request("", None))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );
}

#[tokio::test]
async fn a_job_killed_by_a_signal_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let f = job(
        dir.path(),
        "kill -USR1 $$\nsleep 5\n",
        Duration::from_secs(10),
    );
    let (log, tail) = (Captured::default(), LogTailSink::default());
    let response = f
        .invoke(run_ctx(&log, &tail), request("", None))
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(header(&response, "x-faas-exit-code"), None);
    assert_eq!(header(&response, "x-faas-exit-signal"), Some("10"));
}

/// Whether process `pid` still exists (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

async fn pid_in(path: &Path) -> u32 {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no pid written to {}", path.display());
}

#[tokio::test]
async fn the_timeout_asks_the_whole_group_to_stop_then_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    // It stops cleanly on SIGTERM, saying so; its background child ignores SIGTERM.
    let f = job(
        dir.path(),
        r#"(trap '' TERM; sleep 60) &
echo $! > child.pid
trap 'echo "got TERM, cleaning up"; exit 143' TERM
while true; do sleep 0.05; done
"#,
        Duration::from_millis(500),
    );
    let (log, tail) = (Captured::default(), LogTailSink::default());
    let started = tokio::spawn({
        let ctx = run_ctx(&log, &tail);
        async move { f.invoke(ctx, request("", None)).await.map(|_| ()) }
    });
    let child = pid_in(&dir.path().join("child.pid")).await;
    assert!(alive(child));
    let err = started.await.unwrap().unwrap_err();
    assert!(matches!(err, InvokeError::Timeout(_)), "{err:?}");
    assert!(
        log.text().contains("got TERM, cleaning up"),
        "{}",
        log.text()
    );
    for _ in 0..50 {
        if !alive(child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !alive(child),
        "the group's background process outlived the run"
    );
}

#[tokio::test]
async fn a_job_deaf_to_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let f = job(
        dir.path(),
        "trap '' TERM\necho $$ > job.pid\nwhile true; do sleep 0.05; done\n",
        Duration::from_millis(300),
    );
    let (log, tail) = (Captured::default(), LogTailSink::default());
    let started = std::time::Instant::now();
    let err = f
        .invoke(run_ctx(&log, &tail), request("", None))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, InvokeError::Timeout(_)), "{err:?}");
    // Timeout (300 ms) plus the grace (500 ms): never the script's own pace (forever).
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid = pid_in(&dir.path().join("job.pid")).await;
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_cancelled_run_kills_its_group_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = job(
        dir.path(),
        "(sleep 60) &\necho $! > child.pid\nsleep 60\n",
        Duration::from_secs(60),
    );
    let (log, tail) = (Captured::default(), LogTailSink::default());
    let run = tokio::spawn({
        let ctx = run_ctx(&log, &tail);
        async move {
            let _ = f.invoke(ctx, request("", None)).await;
        }
    });
    let child = pid_in(&dir.path().join("child.pid")).await;
    run.abort();
    let _ = run.await;
    for _ in 0..50 {
        if !alive(child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(child), "a cancelled run left its process behind");
}

#[tokio::test]
async fn a_call_that_is_not_a_run_is_refused_without_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let f = job(dir.path(), "touch started\n", Duration::from_secs(10));
    let err = f
        .invoke(CallContext::new("c1", "nightly"), request("", None))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, InvokeError::NotCallable(_)), "{err:?}");
    assert_eq!(err.status(), 409);
    assert_eq!(err.reason(), "JobNotCallable");
    assert!(!dir.path().join("started").exists());
}

#[tokio::test]
async fn output_past_its_cap_is_cut_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let f = job(
        dir.path(),
        "head -c 300000 /dev/zero | tr '\\0' x > \"$FAAS_OUTPUT\"\n",
        Duration::from_secs(10),
    );
    let (log, tail) = (Captured::default(), LogTailSink::default());
    let response = f
        .invoke(run_ctx(&log, &tail), request("", None))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with(&"x".repeat(1000)));
    assert!(
        text.ends_with("[output truncated: first 262144 bytes kept]"),
        "{}",
        &text[text.len() - 80..]
    );
}
