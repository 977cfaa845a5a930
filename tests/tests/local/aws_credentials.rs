//! SQS triggers under `faas up` with no AWS credentials: the trigger says "no AWS credentials
//! found" and how to give some, and the platform never asks the instance metadata endpoint
//! (169.254.169.254) unless told to. The second part runs in a network namespace that has
//! only a loopback interface, with the metadata address on that loopback and a listener
//! there counting connections: nothing can leave the namespace, whatever the code does.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use faas_e2e::moto::moto;
use faas_e2e::*;
use serde_json::Value;

use crate::netns::{Netns, no_route_out};

/// A function with an SQS trigger on `queue_url`.
fn consumer(dir: &Path, queue_url: &str) {
    write_function(
        dir,
        "sqs-consumer",
        &guest("sqs-consumer"),
        &format!("  timeout: 60s\n  triggers:\n    sqs:\n    - queueUrl: {queue_url}\n"),
    );
}

/// An environment that configures no AWS credentials of any kind (whatever the test
/// process's own environment holds): no keys, no profile, no shared files, no web identity,
/// no container endpoint.
fn without_credentials(home: &Path) -> Vec<(String, String)> {
    let none = home.join("none");
    let none = none.to_str().unwrap();
    [
        ("HOME", home.to_str().unwrap()),
        ("AWS_CONFIG_FILE", none),
        ("AWS_SHARED_CREDENTIALS_FILE", none),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_SESSION_TOKEN", ""),
        ("AWS_PROFILE", ""),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", ""),
        ("AWS_ROLE_ARN", ""),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ""),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", ""),
        ("FAAS_ALLOW_IMDS_CREDENTIALS", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Every variable `env` sets, with `extra` set over them.
fn with(env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_is_said_with_how_to_give_them() {
    let moto = moto();
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    consumer(dir.path(), &moto.url_of("e2e-no-credentials"));
    let env = moto
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .collect();
    let faas = Faas::launch(
        dir.path(),
        Launch {
            env: with(env, &[])
                .into_iter()
                .chain(without_credentials(home.path()))
                .collect(),
            ..Launch::default()
        },
    );
    let trigger = || async {
        get(&faas.url("/system/functions/sqs-consumer"))
            .await
            .json()["sqsTriggers"][0]
            .clone()
    };
    faas.eventually("the trigger in Error", || async {
        trigger().await["state"] == "Error"
    })
    .await;
    let message = trigger().await["message"].as_str().unwrap_or("").to_owned();
    assert!(
        message.starts_with("no AWS credentials found: "),
        "{message}"
    );
    assert!(
        message.contains("AWS_PROFILE") && message.contains("AWS_ACCESS_KEY_ID"),
        "{message}"
    );
    for wrong in [
        "169.254",
        "metadata endpoint",
        "Ec2InstanceMetadata",
        "ServiceAccount",
        "timed out",
    ] {
        assert!(!message.contains(wrong), "{wrong}: {message}");
    }
    // `faas describe` shows the same.
    let out = faas
        .cli()
        .args(["describe", "sqs-consumer"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no AWS credentials found"), "{text}");
}

/// A listener on 169.254.169.254:80 inside `ns`, counting the connections it accepts.
struct Trap {
    child: Child,
    connections: Arc<AtomicUsize>,
}

impl Trap {
    fn start(ns: &str) -> Trap {
        let script = "import socket\n\
            s = socket.socket()\n\
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
            s.bind(('169.254.169.254', 80))\n\
            s.listen(16)\n\
            print('listening', flush=True)\n\
            while True:\n    c, _ = s.accept()\n    print('connection', flush=True)\n    c.close()\n";
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-u", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                match line.as_str() {
                    "listening" => {
                        let _ = tx.send(());
                    }
                    "connection" => {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the metadata trap did not start");
        Trap { child, connections }
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The trigger of `sqs-consumer`, read from inside `ns`.
fn trigger_in(ns: &str, faas: &Faas) -> Value {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-s", "-m", "10"])
        .arg(faas.url("/system/functions/sqs-consumer"))
        .output()
        .unwrap();
    serde_json::from_slice::<Value>(&out.stdout).unwrap_or_default()["sqsTriggers"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_endpoint_is_never_asked_unless_allowed() {
    if Command::new("curl").arg("--version").output().is_err() {
        skip::missing("curl is not installed (needed to call the gateway in the namespace)");
        return;
    }
    let Some(ns) = Netns::create() else {
        skip::missing(
            "cannot create a network namespace here (needs root and iproute2); the credential \
             chain is still covered by faas-sqs unit tests",
        );
        return;
    };
    assert!(
        no_route_out(&ns.0),
        "the test namespace must have no route out"
    );
    let added = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "ip",
            "addr",
            "add",
            "169.254.169.254/32",
            "dev",
            "lo",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        added,
        "cannot put the metadata address on the namespace's loopback"
    );
    let trap = Trap::start(&ns.0);
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // Nothing listens there; no request gets that far without credentials anyway.
    consumer(
        dir.path(),
        "http://127.0.0.1:9/123456789012/e2e-no-credentials",
    );
    let wrapper: Vec<String> = ["ip", "netns", "exec", &ns.0].map(str::to_owned).to_vec();
    // Not even the SDK's own switch: the platform's rule alone keeps the endpoint out.
    let env = with(
        without_credentials(home.path()),
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_REGION", "us-east-1"),
        ],
    );

    let faas = Faas::launch(
        dir.path(),
        Launch {
            wrapper: wrapper.clone(),
            env: env.clone(),
            ..Launch::default()
        },
    );
    faas.eventually("the trigger in Error", || async {
        trigger_in(&ns.0, &faas)["state"] == "Error"
    })
    .await;
    let message = trigger_in(&ns.0, &faas)["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(message.contains("no AWS credentials found"), "{message}");
    // Past the first error, the poller's retries: still nobody at the metadata address.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        trap.count(),
        0,
        "the metadata endpoint was asked: {message}"
    );
    drop(faas);

    // The control: asked to use the machine's role, the platform does call the address the
    // trap listens on, so the zero above means something.
    let faas = Faas::launch(
        dir.path(),
        Launch {
            wrapper,
            env: with(env, &[("FAAS_ALLOW_IMDS_CREDENTIALS", "true")]),
            ..Launch::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while trap.count() == 0 {
        assert!(
            Instant::now() < deadline,
            "with FAAS_ALLOW_IMDS_CREDENTIALS=true the metadata endpoint was never asked: {}",
            trigger_in(&ns.0, &faas)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
