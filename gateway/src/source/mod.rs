//! Function sources, one adapter per place functions come from: a [`folder`] of manifests
//! (watched), a runtime pool's Functions ([`pool`], from the Kubernetes API), and the
//! cluster gateway's Functions and EndpointSlices ([`cluster`]). Each feeds the registry
//! through the platform ([`Platform::apply`], [`Platform::register`]), never by building
//! entries itself.

pub mod cluster;
pub mod folder;
pub mod folder_events;
pub mod pool;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::StartError;
use crate::platform::Platform;

/// Where a platform process gets its functions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionSource {
    /// The manifests under the host's folder, watched; `secrets` is where their
    /// `secretKeyRef`s are read (`<secrets>/<secret>/<key>`, `faas up --secrets`).
    Folder { secrets: Option<PathBuf> },
    /// The Functions of a runtime pool, from the Kubernetes API (`faas-runtime serve --pool`):
    /// those labelled `faas.dev/pool=<pool>` in the pod's namespace. `pod` (the pod's name)
    /// is how it reports, per function, whether it loaded it.
    Pool {
        pool: pool::PoolIdentity,
        namespace: String,
        pod: Option<String>,
    },
}

/// Whether the first load of a source is done when [`FunctionSource::start`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstLoad {
    /// Done: the host marks the platform ready when it has finished starting.
    Done,
    /// Under way: the source marks the platform ready itself once its first list is in.
    Pending,
}

impl FunctionSource {
    /// Starts following the source: the folder `dir` every `interval` (running the builds its
    /// manifests ask for when `build`), or the pool's Functions through the Kubernetes API.
    pub async fn start(
        &self,
        platform: &Arc<Platform>,
        dir: PathBuf,
        interval: Duration,
        build: bool,
    ) -> Result<FirstLoad, StartError> {
        match self {
            FunctionSource::Folder { secrets } => {
                // Roles are assumed, and SSM and Secrets Manager read, with this process's own
                // credentials (the developer's); Kubernetes Secrets are files.
                let clients = aws_clients(platform);
                let _ = platform
                    .identities
                    .set(Arc::new(crate::identity::Identities::local(Arc::clone(
                        &clients,
                    ))));
                let _ = platform
                    .secrets
                    .set(Arc::new(crate::secrets::Secrets::local(
                        secrets.clone(),
                        clients,
                    )));
                folder::start(platform, dir, interval, build).await;
                Ok(FirstLoad::Done)
            }
            FunctionSource::Pool {
                pool,
                namespace,
                pod,
            } => {
                let client =
                    kube::Client::try_default()
                        .await
                        .map_err(|source| StartError::Kubernetes {
                            what: "a runtime pool reads its functions from the Kubernetes API",
                            source,
                        })?;
                // Roles are assumed with the functions' own ServiceAccount tokens; secrets
                // are read as the pool (Kubernetes) and as each function's role (AWS).
                let clients = aws_clients(platform);
                let _ = platform
                    .identities
                    .set(Arc::new(crate::identity::Identities::pool(
                        client.clone(),
                        Arc::clone(&clients),
                    )));
                let _ = platform.secrets.set(Arc::new(crate::secrets::Secrets::pool(
                    client.clone(),
                    clients,
                )));
                pool::start(
                    platform,
                    client,
                    namespace.clone(),
                    pool.clone(),
                    pod.clone(),
                );
                Ok(FirstLoad::Pending)
            }
        }
    }
}

/// AWS clients under the platform's credential policy for where it runs.
fn aws_clients(platform: &Platform) -> Arc<faas_sqs::Clients> {
    Arc::new(faas_sqs::Clients::with_policy(
        faas_sqs::aws_credentials::CredentialPolicy::from_env_in(platform.config.host.aws),
    ))
}
