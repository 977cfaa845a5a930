//! Server-side apply into one namespace, with the Function as owner when the objects are its
//! own (a pool's objects are shared and owned by none), and deletes where absent is fine.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
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
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(api_error(format!("deleting {} {name}", K::kind(&())))(e)),
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
        match self
            .keda_api(kind)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
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
