//! The cron tokenizer: the fields of each form, macros, month and day names, and what one
//! field's text stands for (`*`, `?`, `v`, `a-b`, `*/n`, `a-b/n`, `a/n`, lists, and the Quartz
//! `L`/`W`/`#` forms). The one place that knows the notation; [`super::parse`] turns its
//! answers into a schedule. Every error names the expression, the field and the bad part, e.g.
//! `"61 * * * *": minute field "61" out of range 0-59`.

use super::CronError;
use super::calendar::{Bits, DomRule, DowRule, YEAR_FIELD_MAX, YEAR_FIELD_MIN};

/// The macros accepted in place of fields, and the 5-field expression each stands for.
const MACROS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// An expression split into its fields, seconds first (the 5-field form fires at second 0).
pub(super) struct Form<'a> {
    /// The 6/7-field (Quartz) form: a seconds field, `L`/`W`/`#`, day-of-week 1-7.
    pub(super) quartz: bool,
    pub(super) second: &'a str,
    pub(super) minute: &'a str,
    pub(super) hour: &'a str,
    pub(super) day_of_month: &'a str,
    pub(super) month: &'a str,
    pub(super) day_of_week: &'a str,
    pub(super) year: Option<&'a str>,
}

/// Splits `expr` (a macro stands for its 5-field expression) into its fields.
pub(super) fn split(expr: &str) -> Result<Form<'_>, CronError> {
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        return Err(CronError::Empty);
    }
    let text = if trimmed.starts_with('@') {
        let lower = trimmed.to_ascii_lowercase();
        match MACROS.iter().find(|(name, _)| *name == lower) {
            Some((_, fields)) => *fields,
            None => {
                let names: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
                return Err(CronError::UnknownMacro {
                    expr: expr.to_owned(),
                    expected: names.join(", "),
                });
            }
        }
    } else {
        trimmed
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (quartz, second, rest) = match parts.len() {
        5 => (false, "0", &parts[..]),
        6 | 7 => (true, parts[0], &parts[1..]),
        got => {
            return Err(CronError::FieldCount {
                expr: expr.to_owned(),
                got,
            });
        }
    };
    Ok(Form {
        quartz,
        second,
        minute: rest[0],
        hour: rest[1],
        day_of_month: rest[2],
        month: rest[3],
        day_of_week: rest[4],
        year: rest.get(5).copied(),
    })
}

/// How a field is read: whether the Quartz `L`/`W`/`#` forms are allowed (the 6/7-field
/// form) and which day-of-week numbering applies (Quartz 1-7 from Sunday, else 0-7).
#[derive(Clone, Copy, Debug)]
pub(super) struct Reading {
    pub(super) extensions: bool,
    pub(super) quartz_weekdays: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
            Field::Year => "year",
        }
    }

    /// Allowed numbers. Day-of-week: 0-7 (0 and 7 = Sunday) in the 5-field form, 1-7
    /// (1 = Sunday, 7 = Saturday) in the Quartz 6/7-field form.
    fn range(self, quartz: bool) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek if quartz => (1, 7),
            Field::DayOfWeek => (0, 7),
            Field::Year => (YEAR_FIELD_MIN, YEAR_FIELD_MAX),
        }
    }

    /// Names and the number of the first one.
    fn names(self, quartz: bool) -> (&'static [&'static str], u32) {
        match self {
            Field::Month => (&MONTHS, 1),
            Field::DayOfWeek => (&DAYS, u32::from(quartz)),
            _ => (&[], 0),
        }
    }

    /// Parses one value: a number in range, or a month/day name (any case).
    fn value(self, token: &str, quartz: bool) -> Result<u32, String> {
        let (lo, hi) = self.range(quartz);
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            return match token.parse::<u32>() {
                Ok(v) if (lo..=hi).contains(&v) => Ok(v),
                _ if self == Field::DayOfWeek && quartz => Err(format!(
                    "out of range {lo}-{hi} (with a seconds field, day-of-week counts \
                     1 = SUN to 7 = SAT)"
                )),
                _ => Err(format!("out of range {lo}-{hi}")),
            };
        }
        let (names, first) = self.names(quartz);
        let upper = token.to_ascii_uppercase();
        match names.iter().position(|n| *n == upper) {
            Some(i) => Ok(first + i as u32),
            None if names.is_empty() => Err(format!("is not a valid value (expected {lo}-{hi})")),
            None => Err(format!(
                "is not a valid value (expected {lo}-{hi} or {}-{})",
                names[0],
                names[names.len() - 1]
            )),
        }
    }

    /// Whether `upper` uses a Quartz `L`/`W`/`#` form (as opposed to a name like `JUL` or
    /// `WED`).
    fn is_special(self, upper: &str, quartz: bool) -> bool {
        match self {
            Field::DayOfMonth => upper.contains('L') || upper.contains('W'),
            Field::DayOfWeek => {
                upper.contains('#')
                    || upper == "L"
                    || (upper.len() > 1
                        && upper.strip_suffix('L').is_some_and(|d| {
                            self.value(d, quartz).is_ok()
                                || (quartz && d.bytes().all(|b| b.is_ascii_digit()))
                        }))
            }
            _ => false,
        }
    }
}

/// An error about `token` (a part of a field's text, or all of it).
pub(super) struct TokenError {
    token: String,
    message: String,
}

fn token_err(token: &str, message: impl Into<String>) -> TokenError {
    TokenError {
        token: token.to_string(),
        message: message.into(),
    }
}

/// `"EXPR": NAME field "TEXT" MESSAGE`, or `... "TEXT": "TOKEN" MESSAGE` for a part of it.
pub(super) fn field_error(expr: &str, field: Field, text: &str, e: TokenError) -> CronError {
    CronError::Field {
        expr: expr.to_owned(),
        field: field.name(),
        text: text.to_owned(),
        token: (e.token != text).then_some(e.token),
        message: e.message,
    }
}

/// The numbers a list field (`*`, `?`, `v`, `a-b`, `*/n`, `a-b/n`, `a/n`, comma-separated)
/// stands for, in the field's own numbering.
pub(super) fn values(text: &str, field: Field, reading: Reading) -> Result<Vec<u32>, TokenError> {
    let quartz = reading.quartz_weekdays;
    let (lo, hi) = field.range(quartz);
    if text == "?" {
        return match field {
            Field::DayOfMonth | Field::DayOfWeek => Ok((lo..=hi).collect()),
            _ => Err(token_err(
                text,
                "is not allowed here ('?' only fits day-of-month and day-of-week)",
            )),
        };
    }
    let mut out = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(token_err(text, "has an empty list element"));
        }
        if field.is_special(&item.to_ascii_uppercase(), quartz) {
            return Err(token_err(
                item,
                "cannot be combined with other values in a list",
            ));
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        let step = match step {
            None => 1,
            Some(s) => {
                let span = hi - lo + 1;
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(token_err(
                        item,
                        "has an invalid step (expected a number after '/')",
                    ));
                }
                match s.parse::<u32>() {
                    Ok(n) if (1..=span).contains(&n) => n,
                    _ => return Err(token_err(item, format!("has step {s} (expected 1-{span})"))),
                }
            }
        };
        let (start, end) = if base == "*" {
            (lo, hi)
        } else if base.is_empty() {
            return Err(token_err(item, "is missing a value before '/'"));
        } else if let Some((a, b)) = base.split_once('-') {
            let start = field.value(a, quartz).map_err(|m| token_err(a, m))?;
            let end = field.value(b, quartz).map_err(|m| token_err(b, m))?;
            if start > end {
                return Err(token_err(
                    base,
                    format!("is a backwards range ({start} > {end})"),
                ));
            }
            (start, end)
        } else {
            let v = field.value(base, quartz).map_err(|m| token_err(base, m))?;
            // `a/n` runs from `a` to the end of the range.
            (v, if item.contains('/') { hi } else { v })
        };
        out.extend((start..=end).step_by(step as usize));
    }
    Ok(out)
}

/// Vixie's rule: a day field that is `?` or starts with `*` does not take part in the OR.
fn is_star(text: &str) -> bool {
    text == "?" || text.starts_with('*')
}

fn needs_extensions(text: &str) -> TokenError {
    token_err(
        text,
        "needs the 6 or 7-field form with seconds ('L', 'W' and '#' are Quartz extensions)",
    )
}

/// The day-of-month field, and whether it is unrestricted (Vixie's star rule).
pub(super) fn day_of_month(text: &str, reading: Reading) -> Result<(DomRule, bool), TokenError> {
    let field = Field::DayOfMonth;
    let upper = text.to_ascii_uppercase();
    if !text.contains(',') && field.is_special(&upper, reading.quartz_weekdays) {
        if !reading.extensions {
            return Err(needs_extensions(text));
        }
        return match upper.as_str() {
            "L" => Ok((DomRule::Last, false)),
            "LW" => Ok((DomRule::LastWeekday, false)),
            _ => match upper.strip_suffix('W') {
                Some(day) if !day.is_empty() && day.bytes().all(|b| b.is_ascii_digit()) => {
                    let n = field.value(day, false).map_err(|m| token_err(day, m))?;
                    Ok((DomRule::NearestWeekday(n), false))
                }
                _ => Err(token_err(
                    text,
                    "is not a valid value (expected L, LW, nW or 1-31)",
                )),
            },
        };
    }
    let mut days = Bits::default();
    for v in values(text, field, reading)? {
        days.insert(v);
    }
    Ok((DomRule::Days(days), is_star(text)))
}

/// The day-of-week field (weekdays 0 = Sunday .. 6 = Saturday whatever the numbering), and
/// whether it is unrestricted (Vixie's star rule).
pub(super) fn day_of_week(text: &str, reading: Reading) -> Result<(DowRule, bool), TokenError> {
    let quartz = reading.quartz_weekdays;
    let weekday = |v: u32| if quartz { v.saturating_sub(1) } else { v % 7 };
    let field = Field::DayOfWeek;
    let upper = text.to_ascii_uppercase();
    if !text.contains(',') && field.is_special(&upper, quartz) {
        if !reading.extensions {
            return Err(needs_extensions(text));
        }
        if let Some((day, nth)) = upper.split_once('#') {
            let v = field.value(day, quartz).map_err(|m| token_err(day, m))?;
            return match nth.parse::<u32>() {
                Ok(k @ 1..=5) if nth.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok((DowRule::Nth(weekday(v), k), false))
                }
                _ => Err(token_err(
                    text,
                    "has an invalid occurrence after '#' (expected 1-5)",
                )),
            };
        }
        if upper == "L" {
            return Err(token_err(
                text,
                "is not a valid value (use nL for the last given weekday of the month)",
            ));
        }
        // `nL`: the last given weekday of the month.
        let day_text = &text[..text.len() - 1];
        let v = field
            .value(day_text, quartz)
            .map_err(|m| token_err(day_text, m))?;
        return Ok((DowRule::Last(weekday(v)), false));
    }
    let mut days = Bits::default();
    for v in values(text, field, reading)? {
        days.insert(weekday(v));
    }
    Ok((DowRule::Days(days), is_star(text)))
}
