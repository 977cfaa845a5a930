//! A real SQS-protocol server for tests: moto in server mode on a loopback port, started once
//! per test process, plus an `aws-sdk-sqs` client for it. Never a hand-written fake.
//!
//! moto runs under a small shell that kills it when the test process's end of its stdin pipe
//! closes, so no server outlives the tests, whatever way they end.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sqs::types::QueueAttributeName;

/// moto's account id (queue URLs are `<endpoint>/123456789012/<name>`).
pub const ACCOUNT: &str = "123456789012";
/// The region tests sign for.
pub const REGION: &str = "us-east-1";

/// The running server.
pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The shell watching our end of its stdin; kept (never waited for) so that the pipe
    /// stays open for as long as the test process lives.
    _shell: Mutex<(Child, ChildStdin)>,
}

/// The server of this test process, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start)
}

fn start() -> Moto {
    let found = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "moto_server not found: the SQS tests need it (pip install 'moto[server]'; scripts/test.sh installs it)"
    );
    let mut child = Command::new("bash")
        .args([
            "-c",
            "moto_server -H 127.0.0.1 -p 0 2>&1 & m=$!; trap 'kill $m 2>/dev/null' EXIT; cat >/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the address, then keeps draining moto's request log so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("* Running on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let endpoint = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("moto_server did not say where it listens within 60 s");
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "moto must listen on loopback, got {endpoint}"
    );
    Moto {
        endpoint,
        _shell: Mutex::new((child, stdin)),
    }
}

impl Moto {
    /// SDK configuration for this server: loopback endpoint, static test credentials.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "moto",
            )))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build()
    }

    /// The environment that points a `faas up` at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_SQS", self.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_STS", self.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_SSM", self.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_S3", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// [`Moto::env`] with SQS reached at `endpoint` instead (a fault proxy in front of this
    /// server), the other services at this server.
    pub fn env_with_sqs_at(&self, endpoint: &str) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "AWS_ENDPOINT_URL_SQS" => (k, endpoint.to_owned()),
                _ => (k, v),
            })
            .collect()
    }

    /// A client for this server.
    pub fn client(&self) -> Client {
        Client::new(&self.sdk_config())
    }

    /// The URL a queue named `name` has (whether or not it exists).
    pub fn url_of(&self, name: &str) -> String {
        format!("{}/{ACCOUNT}/{name}", self.endpoint)
    }

    /// Creates queue `name` with `attributes` (`VisibilityTimeout`, `FifoQueue`,
    /// `RedrivePolicy`...) and returns its URL.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &[(QueueAttributeName, &str)],
    ) -> String {
        let mut request = self.client().create_queue().queue_name(name);
        for (k, v) in attributes {
            request = request.attributes(k.clone(), *v);
        }
        let out = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"));
        out.queue_url().expect("queue url").to_owned()
    }

    /// The queue's ARN.
    pub fn arn_of(&self, name: &str) -> String {
        format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
    }

    /// Sends `body` and returns the message id.
    pub async fn send(&self, url: &str, body: &str) -> String {
        let out = self
            .client()
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("send to {url}: {e:?}"));
        out.message_id().expect("message id").to_owned()
    }

    /// Sends `body` to a FIFO queue in `group`, deduplicated by `dedup`.
    pub async fn send_fifo(&self, url: &str, body: &str, group: &str, dedup: &str) -> String {
        let out = self
            .client()
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(dedup)
            .send()
            .await
            .unwrap_or_else(|e| panic!("send to {url}: {e:?}"));
        out.message_id().expect("message id").to_owned()
    }

    /// (visible, in flight) message counts of the queue.
    pub async fn counts(&self, url: &str) -> (u64, u64) {
        let out = self
            .client()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap_or_else(|e| panic!("attributes of {url}: {e:?}"));
        let attrs: HashMap<QueueAttributeName, String> =
            out.attributes().cloned().unwrap_or_default();
        let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Receives what is visible now (up to 10), waiting up to `wait`; bodies only.
    pub async fn receive_bodies(&self, url: &str, wait: Duration) -> Vec<String> {
        let out = self
            .client()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait.as_secs() as i32)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive from {url}: {e:?}"));
        out.messages()
            .iter()
            .map(|m| m.body().unwrap_or_default().to_owned())
            .collect()
    }
}
