//! Run log tails in a cluster: what a run printed, on its FunctionRun.

use super::{Cluster, deploy, faas_ok, runs_of};

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
