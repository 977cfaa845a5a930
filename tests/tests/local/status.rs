//! Status that tells the truth (issue 23, items 2 and 3): a function that serves with a
//! problem is `Degraded` with the reason, one that cannot serve is `NotReady`, and every place
//! status is shown agrees: `/system/functions`, `faas list`, `faas describe`, the `faas up`
//! banner and the dashboard (a real browser, `tests/ui/state.mjs`).

use std::path::Path;
use std::time::Duration;

use faas_e2e::*;
use serde_json::Value;

/// A process function: `command` under `container:`, in http mode on `port`.
fn process(dir: &Path, name: &str, command: &str, port: u16) {
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  runtime:\n    container:\n      command: {command}\n      port: {port}\n      mode: http\n  timeout: 2s\n"
        ),
    )
    .unwrap();
}

/// A folder with: `hello` (fine), `consumer` (an SQS trigger whose endpoint refuses
/// connections: `Error`) and `crashy` (a server process that exits at once).
fn platform_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_function(dir.path(), "hello", &guest("hello"), "");
    write_function(
        dir.path(),
        "consumer",
        &guest("hello"),
        "  triggers:\n    sqs:\n    - queueUrl: http://127.0.0.1:9/000000000000/nowhere\n",
    );
    process(
        dir.path(),
        "crashy",
        "[sh, -c, 'echo no config >&2; exit 3']",
        free_port(),
    );
    dir
}

async fn summary(faas: &Faas, name: &str) -> Value {
    get(&faas.url(&format!("/system/functions/{name}")))
        .await
        .json()["summary"]
        .clone()
}

fn cli(faas: &Faas, args: &[&str]) -> String {
    let out = faas.cli().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "faas {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_and_not_ready_are_shown_everywhere_with_their_reasons() {
    let dir = platform_dir();
    let faas = Faas::start(dir.path());
    faas.eventually("the trigger's source error", || async {
        summary(&faas, "consumer").await["state"] == "Degraded"
    })
    .await;

    // The API: state and reasons beside `ready`.
    let hello = summary(&faas, "hello").await;
    assert_eq!(hello["state"], "Ready", "{hello}");
    assert_eq!(hello["ready"], true);
    let consumer = summary(&faas, "consumer").await;
    assert_eq!(consumer["ready"], true, "it serves HTTP: {consumer}");
    assert_eq!(
        consumer["reasons"][0]["reason"], "TriggerError",
        "{consumer}"
    );
    assert!(
        consumer["reasons"][0]["message"]
            .as_str()
            .unwrap()
            .contains("SQS trigger http://127.0.0.1:9/000000000000/nowhere"),
        "{consumer}"
    );
    let crashy = summary(&faas, "crashy").await;
    assert_eq!(crashy["state"], "NotReady", "{crashy}");
    assert_eq!(crashy["ready"], false, "{crashy}");
    assert!(
        crashy["reason"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{crashy}"
    );

    // The banner of `faas up` said so at start.
    let banner = faas.stderr.lock().unwrap().clone();
    assert!(banner.contains("1 degraded"), "{banner}");
    assert!(
        banner
            .lines()
            .any(|l| l.contains("consumer") && l.contains("DEGRADED: SQS trigger")),
        "{banner}"
    );
    assert!(
        banner
            .lines()
            .any(|l| l.contains("crashy") && l.contains("NOT READY:")),
        "{banner}"
    );

    // `faas list`: a STATE column, the reason beside it.
    let list = cli(&faas, &["list"]);
    assert!(list.lines().next().unwrap().contains("STATE"), "{list}");
    let row = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {list}"))
            .to_owned()
    };
    assert!(row("hello").contains(" Ready "), "{list}");
    assert!(
        row("consumer").contains(" Degraded ") && row("consumer").contains("SQS trigger"),
        "{list}"
    );
    assert!(
        row("crashy").contains(" NotReady ") && row("crashy").contains("exited with status 3"),
        "{list}"
    );

    // `faas describe`: a Degraded condition with its reason.
    let text = cli(&faas, &["describe", "consumer", "-o", "table"]);
    assert!(
        text.lines()
            .any(|l| l.contains("Degraded") && l.contains("True") && l.contains("TriggerError")),
        "{text}"
    );

    // A failed update of a serving function: the old version serves, and it says so.
    write_function(
        dir.path(),
        "hello",
        &dir.path().join("no-such.wasm"),
        "  timeout: 5s\n",
    );
    faas.eventually("hello degraded by the failed update", || async {
        summary(&faas, "hello").await["state"] == "Degraded"
    })
    .await;
    assert_eq!(get(&faas.url("/function/hello")).await.status, 200);
    let hello = summary(&faas, "hello").await;
    assert_eq!(hello["reasons"][0]["reason"], "UpdateFailed", "{hello}");
    assert!(
        hello["reasons"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no-such.wasm"),
        "{hello}"
    );

    // The dashboard in a real browser: the same states and reasons.
    let out = browser_script("state.mjs", vec![faas.base.clone()]).await;
    assert!(
        out.status.success(),
        "browser check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 23 item 2: a server process whose port someone else holds (here the gateway itself,
/// on the port every template used to pick) is never ready, and its calls get a 503 that names
/// the port, never the other server's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_on_a_taken_port_is_never_ready_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    write_function(dir.path(), "hello", &guest("hello"), "");
    std::fs::write(
        dir.path().join("server.py"),
        "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nHTTPServer(('0.0.0.0', int(os.environ['PORT'])), BaseHTTPRequestHandler).serve_forever()\n",
    )
    .unwrap();
    let faas = Faas::start(dir.path());
    let gateway_port: u16 = faas.base.rsplit(':').next().unwrap().parse().unwrap();
    process(dir.path(), "clash", "[python3, server.py]", gateway_port);
    faas.eventually("clash registered", || async {
        get(&faas.url("/system/functions/clash")).await.status == 200
    })
    .await;
    // However long it is given, it never becomes ready.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let clash = summary(&faas, "clash").await;
    assert_eq!(clash["state"], "NotReady", "{clash}");
    assert_eq!(clash["ready"], false, "{clash}");
    let reason = clash["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("port {gateway_port}")) && reason.contains("already in use"),
        "{clash}"
    );
    let reply = get(&faas.url("/function/clash/x")).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.text().contains("already in use"), "{}", reply.text());
}

/// Issue 23 item 5: `faas logs NAME [-f] [--tail N]` against a local platform reads the
/// function's recent lines from the gateway, and `-f` follows new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faas_logs_reads_and_follows_a_local_function() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server.py"),
        "import os, sys\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        print('handling ' + self.path, flush=True)\n        self.send_response(200)\n        self.send_header('Content-Length', '2')\n        self.end_headers()\n        self.wfile.write(b'ok')\nprint('server up', flush=True)\nHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
    )
    .unwrap();
    process(dir.path(), "web", "[python3, server.py]", free_port());
    let faas = Faas::start(dir.path());
    faas.eventually("web answers", || async {
        get(&faas.url("/function/web/first-marker")).await.status == 200
    })
    .await;
    faas.eventually("the line reached the ring", || async {
        cli(&faas, &["logs", "web"]).contains("handling /first-marker")
    })
    .await;
    let all = cli(&faas, &["logs", "web"]);
    assert!(all.contains("stdout: server up"), "{all}");
    let last = cli(&faas, &["logs", "web", "--tail", "1"]);
    assert_eq!(last.lines().count(), 1, "{last}");

    let mut follow = faas
        .cli()
        .args(["logs", "web", "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        get(&faas.url("/function/web/second-marker")).await.status,
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("handling /second-marker"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("`faas logs -f` did not follow: {seen:?}"),
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();

    // An unknown function is an error that names it.
    let out = faas.cli().args(["logs", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
