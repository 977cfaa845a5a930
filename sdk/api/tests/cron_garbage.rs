//! `faas_api::cron` on expressions nobody wrote by hand: random strings of cron's own tokens
//! (and some that are not). Parsing never panics; what parses has, in every zone, either no
//! next fire time or one strictly after the start, which `latest_between` finds again.
//! Seeded: a failure prints the seed and the expression.

use faas_api::cron::CronSchedule;
use faas_api::seeded::Seeded;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

const TOKENS: &[&str] = &[
    "*",
    "?",
    "/",
    "-",
    ",",
    " ",
    " ",
    " ",
    "L",
    "W",
    "#",
    "LW",
    "0",
    "1",
    "2",
    "5",
    "7",
    "12",
    "15",
    "29",
    "30",
    "31",
    "59",
    "60",
    "99",
    "1970",
    "2099",
    "2200",
    "MON",
    "fri",
    "JAN",
    "dec",
    "@daily",
    "@hourly",
    "@yearly",
    "@every",
    "\t",
    "é",
    "\0",
    "-1",
    "*/0",
    "999999999999",
];

/// Tokens that make up one field.
const FIELD_TOKENS: &[&str] = &[
    "*", "*", "?", "/2", "/7", "-", ",", "L", "W", "#2", "#5", "0", "1", "3", "6", "7", "12", "23",
    "29", "31", "59", "MON", "SAT", "FEB", "2027",
];

#[test]
fn random_token_strings_never_panic_and_next_is_always_later() {
    let seed = Seeded::seed_from_env("CRON_GARBAGE_SEED", 0xc0ffee);
    let mut rng = Seeded::new(seed);
    let zones: Vec<TimeZone> = ["UTC", "Europe/Paris", "Australia/Lord_Howe"]
        .iter()
        .map(|z| TimeZone::get(z).expect("a zone"))
        .collect();
    let start: Timestamp = "2026-03-29T00:30:00Z".parse().expect("a timestamp");
    let mut parsed = 0;
    for case in 0..200_000 {
        if parsed == 1_000 {
            break;
        }
        // Half free token soup, half shaped like fields (5 to 7 of 1 to 3 tokens each).
        let expr: String = if rng.chance(50) {
            (0..rng.range(1, 14)).map(|_| rng.pick(TOKENS)).collect()
        } else {
            (0..rng.range(5, 7))
                .map(|_| {
                    (0..rng.range(1, 3))
                        .map(|_| rng.pick(FIELD_TOKENS))
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let Ok(schedule) = CronSchedule::parse(&expr) else {
            continue;
        };
        parsed += 1;
        for tz in &zones {
            let from = start + i64::from(rng.range(0, 400 * 24)).hours();
            if let Some(next) = schedule.next_after(from, tz) {
                assert!(
                    next > from,
                    "case {case} (seed {seed}): {expr:?} gave {next} after {from}"
                );
                assert_eq!(
                    schedule.latest_between(from, next, tz),
                    Some(next),
                    "case {case} (seed {seed}): {expr:?} after {from}"
                );
            }
        }
    }
    // Enough of them are valid expressions for the second half to mean something.
    assert!(parsed >= 300, "only {parsed} parsed");
}
