//! The cluster gateway's parts (`faas-gateway --cluster`, the edge behind the shared ALB).
//! Its composition root (listeners, lifecycle) is [`crate::host::cluster`]; its watches are
//! [`crate::source::cluster`]; its loader is [`crate::load::remote`].
//!
//! The same request path as every mode (routing, body limit, concurrency, metrics, async
//! calls); what differs is where functions come from and where they run:
//!
//! - [`functions`]: the registry follows `Function` resources (a watch per namespace, or one
//!   for all); each entry's invoker is a [`upstream::RemoteFunction`];
//! - [`endpoints`]: the ready pods of every function and pool Service, from EndpointSlices;
//! - [`upstream`]: least in-flight of two random pods, the hold while a function at zero
//!   replicas starts, forwarding;
//! - [`scaler`]: scale from zero and back to zero for the functions whose replicas the
//!   gateway owns (`faas_api::scaling`);
//! - [`relist`]: which objects a watch's relist saw, per watch scope (both watches use it).
//!

pub mod endpoints;
pub mod functions;
pub mod relist;
pub mod scaler;
pub mod upstream;

/// The slices the gateway watches: those the EndpointSlice controller made
/// ([`endpoints::SLICE_MANAGER_LABEL`]) for a Service the faas controller created (the
/// EndpointSlice controller copies the Service's labels), not every slice of the cluster, and
/// never a hand-made one. [`endpoints::Endpoints::apply`] checks the manager label again.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=faas-controller,\
     endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io";
