//! Notifications: a JSON summary of a finished run POSTed to the schedule's `notify.url`.
//! Best effort: a failed notification is logged and never changes the run.

use std::time::Duration;

use bytes::Bytes;
use faas_api::FunctionRun;

/// Longest a notification may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The body sent: what a chat hook or an incident tool needs to show the run.
pub fn summary(run: &FunctionRun) -> serde_json::Value {
    let status = run.status.clone().unwrap_or_default();
    let output = status
        .output
        .as_deref()
        .map(|o| o.chars().take(1024).collect::<String>());
    serde_json::json!({
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
        "message": status.message,
        "output": output,
        "text": format!(
            "{} run {} of {}/{}: {:?}{}",
            run.spec.trigger,
            run.metadata.name.as_deref().unwrap_or_default(),
            run.spec.function,
            run.spec.schedule,
            status.phase,
            status.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
        ),
    })
}

/// Sends the summary of `run` to `url`.
pub async fn send(url: String, run: FunctionRun) {
    let id = run.metadata.name.clone().unwrap_or_default();
    match tokio::time::timeout(TIMEOUT, deliver(&url, &run)).await {
        Ok(Ok(status)) if (200..300).contains(&status) => {
            tracing::info!(run = %id, %url, status, "run notification sent");
        }
        Ok(Ok(status)) => tracing::warn!(run = %id, %url, status, "run notification refused"),
        Ok(Err(reason)) => tracing::warn!(run = %id, %url, %reason, "run notification failed"),
        Err(_) => tracing::warn!(run = %id, %url, "run notification timed out"),
    }
}

/// POSTs the summary of `run` to `url`; the status the receiver answered, or why it was not
/// sent. The metadata-address rule of guests' outbound requests applies.
pub async fn deliver(url: &str, run: &FunctionRun) -> Result<u16, faas_outbound::PostError> {
    let body = Bytes::from(summary(run).to_string());
    faas_outbound::post(
        url,
        vec![(http::header::CONTENT_TYPE, "application/json".parse().ok())],
        body,
        "faas-scheduler",
    )
    .await
}
