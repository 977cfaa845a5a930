//! Functions that run in their own pods or in a runtime pool, seen from the cluster gateway:
//! the invoker forwards to a ready pod ([`RemoteFunction`]), holding the request while a
//! function at zero replicas starts. Nothing is compiled or started here.

use std::sync::Arc;
use std::time::Duration;

use faas_api::scaling::ReplicasOwner;
use faas_api::{Function, Limits};
use kube::ResourceExt;

use crate::cluster::endpoints::Endpoints;
use crate::cluster::scaler::Scaler;
use crate::cluster::upstream::{Hold, PodClient, RemoteFunction, Upstream};
use crate::registry::Loaded;

/// What the cluster gateway needs to forward to a function's pods.
pub struct Remote<'a> {
    pub endpoints: &'a Endpoints,
    pub scaler: &'a Scaler,
    pub client: &'a PodClient,
    /// Longest hold of a request for a function without a ready pod.
    pub hold: Duration,
}

impl Remote<'_> {
    /// The invoker of `function`, whose pods are behind `upstream`; a function whose
    /// replicas the gateway owns is scaled from zero (and back) by it.
    pub fn load(&self, function: &Function, upstream: Upstream, limits: Limits) -> Loaded {
        let name = function.name_any();
        let namespace = function.namespace().unwrap_or_default();
        let scale = (function.spec.replicas_owner(false) == ReplicasOwner::Gateway).then(|| {
            self.scaler.target(
                &namespace,
                &name,
                &faas_api::contract::function_object(&name),
                function.spec.idle_after(),
            )
        });
        if scale.is_none() {
            self.scaler.forget(&namespace, &name);
        }
        let kind = if function.spec.runtime.wasm.is_some() {
            "pool"
        } else {
            "pods"
        };
        let sha256 = function
            .spec
            .runtime
            .wasm
            .as_ref()
            .and_then(|w| w.sha256.clone())
            .unwrap_or_default();
        let invoker = RemoteFunction::new(
            name,
            upstream.clone(),
            self.endpoints.subscribe(&upstream.service),
            Hold {
                limit: self.hold,
                scale,
            },
            limits.timeout,
            faas_api::contract::workload(function)
                .is_ok_and(faas_api::contract::Workload::enforces_deadline_in_pod),
            self.client.clone(),
        );
        Loaded {
            invoker: Arc::new(invoker),
            sha256,
            kind,
        }
    }
}

/// Requests the gateway admits at once for `function`: `concurrency` is per replica, and
/// every pod that runs the platform's router (pools, sidecars) enforces it itself; this
/// gateway admits what the replicas can take at most, so one gateway cannot flood them and a
/// client gets 429 here, not deep inside.
pub fn permits(function: &Function, limits: Limits) -> u32 {
    let replicas = function
        .spec
        .scale
        .as_ref()
        .map_or(1, |s| s.max.unwrap_or(s.min))
        .max(
            function
                .status
                .as_ref()
                .and_then(|s| s.replicas)
                .map_or(1, |r| r.max(1).unsigned_abs()),
        )
        .max(1);
    limits.concurrency.saturating_mul(replicas)
}
