//! `faas up examples` serves both examples, with their routes, and exposes metrics.

use faas_e2e::*;

fn examples_dir() -> tempfile::TempDir {
    // Serve copies of the example manifests pointing at the artifacts the harness found, so
    // the test works with freshly built guests and with the committed fixtures alike.
    let dir = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "hello",
        &guest("hello"),
        "  timeout: 10s\n  http:\n    path: /hello\n    hosts: [hello.fn.local]\n",
    );
    write_function(
        dir.path(),
        "echo-cgi",
        &guest("echo-cgi"),
        "  env:\n    GREETING: hi\n",
    );
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_answer_on_every_route() {
    let dir = examples_dir();
    let faas = Faas::start(dir.path());

    let hello = get(&faas.url("/function/hello/abc?x=1")).await;
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(hello.text(), "Hello from faas: GET /abc?x=1\n");
    assert!(hello.headers.contains_key("x-call-id"));

    let by_prefix = get(&faas.url("/hello/sub")).await;
    assert_eq!(by_prefix.text(), "Hello from faas: GET /sub\n");
    let by_host = send(
        "GET",
        &faas.url("/anything"),
        &[("host", "hello.fn.local")],
        "",
    )
    .await;
    assert_eq!(by_host.text(), "Hello from faas: GET /anything\n");

    let echo = send(
        "POST",
        &faas.url("/function/echo-cgi/p/q?z=2"),
        &[("x-test", "yes"), ("content-type", "text/plain")],
        "hi there",
    )
    .await;
    assert_eq!(echo.status, 200, "{}", echo.text());
    assert_eq!(echo.headers["x-echo-method"], "POST");
    let text = echo.text();
    for expected in [
        "method=POST",
        "path_info=/p/q",
        "query=z=2",
        "content_type=text/plain",
        "content_length=8",
        "x_test=yes",
        "body=hi there",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }

    let missing = get(&faas.url("/function/nope")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["reason"], "FunctionNotFound");
    assert!(missing.headers.contains_key("x-call-id"));

    assert_eq!(get(&faas.url("/healthz")).await.status, 200);
    assert_eq!(get(&faas.url("/readyz")).await.status, 200);
    let metrics = get(&faas.url("/metrics")).await.text();
    assert!(
        metrics.contains(r#"faas_invocations_total{code="200",function="hello"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("faas_instantiate_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"faas_artifact_loads_total{outcome="compiled"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("faas_invocation_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_describes_and_invokes() {
    let dir = examples_dir();
    let faas = Faas::start(dir.path());
    let list = faas.cli().args(["list"]).output().unwrap();
    assert!(list.status.success());
    let table = String::from_utf8_lossy(&list.stdout);
    assert!(
        table.contains("hello")
            && table.contains("echo-cgi")
            && table.contains("component")
            && table.contains("cgi-module"),
        "{table}"
    );

    let json = faas.cli().args(["list", "-o", "json"]).output().unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 2);

    let describe = faas.cli().args(["describe", "hello"]).output().unwrap();
    let yaml = String::from_utf8_lossy(&describe.stdout);
    assert!(
        yaml.contains("ready: true") && yaml.contains("/hello"),
        "{yaml}"
    );

    let invoke = faas
        .cli()
        .args([
            "invoke",
            "echo-cgi",
            "-d",
            "payload",
            "-H",
            "X-Test: cli",
            "--path",
            "/x",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&invoke.stdout);
    assert!(
        invoke.status.success(),
        "{}",
        String::from_utf8_lossy(&invoke.stderr)
    );
    assert!(
        out.contains("body=payload") && out.contains("x_test=cli") && out.contains("path_info=/x"),
        "{out}"
    );

    let missing = faas.cli().args(["invoke", "nope"]).output().unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("404") && err.contains("function nope not found"),
        "{err}"
    );

    let unreachable = faas
        .cli()
        .args(["list", "--gateway", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the gateway"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nightly_report_example_runs_by_hand_and_lists_its_schedule() {
    // The example folder as it is in the repository (a script: nothing to build).
    let dir = tempfile::tempdir().unwrap();
    let example = repo_root().join("examples/nightly-report");
    for file in ["function.yaml", "report.sh", "archive.yaml", "archive.sh"] {
        std::fs::copy(example.join(file), dir.path().join(file)).unwrap();
    }
    let faas = Faas::start(dir.path());

    let out = faas
        .cli()
        .args([
            "run",
            "nightly-report",
            "--schedule",
            "nightly",
            "--option",
            "dry_run=true",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim(),
        r#"{"scope": "yesterday", "rows": 60}"#,
        "{stderr}"
    );
    assert!(
        after_target(&stderr).starts_with("run nightly-report.nightly.run."),
        "{stderr}"
    );
    assert!(stderr.contains(": Succeeded (exit 0)"), "{stderr}");
    let id = after_target(&stderr)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    // Its `then` started report-archive with what its output says.
    let run = get(&faas.url(&format!("/system/runs/{id}"))).await.json();
    let archive = run["status"]["nextRuns"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no chained run: {run}"))
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let archived = loop {
        let record = get(&faas.url(&format!("/system/runs/{archive}")))
            .await
            .json();
        if record["status"]["phase"] == "Succeeded" {
            break record;
        }
        assert!(std::time::Instant::now() < deadline, "{record}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(archived["spec"]["parentRun"], id.as_str());
    assert_eq!(archived["status"]["output"], "{\"archived\": 60}\n");

    let out = faas.cli().args(["runs", "logs", &id]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    for line in [
        "scope: yesterday, recipients: team@example.com",
        "day 3: 60 rows so far",
        "dry run: report not sent",
    ] {
        assert!(log.contains(line), "{line:?} missing from:\n{log}");
    }

    let out = faas
        .cli()
        .args(["schedules", "nightly-report", "-c", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("nightly (0 3 * * *, Europe/Paris):") && text.contains(" 03:00:00 CE"),
        "{text}"
    );
}
