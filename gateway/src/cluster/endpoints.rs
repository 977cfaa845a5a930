//! Upstream addresses from EndpointSlices: per Service, the ready endpoints of all its slices,
//! published on a `watch` channel so a request held for a function at zero replicas wakes up
//! the moment its first pod turns ready.
//!
//! Only ready endpoints are used. A terminating pod (spot interruption, rollout) turns
//! not-ready as soon as its deletion starts, so the gateway stops choosing it while its
//! in-flight requests finish; `ready` left unset counts as ready, as the EndpointSlice API
//! asks consumers to do.
//!
//! Only slices the EndpointSlice controller made are used ([`SLICE_MANAGER_LABEL`]), and no
//! address a pod cannot have: link-local and instance-metadata ranges (169.254.0.0/16,
//! fe80::/10, fd00:ec2::/32), loopback and unspecified. A slice is data anyone allowed to
//! write EndpointSlices in a namespace can forge; without these checks it would turn the
//! gateway into a proxy to the node's metadata endpoint or to itself.
//!
//! A backend keeps its in-flight counter across slice updates (keyed by address), so the
//! least-in-flight choice is not reset each time a pod elsewhere in the Service changes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use tokio::sync::watch;

use super::relist::{Relists, covers};

/// The label naming the Service of an EndpointSlice.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label the EndpointSlice controller sets on the slices it manages, and its value.
pub const SLICE_MANAGER_LABEL: (&str, &str) = (
    "endpointslice.kubernetes.io/managed-by",
    "endpointslice-controller.k8s.io",
);
/// The Service port the gateway sends to (both function and pool Services name it so).
pub const PORT_NAME: &str = "http";

/// One pod address of a Service, with the requests the gateway has in flight on it.
#[derive(Debug)]
pub struct Backend {
    /// Pod IP and target port.
    pub addr: SocketAddr,
    /// The pod's name, from the endpoint's `targetRef` (for a run's log tail: see
    /// [`faas_api::contract::POD_HEADER`]).
    pub pod: Option<String>,
    in_flight: AtomicUsize,
}

impl Backend {
    pub(crate) fn new(addr: SocketAddr, pod: Option<String>) -> Self {
        Backend {
            addr,
            pod,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Requests in flight on it from this gateway.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request until the returned guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(Arc::clone(self))
    }
}

/// A request in flight on a backend (see [`Backend::start`]).
#[derive(Debug)]
pub struct InFlightGuard(Arc<Backend>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The ready backends of one Service, as published.
pub type Backends = Arc<[Arc<Backend>]>;

/// `namespace/service`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

struct ServiceState {
    /// Slice name -> its ready addresses.
    slices: HashMap<String, SliceAddresses>,
    published: watch::Sender<Backends>,
}

impl ServiceState {
    fn new() -> Self {
        ServiceState {
            slices: HashMap::new(),
            published: watch::Sender::new(Arc::from(Vec::new())),
        }
    }

    /// Publishes the union of the slices, reusing the `Backend`s of addresses already known.
    fn publish(&self) {
        let mut addrs: Vec<SocketAddr> = self
            .slices
            .values()
            .flat_map(|s| s.ready.iter())
            .copied()
            .collect();
        if addrs.is_empty() {
            // Every pod is terminating (a whole node group drained at once): the ones still
            // serving finish their work better than a 503 would, as kube-proxy also does.
            addrs = self
                .slices
                .values()
                .flat_map(|s| s.serving.iter())
                .copied()
                .collect();
        }
        addrs.sort();
        addrs.dedup();
        let pod_of =
            |addr: &SocketAddr| self.slices.values().find_map(|s| s.pods.get(addr)).cloned();
        let wanted: Vec<(SocketAddr, Option<String>)> =
            addrs.into_iter().map(|a| (a, pod_of(&a))).collect();
        let current = self.published.borrow().clone();
        if current
            .iter()
            .map(|b| (b.addr, b.pod.as_ref()))
            .eq(wanted.iter().map(|(a, p)| (*a, p.as_ref())))
        {
            return;
        }
        // A new pod that got an old pod's address is a new backend.
        let known: HashMap<(SocketAddr, Option<&String>), &Arc<Backend>> = current
            .iter()
            .map(|b| ((b.addr, b.pod.as_ref()), b))
            .collect();
        let next: Vec<Arc<Backend>> = wanted
            .iter()
            .map(|(addr, pod)| {
                known.get(&(*addr, pod.as_ref())).map_or_else(
                    || Arc::new(Backend::new(*addr, pod.clone())),
                    |b| Arc::clone(b),
                )
            })
            .collect();
        self.published.send_replace(Arc::from(next));
    }
}

/// Every Service's ready backends, fed by the EndpointSlice watch.
#[derive(Default)]
pub struct Endpoints {
    services: Mutex<HashMap<ServiceKey, ServiceState>>,
    /// The slices seen by each relist in progress (see [`Endpoints::relist_started`]).
    relisting: Mutex<Relists<(ServiceKey, String)>>,
    /// Accept loopback addresses: only for tests and benchmarks, whose "pods" listen on
    /// loopback. In a cluster a loopback endpoint is the gateway itself (its admin listener
    /// trusts loopback peers), so it is refused.
    loopback: bool,
}

impl Endpoints {
    /// Endpoints that accept loopback addresses (see the field); never in a cluster.
    pub fn allowing_loopback() -> Self {
        Endpoints {
            loopback: true,
            ..Endpoints::default()
        }
    }

    /// The ready backends of `service`, now and as they change. A Service nobody has
    /// seen slices of yet has none (a function scaled to zero, or not created yet).
    pub fn subscribe(&self, service: &ServiceKey) -> watch::Receiver<Backends> {
        self.lock()
            .entry(service.clone())
            .or_insert_with(ServiceState::new)
            .published
            .subscribe()
    }

    /// The ready backends of `service` right now.
    pub fn ready(&self, service: &ServiceKey) -> Backends {
        self.lock()
            .get(service)
            .map(|s| s.published.borrow().clone())
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// A slice was created or changed. One the EndpointSlice controller does not manage is
    /// ignored (and forgotten, if it was known).
    pub fn apply(&self, slice: &EndpointSlice) {
        if !managed_by_endpointslice_controller(slice) {
            tracing::warn!(slice = %slice.name_any(), namespace = ?slice.namespace(), "ignoring an EndpointSlice the EndpointSlice controller does not manage");
            self.delete(slice);
            return;
        }
        let Some((service, name)) = slice_key(slice) else {
            return;
        };
        self.relisting_lock()
            .saw(&service.namespace, &(service.clone(), name.clone()));
        let mut services = self.lock();
        let state = services.entry(service).or_insert_with(ServiceState::new);
        state
            .slices
            .insert(name, slice_addresses(slice, self.loopback));
        state.publish();
    }

    /// A slice was deleted.
    pub fn delete(&self, slice: &EndpointSlice) {
        let Some((service, name)) = slice_key(slice) else {
            return;
        };
        let mut services = self.lock();
        if let Some(state) = services.get_mut(&service)
            && state.slices.remove(&name).is_some()
        {
            state.publish();
        }
    }

    /// The watch of `scope` (a namespace, `None` for all) is listing everything again
    /// (start, or after a lost watch): its slices not in the new list are dropped when it
    /// completes ([`Endpoints::relist_done`]).
    pub fn relist_started(&self, scope: Option<&str>) {
        self.relisting_lock().start(scope);
    }

    /// The relist of `scope` is complete: forget its slices it did not contain.
    pub fn relist_done(&self, scope: Option<&str>) {
        let Some(seen) = self.relisting_lock().finish(scope) else {
            return;
        };
        let mut services = self.lock();
        for (service, state) in services.iter_mut() {
            if !covers(scope, &service.namespace) {
                continue;
            }
            let before = state.slices.len();
            state
                .slices
                .retain(|name, _| seen.contains(&(service.clone(), name.clone())));
            if state.slices.len() != before {
                state.publish();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServiceKey, ServiceState>> {
        self.services.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn relisting_lock(&self) -> std::sync::MutexGuard<'_, Relists<(ServiceKey, String)>> {
        self.relisting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether the EndpointSlice controller made `slice` (from a Service's selector), rather
/// than someone by hand.
fn managed_by_endpointslice_controller(slice: &EndpointSlice) -> bool {
    slice
        .labels()
        .get(SLICE_MANAGER_LABEL.0)
        .map(String::as_str)
        == Some(SLICE_MANAGER_LABEL.1)
}

/// Whether a pod could have `ip`: not link-local or instance metadata (169.254.0.0/16,
/// fe80::/10, fd00:ec2::/32, in any IPv4-mapped or NAT64 spelling), loopback (the gateway
/// itself; allowed only with `loopback`, for tests) or unspecified.
pub fn is_pod_address(ip: IpAddr, loopback: bool) -> bool {
    let ip = ip.to_canonical();
    !(faas_runtime::outbound::is_forbidden_ip(ip)
        || (ip.is_loopback() && !loopback)
        || ip.is_unspecified())
}

/// The Service a slice belongs to, and the slice's name.
fn slice_key(slice: &EndpointSlice) -> Option<(ServiceKey, String)> {
    let service = slice.labels().get(SERVICE_NAME_LABEL)?.clone();
    let namespace = slice.namespace()?;
    Some((
        ServiceKey {
            namespace,
            name: service,
        },
        slice.name_any(),
    ))
}

/// A slice's addresses on the `http` port (or its only port).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SliceAddresses {
    /// Ready endpoints (`ready` unset counts as ready, as the API asks).
    pub ready: Vec<SocketAddr>,
    /// Terminating endpoints still serving: used only when no endpoint is ready.
    pub serving: Vec<SocketAddr>,
    /// The pod each address belongs to (`targetRef` of kind Pod), where the slice says.
    pub pods: HashMap<SocketAddr, String>,
}

/// The addresses of a slice's endpoints, by condition, without those no pod can have
/// ([`is_pod_address`]).
pub fn slice_addresses(slice: &EndpointSlice, loopback: bool) -> SliceAddresses {
    let ports = slice.ports.as_deref().unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.name.as_deref() == Some(PORT_NAME))
        .or(match ports {
            [only] => Some(only),
            _ => None,
        })
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok());
    let mut found = SliceAddresses::default();
    let Some(port) = port else {
        return found;
    };
    for endpoint in slice.endpoints.iter().flatten() {
        let conditions = endpoint.conditions.clone().unwrap_or_default();
        let list = if conditions.ready.unwrap_or(true) {
            &mut found.ready
        } else if conditions.serving == Some(true) && conditions.terminating == Some(true) {
            &mut found.serving
        } else {
            continue;
        };
        let pod = endpoint
            .target_ref
            .as_ref()
            .filter(|t| t.kind.as_deref() == Some("Pod"))
            .and_then(|t| t.name.clone());
        for addr in endpoint
            .addresses
            .iter()
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .filter(|ip| {
                let ok = is_pod_address(*ip, loopback);
                if !ok {
                    tracing::warn!(slice = %slice.name_any(), address = %ip, "ignoring an EndpointSlice address no pod can have");
                }
                ok
            })
            .map(|ip| SocketAddr::new(ip, port))
        {
            list.push(addr);
            if let Some(pod) = &pod {
                found.pods.insert(addr, pod.clone());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(name: &str, service: &str, port: i32, endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "shop",
                         "labels": {SERVICE_NAME_LABEL: service,
                                    SLICE_MANAGER_LABEL.0: SLICE_MANAGER_LABEL.1}},
            "addressType": "IPv4",
            "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": port}],
            "endpoints": endpoints,
        }))
        .expect("an EndpointSlice")
    }

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    #[test]
    fn ready_endpoints_on_the_http_port() {
        let s = slice(
            "fn-a-x1",
            "fn-a",
            8080,
            json!([
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "terminating": true}},
                {"addresses": ["10.0.0.3"]},
                {"addresses": ["not-an-ip"]},
            ]),
        );
        let found = slice_addresses(&s, false);
        let show = |list: &[SocketAddr]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(show(&found.ready), ["10.0.0.1:8080", "10.0.0.3:8080"]);
        // Terminating but not said to be serving: neither.
        assert!(found.serving.is_empty());
    }

    #[test]
    fn a_backend_knows_its_pod_and_a_new_pod_at_an_old_address_is_a_new_backend() {
        let endpoints = Endpoints::default();
        let endpoint = |pod: &str| {
            json!([{"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": pod}},
                   {"addresses": ["10.0.0.2"], "targetRef": {"kind": "Node", "name": "n1"}}])
        };
        endpoints.apply(&slice("fn-a-x1", "fn-a", 8080, endpoint("fn-a-1")));
        let first = endpoints.ready(&key("fn-a"));
        let pods: Vec<Option<&str>> = first.iter().map(|b| b.pod.as_deref()).collect();
        assert_eq!(
            pods,
            [Some("fn-a-1"), None],
            "only a Pod targetRef names a pod"
        );
        let _busy = first[0].start();
        // The same pod again: the same backend, its in-flight count kept.
        endpoints.apply(&slice("fn-a-x1", "fn-a", 8080, endpoint("fn-a-1")));
        assert_eq!(endpoints.ready(&key("fn-a"))[0].in_flight(), 1);
        // Another pod got the address: a backend of its own.
        endpoints.apply(&slice("fn-a-x1", "fn-a", 8080, endpoint("fn-a-2")));
        let next = endpoints.ready(&key("fn-a"));
        assert_eq!(next[0].pod.as_deref(), Some("fn-a-2"));
        assert_eq!(next[0].in_flight(), 0);
    }

    #[test]
    fn terminating_pods_still_serving_are_used_only_when_none_is_ready() {
        let endpoints = Endpoints::default();
        let draining = json!({"ready": false, "serving": true, "terminating": true});
        endpoints.apply(&slice(
            "fn-a-x1",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.1"], "conditions": draining},
                   {"addresses": ["10.0.0.2"], "conditions": {"ready": true}}]),
        ));
        let only_ready: Vec<String> = endpoints
            .ready(&key("fn-a"))
            .iter()
            .map(|b| b.addr.to_string())
            .collect();
        assert_eq!(only_ready, ["10.0.0.2:80"]);
        endpoints.apply(&slice(
            "fn-a-x1",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.1"], "conditions": draining}]),
        ));
        let fallback: Vec<String> = endpoints
            .ready(&key("fn-a"))
            .iter()
            .map(|b| b.addr.to_string())
            .collect();
        assert_eq!(fallback, ["10.0.0.1:80"]);
    }

    #[test]
    fn slices_are_merged_and_backends_keep_their_counts() {
        let endpoints = Endpoints::default();
        let mut rx = endpoints.subscribe(&key("fn-a"));
        assert!(rx.borrow_and_update().is_empty());
        endpoints.apply(&slice(
            "fn-a-x1",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.1"]}]),
        ));
        assert!(rx.has_changed().expect("open"));
        let first = rx.borrow_and_update().clone();
        assert_eq!(first.len(), 1);
        let guard = first[0].start();
        endpoints.apply(&slice(
            "fn-a-x2",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.2"]}]),
        ));
        let both = endpoints.ready(&key("fn-a"));
        assert_eq!(both.len(), 2);
        let kept = both.iter().find(|b| b.addr == first[0].addr).expect("kept");
        assert_eq!(kept.in_flight(), 1, "the counter survives the update");
        drop(guard);
        assert_eq!(kept.in_flight(), 0);
        // An unchanged set publishes nothing.
        let _ = rx.borrow_and_update();
        endpoints.apply(&slice(
            "fn-a-x2",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.2"]}]),
        ));
        assert!(!rx.has_changed().expect("open"));
        endpoints.delete(&slice("fn-a-x1", "fn-a", 80, json!([])));
        assert_eq!(endpoints.ready(&key("fn-a")).len(), 1);
        // Another Service is untouched.
        assert!(endpoints.ready(&key("fn-b")).is_empty());
    }

    #[test]
    fn a_relist_forgets_slices_deleted_while_the_watch_was_down() {
        let endpoints = Endpoints::default();
        endpoints.apply(&slice(
            "fn-a-x1",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.1"]}]),
        ));
        endpoints.apply(&slice(
            "fn-a-x2",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.2"]}]),
        ));
        endpoints.relist_started(Some("shop"));
        endpoints.apply(&slice(
            "fn-a-x2",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.2"]}]),
        ));
        // Another namespace's relist leaves this one alone.
        endpoints.relist_started(Some("other"));
        endpoints.relist_done(Some("other"));
        assert_eq!(endpoints.ready(&key("fn-a")).len(), 2);
        endpoints.relist_done(Some("shop"));
        let left: Vec<String> = endpoints
            .ready(&key("fn-a"))
            .iter()
            .map(|b| b.addr.to_string())
            .collect();
        assert_eq!(left, ["10.0.0.2:80"]);
    }

    fn relabel(slice: &mut EndpointSlice, manager: Option<&str>) {
        let labels = slice.metadata.labels.get_or_insert_default();
        match manager {
            Some(m) => labels.insert(SLICE_MANAGER_LABEL.0.into(), m.into()),
            None => labels.remove(SLICE_MANAGER_LABEL.0),
        };
    }

    #[test]
    fn hand_made_slices_and_metadata_addresses_are_ignored() {
        let endpoints = Endpoints::default();
        // Forged: right Service, no EndpointSlice-controller label.
        let mut forged = slice(
            "fn-a-forged",
            "fn-a",
            80,
            json!([{"addresses": ["10.0.0.9"]}]),
        );
        relabel(&mut forged, None);
        endpoints.apply(&forged);
        assert!(endpoints.ready(&key("fn-a")).is_empty());
        // Another manager's value is no better.
        relabel(&mut forged, Some("someone-else"));
        endpoints.apply(&forged);
        assert!(endpoints.ready(&key("fn-a")).is_empty());
        // A managed slice carrying addresses no pod can have: only the pod's is kept.
        endpoints.apply(&slice(
            "fn-a-x1",
            "fn-a",
            80,
            json!([{"addresses": ["169.254.169.254"]},
                   {"addresses": ["169.254.170.23"]},
                   {"addresses": ["127.0.0.1"]},
                   {"addresses": ["0.0.0.0"]},
                   {"addresses": ["10.0.0.4"]}]),
        ));
        let left: Vec<String> = endpoints
            .ready(&key("fn-a"))
            .iter()
            .map(|b| b.addr.to_string())
            .collect();
        assert_eq!(left, ["10.0.0.4:80"]);
        // A known slice that loses the label is dropped.
        let mut relabelled = slice("fn-a-x1", "fn-a", 80, json!([{"addresses": ["10.0.0.4"]}]));
        relabel(&mut relabelled, None);
        endpoints.apply(&relabelled);
        assert!(endpoints.ready(&key("fn-a")).is_empty());
    }

    #[test]
    fn pod_addresses_exclude_link_local_metadata_loopback_and_unspecified() {
        for refused in [
            "169.254.169.254",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "::",
        ] {
            let ip: IpAddr = refused.parse().expect("ip");
            assert!(!is_pod_address(ip, false), "{refused}");
        }
        for pod in [
            "10.0.3.4",
            "100.64.1.2",
            "192.168.1.1",
            "2600:1f18::7",
            "fd12::1",
        ] {
            let ip: IpAddr = pod.parse().expect("ip");
            assert!(is_pod_address(ip, false), "{pod}");
        }
        // Tests stand their pods on loopback; metadata stays refused even then.
        assert!(is_pod_address("127.0.0.2".parse().expect("ip"), true));
        assert!(!is_pod_address(
            "169.254.169.254".parse().expect("ip"),
            true
        ));
    }
}
