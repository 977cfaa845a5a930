//! Run log tails in a cluster: what a run printed, on its FunctionRun.

use super::{Cluster, deploy, faas_ok, http_function, http_image, runs_of};

/// A scheduled WASM function's run, started with the CLI: the pool pod that runs it sends the
/// guest's last lines back with the answer, through the gateway, to the controller, which
/// puts them on the FunctionRun (`logTail`), where `faas runs show` finds them.
pub async fn a_wasm_run_records_the_log_tail_of_its_guest<C: Cluster>(c: &C) {
    let _ = super::gateway(c).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::copy(crate::guest("hostile"), dir.path().join("chatty.wasm")).expect("copy");
    deploy(
        c,
        dir.path(),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: chatty}\nspec:\n  \
         runtime: {wasm: {source: chatty.wasm}}\n  schedules:\n  - name: yearly\n    \
         cron: \"@yearly\"\n    payload: log\n",
        &[],
    );
    // The payload makes the guest print three lines and one to stderr, then answer.
    let out = faas_ok(c, ["run", "chatty", "--schedule", "yearly"]);
    assert_eq!(out.trim(), "logged");
    let run = runs_of(c, "chatty").await.pop().expect("the run");
    assert_eq!(run["status"]["phase"], "Succeeded", "{run}");
    let tail = run["status"]["logTail"].as_str().unwrap_or_default();
    assert!(
        tail.contains("log line 3") && tail.contains("log line to stderr"),
        "{run}\n{}",
        c.diagnostics()
    );
    let name = run["metadata"]["name"].as_str().expect("a name");
    let shown = faas_ok(c, ["runs", "show", name]);
    assert!(shown.contains("log line 3"), "{shown}");
}

/// A container function's run, started with the CLI: its own server prints while it works;
/// the gateway names the pod that answered, and the controller reads that pod's log through
/// the API and keeps the lines printed during the run (not those of before) as the
/// FunctionRun's `logTail`.
pub async fn a_container_run_records_the_log_tail_of_its_pod<C: Cluster>(c: &C) {
    let Some(image) = http_image(c) else { return };
    let _ = super::gateway(c).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let spec = "  scale: {min: 1}\n  schedules:\n  - name: yearly\n    cron: \"@yearly\"\n    \
                payload: {log: \"report line printed during the run\"}\n";
    deploy(
        c,
        dir.path(),
        &http_function("report", &image, 18096, spec),
        &[],
    );
    // The server's start-up line is then seconds older than the run (the tail keeps a
    // second before the call, for clocks that differ).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    faas_ok(c, ["run", "report", "--schedule", "yearly"]);
    let run = runs_of(c, "report").await.pop().expect("the run");
    assert_eq!(run["status"]["phase"], "Succeeded", "{run}");
    let tail = run["status"]["logTail"].as_str().unwrap_or_default();
    assert!(
        tail.contains("report line printed during the run"),
        "{run}\n{}",
        c.diagnostics()
    );
    // The server's start-up line came before the run.
    assert!(!tail.contains("serving on"), "{run}\n{}", c.diagnostics());
}
