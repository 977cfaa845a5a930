//! Chained runs in a cluster (`faas_api::chain`): when a run ends, each run its function's
//! (or schedule's) `then` lists is asked for as a requested `FunctionRun` in the same
//! namespace (what `faas run` creates), which the leading controller then runs under that
//! name, like any other request. A `then` never reaches another namespace: a team's
//! Function can start only its own team's functions.

use std::future::Future;
use std::pin::Pin;

use faas_api::{Function, FunctionRun, chain};
use faas_schedule::plan::{MANUAL, manual_run_id};
use faas_schedule::{ChainOutcome, Chains};
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

/// Asks for the chained runs of one namespace's finished runs.
pub struct KubeChains {
    client: Client,
    namespace: String,
    functions: Store<Function>,
}

impl KubeChains {
    pub fn new(client: Client, namespace: &str, functions: Store<Function>) -> Self {
        KubeChains {
            client,
            namespace: namespace.to_owned(),
            functions,
        }
    }

    fn function(&self, name: &str) -> Option<std::sync::Arc<Function>> {
        self.functions
            .get(&ObjectRef::new(name).within(&self.namespace))
    }

    async fn start(&self, finished: &FunctionRun) -> ChainOutcome {
        let mut outcome = ChainOutcome::default();
        let Some(parent) = self.function(&finished.spec.function) else {
            // Deleted while it ran: its `then` went with it.
            return outcome;
        };
        let runs: Api<FunctionRun> = Api::namespaced(self.client.clone(), &self.namespace);
        for next in chain::next_runs_of(finished, &parent.spec) {
            let target = self.function(&next.function);
            let planned = match chain::plan(finished, next, target.as_deref()) {
                Ok(planned) => planned,
                Err(why) => {
                    outcome.refused.push(why);
                    continue;
                }
            };
            let schedule = planned.schedule.as_deref().unwrap_or(MANUAL);
            let id = manual_run_id(&planned.function, schedule);
            let asked = faas_api::requested_run(faas_api::RunRequest {
                id: &id,
                function: &planned.function,
                schedule,
                given: &planned.given,
                shown: planned.options.shown(),
                payload: planned.payload.as_deref(),
                parent: Some(&planned.parent),
                trigger: faas_api::chain::TRIGGER,
            });
            let created = match asked {
                Ok(asked) => runs
                    .create(&PostParams::default(), &asked)
                    .await
                    .map_err(|e| format!("creating FunctionRun {id}: {e}")),
                Err(why) => Err(why),
            };
            match created {
                Ok(_) => {
                    tracing::info!(namespace = %self.namespace, run = %id, parent = ?finished.metadata.name, "chained run requested");
                    outcome.started.push(id);
                }
                Err(why) => outcome.refused.push(format!("{}: {why}", planned.function)),
            }
        }
        outcome
    }
}

impl Chains for KubeChains {
    fn after<'a>(
        &'a self,
        run: &'a FunctionRun,
    ) -> Pin<Box<dyn Future<Output = ChainOutcome> + Send + 'a>> {
        Box::pin(self.start(run))
    }
}
