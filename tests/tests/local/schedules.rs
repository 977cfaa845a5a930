//! `faas schedules`: checking cron expressions before deploying them.

use faas_e2e::*;

#[test]
fn next_fire_times_are_shown_in_the_schedule_zone() {
    let out = std::process::Command::new(faas_bin())
        .args([
            "schedules",
            "--cron",
            "30 2 * * *",
            "--tz",
            "Europe/Paris",
            "-c",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let times: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(times.len(), 3, "{text}");
    assert!(
        times
            .iter()
            .all(|t| t.contains("02:30:00") || t.contains("03:00:00")),
        "{text}"
    );
    assert!(
        times
            .iter()
            .all(|t| t.contains("CET") || t.contains("CEST")),
        "{text}"
    );
}

#[test]
fn bad_expressions_and_zones_are_explained() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(faas_bin())
            .arg("schedules")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--cron", "61 * * * *"]);
    assert!(err.contains("61") && err.contains("0-59"), "{err}");
    let err = run(&["--cron", "* * * *"]);
    assert!(err.contains("expected 5, 6 or 7 fields, got 4"), "{err}");
    let err = run(&["--cron", "@daily", "--tz", "Mars/Olympus"]);
    assert!(err.contains("unknown time zone"), "{err}");
    // The zone is blamed on the flag that gave it, not on the expression.
    assert!(err.contains("--tz: unknown time zone"), "{err}");
    assert!(!err.contains("--cron"), "{err}");
}
