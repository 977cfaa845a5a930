//! Crash consistency: `faas up` SIGKILLed at seeded random moments while it runs a cron
//! schedule every second, an SQS trigger draining a queue on moto and a stream of async
//! calls, restarted each time on the same state directory; then one last start drains
//! everything and the invariants ARCHITECTURE.md states are checked:
//!
//! - cron: at most one run record per fire time, every record terminal at the end, every
//!   execution that finished has its fire time's record, and every fire time of a window in
//!   which the platform was up for sure has a record;
//! - SQS: no message is deleted without a successful answer for it: once the queue is empty,
//!   every message sent was handled at least once;
//! - async calls: every call answered 202 was run or is a dead letter;
//! - the SQLite stores open after every kill (each restart) and pass `integrity_check`.
//!
//! Duplicates (at-least-once) are counted and printed, not forbidden. The seed is printed;
//! `FAAS_CRASH_SEED=N` repeats a run, `FAAS_CRASH_KILLS=N` sets how many kills (default 12).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use bytes::Bytes;
use faas_api::seeded::Seeded;
use faas_e2e::moto::moto;
use faas_e2e::*;
use http_body_util::{BodyExt, Full};

/// Three functions, each a CGI script appending what it did to a file in `dir`.
fn functions(dir: &Path, queue_url: &str) {
    let write = |name: &str, file: &str| std::fs::write(dir.join(name), file).unwrap();
    // Cron: a start and an end line around a short sleep (a kill can land in between).
    write(
        "tick.sh",
        "#!/bin/sh\nt=\"$HTTP_X_FAAS_SCHEDULED_TIME\"\necho \"start $t\" >> ticks.log\nsleep 0.2\n\
         echo \"end $t\" >> ticks.log\nprintf 'Content-Type: text/plain\\n\\nok\\n'\n",
    );
    write(
        "tick.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: tick}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, tick.sh]\n      mode: cgi\n  timeout: 10s\n  \
         schedules:\n  - name: every-second\n    cron: \"* * * * * *\"\n    \
         history: {succeeded: 1000, failed: 1000}\n",
    );
    // Async calls: the body is the call's tag.
    write(
        "work.sh",
        "#!/bin/sh\nbody=$(cat)\nsleep 0.05\necho \"$body\" >> work.log\n\
         printf 'Content-Type: text/plain\\n\\ndone\\n'\n",
    );
    write(
        "work.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: work}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, work.sh]\n      mode: cgi\n  timeout: 10s\n",
    );
    // SQS: each record's body, written before the answer that lets the batch be deleted.
    write(
        "drain.py",
        "import json, sys\nevent = json.load(sys.stdin)\nwith open('sqs.log', 'a') as log:\n    \
         for record in event['Records']:\n        log.write(record['body'] + '\\n')\n    \
         log.flush()\nprint('Content-Type: application/json')\nprint()\nprint('{}')\n",
    );
    write(
        "drain.yaml",
        &format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: drain}}\nspec:\n  \
             runtime:\n    container:\n      command: [python3, drain.py]\n      mode: cgi\n  \
             timeout: 10s\n  triggers:\n    sqs:\n    - queueUrl: {queue_url}\n      batchSize: 10\n"
        ),
    );
}

/// `POST /async-function/work` with `tag`; whether it was answered 202. A platform killed
/// meanwhile gives no answer: such a call counts as not accepted.
async fn call_async(base: &str, tag: &str) -> bool {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::post(format!("{base}/async-function/work"))
        .body(Full::new(Bytes::from(tag.to_owned())))
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let response = client.request(request).await.ok()?;
        let status = response.status();
        // Accepted means the whole answer arrived.
        response.into_body().collect().await.ok()?;
        Some(status.as_u16())
    })
    .await;
    matches!(answer, Ok(Some(202)))
}

/// Seconds in which the platform was certainly up and leading: from one second after it
/// answered until one second before it was killed.
fn whole_seconds(from: jiff::Timestamp, to: jiff::Timestamp) -> Vec<jiff::Timestamp> {
    let mut seconds = Vec::new();
    let mut t = jiff::Timestamp::from_second(from.as_second() + 2).unwrap();
    while t.as_second() < to.as_second() - 1 {
        seconds.push(t);
        t = jiff::Timestamp::from_second(t.as_second() + 1).unwrap();
    }
    seconds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_doubles_nothing_it_promised() {
    let seed = Seeded::seed_from_env("FAAS_CRASH_SEED", 20261207);
    let kills = Seeded::seed_from_env("FAAS_CRASH_KILLS", 12) as usize;
    eprintln!("crash test: seed {seed}, {kills} kills (FAAS_CRASH_SEED / FAAS_CRASH_KILLS)");
    let mut random = Seeded::new(seed);

    let moto = moto();
    let queue = moto
        .create_queue(
            &format!("e2e-crash-{}", std::process::id()),
            &[(QueueAttributeName::VisibilityTimeout, "2")],
        )
        .await;
    let mut sent_messages = BTreeSet::new();
    for i in 0..300 {
        let body = format!("m{i}");
        moto.send(&queue, &body).await;
        sent_messages.insert(body);
    }
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    functions(dir.path(), &queue);
    let launch = || Launch {
        state: Some(state.path().to_path_buf()),
        env: moto.env(),
        ..Launch::default()
    };

    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let mut up_windows = Vec::new();
    let mut next_tag = 0u64;
    for kill in 0..kills {
        let faas = Faas::launch(dir.path(), launch());
        let started = jiff::Timestamp::now();
        // Async calls streamed while it lives; the kill comes at a random moment.
        let alive_for = Duration::from_millis(u64::from(random.range(400, 3500)));
        let base = faas.base.clone();
        let first_tag = next_tag;
        next_tag += 1000;
        let sink = Arc::clone(&accepted);
        let sender = tokio::spawn(async move {
            for n in first_tag.. {
                let tag = format!("c{n}");
                if call_async(&base, &tag).await {
                    sink.lock().unwrap().insert(tag);
                } else {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        tokio::time::sleep(alive_for).await;
        let killed = jiff::Timestamp::now();
        faas.sigkill();
        let _ = tokio::time::timeout(Duration::from_secs(10), sender).await;
        up_windows.push((kill, started, killed));
        drop(faas);
        tokio::time::sleep(Duration::from_millis(u64::from(random.range(0, 400)))).await;
    }

    // One last start, on the same state: everything promised gets done.
    let mut last = Faas::launch(dir.path(), launch());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pending = get(&last.url("/system/async")).await.json()["pending"].as_u64();
        let (visible, in_flight) = moto.counts(&queue).await;
        if pending == Some(0) && visible == 0 && in_flight == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not drained: async pending {pending:?}, SQS {visible}+{in_flight}; stderr:\n{}",
            last.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead = get(&last.url("/system/async")).await.json()["deadLetters"].clone();
    last.sigterm();
    assert_eq!(last.wait_exit(Duration::from_secs(30)), Some(0));
    // The run records as the clean stop left them: read from the store itself, after the
    // exit (through the API before it, the tick that is running at that moment would look
    // unfinished; the schedule fires every second, so there nearly always is one).
    let runs = faas_e2e::state::stored_runs(&state.path().join("runs.db"), "tick");

    // SQS: the queue is empty, so every message was deleted; each only after a successful
    // answer, so each was handled.
    let handled = file_lines(&dir.path().join("sqs.log"));
    let handled_set: BTreeSet<String> = handled.iter().cloned().collect();
    let unhandled: Vec<_> = sent_messages.difference(&handled_set).collect();
    assert!(
        unhandled.is_empty(),
        "deleted without being handled: {unhandled:?}"
    );
    let sqs_twice = handled.len() - handled_set.len();

    // Async: every 202 ran or is a dead letter.
    let done = file_lines(&dir.path().join("work.log"));
    let done_set: BTreeSet<String> = done.iter().cloned().collect();
    let dead_set: BTreeSet<String> = dead
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["body"].as_str().map(str::to_owned))
        .collect();
    let accepted = accepted.lock().unwrap().clone();
    let lost: Vec<_> = accepted
        .iter()
        .filter(|tag| !done_set.contains(*tag) && !dead_set.contains(*tag))
        .collect();
    assert!(lost.is_empty(), "accepted (202) but never run: {lost:?}");
    assert!(!accepted.is_empty(), "no async call was accepted at all");
    let async_twice = done.len() - done_set.len();

    // Cron: one record per fire time, all terminal; every finished execution recorded;
    // every second of a window the platform was surely up has its record.
    let records = runs;
    let mut by_time: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in &records {
        let due = run["spec"]["scheduledTime"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let phase = run["status"]["phase"].as_str().unwrap_or("?").to_owned();
        by_time.entry(due).or_default().push(phase);
    }
    let doubled: Vec<_> = by_time.iter().filter(|(_, p)| p.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "two records for one fire time: {doubled:?}"
    );
    let open: Vec<_> = by_time
        .iter()
        .filter(|(_, p)| p.iter().any(|p| p == "Running" || p == "Pending"))
        .collect();
    assert!(
        open.is_empty(),
        "runs left unfinished after a clean stop: {open:?}"
    );
    let ticks = file_lines(&dir.path().join("ticks.log"));
    let ended: Vec<&str> = ticks
        .iter()
        .filter_map(|l| l.strip_prefix("end "))
        .collect();
    let recorded: BTreeSet<jiff::Timestamp> =
        by_time.keys().filter_map(|t| t.parse().ok()).collect();
    for t in &ended {
        let t: jiff::Timestamp = t.parse().unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(recorded.contains(&t), "ran at {t} without a record");
    }
    let mut missing = Vec::new();
    for (kill, started, killed) in &up_windows {
        for second in whole_seconds(*started, *killed) {
            if !recorded.contains(&second) {
                missing.push((kill, second));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fire times with no record while up: {missing:?}"
    );
    let ended_set: BTreeSet<&str> = ended.iter().copied().collect();
    let cron_twice = ended.len() - ended_set.len();

    // The stores are whole.
    for db in ["runs.db", "async.db"] {
        assert_eq!(
            faas_e2e::state::integrity_check(&state.path().join(db)),
            "ok",
            "{db}"
        );
    }
    let phases: BTreeMap<&str, usize> =
        by_time
            .values()
            .flatten()
            .fold(BTreeMap::new(), |mut m, p| {
                *m.entry(p.as_str()).or_default() += 1;
                m
            });
    eprintln!(
        "crash test (seed {seed}, {kills} kills): cron {} records {phases:?}, {} executions ended, \
         {cron_twice} fire times executed twice; SQS {} messages, {sqs_twice} handled twice; async \
         {} accepted, {} run, {} dead letters, {async_twice} run twice",
        records.len(),
        ended.len(),
        sent_messages.len(),
        accepted.len(),
        done_set.len(),
        dead_set.len()
    );
}
