//! WASM functions' own AWS identities under `faas up`: a function with `spec.iam.roleArn`
//! gets temporary credentials for exactly that role at each invocation, assumed with the
//! developer's own credentials (here moto's STS, through `AWS_ENDPOINT_URL_STS`), and STS
//! itself says whose they are. A function without a role gets none, and the platform's own
//! credentials never reach a guest. A role that cannot be assumed degrades its function,
//! saying why, and its invocations run without credentials.

use faas_e2e::moto::moto;
use faas_e2e::*;

/// Two functions with roles of their own and one without.
const TWO_ROLES_AND_NONE: [(&str, Option<&str>); 3] = [
    (
        "orders",
        Some("arn:aws:iam::123456789012:role/team-a/orders"),
    ),
    (
        "billing",
        Some("arn:aws:iam::123456789012:role/team-a/billing"),
    ),
    ("plain", None),
];

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
    for (name, role) in TWO_ROLES_AND_NONE {
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

/// Who signed the `ReceiveMessage` calls `proxy` passed for the queue named `queue`.
fn receivers(
    proxy: &faas_e2e::fault_proxy::FaultProxy,
    queue: &str,
) -> std::collections::BTreeSet<Option<String>> {
    proxy
        .requests()
        .into_iter()
        .filter(|(_, request)| request.contains("ReceiveMessage") && request.contains(queue))
        .map(|(key, _)| key)
        .collect()
}

/// Two functions, each with an SQS trigger on a queue of its own, served by `faas up` or a
/// runtime pool from a folder (`runtime`: its arguments), with SQS behind a proxy that
/// records who signs what; one function has a role. Returns (the proxy, the platform, the
/// role's queue, the role-less function's queue).
async fn two_triggered_functions(
    dir: &std::path::Path,
    runtime: Option<&[&str]>,
) -> (faas_e2e::fault_proxy::FaultProxy, Faas, String, String) {
    let moto = moto();
    let tag = format!("{}-{}", std::process::id(), runtime.is_some());
    let (own, plain) = (format!("e2e-own-{tag}"), format!("e2e-plain-{tag}"));
    let own_url = moto.create_queue(&own, &[]).await;
    let plain_url = moto.create_queue(&plain, &[]).await;
    let proxy = faas_e2e::fault_proxy::FaultProxy::start(&moto.endpoint).await;
    let hostile = guest("hostile");
    let trigger = |url: &str| format!("  triggers:\n    sqs:\n    - queueUrl: {url}\n");
    write_function(
        dir,
        "orders",
        &hostile,
        &format!(
            "  iam: {{roleArn: \"arn:aws:iam::123456789012:role/team-a/orders\"}}\n{}",
            trigger(&own_url)
        ),
    );
    write_function(dir, "plain", &hostile, &trigger(&plain_url));
    let env = moto.env_with_sqs_at(&proxy.endpoint);
    let launch = Launch {
        env,
        ..Launch::default()
    };
    let faas = match runtime {
        None => Faas::launch(dir, launch),
        Some(args) => Faas::runtime(args, launch),
    };
    (proxy, faas, own, plain)
}

/// The access key a function's guest holds (its role's), from the hostile guest's `env`.
async fn guest_key(faas: &Faas, function: &str) -> String {
    let reply = get(&faas.url(&format!("/function/{function}/env"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    aws_of(&reply.text())
        .into_iter()
        .find(|(k, _)| k == "AWS_ACCESS_KEY_ID")
        .map(|(_, v)| v)
        .expect("the role's credentials")
}

/// As Lambda's event source mapping reads a queue with the function's execution role,
/// `faas up` polls a function's queue with its role's credentials, the very ones its guest
/// holds, and a role-less function's with the developer's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_reads_its_queue_as_its_functions_role_and_without_one_as_the_developer() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, faas, own, plain) = two_triggered_functions(dir.path(), None).await;
    faas.eventually("both queues polled", || async {
        !receivers(&proxy, &own).is_empty() && !receivers(&proxy, &plain).is_empty()
    })
    .await;
    let role_key = guest_key(&faas, "orders").await;
    assert_ne!(role_key, "testing", "not the developer's key");
    assert_eq!(receivers(&proxy, &own), [Some(role_key)].into());
    assert_eq!(
        receivers(&proxy, &plain),
        [Some("testing".to_owned())].into()
    );
}

/// A runtime pool reads a member's queue with the member's own role, and never with its own
/// identity: a role-less member's trigger polls nothing and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_reads_a_members_queue_only_with_the_members_role() {
    let dir = tempfile::tempdir().unwrap();
    let functions = dir.path().to_str().unwrap().to_owned();
    let (proxy, faas, own, plain) =
        two_triggered_functions(dir.path(), Some(&["serve", "--functions", &functions])).await;
    faas.eventually("the member with a role polled", || async {
        !receivers(&proxy, &own).is_empty()
    })
    .await;
    let role_key = guest_key(&faas, "orders").await;
    assert_eq!(receivers(&proxy, &own), [Some(role_key)].into());
    let detail = get(&faas.url("/system/functions/plain")).await.json();
    let trigger = &detail["sqsTriggers"][0];
    assert_eq!(trigger["state"], "NoCredentials", "{detail}");
    assert!(
        trigger["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.iam.roleArn")),
        "{detail}"
    );
    // Give a wrong poller time to show itself: still nothing read with the pod's identity.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        proxy
            .requests()
            .iter()
            .all(|(key, request)| !request.contains(&plain) && key.as_deref() != Some("testing")),
        "{:?}",
        proxy.requests()
    );
}

/// A CGI script that asks STS who it is with boto3's default chain, as any Python function
/// would call AWS.
const WHO_AM_I: &str = r#"import boto3
try:
    answer = boto3.client("sts").get_caller_identity()["Arn"]
except Exception as e:
    answer = type(e).__name__
print("content-type: text/plain")
print()
print(answer)
"#;

/// A container function with a role gets that role's credentials under `faas up` through the
/// SDKs' container credential endpoint (renewed by the SDK, never the developer's profile); one
/// without a role gets none; the endpoint serves a token's own function only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_function_gets_its_own_roles_credentials_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("who.py"), WHO_AM_I).unwrap();
    let moto = moto();
    for (name, role) in TWO_ROLES_AND_NONE {
        let iam = role.map_or(String::new(), |r| format!("  iam: {{roleArn: \"{r}\"}}\n"));
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            format!(
                "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\n\
                 spec:\n  runtime:\n    container:\n      mode: cgi\n      \
                 command: [python3, who.py]\n  timeout: 30s\n{iam}  env:\n    \
                 AWS_ENDPOINT_URL_STS: {}\n    AWS_DEFAULT_REGION: us-east-1\n",
                moto.endpoint
            ),
        )
        .unwrap();
    }
    // The developer's own profile, which must not stand in for a function's role.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = developer\naws_secret_access_key = developer\n",
    )
    .unwrap();
    let mut env = moto.env();
    env.push(("HOME".into(), home.path().to_string_lossy().into_owned()));
    let faas = Faas::launch(
        dir.path(),
        Launch {
            env,
            ..Launch::default()
        },
    );
    let who = |name: &'static str| {
        let url = faas.url(&format!("/function/{name}"));
        async move {
            let reply = get(&url).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            reply.text().trim().to_owned()
        }
    };
    for name in ["orders", "billing"] {
        assert_eq!(
            who(name).await,
            faas_e2e::aws::assumed_role_arn(
                &format!("arn:aws:iam::123456789012:role/team-a/{name}"),
                &format!("faas-default-{name}")
            )
        );
    }
    // No role: the developer's own profile, as for any tool run here (a process inherits
    // HOME, never the platform's environment), and no function's role.
    let plain = who("plain").await;
    assert!(
        plain.starts_with("arn:") && !plain.contains("assumed-role"),
        "{plain}"
    );
    // The endpoint gives nothing without a process's token.
    let url = faas.url("/system/credentials");
    assert_eq!(get(&url).await.status, 403);
    let wrong = send("GET", &url, &[("authorization", "0123456789abcdef")], "").await;
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert!(
        !wrong.text().contains("SecretAccessKey"),
        "{}",
        wrong.text()
    );
}
