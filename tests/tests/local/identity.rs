//! WASM functions' own AWS identities under `faas up`: a function with `spec.iam.roleArn`
//! gets temporary credentials for exactly that role at each invocation, assumed with the
//! developer's own credentials (here moto's STS, through `AWS_ENDPOINT_URL_STS`), and STS
//! itself says whose they are. A function without a role gets none, and the platform's own
//! credentials never reach a guest. A role that cannot be assumed degrades its function,
//! saying why, and its invocations run without credentials.

use faas_e2e::moto::moto;
use faas_e2e::*;

fn aws_of(env: &str) -> Vec<(String, String)> {
    faas_e2e::aws::aws_variables(env)
}

async fn caller_of(env: &[(String, String)]) -> String {
    faas_e2e::aws::caller_of(&moto().sdk_config(), env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_gets_its_own_roles_credentials_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = guest("hostile");
    for (name, role) in [
        (
            "orders",
            Some("arn:aws:iam::123456789012:role/team-a/orders"),
        ),
        (
            "billing",
            Some("arn:aws:iam::123456789012:role/team-a/billing"),
        ),
        ("plain", None),
    ] {
        let iam = role.map_or(String::new(), |r| format!("  iam: {{roleArn: \"{r}\"}}\n"));
        write_function(dir.path(), name, &hostile, &iam);
    }
    let faas = Faas::launch(
        dir.path(),
        Launch {
            env: moto().env(),
            ..Launch::default()
        },
    );
    let env_of = |name: &'static str| {
        let url = faas.url(&format!("/function/{name}/env"));
        async move {
            let reply = get(&url).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            aws_of(&reply.text())
        }
    };
    let orders = env_of("orders").await;
    let billing = env_of("billing").await;
    assert_eq!(
        caller_of(&orders).await,
        faas_e2e::aws::assumed_role_arn(
            "arn:aws:iam::123456789012:role/team-a/orders",
            "faas-default-orders"
        )
    );
    assert_eq!(
        caller_of(&billing).await,
        "arn:aws:sts::123456789012:assumed-role/billing/faas-default-billing"
    );
    for env in [&orders, &billing] {
        assert_eq!(faas_e2e::aws::names_of(env), faas_e2e::aws::ROLE_VARIABLES);
        // Never the platform's own (the developer's "testing" keys here).
        assert!(!env.iter().any(|(_, v)| v == "testing"), "{env:?}");
    }
    assert_ne!(orders, billing);
    assert_eq!(env_of("plain").await, [], "no role, no credentials");
    // The same credentials for the next invocation (cached, not one STS call per request).
    assert_eq!(env_of("orders").await, orders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_be_assumed_degrades_its_function_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "orders",
        &guest("hostile"),
        "  iam: {roleArn: \"arn:aws:iam::123456789012:role/team-a/orders\"}\n",
    );
    // No credentials to assume it with: the developer's chain is empty.
    let env: Vec<(String, String)> = moto()
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .chain(
            [
                ("AWS_CONFIG_FILE", "/nonexistent"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
                ("AWS_ACCESS_KEY_ID", ""),
                ("AWS_SECRET_ACCESS_KEY", ""),
                ("AWS_PROFILE", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .collect();
    let faas = Faas::launch(
        dir.path(),
        Launch {
            env,
            ..Launch::default()
        },
    );
    let reply = get(&faas.url("/function/orders/env")).await;
    assert_eq!(reply.status, 200, "it still runs: {}", reply.text());
    assert_eq!(aws_of(&reply.text()), [], "without credentials");
    let described = faas.cli().args(["describe", "orders"]).output().unwrap();
    let described = String::from_utf8_lossy(&described.stdout).into_owned();
    assert!(described.contains("Degraded"), "{described}");
    assert!(described.contains("IdentityUnavailable"), "{described}");
    assert!(
        described.contains("arn:aws:iam::123456789012:role/team-a/orders")
            && described.contains("no AWS credentials"),
        "{described}"
    );
}
