//! A full disk: `faas up` with its state directory on a small tmpfs that the test fills while
//! a cron schedule fires every second and async calls arrive, then frees.
//!
//! What must hold: work that cannot be recorded is refused with an answer that says why (an
//! async call gets 503 `QueueUnavailable` naming the full disk; a fire time whose run cannot
//! be recorded does not run), the platform keeps serving, every call answered 202 still runs,
//! every execution has its record, work resumes on its own once space is back, and both
//! stores pass `integrity_check`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use faas_e2e::state::{Tmpfs, integrity_check, stored_runs};
use faas_e2e::*;

fn functions(dir: &Path) {
    let write = |name: &str, file: &str| std::fs::write(dir.join(name), file).unwrap();
    // Each execution leaves a line in the function folder (not on the full disk).
    write(
        "tick.sh",
        "#!/bin/sh\necho \"end $HTTP_X_FAAS_SCHEDULED_TIME\" >> ticks.log\n\
         printf 'Content-Type: text/plain\\n\\nok\\n'\n",
    );
    write(
        "tick.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: tick}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, tick.sh]\n      mode: cgi\n  timeout: 10s\n  \
         schedules:\n  - name: every-second\n    cron: \"* * * * * *\"\n    \
         history: {succeeded: 1000, failed: 1000}\n",
    );
    write(
        "work.sh",
        "#!/bin/sh\nbody=$(cat)\necho \"$body\" >> work.log\nprintf 'Content-Type: text/plain\\n\\ndone\\n'\n",
    );
    write(
        "work.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: work}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, work.sh]\n      mode: cgi\n  timeout: 10s\n",
    );
}

async fn call_async(faas: &Faas, tag: &str) -> Reply {
    send(
        "POST",
        &faas.url("/async-function/work"),
        &[],
        tag.to_owned(),
    )
    .await
}

/// The fire times recorded for `tick` so far, through the API.
async fn recorded(faas: &Faas) -> BTreeSet<String> {
    get(&faas.url("/system/functions/tick/runs?limit=1000"))
        .await
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|run| run["spec"]["scheduledTime"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_what_it_cannot_record_and_loses_nothing_it_accepted() {
    let Some(disk) = Tmpfs::mount(16) else {
        skip::missing("cannot mount a tmpfs here (needs root; scripts/test.sh runs as root in CI)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    functions(dir.path());
    let state = disk.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let mut faas = Faas::start_in_state(dir.path(), &state);
    faas.eventually("two cron runs recorded", || async {
        recorded(&faas).await.len() >= 2
    })
    .await;

    let mut accepted = BTreeSet::new();
    for n in 0..10 {
        let tag = format!("before{n}");
        let reply = call_async(&faas, &tag).await;
        assert_eq!(reply.status, 202, "{}", reply.text());
        accepted.insert(tag);
    }

    // The disk fills up.
    let filler = disk.fill();
    let full_since = jiff::Timestamp::now();
    let mut refused = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    while refused.is_none() && Instant::now() < deadline {
        let tag = format!("full{n}");
        n += 1;
        let reply = call_async(&faas, &tag).await;
        match reply.status {
            202 => {
                accepted.insert(tag);
            }
            503 => refused = Some(reply.json()),
            other => panic!("a call on a full disk: {other} {}", reply.text()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused
        .unwrap_or_else(|| panic!("no async call was refused in 20 s of a full disk ({n} calls)"));
    assert_eq!(refused["reason"], "QueueUnavailable", "{refused}");
    let message = refused["error"].as_str().unwrap_or_default();
    assert!(message.contains("full"), "the cause is named: {refused}");

    // Still serving while full: a synchronous call and the management API.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sync = send("POST", &faas.url("/function/work"), &[], "sync").await;
    assert_eq!(sync.status, 200, "{}", sync.text());
    let listed = get(&faas.url("/system/functions")).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let full_until = jiff::Timestamp::now();
    let said: Vec<String> = faas
        .stderr
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains("full"))
        .map(str::to_owned)
        .collect();
    assert!(
        !said.is_empty(),
        "the log names the full disk:\n{}",
        faas.stderr.lock().unwrap()
    );
    eprintln!("full disk: what the log said:\n{}", said.join("\n"));

    // Space comes back: async calls are taken again and cron records resume, by themselves.
    std::fs::remove_file(&filler).unwrap();
    let mut after = 0;
    faas.eventually("async calls accepted again", || {
        after += 1;
        let tag = format!("after{after}");
        let faas = &faas;
        async move { call_async(faas, &tag).await.status == 202 }
    })
    .await;
    accepted.insert(format!("after{after}"));
    faas.eventually("a cron run recorded after the disk was freed", || async {
        recorded(&faas)
            .await
            .iter()
            .any(|t| t.parse::<jiff::Timestamp>().is_ok_and(|t| t > full_until))
    })
    .await;
    faas.eventually("every accepted call ran", || async {
        get(&faas.url("/system/async")).await.json()["pending"].as_u64() == Some(0)
    })
    .await;
    faas.sigterm();
    assert_eq!(faas.wait_exit(Duration::from_secs(30)), Some(0));

    // Nothing accepted was lost.
    let done: BTreeSet<String> = file_lines(&dir.path().join("work.log"))
        .into_iter()
        .collect();
    let lost: Vec<_> = accepted.difference(&done).collect();
    assert!(lost.is_empty(), "accepted (202) but never run: {lost:?}");
    // Every execution has its record, and every record is finished.
    let runs = stored_runs(&state.join("runs.db"), "tick");
    let by_time: BTreeSet<String> = runs
        .iter()
        .filter_map(|run| run["spec"]["scheduledTime"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(by_time.len(), runs.len(), "one record per fire time");
    for run in &runs {
        let phase = run["status"]["phase"].as_str().unwrap_or("?");
        assert!(
            !matches!(phase, "Running" | "Pending"),
            "left unfinished: {run}"
        );
    }
    let ticks = file_lines(&dir.path().join("ticks.log"));
    for end in ticks.iter().filter_map(|l| l.strip_prefix("end ")) {
        assert!(by_time.contains(end), "ran at {end} without a record");
    }
    // Fire times while the disk was full had no record, so they did not run: the schedule
    // skipped them rather than running what it could not record.
    let skipped = ticks
        .iter()
        .filter_map(|l| l.strip_prefix("end ")?.parse::<jiff::Timestamp>().ok())
        .filter(|t| *t > full_since && *t < full_until)
        .count();
    for db in ["runs.db", "async.db"] {
        assert_eq!(integrity_check(&state.join(db)), "ok", "{db}");
    }
    eprintln!(
        "full disk: {} calls accepted, refused after {n} calls on the full disk; {} cron \
         records, {skipped} executions while full",
        accepted.len(),
        runs.len()
    );
}
