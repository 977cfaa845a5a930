//! The registry of a cluster gateway, from `Function` resources: each valid Function is
//! registered through [`Platform::register`] with an invoker that forwards to its pods
//! ([`crate::load::remote`]), with the same admission (body limit, concurrency, queue) as
//! every other mode.
//!
//! Every Function is registered under `{name}.{namespace}`
//! ([`faas_api::routing::qualified_name`]), so two namespaces may use one name and both are
//! served (`/function/{name}.{namespace}`). Who gets the short `/function/{name}`, hosts and
//! path prefixes is decided by the registry's route table from the whole set
//! ([`faas_api::routing::Claims`]): a rule that depends only on the resources keeps every
//! gateway replica agreeing, whatever order their watches delivered the events in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use faas_api::Function;
use kube::ResourceExt;

use super::endpoints::Endpoints;
use super::relist::{Relists, covers};
use super::scaler::Scaler;
use super::upstream::{PodClient, Upstream};
use crate::load::remote::{Remote, permits};
use crate::platform::Platform;
use crate::registry::Origin;

/// Where a function's pods are, or why it cannot be served (yet): the cluster contract's
/// [`placement`](faas_api::contract::placement), which the controller's cron follows too.
pub fn upstream_of(function: &Function) -> Result<Upstream, String> {
    faas_api::contract::placement(function)
        .map(Upstream::from)
        .map_err(|reason| reason.to_string())
}

/// What cluster mode needs to turn Functions into entries.
pub struct ClusterFunctions {
    pub endpoints: Arc<Endpoints>,
    pub scaler: Arc<Scaler>,
    pub client: PodClient,
    /// Longest hold of a request for a function without a ready pod.
    pub hold: Duration,
    /// Every watched Function, by (namespace, name).
    known: HashMap<(String, String), Function>,
    /// Registry key -> fingerprint of the version registered.
    served: HashMap<String, String>,
    /// The Functions seen by each relist in progress.
    relisting: Relists<(String, String)>,
}

impl ClusterFunctions {
    pub fn new(
        endpoints: Arc<Endpoints>,
        scaler: Arc<Scaler>,
        client: PodClient,
        hold: Duration,
    ) -> Self {
        ClusterFunctions {
            endpoints,
            scaler,
            client,
            hold,
            known: HashMap::new(),
            served: HashMap::new(),
            relisting: Relists::default(),
        }
    }

    /// A Function was created or changed.
    pub fn apply(&mut self, platform: &Platform, function: Function) {
        let key = (
            function.namespace().unwrap_or_default(),
            function.name_any(),
        );
        self.relisting.saw(&key.0, &key);
        self.known.insert(key.clone(), function);
        self.refresh(platform, &key);
    }

    /// A Function was deleted.
    pub fn delete(&mut self, platform: &Platform, function: &Function) {
        let key = (
            function.namespace().unwrap_or_default(),
            function.name_any(),
        );
        if self.known.remove(&key).is_some() {
            self.scaler.forget(&key.0, &key.1);
            self.refresh(platform, &key);
        }
    }

    /// The watch of `scope` lists everything again.
    pub fn relist_started(&mut self, scope: Option<&str>) {
        self.relisting.start(scope);
    }

    /// Its relist is complete: Functions of the scope it did not contain were deleted.
    pub fn relist_done(&mut self, platform: &Platform, scope: Option<&str>) {
        let Some(seen) = self.relisting.finish(scope) else {
            return;
        };
        let gone: Vec<(String, String)> = self
            .known
            .keys()
            .filter(|(ns, _)| covers(scope, ns))
            .filter(|key| !seen.contains(*key))
            .cloned()
            .collect();
        for key in gone {
            self.known.remove(&key);
            self.scaler.forget(&key.0, &key.1);
            self.refresh(platform, &key);
        }
    }

    /// Registers what the Function `(namespace, name)` is now, or forgets it.
    fn refresh(&mut self, platform: &Platform, (namespace, name): &(String, String)) {
        let key = faas_api::routing::qualified_name(name, namespace);
        let Some(function) = self.known.get(&(namespace.clone(), name.clone())) else {
            if self.served.remove(&key).is_some() {
                platform.registry.remove(&key);
                tracing::info!(function = %name, %namespace, "function removed");
            }
            return;
        };
        let upstream = upstream_of(function);
        // The webhook's published digest is the one status field served (`crate::webhook`).
        let fingerprint = format!(
            "{}|{:?}|{:?}",
            serde_json::to_string(&function.spec).unwrap_or_default(),
            upstream,
            function.status.as_ref().and_then(|s| s.webhook.as_ref())
        );
        if self.served.get(&key) == Some(&fingerprint) {
            // Other status writes (conditions, load states) change nothing that is served.
            return;
        }
        let limits = platform.limits_of(function).unwrap_or_default();
        let remote = Remote {
            endpoints: &self.endpoints,
            scaler: &self.scaler,
            client: &self.client,
            hold: self.hold,
        };
        let state = upstream.map(|upstream| Arc::new(remote.load(function, upstream, limits)));
        match &state {
            Ok(_) => tracing::info!(function = %name, %namespace, "function serving"),
            Err(reason) => {
                tracing::warn!(function = %name, %namespace, %reason, "function not ready")
            }
        }
        let permits = permits(function, limits);
        platform.register(
            key.clone(),
            function.clone(),
            Origin::Cluster,
            state,
            permits,
        );
        let lost = platform.registry.claims();
        for loss in lost.losses_of(&faas_api::routing::FunctionId {
            namespace: namespace.clone(),
            name: name.clone(),
        }) {
            tracing::warn!(function = %name, %namespace, %loss, "route not granted");
        }
        self.served.insert(key, fingerprint);
    }
}
