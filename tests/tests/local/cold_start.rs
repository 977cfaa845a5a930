//! Cold-start timing in local mode: after the first call of a WASM function, an HTTP process
//! and a Lambda handler, the metrics scrape shows `faas_cold_start_seconds` for exactly the
//! phases each went through, and the dashboard's function page shows them.

use faas_e2e::*;

const SERVER: &str = r#"
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const HANDLER: &str = r#"
import time
time.sleep(0.2)  # init code: counted as lambda_init

def handler(event, context):
    return {"statusCode": 200, "body": "hi"}
"#;

/// The phases `function` has samples of in a metrics scrape.
fn phases(metrics: &str, function: &str) -> Vec<String> {
    let prefix = format!("faas_cold_start_seconds_count{{function=\"{function}\",phase=\"");
    let mut found: Vec<String> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter(|rest| !rest.ends_with(" 0"))
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_call_shows_the_cold_start_phases_it_went_through() {
    let dir = tempfile::tempdir().unwrap();
    write_function(dir.path(), "hello", &guest("hello"), "");
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    let port = free_port();
    let container = |name: &str, body: &str| {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            format!(
                "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime:\n    container:\n{body}  timeout: 10s\n"
            ),
        )
        .unwrap();
    };
    container(
        "web",
        &format!("      command: [python3, server.py]\n      port: {port}\n      mode: http\n"),
    );
    container(
        "orders",
        "      command: [python3, -m, awslambdaric, app.handler]\n      mode: lambda\n",
    );
    let faas = Faas::start(dir.path());

    for function in ["hello", "web", "orders"] {
        let reply = get(&faas.url(&format!("/function/{function}"))).await;
        assert_eq!(reply.status, 200, "{function}: {}", reply.text());
    }
    let metrics = get(&faas.url("/metrics")).await.text();
    assert!(
        metrics.contains("# TYPE faas_cold_start_seconds histogram"),
        "{metrics}"
    );
    assert_eq!(
        phases(&metrics, "hello"),
        ["compile", "instantiate"],
        "{metrics}"
    );
    assert_eq!(phases(&metrics, "web"), ["process_start"], "{metrics}");
    assert_eq!(phases(&metrics, "orders"), ["lambda_init"], "{metrics}");
    // The handler's init code slept 200 ms: its init is timed, not counted.
    assert!(
        metrics.contains(
            "faas_cold_start_seconds_bucket{function=\"orders\",phase=\"lambda_init\",le=\"0.1\"} 0"
        ),
        "{metrics}"
    );

    // The dashboard's function page: one row per phase.
    let page = get(&faas.url("/ui/functions/hello")).await.text();
    for phase in ["compile", "instantiate"] {
        assert!(
            page.contains(&format!("data-phase=\"{phase}\"")),
            "{phase}: {page}"
        );
    }
    assert!(!page.contains("data-phase=\"lambda_init\""), "{page}");
    let page = get(&faas.url("/ui/functions/orders")).await.text();
    assert!(page.contains("data-phase=\"lambda_init\""), "{page}");
}
