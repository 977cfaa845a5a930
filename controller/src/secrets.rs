//! The scheduler's secrets in a cluster: a schedule's notify URL from `urlFrom`, read from a
//! Kubernetes Secret of the Function's own namespace when a notification is sent (never
//! another namespace's; SSM and Secrets Manager are refused by the cluster profile of
//! validation, since the controller holds no role of the function's). The value is used for
//! the one delivery and kept nowhere.

use std::future::Future;
use std::pin::Pin;

use faas_api::SecretRef;
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
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let secret = secrets.get(&reference.name).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 => {
                format!("{source}: no such Secret in namespace {}", self.namespace)
            }
            other => format!("{source}: {other}"),
        })?;
        let bytes = secret
            .data
            .and_then(|mut d| d.remove(&reference.key))
            .ok_or_else(|| format!("{source}: the Secret has no such key"))?;
        String::from_utf8(bytes.0).map_err(|_| format!("{source}: not UTF-8 text"))
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
