//! From text to [`Fields`].
//!
//! The syntax is checked first by `cron_syntax` (so syntax errors read the same everywhere);
//! this adds what needs the meaning: the Quartz day-of-week numbering (1-7, 1 = Sunday), and
//! expressions whose days never occur (`0 0 30 2 *`).

use super::calendar::{Bits, DomRule, DowRule, Fields, YEAR_FIELD_MAX, YEAR_FIELD_MIN, Years};
use crate::cron_syntax;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed expression: its fields and whether it has a seconds field.
pub(super) fn parse(expr: &str) -> Result<(Fields, bool), String> {
    cron_syntax::check(expr)?;
    let trimmed = expr.trim();
    let text = if trimmed.starts_with('@') {
        match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => return Err(format!("{expr:?}: unknown macro")),
        }
    } else {
        trimmed
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let quartz = match parts.len() {
        5 => false,
        6 | 7 => true,
        n => return Err(format!("{expr:?}: expected 5, 6 or 7 fields, got {n}")),
    };
    // Field texts, seconds first; the 5-field form fires at second 0.
    let (sec, rest) = if quartz {
        (parts[0], &parts[1..])
    } else {
        ("0", &parts[..])
    };
    let [min, hour, dom, month, dow] = [rest[0], rest[1], rest[2], rest[3], rest[4]];
    let year = rest.get(5).copied();

    let bits = |field: Field, text: &str| -> Result<Bits, String> {
        let mut b = Bits::default();
        for_each_value(text, field, quartz, &mut |v| b.insert(v))
            .map_err(|e| field_error(expr, field, text, e))?;
        Ok(b)
    };

    let seconds = bits(Field::Second, sec)?;
    let minutes = bits(Field::Minute, min)?;
    let hours = bits(Field::Hour, hour)?;
    let (dom_rule, dom_star) =
        day_of_month(dom, quartz).map_err(|e| field_error(expr, Field::DayOfMonth, dom, e))?;
    let months = bits(Field::Month, month)?;
    let (dow_rule, dow_star) =
        day_of_week(dow, quartz).map_err(|e| field_error(expr, Field::DayOfWeek, dow, e))?;
    let years = match year {
        None | Some("*") => None,
        Some(text) => {
            let mut ys = Years::default();
            for_each_value(text, Field::Year, quartz, &mut |v| ys.insert(v))
                .map_err(|e| field_error(expr, Field::Year, text, e))?;
            Some(ys)
        }
    };
    let fields = Fields {
        seconds,
        minutes,
        hours,
        months,
        dom: dom_rule,
        dom_star,
        dow: dow_rule,
        dow_star,
        years,
    };
    if !fields.ever_matches() {
        let year = year.map_or(String::new(), |y| format!(", year {y:?}"));
        return Err(format!(
            "{expr:?}: never fires (no date matches day-of-month {dom:?}, month {month:?}, \
             day-of-week {dow:?}{year})"
        ));
    }
    Ok((fields, quartz))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
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
}

/// `"EXPR": NAME field "TEXT" MESSAGE`, or `... "TEXT": "TOKEN" MESSAGE` for a part of it.
fn field_error(expr: &str, field: Field, text: &str, e: TokenError) -> String {
    let name = field.name();
    if e.token == text {
        format!("{expr:?}: {name} field {text:?} {}", e.message)
    } else {
        format!(
            "{expr:?}: {name} field {text:?}: {:?} {}",
            e.token, e.message
        )
    }
}

/// An error about `token` (a part of a field's text, or all of it).
struct TokenError {
    token: String,
    message: String,
}

fn token_err(token: &str, message: impl Into<String>) -> TokenError {
    TokenError {
        token: token.to_string(),
        message: message.into(),
    }
}

/// Calls `f` with every number a list field (`*`, `?`, `v`, `a-b`, `*/n`, `a-b/n`, `a/n`,
/// comma-separated) stands for.
fn for_each_value(
    text: &str,
    field: Field,
    quartz: bool,
    f: &mut dyn FnMut(u32),
) -> Result<(), TokenError> {
    let (lo, hi) = field.range(quartz);
    if text == "?" {
        return match field {
            Field::DayOfMonth | Field::DayOfWeek => {
                (lo..=hi).for_each(&mut *f);
                Ok(())
            }
            _ => Err(token_err(
                text,
                "is not allowed here ('?' only fits day-of-month and day-of-week)",
            )),
        };
    }
    for item in text.split(',') {
        if item.is_empty() {
            return Err(token_err(text, "has an empty list element"));
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        let step = match step {
            None => 1,
            Some(s) => {
                let span = hi - lo + 1;
                match s.parse::<u32>() {
                    Ok(n) if (1..=span).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => n,
                    Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => {
                        return Err(token_err(item, format!("has step {n} (expected 1-{span})")));
                    }
                    _ => {
                        return Err(token_err(
                            item,
                            "has an invalid step (expected a number after '/')",
                        ));
                    }
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
        (start..=end).step_by(step as usize).for_each(&mut *f);
    }
    Ok(())
}

/// Vixie's rule: a day field that is `?` or starts with `*` does not take part in the OR.
fn is_star(text: &str) -> bool {
    text == "?" || text.starts_with('*')
}

fn day_of_month(text: &str, quartz: bool) -> Result<(DomRule, bool), TokenError> {
    let upper = text.to_ascii_uppercase();
    if !text.contains(',') && (upper.contains('L') || upper.contains('W')) {
        if !quartz {
            return Err(token_err(
                text,
                "needs the 6 or 7-field form with seconds ('L', 'W' and '#' are Quartz extensions)",
            ));
        }
        return match upper.as_str() {
            "L" => Ok((DomRule::Last, false)),
            "LW" => Ok((DomRule::LastWeekday, false)),
            _ => match upper.strip_suffix('W') {
                Some(day) if !day.is_empty() && day.bytes().all(|b| b.is_ascii_digit()) => {
                    let n = Field::DayOfMonth
                        .value(day, quartz)
                        .map_err(|m| token_err(day, m))?;
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
    for_each_value(text, Field::DayOfMonth, quartz, &mut |v| days.insert(v))?;
    Ok((DomRule::Days(days), is_star(text)))
}

fn day_of_week(text: &str, quartz: bool) -> Result<(DowRule, bool), TokenError> {
    // Input number to weekday 0 = Sunday .. 6 = Saturday.
    let weekday = |v: u32| if quartz { v.saturating_sub(1) } else { v % 7 };
    let field = Field::DayOfWeek;
    let upper = text.to_ascii_uppercase();
    let special = !text.contains(',')
        && (upper.contains('#')
            || (upper.len() > 1
                && upper.strip_suffix('L').is_some_and(|d| {
                    field.value(d, quartz).is_ok() || d.bytes().all(|b| b.is_ascii_digit())
                })));
    if special {
        if !quartz {
            return Err(token_err(
                text,
                "needs the 6 or 7-field form with seconds ('L', 'W' and '#' are Quartz extensions)",
            ));
        }
        if let Some((day, nth)) = upper.split_once('#') {
            let day_text = &text[..day.len()];
            let v = field
                .value(day, quartz)
                .map_err(|m| token_err(day_text, m))?;
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
        let day_text = &text[..text.len() - 1];
        let v = field
            .value(day_text, quartz)
            .map_err(|m| token_err(day_text, m))?;
        return Ok((DowRule::Last(weekday(v)), false));
    }
    let mut days = Bits::default();
    for_each_value(text, field, quartz, &mut |v| days.insert(weekday(v)))?;
    Ok((DowRule::Days(days), is_star(text)))
}
