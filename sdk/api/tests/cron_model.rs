//! `faas_api::cron` against a brute-force model: random 5-field expressions, zones with
//! daylight saving (including a 30-minute shift and the southern hemisphere) and start times
//! near their transitions. The model walks real time minute by minute and decides each minute
//! from the rules in the module's documentation alone (fields by set membership, Vixie's
//! day-of-month/day-of-week rule, a wall-clock time in a gap fires at the first instant after
//! it, one in a fold at its first occurrence only); the engine's next fire times must be the
//! model's, in order, within the horizon.
//!
//! Seeded and repeatable: a failure prints the seed, the expression, the zone and the start.
//! `CRON_MODEL_CASES` raises the number of cases (the suite runs 400).

use std::collections::BTreeSet;

use faas_api::cron::CronSchedule;
use faas_api::seeded::Seeded as Rng;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// How far the model looks after each start (minutes).
const HORIZON_MINUTES: i64 = 4 * 24 * 60;
/// Fire times compared per case.
const FIRES: usize = 6;

/// Zones with and without daylight saving: a 30-minute shift (Lord Howe), the southern
/// hemisphere, a half-hour offset without DST, and the usual ones.
const ZONES: &[&str] = &[
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Europe/London",
];

/// One field as text and as the set of values it matches.
struct Field {
    text: String,
    values: BTreeSet<u32>,
}

/// One term of a field over `lo..=hi`: `*`, `v`, `a-b`, `*/n`, `a-b/n` or `a/n`.
fn term(rng: &mut Rng, lo: u32, hi: u32) -> (String, BTreeSet<u32>) {
    let step = |from: u32, to: u32, n: u32| (from..=to).step_by(n as usize).collect();
    match rng.range(0, 5) {
        0 => ("*".into(), (lo..=hi).collect()),
        1 => {
            let v = rng.range(lo, hi);
            (v.to_string(), [v].into())
        }
        2 => {
            let a = rng.range(lo, hi);
            let b = rng.range(a, hi);
            (format!("{a}-{b}"), (a..=b).collect())
        }
        3 => {
            let n = rng.range(2, ((hi - lo) / 2).max(2));
            (format!("*/{n}"), step(lo, hi, n))
        }
        4 => {
            let a = rng.range(lo, hi);
            let b = rng.range(a, hi);
            let n = rng.range(1, 5);
            (format!("{a}-{b}/{n}"), step(a, b, n))
        }
        _ => {
            let a = rng.range(lo, hi);
            let n = rng.range(1, 7);
            (format!("{a}/{n}"), step(a, hi, n))
        }
    }
}

/// A field of one to three terms (a comma list), or sometimes `*`.
fn field(rng: &mut Rng, lo: u32, hi: u32, star_percent: u32) -> Field {
    if rng.chance(star_percent) {
        return Field {
            text: "*".into(),
            values: (lo..=hi).collect(),
        };
    }
    let mut texts = Vec::new();
    let mut values = BTreeSet::new();
    for _ in 0..rng.range(1, 3) {
        let (t, v) = term(rng, lo, hi);
        texts.push(t);
        values.extend(v);
    }
    Field {
        text: texts.join(","),
        values,
    }
}

/// A random expression and the model of it.
struct Model {
    text: String,
    minute: BTreeSet<u32>,
    hour: BTreeSet<u32>,
    dom: BTreeSet<u32>,
    month: BTreeSet<u32>,
    /// 0 = Sunday (7 folded into 0).
    dow: BTreeSet<u32>,
    /// Vixie: a day field written as `*...` or `?` is unrestricted.
    dom_restricted: bool,
    dow_restricted: bool,
}

fn model(rng: &mut Rng) -> Model {
    // Frequent enough to fire within the horizon most of the time.
    let minute = field(rng, 0, 59, 20);
    let hour = field(rng, 0, 23, 35);
    let dom = if rng.chance(10) {
        Field {
            text: "?".into(),
            values: (1..=31).collect(),
        }
    } else {
        field(rng, 1, 31, 55)
    };
    let month = field(rng, 1, 12, 70);
    let dow = field(rng, 0, 7, 55);
    let text = format!(
        "{} {} {} {} {}",
        minute.text, hour.text, dom.text, month.text, dow.text
    );
    let unrestricted = |f: &Field| f.text == "?" || f.text.starts_with('*');
    Model {
        dom_restricted: !unrestricted(&dom),
        dow_restricted: !unrestricted(&dow),
        text,
        minute: minute.values,
        hour: hour.values,
        dom: dom.values,
        month: month.values,
        dow: dow.values.into_iter().map(|d| d % 7).collect(),
    }
}

impl Model {
    fn matches(&self, wall: DateTime) -> bool {
        let day = || {
            let dom = self.dom.contains(&(wall.day() as u32));
            let dow = self
                .dow
                .contains(&(wall.weekday().to_sunday_zero_offset() as u32));
            if self.dom_restricted && self.dow_restricted {
                dom || dow
            } else {
                dom && dow
            }
        };
        wall.second() == 0
            && self.minute.contains(&(wall.minute() as u32))
            && self.hour.contains(&(wall.hour() as u32))
            && self.month.contains(&(wall.month() as u32))
            && day()
    }

    /// Whether the real minute `t` fires: its wall-clock time matches and this is that time's
    /// first occurrence, or `t` is the first instant after a gap holding a matching time.
    fn fires_at(&self, t: Timestamp, tz: &TimeZone) -> bool {
        let wall = tz.to_datetime(t);
        let first = tz
            .to_ambiguous_timestamp(wall)
            .earlier()
            .is_ok_and(|earliest| earliest == t);
        if first && self.matches(wall) {
            return true;
        }
        // A gap just before `t`: the wall-clock minutes it skipped.
        let before = tz.to_datetime(t - 1.minute());
        let mut skipped = before + 1.minute();
        while skipped < wall {
            if self.matches(skipped) {
                return true;
            }
            skipped += 1.minute();
        }
        false
    }

    /// The first `FIRES` fire times after `start` within the horizon, minute by minute.
    fn next_fires(&self, start: Timestamp, tz: &TimeZone) -> Vec<Timestamp> {
        // The first whole minute strictly after `start`.
        let secs = start.as_second();
        let mut t = Timestamp::from_second(secs - secs.rem_euclid(60) + 60).expect("in range");
        let end = start + HORIZON_MINUTES.minutes();
        let mut out = Vec::new();
        while t <= end && out.len() < FIRES {
            if self.fires_at(t, tz) {
                out.push(t);
            }
            t += 1.minute();
        }
        out
    }
}

/// A start near one of the zone's transitions in 2024-2030 half of the time, else anywhere in
/// those years; at any second.
fn start(rng: &mut Rng, tz: &TimeZone) -> Timestamp {
    let base = Timestamp::from_second(1_704_067_200).expect("2024-01-01"); // 2024-01-01T00:00Z
    let anywhere = base + i64::from(rng.range(0, 7 * 365 * 24)).hours();
    let around = if rng.chance(50) {
        tz.following(anywhere)
            .next()
            .map(|transition| transition.timestamp())
    } else {
        None
    };
    let pivot = around.unwrap_or(anywhere);
    let offset = i64::from(rng.range(0, 3 * 24 * 3600)) - 2 * 24 * 3600;
    pivot + offset.seconds()
}

#[test]
fn next_fire_times_match_a_minute_by_minute_model() {
    let seed = Rng::seed_from_env("CRON_MODEL_SEED", 0x5eed_c0de);
    let cases: usize = std::env::var("CRON_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let mut rng = Rng::new(seed);
    let zones: Vec<TimeZone> = ZONES
        .iter()
        .map(|z| TimeZone::get(z).unwrap_or_else(|e| panic!("zone {z}: {e}")))
        .collect();
    let (mut compared, mut fired, mut rejected) = (0, 0, 0);
    for case in 0..cases {
        let m = model(&mut rng);
        let zone_index = rng.range(0, ZONES.len() as u32 - 1) as usize;
        let tz = &zones[zone_index];
        let from = start(&mut rng, tz);
        let Ok(schedule) = CronSchedule::parse(&m.text) else {
            // Refused only when its days can never occur (`30 2`: February the 30th); counted,
            // and bounded below.
            rejected += 1;
            continue;
        };
        let expected = m.next_fires(from, tz);
        let end = from + HORIZON_MINUTES.minutes();
        let got: Vec<Timestamp> = schedule
            .upcoming(from, tz)
            .take_while(|t| *t <= end)
            .take(FIRES)
            .collect();
        assert_eq!(
            got, expected,
            "case {case} (seed {seed}): {:?} in {} after {from}",
            m.text, ZONES[zone_index]
        );
        compared += 1;
        fired += usize::from(!expected.is_empty());
    }
    // The generator must keep producing useful cases.
    assert!(compared >= cases * 9 / 10, "{rejected} of {cases} rejected");
    assert!(fired >= compared / 2, "only {fired} of {compared} fired");
}
