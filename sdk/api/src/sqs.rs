//! SQS queue URLs: what a trigger's `queueUrl` says (account, name, FIFO, region) and the
//! queue ARN Lambda puts in `eventSourceARN`.

/// A parsed SQS queue URL: `https://sqs.<region>.amazonaws.com/<account>/<queue>`, or an
/// endpoint of another host (a VPC endpoint, a local SQS-protocol server) with the same path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrl {
    /// 12-digit account id.
    pub account: String,
    /// Queue name, `.fifo` suffix included.
    pub name: String,
    /// Whether it is a FIFO queue (its name ends in `.fifo`).
    pub fifo: bool,
    /// The region named by the host (`sqs.<region>.amazonaws.com[.cn]`), if it names one.
    pub region: Option<String>,
}

/// Why a queue URL does not parse: the shape expected, the URL, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueUrlError {
    #[error(
        "expected an SQS queue URL like https://sqs.<region>.amazonaws.com/<account>/<queue>, \
         got {0:?}"
    )]
    Shape(String),
    #[error(
        "expected an SQS queue URL like https://sqs.<region>.amazonaws.com/<account>/<queue>, \
         got {url:?}: the account id must be 12 digits, got {account:?}"
    )]
    Account { url: String, account: String },
    #[error(
        "expected an SQS queue URL like https://sqs.<region>.amazonaws.com/<account>/<queue>, \
         got {url:?}: queue names are 1-80 letters, digits, '-' and '_' (FIFO queues end in \
         .fifo), got {name:?}"
    )]
    Name { url: String, name: String },
}

impl QueueUrl {
    /// Parses `url`; the error says what shape was expected and what is wrong.
    pub fn parse(url: &str) -> Result<QueueUrl, QueueUrlError> {
        let shape = || QueueUrlError::Shape(url.to_owned());
        let (authority, path) = crate::validate::split_http_url(url).map_err(|_| shape())?;
        if path.contains(['?', '#']) {
            return Err(shape());
        }
        let path = path.strip_suffix('/').unwrap_or(path);
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        let [account, name] = segs.as_slice() else {
            return Err(shape());
        };
        if !(account.len() == 12 && account.bytes().all(|c| c.is_ascii_digit())) {
            return Err(QueueUrlError::Account {
                url: url.to_owned(),
                account: (*account).to_owned(),
            });
        }
        let fifo = name.ends_with(".fifo");
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        if name.is_empty()
            || name.len() > 80
            || !base
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            || base.is_empty()
        {
            return Err(QueueUrlError::Name {
                url: url.to_owned(),
                name: (*name).to_owned(),
            });
        }
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        let region = host
            .strip_prefix("sqs.")
            .and_then(|rest| {
                rest.strip_suffix(".amazonaws.com")
                    .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
            })
            .filter(|r| !r.is_empty() && !r.contains('.'))
            .map(str::to_owned);
        Ok(QueueUrl {
            account: (*account).to_owned(),
            name: (*name).to_owned(),
            fifo,
            region,
        })
    }

    /// The queue's ARN, as Lambda reports it in `eventSourceARN`. The region comes from the
    /// URL's host, else `default_region` (the `AWS_REGION` of the poller).
    pub fn arn(&self, default_region: &str) -> String {
        let region = self.region.as_deref().unwrap_or(default_region);
        format!(
            "arn:{}:sqs:{region}:{}:{}",
            partition(region),
            self.account,
            self.name
        )
    }
}

/// The AWS partition a region belongs to.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_account_name_region_and_arn() {
        let q = QueueUrl::parse("https://sqs.eu-west-3.amazonaws.com/123456789012/images")
            .expect("valid");
        assert_eq!(q.region.as_deref(), Some("eu-west-3"));
        assert!(!q.fifo);
        assert_eq!(
            q.arn("us-east-1"),
            "arn:aws:sqs:eu-west-3:123456789012:images"
        );

        let q = QueueUrl::parse("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/jobs.fifo")
            .expect("valid");
        assert!(q.fifo);
        assert_eq!(
            q.arn("x"),
            "arn:aws-cn:sqs:cn-north-1:123456789012:jobs.fifo"
        );

        // A local SQS-protocol server: the region comes from the poller's configuration.
        let q = QueueUrl::parse("http://127.0.0.1:5000/123456789012/q").expect("valid");
        assert_eq!(q.region, None);
        assert_eq!(
            q.arn("us-gov-west-1"),
            "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q"
        );
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        for (url, part) in [
            ("sqs://x/123456789012/q", "expected an SQS queue URL"),
            (
                "https://sqs.eu-west-3.amazonaws.com/images",
                "expected an SQS queue URL",
            ),
            (
                "https://sqs.eu-west-3.amazonaws.com/123/images",
                "12 digits",
            ),
            (
                "https://sqs.eu-west-3.amazonaws.com/123456789012/im ages",
                "whitespace",
            ),
            (
                "https://sqs.eu-west-3.amazonaws.com/123456789012/.fifo",
                "queue names are",
            ),
        ] {
            let err = QueueUrl::parse(url).expect_err(url).to_string();
            assert!(
                err.contains(part) || err.contains("expected"),
                "{url}: {err}"
            );
        }
    }
}
