//! Run notifications under `faas up` whose URL is a secret (`notify.urlFrom`, a Slack
//! webhook's URL carries its credential): read from `faas up --secrets DIR` when the
//! notification is sent, and never written to the platform's log.

use std::time::Duration;

use faas_e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::runs::output;

/// A loopback receiver of one POST: its request line and body.
async fn receive_one() -> (u16, tokio::task::JoinHandle<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .and_then(|v| v.trim().parse::<usize>().ok())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    socket
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    return (line, body.to_owned());
                }
            }
            assert!(n > 0, "the connection closed early");
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_posted_to_the_url_a_secret_holds_and_the_url_is_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let (port, received) = receive_one().await;
    std::fs::create_dir_all(secrets.path().join("hooks")).unwrap();
    std::fs::write(
        secrets.path().join("hooks/slack"),
        format!("http://127.0.0.1:{port}/services/T0/B0/s3cretpath\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("fail.sh"),
        "#!/bin/sh\necho broken >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("fail.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: fail}\nspec:\n  \
         runtime: {container: {command: [sh, fail.sh], mode: job}}\n  schedules:\n  \
         - name: nightly\n    cron: \"0 3 * * *\"\n    notify:\n      \
         urlFrom: {secretKeyRef: {name: hooks, key: slack}}\n      format: slack\n",
    )
    .unwrap();
    let faas = Faas::launch(
        dir.path(),
        Launch {
            args: vec!["--secrets".into(), secrets.path().display().to_string()],
            ..Launch::default()
        },
    );
    let mut cmd = faas.cli();
    cmd.args(["run", "fail", "--schedule", "nightly"]);
    let (code, _, err) = output(cmd);
    assert_ne!(code, Some(0), "{err}");

    let (line, body) = tokio::time::timeout(Duration::from_secs(15), received)
        .await
        .expect("a notification within 15 s")
        .unwrap();
    assert_eq!(line, "POST /services/T0/B0/s3cretpath HTTP/1.1");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = json["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("of fail/nightly: Failed (the job exited with code 3)"),
        "{text}"
    );
    // Wait for the log line that says it was sent, then check the secret part is not there.
    faas.eventually("the notification is logged", || async {
        faas.stderr
            .lock()
            .unwrap()
            .contains("run notification sent")
    })
    .await;
    let log = faas.stderr.lock().unwrap().clone();
    assert!(
        !log.contains("s3cretpath"),
        "the URL's path is in the log:\n{log}"
    );
}
