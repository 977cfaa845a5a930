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

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

pub use kubelet::{Image, Kubelet};

use crate::scenarios;

/// The chart's release namespace in these tests.
pub const RELEASE_NAMESPACE: &str = "faas-system";

/// How the system is started.
pub struct SystemOptions {
    /// Chart values on top of [`test_values`].
    pub values: Value,
    /// Images beyond the three of the platform and the HTTP test function (function images
    /// as local programs).
    pub images: Vec<Image>,
    /// Environment every pod's processes get.
    pub env: BTreeMap<String, String>,
    /// Objects applied before the chart (e.g. KEDA's CRDs, which the controller looks for
    /// when it starts).
    pub objects: Vec<Value>,
    /// moto's endpoints in every pod's environment, and a queue of it for
    /// [`scenarios::Cluster::queue`].
    pub moto: bool,
    /// The IAM roles the chart allows in [`TEAM`] (`controller.allowedRoleArns`).
    pub allowed_roles: Vec<String>,
}

impl Default for SystemOptions {
    fn default() -> Self {
        SystemOptions {
            values: json!({}),
            images: Vec::new(),
            env: BTreeMap::new(),
            objects: Vec::new(),
            moto: false,
            allowed_roles: Vec::new(),
        }
    }
}

/// The namespace the scenarios' team deploys to here.
pub const TEAM: &str = "team-a";

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
    moto: bool,
    allowed_roles: Vec<String>,
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
        if !options.allowed_roles.is_empty() {
            merge(
                &mut values,
                &json!({"controller": {"allowedRoleArns": {TEAM: options.allowed_roles}}}),
            );
        }
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
        images.push(Image {
            prefix: scenarios::HTTP_IMAGE.into(),
            entrypoint: vec![
                "python3".into(),
                "-u".into(),
                crate::repo_root()
                    .join("tests/system/http-function/server.py")
                    .display()
                    .to_string(),
            ],
            cmd: vec![],
        });
        images.push(Image {
            prefix: scenarios::jobs::JOB_IMAGE.into(),
            entrypoint: vec![
                "sh".into(),
                crate::repo_root()
                    .join("tests/system/job/run.sh")
                    .display()
                    .to_string(),
            ],
            cmd: vec![],
        });
        images.extend(options.images);
        // AWS calls of the pods never leave loopback: every endpoint is a closed loopback
        // port unless the test points a service at moto (its service-specific variables win).
        let mut extra_env = BTreeMap::from([(
            "AWS_ENDPOINT_URL".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        )]);
        extra_env.extend(options.env);
        if options.moto {
            extra_env.extend(crate::moto::moto().env());
        }
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
            moto: options.moto,
            allowed_roles: options.allowed_roles,
            dir,
        };
        system.api.serve_logs(system.kubelet.log_source());
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

    /// The `faas` CLI, pointed at this system's kubeconfig (context `standin`) and at a config
    /// directory of its own.
    pub fn faas(&self) -> Command {
        let mut command = Command::new(crate::faas_bin());
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("FAAS_CONFIG_DIR", self.dir.path().join("faas-config"))
            .env_remove("FAAS_GATEWAY")
            .env_remove("FAAS_CONTEXT")
            .env_remove("FAAS_NAMESPACE")
            // The CLI's AWS calls (a run's archived log) never leave loopback either.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
        if self.moto {
            command
                .envs(crate::moto::moto().env())
                .env("FAAS_RUN_LOG_PATH_STYLE", "true");
        }
        command
    }

    /// Every pod's log so far.
    pub fn logs(&self) -> String {
        self.kubelet.logs()
    }
}

impl scenarios::Cluster for System {
    fn client(&self) -> kube::Client {
        self.client.clone()
    }

    fn release_namespace(&self) -> &str {
        RELEASE_NAMESPACE
    }

    fn release(&self) -> &str {
        "faas"
    }

    fn team(&self) -> &str {
        TEAM
    }

    fn faas(&self) -> Command {
        System::faas(self)
    }

    fn context(&self) -> &str {
        "standin"
    }

    async fn reach(&self, namespace: &str, pod: &str, port: u16) -> String {
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let ip = pods
            .get(pod)
            .await
            .ok()
            .and_then(|p| p.status?.pod_ip)
            .unwrap_or_else(|| panic!("pod {namespace}/{pod} has no IP"));
        format!("http://{ip}:{port}")
    }

    fn http_image(&self) -> Option<String> {
        Some(scenarios::HTTP_IMAGE.to_owned())
    }

    fn job_image(&self) -> Option<String> {
        Some(scenarios::jobs::JOB_IMAGE.to_owned())
    }

    fn kill_processes(&self, _namespace: &str, pod: &str) -> bool {
        let pids = self
            .kubelet
            .view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pids
            .get(pod)
            .cloned()
            .unwrap_or_default();
        assert!(!pids.is_empty(), "{pod} runs");
        for pid in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        true
    }

    async fn queue(&self) -> Option<(aws_sdk_sqs::Client, String)> {
        if !self.moto {
            return None;
        }
        static QUEUES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = QUEUES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let moto = crate::moto::moto();
        let queue = moto
            .create_queue(&format!("system-{}-{n}", std::process::id()), &[])
            .await;
        Some((moto.client(), queue))
    }

    fn keda_acts(&self) -> bool {
        false
    }

    fn allowed_roles(&self) -> Vec<String> {
        self.allowed_roles.clone()
    }

    async fn client_as(&self, user: &str) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .expect("the stand-in's kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("a client config");
        config.auth_info.impersonate = Some(user.to_owned());
        kube::Client::try_from(config).expect("a client")
    }

    async fn aws_config(&self) -> Option<aws_config::SdkConfig> {
        self.moto.then(|| crate::moto::moto().sdk_config())
    }

    fn meets(&self, need: bool, what: &str) -> bool {
        assert!(need, "the stand-in is started to meet every need: {what}");
        true
    }

    fn diagnostics(&self) -> String {
        self.logs()
    }
}
