//! Server-side apply into one namespace, with the Function as owner when the objects are its
//! own (a pool's objects are shared and owned by none), and deletes where absent is fine.
//!
//! Every apply is forced (this controller owns the fields it writes), so before applying it
//! reads the object's metadata: an object that exists and that faas did not make (no
//! `faas.dev` Function owner, no `app.kubernetes.io/managed-by: faas-controller` label) is
//! never taken over: [`Error::NotOwned`], which the reconciler turns into a condition and an
//! Event. Otherwise a Function named after someone's Deployment (`fn-<name>`) would replace
//! that Deployment's pod template. Deletes of objects the spec no longer asks for are held to
//! the same rule (and to the uid that was read).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::reconcile::{Error, MANAGER, api_error};
use crate::render::scaling::KEDA_API_VERSION;

/// Server-side applies objects into one namespace, owned by one Function.
pub struct Applier<'a> {
    pub client: &'a Client,
    pub namespace: &'a str,
    /// Set on every object applied; `None` for shared objects.
    pub owner: Option<&'a OwnerReference>,
}

impl Applier<'_> {
    /// Applies a typed object; returns what the API server stored (with its status).
    pub async fn typed<K>(&self, mut object: K) -> Result<K, Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + Serialize
            + DeserializeOwned,
    {
        if let Some(owner) = self.owner {
            object.meta_mut().owner_references = Some(vec![owner.clone()]);
        }
        let name = object.name_any();
        let api: Api<K> = Api::namespaced(self.client.clone(), self.namespace);
        let existing = api
            .get_metadata_opt(&name)
            .await
            .map_err(api_error(format!("reading {} {name}", K::kind(&()))))?;
        refuse_foreign(existing.map(|m| m.metadata), &K::kind(&()), &name)?;
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(api_error(format!("applying {} {name}", K::kind(&()))))
    }

    /// Deletes a typed object the spec no longer asks for; absent is fine.
    pub async fn delete<K>(&self, name: &str) -> Result<(), Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), self.namespace);
        let kind = K::kind(&());
        let existing = api
            .get_metadata_opt(name)
            .await
            .map_err(api_error(format!("reading {kind} {name}")))?;
        let Some(params) = deletable(existing.map(|m| m.metadata), &kind, name) else {
            return Ok(());
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
            Err(e) => Err(api_error(format!("deleting {kind} {name}"))(e)),
        }
    }

    /// Applies a KEDA object (rendered as JSON).
    pub async fn dynamic(&self, mut object: serde_json::Value) -> Result<(), Error> {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(owner) = self.owner {
            object["metadata"]["ownerReferences"] = serde_json::json!([owner]);
        }
        let api = self.keda_api(&kind);
        let existing = api
            .get_metadata_opt(&name)
            .await
            .map_err(api_error(format!("reading {kind} {name}")))?;
        refuse_foreign(existing.map(|m| m.metadata), &kind, &name)?;
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(api_error(format!("applying {kind} {name}")))?;
        Ok(())
    }

    pub async fn delete_dynamic(&self, kind: &str, name: &str) -> Result<(), Error> {
        let api = self.keda_api(kind);
        let existing = api
            .get_metadata_opt(name)
            .await
            .map_err(api_error(format!("reading {kind} {name}")))?;
        let Some(params) = deletable(existing.map(|m| m.metadata), kind, name) else {
            return Ok(());
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
            Err(e) => Err(api_error(format!("deleting {kind} {name}"))(e)),
        }
    }

    fn keda_api(&self, kind: &str) -> Api<DynamicObject> {
        let (group, version) = KEDA_API_VERSION
            .split_once('/')
            .unwrap_or(("keda.sh", "v1alpha1"));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        Api::namespaced_with(self.client.clone(), self.namespace, &resource)
    }
}

/// Whether faas made the object with this metadata: a Function of `faas.dev` owns it, or it
/// carries our managed-by label (the shared objects of a pool).
pub fn made_by_faas(meta: &ObjectMeta) -> bool {
    let owned = meta.owner_references.iter().flatten().any(|o| {
        o.kind == "Function" && o.api_version.starts_with(&format!("{}/", faas_api::GROUP))
    });
    let labelled = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(faas_api::contract::MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGER);
    owned || labelled
}

/// How to delete an object we no longer want: only one faas made, and only that very
/// object (its uid as a precondition, so one created meanwhile by someone else survives).
/// `None`: absent, or not ours (left alone, logged).
fn deletable(existing: Option<ObjectMeta>, kind: &str, name: &str) -> Option<DeleteParams> {
    let meta = existing?;
    if !made_by_faas(&meta) {
        tracing::warn!(kind, name, "not deleting an object faas did not make");
        return None;
    }
    let mut params = DeleteParams::background();
    params.preconditions = meta.uid.map(|uid| kube::api::Preconditions {
        uid: Some(uid),
        resource_version: None,
    });
    Some(params)
}

fn refuse_foreign(existing: Option<ObjectMeta>, kind: &str, name: &str) -> Result<(), Error> {
    match existing {
        Some(meta) if !made_by_faas(&meta) => Err(Error::NotOwned {
            kind: kind.to_owned(),
            name: name.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_faas_made_count_as_ours() {
        let mut meta = ObjectMeta::default();
        assert!(!made_by_faas(&meta), "no owner, no label: someone else's");
        meta.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "x".into(),
            uid: "u".into(),
            ..OwnerReference::default()
        }]);
        assert!(!made_by_faas(&meta));
        meta.labels = Some([("app.kubernetes.io/managed-by".into(), "Helm".into())].into());
        assert!(!made_by_faas(&meta));
        meta.owner_references = Some(vec![OwnerReference {
            api_version: "faas.dev/v1alpha1".into(),
            kind: "Function".into(),
            name: "orders".into(),
            uid: "u".into(),
            ..OwnerReference::default()
        }]);
        assert!(made_by_faas(&meta));
        let labelled = ObjectMeta {
            labels: Some([("app.kubernetes.io/managed-by".into(), MANAGER.into())].into()),
            ..ObjectMeta::default()
        };
        assert!(made_by_faas(&labelled));
    }
}
