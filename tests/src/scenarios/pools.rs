//! Runtime pools under failure and under a hostile member.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Cluster, answered, delete_pod, deploy_wasm, get, object, ready_pods, until};

/// Two pool pods serve a WASM function under steady traffic; one is deleted at once (as a
/// lost spot node takes it). The gateway moves to the other: only the requests in flight on
/// the dead pod fail, and every request after its endpoint turns not-ready succeeds.
pub async fn a_killed_pool_pod_costs_only_its_requests_in_flight<C: Cluster>(c: &C) {
    let (public, _) = super::gateway(c).await;
    deploy_wasm(c, "hello", "hello", &[]);
    let team = c.team();
    let two = super::has_ready_pods(c, team, "pool-default", 2, Duration::from_secs(30)).await;
    if !c.meets(two, "two ready pool pods (runtime.pools.replicas: 2)") {
        return;
    }
    let url = format!("{public}/function/hello/x");
    answered(c, "hello answers", &url).await;

    const CLIENTS: usize = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at = Arc::new(Mutex::new(None::<Instant>));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, stop, killed_at) = (url.clone(), stop.clone(), killed_at.clone());
            tokio::spawn(async move {
                // (status, whether the request started after the kill)
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let after = killed_at.lock().expect("not poisoned").is_some();
                    seen.push((get(&url).await.0, after));
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let victim = ready_pods(c, team, "pool-default").await[0].clone();
    *killed_at.lock().expect("not poisoned") = Some(Instant::now());
    delete_pod(c, team, &victim).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for client in clients {
        seen.extend(client.await.expect("a client ran"));
    }
    let after: Vec<u16> = seen.iter().filter(|(_, a)| *a).map(|(s, _)| *s).collect();
    let failed = seen.iter().filter(|(s, _)| *s != 200).count();
    eprintln!(
        "{} requests, {} after the kill, {failed} failed: {:?}",
        seen.len(),
        after.len(),
        seen.iter().filter(|(s, _)| *s != 200).collect::<Vec<_>>()
    );
    // At most one request in flight per client on the dead pod, plus one per client on a
    // kept-alive connection to it that the kill left idle.
    assert!(failed <= 2 * CLIENTS, "{failed} failed");
    assert!(after.len() > 2 * CLIENTS, "traffic went on: {after:?}");
    assert!(
        after.iter().rev().take(CLIENTS * 2).all(|s| *s == 200),
        "the last requests all succeed: {after:?}"
    );
}

/// A tenant labels its Function into another pool: in one namespace, a function placed in a
/// pool of its own (`spec.placement.pool`) has its author set the pool label
/// (`faas.dev/pool: default`) to have its code run in the pods of the default pool beside
/// another function. The default pool's pods never load it (their key is not its key), the
/// controller puts the label back, and the gateway keeps sending its requests to its own pool.
pub async fn a_function_labelled_into_another_pool_is_not_loaded_there<C: Cluster>(c: &C) {
    let (public, _) = super::gateway(c).await;
    let team = c.team();
    deploy_wasm(c, "hello", "hello", &[]);
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::copy(crate::guest("hello"), dir.path().join("hello.wasm")).expect("copy the guest");
    super::deploy(
        c,
        dir.path(),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: intruder}\nspec:\n  \
         runtime:\n    wasm: {source: hello.wasm}\n  placement: {pool: apart}\n",
        &[],
    );
    let own_pool = object(c, "faas.dev", "functions", team, "intruder")
        .await
        .and_then(|f| f["status"]["pool"].as_str().map(str::to_owned))
        .expect("its pool in its status");
    assert_eq!(own_pool, "apart", "a pool of its own");
    let default_pod = ready_pods(c, team, "pool-default").await[0].clone();

    // The author's move: the pool label, as any edit of the Function can set it.
    let functions: kube::Api<faas_api::Function> = kube::Api::namespaced(c.client(), team);
    functions
        .patch(
            "intruder",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"faas.dev/pool": "default"}}})),
        )
        .await
        .expect("the author may edit its Function");
    // The default pool's pod sees it (its watch is on that label) and refuses it, saying why;
    // it serves hello alone.
    let log = until(
        c,
        "the default pool's pod decides",
        Duration::from_secs(30),
        || async {
            let log =
                super::pod_log(c, team, &default_pod, faas_api::contract::POOL_CONTAINER).await;
            log.contains("\"function\":\"intruder\"").then_some(log)
        },
    )
    .await;
    assert!(log.contains("not a member of pool default"), "{log}");
    assert!(
        !log.contains("\"message\":\"function loaded\",\"function\":\"intruder\""),
        "{log}"
    );
    let default_url = c.reach(team, &default_pod, 8080).await;
    let (status, listed) = get(&format!("{default_url}/system/functions")).await;
    assert_eq!(status, 200, "{listed}");
    assert!(
        !listed.contains("intruder"),
        "loaded beside hello: {listed}"
    );
    until(
        c,
        "the controller puts its label back",
        Duration::from_secs(30),
        || async {
            let function = object(c, "faas.dev", "functions", team, "intruder").await?;
            (function["metadata"]["labels"]["faas.dev/pool"] == own_pool.as_str()).then_some(())
        },
    )
    .await;
    // Served by its own pool again, once its pod reloaded it: while the label named another
    // pool, its own pool's pod (whose watch is on its own label) dropped it, so the author's
    // move cost only the author a moment of 404s.
    let body = answered(
        c,
        "served by its own pool again",
        &format!("{public}/function/intruder/x"),
    )
    .await;
    assert_eq!(body, "Hello from faas: GET /x\n");
    let own_pods = ready_pods(c, team, &format!("pool-{own_pool}")).await;
    assert_eq!(own_pods.len(), 1, "{own_pool}");
}
