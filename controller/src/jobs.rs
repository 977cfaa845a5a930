//! The runs of `mode: job` functions: each attempt a Kubernetes Job ([`crate::render::job`]),
//! created by the scheduler that holds the Lease, followed to its end, and answered to the
//! scheduler as any run is (an HTTP response: 200 with the output, 500 with the exit code,
//! 504 past the deadline, 503 with `x-faas-interrupted` when the pod was disrupted), so
//! retries, concurrency policies, history and notifications are the scheduler's, unchanged.
//!
//! - The run's environment is built from the request the scheduler made, by the same code as
//!   local mode (`faas_api::job_env`).
//! - An attempt that finds an unfinished Job of an earlier attempt of its run adopts it
//!   instead of starting the work twice: a controller killed mid-run leaves its Job running,
//!   and its successor resumes the run as its next attempt.
//! - An attempt dropped before its end by a `Replace` policy deletes its Job, and with it the
//!   pod. One dropped because the controller is shutting down leaves its Job running: the
//!   next leader follows it when the run is resumed, and a controller rollout never kills a
//!   long run.
//! - The log tail comes from the pod's log once the Job ended; the whole log stays in the
//!   pod until the Job's TTL, and, with a log archive (`crate::log_archive`), is put in S3
//!   then, its location answered in `x-faas-log-location`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use faas_api::{Function, FunctionRun, contract};
use faas_invoke::{CallContext, FunctionTarget, ResponseBody};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource as _, ResourceExt as _};

use crate::cron::error_response as error;
use crate::log_archive::LogArchive;
use crate::render::ClusterDefaults;
use crate::render::job::{self as render, ATTEMPT_LABEL, Attempt, Outcome, RUN_LABEL};

/// Between two looks at a Job in progress.
pub const POLL: Duration = Duration::from_secs(2);

/// Runs the job functions of one namespace as Kubernetes Jobs.
pub struct JobTarget {
    client: Client,
    namespace: String,
    functions: Store<Function>,
    defaults: Arc<ClusterDefaults>,
    poll: Duration,
    /// Set when the controller shuts down: dropped attempts then keep their Jobs.
    stopping: Arc<AtomicBool>,
    /// Where whole logs are kept, when the chart names a bucket.
    archive: Option<Arc<LogArchive>>,
}

impl JobTarget {
    pub fn new(
        client: Client,
        namespace: &str,
        functions: Store<Function>,
        defaults: Arc<ClusterDefaults>,
    ) -> Self {
        JobTarget {
            client,
            namespace: namespace.to_owned(),
            functions,
            defaults,
            poll: POLL,
            stopping: Arc::default(),
            archive: None,
        }
    }

    /// Keeps each attempt's whole log in `archive`.
    pub fn with_archive(mut self, archive: Option<Arc<LogArchive>>) -> Self {
        self.archive = archive;
        self
    }

    /// Shares `stopping`: once it is set, an attempt dropped leaves its Job running.
    pub fn with_stopping(mut self, stopping: Arc<AtomicBool>) -> Self {
        self.stopping = stopping;
        self
    }

    /// With another interval between looks at a Job (tests).
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The Function `name` of this namespace, when it is a job.
    pub fn job_function(&self, name: &str) -> Option<Arc<Function>> {
        self.functions
            .get(&ObjectRef::new(name).within(&self.namespace))
            .filter(|f| f.spec.is_job())
    }

    async fn run(
        &self,
        function: &Function,
        request: http::Request<Bytes>,
        ctx: CallContext,
    ) -> Result<http::Response<ResponseBody>, http::Response<ResponseBody>> {
        let headers = request.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let run_id = header(contract::RUN_ID_HEADER).unwrap_or_else(|| ctx.call_id.clone());
        let attempt = header(contract::ATTEMPT_HEADER)
            .and_then(|a| a.parse::<u32>().ok())
            .unwrap_or(1);
        let env = faas_api::job_env::environment(header, request.body());
        let runs: Api<FunctionRun> = Api::namespaced(self.client.clone(), &self.namespace);
        let record = runs.get(&run_id).await.map_err(|e| {
            error(
                503,
                "RunNotFound",
                &format!("reading FunctionRun {run_id}: {e}"),
            )
        })?;
        let owner = record.controller_owner_ref(&()).ok_or_else(|| {
            error(
                503,
                "RunNotFound",
                &format!("FunctionRun {run_id} has no uid yet"),
            )
        })?;
        let timeout = ctx
            .timeout
            .or_else(|| function.spec.limits().ok().map(|l| l.timeout))
            .unwrap_or(Duration::from_secs(30));
        let wanted = render::job(
            function,
            &Attempt {
                run_id: &run_id,
                attempt,
                env,
                timeout,
                owner,
            },
            &self.defaults,
        )
        .ok_or_else(|| error(409, "NotAJob", "the function is not a job with an image"))?;
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = self.start(&jobs, &run_id, attempt, &wanted).await?;
        // From here on the Job goes when this attempt goes, however it ends early.
        let guard = DeleteOnDrop {
            jobs: jobs.clone(),
            name: Some(name.clone()),
            stopping: Arc::clone(&self.stopping),
        };
        let (job, pod) = loop {
            tokio::time::sleep(self.poll).await;
            let job = match jobs.get(&name).await {
                Ok(job) => job,
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    return Err(error(
                        503,
                        "JobGone",
                        &format!("Job {name} was deleted before it ended"),
                    ));
                }
                Err(e) => {
                    tracing::warn!(job = %name, error = %e, "jobs: could not read a run's Job; looking again");
                    continue;
                }
            };
            if render::outcome(&job, None) != Outcome::Running {
                let pod = self.pod_of(&name).await;
                break (job, pod);
            }
        };
        guard.disarm();
        let mut location = None;
        if let Some(pod) = &pod {
            let log = match &self.archive {
                Some(archive) => {
                    let whole = self.log(pod, None).await;
                    let cut = whole
                        .as_ref()
                        .is_ok_and(|w| w.len() as i64 >= crate::log_archive::MAX_LOG_BYTES);
                    if let Ok(whole) = &whole {
                        let mut kept = whole.clone();
                        if cut {
                            kept.push_str(&format!(
                                "\n[faas] this attempt's log reached {} MiB: the rest is not kept\n",
                                crate::log_archive::MAX_LOG_BYTES / (1024 * 1024)
                            ));
                        }
                        match archive.put(&self.namespace, &run_id, attempt, kept).await {
                            Ok(()) => location = Some(archive.location(&self.namespace, &run_id)),
                            Err(e) => {
                                tracing::warn!(job = %name, error = %e, "jobs: the run's whole log was not archived")
                            }
                        }
                    }
                    // A log cut at the cap does not end with the pod's last lines: ask for them.
                    if cut {
                        self.log(pod, Some(2000)).await
                    } else {
                        whole
                    }
                }
                None => self.log(pod, Some(2000)).await,
            };
            match (log, &ctx.log_tail) {
                (Ok(log), Some(sink)) => sink.set(last_bytes(&log, contract::MAX_LOG_TAIL_BYTES)),
                (Err(e), _) => tracing::warn!(job = %name, error = %e, "jobs: no log for the run"),
                (Ok(_), None) => {}
            }
        }
        let mut response = answer(render::outcome(&job, pod.as_ref()));
        if let Some(value) = location.and_then(|l| http::HeaderValue::from_str(&l).ok()) {
            response
                .headers_mut()
                .insert(contract::LOG_LOCATION_HEADER, value);
        }
        Ok(response)
    }

    /// Creates the attempt's Job, or adopts the unfinished Job of an earlier attempt of the
    /// same run (or this attempt's own, created before a restart). Returns the Job's name.
    async fn start(
        &self,
        jobs: &Api<Job>,
        run_id: &str,
        attempt: u32,
        wanted: &Job,
    ) -> Result<String, http::Response<ResponseBody>> {
        let existing = jobs
            .list(
                &ListParams::default()
                    .labels(&format!("{RUN_LABEL}={}", render::run_label(run_id))),
            )
            .await
            .map_err(|e| {
                error(
                    503,
                    "JobNotCreated",
                    &format!("listing the run's Jobs: {e}"),
                )
            })?;
        let running = existing
            .items
            .iter()
            .filter(|j| render::outcome(j, None) == Outcome::Running)
            .max_by_key(|j| attempt_of(j));
        if let Some(job) = running {
            tracing::info!(run = %run_id, job = %job.name_any(), attempt, "jobs: following the run's Job already running");
            return Ok(job.name_any());
        }
        match jobs.create(&PostParams::default(), wanted).await {
            Ok(job) => {
                tracing::info!(run = %run_id, job = %job.name_any(), attempt, "jobs: run started as a Job");
                Ok(job.name_any())
            }
            Err(e) => Err(error(
                503,
                "JobNotCreated",
                &format!("creating the run's Job: {e}"),
            )),
        }
    }

    /// The pod of Job `name`, if there is one.
    async fn pod_of(&self, name: &str) -> Option<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let found = pods
            .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
            .await
            .ok()?;
        found.items.into_iter().next()
    }

    /// The log of the pod's function container: its last `tail_lines`, or all of it (at
    /// most [`crate::log_archive::MAX_LOG_BYTES`]).
    async fn log(&self, pod: &Pod, tail_lines: Option<i64>) -> Result<String, kube::Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        pods.logs(
            &pod.name_any(),
            &LogParams {
                container: Some(contract::FUNCTION_CONTAINER.into()),
                tail_lines,
                limit_bytes: tail_lines
                    .is_none()
                    .then_some(crate::log_archive::MAX_LOG_BYTES),
                ..LogParams::default()
            },
        )
        .await
    }
}

impl FunctionTarget for JobTarget {
    fn call(
        &self,
        function: &str,
        request: http::Request<Bytes>,
        ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = http::Response<ResponseBody>> + Send + '_>> {
        let function = self.job_function(function);
        Box::pin(async move {
            let Some(function) = function else {
                return error(404, "FunctionNotFound", "no job function of that name here");
            };
            self.run(&function, request, ctx)
                .await
                .unwrap_or_else(|refused| refused)
        })
    }
}

fn attempt_of(job: &Job) -> u32 {
    job.labels()
        .get(ATTEMPT_LABEL)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

/// The end of `text`, at most `limit` bytes, from a line's start where one fits.
fn last_bytes(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let start = text.ceil_char_boundary(text.len() - limit);
    let cut = &text[start..];
    match cut.find('\n') {
        Some(end) if end + 1 < cut.len() => cut[end + 1..].to_owned(),
        _ => cut.to_owned(),
    }
}

/// The scheduler's view of an attempt's end.
fn answer(outcome: Outcome) -> http::Response<ResponseBody> {
    let mut response = match &outcome {
        Outcome::Succeeded { output } => {
            let json = serde_json::from_str::<serde_json::Value>(output).is_ok();
            let mut response = http::Response::new(faas_invoke::full_body(output.clone()));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(if json {
                    "application/json"
                } else {
                    "text/plain; charset=utf-8"
                }),
            );
            response
                .headers_mut()
                .insert(contract::EXIT_CODE_HEADER, http::HeaderValue::from(0));
            response
        }
        Outcome::Failed {
            exit_code,
            signal,
            message,
        } => {
            let mut response = error(500, "JobFailed", message);
            if let Some(code) = exit_code {
                response
                    .headers_mut()
                    .insert(contract::EXIT_CODE_HEADER, http::HeaderValue::from(*code));
            } else if let Some(signal) = signal {
                response.headers_mut().insert(
                    contract::EXIT_SIGNAL_HEADER,
                    http::HeaderValue::from(*signal),
                );
            }
            response
        }
        Outcome::TimedOut { message } => error(504, "Timeout", message),
        Outcome::Interrupted { message } => {
            let mut response = error(503, "Interrupted", message);
            if let Ok(value) = http::HeaderValue::from_str(&message.replace(['\r', '\n'], " ")) {
                response
                    .headers_mut()
                    .insert(contract::INTERRUPTED_HEADER, value);
            }
            response
        }
        Outcome::Running => error(502, "JobRunning", "the Job has not ended"),
    };
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Deletes the Job (and, in the background, its pod) unless disarmed: an attempt the
/// scheduler dropped stops its work.
struct DeleteOnDrop {
    jobs: Api<Job>,
    name: Option<String>,
    stopping: Arc<AtomicBool>,
}

impl DeleteOnDrop {
    fn disarm(mut self) {
        self.name = None;
    }
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let (Some(name), Ok(runtime)) = (self.name.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        if self.stopping.load(Ordering::Acquire) {
            tracing::info!(job = %name, "jobs: the controller stops; the run's Job goes on for the next leader");
            return;
        }
        let jobs = self.jobs.clone();
        runtime.spawn(async move {
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            match jobs.delete(&name, &params).await {
                Ok(_) => tracing::info!(job = %name, "jobs: a dropped run's Job deleted"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => tracing::warn!(job = %name, error = %e, "jobs: could not delete a dropped run's Job"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_last_whole_lines() {
        let log: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        let tail = last_bytes(&log, 100);
        assert!(tail.len() <= 100);
        assert!(tail.starts_with("line "), "{tail}");
        assert!(tail.ends_with("line 999\n"));
        assert_eq!(last_bytes("short\n", 100), "short\n");
    }

    #[tokio::test]
    async fn each_end_is_answered_as_the_scheduler_reads_runs() {
        let ok = answer(Outcome::Succeeded {
            output: "{\"rows\":3}".into(),
        });
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()[contract::EXIT_CODE_HEADER], "0");
        assert_eq!(ok.headers()["content-type"], "application/json");
        let failed = answer(Outcome::Failed {
            exit_code: Some(3),
            signal: None,
            message: "BackoffLimitExceeded: x".into(),
        });
        assert_eq!(failed.status(), 500);
        assert_eq!(failed.headers()[contract::EXIT_CODE_HEADER], "3");
        let killed = answer(Outcome::Failed {
            exit_code: None,
            signal: Some(9),
            message: "x".into(),
        });
        assert_eq!(killed.headers()[contract::EXIT_SIGNAL_HEADER], "9");
        assert_eq!(
            answer(Outcome::TimedOut {
                message: "late".into()
            })
            .status(),
            504
        );
        let interrupted = answer(Outcome::Interrupted {
            message: "spot\ninterruption".into(),
        });
        assert_eq!(interrupted.status(), 503);
        assert_eq!(
            interrupted.headers()[contract::INTERRUPTED_HEADER],
            "spot interruption"
        );
    }
}
