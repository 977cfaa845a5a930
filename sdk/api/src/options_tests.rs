use super::*;
use serde_json::json;

fn option(name: &str, kind: OptionType) -> RunOption {
    RunOption {
        name: name.to_owned(),
        kind,
        ..RunOption::default()
    }
}

fn given(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn declared() -> Vec<RunOption> {
    vec![
        RunOption {
            pattern: Some("[a-z]{2}-[a-z]+-[0-9]".into()),
            default: Some(json!("eu-west-1")),
            ..option("region", OptionType::String)
        },
        RunOption {
            required: true,
            ..option("days", OptionType::Number)
        },
        option("dry_run", OptionType::Boolean),
        RunOption {
            values: vec!["full".into(), "delta".into()],
            default: Some(json!("delta")),
            ..option("mode", OptionType::Enum)
        },
        RunOption {
            secret: true,
            ..option("token", OptionType::String)
        },
    ]
}

#[test]
fn text_and_typed_values_resolve_to_the_declared_types_with_defaults() {
    let from_text = resolve(
        &declared(),
        &[&given(&[("days", json!("7")), ("dry_run", json!("true"))])],
    )
    .expect("valid");
    assert_eq!(
        from_text.values(),
        given(&[
            ("days", json!(7)),
            ("dry_run", json!(true)),
            ("mode", json!("delta")),
            ("region", json!("eu-west-1")),
        ])
    );
    let typed = resolve(
        &declared(),
        &[&given(&[("days", json!(1.5)), ("dry_run", json!(false))])],
    )
    .expect("valid");
    assert_eq!(typed.values()["days"], json!(1.5));
    assert_eq!(typed.values()["dry_run"], json!(false));
}

#[test]
fn later_layers_win_over_earlier_ones_and_over_defaults() {
    let schedule = given(&[("days", json!(1)), ("mode", json!("full"))]);
    let person = given(&[("days", json!("30"))]);
    let resolved = resolve(&declared(), &[&schedule, &person]).expect("valid");
    assert_eq!(resolved.values()["days"], json!(30));
    assert_eq!(resolved.values()["mode"], json!("full"));
}

#[test]
fn every_bad_value_is_refused_at_once_naming_its_option() {
    let err = resolve(
        &declared(),
        &[&given(&[
            ("region", json!("Paris")),
            ("dry_run", json!("yes")),
            ("mode", json!("weekly")),
            ("colour", json!("red")),
            ("token", json!(["a"])),
        ])],
    )
    .expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "option colour: unknown; this function's options are region, days, dry_run, mode, token; \
         option region: \"Paris\" does not match the pattern \"[a-z]{2}-[a-z]+-[0-9]\"; \
         option days: is required and has no default; \
         option dry_run: must be true or false, got \"yes\"; \
         option mode: must be one of full, delta, got \"weekly\"; \
         option token: must be a string (a string, number or boolean), got a list"
    );
}

#[test]
fn numbers_must_be_finite_numbers() {
    let days = [RunOption {
        required: true,
        ..option("days", OptionType::Number)
    }];
    for bad in ["seven", "NaN", "inf", "1e999", ""] {
        let err = resolve(&days, &[&given(&[("days", json!(bad))])]).expect_err(bad);
        assert!(
            err.to_string().starts_with("option days: must be a number"),
            "{err}"
        );
    }
    let resolved = resolve(&days, &[&given(&[("days", json!(" -3 "))])]).expect("trimmed");
    assert_eq!(resolved.values()["days"], json!(-3));
}

#[test]
fn an_option_nobody_declared_is_refused_saying_there_are_none() {
    let err = resolve(&[], &[&given(&[("x", json!(1))])]).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "option x: unknown: this function declares no options (spec.options)"
    );
}

#[test]
fn a_secret_is_redacted_where_shown_and_never_echoed_in_an_error() {
    let mut options = declared();
    options[4].pattern = Some("s-[0-9]+".into());
    let resolved = resolve(
        &options,
        &[&given(&[("days", json!(1)), ("token", json!("s-42"))])],
    )
    .expect("valid");
    assert_eq!(resolved.values()["token"], json!("s-42"));
    assert_eq!(resolved.shown()["token"], json!(REDACTED));
    assert_eq!(resolved.shown()["days"], json!(1));
    assert!(
        resolved
            .env()
            .contains(&("FAAS_OPTION_TOKEN".into(), "s-42".into()))
    );
    let err = resolve(
        &options,
        &[&given(&[("days", json!(1)), ("token", json!("hunter2"))])],
    )
    .expect_err("no match");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("the value given"), "{err}");
}

#[test]
fn a_resumed_run_gets_its_recorded_values_but_no_redacted_secret() {
    let resolved = resolve(
        &declared(),
        &[&given(&[("days", json!(3)), ("token", json!("s"))])],
    )
    .expect("valid");
    let again = Resolved::from_record(&declared(), &resolved.shown()).expect("valid");
    assert_eq!(again.values()["days"], json!(3));
    assert!(!again.values().contains_key("token"));
}

#[test]
fn the_environment_names_are_upper_cased_and_values_are_their_text() {
    let resolved = resolve(
        &declared(),
        &[&given(&[("days", json!(2.5)), ("dry_run", json!(true))])],
    )
    .expect("valid");
    assert_eq!(
        resolved.env(),
        vec![
            ("FAAS_OPTION_DAYS".to_owned(), "2.5".to_owned()),
            ("FAAS_OPTION_DRY_RUN".to_owned(), "true".to_owned()),
            ("FAAS_OPTION_MODE".to_owned(), "delta".to_owned()),
            ("FAAS_OPTION_REGION".to_owned(), "eu-west-1".to_owned()),
        ]
    );
}

#[test]
fn the_header_is_ascii_json_that_parses_back_to_the_values() {
    let options = [option("note", OptionType::String)];
    let resolved = resolve(
        &options,
        &[&given(&[("note", json!("née \u{1F600} \"q\"\n"))])],
    )
    .expect("valid");
    let header = resolved.header_value();
    assert!(header.is_ascii(), "{header}");
    assert!(
        header.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{header}"
    );
    assert_eq!(parse_header(&header), Some(resolved.values()));
    assert_eq!(parse_header("{\"a\": {\"b\": 1}}"), None);
    assert_eq!(parse_header("[1]"), None);
}

#[test]
fn values_are_bounded_each_and_together() {
    let options: Vec<RunOption> = (0..8)
        .map(|i| option(&format!("o{i}"), OptionType::String))
        .collect();
    let long = "x".repeat(MAX_VALUE_BYTES + 1);
    let err = resolve(&options, &[&given(&[("o0", json!(long))])]).expect_err("long");
    assert!(
        err.to_string()
            .starts_with("option o0: longer than 4096 bytes"),
        "{err}"
    );
    let full = "x".repeat(MAX_VALUE_BYTES - 10);
    let all: BTreeMap<String, Value> = (0..8).map(|i| (format!("o{i}"), json!(full))).collect();
    let err = resolve(&options, &[&all]).expect_err("too much together");
    assert!(
        err.to_string()
            .starts_with("option options: together longer"),
        "{err}"
    );
    let err = resolve(&options, &[&given(&[("o1", json!("a\0b"))])]).expect_err("nul");
    assert_eq!(
        err.to_string(),
        "option o1: must not contain a NUL character"
    );
}

#[test]
fn a_hostile_pattern_costs_linear_time_or_is_refused() {
    // Catastrophic backtracking for a backtracking engine: linear here.
    let options = [RunOption {
        pattern: Some("(a+)+$".into()),
        ..option("s", OptionType::String)
    }];
    let input = format!("{}!", "a".repeat(4000));
    let err = resolve(&options, &[&given(&[("s", json!(input))])]).expect_err("no match");
    assert!(err.to_string().contains("does not match"), "{err}");
    let huge = RunOption {
        pattern: Some("(((a{100}){100}){100})".into()),
        ..option("s", OptionType::String)
    };
    assert!(whole_match(huge.pattern.as_deref().unwrap_or_default()).is_err());
}

#[test]
fn declarations_are_checked_with_their_field_paths() {
    let options = vec![
        option("9lives", OptionType::String),
        option("Region", OptionType::String),
        option("REGION", OptionType::String),
        option("size", OptionType::Enum),
        RunOption {
            values: vec!["a".into()],
            pattern: Some("[".into()),
            ..option("count", OptionType::Number)
        },
        RunOption {
            pattern: Some("(".into()),
            ..option("word", OptionType::String)
        },
        RunOption {
            default: Some(json!("maybe")),
            required: true,
            ..option("flag", OptionType::Boolean)
        },
    ];
    let schedules = vec![crate::Schedule {
        name: "nightly".into(),
        cron: "0 3 * * *".into(),
        options: given(&[("count", json!("many")), ("nope", json!(1))]),
        ..crate::Schedule::default()
    }];
    let mut errs = crate::ValidationErrors::default();
    validate(&options, &schedules, &mut errs);
    let got: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            "spec.options[0].name: must be a letter followed by letters, digits and _ (it becomes FAAS_OPTION_<NAME>), got \"9lives\"".to_owned(),
            "spec.options[2].name: \"REGION\" is also spec.options[1] (names are compared without case: both would be FAAS_OPTION_REGION)".to_owned(),
            "spec.options[3].values: an enum option needs its values".to_owned(),
            "spec.options[4].values: only enum options have values (this one is number)".to_owned(),
            "spec.options[4].pattern: only string options have a pattern (this one is number)".to_owned(),
            "spec.options[5].pattern: does not compile: found open group without closing ')'".to_owned(),
            "spec.options[6].default: must be true or false, got \"maybe\"".to_owned(),
            "spec.options[6].required: an option with a default is never missing: drop required or the default".to_owned(),
            "spec.schedules[0].options.nope: unknown; this function's options are 9lives, Region, REGION, size, count, word, flag".to_owned(),
            "spec.schedules[0].options.count: must be a number, got \"many\"".to_owned(),
            "spec.schedules[0].options.flag: must be true or false, got \"maybe\"".to_owned(),
        ]
    );
}

#[test]
fn a_schedule_must_give_every_required_option_without_default() {
    let options = vec![RunOption {
        required: true,
        ..option("days", OptionType::Number)
    }];
    let schedules = vec![crate::Schedule {
        name: "nightly".into(),
        cron: "0 3 * * *".into(),
        ..crate::Schedule::default()
    }];
    let mut errs = crate::ValidationErrors::default();
    validate(&options, &schedules, &mut errs);
    assert_eq!(
        errs.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["spec.schedules[0].options.days: is required and has no default".to_owned()]
    );
}

#[test]
fn a_run_by_hand_takes_the_named_schedules_values_under_its_own() {
    let mut f = crate::Function::new("report", crate::FunctionSpec::default());
    f.spec.options = declared();
    f.spec.schedules = vec![crate::Schedule {
        name: "nightly".into(),
        cron: "0 3 * * *".into(),
        options: given(&[("days", json!(1)), ("mode", json!("full"))]),
        ..crate::Schedule::default()
    }];
    let mine = given(&[("days", json!("9"))]);
    let run = for_run(&f, Some("nightly"), &mine).expect("valid");
    assert_eq!(run.values()["days"], json!(9));
    assert_eq!(run.values()["mode"], json!("full"));
    // Without the schedule (or with one it does not have), only the defaults are under them.
    let plain = for_run(&f, None, &mine).expect("valid");
    assert_eq!(plain.values()["mode"], json!("delta"));
    assert_eq!(for_run(&f, Some("weekly"), &mine).expect("valid"), plain);
    assert!(
        for_run(&f, None, &BTreeMap::new()).is_err(),
        "days is required"
    );
}
