//! Secrets of WASM functions in a shared pool: a Kubernetes Secret of the namespace, read by
//! the pool pod as its Role allows (the Secrets its members name, no others), and an SSM
//! parameter read with the function's own role; the values reach the function's invocations
//! and nothing that shows the Function.

use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use super::{Cluster, answered, deploy, object};

const FROM_SECRET: &str = "k8s-s3cr3t-5e1d";
const FROM_SSM: &str = "ssm-s3cr3t-c0a7";
const FROM_LATE_SECRET: &str = "late-s3cr3t-77e1";

pub async fn a_pooled_function_reads_its_secrets_and_its_pool_no_others<C: Cluster>(c: &C) {
    let role = c.allowed_role();
    let aws = c.aws_config().await;
    if !c.meets(
        role.is_some() && aws.is_some(),
        "an IAM role the chart allows in the test namespace (FAAS_E2E_ROLE_ARN) that may read \
         SSM parameters under /faas-e2e/, and AWS to write one",
    ) {
        return;
    }
    let (role, aws) = (role.unwrap_or_default(), aws.expect("checked"));
    let team = c.team();
    let (public, _) = super::gateway(c).await;

    let parameter = format!("/faas-e2e/{team}/{}/api-key", std::process::id());
    crate::aws::put_secure_parameter(&aws, &parameter, FROM_SSM).await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let secrets: kube::Api<Secret> = kube::Api::namespaced(c.client(), team);
    for (name, value) in [("db", FROM_SECRET), ("other-team-db", "not-for-the-pool")] {
        create_secret(&secrets, name, "password", value).await;
    }

    let dir = tempfile::tempdir().expect("a temporary folder");
    let guest = crate::guest("hostile");
    std::fs::copy(&guest, dir.path().join("hostile.wasm")).expect("copy the guest");
    deploy(
        c,
        dir.path(),
        &format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: secretive}}\n\
             spec:\n  runtime:\n    wasm: {{source: hostile.wasm}}\n  \
             iam: {{roleArn: \"{role}\"}}\n  env:\n  - {{name: PLAIN, value: visible}}\n  \
             - name: DB_PASSWORD\n    valueFrom: {{secretKeyRef: {{name: db, key: password}}}}\n  \
             - name: API_KEY\n    valueFrom: {{ssmParameter: {{name: \"{parameter}\"}}}}\n"
        ),
        &[],
    );
    let env = answered(
        c,
        "secretive answers",
        &format!("{public}/function/secretive/env"),
    )
    .await;
    for line in [
        "PLAIN=visible".to_owned(),
        format!("DB_PASSWORD={FROM_SECRET}"),
        format!("API_KEY={FROM_SSM}"),
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} missing from:\n{env}\n{}",
            c.diagnostics()
        );
    }

    // The pool may read the Secret its member names, and not the other one.
    let pool = object(c, "faas.dev", "functions", team, "secretive")
        .await
        .and_then(|f| f["status"]["pool"].as_str().map(str::to_owned))
        .expect("its pool in its status");
    let access = object(
        c,
        "rbac.authorization.k8s.io",
        "roles",
        team,
        &faas_api::contract::pool_member_access_object(&pool),
    )
    .await
    .expect("the pool's member access Role");
    let secret_rules: Vec<&Value> = access["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["resources"] == json!(["secrets"]))
        .collect();
    assert_eq!(secret_rules.len(), 1, "{access}");
    assert_eq!(secret_rules[0]["resourceNames"], json!(["db"]));
    assert_eq!(secret_rules[0]["verbs"], json!(["get"]));
    let user = format!(
        "system:serviceaccount:{team}:{}",
        faas_api::contract::pool_object(&pool)
    );
    let as_pool: kube::Api<Secret> = kube::Api::namespaced(c.client_as(&user).await, team);
    as_pool.get("db").await.expect("its member's Secret");
    match as_pool.get("other-team-db").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("another Secret read by the pool: {other:?}"),
    }

    // A Secret that does not exist yet: the function serves without it, and its status says
    // which and why (reported by the pool pod, `Degraded` in the Function and `faas list`);
    // once the Secret is made, the value arrives and the condition clears.
    deploy(
        c,
        dir.path(),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: early}\n\
         spec:\n  runtime:\n    wasm: {source: hostile.wasm}\n  env:\n  \
         - name: LATE\n    valueFrom: {secretKeyRef: {name: late, key: token}}\n",
        &[],
    );
    let degraded = |want: &'static str, saying: &'static str| async move {
        let function = object(c, "faas.dev", "functions", team, "early").await?;
        let flag = super::condition(&function, "Degraded")?;
        (flag["status"] == want && flag.to_string().contains(saying)).then(|| flag.to_string())
    };
    // It joins a pool that is already running (roles do not split pools): until the
    // controller has added the Secret to the pool's Role, the pod may first be refused it
    // (`forbidden`), then it learns the Secret does not exist.
    let flag = super::until(
        c,
        "early is Degraded for its missing Secret",
        std::time::Duration::from_secs(90),
        || degraded("True", "no Secret late"),
    )
    .await;
    assert!(
        flag.contains("SecretUnavailable") && flag.contains("no Secret late"),
        "{flag}"
    );
    let listed = super::faas_ok(c, ["list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("early ") && l.contains("Degraded")),
        "{listed}"
    );
    let env = answered(c, "early answers", &format!("{public}/function/early/env")).await;
    assert!(!env.contains("LATE="), "{env}");
    create_secret(&secrets, "late", "token", FROM_LATE_SECRET).await;
    super::until(
        c,
        "early is whole once its Secret exists",
        std::time::Duration::from_secs(120),
        || degraded("False", ""),
    )
    .await;
    let env = answered(c, "early answers", &format!("{public}/function/early/env")).await;
    assert!(
        env.lines().any(|l| l == format!("LATE={FROM_LATE_SECRET}")),
        "{env}"
    );

    // Nothing that shows the Function shows a value.
    let (_, admin) = super::gateway(c).await;
    let mut shown = vec![
        (
            "the Function",
            object(c, "faas.dev", "functions", team, "secretive")
                .await
                .map(|f| f.to_string())
                .unwrap_or_default(),
        ),
        (
            "the gateway's /system/functions",
            super::get(&format!("{admin}/system/functions")).await.1,
        ),
        (
            "faas describe",
            super::faas_ok(c, ["describe", "secretive"]),
        ),
        ("faas describe", super::faas_ok(c, ["describe", "early"])),
    ];
    for pod in super::ready_pods(c, team, &faas_api::contract::pool_object(&pool)).await {
        shown.push((
            "the pool pod's log",
            super::pod_log(c, team, &pod, faas_api::contract::POOL_CONTAINER).await,
        ));
        let url = c.reach(team, &pod, 8080).await;
        shown.push((
            "the pool pod's /system/functions",
            super::get(&format!("{url}/system/functions")).await.1,
        ));
    }
    for (place, text) in &shown {
        for value in [FROM_SECRET, FROM_SSM, FROM_LATE_SECRET] {
            assert!(!text.contains(value), "{value} shown by {place}:\n{text}");
        }
    }

    let _ = ssm.delete_parameter().name(&parameter).send().await;
}

/// Creates Secret `name` holding `value` under `key`, in the namespace of `secrets`.
async fn create_secret(secrets: &kube::Api<Secret>, name: &str, key: &str, value: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name},
        "data": {key: base64_of(value)},
    }))
    .expect("a Secret");
    secrets
        .create(&kube::api::PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("create the Secret {name}: {e}"));
}

fn base64_of(value: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(value)
}
