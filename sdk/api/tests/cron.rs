//! Conformance of `faas_api::cron`: next fire times, catch-up, and rejected expressions.

use faas_api::cron::CronSchedule;
use jiff::Timestamp;
use jiff::tz::TimeZone;

fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("bad timestamp {s:?} in the test table: {e}"))
}

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or_else(|e| panic!("unknown zone {name:?}: {e}"))
}

fn schedule(expr: &str) -> CronSchedule {
    CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr:?} should parse: {e}"))
}

/// `(expression, zone, from, the next fire times after `from`, in order)`. Times are written in
/// the zone's local offset, so the daylight saving rows read as wall-clock times.
#[rustfmt::skip]
const NEXT: &[(&str, &str, &str, &[&str])] = &[
    // Macros.
    ("@yearly", "UTC", "2026-01-01T00:00:00Z", &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"]),
    ("@annually", "UTC", "2026-06-15T12:00:00Z", &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
    ("@monthly", "UTC", "2026-01-31T10:00:00Z", &["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"]),
    // 2026-01-01 is a Thursday.
    ("@weekly", "UTC", "2026-01-01T00:00:00Z", &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z"]),
    ("@daily", "UTC", "2026-01-01T00:00:00Z", &["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"]),
    ("@midnight", "Europe/Paris", "2026-01-01T00:00:00Z", &["2026-01-02T00:00:00+01:00", "2026-01-03T00:00:00+01:00"]),
    ("@hourly", "UTC", "2026-01-01T10:30:00Z", &["2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z"]),
    ("@HOURLY", "UTC", "2026-01-01T10:00:00Z", &["2026-01-01T11:00:00Z"]),
    // 5 fields: day-of-month OR day-of-week when both are restricted.
    ("0 0 13 * FRI", "UTC", "2026-01-01T00:00:00Z", &["2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z"]),
    ("0 0 13 * 5", "UTC", "2026-02-10T00:00:00Z", &["2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z"]),
    ("0 0 1-7 * SUN", "UTC", "2026-01-06T12:00:00Z", &["2026-01-07T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z", "2026-01-25T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"]),
    // A field starting with `*` is unrestricted (Vixie): odd days that are Mondays.
    ("0 0 */2 * MON", "UTC", "2026-01-01T00:00:00Z", &["2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z", "2026-02-09T00:00:00Z", "2026-02-23T00:00:00Z"]),
    ("0 0 ? * 1", "UTC", "2026-01-01T00:00:00Z", &["2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z"]),
    ("0 0 1 * ?", "UTC", "2026-01-01T00:00:00Z", &["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]),
    ("0 12 * * MON-FRI", "UTC", "2026-01-02T13:00:00Z", &["2026-01-05T12:00:00Z", "2026-01-06T12:00:00Z", "2026-01-07T12:00:00Z"]),
    // Steps, ranges, lists, names.
    ("*/15 * * * *", "UTC", "2026-01-01T00:07:30Z", &["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z"]),
    ("5/10 * * * *", "UTC", "2026-01-01T00:00:00Z", &["2026-01-01T00:05:00Z", "2026-01-01T00:15:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:35:00Z", "2026-01-01T00:45:00Z", "2026-01-01T00:55:00Z", "2026-01-01T01:05:00Z"]),
    ("1-30/7 * * * *", "UTC", "2026-01-01T00:00:00Z", &["2026-01-01T00:01:00Z", "2026-01-01T00:08:00Z", "2026-01-01T00:15:00Z", "2026-01-01T00:22:00Z", "2026-01-01T00:29:00Z", "2026-01-01T01:01:00Z"]),
    ("0 9-17/4 * * *", "UTC", "2026-01-01T10:00:00Z", &["2026-01-01T13:00:00Z", "2026-01-01T17:00:00Z", "2026-01-02T09:00:00Z"]),
    ("15,45 8,20 * * *", "UTC", "2026-01-01T09:00:00Z", &["2026-01-01T20:15:00Z", "2026-01-01T20:45:00Z", "2026-01-02T08:15:00Z"]),
    ("0 0 1 jan,Jul *", "UTC", "2026-01-01T00:00:00Z", &["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"]),
    ("59 23 31 12 *", "UTC", "2026-01-01T00:00:00Z", &["2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"]),
    // Day-of-week 7 and 0 are Sunday in the 5-field form.
    ("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z"]),
    ("0 0 * * sun", "UTC", "2026-01-05T00:00:00Z", &["2026-01-11T00:00:00Z"]),
    ("0 0 * * 5-7", "UTC", "2026-01-01T00:00:00Z", &["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z"]),
    // February 29th.
    ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"]),
    // 6 fields, seconds first.
    ("*/20 * * * * *", "UTC", "2026-01-01T00:00:00Z", &["2026-01-01T00:00:20Z", "2026-01-01T00:00:40Z", "2026-01-01T00:01:00Z"]),
    ("30 15 10 * * ?", "UTC", "2026-01-01T00:00:00Z", &["2026-01-01T10:15:30Z", "2026-01-02T10:15:30Z"]),
    ("0 0 12 * * ?", "UTC", "2026-01-01T12:00:00Z", &["2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z"]),
    ("0 0 12 ? * WED", "UTC", "2026-01-01T00:00:00Z", &["2026-01-07T12:00:00Z", "2026-01-14T12:00:00Z", "2026-01-21T12:00:00Z"]),
    // Quartz day-of-week numbering: 1 = SUN .. 7 = SAT, so 2-6 is Monday to Friday.
    ("0 0 12 ? * 2-6", "UTC", "2026-01-02T13:00:00Z", &["2026-01-05T12:00:00Z", "2026-01-06T12:00:00Z", "2026-01-07T12:00:00Z", "2026-01-08T12:00:00Z", "2026-01-09T12:00:00Z", "2026-01-12T12:00:00Z"]),
    ("0 0 12 ? * 1", "UTC", "2026-01-01T00:00:00Z", &["2026-01-04T12:00:00Z", "2026-01-11T12:00:00Z"]),
    ("0 0 12 ? * 7", "UTC", "2026-01-01T00:00:00Z", &["2026-01-03T12:00:00Z", "2026-01-10T12:00:00Z"]),
    ("0 0 12 ? * SUN", "UTC", "2026-01-01T00:00:00Z", &["2026-01-04T12:00:00Z", "2026-01-11T12:00:00Z"]),
    ("0 0 12 ? * */3", "UTC", "2026-01-01T00:00:00Z", &["2026-01-03T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-07T12:00:00Z", "2026-01-10T12:00:00Z"]),
    // Quartz with both day fields restricted: OR, like Vixie.
    ("0 0 12 13 * FRI", "UTC", "2026-01-01T00:00:00Z", &["2026-01-02T12:00:00Z", "2026-01-09T12:00:00Z", "2026-01-13T12:00:00Z", "2026-01-16T12:00:00Z"]),
    // L, LW, nW.
    ("0 15 10 L * ?", "UTC", "2026-01-01T00:00:00Z", &["2026-01-31T10:15:00Z", "2026-02-28T10:15:00Z", "2026-03-31T10:15:00Z", "2026-04-30T10:15:00Z"]),
    ("0 15 10 L 2 ?", "UTC", "2027-03-01T00:00:00Z", &["2028-02-29T10:15:00Z", "2029-02-28T10:15:00Z"]),
    ("0 15 10 LW * ?", "UTC", "2026-01-01T00:00:00Z", &["2026-01-30T10:15:00Z", "2026-02-27T10:15:00Z", "2026-03-31T10:15:00Z", "2026-04-30T10:15:00Z", "2026-05-29T10:15:00Z"]),
    ("0 0 0 15W * ?", "UTC", "2026-01-01T00:00:00Z", &["2026-01-15T00:00:00Z", "2026-02-16T00:00:00Z", "2026-03-16T00:00:00Z", "2026-04-15T00:00:00Z"]),
    ("0 0 0 15W 8 ?", "UTC", "2026-01-01T00:00:00Z", &["2026-08-14T00:00:00Z"]),
    // 2026-08-01 is a Saturday: Monday the 3rd, not Friday July 31st.
    ("0 0 0 1W * ?", "UTC", "2026-07-15T00:00:00Z", &["2026-08-03T00:00:00Z", "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z", "2026-11-02T00:00:00Z"]),
    // 2026-05-31 is a Sunday: Friday the 29th; 30-day months have no 31st.
    ("0 0 0 31W * ?", "UTC", "2026-05-01T00:00:00Z", &["2026-05-29T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z", "2026-10-30T00:00:00Z", "2026-12-31T00:00:00Z"]),
    // nL and n#k in Quartz numbering: 6 = Friday, 5 = Thursday, 2 = Monday.
    ("0 15 10 ? * 6L", "UTC", "2026-01-01T00:00:00Z", &["2026-01-30T10:15:00Z", "2026-02-27T10:15:00Z", "2026-03-27T10:15:00Z"]),
    ("0 15 10 ? * FRIL", "UTC", "2026-01-01T00:00:00Z", &["2026-01-30T10:15:00Z", "2026-02-27T10:15:00Z"]),
    ("0 15 10 ? * 5L", "UTC", "2026-01-01T00:00:00Z", &["2026-01-29T10:15:00Z", "2026-02-26T10:15:00Z", "2026-03-26T10:15:00Z"]),
    ("0 15 10 ? * 6#3", "UTC", "2026-01-01T00:00:00Z", &["2026-01-16T10:15:00Z", "2026-02-20T10:15:00Z", "2026-03-20T10:15:00Z"]),
    ("0 15 10 ? * fri#1", "UTC", "2026-01-01T00:00:00Z", &["2026-01-02T10:15:00Z", "2026-02-06T10:15:00Z"]),
    ("0 0 0 ? * 2#5", "UTC", "2026-01-01T00:00:00Z", &["2026-03-30T00:00:00Z", "2026-06-29T00:00:00Z", "2026-08-31T00:00:00Z", "2026-11-30T00:00:00Z"]),
    // A February with five Mondays: a leap year starting on a Thursday; 40 years apart over 2100.
    ("0 0 0 ? 2 2#5", "UTC", "2026-01-01T00:00:00Z", &["2044-02-29T00:00:00Z", "2072-02-29T00:00:00Z", "2112-02-29T00:00:00Z"]),
    ("0 0 0 29 2 ?", "UTC", "2096-03-01T00:00:00Z", &["2104-02-29T00:00:00Z"]),
    // 7 fields with a year.
    ("0 0 12 * * ? 2030", "UTC", "2026-01-01T00:00:00Z", &["2030-01-01T12:00:00Z", "2030-01-02T12:00:00Z"]),
    ("0 0 0 1 1 ? */50", "UTC", "2026-01-01T00:00:00Z", &["2070-01-01T00:00:00Z", "2120-01-01T00:00:00Z", "2170-01-01T00:00:00Z"]),
    ("0 0 0 1 1 ? 2199", "UTC", "2026-01-01T00:00:00Z", &["2199-01-01T00:00:00Z"]),
    // Europe/Paris, 2026-03-29: 02:00 CET -> 03:00 CEST. A time in the gap fires at 03:00 CEST.
    ("30 2 * * *", "Europe/Paris", "2026-03-27T12:00:00Z", &["2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]),
    ("0 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", &["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"]),
    ("0 30 2 * * ?", "Europe/Paris", "2026-03-28T12:00:00Z", &["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]),
    ("0 * * * *", "Europe/Paris", "2026-03-29T00:00:00+01:00", &["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"]),
    // The gap's 02:00-02:45 and 03:00 fire once, at 03:00 CEST.
    ("*/15 * * * *", "Europe/Paris", "2026-03-29T01:40:00+01:00", &["2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"]),
    // Europe/Paris, 2026-10-25: 03:00 CEST -> 02:00 CET. A repeated time fires once, the first time.
    ("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
    ("0 * * * *", "Europe/Paris", "2026-10-25T01:00:00+02:00", &["2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00"]),
    ("*/30 * * * *", "Europe/Paris", "2026-10-25T02:00:00+02:00", &["2026-10-25T02:30:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-25T03:30:00+01:00"]),
    // Starting inside the second pass: the repeated wall-clock times already fired.
    ("*/30 * * * *", "Europe/Paris", "2026-10-25T02:10:00+01:00", &["2026-10-25T03:00:00+01:00"]),
    // America/New_York, 2026-03-08: 02:00 EST -> 03:00 EDT.
    ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]),
    ("0 * * * *", "America/New_York", "2026-03-08T00:30:00-05:00", &["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]),
    // America/New_York, 2026-11-01: 02:00 EDT -> 01:00 EST.
    ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),
    ("30 2 * * *", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"]),
    ("0 * * * *", "America/New_York", "2026-11-01T00:30:00-04:00", &["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"]),
    ("0 30 1 * * ?", "America/New_York", "2026-11-01T01:45:00-05:00", &["2026-11-02T01:30:00-05:00"]),
    ("*/30 * * * *", "America/New_York", "2026-11-01T01:10:00-05:00", &["2026-11-01T02:00:00-05:00", "2026-11-01T02:30:00-05:00"]),
];

#[test]
fn next_fire_times() {
    assert!(
        NEXT.len() >= 40,
        "the conformance table has {} rows",
        NEXT.len()
    );
    let mut failures = Vec::new();
    for &(expr, tz, from, want) in NEXT {
        let s = schedule(expr);
        let tz = zone(tz);
        let want: Vec<Timestamp> = want.iter().map(|t| ts(t)).collect();
        let got: Vec<Timestamp> = s.upcoming(ts(from), &tz).take(want.len()).collect();
        if got != want {
            failures.push(format!("{expr:?} from {from}: got {got:?}, want {want:?}"));
        }
        // next_after agrees with the iterator.
        assert_eq!(
            s.next_after(ts(from), &tz),
            want.first().copied(),
            "{expr:?}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn year_fields_run_out() {
    let utc = TimeZone::UTC;
    let s = schedule("0 0 0 1 1 ? 2027,2029-2030");
    let all: Vec<Timestamp> = s.upcoming(ts("2026-01-01T00:00:00Z"), &utc).collect();
    assert_eq!(
        all,
        [
            ts("2027-01-01T00:00:00Z"),
            ts("2029-01-01T00:00:00Z"),
            ts("2030-01-01T00:00:00Z")
        ]
    );
    let past = schedule("* * * * * ? 1999");
    assert_eq!(past.next_after(ts("2026-01-01T00:00:00Z"), &utc), None);
    assert_eq!(
        past.latest_between(ts("1999-12-31T23:59:58Z"), ts("2026-01-01T00:00:00Z"), &utc),
        Some(ts("1999-12-31T23:59:59Z"))
    );
}

/// `(expression, zone, since, at, latest fire time in (since, at])`.
#[rustfmt::skip]
const LATEST: &[(&str, &str, &str, &str, Option<&str>)] = &[
    ("0 * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T05:30:00Z", Some("2026-01-01T05:00:00Z")),
    ("0 3 * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-05T02:00:00Z", Some("2026-01-04T03:00:00Z")),
    // `at` itself counts, `since` does not.
    ("0 3 * * *", "UTC", "2026-01-04T03:00:00Z", "2026-01-05T03:00:00Z", Some("2026-01-05T03:00:00Z")),
    ("0 3 * * *", "UTC", "2026-01-05T03:00:00Z", "2026-01-05T04:00:00Z", None),
    ("0 3 * * *", "UTC", "2026-01-05T04:00:00Z", "2026-01-05T03:00:00Z", None),
    ("*/10 * * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:00:35.5Z", Some("2026-01-01T00:00:30Z")),
    ("0 0 29 2 *", "UTC", "2020-03-01T00:00:00Z", "2026-01-01T00:00:00Z", Some("2024-02-29T00:00:00Z")),
    ("0 0 29 2 *", "UTC", "2024-03-01T00:00:00Z", "2027-01-01T00:00:00Z", None),
    ("0 0 0 ? * 6L", "UTC", "2025-12-01T00:00:00Z", "2026-02-15T00:00:00Z", Some("2026-01-30T00:00:00Z")),
    ("0 0 13 * FRI", "UTC", "2026-01-01T00:00:00Z", "2026-01-15T00:00:00Z", Some("2026-01-13T00:00:00Z")),
    ("@monthly", "America/New_York", "2026-01-01T00:00:00Z", "2026-03-20T00:00:00Z", Some("2026-03-01T00:00:00-05:00")),
    ("0 0 0 1 1 ? 2027", "UTC", "2020-01-01T00:00:00Z", "2026-06-01T00:00:00Z", None),
    // Daylight saving: the gap time fired at 03:00 CEST; the repeated time fired the first time.
    ("30 2 * * *", "Europe/Paris", "2026-03-29T00:00:00Z", "2026-03-29T01:30:00Z", Some("2026-03-29T03:00:00+02:00")),
    ("30 2 * * *", "Europe/Paris", "2026-03-29T00:00:00Z", "2026-03-29T00:59:59Z", None),
    ("30 2 * * *", "Europe/Paris", "2026-10-24T00:00:00Z", "2026-10-25T02:45:00+01:00", Some("2026-10-25T02:30:00+02:00")),
    ("*/30 * * * *", "Europe/Paris", "2026-10-24T00:00:00Z", "2026-10-25T02:45:00+01:00", Some("2026-10-25T02:30:00+02:00")),
    ("*/30 * * * *", "Europe/Paris", "2026-10-24T00:00:00Z", "2026-10-25T02:45:00+02:00", Some("2026-10-25T02:30:00+02:00")),
    ("0 * * * *", "America/New_York", "2026-11-01T00:00:00Z", "2026-11-01T01:59:00-05:00", Some("2026-11-01T01:00:00-04:00")),
    ("0 * * * *", "America/New_York", "2026-11-01T00:00:00Z", "2026-11-01T02:00:00-05:00", Some("2026-11-01T02:00:00-05:00")),
];

#[test]
fn latest_between_for_catch_up() {
    let mut failures = Vec::new();
    for &(expr, tz, since, at, want) in LATEST {
        let got = schedule(expr).latest_between(ts(since), ts(at), &zone(tz));
        let want = want.map(ts);
        if got != want {
            failures.push(format!(
                "{expr:?} in ({since}, {at}]: got {got:?}, want {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Forward and backward searches agree: nothing fires between a time and its next fire time.
#[test]
fn next_and_latest_agree() {
    let exprs = [
        "* * * * *",
        "*/7 * * * * *",
        "0 */5 * * *",
        "30 2 * * *",
        "0 * * * *",
        "*/15 * * * *",
        "0 0 13 * FRI",
        "0 0 0 LW * ?",
        "0 0 0 ? * 6#3",
        "0 0 29 2 *",
    ];
    let starts = [
        "2026-01-01T00:00:00Z",
        "2026-03-29T00:59:59Z",
        "2026-03-29T01:00:00Z",
        "2026-03-08T06:59:30Z",
        "2026-10-25T00:30:00Z",
        "2026-10-25T01:30:00Z",
        "2026-11-01T05:45:00Z",
        "2026-11-01T06:15:10Z",
    ];
    for tz in ["UTC", "Europe/Paris", "America/New_York"] {
        let tz = zone(tz);
        for expr in exprs {
            let s = schedule(expr);
            for start in starts {
                let from = ts(start);
                let mut prev = from;
                for next in s.upcoming(from, &tz).take(30) {
                    assert!(next > prev, "{expr:?} from {start}: {next} after {prev}");
                    assert_eq!(
                        s.latest_between(prev, next, &tz),
                        Some(next),
                        "{expr:?}: latest in ({prev}, {next}]"
                    );
                    let just_before = next - jiff::SignedDuration::from_secs(1);
                    if just_before > prev {
                        assert_eq!(
                            s.latest_between(prev, just_before, &tz),
                            None,
                            "{expr:?}: nothing in ({prev}, {just_before}]"
                        );
                    }
                    prev = next;
                }
            }
        }
    }
}

#[test]
fn has_seconds_and_display() {
    for (expr, seconds) in [
        ("* * * * *", false),
        ("@hourly", false),
        ("0 * * * * *", true),
        ("0 0 12 * * ? 2030", true),
    ] {
        let s = schedule(expr);
        assert_eq!(s.has_seconds(), seconds, "{expr:?}");
        assert_eq!(s.to_string(), expr);
        assert_eq!(s.as_str(), expr);
    }
    let parsed: CronSchedule = " 0 3 * * * ".parse().expect("parses");
    assert_eq!(parsed.as_str(), "0 3 * * *");
}

/// `(expression, a part of the error)`.
const INVALID: &[(&str, &str)] = &[
    ("", "must not be empty"),
    ("* * * *", "\"* * * *\": expected 5, 6 or 7 fields, got 4"),
    (
        "61 * * * *",
        "\"61 * * * *\": minute field \"61\" out of range 0-59",
    ),
    ("* 24 * * *", "hour field \"24\" out of range 0-23"),
    ("* * * 13 *", "month field \"13\" out of range 1-12"),
    ("* * * * 8", "day-of-week field \"8\" out of range 0-7"),
    (
        "5-3 * * * *",
        "minute field \"5-3\" is a backwards range (5 > 3)",
    ),
    (
        "*/0 * * * *",
        "minute field \"*/0\" has step 0 (expected 1-60)",
    ),
    ("* * * ? *", "month field \"?\" is not allowed here"),
    ("@reboot", "\"@reboot\": unknown macro"),
    (
        "0 0 L * *",
        "day-of-month field \"L\" needs the 6 or 7-field form",
    ),
    (
        "0 0 * * 5#2",
        "day-of-week field \"5#2\" needs the 6 or 7-field form",
    ),
    (
        "0 0 0 L,1 * ?",
        "day-of-month field \"L,1\": \"L\" cannot be combined",
    ),
    (
        "0 0 0 ? * 5#6",
        "day-of-week field \"5#6\" has an invalid occurrence",
    ),
    ("60 * * * * *", "second field \"60\" out of range 0-59"),
    // Quartz day-of-week is 1-7 (1 = SUN).
    (
        "0 0 0 ? * 0",
        "\"0 0 0 ? * 0\": day-of-week field \"0\" out of range 1-7",
    ),
    (
        "0 0 0 ? * 0-3",
        "day-of-week field \"0-3\": \"0\" out of range 1-7",
    ),
    (
        "0 0 0 ? * 0L",
        "day-of-week field \"0L\": \"0\" out of range 1-7",
    ),
    (
        "0 0 0 ? * 0#2",
        "day-of-week field \"0#2\": \"0\" out of range 1-7",
    ),
    (
        "0 0 0 ? * */8",
        "day-of-week field \"*/8\" has step 8 (expected 1-7)",
    ),
    (
        "0 0 12 * * ? 1969",
        "year field \"1969\" out of range 1970-2199",
    ),
    (
        "0 0 12 * * ? 2200",
        "year field \"2200\" out of range 1970-2199",
    ),
    // Days that never occur.
    (
        "0 0 30 2 *",
        "\"0 0 30 2 *\": never fires (no date matches day-of-month \"30\", month \"2\"",
    ),
    ("0 0 31 4,6,9,11 *", "never fires"),
    ("0 0 0 30W 2 ?", "never fires"),
    ("0 0 0 29 2 ? 2027", "year \"2027\")"),
    ("0 0 0 ? 2 2#5 2027", "never fires"),
];

#[test]
fn invalid_expressions() {
    for &(expr, want) in INVALID {
        match CronSchedule::parse(expr) {
            Ok(_) => panic!("{expr:?} should be rejected"),
            Err(got) => assert!(
                got.to_string().contains(want),
                "{expr:?}: error {got:?} should contain {want:?}"
            ),
        }
    }
}
