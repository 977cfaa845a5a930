//! Notifications of a schedule's runs (`notify`): when a run starts, starts late, succeeds or
//! fails, as the schedule asks, POSTed to its URL as the run's JSON summary, a Slack-style
//! `{"text"}`, or the schedule's own JSON template (`faas_api::notify`). Best effort: a
//! notification is retried with backoff (3 attempts) when the receiver cannot be reached or
//! answers 429 or 5xx, then logged and given up; it never changes the run. A URL is logged by
//! its origin only: webhook URLs carry their secret in the path or query.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use faas_api::{FunctionRun, NotifyFormat, NotifySpec, RunPhase, SecretRef};

/// Longest one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries of one notification, in all.
const ATTEMPTS: u32 = 3;
/// The wait before the second attempt; doubled before each next one.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Late,
    Success,
    Failure,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Late => "late",
            Event::Success => "success",
            Event::Failure => "failure",
        }
    }

    /// The event of a finished run in `phase`.
    pub fn of_end(phase: RunPhase) -> Event {
        if phase == RunPhase::Succeeded {
            Event::Success
        } else {
            Event::Failure
        }
    }
}

/// Whether `notify` asks for `event`.
pub fn wants(notify: &NotifySpec, event: Event) -> bool {
    match event {
        Event::Start => notify.on_start,
        Event::Late => notify.on_late.is_some(),
        Event::Success => notify.on_success,
        Event::Failure => notify.on_failure,
    }
}

/// The run's values a body may show.
fn values(run: &FunctionRun, event: Event) -> BTreeMap<&'static str, String> {
    let status = run.status.clone().unwrap_or_default();
    let text = |v: Option<String>| v.unwrap_or_default();
    let output = status
        .output
        .as_deref()
        .map(|o| o.chars().take(1024).collect::<String>());
    BTreeMap::from([
        ("event", event.as_str().to_owned()),
        ("runId", text(run.metadata.name.clone())),
        ("function", run.spec.function.clone()),
        ("schedule", run.spec.schedule.clone()),
        ("trigger", run.spec.trigger.clone()),
        ("phase", status.phase.as_str().to_owned()),
        ("attempt", run.spec.attempt.to_string()),
        ("scheduledTime", text(run.spec.scheduled_time.clone())),
        ("startTime", text(status.start_time.clone())),
        ("endTime", text(status.end_time.clone())),
        ("exitCode", text(status.exit_code.map(|c| c.to_string()))),
        (
            "httpStatus",
            text(status.http_status.map(|c| c.to_string())),
        ),
        ("message", text(status.message.clone())),
        ("output", text(output)),
        ("text", headline(run, event)),
    ])
}

/// One line that says it all, for chat.
fn headline(run: &FunctionRun, event: Event) -> String {
    let status = run.status.clone().unwrap_or_default();
    let id = run.metadata.name.as_deref().unwrap_or_default();
    let what = match event {
        Event::Start => "started".to_owned(),
        Event::Late => format!(
            "started late (due {})",
            run.spec.scheduled_time.as_deref().unwrap_or("-")
        ),
        Event::Success | Event::Failure => status.phase.as_str().to_owned(),
    };
    format!(
        "{} run {id} of {}/{}: {what}{}",
        run.spec.trigger,
        run.spec.function,
        run.spec.schedule,
        status
            .message
            .as_deref()
            .filter(|_| matches!(event, Event::Success | Event::Failure))
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    )
}

/// The JSON summary of a run (the default body).
pub fn summary(run: &FunctionRun, event: Event) -> serde_json::Value {
    let status = run.status.clone().unwrap_or_default();
    let output = status
        .output
        .as_deref()
        .map(|o| o.chars().take(1024).collect::<String>());
    serde_json::json!({
        "event": event.as_str(),
        "runId": run.metadata.name,
        "function": run.spec.function,
        "schedule": run.spec.schedule,
        "trigger": run.spec.trigger,
        "scheduledTime": run.spec.scheduled_time,
        "attempt": run.spec.attempt,
        "phase": status.phase,
        "startTime": status.start_time,
        "endTime": status.end_time,
        "httpStatus": status.http_status,
        "exitCode": status.exit_code,
        "message": status.message,
        "output": output,
        "options": run.spec.options,
        "text": headline(run, event),
    })
}

/// The body `notify` sends for `event` of `run`.
pub fn body(notify: &NotifySpec, run: &FunctionRun, event: Event) -> String {
    if let Some(template) = &notify.body {
        return faas_api::notify::render(template, &values(run, event));
    }
    match notify.format.unwrap_or_default() {
        NotifyFormat::Json => summary(run, event).to_string(),
        NotifyFormat::Slack => serde_json::json!({ "text": headline(run, event) }).to_string(),
    }
}

/// Where a URL points, for logs: its origin only.
pub fn origin(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("?"),
            uri.authority().map_or("?", |a| a.as_str())
        ),
        Err(_) => "(an invalid URL)".to_owned(),
    }
}

/// Reads a secret for the scheduler (a notify URL from `urlFrom`): the host's, which knows
/// where secrets are (`faas up --secrets`, AWS; a cluster's Secrets of the namespace).
pub trait SecretReader: Send + Sync {
    /// The value of `source`, or why it cannot be read (naming the source, never a value).
    fn read<'a>(
        &'a self,
        source: &'a SecretRef,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

/// The URL `notify` POSTs to: its `url`, or the value of its `urlFrom` read now (a secret
/// can change between runs), checked as a manifest's `url` is. The error says why no
/// notification can be sent, naming the source and never its value.
pub async fn url_of(
    notify: &NotifySpec,
    secrets: Option<&dyn SecretReader>,
) -> Result<String, String> {
    let Some(from) = &notify.url_from else {
        return Ok(notify.url.clone());
    };
    let source = from
        .source()
        .map_err(|why| format!("notify.urlFrom {why}"))?;
    let reader = secrets.ok_or_else(|| format!("{source}: this scheduler reads no secrets"))?;
    let url = reader.read(&source).await?;
    let url = url.trim().to_owned();
    if faas_api::validate::check_http_url(&url).is_err() {
        return Err(format!("{source} does not hold an http(s) URL"));
    }
    Ok(url)
}

/// Sends `event` of `run` as `notify` says, with retries; logs how it went. `secrets` reads
/// a URL from a secret (`urlFrom`).
pub async fn send(
    notify: NotifySpec,
    run: FunctionRun,
    event: Event,
    secrets: Option<std::sync::Arc<dyn SecretReader>>,
) {
    let id = run.metadata.name.clone().unwrap_or_default();
    let url = match url_of(&notify, secrets.as_deref()).await {
        Ok(url) => url,
        Err(why) => {
            tracing::warn!(run = %id, event = event.as_str(), reason = %why, "run notification not sent");
            return;
        }
    };
    let to = origin(&url);
    let payload = Bytes::from(body(&notify, &run, event));
    let mut wait = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let outcome = tokio::time::timeout(TIMEOUT, deliver(&url, payload.clone())).await;
        let retry = match &outcome {
            Ok(Ok(status)) if (200..300).contains(status) => {
                tracing::info!(run = %id, to = %to, event = event.as_str(), status, "run notification sent");
                return;
            }
            Ok(Ok(status)) => *status == 429 || *status >= 500,
            Ok(Err(_)) | Err(_) => true,
        };
        let why = match outcome {
            Ok(Ok(status)) => format!("answered HTTP {status}"),
            Ok(Err(reason)) => reason.to_string(),
            Err(_) => format!("no answer within {}", super::plan::humanize(TIMEOUT)),
        };
        if !retry || attempt == ATTEMPTS {
            tracing::warn!(run = %id, to = %to, event = event.as_str(), attempt, reason = %why, "run notification given up");
            return;
        }
        tracing::info!(run = %id, to = %to, event = event.as_str(), attempt, reason = %why, "run notification failed; retrying");
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

/// POSTs `body` to `url`; the status the receiver answered, or why it was not sent. The
/// metadata-address rule of guests' outbound requests applies.
pub async fn deliver(url: &str, body: Bytes) -> Result<u16, faas_outbound::PostError> {
    faas_outbound::post(
        url,
        vec![(http::header::CONTENT_TYPE, "application/json".parse().ok())],
        body,
        "faas-scheduler",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{FunctionRunSpec, FunctionRunStatus};

    fn run(phase: RunPhase) -> FunctionRun {
        let mut run = FunctionRun::new(
            "report.nightly.20261207t030000z",
            FunctionRunSpec {
                function: "report".into(),
                schedule: "nightly".into(),
                trigger: "cron".into(),
                scheduled_time: Some("2026-12-07T03:00:00Z".into()),
                attempt: 2,
                options: Default::default(),
                ..Default::default()
            },
        );
        run.status = Some(FunctionRunStatus {
            phase,
            exit_code: Some(3),
            message: Some("the job exited with code 3".into()),
            ..Default::default()
        });
        run
    }

    #[test]
    fn which_events_a_notify_wants() {
        let default = NotifySpec::default();
        assert!(wants(&default, Event::Failure) && !wants(&default, Event::Success));
        assert!(!wants(&default, Event::Start) && !wants(&default, Event::Late));
        let all = NotifySpec {
            on_success: true,
            on_start: true,
            on_late: Some("5m".into()),
            on_failure: false,
            ..Default::default()
        };
        assert!(
            wants(&all, Event::Start) && wants(&all, Event::Late) && wants(&all, Event::Success)
        );
        assert!(!wants(&all, Event::Failure));
        assert_eq!(Event::of_end(RunPhase::TimedOut), Event::Failure);
    }

    #[test]
    fn bodies_in_each_format() {
        let failed = run(RunPhase::Failed);
        let json: serde_json::Value =
            serde_json::from_str(&body(&NotifySpec::default(), &failed, Event::Failure))
                .expect("JSON");
        assert_eq!(json["event"], "failure");
        assert_eq!(json["exitCode"], 3);
        assert_eq!(json["phase"], "Failed");
        let slack = NotifySpec {
            format: Some(NotifyFormat::Slack),
            ..Default::default()
        };
        let json: serde_json::Value =
            serde_json::from_str(&body(&slack, &failed, Event::Failure)).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({"text": "cron run report.nightly.20261207t030000z of report/nightly: Failed (the job exited with code 3)"})
        );
        let custom = NotifySpec {
            body: Some(r#"{"title": "{{function}} {{event}}", "code": "{{exitCode}}", "why": "{{message}}"}"#.into()),
            ..Default::default()
        };
        let json: serde_json::Value =
            serde_json::from_str(&body(&custom, &failed, Event::Late)).expect("JSON");
        assert_eq!(json["title"], "report late");
        assert_eq!(json["code"], "3");
        assert_eq!(json["why"], "the job exited with code 3");
    }

    /// Secrets as a host would read them: a map of Secret keys.
    struct Secrets(BTreeMap<String, String>);

    impl SecretReader for Secrets {
        fn read<'a>(
            &'a self,
            source: &'a SecretRef,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
            let found = match source {
                SecretRef::Kubernetes(r) => self.0.get(&format!("{}/{}", r.name, r.key)).cloned(),
                _ => None,
            };
            Box::pin(async move { found.ok_or_else(|| format!("{source}: not found")) })
        }
    }

    fn from_secret(name: &str, key: &str) -> NotifySpec {
        NotifySpec {
            url_from: Some(faas_api::EnvSource {
                secret_key_ref: Some(faas_api::SecretKeyRef {
                    name: name.into(),
                    key: key.into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_url_from_a_secret_is_read_when_sent_and_never_shown() {
        let secrets = Secrets(BTreeMap::from([
            (
                "hooks/slack".to_owned(),
                "https://hooks.example.com/T0/s3cret\n".to_owned(),
            ),
            ("hooks/junk".to_owned(), "s3cret-not-a-url".to_owned()),
        ]));
        let plain = NotifySpec {
            url: "https://example.com/hook".into(),
            ..Default::default()
        };
        assert_eq!(
            url_of(&plain, None).await.as_deref(),
            Ok("https://example.com/hook")
        );
        assert_eq!(
            url_of(&from_secret("hooks", "slack"), Some(&secrets))
                .await
                .as_deref(),
            Ok("https://hooks.example.com/T0/s3cret"),
            "read, trimmed"
        );
        let junk = url_of(&from_secret("hooks", "junk"), Some(&secrets))
            .await
            .expect_err("not a URL");
        assert_eq!(junk, "Secret hooks key junk does not hold an http(s) URL");
        let missing = url_of(&from_secret("hooks", "gone"), Some(&secrets))
            .await
            .expect_err("missing");
        assert_eq!(missing, "Secret hooks key gone: not found");
        let unread = url_of(&from_secret("hooks", "slack"), None)
            .await
            .expect_err("no reader");
        assert!(
            unread.contains("reads no secrets") && !unread.contains("s3cret"),
            "{unread}"
        );
    }

    #[test]
    fn urls_are_logged_by_their_origin_only() {
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/s3cret?token=x"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            origin("http://127.0.0.1:9000/hook?k=v"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(origin("::not a url"), "(an invalid URL)");
    }
}
