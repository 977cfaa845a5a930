//! The functions of a runtime pool pod (`faas-runtime serve --pool NAME`), from the
//! Kubernetes API: the Functions labelled `faas.dev/pool=NAME` in the pod's namespace (the
//! controller sets the label), each with its artifact, through the same `Platform::apply` as
//! local mode (compile once per sha256, a failed update keeps the version that serves).
//!
//! Artifacts come from `configmap://name/key` (binary data of a ConfigMap in the namespace);
//! a pinned `spec.runtime.wasm.sha256` is checked when the module loads. Only a change of
//! spec reloads a function: the controller's status writes do not.
//!
//! The label only narrows the watch: a Function is loaded only when it passes the cluster
//! profile of validation (`faas_api::validate_for_cluster`: no host directories, pinned
//! artifacts) and its pool, computed by the controller's own rule (`faas_api::pool::pool_of`),
//! is this pod's pool: same name and same key (`--pool-key`, the digest of the namespace
//! and placement the controller rendered this pool for). A Function that labels itself into
//! another pool gets a load report saying why, and nothing runs. Roles are not in the key: a
//! member runs with its own role's credentials, which the pod can get only for the members
//! the controller admitted (the `pool-<pool>-members` Role names their ServiceAccounts), so a
//! Function labelled in with a role the controller refused runs without credentials.
//!
//! After each load the pod reports the outcome in the Function's `status.loadState.<pod>`
//! (server-side apply, field manager `faas-pool-<pod>`: each pod owns its entry), which the
//! controller turns into `Ready` ("loaded in 2/2 pods of pool-default", or the pod's error).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use faas_api::Function;
use futures::StreamExt as _;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};

use crate::platform::Platform;
use crate::registry::Origin;

/// The label naming a Function's pool: the controller's, from the one pool rule.
pub use faas_api::pool::POOL_LABEL;

/// Which pool this pod serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolIdentity {
    /// The pool's name (`--pool`).
    pub name: String,
    /// `faas_api::pool::PoolKey::digest` of the pool (`--pool-key`, set by the controller).
    /// Without it (a pod rendered by an older controller) only the name is compared.
    pub key: Option<String>,
}

impl PoolIdentity {
    /// Why this pool does not load `function`, if it does not.
    pub fn refuse(&self, function: &Function) -> Option<String> {
        if let Err(errors) = faas_api::validate_for_cluster(function, None) {
            return Some(format!("refused in a cluster: {errors}"));
        }
        let computed = faas_api::pool::pool_of(function);
        let same_key = self
            .key
            .as_ref()
            .is_none_or(|key| *key == computed.key.digest());
        (computed.name != self.name || !same_key).then(|| {
            format!(
                "not a member of pool {}: its namespace and spec.placement put it in pool {}{} \
                 (the faas.dev/pool label is the controller's, it does not choose a pool)",
                self.name,
                computed.name,
                if computed.name == self.name {
                    " with another placement"
                } else {
                    ""
                }
            )
        })
    }
}

/// Follows the pool's Functions for as long as the platform lives. The platform turns ready
/// once the first complete list is loaded.
pub fn start(
    platform: &Arc<Platform>,
    client: Client,
    namespace: String,
    pool: PoolIdentity,
    pod: Option<String>,
) {
    tokio::spawn(follow(
        Arc::downgrade(platform),
        client,
        namespace,
        pool,
        pod,
    ));
}

/// The watch loop (public for tests, which drive it against a mock API server).
pub async fn follow(
    platform: Weak<Platform>,
    client: Client,
    namespace: String,
    pool: PoolIdentity,
    pod: Option<String>,
) {
    let api: Api<Function> = Api::namespaced(client.clone(), &namespace);
    let config = watcher::Config::default().labels(&format!("{POOL_LABEL}={}", pool.name));
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    tracing::info!(%namespace, pool = %pool.name, "runtime pool: following its Functions");
    let mut pool_state = PoolState {
        pod,
        identity: Some(pool),
        ..PoolState::default()
    };
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = stream.next() => match event {
                Some(event) => event,
                None => return,
            },
            _ = recheck.tick() => {
                let Some(platform) = platform.upgrade() else {
                    return;
                };
                pool_state.recheck(&platform, &client, &namespace).await;
                continue;
            }
        };
        let Some(platform) = platform.upgrade() else {
            return;
        };
        match event {
            Ok(Event::Init) => pool_state.listing = Some(HashSet::new()),
            Ok(Event::InitApply(function)) => {
                if let Some(listing) = pool_state.listing.as_mut() {
                    listing.insert(function.name_any());
                }
                pool_state
                    .load(&platform, &client, &namespace, function)
                    .await;
            }
            Ok(Event::InitDone) => {
                // A relist: whatever is not in it any more left the pool meanwhile.
                let listed = pool_state.listing.take().unwrap_or_default();
                let gone: Vec<String> = pool_state
                    .applied
                    .keys()
                    .filter(|name| !listed.contains(*name))
                    .cloned()
                    .collect();
                for name in gone {
                    pool_state.remove(&platform, &name);
                }
                if !platform.is_ready() {
                    let (ready, failed) = platform.registry.counts();
                    tracing::info!(ready, failed, "runtime pool: functions loaded");
                }
                platform.set_ready();
            }
            Ok(Event::Apply(function)) => {
                pool_state
                    .load(&platform, &client, &namespace, function)
                    .await;
            }
            Ok(Event::Delete(function)) => pool_state.remove(&platform, &function.name_any()),
            Err(e) => {
                tracing::warn!(error = %e, "runtime pool: watching Functions failed; retrying")
            }
        }
    }
}

#[derive(Default)]
struct PoolState {
    /// This pod's name: where it reports load outcomes (none: no reports).
    pod: Option<String>,
    /// The pool this pod serves: what it admits.
    identity: Option<PoolIdentity>,
    /// Function name -> the spec it was loaded with.
    applied: HashMap<String, String>,
    /// Names seen during a (re)list.
    listing: Option<HashSet<String>>,
    /// Function name -> what this pod last reported of it.
    reported: HashMap<String, faas_api::PodLoadState>,
}

/// How often loaded functions' degradations are looked at again (they change as credentials
/// and secrets are renewed in the background).
const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Why function `name` serves, but not as it should, as its status says it.
fn degradation(platform: &Platform, name: &str) -> Option<faas_api::PodDegradation> {
    let entry = platform.registry.get(name)?;
    let loaded = entry.state.as_ref().ok()?;
    loaded
        .invoker
        .degraded()
        .map(|why| faas_api::PodDegradation {
            reason: why.reason.to_owned(),
            message: why.message,
        })
}

impl PoolState {
    async fn load(
        &mut self,
        platform: &Platform,
        client: &Client,
        namespace: &str,
        function: Function,
    ) {
        let name = function.name_any();
        let spec = serde_json::to_string(&function.spec).unwrap_or_default();
        if self.applied.get(&name) == Some(&spec) {
            return;
        }
        let generation = function.metadata.generation;
        let refused = self
            .identity
            .as_ref()
            .and_then(|pool| pool.refuse(&function));
        let outcome = match refused {
            // Nothing of it is fetched or compiled, and a version loaded before goes.
            Some(why) => {
                if platform.registry.remove(&name).is_some() {
                    tracing::info!(function = %name, "runtime pool: function removed");
                }
                Err(why)
            }
            None => {
                let artifact = crate::artifact::for_pool(client, namespace, &function)
                    .await
                    .map_err(|e| e.to_string());
                platform
                    .apply(function, artifact, Origin::Cluster, None)
                    .await
            }
        };
        match &outcome {
            Ok(()) => tracing::info!(function = %name, "runtime pool: function loaded"),
            Err(reason) => {
                tracing::warn!(function = %name, %reason, "runtime pool: function not loaded")
            }
        }
        if let Some(pod) = &self.pod {
            let sha256 = platform
                .registry
                .get(&name)
                .and_then(|e| e.state.as_ref().ok().map(|l| l.sha256.clone()));
            let report = faas_api::PodLoadState {
                loaded: outcome.is_ok(),
                generation,
                sha256: sha256.filter(|_| outcome.is_ok()),
                degraded: outcome
                    .as_ref()
                    .ok()
                    .and_then(|()| degradation(platform, &name)),
                reason: outcome.err(),
            };
            report_load(client, namespace, &name, pod, &report).await;
            self.reported.insert(name.clone(), report);
        }
        self.applied.insert(name, spec);
    }

    /// Reports again each loaded function whose degradation changed since its last report
    /// (credentials that came or went, a secret that became readable): the Function's
    /// `Degraded` condition follows what its pods live through, not only what they loaded.
    async fn recheck(&mut self, platform: &Platform, client: &Client, namespace: &str) {
        let Some(pod) = &self.pod else { return };
        for (name, report) in &mut self.reported {
            if !report.loaded {
                continue;
            }
            let now = degradation(platform, name);
            if now != report.degraded {
                report.degraded = now;
                report_load(client, namespace, name, pod, report).await;
            }
        }
    }

    fn remove(&mut self, platform: &Platform, name: &str) {
        self.applied.remove(name);
        self.reported.remove(name);
        if platform.registry.remove(name).is_some() {
            tracing::info!(function = %name, "runtime pool: function removed");
        }
    }
}

/// Writes this pod's load outcome for one function into its status. Best effort: a failed
/// report only delays `Ready`; the next change of the function reports again.
async fn report_load(
    client: &Client,
    namespace: &str,
    function: &str,
    pod: &str,
    report: &faas_api::PodLoadState,
) {
    let functions: Api<Function> = Api::namespaced(client.clone(), namespace);
    // Every field, a cleared one as null: what an earlier report said (a degradation, a
    // failure) must not outlive it, whatever way the server merges the apply.
    let mut report = serde_json::to_value(report).unwrap_or_default();
    if let Some(fields) = report.as_object_mut() {
        for field in ["generation", "sha256", "reason", "degraded"] {
            fields.entry(field).or_insert(serde_json::Value::Null);
        }
    }
    let patch = serde_json::json!({
        "apiVersion": faas_api::API_VERSION,
        "kind": "Function",
        "status": {"loadState": {pod: report}},
    });
    let manager = faas_api::contract::pool_pod_manager(pod);
    if let Err(e) = functions
        .patch_status(
            function,
            &kube::api::PatchParams::apply(&manager).force(),
            &kube::api::Patch::Apply(&patch),
        )
        .await
    {
        tracing::warn!(function, error = %e, "runtime pool: could not report the load outcome");
    }
}
