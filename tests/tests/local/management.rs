//! Deploy, replace and delete through the management API (with the `faas` CLI).

use faas_e2e::*;

#[tokio::test(flavor = "multi_thread")]
async fn deploy_replace_delete() {
    let served = tempfile::tempdir().unwrap();
    let faas = Faas::start(served.path());
    let work = tempfile::tempdir().unwrap();

    // Deploy `greeter` from the hostile guest: /ok answers "ok".
    let manifest = write_function(work.path(), "greeter", &guest("hostile"), "  timeout: 5s\n");
    let deploy = faas.deploy(&manifest);
    assert!(
        deploy.status.success(),
        "{}",
        String::from_utf8_lossy(&deploy.stderr)
    );
    assert!(String::from_utf8_lossy(&deploy.stdout).contains("greeter created"));
    let first = get(&faas.url("/function/greeter/ok")).await;
    assert_eq!((first.status, first.text().as_str()), (200, "ok"));

    // Replace it with hello: same name, new behaviour, no restart.
    let manifest = write_function(work.path(), "greeter", &guest("hello"), "  timeout: 5s\n");
    let deploy = faas.deploy(&manifest);
    assert!(deploy.status.success());
    assert!(String::from_utf8_lossy(&deploy.stdout).contains("greeter updated"));
    let second = get(&faas.url("/function/greeter/ok")).await;
    assert_eq!(second.text(), "Hello from faas: GET /ok\n");

    // A broken artifact is refused with the reason and the running version keeps serving.
    let junk = work.path().join("junk.wasm");
    std::fs::write(&junk, b"#!/bin/sh\necho not wasm\n").unwrap();
    let manifest = write_function(work.path(), "greeter", &junk, "");
    let refused = faas.deploy(&manifest);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("422") && err.contains("not a WebAssembly binary"),
        "{err}"
    );
    assert_eq!(
        get(&faas.url("/function/greeter/ok")).await.text(),
        "Hello from faas: GET /ok\n"
    );

    // An invalid manifest is refused before anything is sent, naming the field.
    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: greeter}\nspec:\n  runtime: {wasm: {source: x.wasm}}\n  timeout: 30x\n").unwrap();
    let refused = faas.deploy(&bad);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("spec.timeout") && err.contains("30x"), "{err}");

    // The raw API answers with JSON errors naming the problem.
    let mismatch = send(
        "PUT",
        &faas.url("/system/functions/other"),
        &[("content-type", "application/yaml")],
        std::fs::read(work.path().join("greeter.yaml")).unwrap(),
    )
    .await;
    assert_eq!(mismatch.status, 422);
    assert_eq!(mismatch.json()["reason"], "NameMismatch");
    let garbage = send(
        "PUT",
        &faas.url("/system/functions/x"),
        &[("content-type", "application/yaml")],
        "{{{{ not yaml",
    )
    .await;
    assert_eq!(garbage.status, 422);
    assert_eq!(
        send("POST", &faas.url("/system/functions"), &[], "")
            .await
            .status,
        405
    );

    // Delete, then 404 everywhere.
    let delete = faas.cli().args(["delete", "greeter"]).output().unwrap();
    assert!(delete.status.success());
    let gone = get(&faas.url("/function/greeter/ok")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        get(&faas.url("/system/functions/greeter")).await.status,
        404
    );
    let again = faas.cli().args(["delete", "greeter"]).output().unwrap();
    assert!(!again.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn deployments_survive_a_restart_and_load_from_the_compile_cache() {
    let served = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut faas = Faas::start_in_state(served.path(), state.path());
    let manifest = write_function(work.path(), "kept", &guest("hostile"), "");
    let deploy = faas.deploy(&manifest);
    assert!(
        deploy.status.success(),
        "{}",
        String::from_utf8_lossy(&deploy.stderr)
    );
    faas.sigterm();
    assert_eq!(faas.wait_exit(std::time::Duration::from_secs(10)), Some(0));
    drop(faas);

    let faas = Faas::start_in_state(served.path(), state.path());
    let reply = get(&faas.url("/function/kept/ok")).await;
    assert_eq!(
        reply.text(),
        "ok",
        "stderr:\n{}",
        faas.stderr.lock().unwrap()
    );
    let metrics = get(&faas.url("/metrics")).await.text();
    assert!(
        metrics.contains(r#"faas_artifact_loads_total{outcome="disk_cache"} 1"#),
        "{metrics}"
    );
    let described = get(&faas.url("/system/functions/kept")).await.json();
    assert_eq!(described["summary"]["origin"]["kind"], "api");
}
