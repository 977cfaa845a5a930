//! The real controller loop (`reconcile::run`: watches, queue, finalizer, reconcile) against
//! a small in-process API server fake that serves only what the loop needs: list and watch of
//! Functions and Deployments, and the Function patches. It proves the wiring: a Function that
//! appears in the list is picked up and gets the finalizer, without anyone calling
//! `reconcile` by hand. Everything finer is in `reconcile.rs`, request by request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use faas_controller::metrics::Metrics;
use faas_controller::reconcile::{self, Context};
use faas_controller::render::ClusterDefaults;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};
use tokio::sync::mpsc;

type FakeBody = UnsyncBoxBody<Bytes, Infallible>;

fn json_body(value: &Value) -> FakeBody {
    Full::new(Bytes::from(serde_json::to_vec(value).unwrap()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A watch that stays open and says nothing (its sender is kept by the fake).
fn open_watch(open: &Mutex<Vec<mpsc::Sender<Bytes>>>) -> FakeBody {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    open.lock().unwrap().push(tx);
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    StreamBody::new(frames).boxed_unsync()
}

fn function() -> Value {
    json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": "orders", "namespace": "shop", "uid": "0f0f0f0f-0000-4000-8000-00000000000a",
                     "resourceVersion": "1", "generation": 1},
        "spec": {"runtime": {"container": {"image": "r.example.com/orders:1", "port": 8000}}}
    })
}

#[tokio::test]
async fn a_listed_function_is_picked_up_by_the_loop_and_gets_the_finalizer() {
    let open = Arc::new(Mutex::new(Vec::new()));
    let (writes, mut written) = mpsc::unbounded_channel::<(String, Value)>();
    let service = tower::service_fn({
        let open = Arc::clone(&open);
        move |request: Request<Body>| {
            let open = Arc::clone(&open);
            let writes = writes.clone();
            async move {
                let method = request.method().clone();
                let uri = request.uri().to_string();
                let path = request.uri().path().to_owned();
                let watching = uri.contains("watch=true");
                let body = request
                    .into_body()
                    .collect_bytes()
                    .await
                    .unwrap_or_default();
                let answer = match (method.as_str(), path.as_str()) {
                    ("GET", _) if watching => open_watch(&open),
                    ("GET", "/apis/faas.dev/v1alpha1/functions") => json_body(&json!({
                        "apiVersion": "faas.dev/v1alpha1", "kind": "FunctionList",
                        "metadata": {"resourceVersion": "1"}, "items": [function()]
                    })),
                    ("GET", "/apis/apps/v1/deployments") => json_body(&json!({
                        "apiVersion": "apps/v1", "kind": "DeploymentList",
                        "metadata": {"resourceVersion": "1"}, "items": []
                    })),
                    (_, _) => {
                        let sent = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let _ = writes.send((format!("{method} {uri}"), sent));
                        let mut stored = function();
                        stored["metadata"]["finalizers"] = json!(["faas.dev/cleanup"]);
                        json_body(&stored)
                    }
                };
                Ok::<_, Infallible>(Response::new(answer))
            }
        }
    });
    let client = Client::new(service, "default");
    let ctx = Arc::new(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "faas-controller".into(),
                instance: None,
            },
        ),
        client,
        defaults: ClusterDefaults::default(),
        keda: false,
        public_url: None,
        metrics: Metrics::new().unwrap(),
        routing: Default::default(),
        functions: None,
        platform_token: None,
    });
    let running = tokio::spawn(reconcile::run(ctx, None, false));

    let (request, body) = tokio::time::timeout(Duration::from_secs(10), written.recv())
        .await
        .expect("the loop wrote nothing within 10 s")
        .expect("fake gone");
    assert_eq!(
        request,
        "PATCH /apis/faas.dev/v1alpha1/namespaces/shop/functions/orders?"
    );
    assert_eq!(
        body,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["faas.dev/cleanup"]}
        ])
    );
    running.abort();
}
