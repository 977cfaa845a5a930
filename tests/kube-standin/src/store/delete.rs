//! Deletion: finalizers, garbage collection through owner references, CRD and Namespace
//! cascades.

use serde_json::{Value, json};

use super::{
    CRDS, ChangeKind, DeleteOptions, NAMESPACES, ObjectKey, Store, finalizers_empty, is, meta_mut,
    meta_str, now, owner_uids,
};
use crate::error::{ApiError, ApiResult};
use crate::resources::{Resource, ResourceKey};
use crate::selector::Selectors;

impl Store {
    /// `DELETE`: the object as deleted, or as marked for deletion when it has finalizers.
    pub fn delete(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> ApiResult<Value> {
        let existing = self.get(res, ns, name)?;
        if options
            .uid
            .as_deref()
            .is_some_and(|uid| Some(uid) != meta_str(&existing, "uid"))
            || options
                .resource_version
                .as_deref()
                .is_some_and(|rv| Some(rv) != meta_str(&existing, "resourceVersion"))
        {
            return Err(ApiError::conflict(Self::describe(res, name)));
        }
        Ok(self
            .delete_object(&res.key(), ns, name, options.orphan)
            .unwrap_or(existing))
    }

    /// `DELETE` of a collection: every matching object, as [`Store::delete`] would.
    pub fn delete_collection(
        &mut self,
        res: &Resource,
        ns: Option<&str>,
        selectors: &Selectors,
        options: &DeleteOptions,
    ) -> Vec<Value> {
        let (items, _) = self.list(&res.key(), ns, selectors);
        items
            .iter()
            .filter_map(|o| {
                let (n, name) = (
                    meta_str(o, "namespace").unwrap_or_default(),
                    meta_str(o, "name")?,
                );
                self.delete_object(&res.key(), n, name, options.orphan)
            })
            .collect()
    }

    /// Deletes now, or sets `deletionTimestamp` when finalizers remain.
    fn delete_object(
        &mut self,
        key: &ResourceKey,
        ns: &str,
        name: &str,
        orphan: bool,
    ) -> Option<Value> {
        let existing = self.find(key, ns, name)?.clone();
        if finalizers_empty(&existing) {
            return self.remove(key, ns, name, orphan);
        }
        if meta_str(&existing, "deletionTimestamp").is_some() {
            return Some(existing);
        }
        let mut next = existing.clone();
        meta_mut(&mut next).insert("deletionTimestamp".into(), Value::String(now()));
        meta_mut(&mut next).insert("deletionGracePeriodSeconds".into(), json!(0));
        self.bump(&mut next);
        self.store_modified(key, ns, name, existing, next.clone());
        Some(next)
    }

    /// Removes an object from the store, then collects its garbage: dependents with no other
    /// live owner are deleted (transitively), others lose the owner reference; with `orphan`
    /// every dependent only loses the reference. Deleting a CRD removes its resource and
    /// objects; deleting a Namespace deletes the objects in it.
    pub(super) fn remove(
        &mut self,
        key: &ResourceKey,
        ns: &str,
        name: &str,
        orphan: bool,
    ) -> Option<Value> {
        let mut removed = self
            .objects
            .get_mut(key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.bump(&mut removed);
        self.emit(ChangeKind::Deleted, key, ns, removed.clone(), None);
        tracing::debug!(group = %key.0, resource = %key.1, namespace = ns, name, "deleted");
        if is(key, CRDS)
            && let Some(gone) = self.registry.unregister_crd(name)
        {
            for ((n, obj), _) in self.objects.get(&gone.key()).cloned().unwrap_or_default() {
                self.remove(&gone.key(), &n, &obj, false);
            }
        }
        if is(key, NAMESPACES) {
            let inside: Vec<(ResourceKey, String)> = self
                .objects
                .iter()
                .flat_map(|(k, m)| {
                    m.keys()
                        .filter(|(n, _)| n == name)
                        .map(|(_, o)| (k.clone(), o.clone()))
                })
                .collect();
            for (k, obj) in inside {
                self.delete_object(&k, name, &obj, false);
            }
        }
        let Some(uid) = meta_str(&removed, "uid").map(str::to_string) else {
            return Some(removed);
        };
        let dependents: Vec<(ResourceKey, ObjectKey)> = self
            .objects
            .iter()
            .flat_map(|(k, m)| {
                m.iter()
                    .filter(|(_, o)| owner_uids(o).contains(&uid))
                    .map(|(ok, _)| (k.clone(), ok.clone()))
            })
            .collect();
        for (k, (n, obj)) in dependents {
            let Some(dependent) = self.find(&k, &n, &obj).cloned() else {
                continue;
            };
            let other_owner_alive = owner_uids(&dependent)
                .iter()
                .any(|u| *u != uid && self.uid_exists(u));
            if orphan || other_owner_alive {
                let mut next = dependent.clone();
                if let Some(Value::Array(refs)) = meta_mut(&mut next).get_mut("ownerReferences") {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                }
                self.bump(&mut next);
                self.store_modified(&k, &n, &obj, dependent, next);
            } else {
                self.delete_object(&k, &n, &obj, false);
            }
        }
        Some(removed)
    }

    fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .flat_map(|m| m.values())
            .any(|o| meta_str(o, "uid") == Some(uid))
    }
}
