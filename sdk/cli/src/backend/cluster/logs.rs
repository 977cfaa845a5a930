//! `faas logs NAME` against a cluster: the logs of the pods that run the function. A WASM
//! function shares its pool's pods with others, so only the lines about it are shown: the
//! pool logs JSON with a `function` field on every line a function causes.

use futures::{AsyncBufReadExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};

use crate::backend::LogOptions;
use crate::target::{Cluster, explain};

/// The function's log lines, from every pod that runs it, each handed to `sink`.
pub async fn logs_to(
    cluster: &Cluster,
    name: &str,
    options: &LogOptions,
    sink: &mut (dyn FnMut(String) -> anyhow::Result<()> + Send),
) -> anyhow::Result<()> {
    let function = super::read::get(cluster, name).await?;
    let pool = function.status.as_ref().and_then(|s| s.pool.clone());
    let (selector, container, only) = match &pool {
        Some(pool) => (
            format!("faas.dev/pool={pool}"),
            "faas-runtime",
            Some(name.to_owned()),
        ),
        None => (format!("faas.dev/function={name}"), "function", None),
    };
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| explain(e, &format!("listing the pods of {name}")))?;
    let names: Vec<String> = list
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    if names.is_empty() {
        anyhow::bail!(
            "{name} has no pods in namespace {} (selector {selector}); hint: `faas describe {name}` says why (scaled to zero, or not Ready)",
            cluster.namespace
        );
    }
    let params = LogParams {
        container: Some(container.to_owned()),
        follow: options.follow,
        since_seconds: options.since.map(|d| d.as_secs().max(1) as i64),
        tail_lines: options.tail,
        timestamps: false,
        ..LogParams::default()
    };
    let prefix = names.len() > 1;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    for pod in names {
        let pods = pods.clone();
        let params = params.clone();
        let tx = tx.clone();
        let only = only.clone();
        tokio::spawn(async move {
            let stream = match pods.log_stream(&pod, &params).await {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = tx.send(format!("[{pod}] cannot read logs: {e}")).await;
                    return;
                }
            };
            let mut lines = stream.lines();
            while let Ok(Some(line)) = lines.try_next().await {
                if only
                    .as_deref()
                    .is_some_and(|f| !mentions_function(&line, f))
                {
                    continue;
                }
                let line = if prefix {
                    format!("[{pod}] {line}")
                } else {
                    line
                };
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    while let Some(line) = rx.recv().await {
        sink(line)?;
    }
    Ok(())
}

/// Whether a pool log line is about function `name`: a JSON line with `"function": name` at
/// any depth (fields or spans), or a text line with `function=name`.
pub fn mentions_function(line: &str, name: &str) -> bool {
    fn walk(value: &serde_json::Value, name: &str) -> bool {
        match value {
            serde_json::Value::Object(map) => map
                .iter()
                .any(|(k, v)| (k == "function" && v.as_str() == Some(name)) || walk(v, name)),
            serde_json::Value::Array(items) => items.iter().any(|v| walk(v, name)),
            _ => false,
        }
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(value) => walk(&value, name),
        Err(_) => line
            .split(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',')
            .any(|word| word == format!("function={name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::mentions_function;

    #[test]
    fn pool_lines_are_picked_by_function() {
        let json = r#"{"timestamp":"t","level":"INFO","fields":{"message":"called"},"span":{"function":"hello","name":"call"}}"#;
        assert!(mentions_function(json, "hello"));
        assert!(!mentions_function(json, "hell"));
        assert!(!mentions_function(
            r#"{"fields":{"message":"function hello"}}"#,
            "hello"
        ));
        assert!(mentions_function(
            "2026 INFO call{function=hello}: done",
            "hello"
        ));
        assert!(!mentions_function(
            "2026 INFO call{function=hello-2}: done",
            "hello"
        ));
    }
}
