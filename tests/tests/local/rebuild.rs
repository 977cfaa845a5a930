//! Rebuild on source change (issue 23, item 4): `faas up` (builds on) rebuilds a function
//! whose `build:` sources change and serves the new version; a build that fails leaves the old
//! version serving and says why (`BuildFailed` in `/system/functions` and `faas describe`);
//! a `build:` added to a manifest while it runs is built. The guest is a tiny std-only CGI
//! program for `wasm32-wasip1`, so each build takes seconds.

use std::path::Path;
use std::time::{Duration, Instant};

use faas_e2e::*;
use serde_json::Value;

/// A standalone crate `name` in `dir` whose program answers `answer`.
fn guest_crate(dir: &Path, name: &str, answer: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    answer_with(dir, answer);
}

/// Makes the crate in `dir` answer `answer`.
fn answer_with(dir: &Path, answer: &str) {
    std::fs::write(
        dir.join("src/main.rs"),
        format!("fn main() {{\n    print!(\"Content-Type: text/plain\\n\\n{answer}\");\n}}\n"),
    )
    .unwrap();
}

/// The manifest of `name`, built from the crate beside it when `build`.
fn manifest(dir: &Path, name: &str, build: bool) {
    let build = if build {
        ", build: {cargo: {target: wasm32-wasip1}}"
    } else {
        ""
    };
    std::fs::write(
        dir.join("function.yaml"),
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime: {{wasm: {{source: ../target/wasm32-wasip1/release/{name}.wasm{build}}}}}\n  timeout: 10s\n"
        ),
    )
    .unwrap();
}

/// Polls `check` for up to two minutes (builds on a busy machine are slow).
async fn until<F, Fut>(faas: &Faas, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "timed out waiting for: {what}\nstderr:\n{}",
        faas.stderr.lock().unwrap()
    );
}

async fn answer(faas: &Faas, name: &str) -> String {
    get(&faas.url(&format!("/function/{name}"))).await.text()
}

async fn summary(faas: &Faas, name: &str) -> Value {
    get(&faas.url(&format!("/system/functions/{name}")))
        .await
        .json()["summary"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_sources_are_rebuilt_and_a_broken_build_keeps_the_old_version() {
    let root = tempfile::tempdir().unwrap();
    let served = root.path().join("served");
    guest_crate(&served, "served", "version 1");
    manifest(&served, "served", true);
    // A function whose manifest has no `build:` yet: nothing builds its artifact.
    let later = root.path().join("later");
    guest_crate(&later, "later", "built later");
    manifest(&later, "later", false);

    let faas = Faas::launch(
        root.path(),
        Launch {
            build: true,
            // One target directory beside the crates (the manifests' `../target`), whatever
            // the environment says.
            env: vec![(
                "CARGO_TARGET_DIR".into(),
                root.path().join("target").display().to_string(),
            )],
            ..Launch::default()
        },
    );
    assert_eq!(answer(&faas, "served").await, "version 1");
    assert_eq!(summary(&faas, "later").await["state"], "NotReady");

    // An edit: rebuilt, swapped, with progress on the terminal.
    answer_with(&served, "version 2");
    until(&faas, "the edited source served", || async {
        answer(&faas, "served").await == "version 2"
    })
    .await;
    let log = faas.stderr.lock().unwrap().clone();
    assert_eq!(log.matches("faas: building served").count(), 2, "{log}");
    assert!(log.contains("faas: built served"), "{log}");
    assert!(log.contains("faas: reloaded served"), "{log}");
    assert_eq!(summary(&faas, "served").await["state"], "Ready");

    // A broken edit: the old version serves, and every status says why.
    std::fs::write(
        served.join("src/main.rs"),
        "fn main() {\n    let n: u32 = \"not a number\";\n}\n",
    )
    .unwrap();
    until(&faas, "the failed build reported", || async {
        summary(&faas, "served").await["state"] == "Degraded"
    })
    .await;
    let served_now = summary(&faas, "served").await;
    assert_eq!(
        served_now["reasons"][0]["reason"], "BuildFailed",
        "{served_now}"
    );
    let message = served_now["reasons"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("previous version serves")
            && message.contains("error[E0308]")
            && message.contains("src/main.rs:2"),
        "{message}"
    );
    assert_eq!(answer(&faas, "served").await, "version 2");
    let log = faas.stderr.lock().unwrap().clone();
    assert!(
        log.contains("faas: build of served failed: error[E0308]"),
        "{log}"
    );
    assert!(
        log.contains("mismatched types"),
        "cargo's own output is shown: {log}"
    );
    let out = faas
        .cli()
        .args(["describe", "served", "-o", "table"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("Degraded") && l.contains("BuildFailed")),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Fixed: built again, Ready again.
    answer_with(&served, "version 3");
    until(&faas, "the fixed source served", || async {
        answer(&faas, "served").await == "version 3"
    })
    .await;
    until(&faas, "Ready after the fix", || async {
        summary(&faas, "served").await["state"] == "Ready"
    })
    .await;

    // A `build:` added while it runs: built and served.
    manifest(&later, "later", true);
    until(&faas, "the function given a build served", || async {
        answer(&faas, "later").await == "built later"
    })
    .await;
}
