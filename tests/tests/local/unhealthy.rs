//! Processes that cannot serve say so at once (issue 23, item 2): a request to a
//! crash-looping server process fails fast with a 503 naming the reason instead of waiting
//! out the function's timeout, and a Lambda handler whose process crashes makes the function
//! `Degraded` with the reason, while it keeps serving.

use std::path::Path;
use std::time::{Duration, Instant};

use faas_e2e::*;

const HANDLER: &str = r#"
import os

def handler(event, context):
    if event.get("body") == "crash":
        os._exit(3)
    return {"statusCode": 200, "body": "fine"}
"#;

fn manifest(dir: &Path, name: &str, container: &str) {
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime:\n    container:\n{container}  timeout: 30s\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_process_fails_fast_and_a_crashing_lambda_handler_is_degraded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    manifest(
        dir.path(),
        "broken",
        &format!(
            "      command: [sh, -c, 'echo missing config >&2; exit 2']\n      port: {}\n      mode: http\n",
            free_port()
        ),
    );
    manifest(
        dir.path(),
        "lam",
        "      command: [python3, -m, awslambdaric, app.handler]\n      mode: lambda\n",
    );
    let faas = Faas::start(dir.path());

    // The first request may come while the process is on its first start: it is answered
    // as soon as the process is seen to crash-loop, long before the 30 s timeout.
    let started = Instant::now();
    let reply = get(&faas.url("/function/broken")).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Once it is known to crash-loop, at once, with why.
    let started = Instant::now();
    let reply = get(&faas.url("/function/broken")).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(took < Duration::from_secs(2), "{took:?}");
    let text = reply.text();
    assert!(
        text.contains("crash-looping") && text.contains("exited with status 2"),
        "{text}"
    );

    // A Lambda handler process that dies: the call fails, the function serves on, Degraded.
    let reply = send("POST", &faas.url("/function/lam"), &[], "crash").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    faas.eventually("the handler serves again", || async {
        send("POST", &faas.url("/function/lam"), &[], "hello")
            .await
            .text()
            == "fine"
    })
    .await;
    let summary = get(&faas.url("/system/functions/lam")).await.json()["summary"].clone();
    assert_eq!(summary["state"], "Degraded", "{summary}");
    assert_eq!(summary["reasons"][0]["reason"], "Restarting", "{summary}");
    assert!(
        summary["reasons"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("handler process ended 1 time(s)")
                && m.contains("exited with status 3")),
        "{summary}"
    );
    let out = faas
        .cli()
        .args(["describe", "lam", "-o", "table"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains("Degraded") && l.contains("Restarting")),
        "{table}"
    );
}
