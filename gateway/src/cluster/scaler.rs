//! Scale from zero and back to zero, for the functions whose `replicas` the gateway owns
//! (`scale.min: 0`, no SQS trigger: see `faas_api::scaling`).
//!
//! Up: a request for a function with no ready pod asks for one replica through the
//! Deployment's scale subresource (read, then write guarded by its resourceVersion, so a
//! gateway never lowers a count someone else raised). Down: after `scale.idleAfter` without
//! a request, back to zero.
//!
//! Each gateway replica sees only its own requests, so "idle" must hold for all of them:
//! every gateway publishes when it last served the function in a `coordination.k8s.io` Lease
//! of its own namespace ([`lease_name`]: `activity.<namespace>.<function>`, the time in
//! `spec.renewTime`, at most every quarter of `idleAfter`, and at once before it asks for a
//! replica), and a gateway scales down only when both its own traffic and the Lease are older
//! than `idleAfter`.
//!
//! The gateway never reads or writes a Deployment itself, only its `scale` subresource, so
//! its RBAC holds no verb that can change a pod template (it used to patch an annotation on
//! the Deployment, which needs `patch` on every Deployment of the cluster). The Leases live in
//! the gateway's namespace, not the functions', so it needs no write access to any tenant's
//! Leases (leader elections of other controllers live there).
//!
//! A scale-down reads the scale, then the Lease, writes the scale guarded by the version it
//! read, then reads the Lease again: if any gateway published traffic in between (a request
//! that found the pods about to go), it puts the replicas back at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_api::contract;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use prometheus::IntCounterVec;

/// Field manager of the gateway's writes.
pub const FIELD_MANAGER: &str = contract::GATEWAY;

/// The Lease where gateways publish when they last served `function` of `namespace`: in the
/// gateway's own namespace, so the name carries both (DNS labels, so the dot keeps it
/// unambiguous).
pub fn lease_name(namespace: &str, function: &str) -> String {
    format!("activity.{namespace}.{function}")
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// One function's traffic through this gateway.
#[derive(Debug)]
pub struct Activity {
    /// When a request last started or ended (ms since the epoch).
    last: AtomicI64,
    /// Requests in flight (held ones included).
    in_flight: AtomicUsize,
    /// `last` as last published in the Lease.
    published: AtomicI64,
    /// The last idle check found zero replicas and nothing happened since: no need to ask
    /// the API again until a request comes.
    at_zero: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        // A function this gateway just learned about counts as used now: a restarted
        // gateway must not scale everything down at once.
        Activity {
            last: AtomicI64::new(now_ms()),
            in_flight: AtomicUsize::new(0),
            published: AtomicI64::new(0),
            at_zero: AtomicBool::new(false),
        }
    }

    /// Counts a request until the guard is dropped (the response fully sent).
    pub fn start(self: &Arc<Self>) -> ActivityGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.last.store(now_ms(), Ordering::Relaxed);
        self.at_zero.store(false, Ordering::Relaxed);
        ActivityGuard(Arc::clone(self))
    }

    /// How long ago the last request ended, zero while one is in flight.
    pub fn idle_for(&self, now_ms: i64) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = self.last.load(Ordering::Relaxed);
        Duration::from_millis(u64::try_from(now_ms - last).unwrap_or(0))
    }
}

/// A request in flight (see [`Activity::start`]).
#[derive(Debug)]
pub struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0.last.store(now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an idle check did.
#[derive(Debug, PartialEq, Eq)]
pub enum IdleOutcome {
    /// Traffic within `idleAfter` (here or, per the Lease, through another gateway), or a
    /// scale-down undone because traffic was published while it was written.
    Busy,
    /// Already at zero.
    AtZero,
    /// Scaled from this many replicas to zero.
    ScaledDown(i32),
}

/// The Deployment of one function whose replicas the gateway owns.
pub struct ScaleTarget {
    deployments: Api<Deployment>,
    deployment: String,
    leases: Api<Lease>,
    lease: String,
    /// This gateway (its pod name), as the Lease's holder.
    identity: String,
    namespace: String,
    function: String,
    idle_after: Duration,
    activity: Arc<Activity>,
    waking: AtomicBool,
    events: IntCounterVec,
    cold_starts: crate::cold_start::ColdStarts,
}

impl ScaleTarget {
    /// The function's registry key, which labels its series.
    fn key(&self) -> String {
        faas_api::routing::qualified_name(&self.function, &self.namespace)
    }

    /// A request held while this function scaled from zero got a replica after `took`;
    /// recorded under the function's registry key (`name.namespace`), as every series of a
    /// function is (`Entry::key`).
    pub fn record_from_zero(&self, took: std::time::Duration) {
        self.cold_starts
            .record(&self.key(), crate::cold_start::Phase::ScaleFromZero, took);
    }

    /// Counts a scale event of this function (`faas_gateway_scale_total`).
    pub fn record(&self, event: &str) {
        self.events
            .with_label_values(&[self.key().as_str(), event])
            .inc();
    }

    /// This function's traffic.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// Asks for a replica in the background, once at a time.
    pub fn wake(self: &Arc<Self>) {
        if self.waking.swap(true, Ordering::AcqRel) {
            return;
        }
        let target = Arc::clone(self);
        tokio::spawn(async move {
            match target.scale_up().await {
                Ok(Some(from)) => {
                    target.record("from_zero");
                    tracing::info!(function = %target.function, from, "scaling from zero: asked for one replica")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(function = %target.function, error = %e, "cannot scale from zero")
                }
            }
            target.waking.store(false, Ordering::Release);
        });
    }

    /// Publishes the traffic, then sets one replica if there are none. `Some(previous)` when
    /// it changed the count.
    pub async fn scale_up(&self) -> Result<Option<i32>, kube::Error> {
        // First the Lease: a gateway deciding to scale down meanwhile then sees traffic,
        // before its write or right after it (and puts the replicas back).
        self.publish_activity().await?;
        self.ensure_replicas(1).await
    }

    /// Sets `replicas` if there are none; `Some(previous)` when it changed the count.
    async fn ensure_replicas(&self, replicas: i32) -> Result<Option<i32>, kube::Error> {
        let mut attempt = 0;
        loop {
            let mut scale = self.deployments.get_scale(&self.deployment).await?;
            let spec = scale.spec.get_or_insert_with(Default::default);
            let current = spec.replicas.unwrap_or(0);
            if current > 0 {
                return Ok(None);
            }
            spec.replicas = Some(replicas);
            match self
                .deployments
                .replace_scale(&self.deployment, &write_params(), &scale)
                .await
            {
                Ok(_) => return Ok(Some(current)),
                // Someone wrote in between (another gateway, the controller): read again.
                Err(kube::Error::Api(status)) if status.code == 409 && attempt < 3 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes this gateway's last request time into the function's Lease (creating it), unless
    /// the Lease already holds a later one. Guarded by the Lease's resourceVersion: two
    /// gateways publishing at once both land, in some order, and the later time stays.
    pub async fn publish_activity(&self) -> Result<(), kube::Error> {
        let last = self.activity.last.load(Ordering::Relaxed);
        let stamp = jiff::Timestamp::from_millisecond(last).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.leases.get_opt(&self.lease).await? {
                None => {
                    let lease = Lease {
                        metadata: ObjectMeta {
                            name: Some(self.lease.clone()),
                            labels: Some(
                                [
                                    (contract::MANAGED_BY_LABEL, FIELD_MANAGER),
                                    (contract::FUNCTION_LABEL, self.function.as_str()),
                                    (contract::NAMESPACE_LABEL, self.namespace.as_str()),
                                ]
                                .into_iter()
                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                .collect(),
                            ),
                            ..ObjectMeta::default()
                        },
                        spec: Some(LeaseSpec {
                            holder_identity: Some(self.identity.clone()),
                            renew_time: Some(MicroTime(stamp)),
                            ..LeaseSpec::default()
                        }),
                    };
                    self.leases.create(&write_params(), &lease).await.map(drop)
                }
                Some(mut lease) => {
                    let spec = lease.spec.get_or_insert_with(Default::default);
                    if spec.renew_time.as_ref().is_some_and(|t| t.0 >= stamp) {
                        // Another gateway published later traffic: nothing to add.
                        break;
                    }
                    spec.renew_time = Some(MicroTime(stamp));
                    spec.holder_identity = Some(self.identity.clone());
                    self.leases
                        .replace(&self.lease, &write_params(), &lease)
                        .await
                        .map(drop)
                }
            };
            match result {
                Ok(()) => break,
                // Created or written by another gateway in between: read again.
                Err(kube::Error::Api(status)) if status.code == 409 && attempt < 4 => {}
                Err(e) => return Err(e),
            }
        }
        self.activity.published.store(last, Ordering::Relaxed);
        Ok(())
    }

    /// The Lease's last request time (ms) and version, if it exists.
    async fn published_elsewhere(&self) -> Result<(Option<i64>, Option<String>), kube::Error> {
        let lease = self.leases.get_opt(&self.lease).await?;
        let time = lease
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.as_millisecond());
        let version = lease.and_then(|l| l.metadata.resource_version);
        Ok((time, version))
    }

    /// Publishes traffic when due; scales to zero when the function was idle for
    /// `idleAfter` through every gateway.
    pub async fn check_idle(&self, now_ms: i64) -> Result<IdleOutcome, kube::Error> {
        if self.activity.in_flight.load(Ordering::Relaxed) > 0 {
            // A long request is traffic for as long as it runs: other gateways must see it.
            self.activity.last.store(now_ms, Ordering::Relaxed);
        }
        let last = self.activity.last.load(Ordering::Relaxed);
        let published = self.activity.published.load(Ordering::Relaxed);
        let every = i64::try_from(self.idle_after.as_millis() / 4).unwrap_or(i64::MAX);
        if last > published && now_ms - published >= every {
            self.publish_activity().await?;
        }
        if self.activity.idle_for(now_ms) < self.idle_after {
            return Ok(IdleOutcome::Busy);
        }
        if self.activity.at_zero.load(Ordering::Relaxed) {
            return Ok(IdleOutcome::AtZero);
        }
        // The scale first, then the Lease: the write below carries the scale's version, and
        // traffic published after the Lease read is caught by the second read.
        let scale = self.deployments.get_scale(&self.deployment).await?;
        let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        if current == 0 {
            self.activity.at_zero.store(true, Ordering::Relaxed);
            return Ok(IdleOutcome::AtZero);
        }
        let (elsewhere, version) = self.published_elsewhere().await?;
        if elsewhere.is_some_and(|t| {
            Duration::from_millis(u64::try_from(now_ms - t).unwrap_or(0)) < self.idle_after
        }) {
            return Ok(IdleOutcome::Busy);
        }
        let mut down = scale;
        down.spec.get_or_insert_with(Default::default).replicas = Some(0);
        down.status = None;
        match self
            .deployments
            .replace_scale(&self.deployment, &write_params(), &down)
            .await
        {
            Ok(_) => {}
            // Someone scaled in between (a gateway from zero, the controller): not idle.
            Err(kube::Error::Api(status)) if status.code == 409 => return Ok(IdleOutcome::Busy),
            Err(e) => return Err(e),
        }
        // A gateway that published between our read and our write saw replicas and will not
        // ask for any: give them back now rather than let its requests wait for a timeout.
        let (_, after) = self.published_elsewhere().await?;
        if after != version {
            self.ensure_replicas(current).await?;
            tracing::info!(function = %self.function, "traffic during the scale-down: replicas restored");
            return Ok(IdleOutcome::Busy);
        }
        Ok(IdleOutcome::ScaledDown(current))
    }
}

/// Parameters of every create and replace the gateway makes (its Leases, scale, a webhook's
/// `FunctionRun`): its writes carry its name as their field manager, so `managedFields` say
/// which component owns what.
pub fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// The scale targets of every function the gateway scales, by `(namespace, function)`.
pub struct Scaler {
    client: Client,
    events: IntCounterVec,
    cold_starts: crate::cold_start::ColdStarts,
    targets: Mutex<HashMap<(String, String), Arc<ScaleTarget>>>,
}

impl Scaler {
    /// Scales through `client`, counting what it does in `events` and timing the holds of
    /// scales from zero in `cold_starts`.
    pub fn new(
        client: Client,
        events: IntCounterVec,
        cold_starts: crate::cold_start::ColdStarts,
    ) -> Self {
        Scaler {
            client,
            events,
            cold_starts,
            targets: Mutex::new(HashMap::new()),
        }
    }

    /// The target of `function` (Deployment `deployment` in `namespace`), keeping the
    /// traffic already counted when its settings change.
    pub fn target(
        &self,
        namespace: &str,
        function: &str,
        deployment: &str,
        idle_after: Duration,
    ) -> Arc<ScaleTarget> {
        let mut targets = self.lock();
        let key = (namespace.to_owned(), function.to_owned());
        if let Some(existing) = targets.get(&key)
            && existing.idle_after == idle_after
            && existing.deployment == deployment
        {
            return Arc::clone(existing);
        }
        let activity = targets
            .get(&key)
            .map_or_else(|| Arc::new(Activity::new()), |t| Arc::clone(&t.activity));
        let target = Arc::new(ScaleTarget {
            deployments: Api::namespaced(self.client.clone(), namespace),
            deployment: deployment.to_owned(),
            // The gateway's own namespace (in a pod, the ServiceAccount's).
            leases: Api::default_namespaced(self.client.clone()),
            lease: lease_name(namespace, function),
            identity: std::env::var("POD_NAME").unwrap_or_else(|_| FIELD_MANAGER.to_owned()),
            namespace: namespace.to_owned(),
            function: function.to_owned(),
            idle_after,
            activity,
            waking: AtomicBool::new(false),
            events: self.events.clone(),
            cold_starts: self.cold_starts.clone(),
        });
        targets.insert(key, Arc::clone(&target));
        target
    }

    /// Stops scaling `function` (deleted, or someone else owns its replicas now).
    pub fn forget(&self, namespace: &str, function: &str) {
        self.lock()
            .remove(&(namespace.to_owned(), function.to_owned()));
    }

    /// One idle check of every target; errors are logged, the next round tries again.
    pub async fn check_all(&self) {
        let targets: Vec<Arc<ScaleTarget>> = self.lock().values().cloned().collect();
        let now = now_ms();
        for target in targets {
            match target.check_idle(now).await {
                Ok(IdleOutcome::ScaledDown(from)) => {
                    target.record("to_zero");
                    tracing::info!(
                    function = %target.function,
                    from,
                    idle_after = %humantime::format_duration(target.idle_after),
                    "idle: scaled to zero"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(function = %target.function, error = %e, "idle check failed")
                }
            }
        }
    }

    /// Runs [`Scaler::check_all`] every `every` for as long as the scaler lives.
    pub fn spawn_idle_checks(self: &Arc<Self>, every: Duration) {
        let scaler = Arc::downgrade(self);
        tokio::spawn(async move {
            // The first check one period after start, not at once: a gateway that just
            // started has seen no traffic yet and has nothing to publish or decide.
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(scaler) = scaler.upgrade() else {
                    return;
                };
                scaler.check_all().await;
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<ScaleTarget>>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }
}
