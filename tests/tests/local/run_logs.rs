//! Runs of server processes and Lambda handlers keep their output (issue 23, item 5): the
//! lines a process prints while it serves a run are tagged with the run's id in the log book
//! (`/system/functions/NAME/logs`), and the run record's `logTail` holds them, which
//! `faas runs show ID` prints. Another call's lines stay off the run.

use std::path::Path;

use faas_e2e::*;
use serde_json::Value;

const HANDLER: &str = r#"
def handler(event, context):
    # No flush: the platform makes Python handlers unbuffered.
    print("lambda handled", event.get("body") or event.get("detail-type"))
    return {"statusCode": 200, "body": "done"}
"#;

const SERVER: &str = r#"
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        print("server handled", body, flush=True)
        print("server note on stderr", file=sys.stderr, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

fn manifest(dir: &Path, name: &str, container: &str) {
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime:\n    container:\n{container}  timeout: 10s\n"
        ),
    )
    .unwrap();
}

/// `faas run NAME -d DATA`: the run's id.
fn run(faas: &Faas, name: &str, data: &str) -> String {
    let out = faas.cli().args(["run", name, "-d", data]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    after_target(&err)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned()
}

fn runs_show(faas: &Faas, id: &str) -> String {
    let out = faas.cli().args(["runs", "show", id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_lambda_handlers_and_server_processes_keep_their_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    manifest(
        dir.path(),
        "lam",
        "      command: [python3, -m, awslambdaric, app.handler]\n      mode: lambda\n",
    );
    manifest(
        dir.path(),
        "web",
        &format!(
            "      command: [python3, server.py]\n      port: {}\n      mode: http\n",
            free_port()
        ),
    );
    let faas = Faas::start(dir.path());

    // A call that is not the run: its line must not land on the run.
    let reply = send("POST", &faas.url("/function/web"), &[], "plain call").await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let id = run(&faas, "web", "for the run");
    let shown = runs_show(&faas, &id);
    assert!(shown.contains("Log tail:"), "{shown}");
    assert!(shown.contains("server handled for the run"), "{shown}");
    assert!(shown.contains("server note on stderr"), "{shown}");
    assert!(!shown.contains("plain call"), "{shown}");
    let record = get(&faas.url(&format!("/system/runs/{id}"))).await.json();
    assert!(
        record["status"]["logTail"]
            .as_str()
            .is_some_and(|t| t.contains("server handled for the run")),
        "{record}"
    );
    // The log book knows whose line it is.
    let logs = get(&faas.url("/system/functions/web/logs")).await.json();
    let lines = logs["lines"].as_array().unwrap();
    let tagged = |text: &str| -> Option<Value> {
        lines
            .iter()
            .find(|l| l["line"].as_str().is_some_and(|s| s.contains(text)))
            .map(|l| l["callId"].clone())
    };
    assert_eq!(
        tagged("server handled for the run"),
        Some(Value::from(id.as_str())),
        "{logs}"
    );
    let plain = tagged("server handled plain call").expect("the plain call's line");
    assert!(plain.is_string() && plain != id.as_str(), "{logs}");

    // A Lambda handler's print, unflushed.
    let id = run(&faas, "lam", "nightly");
    let shown = runs_show(&faas, &id);
    assert!(shown.contains("lambda handled"), "{shown}");
    let logs = get(&faas.url("/system/functions/lam/logs")).await.json();
    assert!(
        logs["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["callId"] == id.as_str()
                && l["line"]
                    .as_str()
                    .is_some_and(|s| s.contains("lambda handled"))),
        "{logs}"
    );
}
