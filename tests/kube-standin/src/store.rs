//! The state: objects by resource, the global resourceVersion counter, the bounded event
//! history watches resume from, and the write rules (conflicts, generation, status, finalizers,
//! garbage collection). Everything here runs under the server's one lock; nothing awaits.

mod delete;
mod subresources;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::patch::{self, PatchKind};
use crate::resources::{Registry, Resource, ResourceKey};
use crate::selector::Selectors;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Written.
    Modified,
    /// Removed from the store.
    Deleted,
}

/// One change, as kept in the history and sent to watches.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion it made.
    pub rv: u64,
    /// Added, modified, deleted.
    pub kind: ChangeKind,
    /// The resource of the object.
    pub key: ResourceKey,
    /// Its namespace, `""` when cluster-scoped.
    pub namespace: String,
    /// The object after the change (for a deletion: as last stored, with the deletion's rv).
    pub object: Arc<Value>,
    /// The object before a modification (selectors turn it into ADDED/DELETED for a watch).
    pub old: Option<Arc<Value>>,
}

/// Which part of an object a write changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The object; `.status` is kept as it was when the resource has a status subresource.
    Main,
    /// `/status`: only `.status`.
    Status,
}

/// The options of a DELETE.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy=Orphan`: dependents keep living, their owner reference removed.
    pub orphan: bool,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

type ObjectKey = (String, String);

/// What a watch starts with: the changes to send first, and the live feed.
pub type WatchStart = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// The state of the API server.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    registry: Registry,
    objects: HashMap<ResourceKey, BTreeMap<ObjectKey, Value>>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    compacted: u64,
    events: broadcast::Sender<Arc<Change>>,
    requests: BTreeMap<String, u64>,
    uids: u64,
    salt: u64,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    let Some(map) = object.as_object_mut() else {
        unreachable!("objects are checked to be JSON objects before they are stored")
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn set_path(object: &mut Value, path: &[String], value: Value) {
    let mut at = object;
    for segment in path {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        at = map.entry(segment.clone()).or_insert(Value::Null);
    }
    *at = value;
}

fn get_path<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |v, s| v.get(s))
}

/// The object without what does not count for `generation`.
fn spec_part(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(map) = v.as_object_mut() {
        for field in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(field);
        }
    }
    v
}

fn finalizers_empty(object: &Value) -> bool {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

const CRDS: (&str, &str) = ("apiextensions.k8s.io", "customresourcedefinitions");
const NAMESPACES: (&str, &str) = ("", "namespaces");

fn is(key: &ResourceKey, which: (&str, &str)) -> bool {
    key.0 == which.0 && key.1 == which.1
}

impl Store {
    /// An empty store keeping the last `history_limit` changes for watches to resume from.
    pub fn new(history_limit: usize, watch_buffer: usize) -> Self {
        let (events, _) = broadcast::channel(watch_buffer.max(1));
        Store {
            rv: 1,
            registry: Registry::default(),
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            events,
            requests: BTreeMap::new(),
            uids: 0,
            salt: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
        }
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The resources served now.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts a request by verb.
    pub fn count(&mut self, verb: &str) {
        *self.requests.entry(verb.to_string()).or_default() += 1;
    }

    /// Requests so far by verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...).
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.requests.clone()
    }

    fn random(&mut self) -> u64 {
        self.uids += 1;
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.salt ^ self.uids);
        h.finish()
    }

    fn new_uid(&mut self) -> String {
        let (a, b) = (self.random(), self.random());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }

    fn emit(
        &mut self,
        kind: ChangeKind,
        key: &ResourceKey,
        namespace: &str,
        object: Value,
        old: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            key: key.clone(),
            namespace: namespace.to_string(),
            object: Arc::new(object),
            old: old.map(Arc::new),
        });
        self.history.push_back(Arc::clone(&change));
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        // No receiver is not an error: nobody watches.
        let _ = self.events.send(change);
    }

    fn bump(&mut self, object: &mut Value) {
        self.rv += 1;
        meta_mut(object).insert("resourceVersion".into(), Value::String(self.rv.to_string()));
    }

    fn describe(res: &Resource, name: &str) -> String {
        format!("{} \"{name}\"", res.group_resource())
    }

    fn find(&self, key: &ResourceKey, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    /// One object, as stored.
    pub fn object(&self, key: &ResourceKey, ns: &str, name: &str) -> Option<Value> {
        self.find(key, ns, name).cloned()
    }

    /// Every stored object of `key` (in `ns`, or in all namespaces).
    pub fn objects_of(&self, key: &ResourceKey, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .get(key)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|((n, _), _)| ns.is_none_or(|ns| ns == n))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// `GET` of one object.
    pub fn get(&self, res: &Resource, ns: &str, name: &str) -> ApiResult<Value> {
        self.find(&res.key(), ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(Self::describe(res, name)))
    }

    /// The objects of a resource (in `ns`, or all namespaces) matching the selectors, by
    /// namespace and name, and the resourceVersion of the list.
    pub fn list(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        selectors: &Selectors,
    ) -> (Vec<Value>, u64) {
        let items = self
            .objects
            .get(key)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|((n, _), o)| ns.is_none_or(|ns| ns == n) && selectors.matches(o))
            .map(|(_, o)| o.clone())
            .collect();
        (items, self.rv)
    }

    /// `POST`: creates an object in `ns` (`""` when cluster-scoped) as `apiVersion` `version`.
    pub fn create(
        &mut self,
        res: &Resource,
        version: &str,
        ns: &str,
        mut body: Value,
    ) -> ApiResult<Value> {
        if !body.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let meta = meta_mut(&mut body);
        if res.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        } else {
            meta.remove("namespace");
        }
        let name = match meta
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(n) => n.to_string(),
            None => {
                let Some(prefix) = meta
                    .get("generateName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                else {
                    return Err(ApiError::invalid(format!(
                        "{} is invalid: metadata.name: Required value: name or generateName is required",
                        res.kind
                    )));
                };
                self.generate_name(&res.key(), ns, &prefix)
            }
        };
        if self.find(&res.key(), ns, &name).is_some() {
            return Err(ApiError::already_exists(Self::describe(res, &name)));
        }
        let uid = self.new_uid();
        let meta = meta_mut(&mut body);
        meta.insert("name".into(), Value::String(name.clone()));
        meta.insert("uid".into(), Value::String(uid));
        meta.insert("creationTimestamp".into(), Value::String(now()));
        meta.insert("generation".into(), json!(1));
        for field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(field);
        }
        let Some(map) = body.as_object_mut() else {
            unreachable!("checked above")
        };
        map.insert("apiVersion".into(), Value::String(res.api_version(version)));
        map.insert("kind".into(), Value::String(res.kind.clone()));
        if res.status {
            map.remove("status");
        }
        self.default(res, &mut body)?;
        self.bump(&mut body);
        self.objects
            .entry(res.key())
            .or_default()
            .insert((ns.to_string(), name), body.clone());
        self.emit(ChangeKind::Added, &res.key(), ns, body.clone(), None);
        Ok(body)
    }

    fn generate_name(&mut self, key: &ResourceKey, ns: &str, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        loop {
            let mut r = self.random();
            let mut name = prefix.to_string();
            for _ in 0..5 {
                name.push(char::from(ALPHABET[(r % ALPHABET.len() as u64) as usize]));
                r /= ALPHABET.len() as u64;
            }
            if self.find(key, ns, &name).is_none() {
                return name;
            }
        }
    }

    /// The defaults the stand-in fills in on create (see the crate docs).
    fn default(&mut self, res: &Resource, object: &mut Value) -> ApiResult<()> {
        match (res.group.as_str(), res.plural.as_str()) {
            ("apps", "deployments")
                if object.pointer("/spec/replicas").is_none_or(Value::is_null) =>
            {
                set_path(object, &["spec".into(), "replicas".into()], json!(1));
            }
            NAMESPACES => set_path(object, &["status".into()], json!({"phase": "Active"})),
            CRDS => {
                let registered = self.registry.register_crd(object).map_err(|e| {
                    ApiError::invalid(format!("CustomResourceDefinition is invalid: {e}"))
                })?;
                let names = object
                    .pointer("/spec/names")
                    .cloned()
                    .unwrap_or(Value::Null);
                let versions: Vec<Value> = registered.versions.iter().map(|v| json!(v)).collect();
                set_path(
                    object,
                    &["status".into()],
                    json!({
                        "acceptedNames": names,
                        "storedVersions": versions,
                        "conditions": [
                            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now()},
                            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": now()},
                        ],
                    }),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// `PUT` of an object or its status.
    pub fn update(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        body: Value,
        target: Target,
    ) -> ApiResult<Value> {
        let existing = self.get(res, ns, name)?;
        self.write(res, ns, name, existing, body, target)
    }

    /// `PATCH` of an object or its status; an apply patch of a missing object creates it
    /// (then `.1` is true).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        res: &Resource,
        version: &str,
        ns: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        target: Target,
    ) -> ApiResult<(Value, bool)> {
        let Some(existing) = self.find(&res.key(), ns, name).cloned() else {
            if kind == PatchKind::Apply && target == Target::Main {
                let mut object = body.clone();
                if !object.is_object() {
                    return Err(ApiError::bad_request("an apply patch must be an object"));
                }
                match meta_str(&object, "name") {
                    Some(n) if n != name => {
                        return Err(ApiError::bad_request(format!(
                            "the name of the object ({n}) does not match the name on the URL ({name})"
                        )));
                    }
                    _ => {}
                }
                meta_mut(&mut object).insert("name".into(), Value::String(name.to_string()));
                return Ok((self.create(res, version, ns, object)?, true));
            }
            return Err(ApiError::not_found(Self::describe(res, name)));
        };
        let mut candidate = existing.clone();
        patch::apply(kind, &mut candidate, body)?;
        Ok((
            self.write(res, ns, name, existing, candidate, target)?,
            false,
        ))
    }

    /// The write rules shared by PUT and PATCH: stale resourceVersion → 409; server-owned
    /// metadata kept; status or everything-but-status; generation; no-op writes change nothing.
    fn write(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        existing: Value,
        candidate: Value,
        target: Target,
    ) -> ApiResult<Value> {
        if !candidate.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let current = meta_str(&existing, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if let Some(rv) = meta_str(&candidate, "resourceVersion").filter(|rv| !rv.is_empty())
            && rv != current
        {
            return Err(ApiError::conflict(Self::describe(res, name)));
        }
        if let Some(n) = meta_str(&candidate, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let mut next = match target {
            Target::Status => {
                let mut next = existing.clone();
                if let (Some(map), Some(status)) = (next.as_object_mut(), candidate.get("status")) {
                    map.insert("status".into(), status.clone());
                } else if let Some(map) = next.as_object_mut() {
                    map.remove("status");
                }
                next
            }
            Target::Main => {
                let mut next = candidate;
                let old_meta = existing.get("metadata").cloned().unwrap_or(Value::Null);
                let meta = meta_mut(&mut next);
                for field in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old_meta.get(field) {
                        Some(v) => meta.insert(field.into(), v.clone()),
                        None => meta.remove(field),
                    };
                }
                meta.remove("managedFields");
                let Some(map) = next.as_object_mut() else {
                    unreachable!("checked above")
                };
                for field in ["apiVersion", "kind"] {
                    if let Some(v) = existing.get(field) {
                        map.insert(field.into(), v.clone());
                    }
                }
                if res.status {
                    match existing.get("status") {
                        Some(s) => map.insert("status".into(), s.clone()),
                        None => map.remove("status"),
                    };
                }
                next
            }
        };
        let generation = existing
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let changed = spec_part(&existing) != spec_part(&next);
        let meta = meta_mut(&mut next);
        meta.insert("generation".into(), json!(generation + i64::from(changed)));
        meta.insert("resourceVersion".into(), Value::String(current));
        if next == existing {
            return Ok(existing);
        }
        if is(&res.key(), CRDS) {
            self.registry.register_crd(&next).map_err(|e| {
                ApiError::invalid(format!("CustomResourceDefinition is invalid: {e}"))
            })?;
        }
        self.bump(&mut next);
        self.store_modified(&res.key(), ns, name, existing, next.clone());
        if meta_str(&next, "deletionTimestamp").is_some() && finalizers_empty(&next) {
            self.remove(&res.key(), ns, name, false);
        }
        Ok(next)
    }

    fn store_modified(&mut self, key: &ResourceKey, ns: &str, name: &str, old: Value, new: Value) {
        self.objects
            .entry(key.clone())
            .or_default()
            .insert((ns.to_string(), name.to_string()), new.clone());
        self.emit(ChangeKind::Modified, key, ns, new, Some(old));
    }

    /// Starts a watch: the changes to send first (synthetic ADDED for the current objects when
    /// `from` is `None` or 0, else the kept changes newer than `from`), and the live feed.
    /// Subscribing under the lock means nothing falls between the two.
    pub fn watch(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> ApiResult<WatchStart> {
        let feed = self.events.subscribe();
        let in_scope = |k: &ResourceKey, n: &str| k == key && ns.is_none_or(|ns| ns == n);
        let first = match from.filter(|rv| *rv > 0) {
            None => self
                .objects
                .get(key)
                .into_iter()
                .flat_map(|m| m.iter())
                .filter(|((n, _), _)| in_scope(key, n))
                .map(|((n, _), o)| {
                    Arc::new(Change {
                        rv: meta_str(o, "resourceVersion")
                            .and_then(|rv| rv.parse().ok())
                            .unwrap_or(self.rv),
                        kind: ChangeKind::Added,
                        key: key.clone(),
                        namespace: n.clone(),
                        object: Arc::new(o.clone()),
                        old: None,
                    })
                })
                .collect(),
            Some(rv) if rv < self.compacted => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    self.compacted + 1
                )));
            }
            Some(rv) => self
                .history
                .iter()
                .filter(|c| c.rv > rv && in_scope(&c.key, &c.namespace))
                .cloned()
                .collect(),
        };
        Ok((first, feed))
    }

    /// Whether a watch's feed is drained as of now (then a bookmark at the current version
    /// skips nothing).
    pub fn caught_up(&self, feed: &broadcast::Receiver<Arc<Change>>) -> Option<u64> {
        feed.is_empty().then_some(self.rv)
    }
}
