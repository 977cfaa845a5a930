//! Secrets in `spec.env` under `faas up`: an entry's value from a Kubernetes Secret (locally
//! a file of `faas up --secrets DIR`), from SSM Parameter Store or from Secrets Manager (moto,
//! with the developer's credentials) reaches the function's invocations, and appears nowhere
//! else: not in `/system`, `faas describe`, `faas list -o yaml`, the dashboard, the logs or a
//! run's record. A secret that cannot be read degrades its function, naming the secret and
//! never a value; its invocations run without it.

use faas_e2e::moto::moto;
use faas_e2e::*;

use crate::runs::output;

const FROM_FILE: &str = "file-s3cr3t-7f3a";
const FROM_SSM: &str = "ssm-s3cr3t-91c2";
const FROM_SECRETS_MANAGER: &str = "sm-s3cr3t-44d0";

/// A parameter and a secret on moto, named for this test process (moto is shared).
async fn aws_secrets() -> (String, String) {
    let config = moto().sdk_config();
    let parameter = format!("/faas-test/{}/api-key", std::process::id());
    faas_e2e::aws::put_secure_parameter(&config, &parameter, FROM_SSM).await;
    let secret = format!("faas-test-{}-tokens", std::process::id());
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let _ = sm
        .delete_secret()
        .secret_id(&secret)
        .force_delete_without_recovery(true)
        .send()
        .await;
    sm.create_secret()
        .name(&secret)
        .secret_string(format!(
            r#"{{"stripe": "{FROM_SECRETS_MANAGER}", "other": "x"}}"#
        ))
        .send()
        .await
        .expect("create the secret");
    (parameter, secret)
}

fn manifest(parameter: &str, secret: &str) -> String {
    format!(
        "  env:\n  - {{name: PLAIN, value: visible-plain}}\n  \
         - name: DB_PASSWORD\n    valueFrom: {{secretKeyRef: {{name: db, key: password}}}}\n  \
         - name: API_KEY\n    valueFrom: {{ssmParameter: {{name: \"{parameter}\"}}}}\n  \
         - name: STRIPE_KEY\n    valueFrom: {{secretsManager: {{secretId: \"{secret}\", jsonKey: stripe}}}}\n"
    )
}

fn env_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            ["PLAIN=", "DB_PASSWORD=", "API_KEY=", "STRIPE_KEY="]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

/// `faas up` on `dir`, with moto for AWS and `secrets` as its `--secrets` folder.
fn launch(dir: &std::path::Path, secrets: &std::path::Path) -> Faas {
    Faas::launch(
        dir,
        Launch {
            env: moto().env(),
            args: vec!["--secrets".into(), secrets.to_string_lossy().into_owned()],
            ..Launch::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_all_three_sources_reach_the_function_and_nothing_else() {
    let (parameter, secret) = aws_secrets().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    std::fs::create_dir(secrets.path().join("db")).unwrap();
    std::fs::write(secrets.path().join("db/password"), FROM_FILE).unwrap();
    write_function(
        dir.path(),
        "secretive",
        &guest("hostile"),
        &manifest(&parameter, &secret),
    );
    let faas = launch(dir.path(), secrets.path());
    let reply = get(&faas.url("/function/secretive/env")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        env_lines(&reply.text()),
        [
            format!("API_KEY={FROM_SSM}"),
            format!("DB_PASSWORD={FROM_FILE}"),
            "PLAIN=visible-plain".to_owned(),
            format!("STRIPE_KEY={FROM_SECRETS_MANAGER}"),
        ]
    );

    // A run (its record), then every place a function is shown.
    let mut run = faas.cli();
    run.args(["run", "secretive", "-d", "log"]);
    let (code, out, err) = output(run);
    assert_eq!(code, Some(0), "{out}{err}");
    let mut shown = vec![
        ("run", format!("{out}{err}")),
        (
            "/system/functions",
            get(&faas.url("/system/functions")).await.text(),
        ),
        (
            "/system/functions/secretive",
            get(&faas.url("/system/functions/secretive")).await.text(),
        ),
        ("/system/runs", get(&faas.url("/system/runs")).await.text()),
        ("/ui/", get(&faas.url("/ui/")).await.text()),
        (
            "/ui/functions/secretive",
            get(&faas.url("/ui/functions/secretive")).await.text(),
        ),
        ("/ui/runs", get(&faas.url("/ui/runs")).await.text()),
    ];
    for args in [
        &["describe", "secretive"][..],
        &["list", "-o", "yaml"],
        &["runs", "secretive"],
    ] {
        let mut cmd = faas.cli();
        cmd.args(args);
        let (code, out, err) = output(cmd);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        shown.push(("faas", format!("{args:?}: {out}{err}")));
    }
    // The run's own record, with its log tail.
    let id = shown[0]
        .1
        .split_whitespace()
        .find(|w| w.starts_with("secretive."))
        .expect("the run's id")
        .to_owned();
    shown.push((
        "run record",
        get(&faas.url(&format!("/system/runs/{id}"))).await.text(),
    ));
    let mut show = faas.cli();
    show.args(["runs", "show", &id]);
    let (code, out, err) = output(show);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("logged") || out.contains("Succeeded"), "{out}");
    shown.push(("faas runs show", out));
    shown.push(("faas up's logs", faas.stderr.lock().unwrap().clone()));
    for (place, text) in &shown {
        for value in [FROM_FILE, FROM_SSM, FROM_SECRETS_MANAGER] {
            assert!(!text.contains(value), "{value} shown by {place}:\n{text}");
        }
    }
    // What is shown is where each comes from.
    let described = &shown
        .iter()
        .find(|(p, _)| *p == "/system/functions/secretive")
        .expect("shown")
        .1;
    assert!(
        described.contains("secretKeyRef") && described.contains(&parameter),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_cannot_be_read_degrades_its_function_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "secretive",
        &guest("hostile"),
        "  env:\n  - {name: PLAIN, value: visible-plain}\n  \
         - name: DB_PASSWORD\n    valueFrom: {secretKeyRef: {name: db, key: password}}\n  \
         - name: API_KEY\n    valueFrom: {ssmParameter: {name: /faas-test/missing}}\n",
    );
    let faas = launch(dir.path(), secrets.path());
    let reply = get(&faas.url("/function/secretive/env")).await;
    assert_eq!(reply.status, 200, "it still runs: {}", reply.text());
    assert_eq!(env_lines(&reply.text()), ["PLAIN=visible-plain"]);
    let mut describe = faas.cli();
    describe.args(["describe", "secretive"]);
    let (_, described, _) = output(describe);
    assert!(described.contains("Degraded"), "{described}");
    assert!(described.contains("SecretUnavailable"), "{described}");
    assert!(
        described.contains("Secret db key password") && described.contains("db/password"),
        "names the Secret and the file it looked for: {described}"
    );
    assert!(
        described.contains("SSM parameter /faas-test/missing")
            && described.contains("ParameterNotFound"),
        "{described}"
    );

    // The file appears: the next refresh reads it, and the function is whole again.
    std::fs::create_dir(secrets.path().join("db")).unwrap();
    std::fs::write(secrets.path().join("db/password"), FROM_FILE).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = get(&faas.url("/function/secretive/env")).await.text();
        if env_lines(&text).contains(&format!("DB_PASSWORD={FROM_FILE}")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never re-read: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
