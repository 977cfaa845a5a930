//! Calling the function for a run: attempts with retry backoff, one call under the run's
//! timeout (with a backstop), the response body kept up to a bound, the guest's log tail.

use std::time::Duration;

use bytes::Bytes;
use faas_api::contract;
use faas_api::{FunctionRun, FunctionRunStatus, RunPhase};
use http::{HeaderValue, Request};

use super::job::Job;
use super::plan;
use super::run::MAX_OUTPUT;
use super::store::RunStore;
use faas_invoke::FunctionTarget;
use faas_invoke::{CallContext, LogTailSink, ResponseBody};

/// Longest a run may go on when neither the schedule nor the function bounds it: a backstop
/// behind the executor's own deadline, in case an executor fails to enforce it.
const BACKSTOP: Duration = Duration::from_secs(3600);
/// Slack past a run's timeout before the backstop fires: the executor enforces the timeout
/// itself, and in a cluster the timeout starts when the function's pod gets the call, after
/// the gateway held it while a function at zero got a replica (`--scale-from-zero-timeout`,
/// 30 s by default): a schedule's fire is often what wakes its function.
const BACKSTOP_SLACK: Duration = Duration::from_secs(90);

/// Longest wait for the guest's log tail after its response ended (executors that keep no
/// log, such as a test target, never fill it).
const TAIL_WAIT: Duration = Duration::from_millis(500);

/// Calls the function until an attempt succeeds or the retries are used up, recording
/// each step. Dropping this future (cancellation) drops the call, which stops the guest.
pub(super) async fn attempts(
    target: &dyn FunctionTarget,
    store: &dyn RunStore,
    job: &Job,
    run: &mut FunctionRun,
    payload: Option<Bytes>,
) {
    let (body, content_type) = match (payload, &job.payload) {
        (Some(body), _) => (body, "application/octet-stream"),
        (None, Some((body, content_type))) => (body.clone(), *content_type),
        (None, None) => (Bytes::new(), "application/octet-stream"),
    };
    // A resumed run (its scheduler stopped during an attempt) goes on from its next attempt.
    let mut attempt = run.spec.attempt.max(1);
    loop {
        run.spec.attempt = attempt;
        let outcome = call_once(target, job, run, body.clone(), content_type).await;
        let status = run.status.get_or_insert_with(FunctionRunStatus::default);
        status.phase = outcome.phase;
        status.http_status = outcome.http_status;
        status.output = outcome.output;
        status.log_tail = outcome.log_tail;
        status.message = outcome.message;
        if outcome.phase == RunPhase::Succeeded || attempt > job.retries {
            return;
        }
        let wait = plan::retry_backoff(job.backoff, attempt, plan::jitter_sample());
        status.phase = RunPhase::Pending;
        status.message = Some(format!(
            "attempt {attempt} ended {:?}{}; retrying in {}",
            outcome.phase,
            status
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            plan::humanize(wait)
        ));
        if let Err(err) = store.update(run.clone(), None).await {
            tracing::warn!(run = %plan_id(run), error = %err, "could not record a retry");
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
        // Recorded before the call, so a reader sees which attempt is under way.
        run.spec.attempt = attempt;
        if let Some(status) = run.status.as_mut() {
            status.phase = RunPhase::Running;
        }
        if let Err(err) = store.update(run.clone(), None).await {
            tracing::warn!(run = %plan_id(run), error = %err, "could not record an attempt");
        }
    }
}

async fn call_once(
    target: &dyn FunctionTarget,
    job: &Job,
    run: &FunctionRun,
    body: Bytes,
    content_type: &'static str,
) -> Outcome {
    let id = plan_id(run);
    let mut request = Request::new(body);
    *request.method_mut() = http::Method::POST;
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put(contract::RUN_ID_HEADER, id);
    put(contract::SCHEDULE_HEADER, &run.spec.schedule);
    put(contract::TRIGGER_HEADER, &run.spec.trigger);
    put(contract::ATTEMPT_HEADER, &run.spec.attempt.to_string());
    if let Some(due) = &run.spec.scheduled_time {
        put(contract::SCHEDULED_TIME_HEADER, due);
    }
    let log_tail = LogTailSink::default();
    let ctx = CallContext {
        timeout: job.timeout,
        log_tail: Some(log_tail.clone()),
        ..CallContext::new(id, &*job.key.function)
    };
    let limit = job.timeout.map_or(BACKSTOP, |t| t + BACKSTOP_SLACK);
    let call = async {
        let response = target.call(&job.key.function, request, ctx).await;
        let status = response.status().as_u16();
        let output = read_output(response.into_body(), MAX_OUTPUT).await;
        (status, output)
    };
    let Ok((status, output)) = tokio::time::timeout(limit, call).await else {
        return Outcome {
            phase: RunPhase::TimedOut,
            http_status: None,
            output: None,
            log_tail: log_tail.take(),
            message: Some(format!("no answer within {}", plan::humanize(limit))),
        };
    };
    let tail = log_tail.wait(TAIL_WAIT).await;
    let phase = plan::phase_of_status(status);
    let message =
        (phase != RunPhase::Succeeded).then(|| format!("function answered HTTP {status}"));
    Outcome {
        phase,
        http_status: Some(status),
        output: Some(output).filter(|o| !o.is_empty()),
        log_tail: tail.filter(|t| !t.is_empty()),
        message,
    }
}

struct Outcome {
    phase: RunPhase,
    http_status: Option<u16>,
    output: Option<String>,
    log_tail: Option<String>,
    message: Option<String>,
}

fn plan_id(run: &FunctionRun) -> &str {
    super::store::run_id(run)
}

/// Reads the whole body (the function runs until it is sent) but keeps at most `limit` bytes.
/// The response body as run output: text, with a note when it was cut or failed.
async fn read_output(body: ResponseBody, limit: usize) -> String {
    let body = faas_invoke::read_bounded(body, limit).await;
    let mut text = String::from_utf8_lossy(&body.kept).into_owned();
    if body.total > body.kept.len() {
        text.push_str(&format!(
            "\n[output truncated: {} bytes, first {limit} kept]",
            body.total
        ));
    }
    if let Some(error) = body.error {
        text.push_str(&format!("\n[response body failed: {error}]"));
    }
    text
}
