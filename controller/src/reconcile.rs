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
pub const MANAGER: &str = "faas-controller";
/// Our finalizer on Functions.
pub const FINALIZER: &str = "faas.dev/cleanup";
/// How often a Function is re-checked without any event (drift from manual edits).
const RESYNC: Duration = Duration::from_secs(300);
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

/// The Function's validation in a cluster: the common rules, and the NetworkPolicy form of a
/// container function's `spec.network` (host names cannot be enforced there).
pub fn valid(function: &Function) -> Result<(), faas_api::validate::ValidationErrors> {
    faas_api::validate(function)?;
    crate::render::network::check(function)
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
        ..Observed::default()
    };
    let valid = valid(function).is_ok();
    if valid && function.spec.runtime.wasm.is_some() {
        crate::pools::apply_pool(function, ctx, &namespace, &mut observed).await?;
    } else if function
        .labels()
        .contains_key(crate::render::pool::POOL_LABEL)
    {
        // It was pooled and is not any more (it became a container function, or invalid):
        // its old pool may be unused now.
        crate::pools::collect_unused(ctx, &namespace).await?;
    }
    let runnable = valid
        && function
            .spec
            .runtime
            .container
            .as_ref()
            .is_some_and(|c| c.image.is_some() && c.mode != faas_api::ContainerMode::Cgi);
    if runnable && let Some(mut workload) = workload::workload(function, &ctx.defaults) {
        let apply = Applier {
            client: &ctx.client,
            namespace: &namespace,
            owner: Some(&owner),
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
        if function.spec.replicas_owner(keda_objects.is_some()) != ReplicasOwner::Controller {
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
    write_status(function, ctx, &namespace, &observed).await?;
    Ok(Action::requeue(RESYNC))
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
        // A pool is shared, not owned: the last member to go takes it along.
        if function
            .labels()
            .contains_key(crate::render::pool::POOL_LABEL)
        {
            crate::pools::collect_unused(ctx, &namespace).await?;
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
    let managed =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let mut controller = Controller::new(functions, watcher::Config::default().any_semantic())
        .owns(deployments, managed);
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
