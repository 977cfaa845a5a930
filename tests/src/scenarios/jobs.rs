//! A `mode: job` function in a cluster: each run is a Kubernetes Job that the leading
//! controller creates, owned by the run's `FunctionRun`, whose pod runs the image once; the
//! exit code, the termination message (the run's output) and the pod's log make the run's
//! record, and the function's timeout is the Job's deadline.

use serde_json::Value;

use super::{Cluster, deploy, faas_ok, objects};

/// The job test function's image (the stand-in maps it to `tests/system/job/run.sh`).
pub const JOB_IMAGE: &str = "registry.example.com/faas-e2e/job:1";

/// The job test function's image, or `None` (the scenario skipped) when the cluster has none.
pub fn job_image<C: Cluster>(c: &C) -> Option<String> {
    let image = c.job_image();
    c.meets(
        image.is_some(),
        "the job test function's image (FAAS_E2E_JOB_IMAGE, built from tests/system/job)",
    )
    .then_some(image)
    .flatten()
}

/// The job test function `report` of `image`: its timeout, its option `days`, then `more`
/// lines of its spec (more options, a webhook).
fn report(image: &str, timeout: &str, more: &str) -> String {
    format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: report}}\nspec:\n  \
         runtime:\n    container:\n      image: {image}\n      mode: job\n  timeout: {timeout}\n  \
         options:\n  - {{name: days, type: number, required: true}}\n{more}"
    )
}

/// `faas run report --option days=N -o json`: the run's final record.
fn run<C: Cluster>(c: &C, days: u32) -> Value {
    let printed = faas_ok(
        c,
        [
            "run",
            "report",
            "--option",
            &format!("days={days}"),
            "-o",
            "json",
        ],
    );
    serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"))
}

pub async fn a_job_runs_as_a_kubernetes_job_to_its_exit_code<C: Cluster>(c: &C) {
    let Some(image) = job_image(c) else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    deploy(c, dir.path(), &report(&image, "8s", ""), &[]);

    let succeeded = run(c, 3);
    let id = succeeded["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        succeeded["status"]["phase"],
        "Succeeded",
        "{succeeded}\n{}",
        c.diagnostics()
    );
    assert_eq!(succeeded["status"]["exitCode"], 0, "{succeeded}");
    assert_eq!(
        succeeded["status"]["output"], r#"{"days": 3}"#,
        "the termination message is the output: {succeeded}"
    );
    let tail = succeeded["status"]["logTail"].as_str().unwrap_or_default();
    assert!(
        tail.contains(&format!("report for 3 days (run {id}, attempt 1, manual)")),
        "the pod's log is the run's tail: {succeeded}"
    );
    // The Job: the run's, one pod, no retries of its own, the function's timeout.
    let jobs = objects(c, "batch", "jobs", c.team()).await;
    let job = jobs
        .iter()
        .find(|j| j["metadata"]["ownerReferences"][0]["name"] == id.as_str())
        .unwrap_or_else(|| panic!("no Job owned by {id}: {jobs:?}"));
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "FunctionRun");
    assert_eq!(job["spec"]["backoffLimit"], 0, "{job}");
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 8, "{job}");
    assert_eq!(job["status"]["conditions"][0]["type"], "Complete", "{job}");

    let failed = run(c, 13);
    assert_eq!(failed["status"]["phase"], "Failed", "{failed}");
    assert_eq!(failed["status"]["exitCode"], 13, "{failed}");
    assert!(
        failed["status"]["logTail"]
            .as_str()
            .unwrap_or_default()
            .contains("unlucky"),
        "{failed}"
    );

    // Past its deadline the Job fails and the run has timed out.
    let late = run(c, 0);
    assert_eq!(
        late["status"]["phase"],
        "TimedOut",
        "{late}\n{}",
        c.diagnostics()
    );
    assert!(
        late["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("(Timeout: the Job ran past its deadline"),
        "the platform's reason is the run's message: {late}"
    );
    assert!(
        late["status"]["logTail"]
            .as_str()
            .unwrap_or_default()
            .contains("sleeping"),
        "{late}"
    );
}

/// With the chart's `controller.runLogs.bucket`, a job run's whole log (far past the 4 KiB
/// tail its record keeps) is put in S3 when its Job ends, and the run records where.
pub async fn a_job_runs_whole_log_is_kept_in_s3<C: Cluster>(c: &C, bucket: &str) {
    let Some(image) = job_image(c) else { return };
    let aws = c.aws_config().await;
    if !c.meets(aws.is_some(), "AWS access to the run-log bucket") {
        return;
    }
    let Some(aws) = aws else { return };
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(true)
            .build(),
    );
    // Where the bucket is a test server's, it is made here; a real one exists.
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    deploy(
        c,
        dir.path(),
        &report(&image, "30s", "  - {name: lines, type: number}\n"),
        &[],
    );
    let printed = faas_ok(
        c,
        [
            "run",
            "report",
            "--option",
            "days=2",
            "--option",
            "lines=3000",
            "-o",
            "json",
        ],
    );
    let run: Value = serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"));
    assert_eq!(
        run["status"]["phase"],
        "Succeeded",
        "{run}\n{}",
        c.diagnostics()
    );
    let id = run["metadata"]["name"].as_str().unwrap_or_default();
    let prefix = format!("run-logs/{}/{id}/", c.team());
    assert_eq!(
        run["status"]["logLocation"],
        format!("s3://{bucket}/{prefix}").as_str(),
        "{run}\n{}",
        c.diagnostics()
    );
    let tail = run["status"]["logTail"].as_str().unwrap_or_default();
    assert!(
        tail.contains("row 3000") && !tail.contains("row 1\n"),
        "the record keeps the tail only: {tail}"
    );
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(format!("{prefix}attempt-1.log"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the run's log object: {e:?}"));
    let bytes = object
        .body
        .collect()
        .await
        .expect("the object's body")
        .into_bytes();
    let log = String::from_utf8_lossy(&bytes);
    assert!(
        log.starts_with("report for 2 days"),
        "{}",
        &log[..log.len().min(200)]
    );
    for line in ["row 1\n", "row 1500\n", "row 3000\n"] {
        assert!(log.contains(line), "{line:?} missing from the archived log");
    }
    // `faas runs logs` reads it back from there, with the reader's own AWS credentials.
    let printed = faas_ok(c, ["runs", "logs", id]);
    assert!(
        printed.starts_with("[faas] attempt 1\nreport for 2 days") && printed.contains("row 1\n"),
        "{}",
        &printed[..printed.len().min(300)]
    );

    pruning_a_run_deletes_its_archived_log(c, &s3, bucket, &image, dir.path(), id).await;
}

/// The keys under `prefix` in `bucket`.
async fn keys_under(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap_or_else(|e| panic!("listing s3://{bucket}/{prefix}: {e:?}"));
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// A schedule keeping one succeeded run (`history: {succeeded: 1}`): its second run prunes
/// the first's record, and with it the first's log objects in S3; the second's, and the
/// logs of runs outside that history (`kept`, a run started without the schedule), stay.
async fn pruning_a_run_deletes_its_archived_log<C: Cluster>(
    c: &C,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    image: &str,
    dir: &std::path::Path,
    kept: &str,
) {
    // A yearly schedule that does not fire during the test; its runs are started by hand.
    deploy(
        c,
        dir,
        &report(
            image,
            "30s",
            "  - {name: lines, type: number}\n  schedules:\n  - {name: once, cron: '0 0 1 1 *', options: {days: 1}, history: {succeeded: 1}}\n",
        ),
        &[],
    );
    let run_once = || {
        let printed = faas_ok(
            c,
            [
                "run",
                "report",
                "--schedule",
                "once",
                "--option",
                "days=1",
                "--option",
                "lines=5",
                "-o",
                "json",
            ],
        );
        let run: Value =
            serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"));
        assert_eq!(
            run["status"]["phase"],
            "Succeeded",
            "{run}\n{}",
            c.diagnostics()
        );
        run["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let prefix_of = |id: &str| format!("run-logs/{}/{id}/", c.team());
    let first = run_once();
    assert_eq!(
        keys_under(s3, bucket, &prefix_of(&first)).await,
        [format!("{}attempt-1.log", prefix_of(&first))],
        "the first run's log is archived"
    );
    let second = run_once();
    assert_ne!(first, second);
    super::until(
        c,
        "the first run's record and its log objects are pruned",
        std::time::Duration::from_secs(30),
        || async {
            let record = super::object(c, "faas.dev", "functionruns", c.team(), &first).await;
            let objects = keys_under(s3, bucket, &prefix_of(&first)).await;
            (record.is_none() && objects.is_empty()).then_some(())
        },
    )
    .await;
    assert!(
        super::object(c, "faas.dev", "functionruns", c.team(), &second)
            .await
            .is_some(),
        "the run the history keeps is kept"
    );
    assert_eq!(
        keys_under(s3, bucket, &prefix_of(&second)).await.len(),
        1,
        "the kept run keeps its log"
    );
    assert_eq!(
        keys_under(s3, bucket, &prefix_of(kept)).await.len(),
        1,
        "a run of another history keeps its log"
    );
}

/// A job function's webhook in a cluster: the controller publishes the keyed digest of the
/// token it read from the team's Secret, the gateway (which reads no Secret) checks a call on
/// its public listener against it and asks for the run, and the controller runs it as any
/// other, recorded `trigger: webhook`.
pub async fn a_webhook_starts_a_job_run_through_the_public_listener<C: Cluster>(c: &C) {
    let Some(image) = job_image(c) else { return };
    let token = "team-hook-token-0123456789";
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(c.client(), c.team());
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hooks", "namespace": c.team()},
        "stringData": {"report": token},
        "data": {"report": base64_of(token)},
    }))
    .expect("a Secret");
    secrets
        .create(&kube::api::PostParams::default(), &secret)
        .await
        .expect("create the Secret");
    let dir = tempfile::tempdir().expect("a temporary directory");
    deploy(
        c,
        dir.path(),
        &report(
            &image,
            "30s",
            "  webhook:\n    tokenSecret: {secretKeyRef: {name: hooks, key: report}}\n",
        ),
        &[],
    );
    let function = super::until(
        c,
        "the webhook's digest is published",
        std::time::Duration::from_secs(60),
        || async {
            let f = super::object(c, "faas.dev", "functions", c.team(), "report").await?;
            f["status"]["webhook"]["tokenDigest"]
                .is_string()
                .then_some(f)
        },
    )
    .await;
    let published = function["status"]["webhook"].to_string();
    assert!(
        !published.contains(token),
        "the token is in the status: {published}"
    );
    let (public, _) = super::gateway(c).await;
    let hook = format!("{public}/hooks/report");
    let body = r#"{"options": {"days": 4}}"#;
    // The gateway learns the digest from its watch of Functions: wait until it answers.
    let bearer = format!("Bearer {token}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let accepted = loop {
        let reply = crate::send("POST", &hook, &[("authorization", &bearer)], body).await;
        if reply.status == 202 {
            break reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway did not accept the webhook's token: {} {}\n{}",
            reply.status,
            reply.text(),
            c.diagnostics()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let refused = crate::send(
        "POST",
        &hook,
        &[("authorization", "Bearer team-hook-token-012345678X")],
        body,
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    let id = accepted.json()["run"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let run = super::until(
        c,
        "the webhook's run ends",
        std::time::Duration::from_secs(60),
        || async {
            let run = super::object(c, "faas.dev", "functionruns", c.team(), &id).await?;
            matches!(
                run["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            )
            .then_some(run)
        },
    )
    .await;
    assert_eq!(
        run["status"]["phase"],
        "Succeeded",
        "{run}\n{}",
        c.diagnostics()
    );
    assert_eq!(run["spec"]["trigger"], "webhook", "{run}");
    assert_eq!(run["status"]["output"], r#"{"days": 4}"#, "{run}");
    assert_eq!(
        super::runs_of(c, "report").await.len(),
        1,
        "only the call with the token ran"
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
