//! Artifacts kept in a ConfigMap's binary data (`configmap://name/key`), read from the
//! Kubernetes API by runtime pool pods.

use bytes::Bytes;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use super::FetchError;

/// The bytes of `key` in ConfigMap `name` of `namespace`.
pub(super) async fn fetch(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Bytes, FetchError> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let map = maps
        .get_opt(name)
        .await
        .map_err(|error| FetchError::ConfigMapApi {
            name: name.to_owned(),
            error,
        })?
        .ok_or_else(|| FetchError::NoConfigMap {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        })?;
    map.binary_data
        .and_then(|mut data| data.remove(key))
        .map(|bytes| Bytes::from(bytes.0))
        .ok_or_else(|| FetchError::NoConfigMapKey {
            name: name.to_owned(),
            key: key.to_owned(),
        })
}
