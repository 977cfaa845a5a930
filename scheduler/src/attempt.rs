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
    let run_log = store.run_log(plan_id(run));
    let note = |line: String| {
        if let Some(log) = &run_log {
            log.note(&line);
        }
    };
    loop {
        run.spec.attempt = attempt;
        note(format!(
            "attempt {attempt} of {} started at {}",
            job.retries + 1,
            jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| jiff::Timestamp::now())
        ));
        let outcome = call_once(
            target,
            job,
            run,
            body.clone(),
            content_type,
            run_log.clone(),
        )
        .await;
        note(format!(
            "attempt {attempt} ended {}{}",
            outcome.phase.as_str(),
            outcome
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
        let status = run.status.get_or_insert_with(FunctionRunStatus::default);
        status.phase = outcome.phase;
        status.http_status = outcome.http_status;
        status.exit_code = outcome.exit_code;
        status.output = outcome.output;
        status.log_tail = outcome.log_tail;
        if outcome.log_location.is_some() {
            status.log_location = outcome.log_location;
        }
        status.message = outcome.message;
        if outcome.phase == RunPhase::Succeeded || attempt > job.retries {
            if let Some(log) = &run_log {
                log.finish(!(outcome.phase == RunPhase::Succeeded && attempt == 1));
            }
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
    run_log: Option<faas_invoke::RunLog>,
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
    if !job.options.is_empty() {
        put(contract::OPTIONS_HEADER, &job.options.header_value());
    }
    let log_tail = LogTailSink::default();
    let ctx = CallContext {
        timeout: job.timeout,
        log_tail: Some(log_tail.clone()),
        as_run: true,
        run_log,
        ..CallContext::new(id, &*job.key.function)
    };
    let limit = job.timeout.map_or(BACKSTOP, |t| t + BACKSTOP_SLACK);
    let call = async {
        let response = target.call(&job.key.function, request, ctx).await;
        let status = response.status().as_u16();
        let exit = Exit::of(response.headers());
        let text = |headers: &http::HeaderMap, name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let interrupted = text(response.headers(), contract::INTERRUPTED_HEADER);
        let log_location = text(response.headers(), contract::LOG_LOCATION_HEADER);
        let output = read_output(response.into_body(), MAX_OUTPUT).await;
        (status, exit, interrupted, output, log_location)
    };
    let Ok((status, exit, interrupted, output, log_location)) =
        tokio::time::timeout(limit, call).await
    else {
        return Outcome {
            phase: RunPhase::TimedOut,
            http_status: None,
            exit_code: None,
            output: None,
            log_tail: log_tail.take(),
            message: Some(format!("no answer within {}", plan::humanize(limit))),
            log_location: None,
        };
    };
    let tail = log_tail.wait(TAIL_WAIT).await;
    if let Some(why) = interrupted {
        return Outcome {
            phase: RunPhase::Interrupted,
            http_status: Some(status),
            exit_code: None,
            output: None,
            log_tail: tail.filter(|t| !t.is_empty()),
            message: Some(why),
            log_location,
        };
    }
    let phase = plan::phase_of_status(status);
    let message = (phase != RunPhase::Succeeded).then(|| match exit {
        Exit::Code(code) => format!("the job exited with code {code}"),
        Exit::Signal(signal) => format!("the job was killed by signal {signal}"),
        // An answer the platform made itself says why (`NoReadyReplica: …`, a Job's deadline).
        Exit::NotAJob => match contract::read_error_body(&output) {
            Some((reason, why)) => format!("function answered HTTP {status} ({reason}: {why})"),
            None => format!("function answered HTTP {status}"),
        },
    });
    Outcome {
        phase,
        http_status: Some(status),
        exit_code: match exit {
            Exit::Code(code) => Some(code),
            _ => None,
        },
        output: Some(output).filter(|o| !o.is_empty()),
        log_tail: tail.filter(|t| !t.is_empty()),
        message,
        log_location,
    }
}

/// How a `mode: job` process ended, from its answer's headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(i32),
    /// Not a job's answer (or one without the headers): an HTTP status only.
    NotAJob,
}

impl Exit {
    fn of(headers: &http::HeaderMap) -> Exit {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i32>().ok())
        };
        match (
            number(contract::EXIT_CODE_HEADER),
            number(contract::EXIT_SIGNAL_HEADER),
        ) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::NotAJob,
        }
    }
}

struct Outcome {
    phase: RunPhase,
    http_status: Option<u16>,
    exit_code: Option<i32>,
    output: Option<String>,
    log_tail: Option<String>,
    message: Option<String>,
    /// Where the attempt's whole log was put ([`contract::LOG_LOCATION_HEADER`]).
    log_location: Option<String>,
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
