//! Chained runs under `faas up` (`faas_api::chain`): when a run ends, the runs its
//! function's (or schedule's) `then` lists are started through this platform's scheduler,
//! each checked against the function it names as the registry holds it now; and a deploy
//! that would close a loop of `then`s is refused before anything changes.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use faas_api::chain;
use faas_api::{Function, FunctionRun};
use faas_schedule::{ChainOutcome, Chains};

use crate::platform::Platform;

/// Starts chained runs from the registry of a platform.
pub struct RegistryChains {
    platform: Weak<Platform>,
}

impl RegistryChains {
    pub fn new(platform: &Arc<Platform>) -> Self {
        RegistryChains {
            platform: Arc::downgrade(platform),
        }
    }

    fn start(&self, finished: &FunctionRun) -> ChainOutcome {
        let mut outcome = ChainOutcome::default();
        let Some(platform) = self.platform.upgrade() else {
            return outcome;
        };
        let (Some(scheduler), Some(entry)) = (
            platform.scheduler.get(),
            platform.registry.get(&finished.spec.function),
        ) else {
            // The function was deleted while it ran: its `then` went with it.
            return outcome;
        };
        for next in chain::next_runs_of(finished, &entry.function.spec) {
            let target = platform.registry.get(&next.function);
            let planned = match chain::plan(finished, next, target.as_ref().map(|e| &e.function)) {
                Ok(planned) => planned,
                Err(why) => {
                    outcome.refused.push(why);
                    continue;
                }
            };
            match scheduler.run_chained(
                &planned.function,
                planned.schedule.as_deref(),
                planned.payload.map(Bytes::from),
                planned.options,
                planned.parent,
            ) {
                Ok(handle) => {
                    tracing::info!(run = %handle.id, parent = ?finished.metadata.name, "chained run started");
                    outcome.started.push(handle.id);
                }
                Err(err) => outcome.refused.push(format!("{}: {err}", planned.function)),
            }
        }
        outcome
    }
}

impl Chains for RegistryChains {
    fn after<'a>(
        &'a self,
        run: &'a FunctionRun,
    ) -> std::pin::Pin<Box<dyn Future<Output = ChainOutcome> + Send + 'a>> {
        Box::pin(std::future::ready(self.start(run)))
    }
}

/// The loop of `then`s that deploying `function` would close among the registered
/// functions, as `a → b → a`; `None` when there is none.
pub fn loop_with(platform: &Platform, function: &Function) -> Option<String> {
    let entries = platform.registry.list();
    chain::loop_with(
        entries.iter().map(|e| (e.name(), &e.function.spec)),
        function,
    )
}
