//! A pool pod's ECR login with its own IAM role, against real parts on loopback: moto's ECR
//! API hands out the token (`GetAuthorizationToken`), Debian's `docker-registry` with htpasswd
//! accepts exactly that token, and the registry client of pool pods pushes and pulls with it
//! through the built-in `ecr-login` helper (no `docker-credential-ecr-login` binary).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use faas_e2e::registry::RegistryServer;
use faas_gateway::artifact::ecr::EcrLogin;
use faas_oci::{OciError, Reference, Registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ecr_login_helper_gets_a_token_the_registry_accepts() {
    let moto = faas_e2e::moto::moto();
    let server = RegistryServer::start_ecr();
    let reference = Reference::parse(&format!("{}/functions/hello:v1", server.host)).unwrap();
    let hello = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hello.wasm"),
    )
    .unwrap();

    // Without the login the registry refuses us, and names how to log in.
    let err = Registry::new(None, Vec::new())
        .unwrap()
        .pull_wasm(&reference, None)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Unauthorized { .. }), "{err}");

    // The docker config maps the host to `ecr-login`, answered in-process from moto's token.
    let dir = tempfile::tempdir().unwrap();
    let config = server.docker_config_helper(dir.path(), faas_oci::auth::ECR_HELPER);
    let registry = Registry::new(Some(config), Vec::new())
        .unwrap()
        .with_helper(
            faas_oci::auth::ECR_HELPER,
            Arc::new(EcrLogin::new(moto.sdk_config())),
        );
    let pushed = registry
        .push_wasm(&reference, hello.clone().into(), &[])
        .await
        .unwrap();
    let pulled = registry
        .pull_wasm(&pushed.reference, Some(&pushed.wasm_sha256))
        .await
        .unwrap();
    assert_eq!(pulled.wasm, hello);

    // An ECR API that refuses (no such endpoint) is one line naming the login.
    let mut broken = moto.sdk_config().to_builder();
    broken.set_endpoint_url(Some(format!("http://127.0.0.1:{}", faas_e2e::free_port())));
    let err = Registry::new(Some(dir.path().join("config.json")), Vec::new())
        .unwrap()
        .with_helper(
            faas_oci::auth::ECR_HELPER,
            Arc::new(EcrLogin::new(broken.build())),
        )
        .pull_wasm(&reference, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("ECR login with the pod's IAM role: GetAuthorizationToken"),
        "{err}"
    );
}
