//! The set of pollers of a platform, following its functions: [`Pollers::set`] takes the
//! triggers that should run and starts, keeps or stops pollers to match (like the scheduler's
//! `set_jobs`). Triggers that are disabled or whose function cannot take calls are listed
//! with that state, not polled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::Clients;
use super::metrics::SqsMetrics;
use super::poller::Poller;
use super::status::{TriggerState, TriggerStatus};
use super::trigger::TriggerConfig;
use faas_invoke::FunctionTarget;

/// A trigger as the platform wants it.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub config: TriggerConfig,
    /// `Err(reason)`: the function cannot take calls now (it failed to load); not polled.
    pub function_ready: Result<(), String>,
    /// Whose credentials its queue is read with.
    pub read_as: ReadAs,
}

/// Whose credentials a trigger's queue is read with: the host decides (see the gateway's
/// `TriggerCredentials`), the pollers follow.
#[derive(Clone)]
pub enum ReadAs {
    /// This process's own ([`Pollers::new`]'s clients): the developer's under `faas up`, the
    /// pod's in a function's own pod (whose identity is the function's role).
    Process,
    /// The function's own role: clients that sign with its credentials. A poller keeps
    /// running while it is given the same `Arc` (the same identity).
    Function(Arc<Clients>),
    /// Nothing: not polled, with why.
    Nothing(String),
}

impl std::fmt::Debug for ReadAs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadAs::Process => f.write_str("Process"),
            ReadAs::Function(_) => f.write_str("Function"),
            ReadAs::Nothing(why) => f.debug_tuple("Nothing").field(why).finish(),
        }
    }
}

type Key = (String, String);

/// Pollers by (function, queue URL).
pub struct Pollers {
    clients: Arc<Clients>,
    target: Arc<dyn FunctionTarget>,
    metrics: SqsMetrics,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    running: HashMap<Key, Poller>,
    /// Triggers not polled, with why.
    idle: HashMap<Key, TriggerStatus>,
    /// Set by shutdown: no poller starts after it.
    closed: bool,
}

impl Pollers {
    pub fn new(
        clients: Arc<Clients>,
        target: Arc<dyn FunctionTarget>,
        metrics: SqsMetrics,
    ) -> Self {
        Pollers {
            clients,
            target,
            metrics,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Makes the running pollers match `wanted`. A poller whose trigger changed is replaced:
    /// the old one stops receiving and finishes its batches in the background.
    pub fn set(&self, wanted: Vec<Wanted>) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        let mut running = std::mem::take(&mut inner.running);
        let mut idle = HashMap::new();
        let mut stopping = Vec::new();
        for Wanted {
            config,
            function_ready,
            read_as,
        } in wanted
        {
            let key = config.key();
            let clients = match read_as {
                ReadAs::Process => Ok(Arc::clone(&self.clients)),
                ReadAs::Function(clients) => Ok(clients),
                ReadAs::Nothing(why) => Err(why),
            };
            let not_polled = if !config.enabled {
                Some(TriggerStatus::new(
                    &config.queue_url,
                    TriggerState::Disabled,
                    config.max_concurrency,
                ))
            } else if let Err(reason) = &function_ready {
                Some(
                    TriggerStatus::new(
                        &config.queue_url,
                        TriggerState::FunctionNotReady,
                        config.max_concurrency,
                    )
                    .because(format!("not polling: {reason}")),
                )
            } else if let Err(why) = &clients {
                Some(
                    TriggerStatus::new(
                        &config.queue_url,
                        TriggerState::NoCredentials,
                        config.max_concurrency,
                    )
                    .because(format!("not polling: {why}")),
                )
            } else {
                None
            };
            let current = running.remove(&key);
            if let Some(status) = not_polled {
                stopping.extend(current);
                idle.insert(key, status);
                continue;
            }
            let Ok(clients) = clients else { continue };
            let poller = match current {
                // Same trigger, same identity: keep it. A role that changed restarts it.
                Some(poller) if *poller.config() == config && poller.reads_with(&clients) => poller,
                other => {
                    stopping.extend(other);
                    Poller::start(config, clients, Arc::clone(&self.target), &self.metrics)
                }
            };
            inner.running.insert(key, poller);
        }
        // Whatever is left is no longer wanted.
        stopping.extend(running.into_values());
        inner.idle = idle;
        drop(inner);
        for poller in stopping {
            tokio::spawn(poller.stop(None));
        }
    }

    /// The triggers of `function`, polled or not, by queue URL.
    /// The clients of triggers read with this process's own credentials ([`ReadAs::Process`]).
    pub fn process_clients(&self) -> Arc<Clients> {
        Arc::clone(&self.clients)
    }

    pub fn status_of(&self, function: &str) -> Vec<TriggerStatus> {
        let inner = self.lock();
        let mut out: Vec<TriggerStatus> = inner
            .running
            .iter()
            .filter(|((f, _), _)| f == function)
            .map(|(_, p)| p.status())
            .chain(
                inner
                    .idle
                    .iter()
                    .filter(|((f, _), _)| f == function)
                    .map(|(_, s)| s.clone()),
            )
            .collect();
        out.sort_by(|a, b| a.queue_url.cmp(&b.queue_url));
        out
    }

    /// Every trigger, by function.
    pub fn statuses(&self) -> Vec<(String, TriggerStatus)> {
        let inner = self.lock();
        let mut out: Vec<(String, TriggerStatus)> = inner
            .running
            .iter()
            .map(|((f, _), p)| (f.clone(), p.status()))
            .chain(inner.idle.iter().map(|((f, _), s)| (f.clone(), s.clone())))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1.queue_url).cmp(&(&b.0, &b.1.queue_url)));
        out
    }

    /// Stops every poller: no more receives; batches in flight get `grace` to finish, then
    /// their messages are made visible again at once.
    pub async fn shutdown(&self, grace: Duration) {
        let pollers: Vec<Poller> = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.running.drain().map(|(_, p)| p).collect()
        };
        futures_join_all(pollers.into_iter().map(|p| p.stop(Some(grace)))).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Awaits all of `futures` concurrently (one task each), without a futures dependency.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for f in futures {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}
