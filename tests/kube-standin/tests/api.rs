//! Requests through kube-rs clients against a started stand-in: objects, versions, conflicts,
//! patches, subresources, garbage collection, CRDs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{api_error, install_faas_crds};
use faas_kube_standin::ApiServer;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "data": {"k": "v"},
    }))
    .unwrap()
}

fn rv(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
    meta.resource_version.as_deref().unwrap().parse().unwrap()
}

#[tokio::test]
async fn config_map_crud() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "apps");
    let pp = PostParams::default();

    let created = api.create(&pp, &config_map("one", &[])).await.unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some("apps"));
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.metadata.uid.as_ref().map(String::len), Some(36));
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(rv(&created.metadata), server.resource_version());
    assert_eq!(
        api_error(api.create(&pp, &config_map("one", &[])).await),
        (409, "AlreadyExists".into())
    );

    let got = api.get("one").await.unwrap();
    assert_eq!(got, created);

    let mut changed = got.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = api.replace("one", &pp, &changed).await.unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["k"], "w");
    assert_eq!(replaced.metadata.generation, Some(2));
    assert!(rv(&replaced.metadata) > rv(&created.metadata));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    // A write that changes nothing makes no new version.
    let same = api.replace("one", &pp, &replaced).await.unwrap();
    assert_eq!(
        same.metadata.resource_version,
        replaced.metadata.resource_version
    );

    let mut generated = config_map("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let generated = api.create(&pp, &generated).await.unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let list = api.list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, vec![name.clone(), "one".to_string()]);
    assert_eq!(
        list.metadata.resource_version,
        Some(server.resource_version().to_string())
    );
    assert!(
        Api::<ConfigMap>::namespaced(server.client(), "other")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        Api::<ConfigMap>::all(server.client())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    api.delete("one", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(api.get("one").await), (404, "NotFound".into()));
    assert_eq!(
        api_error(api.delete("one", &DeleteParams::default()).await),
        (404, "NotFound".into())
    );
    assert_eq!(api_error(api.replace("one", &pp, &changed).await).0, 404);
    assert_eq!(server.objects("", "configmaps", Some("apps")).len(), 1);
    assert_eq!(server.requests()["create"], 3);
}

#[tokio::test]
async fn stale_lease_writes_conflict_and_exactly_one_racer_wins() {
    let server = ApiServer::start().await.unwrap();
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "nobody"}}),
    )
    .unwrap();
    Api::<Lease>::namespaced(server.client(), "ns")
        .create(&PostParams::default(), &lease)
        .await
        .unwrap();

    let mut racers = Vec::new();
    for who in ["a", "b"] {
        let api: Api<Lease> = Api::namespaced(server.client(), "ns");
        let mut mine = api.get("leader").await.unwrap();
        mine.spec.as_mut().unwrap().holder_identity = Some(who.to_string());
        racers.push((api, mine));
    }
    let pp = PostParams::default();
    let outcomes = futures::future::join_all(
        racers
            .iter()
            .map(|(api, mine)| api.replace("leader", &pp, mine)),
    )
    .await;
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let mut outcomes = outcomes.into_iter();
    let (won, lost): (Vec<_>, Vec<_>) = outcomes.by_ref().partition(Result::is_ok);
    assert_eq!(
        api_error(lost.into_iter().next().unwrap()),
        (409, "Conflict".into())
    );
    let holder = won
        .into_iter()
        .next()
        .unwrap()
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    let api: Api<Lease> = Api::namespaced(server.client(), "ns");
    let now = api.get("leader").await.unwrap();
    assert_eq!(now.spec.as_ref().unwrap().holder_identity, holder);

    // A patch carrying a stale version conflicts too; a current one succeeds.
    let stale = json!({"metadata": {"resourceVersion": "1"}, "spec": {"holderIdentity": "c"}});
    assert_eq!(
        api_error(
            api.patch("leader", &PatchParams::default(), &Patch::Merge(&stale))
                .await
        ),
        (409, "Conflict".into())
    );
    let current = json!({"metadata": {"resourceVersion": now.metadata.resource_version}, "spec": {"holderIdentity": "c"}});
    let patched = api
        .patch("leader", &PatchParams::default(), &Patch::Merge(&current))
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().holder_identity.as_deref(), Some("c"));
    // JSON patches: a failing test op is Invalid.
    let ops: json_patch::Patch = serde_json::from_value(
        json!([{"op": "test", "path": "/spec/holderIdentity", "value": "a"}]),
    )
    .unwrap();
    assert_eq!(
        api_error(
            api.patch("leader", &PatchParams::default(), &Patch::<()>::Json(ops))
                .await
        )
        .0,
        422
    );
}

#[tokio::test]
async fn apply_creates_then_merges() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "ns");
    let pp = PatchParams::apply("test").force();
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied", "labels": {"a": "1"}}, "data": {"x": "1"}});
    let created = api
        .patch("applied", &pp, &Patch::Apply(&first))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied", "labels": {"b": "2"}}, "data": {"y": "2"}});
    let merged = api
        .patch("applied", &pp, &Patch::Apply(&second))
        .await
        .unwrap();
    assert_eq!(
        merged.metadata.labels,
        Some([("a".into(), "1".into()), ("b".into(), "2".into())].into())
    );
    assert_eq!(
        merged.data,
        Some([("x".into(), "1".into()), ("y".into(), "2".into())].into())
    );
    assert_eq!(merged.metadata.generation, Some(2));
    assert_eq!(merged.metadata.uid, created.metadata.uid);
    // Applying the same again is a no-op: same version.
    let again = api
        .patch("applied", &pp, &Patch::Apply(&second))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        merged.metadata.resource_version
    );
    // Non-apply patches of a missing object are 404.
    assert_eq!(
        api_error(
            api.patch("missing", &PatchParams::default(), &Patch::Merge(&second))
                .await
        )
        .0,
        404
    );
}

fn function_api(server: &ApiServer, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("faas.dev", "v1alpha1", "Function");
    Api::namespaced_with(
        server.client(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "functions"),
    )
}

#[tokio::test]
async fn function_status_subresource() {
    let server = ApiServer::start().await.unwrap();
    assert_eq!(
        api_error(
            function_api(&server, "ns")
                .list(&ListParams::default())
                .await
        ),
        (404, "NotFound".into())
    );
    install_faas_crds(&server.client()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let crd = crds.get("functions.faas.dev").await.unwrap();
    let conditions = crd.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let api = function_api(&server, "ns");
    let function: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": {"artifact": "a.wasm"},
        "status": {"url": "ignored on create"},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &function).await.unwrap();
    assert_eq!(created.data.get("status"), None);
    assert_eq!(created.metadata.generation, Some(1));

    let status = json!({"status": {"url": "http://hello", "readyReplicas": 1}});
    let with_status = api
        .patch_status("hello", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(with_status.data["status"], status["status"]);
    assert_eq!(
        with_status.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );

    // A status write ignores everything else.
    let sneaky = json!({"spec": {"artifact": "b.wasm"}, "status": {"url": "http://other"}});
    let after = api
        .patch_status("hello", &PatchParams::default(), &Patch::Merge(&sneaky))
        .await
        .unwrap();
    assert_eq!(after.data["spec"]["artifact"], "a.wasm");
    assert_eq!(after.data["status"]["url"], "http://other");

    // A main write ignores status, and a spec change bumps generation.
    let mut replaced = after.clone();
    replaced.data["spec"]["artifact"] = json!("c.wasm");
    replaced.data["status"] = json!({"url": "nope"});
    let replaced = api
        .replace("hello", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(replaced.data["spec"]["artifact"], "c.wasm");
    assert_eq!(replaced.data["status"]["url"], "http://other");
    assert_eq!(replaced.metadata.generation, Some(2));
    // Metadata-only changes do not.
    let labelled = api
        .patch(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));
    let got = api.get_status("hello").await.unwrap();
    assert_eq!(got.data["status"]["url"], "http://other");
}

#[tokio::test]
async fn deployment_scale() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(server.client(), "ns");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}}},
    }))
    .unwrap();
    let created = api
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    assert_eq!(created.spec.replicas, Some(1), "defaulted");

    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(scale.status.as_ref().unwrap().replicas, 0);
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );
    assert_eq!(
        scale.metadata.resource_version,
        created.metadata.resource_version
    );

    let patched = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(4));
    let after = api.get("web").await.unwrap();
    assert_eq!(after.spec.replicas, Some(4));
    assert_eq!(after.metadata.generation, Some(2));

    // The old Scale's version is stale now.
    let mut stale = scale.clone();
    stale.spec.as_mut().unwrap().replicas = Some(7);
    assert_eq!(
        api_error(
            api.replace_scale("web", &PostParams::default(), &stale)
                .await
        ),
        (409, "Conflict".into())
    );
    let mut fresh = api.get_scale("web").await.unwrap();
    fresh.spec.as_mut().unwrap().replicas = Some(0);
    assert_eq!(
        api.replace_scale("web", &PostParams::default(), &fresh)
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(0)
    );

    // Status via /status only.
    let status = json!({"status": {"replicas": 3, "readyReplicas": 3}});
    api.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(
        api.get_scale("web").await.unwrap().status.unwrap().replicas,
        3
    );
    let ignored = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.status.unwrap().replicas, Some(3));
    // Config maps have no scale.
    assert_eq!(
        api_error(
            Api::<ConfigMap>::namespaced(server.client(), "ns")
                .get_scale("web")
                .await
        )
        .0,
        404
    );
}

#[tokio::test]
async fn label_and_field_selectors_on_list() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "ns");
    for (name, labels) in [
        ("a", vec![("app", "web"), ("tier", "front")]),
        ("b", vec![("app", "db")]),
        ("c", vec![]),
    ] {
        api.create(&PostParams::default(), &config_map(name, &labels))
            .await
            .unwrap();
    }
    let names = |selector: &'static str, fields: &'static str| {
        let api = api.clone();
        async move {
            let mut lp = ListParams::default();
            if !selector.is_empty() {
                lp = lp.labels(selector);
            }
            if !fields.is_empty() {
                lp = lp.fields(fields);
            }
            api.list(&lp).await.map(|l| {
                l.items
                    .into_iter()
                    .map(|c| c.metadata.name.unwrap())
                    .collect::<Vec<_>>()
            })
        }
    };
    assert_eq!(names("app=web", "").await.unwrap(), ["a"]);
    assert_eq!(names("app==db", "").await.unwrap(), ["b"]);
    assert_eq!(names("app!=web", "").await.unwrap(), ["b", "c"]);
    assert_eq!(names("app in (web,db)", "").await.unwrap(), ["a", "b"]);
    assert_eq!(names("app notin (web)", "").await.unwrap(), ["b", "c"]);
    assert_eq!(names("tier", "").await.unwrap(), ["a"]);
    assert_eq!(names("!app", "").await.unwrap(), ["c"]);
    assert_eq!(names("app,!tier", "").await.unwrap(), ["b"]);
    assert_eq!(names("", "metadata.name=b").await.unwrap(), ["b"]);
    assert_eq!(
        names("", "metadata.name!=b,metadata.namespace=ns")
            .await
            .unwrap(),
        ["a", "c"]
    );
    assert_eq!(
        names("", "metadata.namespace=other").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(api_error(names("app in web", "").await).0, 400);
}

#[tokio::test]
async fn garbage_collection_follows_owner_references() {
    let server = ApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "ns");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "ns");
    let pp = PostParams::default();
    let owner_ref = |o: &ConfigMap| json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name, "uid": o.metadata.uid, "controller": true}]);
    let secret = |name: &str, refs: serde_json::Value| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": refs}}))
            .unwrap()
    };

    let owner = cms.create(&pp, &config_map("owner", &[])).await.unwrap();
    let child = cms
        .create(
            &pp,
            &serde_json::from_value(
                json!({"metadata": {"name": "child", "ownerReferences": owner_ref(&owner)}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    secrets
        .create(&pp, &secret("grandchild", owner_ref(&child)))
        .await
        .unwrap();
    let other = cms
        .create(&pp, &config_map("other-owner", &[]))
        .await
        .unwrap();
    let mut two_owners = owner_ref(&owner);
    two_owners
        .as_array_mut()
        .unwrap()
        .extend(owner_ref(&other).as_array().unwrap().clone());
    secrets
        .create(&pp, &secret("shared", two_owners))
        .await
        .unwrap();
    secrets
        .create(&pp, &secret("unrelated", json!([])))
        .await
        .unwrap();

    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert_eq!(api_error(cms.get("child").await).0, 404);
    assert_eq!(api_error(secrets.get("grandchild").await).0, 404);
    let shared = secrets.get("shared").await.unwrap();
    let refs = shared.metadata.owner_references.unwrap();
    assert_eq!(
        refs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["other-owner"],
        "only the live owner's reference stays"
    );
    secrets.get("unrelated").await.unwrap();

    // Orphan: the dependent stays without the reference.
    cms.delete("other-owner", &DeleteParams::orphan())
        .await
        .unwrap();
    assert_eq!(
        secrets
            .get("shared")
            .await
            .unwrap()
            .metadata
            .owner_references
            .unwrap_or_default(),
        vec![]
    );

    // Finalizers hold an object (and its GC) until emptied.
    let held = cms
        .create(
            &pp,
            &serde_json::from_value(
                json!({"metadata": {"name": "held", "finalizers": ["faas.dev/cleanup"]}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    secrets
        .create(&pp, &secret("held-child", owner_ref(&held)))
        .await
        .unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = cms.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    secrets.get("held-child").await.unwrap();
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("held").await).0, 404);
    assert_eq!(api_error(secrets.get("held-child").await).0, 404);
}

#[tokio::test]
async fn unknown_resources_until_their_crd_exists() {
    let server = ApiServer::start().await.unwrap();
    let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "scaledobjects");
    let api: Api<DynamicObject> = Api::namespaced_with(server.client(), "ns", &resource);
    assert_eq!(
        api_error(api.list(&ListParams::default()).await),
        (404, "NotFound".into())
    );

    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "scaledobjects.keda.sh"},
        "spec": {
            "group": "keda.sh", "scope": "Namespaced",
            "names": {"plural": "scaledobjects", "singular": "scaledobject", "kind": "ScaledObject"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                          "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}}],
        },
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let object: DynamicObject = serde_json::from_value(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "so"}, "spec": {"replicas": 2}})).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let scale = api.get_scale("so").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));

    crds.delete("scaledobjects.keda.sh", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(api.list(&ListParams::default()).await).0, 404);
    assert!(server.objects("keda.sh", "scaledobjects", None).is_empty());
}

#[tokio::test]
async fn token_requests() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ServiceAccount> = Api::namespaced(server.client(), "ns");
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": ["faas"], "expirationSeconds": 3600}}))
            .unwrap();
    let body = serde_json::to_vec(&request).unwrap();
    let missing: Result<TokenRequest, _> = api
        .create_subresource("token", "runner", &PostParams::default(), &body)
        .await;
    assert_eq!(api_error(missing).0, 404);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "runner"}})).unwrap();
    api.create(&PostParams::default(), &account).await.unwrap();
    let answer: TokenRequest = api
        .create_subresource("token", "runner", &PostParams::default(), &body)
        .await
        .unwrap();
    let status = answer.status.unwrap();
    assert_eq!(status.token.unwrap().split('.').count(), 3);
    let expires = status.expiration_timestamp.unwrap().0;
    let in_an_hour = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600);
    assert!(
        in_an_hour.duration_since(expires).abs() < jiff::SignedDuration::from_secs(5),
        "{expires}"
    );
}

#[tokio::test]
async fn kubeconfig_clients_share_state() {
    let server = ApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "team-a").unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "team-a");
    assert_eq!(config.cluster_url.to_string(), format!("{}/", server.url()));
    let client = kube::Client::try_from(config).unwrap();
    Api::<ConfigMap>::default_namespaced(client)
        .create(&PostParams::default(), &config_map("shared", &[]))
        .await
        .unwrap();
    let seen = Api::<ConfigMap>::namespaced(server.client(), "team-a")
        .get("shared")
        .await
        .unwrap();
    assert_eq!(seen.metadata.name.as_deref(), Some("shared"));
    assert_eq!(
        server.object("", "configmaps", "team-a", "shared").unwrap()["data"]["k"],
        "v"
    );
    let version = server.client().apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn pod_logs_are_read_from_the_log_source_with_the_kubelets_parameters() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::LogParams;
    let server = ApiServer::start().await.unwrap();
    server.serve_logs(std::sync::Arc::new(|namespace, pod, container| {
        (namespace == "apps" && pod == "web-1" && container == "app").then(|| {
            "2026-12-06T07:00:00.100000000Z one\n2026-12-06T07:00:01.200000000Z two\n\
             2026-12-06T07:00:02.300000000Z three\n"
                .to_string()
        })
    }));
    let pods: Api<Pod> = Api::namespaced(server.client(), "apps");
    let pod = |containers: &[&str]| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": containers.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()},
        }))
        .unwrap()
    };
    assert_eq!(
        api_error(pods.logs("web-1", &LogParams::default()).await),
        (404, "NotFound".into()),
        "no such pod"
    );
    pods.create(&PostParams::default(), &pod(&["app", "sidecar"]))
        .await
        .unwrap();
    // Two containers: the container must be named, and must be one of them.
    let (code, _) = api_error(pods.logs("web-1", &LogParams::default()).await);
    assert_eq!(code, 400);
    let named = |container: &str| LogParams {
        container: Some(container.into()),
        ..LogParams::default()
    };
    assert_eq!(api_error(pods.logs("web-1", &named("db")).await).0, 400);
    assert_eq!(
        pods.logs("web-1", &named("app")).await.unwrap(),
        "one\ntwo\nthree\n"
    );
    assert_eq!(pods.logs("web-1", &named("sidecar")).await.unwrap(), "");
    let since = LogParams {
        since_time: Some("2026-12-06T07:00:01Z".parse().unwrap()),
        timestamps: true,
        ..named("app")
    };
    assert_eq!(
        pods.logs("web-1", &since).await.unwrap(),
        "2026-12-06T07:00:01.200000000Z two\n2026-12-06T07:00:02.300000000Z three\n"
    );
    let tail = LogParams {
        tail_lines: Some(1),
        ..named("app")
    };
    assert_eq!(pods.logs("web-1", &tail).await.unwrap(), "three\n");
    let limited = LogParams {
        limit_bytes: Some(6),
        ..named("app")
    };
    assert_eq!(pods.logs("web-1", &limited).await.unwrap(), "one\ntw");
    let previous = LogParams {
        previous: true,
        ..named("app")
    };
    assert_eq!(api_error(pods.logs("web-1", &previous).await).0, 400);
}
