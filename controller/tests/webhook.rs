//! A Function's webhook in a cluster: the controller reads the token's Secret and publishes
//! only its keyed digest, or says why it cannot, against a `tower-test` mock of the API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faas_api::Function;
use faas_controller::metrics::Metrics;
use faas_controller::reconcile::Context;
use faas_controller::render::ClusterDefaults;
use faas_kube_mock::expect;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::json;

const KEY: &str = "platform-token-of-the-release";

fn context(client: kube::Client, platform_token: Option<&str>) -> Context {
    Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "faas-controller".into(),
                instance: None,
            },
        ),
        client,
        defaults: ClusterDefaults::default(),
        keda: false,
        public_url: None,
        metrics: Metrics::new().unwrap(),
        routing: Default::default(),
        functions: None,
        platform_token: platform_token.map(str::to_owned),
    }
}

fn function() -> Function {
    serde_json::from_value(json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": "deploy", "namespace": "team"},
        "spec": {
            "runtime": {"container": {"image": "registry.example.com/deploy:1", "mode": "job"}},
            "webhook": {"tokenSecret": {"secretKeyRef": {"name": "hooks", "key": "deploy"}}},
        },
    }))
    .unwrap()
}

fn secret(value: &str) -> serde_json::Value {
    use base64::Engine as _;
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hooks", "namespace": "team"},
           "data": {"deploy": base64::engine::general_purpose::STANDARD.encode(value)}})
}

#[tokio::test]
async fn the_digest_of_the_secrets_token_is_published_or_why_not() {
    let (client, mut api) = faas_kube_mock::client("team");
    let ctx = context(client, Some(KEY));
    let f = function();
    let observed = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(faas_controller::webhook::observe(&f, &ctx, "team").await);
        }
        seen
    });
    let path = "/api/v1/namespaces/team/secrets/hooks";
    let (_, reply) = expect(&mut api, "GET", path).await;
    reply.json(200, &secret("team-hook-token-0123456789\n"));
    let (_, reply) = expect(&mut api, "GET", path).await;
    reply.json(200, &secret("short"));
    let (_, reply) = expect(&mut api, "GET", path).await;
    reply.not_found("secrets");
    let seen = observed.await.unwrap();

    let digest = seen[0].as_ref().unwrap().token_digest.clone().unwrap();
    assert!(faas_api::webhook::matches_digest(
        KEY.as_bytes(),
        b"team-hook-token-0123456789",
        &digest
    ));
    assert!(!digest.contains("team-hook-token"));
    let short = seen[1].as_ref().unwrap();
    assert_eq!(short.token_digest, None);
    assert!(
        short
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("shorter than 16 characters"),
        "{short:?}"
    );
    assert_eq!(
        seen[2].as_ref().unwrap().message.as_deref(),
        Some("Secret hooks key deploy: no such Secret key in namespace team")
    );
}

#[tokio::test]
async fn without_a_platform_token_or_a_webhook_nothing_is_read() {
    let (client, api) = faas_kube_mock::client("team");
    let ctx = context(client, None);
    let status = faas_controller::webhook::observe(&function(), &ctx, "team").await;
    assert!(
        status
            .unwrap()
            .message
            .unwrap_or_default()
            .contains("no platform token"),
        "no key, no digest"
    );
    let mut plain = function();
    plain.spec.webhook = None;
    assert_eq!(
        faas_controller::webhook::observe(&plain, &ctx, "team").await,
        None
    );
    drop(api);
}
