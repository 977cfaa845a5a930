//! The function registry: name -> the version being served, plus the route table.
//!
//! Readers take an `Arc` snapshot of one entry per request, so a replaced or deleted function
//! finishes its in-flight requests on the version they started with, and writers never wait
//! for requests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use faas_api::routing::{Claims, FunctionId, RoutingPolicy};
use faas_api::{Function, Limits};
use faas_runtime::Invoker;
use serde::Serialize;

use crate::admission::Admission;
use crate::routes::RouteTable;
use faas_invoke::failure_log::FailureLog;

/// Where a function came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "path")]
pub enum Origin {
    /// A manifest file watched by `faas up`.
    File(PathBuf),
    /// Deployed through the management API.
    Api,
    /// A `Function` resource of this runtime pool, from the Kubernetes API.
    Cluster,
}

/// A function version that serves requests.
pub struct Loaded {
    /// The executor.
    pub invoker: Arc<dyn Invoker>,
    /// sha256 of the artifact.
    pub sha256: String,
    /// `component` or `cgi-module`.
    pub kind: &'static str,
}

/// One registered function.
pub struct Entry {
    /// Its registry key: the function's name, or in a cluster gateway `{name}.{namespace}`
    /// (two namespaces may use one name). Metrics and the dashboard's statistics are
    /// labelled by it, so two teams' functions of one name never share a series.
    pub key: String,
    /// The validated resource.
    pub function: Function,
    /// Typed limits of the spec.
    pub limits: Limits,
    /// Where it came from.
    pub origin: Origin,
    /// Serving version, or why there is none.
    pub state: Result<Arc<Loaded>, String>,
    /// The last failed update, while this version keeps serving.
    pub last_error: Option<String>,
    /// Admission control of this version.
    pub admission: Arc<Admission>,
    /// How many of this version's failures get a log line.
    pub failure_log: Arc<FailureLog>,
    /// When this version was registered.
    pub updated: SystemTime,
}

impl Entry {
    /// Function name.
    pub fn name(&self) -> &str {
        self.function.metadata.name.as_deref().unwrap_or_default()
    }
}

#[derive(Default)]
struct Table {
    /// Registry key -> entry. The key is the function's name, or in a cluster gateway its
    /// `{name}.{namespace}` (two namespaces may use one name).
    entries: HashMap<String, Arc<Entry>>,
    routes: Arc<RouteTable>,
    /// What functions may claim ([`Claims::decide`]).
    policy: RoutingPolicy,
}

/// All functions of this gateway.
pub struct Registry {
    table: RwLock<Table>,
    /// Bumped on every change of the function set, for whoever derives state from it (the
    /// scheduler's set of schedules).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            table: RwLock::new(Table {
                policy: RoutingPolicy::local(),
                ..Table::default()
            }),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Registry {
    /// Wakes up after each change of the function set.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Sets what functions may claim (the cluster's allowed wildcard suffixes and own hosts)
    /// and rebuilds the routes.
    pub fn set_policy(&self, policy: RoutingPolicy) {
        let mut table = self.write();
        table.policy = policy;
        table.routes = Arc::new(build_routes(&table.entries, &table.policy));
    }

    /// Who owns which route now, and what each function lost.
    pub fn claims(&self) -> Claims {
        let table = self.read();
        Claims::decide(table.entries.values().map(|e| &e.function), &table.policy)
    }

    /// The entry of registry key `name` right now, or of the function that owns the short
    /// name `name` (in a cluster, where keys are `{name}.{namespace}`).
    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        let table = self.read();
        table
            .entries
            .get(name)
            .or_else(|| table.entries.get(table.routes.names.get(name)?))
            .cloned()
    }

    /// The current route table.
    pub fn routes(&self) -> Arc<RouteTable> {
        Arc::clone(&self.read().routes)
    }

    /// Every entry, sorted by name.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        let mut all: Vec<_> = self.read().entries.values().cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Adds or replaces a function under its name. Returns the previous entry.
    pub fn upsert(&self, entry: Entry) -> Option<Arc<Entry>> {
        let name = entry.name().to_owned();
        self.upsert_as(name, entry)
    }

    /// Adds or replaces a function under registry key `key`. Returns the previous entry.
    pub fn upsert_as(&self, key: String, mut entry: Entry) -> Option<Arc<Entry>> {
        entry.key.clone_from(&key);
        let mut table = self.write();
        let previous = table.entries.insert(key, Arc::new(entry));
        table.routes = Arc::new(build_routes(&table.entries, &table.policy));
        drop(table);
        self.changed();
        previous
    }

    /// Records a failed update on an existing entry without replacing what it serves.
    pub fn record_error(&self, name: &str, error: String) {
        let mut table = self.write();
        if let Some(current) = table.entries.get(name) {
            let updated = Entry {
                key: current.key.clone(),
                function: current.function.clone(),
                limits: current.limits,
                origin: current.origin.clone(),
                state: current.state.clone(),
                last_error: Some(error),
                admission: Arc::clone(&current.admission),
                failure_log: Arc::clone(&current.failure_log),
                updated: current.updated,
            };
            table.entries.insert(name.to_owned(), Arc::new(updated));
        }
    }

    /// Removes a function. Returns it if it existed.
    pub fn remove(&self, name: &str) -> Option<Arc<Entry>> {
        let mut table = self.write();
        let removed = table.entries.remove(name);
        table.routes = Arc::new(build_routes(&table.entries, &table.policy));
        drop(table);
        if removed.is_some() {
            self.changed();
        }
        removed
    }

    /// Counts of (ready, failed) functions.
    pub fn counts(&self) -> (usize, usize) {
        let table = self.read();
        let ready = table.entries.values().filter(|e| e.state.is_ok()).count();
        (ready, table.entries.len() - ready)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The route table of `entries`: exactly the claims [`Claims::decide`] grants, so the table
/// depends only on the set of functions, never on the order they arrived in.
fn build_routes(entries: &HashMap<String, Arc<Entry>>, policy: &RoutingPolicy) -> RouteTable {
    let claims = Claims::decide(entries.values().map(|e| &e.function), policy);
    let keys: HashMap<FunctionId, &String> = entries
        .iter()
        .map(|(key, entry)| (FunctionId::of(&entry.function), key))
        .collect();
    let key_of = |owner: &FunctionId| keys.get(owner).map(|k| (*k).clone());
    let mut table = RouteTable::default();
    for (host, owner) in &claims.hosts {
        table
            .hosts
            .extend(key_of(owner).map(|key| (host.clone(), key)));
    }
    for (path, owner) in &claims.paths {
        table
            .prefixes
            .extend(key_of(owner).map(|key| (path.clone(), key)));
    }
    for (name, owner) in &claims.names {
        if let Some(key) = key_of(owner).filter(|key| key != name) {
            table.names.insert(name.clone(), key);
        }
    }
    table.private = entries
        .iter()
        .filter(|(_, entry)| !faas_api::routing::is_public(&entry.function))
        .map(|(key, _)| key.clone())
        .collect();
    table.finish();
    table
}
