//! The whole system on one machine, for `tests/system/`: the Kubernetes API stand-in
//! (`faas-kube-standin`), the chart rendered with the Helm SDK and applied to it as `helm
//! install` would, and the kubelet stand-in ([`kubelet`]) running every Deployment's pods —
//! the chart's controller and gateway, and the pools and function Deployments the controller
//! renders — as the real binaries, on loopback addresses.

pub mod env;
pub mod kubelet;
pub mod proxy;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

pub use kubelet::{Image, Kubelet};

/// The chart's release namespace in these tests.
pub const RELEASE_NAMESPACE: &str = "faas-system";

/// How the system is started.
pub struct SystemOptions {
    /// Chart values on top of [`test_values`].
    pub values: Value,
    /// Images beyond the three of the platform (function images as local programs).
    pub images: Vec<Image>,
    /// Environment every pod's processes get (e.g. moto's endpoint).
    pub env: BTreeMap<String, String>,
    /// Objects applied before the chart (e.g. KEDA's CRDs, which the controller looks for
    /// when it starts).
    pub objects: Vec<Value>,
}

impl Default for SystemOptions {
    fn default() -> Self {
        SystemOptions {
            values: json!({}),
            images: Vec::new(),
            env: BTreeMap::new(),
            objects: Vec::new(),
        }
    }
}

/// Values that make the chart fit one machine: one replica of each, short drains.
pub fn test_values() -> Value {
    json!({
        "controller": {"replicas": 1, "jsonLogs": false},
        "gateway": {
            "drainDelaySeconds": 0,
            "shutdownGraceSeconds": 5,
            "scaleFromZeroTimeout": "20s",
        },
        "runtime": {"pools": {"replicas": 1, "maxReplicas": 1}},
    })
}

/// A running system.
pub struct System {
    pub api: faas_kube_standin::ApiServer,
    pub client: kube::Client,
    pub kubelet: Kubelet,
    pub kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The chart's objects for `values` (CRDs first), rendered by `tests/system/render_chart.py`.
pub fn render_chart(values: &Value) -> Vec<Value> {
    let output = Command::new("python3")
        .arg(crate::repo_root().join("tests/system/render_chart.py"))
        .arg(values.to_string())
        .output()
        .expect("run python3 to render the chart");
    assert!(
        output.status.success(),
        "rendering the chart failed (is helm-python-sdk installed? scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the renderer prints JSON")
}

/// The `faas-controller` binary, built once per test process.
pub fn controller_bin() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| crate::cargo_bin("faas-controller", "faas-controller"))
}

impl System {
    pub async fn start(options: SystemOptions) -> System {
        let dir = tempfile::tempdir().unwrap();
        let api = faas_kube_standin::ApiServer::start()
            .await
            .expect("start the API stand-in");
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig, "default")
            .expect("write the kubeconfig");
        let client = api.client();
        // Built now, not at a test's first `faas` command: a test that times something
        // (a schedule's fire) from here must not wait for a build in between.
        let _ = crate::faas_bin();
        let mut values = test_values();
        merge(&mut values, &options.values);
        let system_objects = render_chart(&values);
        let mut images = vec![
            Image {
                prefix: "faas-controller".into(),
                entrypoint: vec![controller_bin().display().to_string()],
                cmd: vec![],
            },
            Image {
                prefix: "faas-gateway".into(),
                entrypoint: vec![crate::gateway_bin().display().to_string()],
                cmd: vec![],
            },
            Image {
                prefix: "faas-runtime".into(),
                entrypoint: vec![crate::runtime_bin().display().to_string()],
                cmd: vec![],
            },
        ];
        images.extend(options.images);
        let mut extra_env = options.env;
        // Pods are processes on loopback addresses: the (debug) gateway is told to accept
        // them as upstreams, which a release build never does.
        extra_env.insert("FAAS_TEST_LOOPBACK_UPSTREAMS".into(), "1".into());
        let system = System {
            kubelet: Kubelet::start(
                client.clone(),
                kubelet::Options {
                    images,
                    kubeconfig: kubeconfig.clone(),
                    dir: dir.path().join("pods"),
                    extra_env,
                },
            ),
            api,
            client,
            kubeconfig,
            dir,
        };
        system.apply(&options.objects).await;
        system.apply(&system_objects).await;
        system
    }

    /// Applies objects as `kubectl apply --server-side` would (kinds the API does not serve,
    /// such as a TargetGroupBinding without its CRD, are refused and fail the test).
    pub async fn apply(&self, objects: &[Value]) {
        for object in objects {
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let kind = object["kind"].as_str().unwrap_or_default();
            let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
                None if kind == "CustomResourceDefinition"
                    || kind.starts_with("Cluster")
                    || kind == "Namespace" =>
                {
                    Api::all_with(self.client.clone(), &resource)
                }
                None => Api::namespaced_with(self.client.clone(), RELEASE_NAMESPACE, &resource),
            };
            api.patch(
                name,
                &PatchParams::apply("helm").force(),
                &Patch::Apply(object),
            )
            .await
            .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
        }
    }

    /// Ready pod IPs of Deployment `namespace/name`.
    pub fn ready(&self, deployment: &str) -> Vec<String> {
        let view = self.kubelet.view.lock().unwrap();
        view.ready.get(deployment).cloned().unwrap_or_default()
    }

    /// Pod names of Deployment `namespace/name`, oldest first.
    pub fn pods(&self, deployment: &str) -> Vec<String> {
        let view = self.kubelet.view.lock().unwrap();
        view.pods.get(deployment).cloned().unwrap_or_default()
    }

    /// Waits until `check` returns `Some`, failing with `what` and every pod's log after
    /// `within`.
    pub async fn until<T, F, Fut>(&self, what: &str, within: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if start.elapsed() > within {
                panic!("{what}: not within {within:?}\n{}", self.kubelet.logs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The gateway's public and admin base URLs (`http://IP:8080`, `http://IP:9090`) once a
    /// gateway pod is ready.
    pub async fn gateway(&self) -> (String, String) {
        let ip = self
            .until("a ready gateway pod", Duration::from_secs(60), || async {
                self.ready(&format!("{RELEASE_NAMESPACE}/faas-gateway"))
                    .first()
                    .cloned()
            })
            .await;
        (format!("http://{ip}:8080"), format!("http://{ip}:9090"))
    }

    /// The `faas` CLI, pointed at this system's kubeconfig (context `standin`) and at a config
    /// directory of its own.
    pub fn faas(&self) -> Command {
        let mut command = Command::new(crate::faas_bin());
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("FAAS_CONFIG_DIR", self.dir.path().join("faas-config"))
            .env_remove("FAAS_GATEWAY")
            .env_remove("FAAS_CONTEXT")
            .env_remove("FAAS_NAMESPACE");
        command
    }

    /// Runs `faas ARGS --context standin -n NAMESPACE` and returns what it printed, failing
    /// the test (with every pod's log) when it fails.
    pub fn faas_ok<I, S>(&self, namespace: &str, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self
            .faas()
            .args(args)
            .args(["--context", "standin", "-n", namespace])
            .output()
            .expect("run faas");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "faas: {stdout}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        stdout
    }

    /// Every pod's log so far.
    pub fn logs(&self) -> String {
        self.kubelet.logs()
    }
}
