//! Live reload, admission control and graceful shutdown.

use std::time::{Duration, Instant};

use faas_e2e::*;

#[tokio::test(flavor = "multi_thread")]
async fn changes_in_the_folder_are_applied_live() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let artifact = d.join("live.wasm");
    std::fs::copy(guest("hostile"), &artifact).unwrap();
    let manifest = write_function(d, "live", &artifact, "");
    let faas = Faas::start(d);
    assert_eq!(get(&faas.url("/function/live/ok")).await.text(), "ok");

    // A new artifact at the same path is picked up.
    std::fs::copy(guest("hello"), d.join("next.wasm")).unwrap();
    std::fs::rename(d.join("next.wasm"), &artifact).unwrap();
    faas.eventually("the new artifact serving", || {
        let url = faas.url("/function/live/ok");
        async move { get(&url).await.text().starts_with("Hello from faas") }
    })
    .await;

    // A broken change keeps the old version serving and says why.
    std::fs::write(&manifest, "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: live}\nspec:\n  runtime: {wasm: {source: live.wasm}}\n  memory: lots\n").unwrap();
    faas.eventually("the rejected change reported", || {
        let url = faas.url("/system/functions/live");
        async move {
            get(&url).await.json()["summary"]["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("spec.memory"))
        }
    })
    .await;
    assert!(
        get(&faas.url("/function/live/ok"))
            .await
            .text()
            .starts_with("Hello from faas")
    );

    // A new file adds a function; removing it removes the function.
    let extra = write_function(d, "extra", &guest("hostile"), "");
    faas.eventually("the new function", || {
        let url = faas.url("/function/extra/ok");
        async move { get(&url).await.status == 200 }
    })
    .await;
    std::fs::remove_file(extra).unwrap();
    faas.eventually("the removed function gone", || {
        let url = faas.url("/function/extra/ok");
        async move { get(&url).await.status == 404 }
    })
    .await;
}

/// With a poll of an hour, only the OS's change notifications can explain a change applied
/// within the test's 30 s: each step fails if they are not followed.
#[tokio::test(flavor = "multi_thread")]
async fn changes_are_applied_at_once_not_at_the_next_poll() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The artifact lives outside the folder, as a build's output does.
    let out = tempfile::tempdir().unwrap();
    let artifact = out.path().join("app.wasm");
    std::fs::copy(guest("hostile"), &artifact).unwrap();
    write_function(d, "first", &guest("hello"), "");
    let faas = Faas::launch(
        d,
        Launch {
            args: vec!["--watch-interval".into(), "3600".into()],
            ..Launch::default()
        },
    );
    assert_eq!(get(&faas.url("/function/first")).await.status, 200);

    // A manifest in a directory made after the start (a watch the directory gets only once
    // a scan has walked it).
    let sub = d.join("team/app");
    std::fs::create_dir_all(&sub).unwrap();
    let manifest = write_function(&sub, "app", &artifact, "");
    faas.eventually("the function of a new directory serving", || {
        let url = faas.url("/function/app/ok");
        async move { get(&url).await.text() == "ok" }
    })
    .await;

    // The artifact replaced where the build puts it.
    std::fs::copy(guest("hello"), out.path().join("next.wasm")).unwrap();
    std::fs::rename(out.path().join("next.wasm"), &artifact).unwrap();
    faas.eventually("the new artifact serving", || {
        let url = faas.url("/function/app/ok");
        async move { get(&url).await.text().starts_with("Hello from faas") }
    })
    .await;

    // The manifest edited in place: a broken change is reported.
    std::fs::write(&manifest, "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: app}\nspec:\n  runtime: {wasm: {source: app.wasm}}\n  memory: lots\n").unwrap();
    faas.eventually("the rejected change reported", || {
        let url = faas.url("/system/functions/app");
        async move {
            get(&url).await.json()["summary"]["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("spec.memory"))
        }
    })
    .await;

    // The manifest removed: the function goes.
    std::fs::remove_file(&manifest).unwrap();
    faas.eventually("the removed function gone", || {
        let url = faas.url("/function/app/ok");
        async move { get(&url).await.status == 404 }
    })
    .await;
    assert_eq!(get(&faas.url("/function/first")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_gets_429_not_an_unbounded_queue() {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "narrow",
        &guest("hostile"),
        "  concurrency: 1\n  timeout: 10s\n",
    );
    let faas = Faas::start(dir.path());
    let slow = |ms: &'static str| {
        let url = faas.url("/function/narrow/sleep");
        tokio::spawn(async move { send("GET", &url, &[("x-sleep-ms", ms)], "").await })
    };
    // Ordered on the platform's own count of running and waiting calls, not on sleeps; the
    // first call lasts long enough for the two polls that see the second one queued.
    let running = slow("3000");
    faas.until_calls("narrow", 1, 0).await;
    let queued = slow("10");
    faas.until_calls("narrow", 1, 1).await;
    // One running, one queued (queue depth = concurrency): the third is refused at once.
    let refused = get(&faas.url("/function/narrow/ok")).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(running.await.unwrap().status, 200);
    assert_eq!(queued.await.unwrap().status, 200);
    assert_eq!(get(&faas.url("/function/narrow/ok")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_function(dir.path(), "slow", &guest("hostile"), "  timeout: 20s\n");
    let mut faas = Faas::start(dir.path());
    let url = faas.url("/function/slow/sleep");
    let in_flight =
        tokio::spawn(async move { send("GET", &url, &[("x-sleep-ms", "5000")], "").await });
    faas.until_calls("slow", 1, 0).await;
    // Connections that never sent a byte (the server makes nothing for them until they do)
    // and one between two requests: the drain closes them all at once, while the slow call
    // goes on.
    let addr = faas.base.trim_start_matches("http://").to_owned();
    let silent: Vec<std::net::TcpStream> = (0..50)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    {
        use std::io::{Read, Write};
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 12];
        idle.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    faas.sigterm();
    let closed = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        silent.into_iter().chain([idle]).all(|mut stream| {
            stream
                .set_read_timeout(Some(Duration::from_secs(4)))
                .unwrap();
            let mut rest = Vec::new();
            // End of stream (whatever the idle one had left unread), not a timeout.
            stream.read_to_end(&mut rest).is_ok()
        })
    })
    .await
    .unwrap();
    assert!(
        closed,
        "every connection without a request in flight is closed by the drain"
    );

    let mut refused = false;
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&addr).is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "new connections must be refused after SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "the slow request is still running while new ones are refused"
    );
    let reply = in_flight.await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "slept"));
    assert_eq!(faas.wait_exit(Duration::from_secs(10)), Some(0));
}

/// Behind a load balancer (`faas-gateway --drain-delay`): on SIGTERM `/readyz` fails at once
/// but requests, new connections included, are still served for the drain delay (the ALB's
/// deregistration delay); then the listener closes and the requests in flight finish.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_behind_a_load_balancer_keeps_serving_through_the_drain_delay() {
    let dir = tempfile::tempdir().unwrap();
    write_function(dir.path(), "slow", &guest("hostile"), "  timeout: 20s\n");
    let mut faas = Faas::gateway(
        dir.path(),
        Launch {
            args: vec!["--drain-delay".into(), "3s".into()],
            ..Launch::default()
        },
    );
    assert_eq!(get(&faas.url("/readyz")).await.status, 200);
    let url = faas.url("/function/slow/sleep");
    let in_flight =
        tokio::spawn(async move { send("GET", &url, &[("x-sleep-ms", "4000")], "").await });
    faas.until_calls("slow", 1, 0).await;
    let signalled = Instant::now();
    faas.sigterm();
    faas.eventually("/readyz failing", || {
        let url = faas.url("/readyz");
        async move { get(&url).await.status == 503 }
    })
    .await;
    let ready = get(&faas.url("/readyz")).await;
    assert!(ready.text().contains("draining"), "{}", ready.text());
    // The load balancer has not noticed yet: what it still sends is served.
    let late = get(&faas.url("/function/slow/ok")).await;
    assert_eq!((late.status, late.text().as_str()), (200, "ok"));

    let addr = faas.base.trim_start_matches("http://").to_owned();
    let mut refused_after = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&addr).is_err() {
            refused_after = Some(signalled.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_after = refused_after.expect("the listener closes after the drain delay");
    assert!(
        refused_after >= Duration::from_millis(2900),
        "closed after {refused_after:?}, before the drain delay"
    );
    let reply = in_flight.await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "slept"));
    assert_eq!(faas.wait_exit(Duration::from_secs(10)), Some(0));
}

/// `faas-gateway --cluster` where there is no cluster: one line that says what is missing,
/// a non-zero exit, no listener left behind.
#[test]
fn the_cluster_gateway_without_a_cluster_says_what_is_missing() {
    let empty = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(gateway_bin())
        .args([
            "--cluster",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", empty.path().join("no-such-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("reads Functions from the Kubernetes API"),
        "{stderr}"
    );
}

/// ARCHITECTURE.md: an update never interrupts an in-flight request. A call is in flight on
/// the old version while the artifact is replaced (the new one answers other calls), then
/// while the function is deleted: both times it finishes with the old version's answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_redeploy_or_a_delete_never_interrupts_a_call_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let artifact = d.join("live.wasm");
    std::fs::copy(guest("hostile"), &artifact).unwrap();
    let manifest = write_function(d, "live", &artifact, "  timeout: 30s\n");
    let faas = Faas::start(d);
    let slow = |faas: &Faas| {
        let url = faas.url("/function/live/sleep");
        tokio::spawn(async move { send("GET", &url, &[("x-sleep-ms", "6000")], "").await })
    };

    // Long enough to outlast a reload on a loaded machine; ordered on the running count.
    let in_flight = slow(&faas);
    faas.until_calls("live", 1, 0).await;
    std::fs::copy(guest("hello"), d.join("next.wasm")).unwrap();
    std::fs::rename(d.join("next.wasm"), &artifact).unwrap();
    faas.eventually("the new version serving", || {
        let url = faas.url("/function/live/ok");
        async move { get(&url).await.text().starts_with("Hello from faas") }
    })
    .await;
    assert!(
        !in_flight.is_finished(),
        "the new version served before the old call ended"
    );
    let answer = in_flight.await.unwrap();
    assert_eq!((answer.status, answer.text().as_str()), (200, "slept"));

    // Back to the slow version, then deleted under a call.
    std::fs::copy(guest("hostile"), d.join("next.wasm")).unwrap();
    std::fs::rename(d.join("next.wasm"), &artifact).unwrap();
    faas.eventually("the old version back", || {
        let url = faas.url("/function/live/ok");
        async move { get(&url).await.text() == "ok" }
    })
    .await;
    let in_flight = slow(&faas);
    faas.until_calls("live", 1, 0).await;
    std::fs::remove_file(&manifest).unwrap();
    faas.eventually("the function gone", || {
        let url = faas.url("/function/live/ok");
        async move { get(&url).await.status == 404 }
    })
    .await;
    assert!(
        !in_flight.is_finished(),
        "deleted only after the call ended"
    );
    let answer = in_flight.await.unwrap();
    assert_eq!((answer.status, answer.text().as_str()), (200, "slept"));
}
