//! A cluster run's whole log from where the controller archived it (`status.logLocation`,
//! `s3://bucket/prefix/namespace/run/`, an object per attempt), read with the user's own AWS
//! credentials: who may read the bucket is the bucket policy's decision, as for any S3 data.

use anyhow::Context as _;

/// The bucket and key prefix of an `s3://bucket/prefix/` location.
pub fn parse(location: &str) -> Option<(&str, &str)> {
    let rest = location.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/')?;
    (!bucket.is_empty()).then_some((bucket, prefix))
}

/// The attempt number of an object `…/attempt-N.log`, for ordering.
fn attempt_of(key: &str) -> u32 {
    key.rsplit('/')
        .next()
        .and_then(|name| name.strip_prefix("attempt-"))
        .and_then(|name| name.strip_suffix(".log"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Every attempt's log at `location`, in order, each after a `[faas] attempt N` line.
pub async fn read(location: &str) -> anyhow::Result<String> {
    let (bucket, prefix) = parse(location)
        .with_context(|| format!("{location} is not an s3://bucket/prefix/ location"))?;
    let config = faas_sqs::Clients::from_env()
        .sdk_config()
        .await
        .with_context(|| format!("reading {location}: no AWS credentials here"))?;
    // The controller's setting of the same name, for S3-compatible stores and test servers.
    let path_style = std::env::var("FAAS_RUN_LOG_PATH_STYLE").is_ok_and(|v| v == "true");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build(),
    );
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "listing {location}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort_by_key(|k| attempt_of(k));
    let mut out = String::new();
    for key in keys {
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "reading s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        let bytes = object
            .body
            .collect()
            .await
            .with_context(|| format!("reading s3://{bucket}/{key}"))?
            .into_bytes();
        out.push_str(&format!("[faas] attempt {}\n", attempt_of(&key)));
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_attempts_are_read_back() {
        assert_eq!(
            parse("s3://logs/run-logs/team/r.manual.1/"),
            Some(("logs", "run-logs/team/r.manual.1/"))
        );
        assert_eq!(parse("https://logs/x"), None);
        assert_eq!(parse("s3:///x"), None);
        assert_eq!(attempt_of("run-logs/team/r/attempt-12.log"), 12);
        assert_eq!(attempt_of("run-logs/team/r/other"), u32::MAX);
    }
}
