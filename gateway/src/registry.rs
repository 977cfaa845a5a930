//! The function registry: name -> the version being served, plus the route table.
//!
//! Readers take an `Arc` snapshot of one entry per request, so a replaced or deleted function
//! finishes its in-flight requests on the version they started with, and writers never wait
//! for requests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use faas_api::{Function, Limits};
use faas_runtime::Invoker;
use serde::Serialize;

use crate::admission::Admission;
use crate::routes::RouteTable;

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
    entries: HashMap<String, Arc<Entry>>,
    routes: Arc<RouteTable>,
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
            table: RwLock::default(),
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

    /// The entry serving `name` right now.
    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.read().entries.get(name).cloned()
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

    /// Adds or replaces a function. Returns the previous entry.
    pub fn upsert(&self, entry: Entry) -> Option<Arc<Entry>> {
        let mut table = self.write();
        let name = entry.name().to_owned();
        let previous = table.entries.insert(name, Arc::new(entry));
        table.routes = Arc::new(build_routes(&table.entries));
        drop(table);
        self.changed();
        previous
    }

    /// Records a failed update on an existing entry without replacing what it serves.
    pub fn record_error(&self, name: &str, error: String) {
        let mut table = self.write();
        if let Some(current) = table.entries.get(name) {
            let updated = Entry {
                function: current.function.clone(),
                limits: current.limits,
                origin: current.origin.clone(),
                state: current.state.clone(),
                last_error: Some(error),
                admission: Arc::clone(&current.admission),
                updated: current.updated,
            };
            table.entries.insert(name.to_owned(), Arc::new(updated));
        }
    }

    /// Removes a function. Returns it if it existed.
    pub fn remove(&self, name: &str) -> Option<Arc<Entry>> {
        let mut table = self.write();
        let removed = table.entries.remove(name);
        table.routes = Arc::new(build_routes(&table.entries));
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

fn build_routes(entries: &HashMap<String, Arc<Entry>>) -> RouteTable {
    let mut table = RouteTable::default();
    for (name, entry) in entries {
        if let Some(http) = &entry.function.spec.http {
            for host in &http.hosts {
                table.hosts.push((host.to_ascii_lowercase(), name.clone()));
            }
            if let Some(path) = &http.path {
                table.prefixes.push((path.clone(), name.clone()));
            }
        }
    }
    table.finish();
    table
}
