//! Which sources each entry point serves, and what it says about the others.

use std::path::Path;

use faas_api::Function;
use faas_api::artifact::Digest;

use super::*;

/// A Function as stored (not validated, as a tampered state directory could hold it).
fn wasm(source: &str) -> Function {
    serde_yaml::from_str(&format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: f}}\n\
         spec:\n  runtime:\n    wasm: {{source: {source:?}}}\n"
    ))
    .expect("a Function")
}

fn container() -> Function {
    serde_yaml::from_str(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: f}\n\
         spec:\n  runtime:\n    container: {command: [./serve]}\n",
    )
    .expect("a Function")
}

#[test]
fn local_mode_serves_files_relative_to_the_manifest() {
    let base = Path::new("/srv/fns");
    assert_eq!(
        local_path(&wasm("target/a.wasm"), base).expect("a file"),
        base.join("target/a.wasm")
    );
    assert_eq!(
        local_path(&wasm("file:///opt/a.wasm"), base).expect("a file"),
        Path::new("/opt/a.wasm")
    );
    let refused = |f: &Function| local_path(f, base).expect_err("refused").to_string();
    let sha = format!("sha256:{}", "a".repeat(64));
    assert!(
        refused(&wasm(&sha))
            .ends_with("names an uploaded artifact; point source at the .wasm file")
    );
    assert!(
        refused(&wasm("oci://r.example/fn:1"))
            .contains("is fetched in a cluster; local mode serves files")
    );
    assert!(refused(&wasm("configmap://m/k")).contains("is fetched in a cluster"));
    assert!(
        refused(&wasm("s3://b/a.wasm")).starts_with("spec.runtime.wasm.source: unknown scheme")
    );
    assert!(
        refused(&container())
            .starts_with("spec.runtime.container: a container function has no artifact file")
    );
}

#[test]
fn the_server_reads_uploads_by_digest_and_absolute_files() {
    let state = tempfile::tempdir().expect("tempdir");
    let digest = upload::store(state.path(), b"\0asm module").expect("stored");
    assert_eq!(digest, Digest::of(b"\0asm module"));
    assert_eq!(
        upload::path(state.path(), &digest),
        state
            .path()
            .join("artifacts")
            .join(format!("{digest}.wasm"))
    );
    let read = server_side(&wasm(&format!("sha256:{digest}")), state.path()).expect("read");
    assert_eq!(&read[..], b"\0asm module");
    // Either case names the same upload.
    let upper = format!("sha256:{}", digest.as_str().to_uppercase());
    assert!(server_side(&wasm(&upper), state.path()).is_ok());

    let file = state.path().join("a.wasm");
    std::fs::write(&file, b"file bytes").expect("write");
    let read = server_side(&wasm(&file.display().to_string()), state.path()).expect("read");
    assert_eq!(&read[..], b"file bytes");
    let read = server_side(&wasm(&format!("file://{}", file.display())), state.path());
    assert_eq!(&read.expect("read")[..], b"file bytes");

    assert!(
        server_side(&container(), state.path())
            .expect("empty")
            .is_empty()
    );
}

#[test]
fn the_server_says_why_it_cannot_read_a_source() {
    let state = tempfile::tempdir().expect("tempdir");
    let err = |source: &str| {
        server_side(&wasm(source), state.path())
            .expect_err(source)
            .to_string()
    };
    let absent = "b".repeat(64);
    assert_eq!(
        err(&format!("sha256:{absent}")),
        format!("spec.runtime.wasm.source: no uploaded artifact with sha256 {absent}")
    );
    assert!(
        err("/nowhere/a.wasm")
            .starts_with("spec.runtime.wasm.source: cannot read /nowhere/a.wasm: ")
    );
    for not_here in ["a.wasm", "oci://r.example/fn:1", "configmap://m/k"] {
        assert!(
            err(not_here).ends_with("is not readable by the server; upload the artifact (multipart part `artifact`, as `faas deploy` does) or give an absolute path"),
            "{not_here}"
        );
    }
}

/// The one intended change: an upload is found by a 64-hex digest only. A name that is a path
/// (or any other text) is refused before a file is looked for, so it cannot read a `.wasm`
/// outside `artifacts/`.
#[test]
fn an_upload_name_that_is_not_a_digest_is_refused() {
    let state = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(state.path().join("artifacts")).expect("mkdir");
    std::fs::write(state.path().join("outside.wasm"), b"secret").expect("write");
    for name in ["../outside", "abc", ""] {
        let got = server_side(&wasm(&format!("sha256:{name}")), state.path());
        assert!(
            matches!(got, Err(FetchError::Source(SourceError::UploadDigest(_)))),
            "{name}: {got:?}"
        );
    }
}

#[test]
fn a_damaged_upload_is_refused() {
    let state = tempfile::tempdir().expect("tempdir");
    let digest = upload::store(state.path(), b"original").expect("stored");
    std::fs::write(upload::path(state.path(), &digest), b"changed").expect("write");
    let err = server_side(&wasm(&format!("sha256:{digest}")), state.path()).expect_err("damaged");
    assert!(
        matches!(&err, FetchError::DamagedUpload { name, .. } if *name == digest),
        "{err}"
    );
    assert!(err.to_string().contains("is damaged"), "{err}");
}
