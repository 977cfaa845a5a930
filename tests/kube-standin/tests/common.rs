//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};

/// The code and reason of an API error; panics on any other outcome.
pub fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The CRDs of the platform, from the chart.
pub fn faas_crds() -> Vec<CustomResourceDefinition> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../charts/faas/crds/faas.dev.yaml"
    );
    let text = std::fs::read_to_string(path).expect("read the CRDs");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a CRD"))
        .collect()
}

/// Creates the platform's CRDs.
pub async fn install_faas_crds(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in faas_crds() {
        api.create(&PostParams::default(), &crd)
            .await
            .expect("create CRD");
    }
}

/// Waits at most five seconds for a future.
pub async fn soon<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("in time")
}
