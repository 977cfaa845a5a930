//! A schedule's notify URL from a Secret, read by the controller in the Function's own
//! namespace, against a `tower-test` mock of the API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faas_api::{SecretKeyRef, SecretRef, SsmParameterRef};
use faas_controller::secrets::NamespaceSecrets;
use faas_kube_mock::expect;
use faas_schedule::notify::SecretReader;
use serde_json::json;

#[tokio::test]
async fn the_url_is_read_from_the_namespaces_secret_and_nothing_else_is_asked() {
    let (client, mut api) = faas_kube_mock::client("finance");
    let secrets = NamespaceSecrets::new(client, "finance");
    let slack = SecretRef::Kubernetes(SecretKeyRef {
        name: "hooks".into(),
        key: "slack".into(),
    });
    let read = tokio::spawn(async move {
        let found = secrets.read(&slack).await;
        let missing = secrets.read(&slack).await;
        let ssm = secrets
            .read(&SecretRef::Ssm(SsmParameterRef {
                name: "/hooks/slack".into(),
            }))
            .await;
        (found, missing, ssm)
    });
    let (_, reply) = expect(&mut api, "GET", "/api/v1/namespaces/finance/secrets/hooks").await;
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "hooks", "namespace": "finance"},
                // base64 of https://hooks.example.com/T0/s3cret
                "data": {"slack": "aHR0cHM6Ly9ob29rcy5leGFtcGxlLmNvbS9UMC9zM2NyZXQ="}}),
    );
    let (_, reply) = expect(&mut api, "GET", "/api/v1/namespaces/finance/secrets/hooks").await;
    reply.not_found("secrets");
    let (found, missing, ssm) = read.await.unwrap();
    assert_eq!(found.as_deref(), Ok("https://hooks.example.com/T0/s3cret"));
    assert_eq!(
        missing,
        Err("Secret hooks key slack: no such Secret in namespace finance".to_owned())
    );
    let ssm = ssm.expect_err("not read");
    assert!(ssm.contains("comes from a Kubernetes Secret"), "{ssm}");
}
