//! `faas invoke NAME` against a cluster: through the function's public URL when it has one,
//! else through a port-forward to one of its ready pods (as `kubectl port-forward` does),
//! so that a private function can be called from a laptop with nothing but RBAC.

use anyhow::Context as _;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::client::{Gateway, Reply};
use crate::commands::invoke::Call;
use crate::target::{Cluster, explain};

/// Calls the function and reads the whole answer.
pub async fn call_function(cluster: &Cluster, name: &str, call: &Call) -> anyhow::Result<Reply> {
    let function = super::read::get(cluster, name).await?;
    // An event `faas invoke` delivers as the platform would (`faas events`) says so in the
    // platform's headers, which the gateway's public listener removes from every client's
    // request: it goes through a port-forward, where RBAC is the caller's credential.
    let as_platform = call
        .headers
        .iter()
        .any(|(k, _)| faas_api::contract::is_platform_header(&k.to_ascii_lowercase()));
    let url = function
        .status
        .as_ref()
        .and_then(|s| s.url.as_deref())
        .filter(|_| !as_platform);
    if call.asynchronous && as_platform {
        anyhow::bail!(
            "{name}: an event delivered as the platform delivers it cannot be queued: asynchronous calls go through the gateway's public listener, which accepts no platform headers; hint: drop --async, or send -d as a plain body with --raw"
        );
    }
    // Through the function's URL: queued by the gateway that serves it (`--async`), or called.
    let public = if call.asynchronous {
        let Some(url) = url.and_then(|u| async_url(u, name)) else {
            anyhow::bail!(
                "{name} has no public URL, and asynchronous calls go through the gateway that serves it; hint: call it without --async, or give it a route"
            );
        };
        Some((url, "queueing a call of"))
    } else {
        url.map(|u| (u.to_owned(), "calling"))
    };
    if let Some((url, doing)) = public {
        return Gateway::new(&url)?
            .send(
                call.method.clone(),
                &call.path,
                &call.headers,
                call.body.clone(),
            )
            .await
            .with_context(|| format!("{doing} {name} at {url}"));
    }
    let pool = function.status.as_ref().and_then(|s| s.pool.clone());
    let selector = match &pool {
        Some(pool) => format!("faas.dev/pool={pool}"),
        None => format!("faas.dev/function={name}"),
    };
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| explain(e, &format!("listing the pods of {name}")))?;
    let Some(pod) = list.items.into_iter().find(is_ready) else {
        anyhow::bail!(
            "{name} has no public URL and no ready pod to port-forward to (selector {selector}); hint: `faas describe {name}`"
        );
    };
    let (port, path) = entry_of(&pod, name, &call.path).with_context(|| {
        format!(
            "pod {} of {name} exposes no port to call",
            pod.metadata.name.as_deref().unwrap_or("-")
        )
    })?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    eprintln!(
        "faas: no public URL; calling {name} through a port-forward to pod {pod_name}:{port}"
    );
    let mut forwarder = pods
        .portforward(&pod_name, &[port])
        .await
        .map_err(|e| explain(e, &format!("port-forwarding to pod {pod_name}")))?;
    let stream = forwarder
        .take_stream(port)
        .context("the port-forward gave no stream")?;
    let reply = send_over(stream, call, &path).await?;
    drop(forwarder);
    Ok(reply)
}

/// The `/async-function/NAME` URL beside a function's `…/function/NAME` URL.
fn async_url(url: &str, name: &str) -> Option<String> {
    let base = url.strip_suffix(&format!("/function/{name}"))?;
    Some(format!("{base}/async-function/{name}"))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The port of the pod that serves the function and the path to ask it for: a pool pod and
/// the runtime sidecar route `/function/<name>/...`; a plain HTTP container is the function.
pub fn entry_of(pod: &Pod, name: &str, path: &str) -> Option<(u16, String)> {
    let spec = pod.spec.as_ref()?;
    let port_of = |container: &k8s_openapi::api::core::v1::Container, named: &str| {
        container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(named))
            .and_then(|p| u16::try_from(p.container_port).ok())
    };
    let routed = format!("/function/{name}{path}");
    let runtime = spec.containers.iter().find(|c| c.name == "faas-runtime");
    if let Some(port) = runtime.and_then(|c| port_of(c, "http")) {
        return Some((port, routed));
    }
    let sidecar = spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == "faas-runtime");
    if let Some(port) = sidecar.and_then(|c| port_of(c, "sidecar")) {
        return Some((port, routed));
    }
    let function = spec.containers.iter().find(|c| c.name == "function")?;
    let port = port_of(function, "http")?;
    Some((
        port,
        if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    ))
}

/// One HTTP/1.1 exchange over an already connected stream.
async fn send_over<S>(stream: S, call: &Call, path: &str) -> anyhow::Result<Reply>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake through the port-forward")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = http::Request::builder()
        .method(call.method.clone())
        .uri(path)
        .header(http::header::HOST, "localhost");
    for (k, v) in &call.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(Full::new(call.body.clone()))
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .context("calling through the port-forward")?;
    Reply::read(response).await
}
