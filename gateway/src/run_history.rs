//! Where the dashboard reads run history: the scheduler's own store in local mode, the
//! `FunctionRun` resources of the served namespaces in a cluster (where the controller's
//! cron writes them). Read-only either way: runs are started, cancelled and pruned by their
//! scheduler alone.
//!
//! Functions are named by their registry key (`orders` locally, `orders.shop` in a cluster),
//! as everywhere in the dashboard; a cluster run is found by its namespace and name.

use std::sync::Arc;

use faas_api::{FunctionRun, RunPhase};
use futures::future::BoxFuture;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt as _};

/// Which runs to show, newest first.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// A registry key.
    pub function: Option<String>,
    pub schedule: Option<String>,
    pub phase: Option<RunPhase>,
    pub limit: usize,
}

/// Run history for the dashboard.
pub trait RunHistory: Send + Sync {
    /// Runs matching `query`, newest first. A store that cannot be read gives none (the page
    /// still renders); the error goes to the log.
    fn list(&self, query: HistoryQuery) -> BoxFuture<'_, Vec<FunctionRun>>;
    /// One run: by name, in `namespace` in a cluster.
    fn get<'a>(
        &'a self,
        namespace: Option<&'a str>,
        id: &'a str,
    ) -> BoxFuture<'a, Option<FunctionRun>>;
}

/// Local mode: the scheduler's store.
pub struct SchedulerHistory(pub Arc<faas_schedule::Scheduler>);

impl RunHistory for SchedulerHistory {
    fn list(&self, query: HistoryQuery) -> BoxFuture<'_, Vec<FunctionRun>> {
        Box::pin(async move {
            let listed = self
                .0
                .runner()
                .store()
                .list(faas_schedule::RunQuery {
                    function: query.function,
                    schedule: query.schedule,
                    phase: query.phase,
                    limit: Some(query.limit),
                })
                .await;
            listed.unwrap_or_else(|err| {
                tracing::warn!(error = %err, "run history: the run store cannot be read");
                Vec::new()
            })
        })
    }

    fn get<'a>(
        &'a self,
        _namespace: Option<&'a str>,
        id: &'a str,
    ) -> BoxFuture<'a, Option<FunctionRun>> {
        Box::pin(async move {
            self.0
                .runner()
                .store()
                .get(id.to_owned())
                .await
                .ok()
                .flatten()
        })
    }
}

/// A cluster: `FunctionRun`s, read through the API with the gateway's own RBAC (get and list).
pub struct ClusterHistory {
    client: Client,
    /// The namespaces the gateway serves; empty: all.
    namespaces: Vec<String>,
}

impl ClusterHistory {
    pub fn new(client: Client, namespaces: Vec<String>) -> Self {
        ClusterHistory { client, namespaces }
    }

    /// The API of the runs of `namespace`, or of every namespace.
    fn api(&self, namespace: Option<&str>) -> Api<FunctionRun> {
        match namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        }
    }

    /// Whether runs of `namespace` may be shown: those of the namespaces it serves only.
    fn serves(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }
}

/// The label selector of `query`: a function key `name.namespace` names both.
pub fn selector(query: &HistoryQuery) -> (Option<String>, String) {
    use faas_api::contract::{FUNCTION_LABEL, SCHEDULE_LABEL};
    let mut labels = Vec::new();
    let mut namespace = None;
    if let Some(key) = &query.function {
        let (name, in_namespace) = faas_api::routing::split_qualified_name(key);
        labels.push(format!("{FUNCTION_LABEL}={name}"));
        namespace = in_namespace.map(str::to_owned);
    }
    if let Some(schedule) = &query.schedule {
        labels.push(format!("{SCHEDULE_LABEL}={schedule}"));
    }
    (namespace, labels.join(","))
}

impl RunHistory for ClusterHistory {
    fn list(&self, query: HistoryQuery) -> BoxFuture<'_, Vec<FunctionRun>> {
        Box::pin(async move {
            let (namespace, labels) = selector(&query);
            let namespaces: Vec<Option<String>> = match (namespace, self.namespaces.as_slice()) {
                (Some(namespace), _) => vec![Some(namespace)],
                (None, []) => vec![None],
                (None, served) => served.iter().cloned().map(Some).collect(),
            };
            let mut runs = Vec::new();
            for namespace in namespaces {
                if namespace.as_deref().is_some_and(|n| !self.serves(n)) {
                    continue;
                }
                let params = ListParams::default().labels(&labels);
                match self.api(namespace.as_deref()).list(&params).await {
                    Ok(list) => runs.extend(list.items),
                    Err(err) => {
                        tracing::warn!(namespace = ?namespace, error = %err, "run history: cannot list FunctionRuns");
                    }
                }
            }
            runs.retain(|run| {
                run.namespace().is_some_and(|n| self.serves(&n))
                    && query.phase.is_none_or(|phase| {
                        run.status.as_ref().map(|s| s.phase).unwrap_or_default() == phase
                    })
            });
            faas_api::newest_first(&mut runs);
            runs.truncate(query.limit);
            runs
        })
    }

    fn get<'a>(
        &'a self,
        namespace: Option<&'a str>,
        id: &'a str,
    ) -> BoxFuture<'a, Option<FunctionRun>> {
        Box::pin(async move {
            let namespace = namespace.filter(|n| self.serves(n))?;
            match self.api(Some(namespace)).get_opt(id).await {
                Ok(run) => run,
                Err(err) => {
                    tracing::warn!(namespace, run = id, error = %err, "run history: cannot read a FunctionRun");
                    None
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_key_selects_its_name_and_namespace() {
        let query = HistoryQuery {
            function: Some("orders.shop".into()),
            schedule: Some("nightly".into()),
            ..HistoryQuery::default()
        };
        assert_eq!(
            selector(&query),
            (
                Some("shop".to_owned()),
                "faas.dev/function=orders,faas.dev/schedule=nightly".to_owned()
            )
        );
        assert_eq!(selector(&HistoryQuery::default()), (None, String::new()));
    }
}
