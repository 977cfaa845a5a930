//! Chained runs in a cluster against a `tower-test` mock of the API server: a finished run's
//! `then` becomes requested `FunctionRun`s in its own namespace, each carrying its parent,
//! depth, options and payload; what cannot be started is said, not requested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faas_api::chain::{NextRun, Then};
use faas_api::{
    ContainerMode, ContainerRuntime, Function, FunctionRun, FunctionRunSpec, FunctionRunStatus,
    FunctionSpec, RunPhase, RuntimeSpec,
};
use faas_controller::chain::KubeChains;
use faas_kube_mock::expect;
use faas_schedule::Chains;
use kube::runtime::watcher;
use serde_json::json;

fn job(name: &str, spec: FunctionSpec) -> Function {
    let mut f = Function::new(
        name,
        FunctionSpec {
            runtime: RuntimeSpec {
                container: Some(ContainerRuntime {
                    image: Some(format!("registry.example.com/{name}:1")),
                    mode: ContainerMode::Job,
                    ..ContainerRuntime::default()
                }),
                ..RuntimeSpec::default()
            },
            ..spec
        },
    );
    f.metadata.namespace = Some("finance".into());
    f
}

fn functions() -> Vec<Function> {
    let extract = job(
        "extract",
        FunctionSpec {
            then: Some(Then {
                on_success: vec![
                    NextRun {
                        function: "load".into(),
                        options_from_output: [("date".to_owned(), "/date".to_owned())].into(),
                        pass_output: true,
                        ..NextRun::default()
                    },
                    NextRun {
                        function: "audit".into(),
                        ..NextRun::default()
                    },
                ],
                on_failure: vec![NextRun {
                    function: "page".into(),
                    ..NextRun::default()
                }],
            }),
            ..FunctionSpec::default()
        },
    );
    let load = job(
        "load",
        FunctionSpec {
            options: serde_json::from_value(json!([
                {"name": "date", "required": true},
                {"name": "token", "secret": true, "default": "s3cret"},
            ]))
            .unwrap(),
            ..FunctionSpec::default()
        },
    );
    // `audit` exists in another namespace only: a then never reaches it.
    let mut audit = job("audit", FunctionSpec::default());
    audit.metadata.namespace = Some("security".into());
    vec![extract, load, audit]
}

fn finished(phase: RunPhase, output: &str, depth: u32) -> FunctionRun {
    let mut run = FunctionRun::new(
        "extract.nightly.20261207t030000z",
        FunctionRunSpec {
            function: "extract".into(),
            schedule: "nightly".into(),
            trigger: "cron".into(),
            attempt: 1,
            chain_depth: depth,
            ..FunctionRunSpec::default()
        },
    );
    run.metadata.namespace = Some("finance".into());
    run.status = Some(FunctionRunStatus {
        phase,
        output: Some(output.into()),
        ..FunctionRunStatus::default()
    });
    run
}

fn chains() -> (KubeChains, faas_kube_mock::Handle) {
    let (client, handle) = faas_kube_mock::client("finance");
    let (store, mut writer) = kube::runtime::reflector::store();
    for f in functions() {
        writer.apply_watcher_event(&watcher::Event::Apply(f));
    }
    (KubeChains::new(client, "finance", store), handle)
}

#[tokio::test]
async fn a_finished_runs_then_is_requested_in_its_namespace_with_parent_options_and_payload() {
    let (chains, mut api) = chains();
    let run = finished(RunPhase::Succeeded, r#"{"date": "2026-12-07"}"#, 0);
    let after = tokio::spawn(async move { chains.after(&run).await });
    let (created, reply) = expect(
        &mut api,
        "POST",
        "/apis/faas.dev/v1alpha1/namespaces/finance/functionruns?",
    )
    .await;
    reply.json(201, &created);
    let outcome = after.await.unwrap();

    let name = created["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("load.manual."), "{created}");
    assert_eq!(outcome.started, [name]);
    assert_eq!(
        outcome.refused,
        ["audit: no such function"],
        "another namespace's function is not there"
    );
    assert_eq!(created["metadata"]["labels"]["faas.dev/requested"], "true");
    assert_eq!(created["metadata"]["labels"]["faas.dev/function"], "load");
    assert_eq!(
        created["spec"],
        json!({"function": "load", "schedule": "manual", "trigger": "chain", "attempt": 1,
               "options": {"date": "2026-12-07", "token": "********"},
               "parentRun": "extract.nightly.20261207t030000z", "chainDepth": 1}),
        "the record shows options redacted"
    );
    let annotations = &created["metadata"]["annotations"];
    assert_eq!(annotations["faas.dev/options"], r#"{"date":"2026-12-07"}"#);
    assert_eq!(
        annotations["faas.dev/payload"], "eyJkYXRlIjogIjIwMjYtMTItMDcifQ==",
        "the output as the payload"
    );
}

#[tokio::test]
async fn nothing_is_requested_past_the_depth_bound_or_for_options_that_do_not_resolve() {
    let (chains, api) = chains();
    let deep = finished(RunPhase::Succeeded, r#"{"date": "2026-12-07"}"#, 10);
    let outcome = chains.after(&deep).await;
    assert!(outcome.started.is_empty());
    assert!(
        outcome.refused[0].starts_with("load: not started, the chain is already 10 runs long"),
        "{outcome:?}"
    );
    let no_date = finished(RunPhase::Succeeded, r#"{"day": 1}"#, 0);
    let outcome = chains.after(&no_date).await;
    assert_eq!(
        outcome.refused[0],
        "load: option date: the finished run's output has nothing at \"/date\""
    );
    // A failure's list names a function that does not exist: said, nothing requested.
    let failed = finished(RunPhase::Failed, "", 0);
    let outcome = chains.after(&failed).await;
    assert_eq!(outcome.refused, ["page: no such function"]);
    drop(api);
}
