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
    deploy(
        c,
        dir.path(),
        &format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: report}}\nspec:\n  \
             runtime:\n    container:\n      image: {image}\n      mode: job\n  timeout: 8s\n  \
             options:\n  - {{name: days, type: number, required: true}}\n"
        ),
        &[],
    );

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
        late["status"]["output"]
            .as_str()
            .unwrap_or_default()
            .contains("the Job ran past its deadline"),
        "{late}"
    );
    assert!(
        late["status"]["logTail"]
            .as_str()
            .unwrap_or_default()
            .contains("sleeping"),
        "{late}"
    );
}
