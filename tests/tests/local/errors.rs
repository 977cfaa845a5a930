//! What a user reads when something is wrong: each error once, on one line, blamed on what
//! caused it.

use faas_e2e::{Faas, after_target};

use crate::cli::{faas, text};

/// The lines of `stderr` that say `faas: error:`.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("faas: error:"))
        .collect()
}

/// `stderr` holds one error line, and says `cause` exactly once.
fn said_once(stderr: &str, cause: &str) {
    assert_eq!(error_lines(stderr).len(), 1, "{stderr}");
    assert_eq!(stderr.matches(cause).count(), 1, "{cause:?} in:\n{stderr}");
}

#[test]
fn validation_and_file_errors_are_printed_once() {
    let home = tempfile::tempdir().unwrap();
    let invalid = home.path().join("invalid.yaml");
    std::fs::write(
        &invalid,
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: bad}\nspec:\n  runtime: {container: {command: [sh], mode: cgi}}\n  timeout: 0s\n",
    )
    .unwrap();
    let missing = home.path().join("missing.yaml");
    let (invalid, missing) = (invalid.to_str().unwrap(), missing.to_str().unwrap());

    for command in ["validate", "deploy"] {
        let out = faas(&[command, "-f", invalid], home.path());
        assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
        let (_, err) = text(&out);
        said_once(
            &err,
            "spec.timeout: must be between 1s and 24h for a container function",
        );

        let out = faas(&[command, "-f", missing], home.path());
        assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
        let (_, err) = text(&out);
        said_once(&err, "No such file or directory");
        assert!(err.contains("missing.yaml"), "{err}");
    }
}

#[test]
fn a_bad_zone_is_blamed_on_tz() {
    let home = tempfile::tempdir().unwrap();
    let out = faas(
        &["schedules", "--cron", "0 3 * * *", "--tz", "Bad/Zone"],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let (_, err) = text(&out);
    assert!(
        err.contains("--tz: unknown time zone \"Bad/Zone\""),
        "{err}"
    );
    assert!(!err.contains("--cron"), "{err}");
}

/// A container function deployed with `--image` only cannot run locally: the reason is one
/// clean line naming the field and the image.
#[tokio::test]
async fn an_image_without_a_command_is_refused_locally_in_one_clean_line() {
    let platform = tempfile::tempdir().unwrap();
    let faas = Faas::start(platform.path());
    let out = faas
        .cli()
        .args([
            "deploy",
            "shop",
            "--image",
            "registry.example/shop:1",
            "--port",
            "8000",
        ])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    let out = faas
        .cli()
        .args(["describe", "shop", "-o", "json"])
        .output()
        .unwrap();
    let detail = String::from_utf8_lossy(&out.stdout).into_owned();
    let said = format!("{}\n{detail}", after_target(&err));
    let reason = "spec.runtime.container.command: local mode runs a process on this machine, not the image registry.example/shop:1; set command (and args) to what the image's entrypoint runs";
    assert!(said.contains(reason), "{said}");
    for line in said.lines().filter(|l| l.contains("not the image")) {
        assert!(!line.contains('\\') && !line.contains("  not"), "{line}");
    }
}
