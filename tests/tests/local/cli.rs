//! The `faas` CLI as a user meets it: help, offline validation, target errors with hints,
//! shell completion, and `faas new` templates that serve as they are.

use std::path::Path;
use std::process::Command;

use faas_e2e::{Faas, faas_bin, repo_root, skip};

/// `faas ARGS` with no kubeconfig, no gateway and no saved target from the test's
/// environment.
pub fn faas(args: &[&str], home: &Path) -> std::process::Output {
    Command::new(faas_bin())
        .args(args)
        .env_remove("FAAS_GATEWAY")
        .env_remove("FAAS_REGISTRY")
        .env_remove("FAAS_CONTEXT")
        .env_remove("FAAS_NAMESPACE")
        .env_remove("XDG_CONFIG_HOME")
        .env("FAAS_CONFIG_DIR", home.join("faas-config"))
        .env("HOME", home)
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

pub fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Compares with the committed snapshot; `UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, actual: &str) {
    let path = repo_root().join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept)"
    );
}

#[test]
fn help_is_stable_and_complete() {
    let home = tempfile::tempdir().unwrap();
    let (out, _) = text(&faas(&["--help"], home.path()));
    snapshot("help.txt", &out);
    let (out, _) = text(&faas(&["deploy", "--help"], home.path()));
    snapshot("deploy-help.txt", &out);
}

#[test]
fn target_errors_name_the_cause_and_a_way_out() {
    let home = tempfile::tempdir().unwrap();
    // No kubeconfig, but a cluster flag.
    let out = faas(&["list", "-n", "team"], home.path());
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.starts_with("faas: error: no usable kubeconfig"),
        "{err}"
    );
    assert!(err.contains("--gateway URL"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");

    // A kubeconfig without the asked context.
    std::fs::write(
        home.path().join("kubeconfig"),
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: dev\n  context: {cluster: c, user: u, namespace: team}\n- name: prod\n  context: {cluster: c, user: u}\n",
    )
    .unwrap();
    let (_, err) = text(&faas(&["list", "--context", "staging"], home.path()));
    assert!(
        err.contains(
            "context \"staging\" not found in the kubeconfig; hint: use one of: dev, prod"
        ),
        "{err}"
    );
    // Both kinds of target at once.
    let (_, err) = text(&faas(
        &["list", "--gateway", "http://127.0.0.1:1", "-n", "x"],
        home.path(),
    ));
    assert!(err.contains("give one or the other"), "{err}");
    // The cluster of the kubeconfig is the target; an unreachable API server says so.
    let (_, err) = text(&faas(&["list"], home.path()));
    assert!(err.contains("cannot reach the API server"), "{err}");
}

#[test]
fn validate_checks_offline_and_names_the_field() {
    let home = tempfile::tempdir().unwrap();
    let good = repo_root().join("examples/hello/function.yaml");
    let out = faas(&["validate", "-f", good.to_str().unwrap()], home.path());
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(text(&out).0, "hello: valid (wasm)\n");

    let bad = home.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: bad}\nspec:\n  runtime: {wasm: {source: a.wasm}}\n  schedules:\n  - {name: nightly, cron: '61 * * * *'}\n",
    )
    .unwrap();
    let out = faas(&["validate", "-f", bad.to_str().unwrap()], home.path());
    assert_eq!(out.status.code(), Some(1));
    let (_, err) = text(&out);
    assert!(err.contains("spec.schedules[0].cron"), "{err}");
}

#[test]
fn completion_scripts_are_generated() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = faas(&["completion", shell], home.path());
        assert!(out.status.success(), "{shell}");
        let (script, _) = text(&out);
        assert!(
            script.contains("deploy") && script.contains("faas"),
            "{shell}: {script}"
        );
    }
}

#[test]
fn new_refuses_bad_names_and_existing_folders() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().to_str().unwrap();
    let (_, err) = text(&faas(&["new", "Bad_Name", "--dir", dir], home.path()));
    assert!(err.contains("NAME \"Bad_Name\""), "{err}");
    assert!(
        faas(
            &["new", "web", "--lang", "container", "--dir", dir],
            home.path()
        )
        .status
        .success()
    );
    let (_, err) = text(&faas(&["new", "web", "--dir", dir], home.path()));
    assert!(err.contains("already exists"), "{err}");
}

#[tokio::test]
async fn templates_serve_as_they_are() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().to_str().unwrap();
    for (name, lang) in [
        ("web", "container"),
        ("orders", "python-lambda"),
        ("nightly", "job"),
    ] {
        let out = faas(&["new", name, "--lang", lang, "--dir", dir], home.path());
        assert!(out.status.success(), "{:?}", text(&out));
        let manifest = home.path().join(name).join("function.yaml");
        let out = faas(&["validate", "-f", manifest.to_str().unwrap()], home.path());
        assert!(out.status.success(), "{lang}: {:?}", text(&out));
        // The container template listens on 8081 (PORT; 8080 is the gateway's); tests run side by
        // side on one machine, so this one gets a free port instead.
        let yaml = std::fs::read_to_string(&manifest).unwrap();
        let port = faas_e2e::free_port().to_string();
        std::fs::write(
            &manifest,
            yaml.replace("port: 8081", &format!("port: {port}")),
        )
        .unwrap();
    }
    // Both in one local platform: the container's server and the Lambda handler answer.
    let faas = Faas::start(home.path());
    faas.eventually("web answers", || async {
        faas_e2e::get(&faas.url("/function/web/hi")).await.status == 200
    })
    .await;
    let reply = faas_e2e::get(&faas.url("/function/web/hi")).await;
    assert_eq!(reply.json()["path"], "/hi");
    faas.eventually("orders answers", || async {
        faas_e2e::get(&faas.url("/function/orders/x")).await.status == 200
    })
    .await;
    let reply = faas_e2e::get(&faas.url("/function/orders/x")).await;
    assert_eq!(reply.json()["function"], "orders", "{}", reply.text());
    // The job runs once per run, with its options.
    let out = faas
        .cli()
        .args(["run", "nightly", "--option", "days=2"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), r#"{"days": 2, "ok": true}"#, "{stderr}");
}

#[tokio::test]
async fn the_rust_template_builds_and_serves() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
        .unwrap_or(false);
    if !installed {
        skip::missing("the wasm32-wasip2 target is not installed (scripts/test.sh installs it)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let out = faas(
        &["new", "greet", "--dir", home.path().to_str().unwrap()],
        home.path(),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let crate_dir = home.path().join("greet");
    let out = faas(
        &[
            "validate",
            "-f",
            crate_dir.join("function.yaml").to_str().unwrap(),
        ],
        home.path(),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    // `faas deploy NAME --wasm CRATE` builds the crate for wasm32-wasip2 and deploys it.
    let platform = tempfile::tempdir().unwrap();
    let faas = Faas::start(platform.path());
    let out = faas
        .cli()
        .args(["deploy", "greet", "--wasm"])
        .arg(&crate_dir)
        .env("CARGO_TARGET_DIR", crate_dir.join("target"))
        // From the checkout, the generated crate builds with nothing fetched.
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let wasm = std::fs::read(crate_dir.join("target/wasm32-wasip2/release/greet.wasm")).unwrap();
    assert_eq!(&wasm[..4], b"\0asm");
    let reply = faas_e2e::get(&faas.url("/function/greet")).await;
    assert!(
        reply.text().starts_with("Hello from GET"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn deploy_without_a_manifest_takes_flags() {
    let platform = tempfile::tempdir().unwrap();
    let faas = Faas::start(platform.path());
    let hello = faas_e2e::guest("hello");
    let out = faas
        .cli()
        .args(["deploy", "hi", "--wasm"])
        .arg(&hello)
        .args(["--schedule", "nightly=0 3 * * *", "--env", "GREETING=hey"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let reply = faas_e2e::get(&faas.url("/function/hi/x")).await;
    assert_eq!(reply.text(), "Hello from faas: GET /x\n");
    let out = faas
        .cli()
        .args(["describe", "hi", "-o", "json"])
        .output()
        .unwrap();
    let detail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        detail["function"]["spec"]["schedules"][0]["cron"], "0 3 * * *",
        "{detail}"
    );
    assert_eq!(detail["function"]["spec"]["env"]["GREETING"], "hey");

    // Bad flags are refused before anything is sent, naming the flag or the field.
    let out = faas
        .cli()
        .args(["deploy", "hi", "--wasm"])
        .arg(&hello)
        .args(["--schedule", "0 25 * * *"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("spec.schedules[0].cron"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn a_registry_that_refuses_us_is_named_with_the_way_to_log_in() {
    let registry = faas_e2e::registry::RegistryServer::start(true);
    let home = tempfile::tempdir().unwrap();
    // A cluster target that is never reached: the push comes first and fails.
    std::fs::write(
        home.path().join("kubeconfig"),
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: dev\n  context: {cluster: c, user: u, namespace: team}\n",
    )
    .unwrap();
    let hello = faas_e2e::guest("hello");
    // The cluster is chosen (`--context`): a kubeconfig's current context alone is refused.
    let out = faas(
        &[
            "deploy",
            "--context",
            "dev",
            "hello",
            "--wasm",
            hello.to_str().unwrap(),
            "--registry",
            &format!("{}/functions", registry.host),
        ],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let (_, err) = text(&out);
    assert!(err.contains("refused our credentials (401"), "{err}");
    assert!(
        err.contains(&format!("docker login {}", registry.host)),
        "{err}"
    );
}
