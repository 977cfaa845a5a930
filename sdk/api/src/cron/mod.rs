//! Cron expressions: what they mean, and when they fire.
//!
//! # Forms
//!
//! - **5 fields**, Kubernetes CronJob / Vixie cron: `minute hour day-of-month month day-of-week`.
//!   Day-of-week is 0-7, both 0 and 7 meaning Sunday (`SUN`-`SAT` = 0-6). `?` means `*`.
//!   Fires at second 0.
//! - **6 or 7 fields**, Quartz / Rundeck: `second minute hour day-of-month month day-of-week
//!   [year]`. **Day-of-week is 1-7 with 1 = Sunday** (`SUN` = 1 .. `SAT` = 7, so `MON-FRI` is
//!   `2-6`, `6L` the last Friday and `6#3` the third Friday); 0 is rejected. Day-of-month also
//!   takes `L` (last day), `LW` (last weekday) and `nW` (the weekday nearest the n-th, never
//!   leaving the month: `1W` on a Saturday is Monday the 3rd, `31W` on a Sunday is Friday the
//!   29th, and `nW` in a month shorter than n never matches); day-of-week takes `nL` (last such
//!   weekday of the month) and `n#k` (k-th such weekday, k = 1-5). Year is 1970-2199.
//! - **Macros**: `@yearly` = `@annually` = `0 0 1 1 *`, `@monthly` = `0 0 1 * *`, `@weekly` =
//!   `0 0 * * 0`, `@daily` = `@midnight` = `0 0 * * *`, `@hourly` = `0 * * * *`.
//!
//! Every field takes `*`, `v`, `a-b`, `*/n`, `a-b/n`, `a/n` (from `a` to the end of the range)
//! and comma lists of these; months `JAN`-`DEC` and days `SUN`-`SAT` in any case.
//!
//! # Day-of-month and day-of-week
//!
//! One rule for every form, Vixie's: a day field is *unrestricted* when it is `?` or starts with
//! `*` (so `*/2` counts as unrestricted, exactly as in Vixie cron and Kubernetes). If either day
//! field is unrestricted, a day must match both, which for a plain `*` or `?` means just the
//! other one. If both are restricted, a day matching either fires: `0 0 13 * FRI` fires on
//! every 13th and on every Friday. Quartz requires `?` in one of the two; here `*` is accepted
//! as well (same meaning), and when both are restricted the Quartz form uses this OR too
//! (Quartz itself rejects that). An expression whose days can never occur (`0 0 30 2 *`,
//! `0 0 0 29 2 ? 2027`) is rejected by [`CronSchedule::parse`].
//!
//! # Time zones and daylight saving
//!
//! Fields are matched against the wall-clock time of the time zone, and each matching
//! wall-clock time fires once:
//!
//! - a wall-clock time that does not exist (spring-forward gap) fires at the first instant after
//!   the gap: `30 2 * * *` fires at 03:00 CEST on 2026-03-29 in Europe/Paris. Several times in
//!   the same gap (`*/15 * * * *`) and the wall-clock time right after it fire once together;
//! - a wall-clock time that happens twice (fall-back fold) fires once, at its first occurrence:
//!   `30 2 * * *` fires at 02:30 CEST (00:30Z) on 2026-10-25 in Europe/Paris and not at 02:30
//!   CET. This holds for every schedule, so `0 * * * *` fires at 02:00 CEST then 03:00 CET (two
//!   real hours apart), and a schedule firing every minute or second is quiet during the second
//!   pass of the repeated hour. (Vixie cron and some libraries run such "interval" schedules
//!   again in the repeated hour; a wall-clock time firing twice would break "runs once".)
//!
//! # Search
//!
//! The search walks wall-clock time by field (a non-matching year, month, day, hour or minute
//! is skipped whole), so finding `0 0 29 2 *` or `0 0 0 ? 2 2#5` (a February with five Mondays,
//! every 28 years or so) costs a few thousand steps at most. Since `parse` rejects expressions
//! that never fire, the next fire time exists unless a year field ran out; the search still
//! gives up after 400 years (one Gregorian cycle, after which every calendar repeats).

mod calendar;
mod error;
mod parse;
mod syntax;

pub use error::CronError;

use std::fmt;

use jiff::Timestamp;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};

use calendar::{CIVIL_YEAR_MAX, CIVIL_YEAR_MIN, Civil, Fields};

/// How far ahead (and back) a search looks, in years.
const SEARCH_YEARS: i32 = 400;

/// The IANA time zone `name`, as a schedule's `timeZone` names it; the error says why not.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() {
        return Err("must not be empty (omit it for UTC)".into());
    }
    TimeZone::get(name).map_err(|_| {
        format!("unknown time zone {name:?} (expected an IANA name like Europe/Paris)")
    })
}

/// A parsed cron expression. See the [module documentation](self) for its semantics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule {
    source: String,
    has_seconds: bool,
    fields: Fields,
}

impl CronSchedule {
    /// Parses a 5-field (Kubernetes CronJob / Vixie), 6/7-field seconds-first (Quartz /
    /// Rundeck) expression or a macro. The error names the expression, the field and the bad
    /// part, e.g. `"61 * * * *": minute field "61" out of range 0-59`.
    pub fn parse(expr: &str) -> Result<CronSchedule, CronError> {
        let (fields, has_seconds) = parse::parse(expr)?;
        Ok(CronSchedule {
            source: expr.trim().to_string(),
            has_seconds,
            fields,
        })
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the expression has a seconds field (the 6 or 7-field form).
    pub fn has_seconds(&self) -> bool {
        self.has_seconds
    }

    /// The first fire time strictly after `after`, evaluated in time zone `tz`; `None` when
    /// there is none (a year field ran out, or none within 400 years).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut cursor = Civil::from_datetime(tz.to_datetime(after)).next_second();
        let max_year = cursor.year.saturating_add(SEARCH_YEARS).min(CIVIL_YEAR_MAX);
        loop {
            let wall = self.fields.next_match(cursor, max_year)?;
            let at = instant_of(tz, wall)?;
            if at > after {
                return Some(at);
            }
            // Only when `after` is in the second pass of a fold: the fold's wall-clock times
            // already fired in the first pass, so go on from its end.
            cursor = match fold_of(tz, wall) {
                Some((_, end)) if end > wall => end,
                _ => wall.next_second(),
            };
        }
    }

    /// The fire times strictly after `after`, in order.
    pub fn upcoming<'a>(
        &'a self,
        after: Timestamp,
        tz: &TimeZone,
    ) -> impl Iterator<Item = Timestamp> + use<'a> {
        let tz = tz.clone();
        std::iter::successors(self.next_after(after, &tz), move |t| {
            self.next_after(*t, &tz)
        })
    }

    /// The latest fire time `t` with `since < t <= at` (the one run to catch up after missed
    /// times), if any.
    pub fn latest_between(
        &self,
        since: Timestamp,
        at: Timestamp,
        tz: &TimeZone,
    ) -> Option<Timestamp> {
        if at <= since {
            return None;
        }
        let mut cursor = Civil::from_datetime(tz.to_datetime(at));
        // `at` in the second pass of a fold: every wall-clock time of the fold fired (in the
        // first pass) before `at`.
        if let Some((first_pass, end)) = fold_of(tz, cursor)
            && tz.to_offset(at) != first_pass
        {
            cursor = end.prev_second();
        }
        let min_year = i32::from(tz.to_datetime(since).year())
            .saturating_sub(1)
            .max(cursor.year.saturating_sub(SEARCH_YEARS))
            .max(CIVIL_YEAR_MIN);
        let wall = self.fields.prev_match(cursor, min_year)?;
        let t = instant_of(tz, wall)?;
        (since < t && t <= at).then_some(t)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(s: &str) -> Result<CronSchedule, CronError> {
        CronSchedule::parse(s)
    }
}

/// The instant a matching wall-clock time fires: the earlier one in a fold, the first instant
/// after the gap for a time inside a gap.
fn instant_of(tz: &TimeZone, wall: Civil) -> Option<Timestamp> {
    let dt = wall.to_datetime()?;
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold { .. } => ambiguous.earlier().ok(),
        AmbiguousOffset::Gap { after, .. } => {
            // `dt` read with the offset after the gap is an instant before the gap ends, so the
            // next transition is the end of the gap.
            let inside = after.to_timestamp(dt).ok()?;
            match tz.following(inside).next() {
                Some(transition) => Some(transition.timestamp()),
                None => ambiguous.compatible().ok(),
            }
        }
    }
}

/// When `wall` is inside a fold: the offset of its first pass, and the wall-clock time the
/// fold ends at (the first one after it that happens once).
fn fold_of(tz: &TimeZone, wall: Civil) -> Option<(Offset, Civil)> {
    let dt = wall.to_datetime()?;
    let AmbiguousOffset::Fold { before, .. } = tz.to_ambiguous_timestamp(dt).offset() else {
        return None;
    };
    let first_pass = before.to_timestamp(dt).ok()?;
    let transition = tz.following(first_pass).next()?.timestamp();
    Some((before, Civil::from_datetime(before.to_datetime(transition))))
}
