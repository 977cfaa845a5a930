//! The dashboard: a real browser (Debian's Chromium through playwright-core, `tests/ui/`)
//! opens it on a running `faas up`, runs a function and reads the result; the JSON behind it;
//! escaping of user-controlled text; no dashboard in runtime pods.

use faas_e2e::*;

fn platform_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "hello",
        &guest("hello"),
        "  http: {path: /hello}\n  schedules:\n  - {name: nightly, cron: '0 3 * * *', timeZone: Europe/Paris}\n",
    );
    write_function(dir.path(), "echo-cgi", &guest("echo-cgi"), "");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_sees_the_functions_runs_one_and_reads_its_output() {
    let dir = platform_dir();
    // A job with options, whose log the run page follows while it runs.
    std::fs::write(
        dir.path().join("report.sh"),
        "i=1\nwhile [ $i -le 10 ]; do echo \"line $i\"; i=$((i + 1)); sleep 0.3; done\n\
         echo \"done days=$FAAS_OPTION_DAYS region=$FAAS_OPTION_REGION token=${#FAAS_OPTION_TOKEN}\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("report.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: report}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, report.sh]\n      mode: job\n  \
         options:\n  - {name: days, type: number, required: true, description: days back}\n  \
         - {name: region, type: enum, values: [eu, us], default: eu}\n  \
         - {name: token, secret: true}\n",
    )
    .unwrap();
    // An async call that fails every attempt while `broken` exists: a dead letter to replay.
    std::fs::write(
        dir.path().join("flaky.sh"),
        "#!/bin/sh\nbody=$(cat)\nif [ -f broken ]; then printf 'Status: 500\\n\\nbroken\\n'; exit 0; fi\n\
         echo \"$body\" > served.txt\nprintf 'Content-Type: text/plain\\n\\nok\\n'\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken"), "").unwrap();
    std::fs::write(
        dir.path().join("flaky.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: flaky}\nspec:\n  \
         runtime: {container: {command: [sh, flaky.sh], mode: cgi}}\n",
    )
    .unwrap();
    let faas = Faas::start(dir.path());
    let queued = send(
        "POST",
        &faas.url("/async-function/flaky/orders"),
        &[],
        "<b>order 7</b>",
    )
    .await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    let call_id = queued.json()["callId"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while get(&faas.url("/system/async")).await.json()["deadLetters"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    std::fs::remove_file(dir.path().join("broken")).unwrap();
    let shots = repo_root().join("tests/ui/artifacts");
    // Screenshots of an earlier run must not stand in for this one's.
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let out = browser_script(
        "dashboard.mjs",
        vec![faas.base.clone(), shots.display().to_string(), call_id],
    )
    .await;
    assert!(
        out.status.success(),
        "browser run failed:\n{}\n{}\nplatform:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        faas.stderr.lock().unwrap()
    );
    let served = dir.path().join("served.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&served).is_ok_and(|s| s == "<b>order 7</b>\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "the dead letter replayed from the dashboard was not served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Every page the script walked through was shot, now, as a PNG.
    for name in [
        "1-functions",
        "2-function",
        "2b-suspended",
        "3-run",
        "4-runs",
        "5-job-log",
        "6-dead-letter",
    ] {
        let png = std::fs::read(shots.join(format!("{name}.png")))
            .unwrap_or_else(|e| panic!("{name}.png: {e}"));
        assert!(png.starts_with(b"\x89PNG\r\n"), "{name}.png is not a PNG");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_and_pages_come_from_the_same_data_and_escape_user_text() {
    let dir = platform_dir();
    let faas = Faas::start(dir.path());
    for _ in 0..3 {
        assert_eq!(get(&faas.url("/function/hello/x")).await.status, 200);
    }
    let stats = get(&faas.url("/system/stats")).await.json();
    assert_eq!(stats["hello"]["count"], 3, "{stats}");
    assert_eq!(stats["hello"]["minutes"].as_array().map(Vec::len), Some(60));
    assert_eq!(stats["echo-cgi"]["count"], 0);
    assert_eq!(
        stats["hello"]["loads"]["count"], 1,
        "one cold load at start"
    );
    let one = get(&faas.url("/system/stats?function=hello")).await.json();
    assert_eq!(one.as_object().map(|m| m.len()), Some(1));

    // A run whose output is hostile markup: shown as text, never as markup.
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let run = send(
        "POST",
        &faas.url("/system/functions/echo-cgi/runs"),
        &[MANAGE],
        hostile,
    )
    .await
    .json();
    let id = run["metadata"]["name"].as_str().unwrap().to_owned();
    let page = get(&faas.url(&format!("/ui/runs/{id}"))).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text();
    assert!(
        html.contains(
            "body=&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
        ),
        "{html}"
    );
    assert!(
        !html.contains("<script>alert") && !html.contains("<img src=x"),
        "{html}"
    );

    // The live refresh gets only the changing part.
    let fragment = send("GET", &faas.url("/ui/"), &[("x-faas-fragment", "1")], "")
        .await
        .text();
    assert!(
        fragment.starts_with("<table>") && !fragment.contains("<html"),
        "{fragment}"
    );
    // Filters: phase and function.
    let filtered = get(&faas.url("/ui/runs?function=hello&phase=Failed"))
        .await
        .text();
    assert!(
        !filtered.contains(&id),
        "a run of echo-cgi in hello's history"
    );
    let listed = get(&faas.url("/ui/runs?function=echo-cgi")).await.text();
    assert!(listed.contains(&id));
    // Unknown things are 404 pages, with a way back.
    let missing = get(&faas.url("/ui/functions/nope")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("function nope does not exist"));
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_pods_serve_no_dashboard() {
    let dir = platform_dir();
    let pod = Faas::runtime(
        &["serve", "--functions", dir.path().to_str().unwrap()],
        Launch::default(),
    );
    let page = get(&pod.url("/ui/")).await;
    assert_eq!(page.status, 404, "{}", page.text());
    assert_eq!(get(&pod.url("/function/hello/x")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_suspended_by_an_operator_stays_suspended_across_restarts() {
    let dir = platform_dir();
    let state = tempfile::tempdir().unwrap();
    let nightly = |status: &serde_json::Value| {
        status["schedules"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["schedule"] == "nightly"))
            .cloned()
            .unwrap_or_default()
    };
    let mut faas = Faas::start_in_state(dir.path(), state.path());
    let path = "/system/functions/hello/schedules/nightly/suspend";
    let refused = send("POST", &faas.url(path), &[], "").await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let missing = send(
        "POST",
        &faas.url("/system/functions/hello/schedules/weekly/suspend"),
        &[MANAGE],
        "",
    )
    .await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("no schedule named"),
        "{}",
        missing.text()
    );
    let suspended = send("POST", &faas.url(path), &[MANAGE], "").await;
    assert_eq!(suspended.status, 200, "{}", suspended.text());
    assert_eq!(suspended.json()["suspendedBy"], "operator");
    assert!(suspended.json()["nextFire"].is_null());

    faas.sigterm();
    assert_eq!(faas.wait_exit(std::time::Duration::from_secs(30)), Some(0));
    drop(faas);
    let faas = Faas::start_in_state(dir.path(), state.path());
    let status = get(&faas.url("/system/scheduler")).await.json();
    let schedule = nightly(&status);
    assert_eq!(schedule["suspend"], true, "{status}");
    assert_eq!(schedule["suspendedBy"], "operator", "{status}");
    let page = get(&faas.url("/ui/functions/hello")).await.text();
    assert!(page.contains("suspended by an operator"), "{page}");

    let resumed = send(
        "POST",
        &faas.url("/system/functions/hello/schedules/nightly/resume"),
        &[MANAGE],
        "",
    )
    .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    let schedule = nightly(&get(&faas.url("/system/scheduler")).await.json());
    assert_eq!(schedule["suspend"], false);
    assert!(schedule["nextFire"].is_string(), "{schedule}");
}
