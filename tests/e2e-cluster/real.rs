//! A real cluster as a [`Cluster`] for the shared scenarios (`faas_e2e::scenarios`): the chart
//! installed by the operator (release `FAAS_E2E_RELEASE`, default `faas`, in
//! `FAAS_E2E_RELEASE_NAMESPACE`, default `faas-system`), a namespace of its own per scenario,
//! pods reached through port-forwards on loopback (nothing here sends to a pod's address),
//! pods lost by deleting them at once.
//!
//! What a scenario may need, from the environment:
//! - `FAAS_E2E_HTTP_IMAGE`: `tests/system/http-function` built and pushed where the nodes pull
//!   from (container scenarios are skipped without it);
//! - `FAAS_E2E_SQS_QUEUE_URL`: a queue the function pods may read (their IAM role, or
//!   `FAAS_E2E_ROLE_ARN`), which the test sends to with the AWS SDK's default credentials;
//! - `FAAS_E2E_ROLE_ARN`, and `FAAS_E2E_SECOND_ROLE_ARN` for two roles in one pool: roles
//!   `controller.allowedRoleArns` allows in every namespace (key `*`: the scenarios'
//!   namespaces are made for them), whose trust policies admit the scenario functions'
//!   ServiceAccounts (`fn-reader`, `fn-writer`, `fn-secretive`);
//! - two controllers and two pool pods (`controller.replicas`, `runtime.pools.replicas`) for
//!   the scenarios that lose one.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;

use faas_e2e::scenarios::Cluster;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

/// One scenario's view of the real cluster; dropping it deletes the scenario's namespace.
pub struct RealCluster {
    client: Client,
    context: String,
    release: String,
    release_namespace: String,
    team: String,
    config_dir: tempfile::TempDir,
    forwards: Mutex<HashMap<(String, String, u16), String>>,
}

impl RealCluster {
    /// The cluster for scenario `scenario`, or `None` (saying why) when `KUBECONFIG` is unset,
    /// the context does not look disposable, or the chart is not installed.
    pub async fn connect(scenario: &str) -> Option<RealCluster> {
        if !super::cluster_configured() {
            return None;
        }
        let client = Client::try_default()
            .await
            .expect("a client from KUBECONFIG");
        let context = kube::config::Kubeconfig::read()
            .ok()
            .and_then(|c| c.current_context)
            .unwrap_or_default();
        let release = std::env::var("FAAS_E2E_RELEASE").unwrap_or_else(|_| "faas".into());
        let release_namespace =
            std::env::var("FAAS_E2E_RELEASE_NAMESPACE").unwrap_or_else(|_| "faas-system".into());
        if !chart_installed(&client, &release, &release_namespace).await {
            faas_e2e::skip::deliberate(&format!(
                "scenario {scenario}: the chart is not installed (no Deployment \
                 {release}-gateway in {release_namespace}; set FAAS_E2E_RELEASE and \
                 FAAS_E2E_RELEASE_NAMESPACE if it is installed elsewhere)"
            ));
            return None;
        }
        let team = format!(
            "faas-e2e-{}-{}",
            std::process::id(),
            scenario.replace('_', "-")
        );
        let team: String = team.chars().take(63).collect();
        let team = team.trim_end_matches('-').to_owned();
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(team.clone());
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create the scenario's namespace");
        Some(RealCluster {
            client,
            context,
            release,
            release_namespace,
            team,
            config_dir: tempfile::tempdir().expect("a temporary directory"),
            forwards: Mutex::new(HashMap::new()),
        })
    }
}

/// Whether the chart's gateway Deployment exists.
pub async fn chart_installed(client: &Client, release: &str, namespace: &str) -> bool {
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), namespace)
        .get_opt(&format!("{release}-gateway"))
        .await
        .ok()
        .flatten()
        .is_some()
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        // Drop is not async: the namespace is deleted from a runtime of its own.
        let (client, team) = (self.client.clone(), self.team.clone());
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let _ = Api::<Namespace>::all(client)
                    .delete(&team, &DeleteParams::default())
                    .await;
            });
        })
        .join();
    }
}

impl Cluster for RealCluster {
    fn client(&self) -> Client {
        self.client.clone()
    }

    fn release_namespace(&self) -> &str {
        &self.release_namespace
    }

    fn release(&self) -> &str {
        &self.release
    }

    fn team(&self) -> &str {
        &self.team
    }

    fn faas(&self) -> Command {
        let mut command = Command::new(faas_e2e::faas_bin());
        command
            .env("FAAS_CONFIG_DIR", self.config_dir.path())
            .env_remove("FAAS_GATEWAY")
            .env_remove("FAAS_CONTEXT")
            .env_remove("FAAS_NAMESPACE");
        command
    }

    fn context(&self) -> &str {
        &self.context
    }

    /// A port-forward on `127.0.0.1`, one per pod and port, kept for the scenario.
    async fn reach(&self, namespace: &str, pod: &str, port: u16) -> String {
        let key = (namespace.to_owned(), pod.to_owned(), port);
        if let Some(url) = self.forwards.lock().expect("not poisoned").get(&key) {
            return url.clone();
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod = pod.to_owned();
        tokio::spawn(async move {
            while let Ok((mut connection, _)) = listener.accept().await {
                let (pods, pod) = (pods.clone(), pod.clone());
                tokio::spawn(async move {
                    let Ok(mut forwarder) = pods.portforward(&pod, &[port]).await else {
                        return;
                    };
                    if let Some(mut upstream) = forwarder.take_stream(port) {
                        let _ = tokio::io::copy_bidirectional(&mut connection, &mut upstream).await;
                    }
                    forwarder.abort();
                });
            }
        });
        self.forwards
            .lock()
            .expect("not poisoned")
            .insert(key, url.clone());
        url
    }

    fn http_image(&self) -> Option<String> {
        std::env::var("FAAS_E2E_HTTP_IMAGE").ok()
    }

    fn job_image(&self) -> Option<String> {
        std::env::var("FAAS_E2E_JOB_IMAGE").ok()
    }

    fn kill_processes(&self, _namespace: &str, _pod: &str) -> bool {
        false
    }

    async fn queue(&self) -> Option<(aws_sdk_sqs::Client, String)> {
        let url = std::env::var("FAAS_E2E_SQS_QUEUE_URL").ok()?;
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_sqs::Client::new(&config);
        client
            .purge_queue()
            .queue_url(&url)
            .send()
            .await
            .expect("purge the test queue");
        Some((client, url))
    }

    fn keda_acts(&self) -> bool {
        true
    }

    fn allowed_roles(&self) -> Vec<String> {
        ["FAAS_E2E_ROLE_ARN", "FAAS_E2E_SECOND_ROLE_ARN"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .collect()
    }

    async fn client_as(&self, user: &str) -> Client {
        // Impersonation needs the test's user to hold `impersonate` (cluster admins do).
        let mut config = kube::Config::infer()
            .await
            .expect("a client config from KUBECONFIG");
        config.auth_info.impersonate = Some(user.to_owned());
        Client::try_from(config).expect("a client")
    }

    async fn aws_config(&self) -> Option<aws_config::SdkConfig> {
        // The account the role is in (the test's own credentials: scenarios write an SSM
        // parameter under /faas-e2e/ and delete it).
        std::env::var("FAAS_E2E_ROLE_ARN").ok()?;
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    }

    fn meets(&self, need: bool, what: &str) -> bool {
        if !need {
            faas_e2e::skip::deliberate(&format!(
                "scenario not run on this cluster: it needs {what}"
            ));
        }
        need
    }

    fn diagnostics(&self) -> String {
        format!(
            "(namespace {}; kubectl -n {} get pods,functions,functionruns; kubectl -n {} logs \
             deploy/{}-controller)",
            self.team, self.team, self.release_namespace, self.release
        )
    }
}
