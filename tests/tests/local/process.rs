//! Container functions in local mode: `spec.runtime.container` runs a process on this machine
//! (an HTTP server, or a CGI script per request) behind the same gateway.

use std::path::Path;
use std::time::{Duration, Instant};

use faas_e2e::*;

const SERVER: &str = r#"
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):
        body = f"server saw {self.path} greeting={os.environ.get('GREETING')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const CGI: &str = "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"cgi saw $REQUEST_METHOD $PATH_INFO\"\ncat\n";

fn manifest(dir: &Path, name: &str, container: &str) {
    let text = format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  runtime:\n    container:\n{container}  timeout: 10s\n  env: {{GREETING: hello}}\n"
    );
    std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
}

/// A folder with the function `web`: [`SERVER`] on a free port, which it returns.
fn web_server() -> (tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    let port = free_port();
    manifest(
        dir.path(),
        "web",
        &format!("      command: [python3, server.py]\n      port: {port}\n      mode: http\n"),
    );
    (dir, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_functions_serve_through_the_gateway_and_stop_with_it() {
    let (dir, port) = web_server();
    std::fs::write(dir.path().join("report.sh"), CGI).unwrap();
    manifest(
        dir.path(),
        "report",
        "      command: [sh, report.sh]\n      mode: cgi\n",
    );
    manifest(
        dir.path(),
        "broken",
        &format!(
            // A port of its own: the one after web's may be anyone's (CI saw it taken, and
            // the function then failed for that reason instead of its exit).
            "      command: [sh, -c, 'echo missing config >&2; exit 2']\n      port: {}\n      mode: http\n",
            free_port()
        ),
    );
    manifest(
        dir.path(),
        "image-only",
        "      image: registry.example.com/team/app:1.0\n      port: 8080\n",
    );
    let mut faas = Faas::start(dir.path());

    let reply = get(&faas.url("/function/web/items?id=7")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "server saw /items?id=7 greeting=hello");

    let reply = send("POST", &faas.url("/function/report/now"), &[], "data").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "cgi saw POST /now\ndata");

    // A process that never comes up: 503 with the reason, the others unaffected.
    let reply = get(&faas.url("/function/broken")).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("exited with status 2 before accepting connections"),
        "{}",
        reply.text()
    );
    let detail = get(&faas.url("/system/functions/broken")).await.json();
    assert_eq!(detail["process"]["state"], "restarting", "{detail}");
    assert!(
        detail["process"]["reason"]
            .as_str()
            .unwrap()
            .contains("exited with status 2"),
        "{detail}"
    );
    let detail = get(&faas.url("/system/functions/web")).await.json();
    assert_eq!(detail["process"]["state"], "ready", "{detail}");
    // An image without a command cannot run locally: not ready, with the fix in the reason.
    let reply = get(&faas.url("/function/image-only")).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.text().contains("set command"), "{}", reply.text());

    // SIGTERM stops the server process with the platform.
    faas.sigterm();
    assert_eq!(faas.wait_exit(Duration::from_secs(20)), Some(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the function's server outlived the platform"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faas_deploy_runs_a_container_function_from_its_manifest_folder_and_it_survives_a_restart()
{
    // The manifest lives elsewhere than the platform's folder: its relative command is
    // resolved against the manifest's folder, which the CLI tells the platform.
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("report.sh"), CGI).unwrap();
    manifest(
        app.path(),
        "report",
        "      command: [sh, ./report.sh]\n      mode: cgi\n",
    );
    let served = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let faas = Faas::start_in_state(served.path(), state.path());
    let out = faas.deploy(&app.path().join("report.yaml"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply = send("POST", &faas.url("/function/report/x"), &[], "in").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "cgi saw POST /x\nin");
    drop(faas);

    let faas = Faas::start_in_state(served.path(), state.path());
    let reply = send("POST", &faas.url("/function/report/y"), &[], "again").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "cgi saw POST /y\nagain");
}

/// `faas up` SIGKILLed (or OOM-killed) runs no destructor, yet its function processes end with
/// it (the parent-death signal): none is left holding its port for the next `faas up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_processes_die_with_a_sigkilled_platform() {
    let (dir, port) = web_server();
    let mut faas = Faas::start(dir.path());
    let reply = get(&faas.url("/function/web/x")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    faas.sigkill();
    let _ = faas.wait_exit(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the function's server outlived the SIGKILLed platform"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its port is free for the next platform.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
}

/// [`SERVER`], deaf to SIGTERM.
const DEAF_SERVER: &str = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n";

/// Waits until nothing listens on `port`, failing after `within`; returns how long it took.
fn port_freed(port: u16, within: Duration, what: &str) -> Duration {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(start.elapsed() < within, "{what}: still listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_ignores_sigterm_is_killed_after_its_grace_and_disturbs_nobody() {
    let (dir, web_port) = web_server();
    std::fs::write(dir.path().join("deaf.py"), format!("{DEAF_SERVER}{SERVER}")).unwrap();
    let (removed_port, kept_port) = (free_port(), free_port());
    for (name, port) in [("removed", removed_port), ("kept", kept_port)] {
        manifest(
            dir.path(),
            name,
            &format!("      command: [python3, deaf.py]\n      port: {port}\n      mode: http\n"),
        );
    }
    let mut faas = Faas::start(dir.path());
    for name in ["web", "removed", "kept"] {
        let reply = get(&faas.url(&format!("/function/{name}/x"))).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
    }

    // Removed from the folder: SIGTERM is ignored, SIGKILL follows the grace period; the
    // other functions serve all along.
    std::fs::remove_file(dir.path().join("removed.yaml")).unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", removed_port)).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "a process deaf to SIGTERM outlived its function"
        );
        for name in ["web", "kept"] {
            let reply = get(&faas.url(&format!("/function/{name}/x"))).await;
            assert_eq!(reply.status, 200, "{name} disturbed: {}", reply.text());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "the deaf process went {:?} after its manifest",
        start.elapsed()
    );

    // The platform stopped with SIGTERM: it exits, and takes the deaf process with it.
    faas.sigterm();
    assert_eq!(faas.wait_exit(Duration::from_secs(30)), Some(0));
    port_freed(
        kept_port,
        Duration::from_secs(10),
        "the deaf process after the platform",
    );
    port_freed(
        web_port,
        Duration::from_secs(10),
        "the web process after the platform",
    );
}

/// A long job (a container function with a timeout over Lambda's 15 minutes) runs only where
/// the platform raised its cap: `faas up` refuses it by default, naming the field and the
/// flag, and serves it with `--max-timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_runs_only_under_a_raised_cap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.sh"),
        "#!/bin/sh\nprintf 'content-type: text/plain\\n\\nlong job ready\\n'\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("report.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: report}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, job.sh]\n      mode: cgi\n  timeout: 2h\n",
    )
    .unwrap();
    let capped = Faas::launch(dir.path(), Launch::default());
    let detail = get(&capped.url("/system/functions/report")).await.json();
    assert_eq!(detail["summary"]["ready"], false, "{detail}");
    let reason = detail["summary"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("spec.timeout: 2h is over this platform's cap of 15m")
            && reason.contains("--max-timeout"),
        "{detail}"
    );
    drop(capped);
    let raised = Faas::launch(
        dir.path(),
        Launch {
            args: vec!["--max-timeout".into(), "3h".into()],
            ..Launch::default()
        },
    );
    let reply = get(&raised.url("/function/report")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "long job ready\n");
    let detail = get(&raised.url("/system/functions/report")).await.json();
    assert_eq!(detail["summary"]["timeout"], "2h", "{detail}");
}

/// RFC 9112 §3.2.2: a request in absolute form (`GET http://host:port/path`) names its host in
/// the target, and the `Host` header sent beside it is ignored: the function sees the
/// target's host (CGI's SERVER_NAME and HTTP_HOST; a wasi:http guest's authority, which the
/// Rust SDK gives handlers as `host`), where it used to see the header's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_absolute_form_gives_the_function_the_targets_host() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("where.sh"),
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nname=%s host=%s\\n' \"$SERVER_NAME\" \"$HTTP_HOST\"\n",
    )
    .unwrap();
    manifest(
        dir.path(),
        "where",
        "      command: [sh, where.sh]\n      mode: cgi\n",
    );
    write_function(dir.path(), "guest", &guest("hostile"), "");
    let faas = Faas::start(dir.path());
    let raw = |request: String| {
        let addr = faas.base.trim_start_matches("http://").to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut out = String::new();
            stream.read_to_string(&mut out).unwrap();
            out
        })
    };
    let absolute = raw(
        "GET http://fn.example:8080/function/where/ HTTP/1.1\r\nHost: other.example\r\n\
         Connection: close\r\n\r\n"
            .to_owned(),
    )
    .await
    .unwrap();
    assert!(absolute.starts_with("HTTP/1.1 200"), "{absolute}");
    assert!(
        absolute.contains("name=fn.example host=fn.example:8080"),
        "{absolute}"
    );
    // In origin form the Host header is the host, as before.
    let origin = raw(
        "GET /function/where/ HTTP/1.1\r\nHost: other.example:81\r\nConnection: close\r\n\r\n"
            .to_owned(),
    )
    .await
    .unwrap();
    assert!(
        origin.contains("name=other.example host=other.example:81"),
        "{origin}"
    );
    // The same through a wasi:http guest.
    let absolute = raw(
        "GET http://fn.example:8080/function/guest/host HTTP/1.1\r\nHost: other.example\r\n\
         Connection: close\r\n\r\n"
            .to_owned(),
    )
    .await
    .unwrap();
    assert!(absolute.starts_with("HTTP/1.1 200"), "{absolute}");
    let body = |reply: &str| reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    let seen = body(&absolute).unwrap_or_default();
    assert!(
        seen.contains("fn.example:8080") && !seen.contains("other.example"),
        "{absolute}"
    );
    let origin = raw(
        "GET /function/guest/host HTTP/1.1\r\nHost: other.example:81\r\nConnection: close\r\n\r\n"
            .to_owned(),
    )
    .await
    .unwrap();
    assert!(
        body(&origin)
            .unwrap_or_default()
            .contains("other.example:81"),
        "{origin}"
    );
}
