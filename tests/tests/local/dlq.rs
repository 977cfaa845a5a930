//! Async dead letters under `faas up`, through the `faas` binary: a call that fails every
//! attempt is listed with its request and failure (`faas dlq list`), replayed once the
//! function works (`faas dlq replay ID`: a new call, attempt 1, that now succeeds), and the
//! rest deleted (`faas dlq delete --all`); one that is not a dead letter is named as such.

use std::path::Path;
use std::time::{Duration, Instant};

use faas_e2e::*;
use serde_json::Value;

use super::runs::output;

/// `flaky` answers 500 until the file `ok` exists beside it, and records each body it served.
fn flaky(dir: &Path) {
    std::fs::write(
        dir.join("flaky.sh"),
        "#!/bin/sh\nbody=$(cat)\nif [ ! -f ok ]; then printf 'Status: 500\\n\\nnot yet\\n'; exit 0; fi\n\
         echo \"$body\" >> served.txt\nprintf 'Content-Type: text/plain\\n\\nserved\\n'\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("flaky.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: flaky}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, flaky.sh]\n      mode: cgi\n  timeout: 10s\n",
    )
    .unwrap();
}

fn cli(faas: &Faas, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = faas.cli();
    cmd.args(args).env("NO_COLOR", "1");
    output(cmd)
}

fn dead_letters(faas: &Faas) -> Vec<Value> {
    let (code, out, err) = cli(faas, &["dlq", "list", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("{e}: {out}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Queues a call of `flaky` with `body`; returns its call id.
fn call_async(faas: &Faas, body: &str) -> String {
    let (code, out, err) = cli(
        faas,
        &[
            "invoke", "flaky", "--async", "-X", "POST", "--path", "/orders", "-d", body,
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    out.trim().to_owned()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    // 3 attempts, 2 s then 4 s apart: dead-lettered about 6 s after the call.
    let deadline = Instant::now() + Duration::from_secs(40);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_replayed_as_new_calls_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    flaky(dir.path());
    let faas = Faas::start(dir.path());
    let first = call_async(&faas, r#"{"order": 1}"#);
    let second = call_async(&faas, r#"{"order": 2}"#);
    wait_for("two dead letters", || dead_letters(&faas).len() == 2);

    let letters = dead_letters(&faas);
    let one = letters
        .iter()
        .find(|l| l["callId"] == first.as_str())
        .unwrap();
    assert_eq!(one["function"], "flaky");
    assert_eq!(one["attempts"], 3);
    assert_eq!(
        (&one["method"], &one["path"]),
        (&Value::from("POST"), &Value::from("/orders"))
    );
    assert_eq!(one["body"], r#"{"order": 1}"#);
    assert!(
        one["reason"].as_str().unwrap_or_default().contains("500"),
        "{one}"
    );
    let (code, table, err) = cli(&faas, &["dlq", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        table.contains(&first) && table.contains("POST /orders {\"order\": 1}"),
        "{table}"
    );

    // The function works now: replaying one calls it again, as a new call.
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let (code, _, err) = cli(&faas, &["dlq", "replay", &first]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("replayed 1 dead letter"), "{err}");
    let served = dir.path().join("served.txt");
    wait_for("the replayed call to be served", || {
        std::fs::read_to_string(&served).is_ok_and(|s| s.contains(r#"{"order": 1}"#))
    });
    let left: Vec<Value> = dead_letters(&faas);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["callId"], second.as_str());

    let (code, _, err) = cli(&faas, &["dlq", "replay", &first]);
    assert_ne!(code, Some(0), "no longer a dead letter");
    assert!(
        err.contains(&format!("no dead letter with call id {first}")),
        "{err}"
    );

    let (code, _, err) = cli(&faas, &["dlq", "delete", "--all"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("deleted 1 dead letter"), "{err}");
    assert!(dead_letters(&faas).is_empty());
    let served_text = std::fs::read_to_string(&served).unwrap();
    assert!(
        !served_text.contains(r#"{"order": 2}"#),
        "a deleted call is not called: {served_text}"
    );
}
