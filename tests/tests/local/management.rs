//! Deploy, replace and delete through the management API (with the `faas` CLI).

use faas_e2e::*;

/// `faas deploy --replace --no-build -f MANIFEST`.
fn replace(faas: &Faas, manifest: &std::path::Path) -> std::process::Output {
    faas.cli()
        .args(["deploy", "--replace", "--no-build", "-f"])
        .arg(manifest)
        .output()
        .unwrap()
}

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

    // Another artifact under the same name is a replacement: refused, saying what differs...
    let manifest = write_function(work.path(), "greeter", &guest("hello"), "  timeout: 5s\n");
    let refused = faas.deploy(&manifest);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && err.contains("409")
            && err.contains("replace it with a different function (artifact ")
            && err.contains("hostile")
            && err.contains("digest ")
            && err.contains("faas deploy --replace"),
        "{err}"
    );
    assert_eq!(get(&faas.url("/function/greeter/ok")).await.text(), "ok");
    // ... and done with --replace: same name, new behaviour, no restart.
    let deploy = replace(&faas, &manifest);
    assert!(deploy.status.success());
    assert!(String::from_utf8_lossy(&deploy.stdout).contains("greeter updated"));
    let second = get(&faas.url("/function/greeter/ok")).await;
    assert_eq!(second.text(), "Hello from faas: GET /ok\n");

    // A broken artifact is refused with the reason and the running version keeps serving.
    let junk = work.path().join("junk.wasm");
    std::fs::write(&junk, b"#!/bin/sh\necho not wasm\n").unwrap();
    let manifest = write_function(work.path(), "greeter", &junk, "");
    let refused = replace(&faas, &manifest);
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
        &[("content-type", "application/yaml"), MANAGE],
        std::fs::read(work.path().join("greeter.yaml")).unwrap(),
    )
    .await;
    assert_eq!(mismatch.status, 422);
    assert_eq!(mismatch.json()["reason"], "NameMismatch");
    let garbage = send(
        "PUT",
        &faas.url("/system/functions/x"),
        &[("content-type", "application/yaml"), MANAGE],
        "{{{{ not yaml",
    )
    .await;
    assert_eq!(garbage.status, 422);
    assert_eq!(
        send("POST", &faas.url("/system/functions"), &[MANAGE], "")
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

/// A function a file of the served folder defines is not deleted or overwritten through the
/// API by accident: the file would bring it back on its next edit.
#[tokio::test(flavor = "multi_thread")]
async fn file_defined_functions_are_not_deleted_or_replaced_by_accident() {
    let served = tempfile::tempdir().unwrap();
    write_function(served.path(), "filed", &guest("hostile"), "");
    let faas = Faas::start(served.path());
    let work = tempfile::tempdir().unwrap();

    let out = faas.cli().args(["delete", "filed"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("function filed is defined by ")
            && err.contains("filed.yaml: delete or rename that file"),
        "{err}"
    );
    assert!(!err.contains("deleted"), "{err}");
    assert_eq!(get(&faas.url("/function/filed/ok")).await.text(), "ok");

    // The same artifact deployed over it is still a replacement: the file would win again.
    let manifest = write_function(work.path(), "filed", &guest("hostile"), "");
    let out = faas.deploy(&manifest);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("filed.yaml → faas deploy"),
        "{err}"
    );
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

/// What a web page can make a browser on this machine send, refused: a DNS-rebinding page
/// (its own host name resolved to 127.0.0.1: `Host: evil.example`), a cross-site form POST
/// (no X-Faas-Request), a cross-origin request. Nothing runs and nothing is deployed.
#[tokio::test(flavor = "multi_thread")]
async fn a_web_page_cannot_use_the_local_management_api() {
    let served = tempfile::tempdir().unwrap();
    write_function(served.path(), "hostile", &guest("hostile"), "");
    let faas = Faas::start(served.path());
    let runs = faas.url("/system/functions/hostile/runs");
    let port = faas.base.rsplit(':').next().unwrap().to_owned();
    let own_origin = format!("http://127.0.0.1:{port}");

    // DNS rebinding: reads and writes, the API and the dashboard.
    for path in [
        "/system/functions",
        "/system/runs",
        "/ui/",
        "/ui/functions/hostile",
    ] {
        let reply = send("GET", &faas.url(path), &[("host", "evil.example")], "").await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.text());
        assert_eq!(reply.json()["reason"], "ForeignHost", "{path}");
        let reply = send(
            "GET",
            &faas.url(path),
            &[("host", &format!("evil.example:{port}"))],
            "",
        )
        .await;
        assert_eq!(reply.status, 403, "{path}");
    }
    let rebound = send(
        "POST",
        &runs,
        &[
            ("host", "evil.example"),
            MANAGE,
            ("origin", "http://evil.example"),
        ],
        "",
    )
    .await;
    assert_eq!(rebound.status, 403, "{}", rebound.text());

    // A form POST from another site: no request header (and a foreign Origin).
    let form = send(
        "POST",
        &runs,
        &[
            ("origin", "http://evil.example"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "a=b",
    )
    .await;
    assert_eq!(form.status, 403, "{}", form.text());
    assert_eq!(form.json()["reason"], "MissingRequestHeader");
    // No header, even with no Origin at all.
    let bare = send("POST", &runs, &[], "").await;
    assert_eq!(bare.json()["reason"], "MissingRequestHeader");
    // The header but another origin: another site, another local server, the null origin.
    for origin in ["http://evil.example", "http://localhost:1", "null"] {
        let reply = send("POST", &runs, &[MANAGE, ("origin", origin)], "").await;
        assert_eq!(reply.status, 403, "{origin}: {}", reply.text());
        assert_eq!(reply.json()["reason"], "CrossOrigin", "{origin}");
    }
    let manifest = std::fs::read(served.path().join("hostile.yaml")).unwrap();
    let deploy = send(
        "PUT",
        &faas.url("/system/functions/hostile"),
        &[
            ("content-type", "application/yaml"),
            ("origin", "http://evil.example"),
        ],
        manifest,
    )
    .await;
    assert_eq!(deploy.status, 403, "{}", deploy.text());
    let delete = send("DELETE", &faas.url("/system/functions/hostile"), &[], "").await;
    assert_eq!(delete.status, 403, "{}", delete.text());

    // Nothing ran, nothing changed.
    let listed = get(&faas.url("/system/functions/hostile/runs"))
        .await
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    assert_eq!(get(&faas.url("/function/hostile/ok")).await.status, 200);

    // The dashboard's own request (same origin, the header) and the CLI's (no Origin) work.
    let own = send(
        "POST",
        &format!("{runs}?detach=true"),
        &[MANAGE, ("origin", &own_origin)],
        "ok",
    )
    .await;
    assert_eq!(own.status, 202, "{}", own.text());
    let cli = faas
        .cli()
        .args(["run", "hostile", "-d", "ok"])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    // Reads from this machine need nothing special.
    assert_eq!(
        send(
            "GET",
            &faas.url("/ui/"),
            &[("host", &format!("localhost:{port}"))],
            ""
        )
        .await
        .status,
        200
    );
}

/// `--allow-remote-management` needs a token; then every request not proven local (here: a
/// non-loopback Host) must carry it, and the CLI sends it from FAAS_MANAGEMENT_TOKEN.
#[tokio::test(flavor = "multi_thread")]
async fn remote_management_requires_the_token() {
    let served = tempfile::tempdir().unwrap();
    let refused = std::process::Command::new(faas_bin())
        .args([
            "up",
            "--allow-remote-management",
            "--listen",
            "127.0.0.1:0",
            "--no-build",
        ])
        .arg(served.path())
        .env_remove("FAAS_MANAGEMENT_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--management-token"), "{stderr}");

    const TOKEN: &str = "e2e-management-token-0123456789";
    write_function(served.path(), "hostile", &guest("hostile"), "");
    let faas = Faas::launch(
        served.path(),
        Launch {
            args: vec!["--allow-remote-management".into()],
            env: vec![("FAAS_MANAGEMENT_TOKEN".into(), TOKEN.into())],
            ..Launch::default()
        },
    );
    let remote = ("host", "faas.lan:8080");
    let url = faas.url("/system/functions");
    let none = send("GET", &url, &[remote], "").await;
    assert_eq!(none.status, 401, "{}", none.text());
    assert_eq!(none.json()["reason"], "ManagementTokenRequired");
    assert!(none.headers.contains_key("www-authenticate"));
    let wrong = send(
        "GET",
        &url,
        &[
            remote,
            ("authorization", "Bearer e2e-management-token-0123456780"),
        ],
        "",
    )
    .await;
    assert_eq!(wrong.json()["reason"], "BadManagementToken");
    let bearer = format!("Bearer {TOKEN}");
    let right = send("GET", &url, &[remote, ("authorization", &bearer)], "").await;
    assert_eq!(right.status, 200, "{}", right.text());
    let ui = send(
        "GET",
        &faas.url("/ui/"),
        &[remote, ("authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(ui.status, 200);

    // The CLI sends the token from the environment.
    let without = faas
        .cli()
        .args(["run", "hostile", "-d", "ok"])
        .output()
        .unwrap();
    assert!(
        without.status.success(),
        "loopback needs no token: {}",
        String::from_utf8_lossy(&without.stderr)
    );
    let listed = faas
        .cli()
        .args(["list"])
        .env("FAAS_MANAGEMENT_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let wrong = faas
        .cli()
        .args(["list"])
        .env("FAAS_MANAGEMENT_TOKEN", "not-the-token-at-all-0000")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("token"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}
