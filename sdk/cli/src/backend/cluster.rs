//! A Kubernetes cluster as a [`Backend`]: Functions and FunctionRuns are resources, managed
//! with the user's own kubeconfig (so Kubernetes RBAC, mapped from IAM on EKS, decides who may
//! do what). The requests of each command live in the submodules.

pub mod archive;
pub mod artifact;
pub mod deploy;
pub mod invoke;
pub mod logs;
pub mod read;
pub mod run;

#[cfg(test)]
mod tests;

use std::io::IsTerminal as _;
use std::path::Path;

use faas_api::{Function, FunctionRun};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use kube::Api;

use super::{
    Backend, DeadLetters, DeployOptions, Deployed, Description, Fetched, FunctionRow, LogOptions,
    LogPiece, RunFilter, RunRequest,
};

/// Why `faas dlq` does not reach a cluster's dead letters (yet).
const CLUSTER_DEAD_LETTERS: &str = "a cluster's dead letters are in the SQS dead-letter queue of the async queue (the chart's gateway.async.queueUrl names the queue; its RedrivePolicy the dead-letter queue): the gateway's admin listener replays them (POST /system/async/dead-letters/replay, from inside the cluster), or redrive them with `aws sqs start-message-move-task`; `faas dlq` against a cluster is not built yet";
use crate::client::Reply;
use crate::commands::invoke::Call;
use crate::flags::Manifests;
use crate::target::Cluster;

/// The field manager of everything `faas` applies.
pub const MANAGER: &str = "faas-cli";

impl Cluster {
    pub fn functions(&self) -> Api<Function> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// Progress lines on stderr: `✓ step detail`, coloured only on a terminal (and not with
/// `NO_COLOR`).
pub struct Progress {
    colour: bool,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            colour: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    pub fn done(&self, step: &str, detail: &str) {
        let mark = if self.colour {
            "\x1b[32m✓\x1b[0m"
        } else {
            "✓"
        };
        eprintln!("  {mark} {step:<10} {detail}");
    }

    pub fn waiting(&self, detail: &str) {
        let mark = if self.colour {
            "\x1b[33m…\x1b[0m"
        } else {
            "…"
        };
        eprintln!("  {mark} {:<10} {detail}", "waiting");
    }

    pub fn failed(&self, step: &str, detail: &str) {
        let mark = if self.colour {
            "\x1b[31m✗\x1b[0m"
        } else {
            "✗"
        };
        eprintln!("  {mark} {step:<10} {detail}");
    }
}

/// A condition of a Function's status, by type.
pub fn condition<'a>(function: &'a Function, kind: &str) -> Option<&'a faas_api::Condition> {
    function
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == kind))
}

/// `value` as JSON, for `-o json|yaml`.
fn raw<T: serde::Serialize>(value: &T) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::to_value(value)?)
}

impl Backend for Cluster {
    fn scope(&self) -> String {
        format!(" in namespace {}", self.namespace)
    }

    fn list(&self) -> BoxFuture<'_, anyhow::Result<Fetched<Vec<FunctionRow>>>> {
        async move {
            let functions = read::list(self).await?;
            Ok(Fetched {
                raw: raw(&functions)?,
                value: functions.iter().map(read::row).collect(),
            })
        }
        .boxed()
    }

    fn describe<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<Description>>> {
        async move {
            let function = read::get(self, name).await?;
            let runs = read::runs(self, Some(name), None, None, 5).await?;
            let raw = serde_json::json!({"function": function, "recentRuns": runs});
            let events = read::events(self, name, 10).await;
            Ok(Fetched {
                value: Description {
                    function,
                    namespace: Some(self.namespace.clone()),
                    routes: Vec::new(),
                    recent_runs: runs,
                    events,
                },
                raw,
            })
        }
        .boxed()
    }

    fn function<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Function>> {
        read::get(self, name).boxed()
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Option<&'static str>>> {
        async move {
            read::delete(self, name).await?;
            Ok(Some("the controller removes its workload and artifacts"))
        }
        .boxed()
    }

    fn check(&self, manifests: &Manifests) -> anyhow::Result<()> {
        deploy::check(self, manifests)
    }

    fn deploy<'a>(
        &'a self,
        function: Function,
        base: &'a Path,
        options: &'a DeployOptions,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<Deployed>>> {
        deploy::deploy_one(self, function, base, options).boxed()
    }

    fn call<'a>(&'a self, name: &'a str, call: &'a Call) -> BoxFuture<'a, anyhow::Result<Reply>> {
        invoke::call_function(self, name, call).boxed()
    }

    fn runs<'a>(
        &'a self,
        filter: &'a RunFilter<'a>,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<Vec<FunctionRun>>>> {
        async move {
            let runs = read::runs(
                self,
                filter.function,
                filter.schedule,
                filter.phase,
                filter.limit,
            )
            .await?;
            Ok(Fetched {
                raw: raw(&runs)?,
                value: runs,
            })
        }
        .boxed()
    }

    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Fetched<FunctionRun>>> {
        async move {
            let run = read::run(self, id).await?;
            Ok(Fetched {
                raw: raw(&run)?,
                value: run,
            })
        }
        .boxed()
    }

    fn start_run<'a>(
        &'a self,
        request: RunRequest<'a>,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<FunctionRun>>> {
        async move {
            let options = run::Timing::default();
            let run = run::run(self, request, &options).await?;
            Ok(Fetched {
                raw: raw(&run)?,
                value: run,
            })
        }
        .boxed()
    }

    fn dead_letters(&self) -> BoxFuture<'_, anyhow::Result<Fetched<Vec<serde_json::Value>>>> {
        async move { anyhow::bail!("{CLUSTER_DEAD_LETTERS}") }.boxed()
    }

    fn settle_dead_letters<'a>(
        &'a self,
        _replay: bool,
        _which: &'a DeadLetters<'a>,
    ) -> BoxFuture<'a, anyhow::Result<u64>> {
        async move { anyhow::bail!("{CLUSTER_DEAD_LETTERS}") }.boxed()
    }

    fn redrive_sqs<'a>(
        &'a self,
        name: &'a str,
        queue: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<serde_json::Value>>> {
        async move {
            // The team's queues, moved with the caller's own AWS credentials: the platform
            // holds no identity that may touch them (each function reads its queues with its
            // own role).
            let function = self.function(name).await?;
            let triggers = faas_sqs::redrive::triggers_to_redrive(&function, queue)?;
            let clients = faas_sqs::Clients::from_env();
            let mut done = Vec::new();
            for trigger in &triggers {
                let redriven = faas_sqs::redrive::redrive_trigger(&clients, trigger).await?;
                done.push(serde_json::to_value(redriven)?);
            }
            Ok(done)
        }
        .boxed()
    }

    fn cancel_run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        async move {
            // The run executes in the controller, which has no way to be told yet; the
            // function's or schedule's timeout still bounds it.
            anyhow::bail!(
                "cancelling a run works against a local platform only; in a cluster run {id} ends at its timeout (`faas runs show {id}` follows it)"
            )
        }
        .boxed()
    }

    fn logs<'a>(
        &'a self,
        name: &'a str,
        options: &'a LogOptions,
        sink: &'a mut (dyn FnMut(String) -> anyhow::Result<()> + Send),
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        logs::logs_to(self, name, options, sink).boxed()
    }

    fn run_log<'a>(&'a self, id: &'a str, offset: u64) -> BoxFuture<'a, anyhow::Result<LogPiece>> {
        async move {
            // A cluster records each run's tail on its FunctionRun, and, with the chart's
            // `controller.runLogs`, a job run's whole log in S3 once it ended
            // (`status.logLocation`). Either is shown once, when the run has ended.
            let run = read::run(self, id).await?;
            let status = run.status.unwrap_or_default();
            let done = faas_schedule::plan::is_final(status.phase);
            if offset > 0 || !done {
                return Ok(LogPiece {
                    next: offset,
                    text: String::new(),
                    done,
                });
            }
            let whole = match &status.log_location {
                Some(location) => match archive::read(location).await {
                    Ok(whole) => Some(whole),
                    Err(e) => {
                        eprintln!(
                            "(the whole log is at {location}, which could not be read: {e:#})"
                        );
                        None
                    }
                },
                None => None,
            };
            let text = match whole {
                Some(whole) => whole,
                None => {
                    eprintln!(
                        "(a cluster keeps the last {} KiB of a run's log here)",
                        faas_api::contract::MAX_LOG_TAIL_BYTES / 1024
                    );
                    status.log_tail.unwrap_or_default()
                }
            };
            Ok(LogPiece {
                next: text.len() as u64,
                text,
                done,
            })
        }
        .boxed()
    }
}
