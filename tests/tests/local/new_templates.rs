//! `faas new` Rust templates build for a user who installed the CLI any way: `faas-sdk` comes
//! from the checkout the CLI runs from, else from this repository by git at the CLI's own
//! version tag; the Lambda template says how it is built. Cargo itself reads the generated
//! manifests (`cargo metadata --no-deps --offline`: nothing is fetched).

use std::path::{Path, PathBuf};
use std::process::Command;

use faas_e2e::{faas_bin, repo_root};
use serde_json::Value;

use crate::cli::text;

/// `BIN new ARGS` in `home`, with nothing from the test's own environment.
fn new(bin: &Path, args: &[&str], home: &Path) -> (String, String) {
    let out = Command::new(bin)
        .arg("new")
        .args(args)
        .arg("--dir")
        .arg(home)
        .env("FAAS_CONFIG_DIR", home.join("faas-config"))
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    text(&out)
}

/// The `faas-sdk` dependency of the crate in `dir`, as cargo reads it.
fn sdk_dependency(dir: &Path) -> Value {
    let out = Command::new("cargo")
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    metadata["packages"][0]["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "faas-sdk")
        .cloned()
        .unwrap_or_else(|| panic!("no faas-sdk dependency: {metadata}"))
}

/// What `faas new` said the SDK comes from.
fn said_from(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("faas-sdk from: "))
        .unwrap_or_else(|| panic!("faas new did not say where faas-sdk comes from:\n{stdout}"))
}

#[test]
fn from_the_checkout_the_sdk_is_the_checkouts() {
    let home = tempfile::tempdir().unwrap();
    let (out, _) = new(faas_bin(), &["greet", "--lang", "rust"], home.path());
    let sdk = std::fs::canonicalize(repo_root().join("sdk/rust")).unwrap();
    assert_eq!(
        said_from(&out),
        format!("{} (the checkout this faas runs from)", sdk.display()),
        "{out}"
    );
    let dependency = sdk_dependency(&home.path().join("greet"));
    assert_eq!(
        PathBuf::from(dependency["path"].as_str().unwrap()),
        sdk,
        "{dependency}"
    );
}

#[test]
fn an_installed_cli_points_at_git_at_its_own_version() {
    // The same binary, outside the checkout (as `cargo install` or a release leaves it).
    let installed = tempfile::tempdir().unwrap();
    let bin = installed.path().join("faas");
    if std::fs::hard_link(faas_bin(), &bin).is_err() {
        std::fs::copy(faas_bin(), &bin).unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    let (out, _) = new(&bin, &["greet", "--lang", "rust"], home.path());
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    let said = said_from(&out);
    let url = said
        .strip_suffix(&format!(" at tag {tag} (this faas's version)"))
        .unwrap_or_else(|| panic!("not git at {tag}: {said}"));
    assert!(url.starts_with("https://"), "{said}");
    let dependency = sdk_dependency(&home.path().join("greet"));
    assert_eq!(
        dependency["source"],
        format!("git+{url}?tag={tag}"),
        "{dependency}"
    );
    assert!(dependency["path"].is_null(), "{dependency}");
}

#[test]
fn the_rust_lambda_template_says_how_it_is_built() {
    let home = tempfile::tempdir().unwrap();
    let (out, _) = new(
        faas_bin(),
        &["orders", "--lang", "rust-lambda"],
        home.path(),
    );
    let dir = home.path().join("orders");
    let line = out
        .lines()
        .find(|l| l.starts_with("build it:"))
        .unwrap_or_else(|| panic!("no build line:\n{out}"));
    assert!(
        line.contains(&format!(
            "cargo build --manifest-path {}",
            dir.join("Cargo.toml").display()
        )),
        "{line}"
    );
    // What it says faas up runs is what the manifest runs.
    let yaml = std::fs::read_to_string(dir.join("function.yaml")).unwrap();
    assert!(line.contains("target/debug/orders"), "{line}");
    assert!(yaml.contains("command: [target/debug/orders]"), "{yaml}");
}
