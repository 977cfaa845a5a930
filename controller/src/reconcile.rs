//! The reconcile shell: the I/O around [`crate::render`] and [`crate::status`].
//!
//! One pass for a Function: make sure it carries our finalizer, server-side apply (field
//! manager `faas-controller`, forced: this controller owns these fields) every object the
//! render functions return, each owned by the Function so Kubernetes garbage-collects them,
//! delete the optional ones the spec no longer asks for, then write the status computed from
//! what the API server answered. Nothing here decides what a Function should become: that is
//! the pure code, tested branch by branch; this file is tested request by request
//! (`tests/reconcile.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_api::Function;
use faas_api::scaling::ReplicasOwner;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Client, Resource, ResourceExt};

use crate::applier::Applier;
use crate::metrics::Metrics;
use crate::render::scaling::scaling;
use crate::render::{ClusterDefaults, object_name, service_account, workload};
use crate::status::{self, Observed};

/// Field manager of every apply.
pub const MANAGER: &str = faas_api::contract::CONTROLLER;
/// Our finalizer on Functions.
pub const FINALIZER: &str = faas_api::contract::FINALIZER;
/// How often a Function is re-checked without any event (drift from manual edits).
const RESYNC: Duration = Duration::from_secs(300);
/// Longest wait for the first list of every Function (the routes' other claimants).
const STORE_WAIT: Duration = Duration::from_secs(10);
/// Retry after a failed pass.
const RETRY: Duration = Duration::from_secs(15);

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// What the chart says about the cluster.
    pub defaults: ClusterDefaults,
    /// KEDA's CRDs are installed (checked at start).
    pub keda: bool,
    /// The gateway's public base URL, for `status.url`.
    pub public_url: Option<String>,
    /// Publishes Events on Functions.
    pub recorder: Recorder,
    /// Reconcile metrics.
    pub metrics: Metrics,
    /// What Functions may claim as routes (the platform's hosts, allowed wildcard suffixes).
    pub routing: faas_api::routing::RoutingPolicy,
    /// Every Function, as the controller's watch sees them: the other claimants of a
    /// Function's routes. `None`: only the Function itself is considered.
    pub functions: Option<kube::runtime::reflector::Store<Function>>,
    /// The platform token (the chart's Secret): the key of webhook token digests
    /// (`crate::webhook`).
    pub platform_token: Option<String>,
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// Adding or removing the finalizer failed, or the apply/cleanup inside it did.
    // Boxed: the finalizer error wraps this type.
    #[error(transparent)]
    Finalizer(Box<kube::runtime::finalizer::Error<Error>>),
    /// The Function has no namespace or uid (not from the API server).
    #[error("the Function has no {0}")]
    Incomplete(&'static str),
    /// An object the Function needs exists and faas did not make it: not taken over.
    #[error(
        "{kind} {name} exists and was not made by faas (no Function owner, no \
         app.kubernetes.io/managed-by: faas-controller label); it is left alone: rename the \
         Function or remove that object"
    )]
    NotOwned { kind: String, name: String },
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "api",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
            Error::Incomplete(_) => "incomplete",
            Error::NotOwned { .. } => "not_owned",
        }
    }
}

pub(crate) fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

/// One pass for `function`.
pub async fn reconcile(function: Arc<Function>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = function.namespace().ok_or(Error::Incomplete("namespace"))?;
    let functions: Api<Function> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&functions, FINALIZER, function, |event| async {
        match event {
            Finalizer::Apply(function) => apply(&function, &ctx).await,
            Finalizer::Cleanup(function) => cleanup(&function, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.observe(&result, started.elapsed());
    result
}

/// After a failed pass: log, count, retry soon.
pub fn error_policy(function: Arc<Function>, error: &Error, _ctx: Arc<Context>) -> Action {
    // Counted by `reconcile` already (it sees every outcome).
    tracing::warn!(function = %function.name_any(), namespace = ?function.namespace(), %error, "reconcile failed");
    Action::requeue(RETRY)
}

/// Applies the Function's objects and writes its status.
async fn apply(function: &Function, ctx: &Context) -> Result<Action, Error> {
    let namespace = function.namespace().ok_or(Error::Incomplete("namespace"))?;
    let owner = function
        .controller_owner_ref(&())
        .ok_or(Error::Incomplete("uid"))?;
    let mut observed = Observed {
        keda: ctx.keda,
        public_url: ctx.public_url.clone(),
        route_losses: route_losses(function, ctx).await,
        ..Observed::default()
    };
    let valid = faas_api::validate(function).is_ok();
    // What the cluster refuses (host directories, unpinned artifacts, roles, node groups and
    // labels the platform team did not allow, a pool it does not fit): nothing is rendered.
    if valid
        && let Err(refused) = faas_api::validate_for_cluster(function, Some(&ctx.defaults.policy))
    {
        observed.refused = Some(refused.to_string());
    }
    let allowed = valid && observed.refused.is_none();
    if allowed {
        observed.webhook = crate::webhook::observe(function, ctx, &namespace).await;
    }
    let pooled = if allowed && function.spec.runtime.wasm.is_some() {
        // Its identity, as a container function's: the ServiceAccount whose tokens its pool
        // exchanges for its IAM role (the pool's Role names it, `render::pool_tokens`).
        let own = Applier {
            client: &ctx.client,
            namespace: &namespace,
            owner: Some(&owner),
        };
        let pooling = match own.typed(service_account::service_account(function)).await {
            Ok(_) => crate::pools::apply_pool(function, ctx, &namespace, &mut observed).await,
            Err(e) => Err(e),
        };
        match pooling {
            Err(Error::NotOwned { kind, name }) => {
                observed.not_owned = Some(format!("{kind} {name}"));
                false
            }
            Err(e) => return Err(e),
            Ok(()) => observed.pool_conflict.is_none(),
        }
    } else {
        false
    };
    if !pooled && let Some(left) = function.labels().get(crate::render::pool::POOL_LABEL) {
        // Not (or no more) in a pool: a container function now, invalid, refused, or naming
        // a pool it cannot share. A pool label the controller did not set is removed too.
        crate::pools::strip_pool_label(function, ctx, &namespace).await?;
        crate::pools::leave(ctx, &namespace, &function.name_any(), left).await?;
    }
    // A container function gets its own objects exactly when the cluster contract says it
    // is served by them (the gateway and cron send its requests there).
    let runnable = allowed
        && matches!(
            faas_api::contract::workload(function),
            Ok(faas_api::contract::Workload::Http | faas_api::contract::Workload::Lambda)
        );
    if runnable && let Some(workload) = workload::workload(function, &ctx.defaults) {
        match apply_workload(function, ctx, &namespace, &owner, workload, &mut observed).await {
            Err(Error::NotOwned { kind, name }) => {
                observed.not_owned = Some(format!("{kind} {name}"));
            }
            other => other?,
        }
    }
    // A job's runs are Jobs the scheduler creates: between runs it has only its identity
    // (the ServiceAccount of its IAM role) and the NetworkPolicy its run pods get.
    let job = allowed
        && matches!(
            faas_api::contract::workload(function),
            Ok(faas_api::contract::Workload::Job)
        );
    if job {
        let apply = Applier {
            client: &ctx.client,
            namespace: &namespace,
            owner: Some(&owner),
        };
        let applied = async {
            if let Some(network) = &ctx.defaults.network
                && let Ok(policy) = crate::render::network::function_policy(function, network)
            {
                apply.typed(policy).await?;
            }
            apply
                .typed(service_account::service_account(function))
                .await
                .map(drop)
        };
        match applied.await {
            Err(Error::NotOwned { kind, name }) => {
                observed.not_owned = Some(format!("{kind} {name}"));
            }
            other => {
                other?;
                observed.job_ready = true;
            }
        }
    }
    write_status(function, ctx, &namespace, &observed).await?;
    Ok(Action::requeue(RESYNC))
}

/// Applies a container function's objects.
async fn apply_workload(
    function: &Function,
    ctx: &Context,
    namespace: &str,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    mut workload: workload::Workload,
    observed: &mut Observed,
) -> Result<(), Error> {
    {
        let apply = Applier {
            client: &ctx.client,
            namespace,
            owner: Some(owner),
        };
        apply
            .typed(service_account::service_account(function))
            .await?;
        // The pods' NetworkPolicy before the pods: none runs unrestricted.
        if let Some(network) = &ctx.defaults.network
            && let Ok(policy) = crate::render::network::function_policy(function, network)
        {
            apply.typed(policy).await?;
        }
        // KEDA's objects, when KEDA is installed and the function has SQS triggers.
        let keda_objects = ctx.keda.then(|| scaling(function, &ctx.defaults)).flatten();
        let keda_scales = keda_objects.is_some();
        if function.spec.replicas_owner(keda_scales) == ReplicasOwner::Controller {
            // The floor that keeps every event source served (a queue's poller, a
            // schedule's fires), from the one rule in `faas_api::scaling`.
            let min = function.spec.min_replicas(keda_scales);
            workload.deployment.spec.replicas = Some(i32::try_from(min).unwrap_or(i32::MAX));
        } else {
            // KEDA's HorizontalPodAutoscaler, or the gateway (scale from and to zero), owns
            // `replicas`: leaving it out of our apply gives up our ownership of the field
            // instead of fighting over it. A new Deployment then starts with one replica,
            // which the gateway takes back after `scale.idleAfter` without traffic.
            workload.deployment.spec.replicas = None;
        }
        observed.deployment = Some(apply.typed(workload.deployment).await?);
        apply.typed(workload.service).await?;
        let pdb_name = object_name(&function.name_any());
        match workload.pdb {
            Some(pdb) => {
                apply.typed(pdb).await?;
            }
            None => apply.delete::<PodDisruptionBudget>(&pdb_name).await?,
        }
        if ctx.keda {
            match keda_objects {
                Some((scaled_object, authentication)) => {
                    apply.dynamic(authentication).await?;
                    apply.dynamic(scaled_object).await?;
                }
                None => {
                    apply.delete_dynamic("ScaledObject", &pdb_name).await?;
                    apply
                        .delete_dynamic("TriggerAuthentication", &pdb_name)
                        .await?;
                }
            }
        }
    }
    Ok(())
}

/// The routes `function` asked for and did not get, judged against every Function the
/// controller sees (the same rule as the gateway's route table).
async fn route_losses(function: &Function, ctx: &Context) -> Vec<faas_api::routing::Loss> {
    let id = faas_api::routing::FunctionId::of(function);
    let Some(store) = &ctx.functions else {
        return faas_api::routing::Claims::decide([function], &ctx.routing)
            .losses_of(&id)
            .to_vec();
    };
    // Before the first list is in, a partial set could hand a route to the wrong Function;
    // a list that never comes (RBAC) must not hang every reconcile: the pass goes on without
    // a verdict, and the resync tries again.
    match tokio::time::timeout(STORE_WAIT, store.wait_until_ready()).await {
        Ok(Ok(())) => {}
        _ => {
            tracing::warn!(function = %id, "the Function list is not in yet; routes not judged");
            return Vec::new();
        }
    }
    let all = store.state();
    // The version being reconciled, not the store's (possibly older) copy.
    let others = all
        .iter()
        .map(|f| f.as_ref())
        .filter(|f| faas_api::routing::FunctionId::of(f) != id);
    faas_api::routing::Claims::decide(others.chain([function]), &ctx.routing)
        .losses_of(&id)
        .to_vec()
}

/// The Functions placed in the pool whose Deployment `pool` is: same namespace, the pool's
/// label (which the controller sets on its members).
pub fn pool_members(
    store: &kube::runtime::reflector::Store<Function>,
    pool: &k8s_openapi::api::apps::v1::Deployment,
) -> Vec<kube::runtime::reflector::ObjectRef<Function>> {
    let label = crate::render::pool::POOL_LABEL;
    let Some(name) = pool.labels().get(label) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|f| f.metadata.namespace == pool.metadata.namespace)
        .filter(|f| f.labels().get(label) == Some(name))
        .map(|f| kube::runtime::reflector::ObjectRef::from_obj(f.as_ref()))
        .collect()
}

/// The Functions whose routes may change when `changed` does: those sharing its name, a
/// host or its path, and those that already lost a route. They are reconciled again, so a
/// loser learns it lost (or won back) without waiting for the resync.
pub fn route_contenders(
    store: &kube::runtime::reflector::Store<Function>,
    changed: &Function,
) -> Vec<kube::runtime::reflector::ObjectRef<Function>> {
    let id = faas_api::routing::FunctionId::of(changed);
    let hosts = |f: &Function| {
        f.spec
            .http
            .as_ref()
            .map(|h| h.hosts.clone())
            .unwrap_or_default()
    };
    let path = |f: &Function| f.spec.http.as_ref().and_then(|h| h.path.clone());
    let (my_hosts, my_path) = (hosts(changed), path(changed));
    store
        .state()
        .iter()
        .filter(|other| faas_api::routing::FunctionId::of(other) != id)
        .filter(|other| {
            other.metadata.name == changed.metadata.name
                || hosts(other).iter().any(|h| my_hosts.contains(h))
                || (my_path.is_some() && path(other) == my_path)
                || other
                    .status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "RouteConflict"))
        })
        .map(|other| kube::runtime::reflector::ObjectRef::from_obj(other.as_ref()))
        .collect()
}

/// Computes the status; writes it (and an Event when `Ready` changes) if it changed.
async fn write_status(
    function: &Function,
    ctx: &Context,
    namespace: &str,
    observed: &Observed,
) -> Result<(), Error> {
    let name = function.name_any();
    let new = status::status(function, observed, jiff::Timestamp::now());
    ctx.metrics.record_readiness(
        namespace,
        &name,
        status::find(&new, "Ready").is_some_and(|c| c.status == "True"),
    );
    let old = status::reconciler_part(&function.status.clone().unwrap_or_default());
    if old == new {
        return Ok(());
    }
    let functions: Api<Function> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": faas_api::API_VERSION,
        "kind": "Function",
        "status": new,
    });
    functions
        .patch_status(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(api_error(format!("writing the status of Function {name}")))?;
    let before = status::find(&old, "Ready").map(|c| (c.status.clone(), c.reason.clone()));
    let now = status::find(&new, "Ready");
    if let Some(now) = now
        && before != Some((now.status.clone(), now.reason.clone()))
    {
        let event = Event {
            type_: if now.status == "True" {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: now.reason.clone().unwrap_or_default(),
            note: now.message.clone(),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        // An Event is best effort: the status already says it.
        if let Err(e) = ctx
            .recorder
            .publish(&event, &function.object_ref(&()))
            .await
        {
            tracing::debug!(function = %name, error = %e, "could not publish an Event");
        }
    }
    Ok(())
}

/// Deletion: the owned objects go with the Function (owner references); what they cannot
/// clean up is done here: a shared runtime pool that has no member left is deleted.
async fn cleanup(function: &Function, ctx: &Context) -> Result<Action, Error> {
    if let Some(namespace) = function.namespace() {
        ctx.metrics.forget(&namespace, &function.name_any());
        // A pool is shared, not owned: it is rendered again for the members it keeps, and
        // the last member to go takes it along.
        if let Some(left) = function.labels().get(crate::render::pool::POOL_LABEL) {
            crate::pools::leave(ctx, &namespace, &function.name_any(), left).await?;
        }
    }
    let event = Event {
        type_: EventType::Normal,
        reason: "Deleting".to_owned(),
        note: Some(
            "its own objects are garbage-collected; a runtime pool it leaves empty is deleted"
                .to_owned(),
        ),
        action: "Cleanup".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx
        .recorder
        .publish(&event, &function.object_ref(&()))
        .await
    {
        tracing::debug!(function = %function.name_any(), error = %e, "could not publish an Event");
    }
    Ok(Action::await_change())
}

/// Whether KEDA's `ScaledObject` kind is served by the cluster.
pub async fn keda_installed(client: &Client) -> bool {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "keda.sh",
        "v1alpha1",
        "ScaledObject",
    ));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    api.list(&kube::api::ListParams::default().limit(1))
        .await
        .is_ok()
}

/// The controller loop: Functions (in `namespace`, or everywhere) and the Deployments this
/// controller made, each change reconciled; runs until the stream is dropped or, with
/// `until_signal`, until SIGTERM/SIGINT.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>, until_signal: bool) {
    use faas_api::contract::MANAGED_BY_LABEL;
    use futures::StreamExt as _;
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::runtime::{Controller, watcher};

    let client = ctx.client.clone();
    let (functions, deployments): (Api<Function>, Api<Deployment>) = match namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
    let mut controller =
        Controller::new(functions.clone(), watcher::Config::default().any_semantic())
            .owns(deployments.clone(), managed);
    if let Some(store) = ctx.functions.clone() {
        // A change of one Function's routes can decide another's RouteConflict.
        let contenders = store.clone();
        controller = controller.watches(
            functions,
            watcher::Config::default().any_semantic(),
            move |changed: Function| route_contenders(&contenders, &changed),
        );
        // A pool's Deployment belongs to no Function (it outlives each member), so `owns`
        // does not see it: its members' Ready follows its pods through this watch.
        let pools = watcher::Config::default().labels(&format!(
            "{MANAGED_BY_LABEL}={MANAGER},{}",
            crate::render::pool::POOL_LABEL
        ));
        controller = controller.watches(deployments, pools, move |pool: Deployment| {
            pool_members(&store, &pool)
        });
    }
    if until_signal {
        controller = controller.shutdown_on_signal();
    }
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}
