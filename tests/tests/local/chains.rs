//! Chained runs under `faas up` (`spec.then`): a run that ends starts the runs its function's
//! `then` lists, with options read from its output and its output as their payload; each
//! records its parent and the parent its children; a `then` that cannot start its run says
//! why on the parent; a deploy that would close a loop is refused.

use std::path::Path;

use faas_e2e::*;
use serde_json::Value;

use super::runs::output;

/// `extract` prints a JSON object (or fails when told); `load` reads it through options and
/// stdin; `page` runs after a failure.
fn functions(dir: &Path) {
    std::fs::write(
        dir.join("extract.sh"),
        "#!/bin/sh\nif [ \"$FAAS_OPTION_FAIL\" = true ]; then echo broken >&2; exit 4; fi\n\
         printf '{\"report\": {\"date\": \"2026-12-07\"}, \"rows\": 42}' > \"$FAAS_OUTPUT\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("load.sh"),
        "#!/bin/sh\necho \"load date=$FAAS_OPTION_DATE rows=$FAAS_OPTION_ROWS mode=$FAAS_OPTION_MODE \
         trigger=$FAAS_TRIGGER stdin=$(cat)\" > \"$FAAS_OUTPUT\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("page.sh"),
        "#!/bin/sh\necho paged > \"$FAAS_OUTPUT\"\n",
    )
    .unwrap();
    let job = |name: &str, rest: &str| {
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  \
             runtime:\n    container:\n      command: [sh, {name}.sh]\n      mode: job\n{rest}"
        )
    };
    std::fs::write(
        dir.join("extract.yaml"),
        job(
            "extract",
            "  options:\n  - {name: fail, type: boolean, default: false}\n  then:\n    \
             onSuccess:\n    - function: load\n      options: {mode: full}\n      \
             optionsFromOutput: {date: /report/date, rows: /rows}\n      passOutput: true\n    \
             - {function: missing}\n    onFailure:\n    - {function: page}\n",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("load.yaml"),
        job(
            "load",
            "  options:\n  - {name: date, required: true, pattern: '[0-9]{4}-[0-9]{2}-[0-9]{2}'}\n  \
             - {name: rows, type: number}\n  - {name: mode, type: enum, values: [full, delta]}\n",
        ),
    )
    .unwrap();
    std::fs::write(dir.join("page.yaml"), job("page", "")).unwrap();
}

async fn run_record(faas: &Faas, id: &str) -> Value {
    let reply = get(&faas.url(&format!("/system/runs/{id}"))).await;
    assert_eq!(reply.status, 200, "{id}: {}", reply.text());
    reply.json()
}

/// Runs `extract` by hand and returns its final record.
fn run_extract(faas: &Faas, args: &[&str]) -> Value {
    let mut cmd = faas.cli();
    cmd.args(["run", "extract", "-o", "json"]).args(args);
    let (_, out, err) = output(cmd);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"))
}

#[tokio::test]
async fn a_finished_run_starts_its_then_with_options_from_its_output_and_both_are_linked() {
    let dir = tempfile::tempdir().unwrap();
    functions(dir.path());
    let faas = Faas::start(dir.path());

    let parent = run_extract(&faas, &[]);
    assert_eq!(parent["status"]["phase"], "Succeeded", "{parent}");
    let parent_id = parent["metadata"]["name"].as_str().unwrap().to_owned();
    // The run API answers once what the run started is recorded on it.
    let parent = run_record(&faas, &parent_id).await;
    let next: Vec<&str> = parent["status"]["nextRuns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(next.len(), 1, "{parent}");
    assert!(next[0].starts_with("load.manual."), "{parent}");
    let message = parent["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("then: missing: no such function"),
        "a run that could not be started is said on the parent: {parent}"
    );

    let child = faas.run_ended(next[0]).await;
    assert_eq!(child["status"]["phase"], "Succeeded", "{child}");
    assert_eq!(child["spec"]["trigger"], "chain");
    assert_eq!(child["spec"]["parentRun"], parent_id.as_str());
    assert_eq!(child["spec"]["chainDepth"], 1);
    assert_eq!(
        child["spec"]["options"],
        serde_json::json!({"date": "2026-12-07", "mode": "full", "rows": 42})
    );
    let printed = child["status"]["output"].as_str().unwrap_or_default();
    assert!(
        printed
            .starts_with("load date=2026-12-07 rows=42 mode=full trigger=chain stdin={\"report\""),
        "options from the output, the output as payload: {printed}"
    );

    // `faas runs show` names both ends of the link.
    let mut cmd = faas.cli();
    cmd.args(["runs", "show", next[0]]);
    let (code, shown, err) = output(cmd);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        shown.contains(&format!("Parent:     {parent_id} (chained run 1 deep)")),
        "{shown}"
    );
    let mut cmd = faas.cli();
    cmd.args(["runs", "show", &parent_id]);
    let (_, shown, _) = output(cmd);
    assert!(
        shown.contains(&format!("Then:       {}", next[0])),
        "{shown}"
    );

    // A failure starts the onFailure list instead.
    let failed = run_extract(&faas, &["--option", "fail=true"]);
    assert_eq!(failed["status"]["phase"], "Failed", "{failed}");
    let failed_id = failed["metadata"]["name"].as_str().unwrap().to_owned();
    let failed = run_record(&faas, &failed_id).await;
    let paged = failed["status"]["nextRuns"][0].as_str().unwrap().to_owned();
    assert!(paged.starts_with("page.manual."), "{failed}");
    let paged = faas.run_ended(&paged).await;
    assert_eq!(paged["status"]["output"], "paged\n", "{paged}");
}

#[tokio::test]
async fn a_deploy_that_closes_a_loop_of_then_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    functions(dir.path());
    let faas = Faas::start(dir.path());
    faas.eventually("load is served", || async {
        get(&faas.url("/system/functions/load")).await.status == 200
    })
    .await;

    let before = get(&faas.url("/system/functions/load")).await.json();

    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("load.sh"), "#!/bin/sh\ntrue\n").unwrap();
    let manifest = other.path().join("load.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: load}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, load.sh]\n      mode: job\n  \
         then:\n    onSuccess: [{function: extract}]\n",
    )
    .unwrap();
    let deployed = faas.deploy(&manifest);
    let err = String::from_utf8_lossy(&deployed.stderr);
    assert!(!deployed.status.success(), "{err}");
    assert!(
        err.contains("would close a loop of chained runs (extract → load → extract)"),
        "{err}"
    );
    let after = get(&faas.url("/system/functions/load")).await.json();
    assert_eq!(
        (&after["origin"], &after["updated"]),
        (&before["origin"], &before["updated"]),
        "load is unchanged: {after}"
    );
}
