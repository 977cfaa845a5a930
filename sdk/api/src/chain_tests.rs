use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::{Function, Schedule};

fn next(function: &str) -> NextRun {
    NextRun {
        function: function.to_owned(),
        ..NextRun::default()
    }
}

fn spec_starting(on_success: &[&str]) -> FunctionSpec {
    FunctionSpec {
        then: Some(Then {
            on_success: on_success.iter().map(|f| next(f)).collect(),
            on_failure: Vec::new(),
        }),
        ..FunctionSpec::default()
    }
}

#[test]
fn a_schedules_then_wins_over_the_functions_and_the_phase_picks_the_list() {
    let mut spec = FunctionSpec {
        then: Some(Then {
            on_success: vec![next("load")],
            on_failure: vec![next("page")],
        }),
        ..FunctionSpec::default()
    };
    spec.schedules = vec![
        Schedule {
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            then: Some(Then {
                on_success: vec![next("publish")],
                on_failure: Vec::new(),
            }),
            ..Schedule::default()
        },
        Schedule {
            name: "hourly".into(),
            cron: "0 * * * *".into(),
            ..Schedule::default()
        },
    ];
    let names = |runs: &[NextRun]| runs.iter().map(|n| n.function.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(next_runs(&spec, Some("nightly"), RunPhase::Succeeded)),
        ["publish"]
    );
    assert!(
        next_runs(&spec, Some("nightly"), RunPhase::Failed).is_empty(),
        "the schedule's then replaces the function's as a whole"
    );
    assert_eq!(
        names(next_runs(&spec, Some("hourly"), RunPhase::Succeeded)),
        ["load"]
    );
    assert_eq!(names(next_runs(&spec, None, RunPhase::Succeeded)), ["load"]);
    for failed in [RunPhase::Failed, RunPhase::TimedOut, RunPhase::Interrupted] {
        assert_eq!(
            names(next_runs(&spec, None, failed)),
            ["page"],
            "{failed:?}"
        );
    }
    for not_ended in [RunPhase::Pending, RunPhase::Running, RunPhase::Skipped] {
        assert!(
            next_runs(&spec, None, not_ended).is_empty(),
            "{not_ended:?}"
        );
    }
    assert!(next_runs(&FunctionSpec::default(), None, RunPhase::Succeeded).is_empty());
}

#[test]
fn options_come_from_the_output_by_pointer_over_the_literal_ones() {
    let step = NextRun {
        function: "load".into(),
        options: [
            ("mode".to_owned(), json!("full")),
            ("day".to_owned(), json!("x")),
        ]
        .into(),
        options_from_output: [
            ("date".to_owned(), "/report/date".to_owned()),
            ("rows".to_owned(), "/rows".to_owned()),
        ]
        .into(),
        ..NextRun::default()
    };
    let given = step
        .given_options(Some(r#"{"report": {"date": "2026-12-07"}, "rows": 42}"#))
        .expect("options");
    assert_eq!(
        given,
        BTreeMap::from([
            ("date".to_owned(), json!("2026-12-07")),
            ("day".to_owned(), json!("x")),
            ("mode".to_owned(), json!("full")),
            ("rows".to_owned(), json!(42)),
        ])
    );
    for (output, why) in [
        (None, "is not a JSON object"),
        (Some("not json"), "is not a JSON object"),
        (Some("[1, 2]"), "is not a JSON object"),
        (
            Some(r#"{"rows": 1}"#),
            "option date: the finished run's output has nothing at \"/report/date\"",
        ),
        (
            Some(r#"{"report": {"date": {"y": 2026}}, "rows": 1}"#),
            "option date: the value at \"/report/date\" of the finished run's output is not a string",
        ),
    ] {
        let err = step.given_options(output).expect_err("refused");
        assert!(err.contains(why), "{output:?}: {err}");
    }
    assert_eq!(
        next("load").given_options(Some("not json at all")),
        Ok(BTreeMap::new()),
        "without optionsFromOutput the output is not read"
    );
}

#[test]
fn loops_are_found_through_any_number_of_functions_and_only_loops() {
    let a = spec_starting(&["b"]);
    let b = spec_starting(&["c", "gone"]);
    let c = spec_starting(&["a"]);
    let d = spec_starting(&["b"]);
    let all: BTreeMap<&str, &FunctionSpec> = [("a", &a), ("b", &b), ("c", &c), ("d", &d)].into();
    assert_eq!(
        find_loop(&all),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );

    let c_ends = spec_starting(&[]);
    let chain: BTreeMap<&str, &FunctionSpec> =
        [("a", &a), ("b", &b), ("c", &c_ends), ("d", &d)].into();
    assert_eq!(find_loop(&chain), None, "a diamond or a chain is no loop");

    // Through a schedule's then too.
    let e = FunctionSpec {
        schedules: vec![Schedule {
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            then: Some(Then {
                on_success: Vec::new(),
                on_failure: vec![next("f")],
            }),
            ..Schedule::default()
        }],
        ..FunctionSpec::default()
    };
    let f = spec_starting(&["e"]);
    let pair: BTreeMap<&str, &FunctionSpec> = [("e", &e), ("f", &f)].into();
    assert_eq!(
        find_loop(&pair),
        Some(vec!["e".into(), "f".into(), "e".into()])
    );
}

#[test]
fn a_manifests_then_is_checked_field_by_field() {
    let yaml = r#"
apiVersion: faas.dev/v1alpha1
kind: Function
metadata: {name: extract}
spec:
  runtime: {container: {command: [sh, x.sh], mode: job}}
  then:
    onSuccess:
    - {function: extract}
    - {function: Load_Data, schedule: "Bad Name"}
    - {function: load, options: {date: x}, optionsFromOutput: {date: /date, day: "day"}}
"#;
    let function: Function = serde_yaml::from_str(yaml).expect("parses");
    let errs = crate::validate(&function).expect_err("refused").to_string();
    for expected in [
        "spec.then.onSuccess[0].function: starts a run of this function itself: a loop",
        "spec.then.onSuccess[1].function: must be a DNS-1123 label",
        "spec.then.onSuccess[1].schedule: must be a DNS-1123 label",
        "spec.then.onSuccess[2].optionsFromOutput.date: also in options: give it one way",
        "spec.then.onSuccess[2].optionsFromOutput.day: \"day\" is not a JSON pointer",
    ] {
        assert!(
            errs.contains(expected),
            "{expected:?} missing from:\n{errs}"
        );
    }
    let many = format!(
        "{}\n  schedules:\n  - name: nightly\n    cron: \"0 3 * * *\"\n    then:\n      onFailure: [{}]\n",
        yaml.split("  then:").next().expect("head").trim_end(),
        ["{function: page}"; 11].join(", ")
    );
    let function: Function = serde_yaml::from_str(&many).expect("parses");
    let errs = crate::validate(&function).expect_err("refused").to_string();
    assert!(
        errs.contains("spec.schedules[0].then: starts 11 runs; at most 10"),
        "{errs}"
    );
}
