//! The SQS API as the poller uses it: receive, delete, change visibility, read the queue's
//! visibility timeout; SDK types translated into ours, SDK errors into [`SourceError`]s a
//! user can act on.
//!
//! Credentials come from the sources the environment configures (static keys, profiles and
//! SSO, IRSA web identity, the container endpoint), never from instance metadata (the node's
//! role) unless `FAAS_ALLOW_IMDS_CREDENTIALS=true`: see [`crate::aws_credentials`]. Endpoints
//! come from the SDK's configuration (`AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL`). The
//! HTTPS client is rustls with ring rather than the SDK default (aws-lc), which would need
//! cmake and a C toolchain to build.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use base64::Engine as _;

use super::event::{Message, MessageAttribute};
use crate::aws_credentials::{self, CredentialPolicy, CredentialSource, NoCredentials};
use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_sdk_sqs::config::SharedCredentialsProvider;

/// Longest a receive waits for messages (SQS's maximum long poll).
pub const LONG_POLL: Duration = Duration::from_secs(20);
/// SQS's limit on entries per batch call and messages per receive.
pub const MAX_PER_CALL: usize = 10;

/// Builds SQS clients from one SDK configuration, loaded on first use (a platform without
/// SQS triggers never reads AWS configuration). One client per region: a queue must be
/// called in the region its URL names, whatever `AWS_REGION` says.
pub struct Clients {
    config: tokio::sync::OnceCell<Result<SdkConfig, NoCredentials>>,
    policy: CredentialPolicy,
    /// Signs with these instead of the environment's chain (a function's own role).
    credentials: Option<SharedCredentialsProvider>,
    by_region: Mutex<HashMap<(String, Option<String>), Client>>,
}

/// The platform's AWS configuration before credentials: rustls with ring, its timeouts (the
/// attempt timeout outlasts a 20 s long poll), its HTTP client, and the region chain (the
/// environment's or the profile's region, never the instance metadata's).
async fn base_loader() -> (
    aws_config::ConfigLoader,
    (aws_sdk_sqs::config::SharedHttpClient, RegionProviderChain),
) {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(LONG_POLL + Duration::from_secs(10))
        .build();
    let region = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::ProfileFileRegionProvider::builder().build());
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http.clone())
        .timeout_config(timeouts);
    (loader, (http, region))
}

impl Clients {
    /// Clients from the environment's configuration under the platform's credential policy
    /// ([`CredentialPolicy::from_env`]), loaded when the first client is asked for.
    pub fn from_env() -> Self {
        Self::with_policy(CredentialPolicy::from_env())
    }

    /// Clients from the environment's configuration under `policy`.
    pub fn with_policy(policy: CredentialPolicy) -> Self {
        Clients {
            config: tokio::sync::OnceCell::new(),
            policy,
            credentials: None,
            by_region: Mutex::new(HashMap::new()),
        }
    }

    /// Clients that sign with `credentials` (a function's own role, so that its triggers
    /// read its queues as it would), configured otherwise like [`Clients::from_env`]: the
    /// environment's region and endpoints, the platform's HTTPS client and timeouts.
    pub fn with_credentials(credentials: SharedCredentialsProvider) -> Self {
        Clients {
            credentials: Some(credentials),
            ..Self::with_policy(CredentialPolicy::default())
        }
    }

    /// Clients from a given configuration (embedders with their own chain).
    pub fn new(config: SdkConfig) -> Self {
        Clients {
            config: tokio::sync::OnceCell::new_with(Some(Ok(config))),
            policy: CredentialPolicy::default(),
            credentials: None,
            by_region: Mutex::new(HashMap::new()),
        }
    }

    /// The SDK configuration of these clients (the platform's credential policy, rustls with
    /// ring), for the platform's other AWS clients: one policy for every AWS call a pod makes.
    pub async fn sdk_config(&self) -> Result<SdkConfig, NoCredentials> {
        self.config().await.cloned()
    }

    /// The SDK configuration of these clients without any credentials: for calls that are
    /// not signed (STS `AssumeRoleWithWebIdentity`, whose token is the proof), in a pod that
    /// may have no identity of its own.
    pub async fn unsigned_sdk_config(&self) -> SdkConfig {
        let (loader, (_, region)) = base_loader().await;
        loader.region(region).no_credentials().load().await
    }

    async fn config(&self) -> Result<&SdkConfig, NoCredentials> {
        let loaded = self
            .config
            .get_or_init(|| async {
                if let Some(credentials) = &self.credentials {
                    let (loader, (_, region)) = base_loader().await;
                    return Ok(loader
                        .region(region)
                        .credentials_provider(credentials.clone())
                        .load()
                        .await);
                }
                let env = |k: &str| std::env::var(k).ok();
                let sources = aws_credentials::plan(
                    &self.policy,
                    env,
                    aws_credentials::profile_files_exist(env),
                )?;
                let (mut loader, (http, region)) = base_loader().await;
                // The providers' own calls (STS for IRSA, the container endpoint) go through
                // the same client; their region is the environment's or the profile's, never
                // the instance metadata's.
                let conf = ProviderConfig::without_region()
                    .with_http_client(http)
                    .with_region(region.region().await);
                if !sources.contains(&CredentialSource::InstanceMetadata) {
                    loader = loader.region(region);
                }
                if let Some(chain) = aws_credentials::chain(&sources, &conf) {
                    loader = loader.credentials_provider(chain);
                }
                tracing::debug!(sources = ?sources, "AWS credential sources");
                Ok(loader.load().await)
            })
            .await;
        loaded.as_ref().map_err(Clone::clone)
    }

    /// A client for the queue at `url`, in `region` (the URL's, else the configuration's).
    ///
    /// The request goes to the configured endpoint (`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL`,
    /// profile) if there is one, else to the region's SQS endpoint; a queue URL whose host is
    /// not an AWS one (a local SQS-protocol server) is its own endpoint.
    pub async fn queue(&self, url: &str, region: Option<&str>) -> Result<Queue, SourceError> {
        let config = self.config().await.map_err(|e| SourceError {
            code: None,
            message: e.to_string(),
        })?;
        let endpoint = match config.endpoint_url() {
            Some(_) => None,
            None => own_endpoint(url),
        };
        let region = match (region, config.region(), &endpoint) {
            (Some(region), _, _) => region.to_owned(),
            (None, Some(configured), _) => configured.as_ref().to_owned(),
            // A local server does not care which region requests are signed for.
            (None, None, Some(_)) => "us-east-1".to_owned(),
            (None, None, None) => {
                return Err(SourceError {
                    code: None,
                    message: format!(
                        "no AWS region for {url}: its URL names none and none is configured \
                         (set AWS_REGION)"
                    ),
                });
            }
        };
        let mut clients = self.by_region.lock().unwrap_or_else(|e| e.into_inner());
        let client = clients
            .entry((region.clone(), endpoint.clone()))
            .or_insert_with(|| {
                let mut builder =
                    aws_sdk_sqs::config::Builder::from(config).region(Region::new(region));
                if let Some(endpoint) = endpoint {
                    builder = builder.endpoint_url(endpoint);
                }
                Client::from_conf(builder.build())
            })
            .clone();
        Ok(Queue {
            client,
            url: url.to_owned(),
        })
    }

    /// The region of the configuration (`AWS_REGION`, profile), if any.
    pub async fn default_region(&self) -> Option<String> {
        self.config()
            .await
            .ok()?
            .region()
            .map(|r| r.as_ref().to_owned())
    }
}

/// `scheme://host[:port]` of a queue URL whose host is not AWS's (`*.amazonaws.com[.cn]`).
fn own_endpoint(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let host = host.to_ascii_lowercase();
    let aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
    (!aws).then(|| format!("{scheme}://{authority}"))
}

/// An error of the event source itself (not of the function): the queue is missing, access
/// is denied, the endpoint is down. Reported on the function and retried with backoff.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// The service's error code, when the service answered (`AWS.SimpleQueueService.NonExistentQueue`).
    pub code: Option<String>,
    /// What happened and, where we know it, what to do about it.
    pub message: String,
}

impl SourceError {
    pub(crate) fn of<E, R>(operation: &str, queue: &str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        let hint = match code.as_deref() {
            Some(
                "AWS.SimpleQueueService.NonExistentQueue"
                | "QueueDoesNotExist"
                | "AWS.SimpleQueueService.QueueDeletedRecently",
            ) => Some(format!(
                "queue {queue} does not exist (check queueUrl and that the queue is in the region its URL names)"
            )),
            Some(
                "AccessDenied" | "AccessDeniedException" | "AWS.SimpleQueueService.AccessDenied",
            ) => Some(format!(
                "access denied to {queue}: the function's IAM role needs sqs:ReceiveMessage, \
                     sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on it"
            )),
            _ => None,
        };
        let detail = match (&code, err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            _ => error_chain(&err),
        };
        let hint = hint.or_else(|| {
            detail.contains("no credentials found").then(|| {
                format!(
                    "no AWS credentials found to call {queue} with: give the function an IAM role \
                     (spec.iam.roleArn, IRSA) or, locally, set AWS_PROFILE or AWS_ACCESS_KEY_ID"
                )
            })
        });
        let message = match hint {
            Some(hint) => format!("{operation}: {hint} ({detail})"),
            None => format!("{operation} on {queue} failed: {detail}"),
        };
        SourceError { code, message }
    }
}

/// The messages of `err` and its sources, each once, on one line: the SDK's own rendering
/// repeats every level in Debug form, unreadable in a status.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string().replace('\n', "; ");
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// One entry of a batch call that SQS refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryFailure {
    /// Index into the handles given to the call.
    pub index: usize,
    pub code: String,
    pub message: String,
    /// The request was wrong (an expired receipt handle): retrying cannot help.
    pub sender_fault: bool,
}

/// A queue's client and URL.
#[derive(Clone)]
pub struct Queue {
    pub(crate) client: Client,
    pub(crate) url: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("url", &self.url).finish()
    }
}

impl Queue {
    /// The queue's default visibility timeout (also proves the queue exists and is readable).
    pub async fn visibility_timeout(&self) -> Result<Duration, SourceError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| SourceError::of("GetQueueAttributes", &self.url, e))?;
        let seconds = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        Ok(Duration::from_secs(seconds))
    }

    /// How many messages the queue holds, by SQS's approximate counts: (visible, in flight).
    /// Reading them takes nothing from the queue, unlike a receive.
    pub async fn depth(&self) -> Result<(u64, u64), SourceError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| SourceError::of("GetQueueAttributes", &self.url, e))?;
        let count = |name: &QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((
            count(&QueueAttributeName::ApproximateNumberOfMessages),
            count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// Sends one message (`body` is at most SQS's message size; the caller checks).
    pub async fn send(&self, body: String) -> Result<String, SourceError> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| SourceError::of("SendMessage", &self.url, e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    /// The queue's dead-letter queue (its `RedrivePolicy`'s target), if it has one.
    pub async fn dead_letter_queue(&self) -> Result<Option<Queue>, SourceError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| SourceError::of("GetQueueAttributes", &self.url, e))?;
        let Some(policy) = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        else {
            return Ok(None);
        };
        let target = serde_json::from_str::<serde_json::Value>(policy)
            .ok()
            .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
            .ok_or_else(|| SourceError {
                code: None,
                message: format!("{}: RedrivePolicy names no deadLetterTargetArn", self.url),
            })?;
        // arn:aws:sqs:<region>:<account>:<name>
        let parts: Vec<&str> = target.split(':').collect();
        let [_, _, "sqs", _, account, name] = parts.as_slice() else {
            return Err(SourceError {
                code: None,
                message: format!(
                    "{}: dead-letter target {target} is not an SQS queue ARN",
                    self.url
                ),
            });
        };
        let out = self
            .client
            .get_queue_url()
            .queue_name(*name)
            .queue_owner_aws_account_id(*account)
            .send()
            .await
            .map_err(|e| SourceError::of("GetQueueUrl", &target, e))?;
        Ok(out.queue_url().map(|url| Queue {
            client: self.client.clone(),
            url: url.to_owned(),
        }))
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Receives up to `max` (1-10) messages, waiting up to `wait` for the first, with all
    /// system and message attributes (the Lambda event needs them).
    pub async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, SourceError> {
        let max = max.clamp(1, MAX_PER_CALL) as i32;
        let wait = wait.min(LONG_POLL).as_secs() as i32;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| SourceError::of("ReceiveMessage", &self.url, e))?;
        Ok(out.messages().iter().map(translate).collect())
    }

    /// Up to `max` (1-10) messages as SQS samples them, left visible to every other reader
    /// (a visibility timeout of 0: nobody waits for them because of this read). Each read
    /// still counts in their `ApproximateReceiveCount`.
    pub async fn peek(&self, max: usize) -> Result<Vec<Message>, SourceError> {
        let max = max.clamp(1, MAX_PER_CALL) as i32;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| SourceError::of("ReceiveMessage", &self.url, e))?;
        Ok(out.messages().iter().map(translate).collect())
    }

    /// Deletes the messages of `handles` (any number; SQS takes 10 per call). Returns the
    /// entries SQS refused.
    pub async fn delete(&self, handles: &[&str]) -> Result<Vec<EntryFailure>, SourceError> {
        let mut failures = Vec::new();
        for (chunk_no, chunk) in handles.chunks(MAX_PER_CALL).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, handle)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*handle)
                        .build()
                        .ok()
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| SourceError::of("DeleteMessageBatch", &self.url, e))?;
            failures.extend(entry_failures(chunk_no, out.failed()));
        }
        Ok(failures)
    }

    /// Sets the visibility timeout of the messages of `handles` to `timeout` from now
    /// (0: visible to other consumers at once). Returns the entries SQS refused.
    pub async fn set_visibility(
        &self,
        handles: &[&str],
        timeout: Duration,
    ) -> Result<Vec<EntryFailure>, SourceError> {
        // SQS caps visibility at 12 hours.
        let seconds = timeout.as_secs().min(12 * 3600) as i32;
        let mut failures = Vec::new();
        for (chunk_no, chunk) in handles.chunks(MAX_PER_CALL).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, handle)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*handle)
                        .visibility_timeout(seconds)
                        .build()
                        .ok()
                })
                .collect();
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| SourceError::of("ChangeMessageVisibilityBatch", &self.url, e))?;
            failures.extend(entry_failures(chunk_no, out.failed()));
        }
        Ok(failures)
    }
}

/// The refused entries of the `chunk_no`th call of a batch operation, as indexes into the whole
/// list of handles (entry ids are the positions within the chunk).
fn entry_failures(
    chunk_no: usize,
    failed: &[aws_sdk_sqs::types::BatchResultErrorEntry],
) -> impl Iterator<Item = EntryFailure> + '_ {
    failed.iter().filter_map(move |f| {
        Some(EntryFailure {
            index: chunk_no * MAX_PER_CALL + f.id().parse::<usize>().ok()?,
            code: f.code().to_owned(),
            message: f.message().unwrap_or_default().to_owned(),
            sender_fault: f.sender_fault(),
        })
    })
}

/// An SDK message in the shape the Lambda event is built from.
fn translate(m: &aws_sdk_sqs::types::Message) -> Message {
    let b64 = |blob: &aws_sdk_sqs::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    let attributes: BTreeMap<String, String> = m
        .attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect();
    let message_attributes = m
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            (
                name.clone(),
                MessageAttribute {
                    string_value: value.string_value().map(str::to_owned),
                    binary_value: value.binary_value().map(b64),
                    string_list_values: value.string_list_values().to_vec(),
                    binary_list_values: value.binary_list_values().iter().map(b64).collect(),
                    data_type: value.data_type().to_owned(),
                },
            )
        })
        .collect();
    Message {
        message_id: m.message_id().unwrap_or_default().to_owned(),
        receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
        body: m.body().unwrap_or_default().to_owned(),
        attributes,
        message_attributes,
        md5_of_body: m.md5_of_body().unwrap_or_default().to_owned(),
        md5_of_message_attributes: m.md5_of_message_attributes().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::own_endpoint;

    #[test]
    fn only_non_aws_hosts_are_their_own_endpoint() {
        assert_eq!(
            own_endpoint("http://127.0.0.1:4566/123456789012/jobs").as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(
            own_endpoint("https://sqs.eu-west-3.amazonaws.com/123456789012/jobs"),
            None
        );
        assert_eq!(
            own_endpoint("https://vpce-1a2b.sqs.eu-west-3.vpce.amazonaws.com/123456789012/q"),
            None
        );
        assert_eq!(
            own_endpoint("https://SQS.cn-north-1.AMAZONAWS.com.cn/123456789012/q"),
            None
        );
    }
}
