//! A container's environment as the kubelet gives it, on a machine where every pod shares the
//! host's network: values and `valueFrom` resolved, then the three rewrites that stand in for
//! a pod's own network namespace and the cluster's DNS (see the module docs of
//! [`super::kubelet`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Secret};
use kube::Api;

/// What a pod is, for the downward API and the rewrites.
pub struct PodFacts<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub ip: &'a str,
}

/// `container`'s environment: its `env` entries in order (a later entry of the same name wins,
/// as with the kubelet), every value rewritten by `rewrite`.
pub async fn resolve(
    client: &kube::Client,
    pod: &PodFacts<'_>,
    container: &Container,
    rewrite: &(dyn Fn(&str) -> String + Sync),
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for var in container.env.iter().flatten() {
        if let Some(value) = value_of(client, pod, var).await? {
            env.insert(var.name.clone(), rewrite(&value));
        }
    }
    Ok(env)
}

async fn value_of(
    client: &kube::Client,
    pod: &PodFacts<'_>,
    var: &EnvVar,
) -> Result<Option<String>, String> {
    if let Some(value) = &var.value {
        return Ok(Some(value.clone()));
    }
    let Some(from) = &var.value_from else {
        return Ok(Some(String::new()));
    };
    if let Some(field) = &from.field_ref {
        return match field.field_path.as_str() {
            "metadata.name" => Ok(Some(pod.name.to_owned())),
            "metadata.namespace" => Ok(Some(pod.namespace.to_owned())),
            "spec.serviceAccountName" => Ok(Some(pod.service_account.to_owned())),
            "status.podIP" | "status.hostIP" => Ok(Some(pod.ip.to_owned())),
            "spec.nodeName" => Ok(Some(super::kubelet::NODE_NAME.to_owned())),
            other => Err(format!(
                "env {}: fieldRef {other} is not emulated",
                var.name
            )),
        };
    }
    if let Some(key) = &from.secret_key_ref {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), pod.namespace);
        let secret = secrets
            .get_opt(&key.name)
            .await
            .map_err(|e| e.to_string())?;
        let value = secret.and_then(|s| {
            let data = s.data.and_then(|d| d.get(&key.key).map(|v| v.0.clone()));
            let string = s.string_data.and_then(|d| d.get(&key.key).cloned());
            data.map(|b| String::from_utf8_lossy(&b).into_owned())
                .or(string)
        });
        return match value {
            Some(v) => Ok(Some(v)),
            None if key.optional == Some(true) => Ok(None),
            None => Err(format!(
                "env {}: Secret {}/{} has no key {} (the pod would not start)",
                var.name, pod.namespace, key.name, key.key
            )),
        };
    }
    if let Some(key) = &from.config_map_key_ref {
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), pod.namespace);
        let map = maps.get_opt(&key.name).await.map_err(|e| e.to_string())?;
        return match map.and_then(|m| m.data.and_then(|d| d.get(&key.key).cloned())) {
            Some(v) => Ok(Some(v)),
            None if key.optional == Some(true) => Ok(None),
            None => Err(format!(
                "env {}: ConfigMap {}/{} has no key {}",
                var.name, pod.namespace, key.name, key.key
            )),
        };
    }
    Err(format!("env {}: this valueFrom is not emulated", var.name))
}

/// Rewrites a value for a pod at `pod_ip` on the shared loopback: a listen address on every
/// interface (`0.0.0.0:P`, `[::]:P`) becomes the pod's own address, and a Service's DNS name
/// (`NAME.NS.svc`, `NAME.NS.svc.cluster.local`) its stand-in cluster IP.
pub fn rewrite(value: &str, pod_ip: &str, services: &BTreeMap<String, String>) -> String {
    let mut out = value.to_owned();
    for unspecified in ["0.0.0.0:", "[::]:"] {
        if let Some(port) = out.strip_prefix(unspecified) {
            out = format!("{pod_ip}:{port}");
        }
    }
    for (dns, ip) in services {
        for name in [format!("{dns}.svc.cluster.local"), format!("{dns}.svc")] {
            if out.contains(&name) {
                out = out.replace(&name, ip);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_become_the_pods_and_service_names_their_ip() {
        let services = BTreeMap::from([(
            "faas-gateway.faas-system".to_owned(),
            "127.20.0.3".to_owned(),
        )]);
        assert_eq!(
            rewrite("0.0.0.0:8080", "127.10.0.7", &services),
            "127.10.0.7:8080"
        );
        assert_eq!(
            rewrite("[::]:9090", "127.10.0.7", &services),
            "127.10.0.7:9090"
        );
        assert_eq!(
            rewrite(
                "http://faas-gateway.faas-system.svc.cluster.local:9090",
                "127.10.0.7",
                &services
            ),
            "http://127.20.0.3:9090"
        );
        assert_eq!(
            rewrite(
                "http://faas-gateway.faas-system.svc:9090/x",
                "127.10.0.7",
                &services
            ),
            "http://127.20.0.3:9090/x"
        );
        assert_eq!(rewrite("eu-west-3", "127.10.0.7", &services), "eu-west-3");
    }
}
