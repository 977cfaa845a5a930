//! Wall-clock (civil) calendar arithmetic and the field-skipping search over it.
//!
//! Nothing here knows about time zones: the search walks local date-times, and
//! [`super::CronSchedule`] maps the match it finds to an instant.

use jiff::civil::{Date, DateTime};

/// Years a `jiff` civil date-time can hold.
pub(super) const CIVIL_YEAR_MIN: i32 = -9999;
pub(super) const CIVIL_YEAR_MAX: i32 = 9999;

/// Range of the optional year field.
pub(super) const YEAR_FIELD_MIN: u32 = 1970;
pub(super) const YEAR_FIELD_MAX: u32 = 2199;

/// A set of numbers 0..=63, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Bits(u64);

impl Bits {
    pub(super) fn insert(&mut self, v: u32) {
        if v < 64 {
            self.0 |= 1 << v;
        }
    }

    pub(super) fn contains(self, v: u32) -> bool {
        v < 64 && self.0 & (1 << v) != 0
    }

    /// The smallest member `>= v`.
    fn first_from(self, v: u32) -> Option<u32> {
        if v >= 64 {
            return None;
        }
        let rest = self.0 >> v;
        (rest != 0).then(|| v + rest.trailing_zeros())
    }

    /// The largest member `<= v`.
    fn last_upto(self, v: u32) -> Option<u32> {
        let rest = if v >= 63 {
            self.0
        } else {
            self.0 & ((1u64 << (v + 1)) - 1)
        };
        (rest != 0).then(|| 63 - rest.leading_zeros())
    }
}

/// The years allowed by a restricted year field (1970..=2199).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Years([u64; 4]);

impl Years {
    pub(super) fn insert(&mut self, year: u32) {
        if let Some(i) = Self::index(year as i32) {
            self.0[i / 64] |= 1 << (i % 64);
        }
    }

    fn index(year: i32) -> Option<usize> {
        let lo = YEAR_FIELD_MIN as i32;
        let hi = YEAR_FIELD_MAX as i32;
        (lo..=hi).contains(&year).then(|| (year - lo) as usize)
    }

    pub(super) fn contains(&self, year: i32) -> bool {
        Self::index(year).is_some_and(|i| self.0[i / 64] & (1 << (i % 64)) != 0)
    }

    /// The allowed years, ascending.
    pub(super) fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        (YEAR_FIELD_MIN as i32..=YEAR_FIELD_MAX as i32).filter(|y| self.contains(*y))
    }

    fn first_from(&self, year: i32) -> Option<i32> {
        self.iter().find(|y| *y >= year)
    }

    fn last_upto(&self, year: i32) -> Option<i32> {
        self.iter().filter(|y| *y <= year).last()
    }
}

/// The day-of-month field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DomRule {
    /// Plain days 1..=31 (a day past the end of a month never matches).
    Days(Bits),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday (Monday to Friday) of the month.
    LastWeekday,
    /// `nW`: the weekday nearest to day `n`, within the same month.
    NearestWeekday(u32),
}

/// The day-of-week field, weekdays counted 0 = Sunday .. 6 = Saturday whatever the input form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DowRule {
    Days(Bits),
    /// `nL`: the last such weekday of the month.
    Last(u32),
    /// `n#k`: the k-th such weekday of the month.
    Nth(u32, u32),
}

/// Every field of an expression, as sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Fields {
    pub(super) seconds: Bits,
    pub(super) minutes: Bits,
    pub(super) hours: Bits,
    pub(super) months: Bits,
    pub(super) dom: DomRule,
    /// The day-of-month field was `*`, `?` or started with `*` (Vixie's "star" rule).
    pub(super) dom_star: bool,
    pub(super) dow: DowRule,
    pub(super) dow_star: bool,
    /// `None`: any year.
    pub(super) years: Option<Years>,
}

pub(super) fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(super) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week, 0 = Sunday; `None` outside the civil range.
pub(super) fn weekday(year: i32, month: u32, day: u32) -> Option<u32> {
    let date = Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    Some(u32::from(
        date.weekday().to_sunday_zero_offset().unsigned_abs(),
    ))
}

/// The weekday (Monday to Friday) nearest to day `n` of a month of `last` days, where `n` falls
/// on weekday `wd` (0 = Sunday), without leaving the month: a Saturday moves back to Friday
/// (forward to Monday the 3rd for the 1st), a Sunday forward to Monday (back to Friday for the
/// last day).
fn nearest_weekday(n: u32, last: u32, wd: u32) -> u32 {
    match wd {
        6 if n == 1 => 3,
        6 => n - 1,
        0 if n == last => n - 2,
        0 => n + 1,
        _ => n,
    }
}

impl Fields {
    fn year_ok(&self, year: i32) -> bool {
        self.years.as_ref().is_none_or(|ys| ys.contains(year))
    }

    /// Whether the date matches day-of-month and day-of-week (the month is checked elsewhere).
    ///
    /// Both fields restricted: either one suffices (Vixie OR). One of them `*`/`?` (or starting
    /// with `*`): both must match, which for a plain `*`/`?` means just the other one.
    pub(super) fn day_matches(&self, year: i32, month: u32, day: u32) -> bool {
        let last = days_in_month(year, month);
        if day == 0 || day > last {
            return false;
        }
        let Some(wd) = weekday(year, month, day) else {
            return false;
        };
        // Weekday of another day of the same month.
        let wd_of = |d: u32| (wd + 35 + d - day) % 7;
        let dom_ok = match self.dom {
            DomRule::Days(days) => days.contains(day),
            DomRule::Last => day == last,
            DomRule::LastWeekday => day == nearest_weekday(last, last, wd_of(last)),
            DomRule::NearestWeekday(n) => n <= last && day == nearest_weekday(n, last, wd_of(n)),
        };
        let dow_ok = match self.dow {
            DowRule::Days(days) => days.contains(wd),
            DowRule::Last(w) => wd == w && day + 7 > last,
            DowRule::Nth(w, k) => wd == w && (day - 1) / 7 + 1 == k,
        };
        if self.dom_star || self.dow_star {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        }
    }

    /// Whether some date ever matches day-of-month, month, day-of-week and year.
    ///
    /// Which days match depends only on the year's kind (leap or not, and the weekday of
    /// January 1st): 14 kinds, all present in any 28 consecutive years of this century.
    pub(super) fn ever_matches(&self) -> bool {
        let any_year = 2001..=2028;
        let years: Vec<i32> = match &self.years {
            Some(ys) => ys.iter().collect(),
            None => any_year.collect(),
        };
        let mut seen = [false; 14];
        for year in years {
            let Some(jan1) = weekday(year, 1, 1) else {
                continue;
            };
            let kind = jan1 as usize * 2 + usize::from(is_leap(year));
            if std::mem::replace(&mut seen[kind], true) {
                continue;
            }
            for month in 1..=12 {
                if self.months.contains(month)
                    && (1..=days_in_month(year, month)).any(|d| self.day_matches(year, month, d))
                {
                    return true;
                }
            }
        }
        false
    }

    /// The first matching wall-clock time `>= from`, looking no further than `max_year`.
    ///
    /// Skips by field: a year, month, day, hour or minute that does not match is passed over
    /// whole, so the work is a few steps per day searched, never per second.
    pub(super) fn next_match(&self, from: Civil, max_year: i32) -> Option<Civil> {
        let mut c = from;
        loop {
            if c.year > max_year.min(CIVIL_YEAR_MAX) {
                return None;
            }
            if !self.year_ok(c.year) {
                let year = match &self.years {
                    Some(ys) => ys.first_from(c.year + 1)?,
                    None => c.year + 1,
                };
                c = Civil::day_start(year, 1, 1);
                continue;
            }
            if !self.months.contains(c.month) {
                c = match self.months.first_from(c.month + 1) {
                    Some(m) if m <= 12 => Civil::day_start(c.year, m, 1),
                    _ => Civil::day_start(c.year + 1, 1, 1),
                };
                continue;
            }
            if !self.day_matches(c.year, c.month, c.day) {
                c = c.next_day();
                continue;
            }
            if !self.hours.contains(c.hour) {
                c = match self.hours.first_from(c.hour + 1) {
                    Some(h) if h <= 23 => c.at(h, 0, 0),
                    _ => c.next_day(),
                };
                continue;
            }
            if !self.minutes.contains(c.minute) {
                c = match self.minutes.first_from(c.minute + 1) {
                    Some(m) if m <= 59 => c.at(c.hour, m, 0),
                    _ => c.next_hour(),
                };
                continue;
            }
            if !self.seconds.contains(c.second) {
                c = match self.seconds.first_from(c.second + 1) {
                    Some(s) if s <= 59 => c.at(c.hour, c.minute, s),
                    _ => c.next_minute(),
                };
                continue;
            }
            return Some(c);
        }
    }

    /// The last matching wall-clock time `<= from`, looking no further back than `min_year`.
    pub(super) fn prev_match(&self, from: Civil, min_year: i32) -> Option<Civil> {
        let mut c = from;
        loop {
            if c.year < min_year.max(CIVIL_YEAR_MIN) {
                return None;
            }
            if !self.year_ok(c.year) {
                let year = match &self.years {
                    Some(ys) => ys.last_upto(c.year - 1)?,
                    None => c.year - 1,
                };
                c = Civil::day_end(year, 12, 31);
                continue;
            }
            if !self.months.contains(c.month) {
                c = match self.months.last_upto(c.month - 1) {
                    Some(m) if m >= 1 => Civil::day_end(c.year, m, days_in_month(c.year, m)),
                    _ => Civil::day_end(c.year - 1, 12, 31),
                };
                continue;
            }
            if !self.day_matches(c.year, c.month, c.day) {
                c = c.prev_day();
                continue;
            }
            if !self.hours.contains(c.hour) {
                c = match c.hour.checked_sub(1).and_then(|h| self.hours.last_upto(h)) {
                    Some(h) => c.at(h, 59, 59),
                    None => c.prev_day(),
                };
                continue;
            }
            if !self.minutes.contains(c.minute) {
                c = match c
                    .minute
                    .checked_sub(1)
                    .and_then(|m| self.minutes.last_upto(m))
                {
                    Some(m) => c.at(c.hour, m, 59),
                    None => c.prev_hour(),
                };
                continue;
            }
            if !self.seconds.contains(c.second) {
                c = match c
                    .second
                    .checked_sub(1)
                    .and_then(|s| self.seconds.last_upto(s))
                {
                    Some(s) => c.at(c.hour, c.minute, s),
                    None => c.prev_minute(),
                };
                continue;
            }
            return Some(c);
        }
    }
}

/// A wall-clock date-time to the second. Field order makes the derived ordering chronological.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Civil {
    pub(super) year: i32,
    pub(super) month: u32,
    pub(super) day: u32,
    pub(super) hour: u32,
    pub(super) minute: u32,
    pub(super) second: u32,
}

impl Civil {
    /// `dt` without its fraction of a second.
    pub(super) fn from_datetime(dt: DateTime) -> Civil {
        let n = |v: i8| u32::from(v.unsigned_abs());
        Civil {
            year: i32::from(dt.year()),
            month: n(dt.month()),
            day: n(dt.day()),
            hour: n(dt.hour()),
            minute: n(dt.minute()),
            second: n(dt.second()),
        }
    }

    pub(super) fn to_datetime(self) -> Option<DateTime> {
        let n = |v: u32| i8::try_from(v).ok();
        DateTime::new(
            i16::try_from(self.year).ok()?,
            n(self.month)?,
            n(self.day)?,
            n(self.hour)?,
            n(self.minute)?,
            n(self.second)?,
            0,
        )
        .ok()
    }

    fn day_start(year: i32, month: u32, day: u32) -> Civil {
        Civil {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        }
    }

    fn day_end(year: i32, month: u32, day: u32) -> Civil {
        Civil::day_start(year, month, day).at(23, 59, 59)
    }

    fn at(self, hour: u32, minute: u32, second: u32) -> Civil {
        Civil {
            hour,
            minute,
            second,
            ..self
        }
    }

    /// Midnight starting the next day.
    fn next_day(self) -> Civil {
        if self.day < days_in_month(self.year, self.month) {
            Civil::day_start(self.year, self.month, self.day + 1)
        } else if self.month < 12 {
            Civil::day_start(self.year, self.month + 1, 1)
        } else {
            Civil::day_start(self.year + 1, 1, 1)
        }
    }

    /// The last second of the previous day.
    fn prev_day(self) -> Civil {
        if self.day > 1 {
            Civil::day_end(self.year, self.month, self.day - 1)
        } else if self.month > 1 {
            let m = self.month - 1;
            Civil::day_end(self.year, m, days_in_month(self.year, m))
        } else {
            Civil::day_end(self.year - 1, 12, 31)
        }
    }

    fn next_hour(self) -> Civil {
        if self.hour < 23 {
            self.at(self.hour + 1, 0, 0)
        } else {
            self.next_day()
        }
    }

    fn prev_hour(self) -> Civil {
        if self.hour > 0 {
            self.at(self.hour - 1, 59, 59)
        } else {
            self.prev_day()
        }
    }

    fn next_minute(self) -> Civil {
        if self.minute < 59 {
            self.at(self.hour, self.minute + 1, 0)
        } else {
            self.next_hour()
        }
    }

    fn prev_minute(self) -> Civil {
        if self.minute > 0 {
            self.at(self.hour, self.minute - 1, 59)
        } else {
            self.prev_hour()
        }
    }

    pub(super) fn next_second(self) -> Civil {
        if self.second < 59 {
            self.at(self.hour, self.minute, self.second + 1)
        } else {
            self.next_minute()
        }
    }

    pub(super) fn prev_second(self) -> Civil {
        if self.second > 0 {
            self.at(self.hour, self.minute, self.second - 1)
        } else {
            self.prev_minute()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_neighbours() {
        let mut b = Bits::default();
        for v in [0, 5, 63] {
            b.insert(v);
        }
        assert_eq!(b.first_from(0), Some(0));
        assert_eq!(b.first_from(1), Some(5));
        assert_eq!(b.first_from(6), Some(63));
        assert_eq!(b.first_from(64), None);
        assert_eq!(b.last_upto(4), Some(0));
        assert_eq!(b.last_upto(62), Some(5));
        assert_eq!(b.last_upto(63), Some(63));
        assert_eq!(Bits::default().last_upto(10), None);
    }

    #[test]
    fn nearest_weekday_stays_in_month() {
        // 2026-08-01 is a Saturday: 1W -> Monday the 3rd.
        assert_eq!(nearest_weekday(1, 31, 6), 3);
        // A Saturday mid-month -> the Friday before.
        assert_eq!(nearest_weekday(15, 31, 6), 14);
        // A Sunday mid-month -> the Monday after.
        assert_eq!(nearest_weekday(15, 31, 0), 16);
        // The last day on a Sunday -> the Friday before.
        assert_eq!(nearest_weekday(31, 31, 0), 29);
        assert_eq!(nearest_weekday(10, 31, 3), 10);
    }

    #[test]
    fn civil_steps_roll_over() {
        let c = Civil::day_end(2024, 2, 29);
        assert_eq!(c.next_second(), Civil::day_start(2024, 3, 1));
        assert_eq!(
            Civil::day_start(2025, 1, 1).prev_second(),
            Civil::day_end(2024, 12, 31)
        );
        assert_eq!(
            Civil::day_start(2025, 3, 1).prev_day(),
            Civil::day_end(2025, 2, 28)
        );
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(weekday(2026, 1, 1), Some(4));
    }
}
