//! Discovery documents (the legacy ones: `/api`, `/apis`, `/apis/{group}`, group versions) and
//! `/version`: enough for kubectl to find the resources.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::http::Route;
use crate::resources::{Resource, api_version};

fn verbs() -> Value {
    json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ])
}

pub(crate) fn discovery(shared: &Arc<Shared>, route: &Route) -> ApiResult<Value> {
    let store = shared.store();
    let registry = store.registry();
    let group_versions = |group: &str| -> Vec<String> {
        let mut versions: Vec<String> = Vec::new();
        for r in registry.all().iter().filter(|r| r.group == group) {
            for v in &r.versions {
                if !versions.contains(v) {
                    versions.push(v.clone());
                }
            }
        }
        versions
    };
    let api_group = |group: &str| {
        let versions = group_versions(group);
        let entries: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": api_version(group, v), "version": v}))
            .collect();
        json!({"name": group, "versions": entries, "preferredVersion": entries.first()})
    };
    Ok(match route {
        Route::Version => json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-standin", "gitCommit": "standin",
            "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "none",
            "compiler": "none", "platform": "linux/amd64",
        }),
        Route::Health => json!("ok"),
        Route::Api => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}],
        }),
        Route::Apis => {
            let mut groups: Vec<String> = Vec::new();
            for r in registry.all().iter().filter(|r| !r.group.is_empty()) {
                if !groups.contains(&r.group) {
                    groups.push(r.group.clone());
                }
            }
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups.iter().map(|g| api_group(g)).collect::<Vec<_>>()})
        }
        Route::Group(g) if !g.is_empty() && !group_versions(g).is_empty() => {
            let mut group = api_group(g);
            group["kind"] = json!("APIGroup");
            group["apiVersion"] = json!("v1");
            group
        }
        Route::GroupVersion(g, v) => {
            let served: Vec<&Resource> = registry
                .all()
                .iter()
                .filter(|r| r.group == *g && r.versions.contains(v))
                .collect();
            if served.is_empty() || (g.is_empty() && v != "v1") {
                return Err(ApiError::no_resource());
            }
            let mut resources = Vec::new();
            for r in served {
                resources.push(json!({
                    "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": verbs(), "shortNames": r.short_names,
                }));
                if r.status {
                    resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
                }
                if r.scale.is_some() {
                    resources.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
                }
                if r.token {
                    resources.push(json!({"name": format!("{}/token", r.plural), "singularName": "", "namespaced": r.namespaced, "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
                }
            }
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version(g, v), "resources": resources})
        }
        _ => return Err(ApiError::no_resource()),
    })
}
