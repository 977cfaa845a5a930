//! Reading and deleting the Function and FunctionRun resources of the namespace, and the
//! Events about a Function: what `faas list`, `describe`, `delete` and `runs` show.

use faas_api::{Function, FunctionRun};
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use super::condition;
use crate::backend::{Event, FunctionRow};
use crate::target::{Cluster, explain};

/// Every Function of the namespace.
pub async fn list(cluster: &Cluster) -> anyhow::Result<Vec<Function>> {
    Ok(cluster
        .functions()
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, &format!("listing Functions in {}", cluster.namespace)))?
        .items)
}

/// A Function as a row of `faas list`.
pub fn row(function: &Function) -> FunctionRow {
    let status = function.status.as_ref();
    let ready = condition(function, "Ready");
    let limits = function.spec.limits().ok();
    FunctionRow {
        name: function.metadata.name.clone().unwrap_or_else(|| "-".into()),
        state: match ready.map(|c| c.status.as_str()) {
            Some("True") if condition(function, "Degraded").is_some_and(|c| c.status == "True") => {
                "Degraded".into()
            }
            Some("True") => "Ready".into(),
            Some("False") => "NotReady".into(),
            _ => "Unknown".into(),
        },
        kind: status.and_then(|s| s.runtime.clone()),
        replicas: Some(format!(
            "{}/{}",
            status.and_then(|s| s.ready_replicas).unwrap_or(0),
            status.and_then(|s| s.replicas).unwrap_or(0)
        )),
        timeout: limits.map(|l| humantime::format_duration(l.timeout).to_string()),
        memory: limits.map(|l| faas_api::limits::format_bytes(l.memory_bytes)),
        sha256: function
            .spec
            .runtime
            .wasm
            .as_ref()
            .and_then(|w| w.sha256.as_deref())
            .map(|s| s.chars().take(12).collect()),
        url: status.and_then(|s| s.url.clone()),
        reason: ready
            .filter(|c| c.status != "True")
            .map(|c| c.reason.clone().unwrap_or_else(|| "-".into())),
    }
}

/// The Function's last `last` Events, oldest first (none when there are none or they cannot
/// be read: they only ever decorate another answer).
pub async fn events(cluster: &Cluster, name: &str, last: usize) -> Vec<Event> {
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let selector = format!("involvedObject.kind=Function,involvedObject.name={name}");
    let Ok(list) = events.list(&ListParams::default().fields(&selector)).await else {
        return Vec::new();
    };
    let mut items = list.items;
    items.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
    });
    let skip = items.len().saturating_sub(last);
    items
        .split_off(skip)
        .into_iter()
        .map(|e| Event {
            kind: e.type_.unwrap_or_else(|| "Normal".into()),
            reason: e.reason.unwrap_or_else(|| "-".into()),
            message: e.message.unwrap_or_default().trim().to_owned(),
        })
        .collect()
}

/// One Function, or an error naming the namespace and how to look.
pub async fn get(cluster: &Cluster, name: &str) -> anyhow::Result<Function> {
    cluster
        .functions()
        .get_opt(name)
        .await
        .map_err(|e| explain(e, &format!("reading Function {name}")))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "Function {name} not found in namespace {} (context {}); hint: `faas list` shows what is there",
                cluster.namespace,
                cluster.context
            )
        })
}

/// Deletes a Function (in the foreground: its owned objects go first).
pub async fn delete(cluster: &Cluster, name: &str) -> anyhow::Result<()> {
    match cluster
        .functions()
        .delete(name, &DeleteParams::foreground())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => anyhow::bail!(
            "Function {name} not found in namespace {}; nothing deleted",
            cluster.namespace
        ),
        Err(e) => Err(explain(e, &format!("deleting Function {name}"))),
    }
}

/// Runs of the namespace (of one function, schedule or phase), newest first.
pub async fn runs(
    cluster: &Cluster,
    function: Option<&str>,
    schedule: Option<&str>,
    phase: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<FunctionRun>> {
    let runs: Api<FunctionRun> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut params = ListParams::default();
    if let Some(function) = function {
        params = params.labels(&format!("faas.dev/function={function}"));
    }
    let mut items = runs
        .list(&params)
        .await
        .map_err(|e| explain(e, "listing FunctionRuns"))?
        .items;
    items.retain(|run| {
        schedule.is_none_or(|s| run.spec.schedule == s)
            && phase.is_none_or(|p| {
                run.status
                    .as_ref()
                    .is_some_and(|st| st.phase.as_str().eq_ignore_ascii_case(p))
            })
    });
    items.sort_by_key(|run| std::cmp::Reverse(created(run)));
    items.truncate(limit);
    Ok(items)
}

fn created(run: &FunctionRun) -> Option<jiff::Timestamp> {
    run.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// One FunctionRun, or an error saying where it was looked for.
pub async fn run(cluster: &Cluster, id: &str) -> anyhow::Result<FunctionRun> {
    let runs: Api<FunctionRun> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    runs.get_opt(id)
        .await
        .map_err(|e| explain(e, &format!("reading FunctionRun {id}")))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "run {id} not found in namespace {}; hint: `faas runs` lists them (history is pruned per schedule)",
                cluster.namespace
            )
        })
}
