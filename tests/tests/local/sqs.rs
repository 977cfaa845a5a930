//! SQS triggers end to end: `faas up` polls a real SQS-protocol server (moto, on loopback)
//! and feeds the `sqs-consumer` example (a real wasm component) with Lambda SQS events.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use faas_e2e::moto::moto;
use faas_e2e::*;
use serde_json::Value;

fn consumer(dir: &Path, queue_url: &str, trigger_extra: &str) {
    write_function(
        dir,
        "sqs-consumer",
        &guest("sqs-consumer"),
        &format!(
            "  timeout: 60s\n  triggers:\n    sqs:\n    - queueUrl: {queue_url}\n      reportBatchItemFailures: true\n{trigger_extra}"
        ),
    );
}

fn start(dir: &Path, args: &[&str]) -> Faas {
    Faas::launch(
        dir,
        Launch {
            env: moto().env(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..Launch::default()
        },
    )
}

/// The `sqs-consumer` job lines logged so far: message id -> (body, outcome) per delivery.
fn jobs(faas: &Faas) -> Vec<(String, String, String)> {
    faas.stderr
        .lock()
        .unwrap()
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find("job id=")? + "job id=".len()..];
            let id = rest.split(' ').next()?.to_owned();
            let body = rest.split("body=\"").nth(1)?.split('"').next()?.to_owned();
            let outcome = rest
                .split("outcome=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_owned();
            Some((id, body, outcome))
        })
        .collect()
}

async fn triggers(faas: &Faas, function: &str) -> Vec<Value> {
    let reply = get(&faas.url(&format!("/system/functions/{function}"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["sqsTriggers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_processes_every_job_once_and_poison_reaches_the_dlq() {
    let moto = moto();
    let tag = std::process::id();
    let dlq_name = format!("e2e-jobs-dlq-{tag}");
    let dlq = moto.create_queue(&dlq_name, &[]).await;
    let redrive = format!(
        "{{\"deadLetterTargetArn\":\"{}\",\"maxReceiveCount\":\"2\"}}",
        moto.arn_of(&dlq_name)
    );
    let url = moto
        .create_queue(
            &format!("e2e-jobs-{tag}"),
            &[
                (QueueAttributeName::VisibilityTimeout, "1"),
                (QueueAttributeName::RedrivePolicy, &redrive),
            ],
        )
        .await;
    let mut sent = HashMap::new();
    for i in 0..20 {
        let body = format!("resize {i}.png");
        sent.insert(moto.send(&url, &body).await, body);
    }
    let poison = moto.send(&url, "fail corrupt header").await;

    let dir = tempfile::tempdir().unwrap();
    consumer(dir.path(), &url, "      batchSize: 5\n");
    let faas = start(dir.path(), &[]);
    faas.eventually("20 jobs done", || async {
        jobs(&faas).iter().filter(|j| j.2 == "done").count() >= 20
    })
    .await;
    // The poison message: failed twice (maxReceiveCount 2), then moved to the DLQ by the
    // queue's redrive policy, not by us.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut in_dlq = Vec::new();
    while in_dlq.is_empty() {
        assert!(Instant::now() < deadline, "poison never reached the DLQ");
        in_dlq = moto.receive_bodies(&dlq, Duration::from_secs(1)).await;
    }
    assert_eq!(in_dlq, ["fail corrupt header"]);

    let jobs = jobs(&faas);
    let done: Vec<_> = jobs.iter().filter(|j| j.2 == "done").collect();
    assert_eq!(done.len(), 20, "a job ran twice: {done:?}");
    for (id, body, _) in &done {
        assert_eq!(sent.get(id), Some(body), "unexpected job {id}");
    }
    let poisoned: Vec<_> = jobs.iter().filter(|j| j.0 == poison).collect();
    assert_eq!(poisoned.len(), 2, "{poisoned:?}");
    assert!(poisoned.iter().all(|j| j.2.starts_with("failed(")));
    assert_eq!(moto.counts(&url).await, (0, 0));

    // What the function's status and metrics say.
    let t = &triggers(&faas, "sqs-consumer").await[0];
    assert_eq!(t["state"], "Polling", "{t}");
    assert_eq!(t["queueUrl"], url.as_str());
    assert_eq!(t["deleted"], 20, "{t}");
    assert_eq!(t["failed"], 2, "{t}");
    assert!(
        t["lastFailure"]
            .as_str()
            .unwrap()
            .contains("the function reported 1 of"),
        "{t}"
    );
    let metrics = get(&faas.url("/metrics")).await.text();
    let queue = format!("e2e-jobs-{tag}");
    assert!(
        metrics.contains(&format!(
            "faas_sqs_messages_total{{function=\"sqs-consumer\",outcome=\"deleted\",queue=\"{queue}\"}} 20"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("faas_sqs_batch_size_bucket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_batch_in_flight_makes_it_receivable_again_at_once() {
    let moto = moto();
    let name = format!("e2e-spot-{}", std::process::id());
    // Ten minutes of visibility: only the release can bring the message back quickly.
    let url = moto
        .create_queue(&name, &[(QueueAttributeName::VisibilityTimeout, "600")])
        .await;
    moto.send(&url, "sleep 30000").await;
    let dir = tempfile::tempdir().unwrap();
    consumer(dir.path(), &url, "");
    let mut faas = start(dir.path(), &["--shutdown-grace", "1s"]);
    faas.eventually("the batch in flight", || async {
        triggers(&faas, "sqs-consumer")
            .await
            .first()
            .is_some_and(|t| t["batchesInFlight"] == 1)
    })
    .await;
    let signalled = Instant::now();
    faas.sigterm();
    let code = faas.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(0), "stderr:\n{}", faas.stderr.lock().unwrap());
    let mut back = Vec::new();
    while back.is_empty() && signalled.elapsed() < Duration::from_secs(10) {
        back = moto.receive_bodies(&url, Duration::from_secs(1)).await;
    }
    assert_eq!(
        back,
        ["sleep 30000"],
        "not receivable again within 10 s of SIGTERM; stderr:\n{}",
        faas.stderr.lock().unwrap()
    );
    assert!(
        faas.stderr
            .lock()
            .unwrap()
            .contains("released unfinished messages")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_is_reported_on_the_function_and_nothing_else_is_disturbed() {
    let moto = moto();
    let missing = moto.url_of(&format!("e2e-missing-{}", std::process::id()));
    let dir = tempfile::tempdir().unwrap();
    consumer(dir.path(), &missing, "");
    write_function(dir.path(), "hello", &guest("hello"), "");
    let faas = start(dir.path(), &[]);
    faas.eventually("the source error on the function", || async {
        triggers(&faas, "sqs-consumer")
            .await
            .first()
            .is_some_and(|t| t["state"] == "Error")
    })
    .await;
    let t = &triggers(&faas, "sqs-consumer").await[0];
    let message = t["message"].as_str().unwrap();
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains(&missing), "{message}");
    let all = get(&faas.url("/system/triggers")).await.json();
    assert_eq!(all[0]["function"], "sqs-consumer", "{all}");
    assert_eq!(all[0]["state"], "Error", "{all}");
    // `faas describe` shows it.
    let out = faas
        .cli()
        .args(["describe", "sqs-consumer"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("state: Error") && text.contains("does not exist"),
        "{text}"
    );
    // The rest of the platform is unaffected: the consumer's own HTTP route and hello work.
    let reply = send("GET", &faas.url("/function/hello"), &[], "").await;
    assert_eq!(reply.status, 200);
    let reply = send(
        "POST",
        &faas.url("/function/sqs-consumer"),
        &[],
        r#"{"Records":[]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// The SQS endpoint is slow, then answers 503, then throttles, then is down, then comes back:
/// slow, every message is still processed; failing, the poller says so on the
/// function (state `Error` with the cause), backs off, and once the endpoint is back every
/// message is processed and deleted; nothing is lost. A message received before a fault
/// whose delete failed comes back after its visibility timeout and runs again: that is SQS's
/// at-least-once, counted here, not hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_ride_out_an_endpoint_that_fails_then_comes_back() {
    use faas_e2e::fault_proxy::{Fault, FaultProxy};

    let moto = moto();
    let tag = std::process::id();
    let url = moto
        .create_queue(
            &format!("e2e-faults-{tag}"),
            &[(QueueAttributeName::VisibilityTimeout, "2")],
        )
        .await;
    let proxy = FaultProxy::start(&moto.endpoint).await;
    let mut sent = HashMap::new();
    for i in 0..10 {
        let body = format!("before {i}");
        sent.insert(body.clone(), moto.send(&url, &body).await);
    }

    let dir = tempfile::tempdir().unwrap();
    consumer(dir.path(), &url, "      batchSize: 5\n");
    // The platform reaches SQS through the proxy; the test writes to moto directly.
    let env = moto.env_with_sqs_at(&proxy.endpoint);
    let faas = Faas::launch(
        dir.path(),
        Launch {
            env,
            ..Launch::default()
        },
    );
    let done_bodies = |faas: &Faas| -> Vec<String> {
        jobs(faas)
            .into_iter()
            .filter(|j| j.2 == "done")
            .map(|j| j.1)
            .collect()
    };
    faas.eventually("the first 10 jobs done", || async {
        done_bodies(&faas).len() >= 10
    })
    .await;

    // Slow: every request waits 3 s at the proxy before it reaches SQS, longer than the
    // queue's visibility timeout (2 s). The messages are processed all the same; one whose
    // delete arrives after its visibility timeout may run again (counted at the end).
    proxy.set(Fault::Slow(Duration::from_secs(3)));
    for i in 0..5 {
        let body = format!("slow {i}");
        sent.insert(body.clone(), moto.send(&url, &body).await);
    }
    faas.eventually("the jobs sent while the endpoint is slow done", || async {
        let done = done_bodies(&faas);
        (0..5).all(|i| done.contains(&format!("slow {i}")))
    })
    .await;
    let t = &triggers(&faas, "sqs-consumer").await[0];
    assert_eq!(t["state"], "Polling", "slow is not an error: {t}");

    // 503s: the trigger says what the source answers, and backs off.
    proxy.set(Fault::ServiceUnavailable);
    for i in 0..10 {
        let body = format!("during {i}");
        sent.insert(body.clone(), moto.send(&url, &body).await);
    }
    let reports_error = |one: &'static str, other: &'static str| {
        let faas = &faas;
        move || async move {
            let t = &triggers(faas, "sqs-consumer").await[0];
            t["state"] == "Error"
                && t["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(one) || m.contains(other))
        }
    };
    faas.eventually(
        "the trigger reports the 503s",
        reports_error("503", "ServiceUnavailable"),
    )
    .await;
    // Throttled: the same, naming the throttling.
    proxy.set(Fault::Throttle);
    faas.eventually(
        "the trigger reports the throttling",
        reports_error("Throttling", "Rate exceeded"),
    )
    .await;
    // Then the endpoint is down altogether.
    proxy.set(Fault::Refuse);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let t = &triggers(&faas, "sqs-consumer").await[0];
    assert_eq!(t["state"], "Error", "{t}");

    // Back: within the poller's bounded back-off (30 s here), everything sent is done once
    // at least, and the queue is empty.
    proxy.set(Fault::Pass);
    let back = Instant::now();
    faas.eventually(
        "every message done after the endpoint came back",
        || async {
            let done = done_bodies(&faas);
            sent.keys().all(|body| done.contains(body))
        },
    )
    .await;
    let recovered_in = back.elapsed();
    faas.eventually("the queue is empty", || async {
        moto.counts(&url).await == (0, 0)
    })
    .await;
    let t = &triggers(&faas, "sqs-consumer").await[0];
    assert_eq!(t["state"], "Polling", "{t}");
    let done = done_bodies(&faas);
    let again = done.len() - sent.len();
    eprintln!(
        "all {} messages done {recovered_in:?} after the endpoint came back; {again} ran twice",
        sent.len()
    );
    assert!(
        done.iter().all(|body| sent.contains_key(body)),
        "an unexpected job: {done:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faas_dlq_redrive_moves_a_triggers_dead_letters_back_to_its_queue() {
    let moto = moto();
    let tag = std::process::id();
    let dlq_name = format!("e2e-redrive-dlq-{tag}");
    let dlq = moto.create_queue(&dlq_name, &[]).await;
    let policy = format!(
        "{{\"deadLetterTargetArn\":\"{}\",\"maxReceiveCount\":\"2\"}}",
        moto.arn_of(&dlq_name)
    );
    let url = moto
        .create_queue(
            &format!("e2e-redrive-{tag}"),
            &[(QueueAttributeName::RedrivePolicy, &policy)],
        )
        .await;
    // Jobs that failed their way to the dead-letter queue while the function was broken; it
    // is fixed now.
    for i in 0..3 {
        moto.send(&dlq, &format!("resize {i}.png")).await;
    }
    let dir = tempfile::tempdir().unwrap();
    consumer(dir.path(), &url, "");
    write_function(dir.path(), "hello", &guest("hello"), "");
    let faas = start(dir.path(), &[]);
    faas.eventually("the trigger polling", || async {
        triggers(&faas, "sqs-consumer")
            .await
            .first()
            .is_some_and(|t| t["state"] == "Polling")
    })
    .await;
    assert!(jobs(&faas).is_empty(), "nothing to do before the redrive");

    let mut cmd = faas.cli();
    cmd.args(["dlq", "redrive", "sqs-consumer"])
        .env("NO_COLOR", "1");
    let (code, _, err) = super::runs::output(cmd);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "moved 3 messages from {dlq} back to {url} (copied and deleted: StartMessageMoveTask"
        )),
        "{err}"
    );
    faas.eventually("the 3 jobs done", || async {
        jobs(&faas).iter().filter(|j| j.2 == "done").count() >= 3
    })
    .await;
    let mut bodies: Vec<String> = jobs(&faas).into_iter().map(|j| j.1).collect();
    bodies.sort();
    assert_eq!(bodies, ["resize 0.png", "resize 1.png", "resize 2.png"]);
    assert_eq!(moto.counts(&dlq).await, (0, 0));

    // What cannot be redriven says why, and changes nothing.
    let mut cmd = faas.cli();
    cmd.args(["dlq", "redrive", "hello"]);
    let (code, _, err) = super::runs::output(cmd);
    assert_ne!(code, Some(0));
    assert!(err.contains("function hello has no SQS trigger"), "{err}");
    let mut cmd = faas.cli();
    cmd.args(["dlq", "redrive", "sqs-consumer", "--queue", &dlq]);
    let (code, _, err) = super::runs::output(cmd);
    assert_ne!(code, Some(0));
    assert!(
        err.contains(&format!(
            "function sqs-consumer has no SQS trigger on {dlq}"
        )),
        "{err}"
    );
}
