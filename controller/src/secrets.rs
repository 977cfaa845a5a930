//! The scheduler's secrets in a cluster: a schedule's notify URL from `urlFrom`, read from a
//! Kubernetes Secret of the Function's own namespace when a notification is sent (never
//! another namespace's; SSM and Secrets Manager are refused by the cluster profile of
//! validation, since the controller holds no role of the function's). The value is used for
//! the one delivery and kept nowhere.

use std::future::Future;
use std::pin::Pin;

use faas_api::{SecretKeyRef, SecretRef};
use faas_schedule::notify::SecretReader;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

/// Reads the Secrets of one namespace.
pub struct NamespaceSecrets {
    client: Client,
    namespace: String,
}

impl NamespaceSecrets {
    pub fn new(client: Client, namespace: &str) -> Self {
        NamespaceSecrets {
            client,
            namespace: namespace.to_owned(),
        }
    }

    async fn get(&self, source: &SecretRef) -> Result<String, String> {
        let SecretRef::Kubernetes(reference) = source else {
            return Err(format!(
                "{source}: in a cluster a notify URL comes from a Kubernetes Secret (secretKeyRef)"
            ));
        };
        let bytes = match key_of(&self.client, &self.namespace, reference).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(Missing::Secret)) => {
                return Err(format!(
                    "{source}: no such Secret in namespace {}",
                    self.namespace
                ));
            }
            Ok(Err(Missing::Key)) => return Err(format!("{source}: the Secret has no such key")),
            Err(e) => return Err(format!("{source}: {e}")),
        };
        String::from_utf8(bytes).map_err(|_| format!("{source}: not UTF-8 text"))
    }
}

/// What [`key_of`] did not find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    Secret,
    Key,
}

/// The bytes of `reference` (a Secret's key) in `namespace`: the one read of a Secret the
/// controller makes itself (a notify URL here, a webhook's token in `crate::webhook`).
pub async fn key_of(
    client: &Client,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<Result<Vec<u8>, Missing>, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match secrets.get(&reference.name).await {
        Ok(secret) => Ok(secret
            .data
            .and_then(|mut d| d.remove(&reference.key))
            .map(|b| b.0)
            .ok_or(Missing::Key)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Err(Missing::Secret)),
        Err(e) => Err(e),
    }
}

impl SecretReader for NamespaceSecrets {
    fn read<'a>(
        &'a self,
        source: &'a SecretRef,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(self.get(source))
    }
}
