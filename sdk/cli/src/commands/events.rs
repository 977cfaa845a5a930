//! `faas events sqs|schedule|alb|apigw`: sample events to call handlers with, as `sam local
//! generate-event` prints them, in the shapes AWS sends (the SQS one from the same code the
//! platform's SQS trigger uses). `faas events sqs --body x | faas invoke NAME -d @-` works
//! because `faas invoke` recognises these shapes ([`delivery`]) and delivers each as the
//! platform would: an SQS event as its SQS trigger does, a scheduled event as a cron run,
//! and an HTTP event (ALB, API Gateway) as the HTTP request it describes.

use std::collections::BTreeMap;

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use md5::Digest as _;
use serde_json::{Value, json};

use crate::stdout::outln;

const ACCOUNT: &str = "123456789012";

#[derive(clap::Subcommand)]
pub enum Event {
    /// An SQS batch of one message, as Lambda's SQS trigger (and the platform's) sends it.
    Sqs {
        /// The message body.
        #[arg(long, default_value = "Hello from SQS!")]
        body: String,
        /// The queue it came from (its URL names the region, account and FIFO-ness).
        #[arg(
            long,
            default_value = "https://sqs.us-east-1.amazonaws.com/123456789012/my-queue"
        )]
        queue_url: String,
        /// FIFO queues: the message group.
        #[arg(long, default_value = "default")]
        group: String,
    },
    /// An EventBridge scheduled event, as a cron run (or `faas run`) sends a Lambda handler.
    Schedule {
        /// The schedule (rule) name.
        #[arg(long, default_value = "nightly")]
        schedule: String,
        /// The schedule's payload, as `detail` (JSON, or text).
        #[arg(long, default_value = "{}")]
        detail: String,
        /// The scheduled time (RFC 3339; default now).
        #[arg(long)]
        time: Option<String>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
    /// An Application Load Balancer target event: an HTTP request, as the platform gives
    /// one to a Lambda handler.
    Alb {
        #[command(flatten)]
        request: HttpRequest,
    },
    /// An API Gateway HTTP API (payload 2.0) event. The platform itself gives handlers ALB
    /// events: `faas invoke` sends this one as the request it describes.
    Apigw {
        #[command(flatten)]
        request: HttpRequest,
    },
}

/// The HTTP request an ALB or API Gateway event describes.
#[derive(clap::Args)]
pub struct HttpRequest {
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,
    /// Path, with a query string if any.
    #[arg(long, default_value = "/")]
    path: String,
    /// Request header K:V (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Request body (text).
    #[arg(long, default_value = "")]
    body: String,
}

/// Prints the event: the SQS one on one line, byte for byte as the platform's trigger sends
/// it (in Lambda's key order), the others indented.
pub fn print(event: Event) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    if let Event::Sqs {
        body,
        queue_url,
        group,
    } = &event
    {
        let sent = sqs_event(body, queue_url, group, now)?;
        return outln!("{}", String::from_utf8_lossy(&sent));
    }
    outln!("{}", serde_json::to_string_pretty(&sample(event, now)?)?)
}

/// The event, its times and ids taken from `now`.
pub fn sample(event: Event, now: jiff::Timestamp) -> anyhow::Result<Value> {
    Ok(match event {
        Event::Sqs {
            body,
            queue_url,
            group,
        } => sqs(&body, &queue_url, &group, now)?,
        Event::Schedule {
            schedule,
            detail,
            time,
            region,
        } => {
            let time = match time {
                Some(t) => t
                    .parse::<jiff::Timestamp>()
                    .with_context(|| format!("--time {t:?}: expected an RFC 3339 time"))?,
                None => now,
            };
            let detail = serde_json::from_str(&detail).unwrap_or(Value::String(detail));
            json!({
                "version": "0",
                "id": id_from(&[schedule.as_bytes(), time.to_string().as_bytes()]),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": time.round(jiff::Unit::Second).unwrap_or(time).to_string(),
                "region": region,
                "resources": [format!(
                    "arn:{}:events:{region}:{ACCOUNT}:rule/{schedule}",
                    faas_api::sqs::partition(&region)
                )],
                "detail": detail,
            })
        }
        Event::Alb { request } => {
            let (path, query) = request.split()?;
            json!({
                "requestContext": {"elb": {"targetGroupArn": format!(
                    "arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/my-target-group/0000000000000000"
                )}},
                "httpMethod": request.method.to_ascii_uppercase(),
                "path": path,
                "queryStringParameters": query,
                "headers": request.header_map()?,
                "body": request.body,
                "isBase64Encoded": false,
            })
        }
        Event::Apigw { request } => {
            let (path, query) = request.split()?;
            let raw_query = request.path.split_once('?').map_or("", |(_, q)| q);
            let method = request.method.to_ascii_uppercase();
            json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": path,
                "rawQueryString": raw_query,
                "headers": request.header_map()?,
                "queryStringParameters": query,
                "requestContext": {
                    "accountId": ACCOUNT,
                    "apiId": "api-id",
                    "domainName": "api-id.execute-api.us-east-1.amazonaws.com",
                    "domainPrefix": "api-id",
                    "http": {
                        "method": method,
                        "path": path,
                        "protocol": "HTTP/1.1",
                        "sourceIp": "192.0.2.1",
                        "userAgent": "faas-cli",
                    },
                    "requestId": id_from(&[path.as_bytes(), now.to_string().as_bytes()]),
                    "routeKey": "$default",
                    "stage": "$default",
                    "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string(),
                    "timeEpoch": now.as_millisecond(),
                },
                "body": request.body,
                "isBase64Encoded": false,
            })
        }
    })
}

fn sqs(body: &str, queue_url: &str, group: &str, now: jiff::Timestamp) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&sqs_event(
        body, queue_url, group, now,
    )?)?)
}

/// The SQS event as the platform's trigger sends it.
fn sqs_event(
    body: &str,
    queue_url: &str,
    group: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<Vec<u8>> {
    let queue = faas_api::sqs::QueueUrl::parse(queue_url).context("--queue-url")?;
    let region = queue
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_owned());
    let sent = now.as_millisecond().to_string();
    let mut attributes: BTreeMap<String, String> = [
        ("ApproximateReceiveCount", "1"),
        ("SentTimestamp", sent.as_str()),
        ("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
        ("ApproximateFirstReceiveTimestamp", sent.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let id = id_from(&[body.as_bytes(), sent.as_bytes()]);
    if queue.fifo {
        attributes.insert("MessageGroupId".into(), group.to_owned());
        attributes.insert("MessageDeduplicationId".into(), hex::encode(md5(body)));
        attributes.insert("SequenceNumber".into(), format!("{sent}000000"));
    }
    let message = faas_sqs::event::Message {
        message_id: id.clone(),
        receipt_handle: base64::engine::general_purpose::STANDARD.encode(format!("{id}#{sent}")),
        body: body.to_owned(),
        attributes,
        md5_of_body: hex::encode(md5(body)),
        ..Default::default()
    };
    let source = faas_sqs::event::Source {
        arn: queue.arn(&region),
        region,
    };
    Ok(faas_sqs::event::lambda_event(&source, &[message]))
}

fn md5(text: &str) -> [u8; 16] {
    md5::Md5::digest(text.as_bytes()).into()
}

/// A UUID-shaped id (as AWS ids are) derived from `parts`: distinct samples get distinct
/// ids, and the same sample the same one.
fn id_from(parts: &[&[u8]]) -> String {
    let mut hash = md5::Md5::new();
    for part in parts {
        hash.update(part);
    }
    let h = hex::encode(hash.finalize());
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl HttpRequest {
    /// The path without its query, and the query as a map.
    fn split(&self) -> anyhow::Result<(String, serde_json::Map<String, Value>)> {
        if !self.path.starts_with('/') {
            anyhow::bail!("--path {:?}: expected a path starting with /", self.path);
        }
        let (path, query) = self.path.split_once('?').unwrap_or((&self.path, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k.to_owned(), Value::String(v.to_owned()))
            })
            .collect();
        Ok((path.to_owned(), query))
    }

    /// Headers as the events carry them: names lower-case, the last of a repeated name.
    fn header_map(&self) -> anyhow::Result<serde_json::Map<String, Value>> {
        let mut map = serde_json::Map::new();
        for header in &self.headers {
            let (k, v) = header
                .split_once(':')
                .with_context(|| format!("-H {header:?}: expected NAME:VALUE"))?;
            map.insert(
                k.trim().to_ascii_lowercase(),
                Value::String(v.trim().to_owned()),
            );
        }
        Ok(map)
    }
}

/// How `faas invoke` sends a body that is one of these events, as the platform would deliver
/// it: an HTTP request (method, path with query, headers, body) and what it is.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery {
    /// What the body was recognised as, for the line `faas invoke` says.
    pub what: &'static str,
    pub method: http::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// The delivery of `body` when it is an SQS, scheduled, ALB or API Gateway (2.0) event.
pub fn delivery(body: &[u8]) -> Option<Delivery> {
    let event: Value = serde_json::from_slice(body).ok()?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    if event["Records"][0]["eventSource"] == "aws:sqs" {
        return Some(Delivery {
            what: "an SQS event: delivered as the platform's SQS trigger delivers a batch",
            method: http::Method::POST,
            path: String::new(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                (
                    faas_api::contract::TRIGGER_HEADER.into(),
                    faas_api::contract::TRIGGER_SQS.into(),
                ),
            ],
            body: Bytes::copy_from_slice(body),
        });
    }
    if event["source"] == "aws.events" && event["detail-type"] == "Scheduled Event" {
        let schedule = event["resources"][0]
            .as_str()
            .and_then(|arn| arn.rsplit_once("rule/"))
            .map_or("manual", |(_, rule)| rule);
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                faas_api::contract::TRIGGER_HEADER.to_owned(),
                faas_api::contract::TRIGGER_CRON.to_owned(),
            ),
            (
                faas_api::contract::SCHEDULE_HEADER.to_owned(),
                schedule.to_owned(),
            ),
        ];
        for (header, field) in [
            (faas_api::contract::RUN_ID_HEADER, "id"),
            (faas_api::contract::SCHEDULED_TIME_HEADER, "time"),
        ] {
            if let Some(value) = text(&event[field]) {
                headers.push((header.to_owned(), value));
            }
        }
        return Some(Delivery {
            what: "a scheduled event: delivered as a cron run of its schedule (its detail the payload)",
            method: http::Method::POST,
            path: String::new(),
            headers,
            body: Bytes::from(event["detail"].to_string()),
        });
    }
    let (what, method, path, query) = if event["requestContext"]["elb"].is_object() {
        let query = event["queryStringParameters"]
            .as_object()
            .map(|q| {
                q.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .unwrap_or_default();
        (
            "an ALB event: sent as the HTTP request it describes",
            text(&event["httpMethod"])?,
            text(&event["path"])?,
            query,
        )
    } else if event["version"] == "2.0" && event["requestContext"]["http"].is_object() {
        (
            "an API Gateway event: sent as the HTTP request it describes (a Lambda handler receives it as the platform's ALB event)",
            text(&event["requestContext"]["http"]["method"])?,
            text(&event["rawPath"])?,
            text(&event["rawQueryString"]).unwrap_or_default(),
        )
    } else {
        return None;
    };
    let body = text(&event["body"]).unwrap_or_default();
    let body = if event["isBase64Encoded"] == true {
        Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(&body)
                .ok()?,
        )
    } else {
        Bytes::from(body)
    };
    let headers = event["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Some(Delivery {
        what,
        method: http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok()?,
        path: if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        },
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-12-05T10:00:00Z".parse().unwrap()
    }

    fn http(method: &str, path: &str) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path: path.into(),
            headers: vec!["Content-Type: text/plain".into()],
            body: "hi".into(),
        }
    }

    #[test]
    fn the_sqs_event_is_lambdas() {
        let event = sample(
            Event::Sqs {
                body: "Test message.".into(),
                queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/jobs".into(),
                group: "g".into(),
            },
            now(),
        )
        .unwrap();
        let record = &event["Records"][0];
        assert_eq!(record["body"], "Test message.");
        // As SQS computes it (the same value Lambda's own sample event carries).
        assert_eq!(record["md5OfBody"], "e4e68fb7bd0e697a0ae8f1bb342846b3");
        assert_eq!(
            record["eventSourceARN"],
            "arn:aws:sqs:eu-west-3:123456789012:jobs"
        );
        assert_eq!(record["awsRegion"], "eu-west-3");
        assert_eq!(
            record["attributes"]["SentTimestamp"],
            now().as_millisecond().to_string()
        );
        assert_eq!(record["messageId"].as_str().unwrap().len(), 36);
        let delivered = delivery(event.to_string().as_bytes()).unwrap();
        assert!(
            delivered
                .headers
                .contains(&("x-faas-trigger".into(), "sqs".into()))
        );
        assert_eq!(delivered.method, http::Method::POST);
        // FIFO queues carry their group.
        let fifo = sample(
            Event::Sqs {
                body: "x".into(),
                queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo".into(),
                group: "g".into(),
            },
            now(),
        )
        .unwrap();
        assert_eq!(fifo["Records"][0]["attributes"]["MessageGroupId"], "g");
    }

    #[test]
    fn a_scheduled_event_is_delivered_as_a_cron_run() {
        let event = sample(
            Event::Schedule {
                schedule: "nightly".into(),
                detail: r#"{"full": true}"#.into(),
                time: Some("2026-12-05T03:00:00Z".into()),
                region: "us-east-1".into(),
            },
            now(),
        )
        .unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(
            event["resources"][0],
            "arn:aws:events:us-east-1:123456789012:rule/nightly"
        );
        let delivered = delivery(event.to_string().as_bytes()).unwrap();
        assert_eq!(delivered.body, Bytes::from(r#"{"full":true}"#));
        for header in [
            ("x-faas-trigger", "cron"),
            ("x-faas-schedule", "nightly"),
            ("x-faas-scheduled-time", "2026-12-05T03:00:00Z"),
        ] {
            assert!(
                delivered
                    .headers
                    .contains(&(header.0.into(), header.1.into())),
                "{header:?}: {delivered:?}"
            );
        }
    }

    #[test]
    fn http_events_are_sent_as_their_requests() {
        for event in [
            Event::Alb {
                request: http("post", "/orders?id=7"),
            },
            Event::Apigw {
                request: http("post", "/orders?id=7"),
            },
        ] {
            let value = sample(event, now()).unwrap();
            let delivered = delivery(value.to_string().as_bytes()).unwrap();
            assert_eq!(delivered.method, http::Method::POST, "{value}");
            assert_eq!(delivered.path, "/orders?id=7");
            assert_eq!(delivered.body, Bytes::from("hi"));
            assert!(
                delivered
                    .headers
                    .contains(&("content-type".into(), "text/plain".into()))
            );
        }
        let err = sample(
            Event::Alb {
                request: http("GET", "orders"),
            },
            now(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--path"), "{err}");
    }

    #[test]
    fn other_bodies_are_not_events() {
        for body in [&b"hello"[..], b"{}", br#"{"Records": []}"#, b"[1]"] {
            assert_eq!(delivery(body), None);
        }
    }
}
