//! Which WASM runtime pool a function belongs to: one rule, used by the controller (which
//! renders the pool and labels the Function) and by the pool pods (which load a Function only
//! when this rule puts it in their own pool, whatever its labels say).
//!
//! Functions share a pool when nothing that pods cannot share differs: namespace, placement
//! (capacity, node group, tolerations, node labels) and security group. Functions with none
//! of these set share the namespace's `default` pool; `spec.placement.pool` names a pool
//! explicitly, which then still has exactly one key.
//!
//! The IAM role is not in the key: a pool pod gives each member its own role's credentials
//! (a token of the function's ServiceAccount exchanged with STS, see the gateway's
//! `identity` module) and reads each member's queues with them, so functions with different
//! roles share pods. The pool's own ServiceAccount carries only the platform's artifact-pull
//! role (`runtime.pools.serviceAccount.roleArn`), which no function ever gets.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::function::{Capacity, Function, TolerationSpec};

/// Label on a Function naming its pool (set by the controller only), and on the pool's
/// objects and pods.
pub const POOL_LABEL: &str = "faas.dev/pool";

/// What pool pods cannot share: two functions with equal keys share a pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolKey {
    pub namespace: String,
    pub capacity: Capacity,
    pub node_group: Option<String>,
    pub tolerations: Vec<TolerationSpec>,
    pub node_selector: BTreeMap<String, String>,
    pub security_group: Option<String>,
}

impl PoolKey {
    /// sha256 (hex) of the key's canonical JSON: what a pool pod is told (`--pool-key`) and
    /// compares every Function against.
    pub fn digest(&self) -> String {
        // Serializing plain strings, enums and maps cannot fail.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&canonical))
    }

    fn is_default(&self) -> bool {
        self.capacity == Capacity::Spot
            && self.node_group.is_none()
            && self.tolerations.is_empty()
            && self.node_selector.is_empty()
            && self.security_group.is_none()
    }
}

/// A function's pool.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// `default`, the explicit `spec.placement.pool`, or `p` + a hash of the key.
    pub name: String,
    pub key: PoolKey,
}

impl Pool {
    /// `pool-<name>`: the name of every object of the pool.
    pub fn object_name(&self) -> String {
        crate::contract::pool_object(&self.name)
    }

    /// Whether `function` belongs to this pool: its computed pool has this name and this
    /// key. A label on the Function plays no part.
    pub fn admits(&self, function: &Function) -> bool {
        pool_of(function) == *self
    }
}

/// The pool of a WASM function.
pub fn pool_of(function: &Function) -> Pool {
    let placement = function.spec.placement.clone().unwrap_or_default();
    let key = PoolKey {
        namespace: function.metadata.namespace.clone().unwrap_or_default(),
        capacity: placement.capacity,
        node_group: placement.node_group.clone(),
        tolerations: placement.tolerations.clone(),
        node_selector: placement.node_selector.clone(),
        security_group: placement.security_group.clone(),
    };
    let name = match &placement.pool {
        Some(name) => name.clone(),
        None if key.is_default() => "default".to_owned(),
        None => format!("p{}", &key.digest()[..10]),
    };
    Pool { name, key }
}

/// Why two functions that name the same pool cannot share it, if they cannot.
pub fn conflict(a: &Pool, b: &Pool) -> Option<String> {
    (a.name == b.name && a.key != b.key).then(|| {
        format!(
            "spec.placement.pool: pool {} already hosts functions with another placement or \
             security group; a pool's pods have one placement (drop spec.placement.pool to \
             get a pool of your own)",
            a.name
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::{FunctionSpec, IamSpec, PlacementSpec, RuntimeSpec, WasmRuntime};

    fn wasm(name: &str, namespace: &str) -> Function {
        let mut f = Function::new(
            name,
            FunctionSpec {
                runtime: RuntimeSpec {
                    wasm: Some(WasmRuntime {
                        source: "configmap://fn-a/a.wasm".into(),
                        ..WasmRuntime::default()
                    }),
                    container: None,
                },
                ..FunctionSpec::default()
            },
        );
        f.metadata.namespace = Some(namespace.into());
        f
    }

    fn with_role(mut f: Function, arn: &str) -> Function {
        f.spec.iam = Some(IamSpec {
            role_arn: arn.into(),
        });
        f
    }

    #[test]
    fn functions_share_a_pool_exactly_when_nothing_pods_cannot_share_differs() {
        let a = pool_of(&wasm("a", "shop"));
        let b = pool_of(&wasm("b", "shop"));
        assert_eq!(a.name, "default");
        assert_eq!(a, b);
        // Each function holds its own role in the pool: roles do not split it.
        let c = pool_of(&with_role(
            wasm("c", "shop"),
            "arn:aws:iam::123456789012:role/resize",
        ));
        let d = pool_of(&with_role(
            wasm("d", "shop"),
            "arn:aws:iam::123456789012:role/x",
        ));
        assert_eq!((c.name.as_str(), d.name.as_str()), ("default", "default"));
        assert_eq!(c, a, "a role does not change the pool");
        let elsewhere = pool_of(&wasm("c", "billing"));
        assert_ne!(a, elsewhere, "namespaces never share");
        let mut on_demand = wasm("f", "shop");
        on_demand.spec.placement = Some(PlacementSpec {
            capacity: Capacity::OnDemand,
            ..PlacementSpec::default()
        });
        let on_demand = pool_of(&on_demand);
        assert!(
            on_demand.name.starts_with('p') && on_demand.name.len() == 11,
            "{}",
            on_demand.name
        );
        let mut grouped = wasm("g", "shop");
        grouped.spec.placement = Some(PlacementSpec {
            security_group: Some("sg-0123456789abcdef0".into()),
            ..PlacementSpec::default()
        });
        assert_ne!(pool_of(&grouped).name, on_demand.name);
        assert_ne!(pool_of(&grouped).name, "default");
    }

    /// What the key change saves (issue 19's measure): a namespace of 100 functions with 20
    /// roles, placed alike, needed one pool per role (20 pools, 40 pods at the chart's
    /// `runtime.pools.replicas: 2`); it needs one.
    #[test]
    fn a_namespace_of_100_functions_with_20_roles_needs_one_pool() {
        let pools: std::collections::BTreeSet<String> = (0..100)
            .map(|i| {
                let role = format!("arn:aws:iam::123456789012:role/team-a/r{}", i % 20);
                pool_of(&with_role(wasm(&format!("f{i}"), "team-a"), &role)).name
            })
            .collect();
        assert_eq!(pools.len(), 1, "{pools:?}");
    }

    #[test]
    fn an_explicit_pool_is_used_and_a_mismatch_is_a_conflict() {
        let mut a = wasm("a", "shop");
        a.spec.placement = Some(PlacementSpec {
            pool: Some("batch".into()),
            ..PlacementSpec::default()
        });
        let mut b = a.clone();
        b.metadata.name = Some("b".into());
        if let Some(placement) = b.spec.placement.as_mut() {
            placement.capacity = Capacity::OnDemand;
        }
        let (pa, pb) = (pool_of(&a), pool_of(&b));
        assert_eq!((pa.name.as_str(), pb.name.as_str()), ("batch", "batch"));
        assert!(conflict(&pa, &pb).is_some_and(|m| m.contains("pool batch")));
        assert!(conflict(&pa, &pa).is_none());
    }

    #[test]
    fn a_pool_admits_only_functions_whose_computed_pool_is_itself() {
        let on_demand = |f: Function| {
            let mut f = f;
            f.spec.placement = Some(PlacementSpec {
                capacity: Capacity::OnDemand,
                ..PlacementSpec::default()
            });
            f
        };
        let pool = pool_of(&on_demand(with_role(
            wasm("payments", "team-a"),
            "arn:aws:iam::123456789012:role/payments",
        )));
        // Another role, same placement: a member.
        assert!(pool.admits(&on_demand(with_role(
            wasm("refunds", "team-a"),
            "arn:aws:iam::123456789012:role/refunds"
        ))));
        // Same explicit pool name, another placement: same name, another key.
        let mut named = pool.clone();
        named.name = "jobs".into();
        let mut intruder = wasm("x", "team-a");
        intruder.spec.placement = Some(PlacementSpec {
            pool: Some("jobs".into()),
            ..PlacementSpec::default()
        });
        assert_eq!(pool_of(&intruder).name, "jobs");
        assert!(!named.admits(&intruder));
        // A label says nothing.
        let mut labelled = wasm("y", "team-a");
        labelled.metadata.labels = Some([(POOL_LABEL.to_owned(), pool.name.clone())].into());
        assert!(!pool.admits(&labelled));
        assert_eq!(pool.key.digest().len(), 64);
        assert_ne!(pool.key.digest(), pool_of(&labelled).key.digest());
    }
}
