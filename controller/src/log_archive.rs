//! Whole run logs of a cluster's job runs, kept in S3 (the chart's `controller.runLogs`):
//! when a run's Job has ended, its pod's whole log (at most [`MAX_LOG_BYTES`]) is put under
//! `{prefix}{namespace}/{run}/attempt-{n}.log` with the controller's own role, the run
//! records `s3://bucket/{prefix}{namespace}/{run}/` as its `status.logLocation`, and pruning
//! the run's record deletes its objects. A Job's pod and its log go with the Job (an hour
//! after it ends); the archive is what stays.

use aws_sdk_s3::primitives::ByteStream;

/// Largest log kept per attempt, as local mode keeps per run.
pub const MAX_LOG_BYTES: i64 = 16 * 1024 * 1024;

/// Where run logs go.
#[derive(Clone, Debug)]
pub struct LogArchive {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl LogArchive {
    /// The bucket `bucket` under `prefix` (`run-logs/`; a trailing `/` is added when missing).
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Self {
        let mut prefix = prefix.trim_start_matches('/').to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        LogArchive {
            client,
            bucket: bucket.to_owned(),
            prefix,
        }
    }

    fn run_prefix(&self, namespace: &str, run: &str) -> String {
        format!("{}{namespace}/{run}/", self.prefix)
    }

    /// Where a run's logs are: `s3://bucket/prefix/namespace/run/`.
    pub fn location(&self, namespace: &str, run: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.run_prefix(namespace, run))
    }

    /// Puts one attempt's log.
    pub async fn put(
        &self,
        namespace: &str,
        run: &str,
        attempt: u32,
        log: String,
    ) -> Result<(), String> {
        let key = format!("{}attempt-{attempt}.log", self.run_prefix(namespace, run));
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("text/plain; charset=utf-8")
            .body(ByteStream::from(log.into_bytes()))
            .send()
            .await
            .map_err(|e| format!("putting s3://{}/{key}: {}", self.bucket, describe(&e)))?;
        Ok(())
    }

    /// Deletes every object of the runs `runs` (their records were pruned).
    pub async fn delete_runs(&self, namespace: &str, runs: &[String]) -> Result<(), String> {
        for run in runs {
            let prefix = self.run_prefix(namespace, run);
            let listed = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .send()
                .await
                .map_err(|e| format!("listing s3://{}/{prefix}: {}", self.bucket, describe(&e)))?;
            for object in listed.contents() {
                let Some(key) = object.key() else { continue };
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| {
                        format!("deleting s3://{}/{key}: {}", self.bucket, describe(&e))
                    })?;
            }
        }
        Ok(())
    }
}

/// An SDK error as one line: the service's code and message when it answered.
fn describe<E: std::fmt::Display + aws_sdk_s3::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_s3::error::SdkError<E, R>,
) -> String {
    match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or_default()
        ),
        None => e.to_string(),
    }
}
