//! Watches through kube-rs: raw watch events with selectors, replay and 410 from a
//! resourceVersion, and `kube::runtime::watcher` (ListWatch and streaming list), relisting
//! after 410.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::soon;
use faas_kube_standin::{ApiServer, Config};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;

fn config_map(name: &str, app: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}})).unwrap()
}

/// `TYPE name` of a watch event.
fn describe(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.as_deref().unwrap()),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.as_deref().unwrap()),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.as_deref().unwrap()),
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {} {}", e.code, e.reason),
    }
}

#[tokio::test]
async fn watch_applies_selectors_to_events() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "ns");
    let pp = PostParams::default();
    api.create(&pp, &config_map("before", "web")).await.unwrap();
    api.create(&pp, &config_map("other", "db")).await.unwrap();

    let mut events = api
        .watch(&WatchParams::default().labels("app=web"), "0")
        .await
        .unwrap()
        .boxed();
    let mut next = async || describe(&soon(events.try_next()).await.unwrap().unwrap());
    assert_eq!(next().await, "ADDED before", "the current state first");
    api.create(&pp, &config_map("new", "web")).await.unwrap();
    api.create(&pp, &config_map("ignored", "db")).await.unwrap();
    assert_eq!(next().await, "ADDED new");
    let relabel = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    api.patch("new", &PatchParams::default(), &relabel("db"))
        .await
        .unwrap();
    assert_eq!(next().await, "DELETED new", "leaving the selection");
    api.patch("other", &PatchParams::default(), &relabel("web"))
        .await
        .unwrap();
    assert_eq!(next().await, "ADDED other", "entering it");
    api.patch(
        "other",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    assert_eq!(next().await, "MODIFIED other");
    api.delete("other", &DeleteParams::default()).await.unwrap();
    assert_eq!(next().await, "DELETED other");
    // Other namespaces are not in a namespaced watch.
    Api::<ConfigMap>::namespaced(server.client(), "elsewhere")
        .create(&pp, &config_map("far", "web"))
        .await
        .unwrap();
    api.create(&pp, &config_map("last", "web")).await.unwrap();
    assert_eq!(next().await, "ADDED last");
}

#[tokio::test]
async fn watch_from_a_version_replays_or_is_gone() {
    let server = ApiServer::start_with(Config {
        history: 4,
        ..Config::default()
    })
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "ns");
    let pp = PostParams::default();
    api.create(&pp, &config_map("a", "x")).await.unwrap();
    let listed = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.create(&pp, &config_map("b", "x")).await.unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();

    let replayed = events_since(&api, &listed).await;
    assert_eq!(replayed, ["ADDED b", "MODIFIED a"]);

    for i in 0..5 {
        let lease: Lease =
            serde_json::from_value(json!({"metadata": {"name": format!("l{i}")}})).unwrap();
        Api::<Lease>::namespaced(server.client(), "ns")
            .create(&pp, &lease)
            .await
            .unwrap();
    }
    let gone = events_since(&api, &listed).await;
    assert_eq!(gone, ["ERROR 410 Expired"]);
}

/// What a watch of `api` from `version` sees within a second, each [`describe`]d.
async fn events_since(api: &Api<ConfigMap>, version: &str) -> Vec<String> {
    api.watch(&WatchParams::default().timeout(1), version)
        .await
        .unwrap()
        .map(|e| describe(&e.unwrap()))
        .collect()
        .await
}

/// The watcher's events as `Kind name` strings.
fn describe_watcher(event: &watcher::Event<ConfigMap>) -> String {
    let name = |o: &ConfigMap| o.metadata.name.clone().unwrap();
    match event {
        watcher::Event::Init => "Init".into(),
        watcher::Event::InitApply(o) => format!("InitApply {}", name(o)),
        watcher::Event::InitDone => "InitDone".into(),
        watcher::Event::Apply(o) => format!("Apply {}", name(o)),
        watcher::Event::Delete(o) => format!("Delete {}", name(o)),
    }
}

async fn watcher_sees_changes(config: watcher::Config, lists: Option<u64>) {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "ns");
    let pp = PostParams::default();
    api.create(&pp, &config_map("first", "x")).await.unwrap();
    let mut events = watcher(api.clone(), config).boxed();
    let mut next = async || describe_watcher(&soon(events.try_next()).await.unwrap().unwrap());
    assert_eq!(next().await, "Init");
    assert_eq!(next().await, "InitApply first");
    assert_eq!(next().await, "InitDone");
    api.create(&pp, &config_map("second", "x")).await.unwrap();
    assert_eq!(next().await, "Apply second");
    api.patch(
        "first",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    assert_eq!(next().await, "Apply first");
    api.delete("second", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(next().await, "Delete second");
    assert_eq!(server.requests().get("list").copied(), lists);
}

#[tokio::test]
async fn runtime_watcher_list_watch() {
    watcher_sees_changes(watcher::Config::default(), Some(1)).await;
}

#[tokio::test]
async fn runtime_watcher_streaming_list() {
    watcher_sees_changes(watcher::Config::default().streaming_lists(), None).await;
}

#[tokio::test]
async fn runtime_watcher_relists_after_gone() {
    // Two changes of history, no bookmarks to move the watcher's version along.
    let config = Config {
        history: 2,
        bookmark_interval: Duration::from_secs(3600),
        ..Config::default()
    };
    let server = ApiServer::start_with(config).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "ns");
    let pp = PostParams::default();
    api.create(&pp, &config_map("first", "x")).await.unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default().timeout(1)).boxed();
    let mut next = async || {
        soon(events.next())
            .await
            .unwrap()
            .map(|e| describe_watcher(&e))
            .map_err(|e| e.to_string())
    };
    assert_eq!(next().await, Ok("Init".into()));
    assert_eq!(next().await, Ok("InitApply first".into()));
    assert_eq!(next().await, Ok("InitDone".into()));
    // Changes elsewhere push the watcher's version out of the history; when its watch times
    // out, resuming from it is 410 Gone and the watcher lists again.
    for i in 0..3 {
        let lease: Lease =
            serde_json::from_value(json!({"metadata": {"name": format!("l{i}")}})).unwrap();
        Api::<Lease>::namespaced(server.client(), "ns")
            .create(&pp, &lease)
            .await
            .unwrap();
    }
    let gone = next().await.expect_err("a watch error");
    assert!(gone.contains("410") || gone.contains("Expired"), "{gone}");
    assert_eq!(next().await, Ok("Init".into()));
    assert_eq!(next().await, Ok("InitApply first".into()));
    assert_eq!(next().await, Ok("InitDone".into()));
    assert_eq!(server.requests()["list"], 2);
}

#[tokio::test]
async fn a_slow_watcher_is_cut_off_without_blocking_writers() {
    let server = ApiServer::start_with(Config {
        watch_buffer: 8,
        ..Config::default()
    })
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "ns");
    let stalled = api.watch(&WatchParams::default(), "0").await.unwrap();
    let big = "x".repeat(32 << 10);
    let writes = async {
        for i in 0..300 {
            let cm: ConfigMap = serde_json::from_value(
                json!({"metadata": {"name": format!("c{i}")}, "data": {"big": big}}),
            )
            .unwrap();
            api.create(&PostParams::default(), &cm).await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(30), writes)
        .await
        .expect("writers are not held up by a stalled watch");
    let received = soon(stalled.count()).await;
    assert!(
        received < 300,
        "the stalled watch ended early, after {received} events"
    );
}
