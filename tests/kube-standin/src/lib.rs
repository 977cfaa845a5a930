//! An in-memory Kubernetes API server for whole-system tests: real processes (the controller,
//! the gateway in cluster mode, runtime pool pods), each with its own kube-rs client from a
//! kubeconfig, share one state over plain HTTP on loopback. No kube-apiserver can run where the
//! tests run; this serves the subset of its API the platform uses, with the semantics its
//! controllers depend on.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = faas_kube_standin::ApiServer::start().await?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"), "default")?;
//! let client = server.client(); // or KUBECONFIG=/tmp/kubeconfig for another process
//! # Ok(()) }
//! ```
//!
//! # Why not an existing emulator
//!
//! `kmock` 0.8 (PyPI, the `KubernetesEmulator` of nolar's kmock) was evaluated and does not
//! fit: its lists answer `resourceVersion: '...'`, objects get no resourceVersion of their own,
//! stale writes are never refused with 409, label selectors are not applied, the status and
//! scale subresources have no semantics, watches ignore `resourceVersion`, and nothing is
//! garbage-collected through owner references. Every one of those is what our controller's
//! correctness rests on, so the stand-in is written here.
//!
//! # What it emulates
//!
//! * **Transport.** Plain HTTP/1.1 on `127.0.0.1` (never another address), JSON only (a client
//!   asking for protobuf or a Table gets JSON, which kubectl and kube-rs accept). Any bearer
//!   token, or none, is accepted: no authentication, no authorization.
//! * **Paths.** `/api/v1/...` and `/apis/{group}/{version}/...`; namespaced objects at
//!   `/namespaces/{ns}/{plural}[/{name}[/{subresource}]]`, cluster-scoped ones at
//!   `/{plural}[/{name}]`, and lists/watches across namespaces at `/{plural}`. `/version`,
//!   `/healthz`, `/readyz`, `/livez`, and legacy discovery: `/api`, `/apis`, `/apis/{group}`,
//!   `/api/v1`, `/apis/{group}/{version}` (resources, their status/scale/token subresources,
//!   short names) — enough for `kubectl get`.
//! * **Resources.** Built in: core v1 namespaces, nodes, pods, services, serviceaccounts
//!   (+ `token`), configmaps, secrets, events, endpoints; apps/v1 deployments (+ `status`,
//!   `scale`); discovery.k8s.io/v1 endpointslices; coordination.k8s.io/v1 leases;
//!   events.k8s.io/v1 events (stored apart from core events); rbac.authorization.k8s.io/v1
//!   roles, rolebindings, clusterroles, clusterrolebindings; policy/v1 poddisruptionbudgets;
//!   networking.k8s.io/v1 networkpolicies; autoscaling/v2 horizontalpodautoscalers; batch/v1
//!   jobs; apiextensions.k8s.io/v1 customresourcedefinitions. Namespaces, nodes, pods,
//!   services, deployments, pdbs, hpas, jobs and CRDs have a `status` subresource. Creating a
//!   CRD registers its resource (every served version, plural, kind, scope; `status`, and
//!   `scale` with its `specReplicasPath`, `statusReplicasPath` and `labelSelectorPath`, taken
//!   from the first served version declaring subresources); updating it re-registers; deleting
//!   it unregisters and removes its objects. Unknown resources answer 404 NotFound.
//! * **Objects.** Every object gets `metadata.uid`, `creationTimestamp` (seconds, UTC),
//!   `resourceVersion` (one global counter for all resources, as a string) and `generation` (1
//!   on create, +1 on a write that changes anything outside `metadata` and `status`);
//!   `generateName` gets five random characters appended. `apiVersion` and `kind` are set from
//!   the path. Server-owned metadata (`uid`, `creationTimestamp`, `generation`,
//!   `deletionTimestamp`) cannot be written by clients; `managedFields` are dropped. Objects in
//!   a namespace that does not exist are accepted.
//! * **Defaulting** (the only defaulting): a Deployment's `spec.replicas` is 1 when absent; a
//!   Namespace's `status.phase` is `Active`; a CRD's status says `NamesAccepted` and
//!   `Established`, with `acceptedNames` and `storedVersions`.
//! * **Reads.** GET; LIST answers `kind: {Kind}List` with `metadata.resourceVersion` = the
//!   current counter, filtered by `labelSelector` (`=`, `==`, `!=`, `in (..)`, `notin (..)`,
//!   `key`, `!key`) and `fieldSelector` (`=`, `==`, `!=` on any dotted path, e.g.
//!   `metadata.name`, `metadata.namespace`, `status.phase`; a missing field reads as `""`).
//! * **Watches.** `?watch=true` (or `1`) streams newline-delimited JSON events ADDED, MODIFIED,
//!   DELETED, BOOKMARK and ERROR. Without `resourceVersion` (or with `0`) the current objects
//!   come first as synthetic ADDED events; from a `resourceVersion` the kept changes newer than
//!   it are replayed first; one older than the bounded history (see [`Config::history`]) gets an
//!   `ERROR` event with a 410 `Expired` Status, so kube-rs' watcher relists. Selectors apply to
//!   events, and a modification that moves an object into or out of the selection is sent as
//!   ADDED or DELETED. `allowWatchBookmarks=true` gets a BOOKMARK every
//!   [`Config::bookmark_interval`] when the watch is caught up; `timeoutSeconds` ends the stream
//!   (default 30 minutes). `sendInitialEvents=true` (kube-rs' streaming list) is supported: the
//!   current objects as ADDED, then a BOOKMARK annotated `k8s.io/initial-events-end: "true"`.
//!   kube-rs 5's watcher uses ListWatch (list, then watch from the list's version) by default.
//!   A watch that falls [`Config::watch_buffer`] changes behind is ended (its client resumes or
//!   relists): a slow watcher never blocks a writer.
//! * **Writes.** POST creates (409 AlreadyExists). PUT replaces (404 if missing). PATCH with
//!   `application/merge-patch+json` (RFC 7386), `application/strategic-merge-patch+json`
//!   (treated as a merge patch; refused with 415 on custom resources, as a real API server
//!   does), `application/json-patch+json` (RFC 6902) and
//!   `application/apply-patch+yaml` (server-side apply as a merge patch of the applied object,
//!   JSON or YAML, into the existing one; created when absent; `fieldManager` and `force`
//!   accepted and ignored). Any write whose body (or patched result) carries a
//!   `metadata.resourceVersion` other than the current one fails with 409 Conflict; a write
//!   without one is unconditional. A write that changes nothing is answered with the object
//!   unchanged: no new resourceVersion, no watch event.
//! * **Status.** For a resource with a `status` subresource, writes to the object keep its
//!   `.status` (create drops it), and `/status` GET/PUT/PATCH change only `.status`.
//! * **Scale.** `/scale` of deployments and of CRDs declaring it: GET gives an `autoscaling/v1`
//!   Scale (name, namespace, uid, resourceVersion; `spec.replicas`; `status.replicas` and
//!   `status.selector`); PUT and PATCH set the object's replicas, with the 409 rule above.
//! * **TokenRequest.** POST `serviceaccounts/{name}/token` (the ServiceAccount must exist)
//!   answers `status.token`, a made-up JWT-shaped token (not verifiable by anyone), and
//!   `status.expirationTimestamp` after `spec.expirationSeconds` (default 3600, at least 600).
//! * **Deletion.** DELETE (404 if missing; `preconditions` uid/resourceVersion → 409) removes
//!   the object and answers it; an object with finalizers gets `deletionTimestamp` instead and
//!   is removed by the write that empties its finalizers. DELETE of a collection deletes every
//!   object matching its selectors. Garbage collection is immediate and synchronous: when an
//!   object is removed, objects whose `ownerReferences` name its uid are deleted (transitively,
//!   finalizers respected) unless another of their owners still exists (then only the reference
//!   goes); `propagationPolicy=Orphan` (or `orphanDependents`) removes the references and keeps
//!   the dependents. Deleting a Namespace deletes the objects in it, immediately.
//! * **Errors.** `kind: Status` bodies with `code`, `reason` (NotFound, AlreadyExists,
//!   Conflict, Invalid, Gone/Expired, MethodNotAllowed, BadRequest, UnsupportedMediaType) and
//!   `message`, which kube-rs turns into `kube::Error::Api`.
//!
//! # What it does not emulate
//!
//! * No admission (webhooks, quotas, limit ranges), no validation against OpenAPI or CRD
//!   schemas, no pruning of unknown fields, no defaulting beyond the list above, no conversion
//!   between versions of a CRD (objects are stored once and relabelled with the requested
//!   `apiVersion`), no CEL rules.
//! * Server-side apply is a merge: no field ownership, no `managedFields`, no conflicts between
//!   managers, lists are replaced (never merged by key), and nothing a previous apply set is
//!   removed when a later one omits it. Strategic merge patches are merge patches the same way:
//!   no merge keys, no `$patch`/`$retainKeys` directives.
//! * No pagination: `limit` and `continue` are ignored and every list is complete. LIST ignores
//!   `resourceVersion`/`resourceVersionMatch` and always reads the latest state. A watch from a
//!   resourceVersion newer than the current one simply waits for newer changes.
//! * No `dryRun` (refused with 400), no `Foreground` deletion (treated as `Background`), no
//!   graceful deletion periods, no Namespace `Terminating` phase, no `finalize` subresource.
//! * No authentication and no audit: every client is the admin, unless it impersonates
//!   (`Impersonate-User`, a kubeconfig user's `as:`), and then RBAC is that of the stored
//!   Roles, ClusterRoles and their bindings for resource requests (`rbac.rs` says what of RBAC
//!   is not emulated). TokenRequest tokens are not signed by anything and no TokenReview
//!   exists.
//! * Nothing runs: no scheduler, kubelet, controller-manager (Deployments get no ReplicaSets
//!   or Pods, Services no endpoints, Jobs no Pods, HPAs nothing), no kube-proxy, no DNS. A
//!   separate kubelet stand-in is meant to run Pods as local processes.
//! * No protobuf or CBOR request bodies (415 UnsupportedMediaType: kubectl's generators such as
//!   `kubectl create deployment` send protobuf and fail; `kubectl create -f`, `get`, `scale`,
//!   `delete`, `apply --server-side --validate=false` send JSON and work). No Table output, no aggregated discovery (kubectl falls back to the legacy
//!   one), no OpenAPI documents (`kubectl explain` and client-side `kubectl apply` do not
//!   work), no `exec`/`portforward`/`proxy`/`eviction`/`binding` subresources (`log` is served from a
//!   [`LogSource`] given with [`ApiServer::serve_logs`], see `logs.rs`), no
//!   HTTP/2, no TLS.
//! * No persistence: the state lives as long as the [`ApiServer`].

mod discovery;
mod error;
mod http;
mod logs;
mod patch;
mod rbac;
mod resources;
mod selector;
mod store;
mod watch;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch as signal;

pub use error::ApiError;
pub use logs::LogSource;
pub use store::Store;

/// The bearer token written to kubeconfigs (any token is accepted).
pub const TOKEN: &str = "kube-standin-token";

/// Tunables of a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Changes kept for watches to resume from; a watch from an older resourceVersion gets 410.
    pub history: usize,
    /// Changes a watch may fall behind before it is ended.
    pub watch_buffer: usize,
    /// How often a caught-up watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            history: 10_000,
            watch_buffer: 4096,
            bookmark_interval: Duration::from_secs(2),
        }
    }
}

/// What the connections share.
pub(crate) struct Shared {
    store: Mutex<Store>,
    config: Config,
    addr: SocketAddr,
    /// Where `pods/{name}/log` reads from, once something runs pods.
    logs: Mutex<Option<LogSource>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The state; never held across an await.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The source of pod logs, if one was given.
    pub(crate) fn log_source(&self) -> Option<LogSource> {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A running stand-in API server; stops when dropped.
#[derive(Debug)]
pub struct ApiServer {
    shared: Arc<Shared>,
    stop: signal::Sender<bool>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl ApiServer {
    /// Starts a server on `127.0.0.1` at a free port, with the default [`Config`].
    pub async fn start() -> io::Result<ApiServer> {
        Self::start_with(Config::default()).await
    }

    /// Starts a server on `127.0.0.1` at a free port.
    pub async fn start_with(config: Config) -> io::Result<ApiServer> {
        Self::bind(0, config).await
    }

    /// Starts a server on `127.0.0.1:port` (0: a free one).
    pub async fn bind(port: u16, config: Config) -> io::Result<ApiServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(config.history, config.watch_buffer)),
            config,
            addr,
            logs: Mutex::new(None),
        });
        let (stop, stopped) = signal::channel(false);
        tokio::spawn(accept(listener, Arc::clone(&shared), stopped));
        tracing::info!(%addr, "kube stand-in listening");
        Ok(ApiServer { shared, stop })
    }

    /// Serves `pods/{name}/log` from `source` (see [`LogSource`]): the kubelet stand-in's
    /// container output. Without one, every container's log is empty.
    pub fn serve_logs(&self, source: LogSource) {
        *self
            .shared
            .logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(source);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The kubeconfig of a client of this server: context, cluster and user `standin`, plain
    /// HTTP, bearer token [`TOKEN`], default namespace `namespace`.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        // JSON strings are YAML strings: quoting the namespace this way is always right.
        let namespace = Value::String(namespace.to_string());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {url}\n\
             users:\n- name: standin\n  user:\n    token: {TOKEN}\n\
             contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n    namespace: {namespace}\n\
             current-context: standin\npreferences: {{}}\n",
            url = self.url(),
        )
    }

    /// Writes [`ApiServer::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> io::Result<()> {
        std::fs::write(path, self.kubeconfig(namespace))
    }

    /// An in-process client, default namespace `default`.
    pub fn client(&self) -> kube::Client {
        self.client_in("default")
    }

    /// An in-process client with default namespace `namespace`.
    pub fn client_in(&self, namespace: &str) -> kube::Client {
        let url = self
            .url()
            .parse()
            .unwrap_or_else(|_| unreachable!("a loopback URL parses"));
        let mut config = kube::Config::new(url);
        config.default_namespace = namespace.to_string();
        config.auth_info.token = Some(TOKEN.to_string().into());
        kube::Client::try_from(config)
            .unwrap_or_else(|e| unreachable!("a plain-HTTP client builds: {e}"))
    }

    /// One stored object of `group`/`plural` (`""` namespace when cluster-scoped), as stored.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .store()
            .object(&(group.to_string(), plural.to_string()), namespace, name)
    }

    /// The stored objects of `group`/`plural`, in `namespace` or all, by namespace and name.
    pub fn objects(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let key = (group.to_string(), plural.to_string());
        self.shared
            .store()
            .list(&key, namespace, &selector::Selectors::default())
            .0
    }

    /// Requests served so far by verb: `get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection` (resource requests only, refused ones included).
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.shared.store().requests()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: signal::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = Arc::clone(&shared);
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(http::handle(shared, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = stopped.changed() => {}
                result = connection => if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                },
            }
        });
    }
}
