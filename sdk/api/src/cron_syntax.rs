//! Syntax check of cron expressions; [`crate::cron`] parses them for meaning (and runs this
//! check first, so syntax errors read the same everywhere).
//!
//! Accepted forms:
//! - macros `@yearly @annually @monthly @weekly @daily @midnight @hourly`;
//! - 5 fields `minute hour day-of-month month day-of-week` (Kubernetes CronJob);
//! - 6 or 7 fields with seconds first and an optional year last (Quartz style):
//!   `second minute hour day-of-month month day-of-week [year]`.
//!
//! Each field is `*`, `?` (day-of-month and day-of-week only), or a comma list of `v`, `a-b`,
//! `*/n`, `a-b/n`, `a/n`; months may be `JAN`-`DEC` and days `SUN`-`SAT` (any case); day-of-week
//! numbers are checked against 0-7 here (0 and 7 = Sunday in the 5-field form; the 6/7-field
//! form counts 1 = Sunday .. 7 = Saturday, which [`crate::cron`] enforces). The 6/7-field form
//! also accepts, as the whole field, `L`, `LW`, `nW` in day-of-month and `nL`, `n#k` in
//! day-of-week. The year is 1970-2199.

/// The macros accepted in place of fields.
pub(crate) const MACROS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

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

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

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

    fn range(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
            Field::Year => (1970, 2199),
        }
    }

    fn expected(self) -> String {
        let (lo, hi) = self.range();
        match self {
            Field::Month => format!("{lo}-{hi} or JAN-DEC"),
            Field::DayOfWeek => format!("{lo}-{hi} or SUN-SAT"),
            _ => format!("{lo}-{hi}"),
        }
    }

    /// Parses one value: a number in range, or a month/day name.
    fn value(self, token: &str) -> Result<u32, String> {
        let (lo, hi) = self.range();
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            return match token.parse::<u32>() {
                Ok(v) if (lo..=hi).contains(&v) => Ok(v),
                _ => Err(format!("out of range {lo}-{hi}")),
            };
        }
        let names: &[&str] = match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &DAYS,
            _ => &[],
        };
        let upper = token.to_ascii_uppercase();
        match names.iter().position(|n| *n == upper) {
            Some(i) if self == Field::Month => Ok(i as u32 + 1),
            Some(i) => Ok(i as u32),
            None => Err(format!(
                "is not a valid value (expected {})",
                self.expected()
            )),
        }
    }
}

/// An error about `token` (a part of `field`, or all of it).
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

/// Checks the syntax of `expr`. The error names the expression and the field, e.g.
/// `"61 * * * *": minute field "61" out of range 0-59`.
pub(crate) fn check(expr: &str) -> Result<(), String> {
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".to_string());
    }
    if trimmed.starts_with('@') {
        let lower = trimmed.to_ascii_lowercase();
        return if MACROS.contains(&lower.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "{expr:?}: unknown macro (expected one of {})",
                MACROS.join(", ")
            ))
        };
    }
    let parts: Vec<&str> = trimmed.split_whitespace().collect();
    use Field::*;
    let (fields, extended): (&[Field], bool) = match parts.len() {
        5 => (&[Minute, Hour, DayOfMonth, Month, DayOfWeek], false),
        6 => (&[Second, Minute, Hour, DayOfMonth, Month, DayOfWeek], true),
        7 => (
            &[Second, Minute, Hour, DayOfMonth, Month, DayOfWeek, Year],
            true,
        ),
        n => return Err(format!("{expr:?}: expected 5, 6 or 7 fields, got {n}")),
    };
    for (text, field) in parts.iter().zip(fields) {
        if let Err(e) = check_field(text, *field, extended) {
            let name = field.name();
            return Err(if e.token == *text {
                format!("{expr:?}: {name} field {text:?} {}", e.message)
            } else {
                format!(
                    "{expr:?}: {name} field {text:?}: {:?} {}",
                    e.token, e.message
                )
            });
        }
    }
    Ok(())
}

fn check_field(text: &str, field: Field, extended: bool) -> Result<(), TokenError> {
    if text == "?" {
        return match field {
            Field::DayOfMonth | Field::DayOfWeek => Ok(()),
            _ => Err(token_err(
                text,
                "is not allowed here ('?' only fits day-of-month and day-of-week)",
            )),
        };
    }
    let upper = text.to_ascii_uppercase();
    if !text.contains(',') && is_special(&upper, field) {
        if !extended {
            return Err(token_err(
                text,
                "needs the 6 or 7-field form with seconds ('L', 'W' and '#' are Quartz extensions)",
            ));
        }
        return check_special(text, &upper, field);
    }
    for item in text.split(',') {
        if item.is_empty() {
            return Err(token_err(text, "has an empty list element"));
        }
        if is_special(&item.to_ascii_uppercase(), field) {
            return Err(token_err(
                item,
                "cannot be combined with other values in a list",
            ));
        }
        check_item(item, field)?;
    }
    Ok(())
}

/// Whether `upper` uses a Quartz `L`/`W`/`#` form (as opposed to a name like `JUL` or `WED`).
fn is_special(upper: &str, field: Field) -> bool {
    match field {
        Field::DayOfMonth => upper.contains('L') || upper.contains('W'),
        Field::DayOfWeek => {
            upper.contains('#')
                || (upper.len() > 1
                    && upper.ends_with('L')
                    && field.value(&upper[..upper.len() - 1]).is_ok())
                || upper == "L"
        }
        _ => false,
    }
}

fn check_special(text: &str, upper: &str, field: Field) -> Result<(), TokenError> {
    match field {
        Field::DayOfMonth => {
            if upper == "L" || upper == "LW" {
                return Ok(());
            }
            if let Some(day) = upper.strip_suffix('W')
                && !day.is_empty()
                && day.bytes().all(|b| b.is_ascii_digit())
            {
                return field.value(day).map(|_| ()).map_err(|m| token_err(day, m));
            }
            Err(token_err(
                text,
                "is not a valid value (expected L, LW, nW or 1-31)",
            ))
        }
        Field::DayOfWeek => {
            if let Some((day, nth)) = upper.split_once('#') {
                field.value(day).map_err(|m| token_err(day, m))?;
                return match nth.parse::<u32>() {
                    Ok(1..=5) => Ok(()),
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
            // `nL`: the last given weekday of the month; `is_special` checked `n`.
            Ok(())
        }
        _ => Err(token_err(text, "is not a valid value")),
    }
}

fn check_item(item: &str, field: Field) -> Result<(), TokenError> {
    let (lo, hi) = field.range();
    let (base, step) = match item.split_once('/') {
        Some((b, s)) => (b, Some(s)),
        None => (item, None),
    };
    if let Some(step) = step {
        let span = hi - lo + 1;
        if step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
            return Err(token_err(
                item,
                "has an invalid step (expected a number after '/')",
            ));
        }
        if !step.parse::<u32>().is_ok_and(|n| (1..=span).contains(&n)) {
            return Err(token_err(
                item,
                format!("has step {step} (expected 1-{span})"),
            ));
        }
    }
    if base == "*" {
        return Ok(());
    }
    if base.is_empty() {
        return Err(token_err(item, "is missing a value before '/'"));
    }
    match base.split_once('-') {
        Some((a, b)) => {
            let start = field.value(a).map_err(|m| token_err(a, m))?;
            let end = field.value(b).map_err(|m| token_err(b, m))?;
            if start > end {
                return Err(token_err(
                    base,
                    format!("is a backwards range ({start} > {end})"),
                ));
            }
            Ok(())
        }
        None => field
            .value(base)
            .map(|_| ())
            .map_err(|m| token_err(base, m)),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn good_expressions() {
        let good = [
            "* * * * *",
            "0 3 * * *",
            "*/5 * * * *",
            "0 */2 * * *",
            "0 9-17 * * 1-5",
            "0 9-17/2 * * MON-FRI",
            "15,45 * * * *",
            "0 0 1,15 * *",
            "0 0 * JAN,jul,Dec *",
            "0 0 * jan-mar sun",
            "0 0 * * 7",
            "0 0 * * 0",
            "0 0 ? * 1",
            "0 0 1 * ?",
            "5/15 * * * *",
            "59 23 31 12 6",
            "0 0 1 1 *",
            "  0  3   *  *  *  ",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@Daily",
            "0 * * * * *",
            "*/10 * * * * ?",
            "0 0 12 ? * WED",
            "0 15 10 L * ?",
            "0 15 10 LW * ?",
            "0 15 10 15W * ?",
            "0 15 10 ? * 6L",
            "0 15 10 ? * FRIL",
            "0 15 10 ? * 6#3",
            "0 15 10 ? * FRI#1",
            "0 0 12 * * ? 2030",
            "0 0 12 * * ? 2025-2030",
            "0 0 12 * * ? */2",
            "0 0 12 * * ? 1970,2099",
            "0 0/5 14,18 * * ?",
            "0 0 0 ? * SUN-SAT",
            "0 0 0 * * 0-7/2",
            "0 */60 * * * *",
        ];
        for e in good {
            assert_eq!(check(e), Ok(()), "{e:?} should be accepted");
        }
    }

    #[test]
    fn bad_expressions() {
        let bad = [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("* * * *", "\"* * * *\": expected 5, 6 or 7 fields, got 4"),
            (
                "* * * * * * * *",
                "\"* * * * * * * *\": expected 5, 6 or 7 fields, got 8",
            ),
            (
                "61 * * * *",
                "\"61 * * * *\": minute field \"61\" out of range 0-59",
            ),
            (
                "* 24 * * *",
                "\"* 24 * * *\": hour field \"24\" out of range 0-23",
            ),
            (
                "* * 0 * *",
                "\"* * 0 * *\": day-of-month field \"0\" out of range 1-31",
            ),
            ("* * 32 * *", "day-of-month field \"32\" out of range 1-31"),
            ("* * * 13 *", "month field \"13\" out of range 1-12"),
            ("* * * 0 *", "month field \"0\" out of range 1-12"),
            ("* * * * 8", "day-of-week field \"8\" out of range 0-7"),
            (
                "1,61 * * * *",
                "minute field \"1,61\": \"61\" out of range 0-59",
            ),
            (
                "x * * * *",
                "minute field \"x\" is not a valid value (expected 0-59)",
            ),
            (
                "* * * FOO *",
                "month field \"FOO\" is not a valid value (expected 1-12 or JAN-DEC)",
            ),
            (
                "* * * * FUNDAY",
                "day-of-week field \"FUNDAY\" is not a valid value (expected 0-7 or SUN-SAT)",
            ),
            ("* * * MON *", "month field \"MON\" is not a valid value"),
            (
                "* * * * JAN",
                "day-of-week field \"JAN\" is not a valid value",
            ),
            ("JAN * * * *", "minute field \"JAN\" is not a valid value"),
            (
                "*/0 * * * *",
                "minute field \"*/0\" has step 0 (expected 1-60)",
            ),
            (
                "*/61 * * * *",
                "minute field \"*/61\" has step 61 (expected 1-60)",
            ),
            ("*/x * * * *", "minute field \"*/x\" has an invalid step"),
            ("*/ * * * *", "minute field \"*/\" has an invalid step"),
            (
                "/5 * * * *",
                "minute field \"/5\" is missing a value before '/'",
            ),
            (
                "5-3 * * * *",
                "minute field \"5-3\" is a backwards range (5 > 3)",
            ),
            (
                "1-2-3 * * * *",
                "minute field \"1-2-3\": \"2-3\" is not a valid value",
            ),
            (
                "*-5 * * * *",
                "minute field \"*-5\": \"*\" is not a valid value",
            ),
            (
                "1,,2 * * * *",
                "minute field \"1,,2\" has an empty list element",
            ),
            ("1, * * * *", "has an empty list element"),
            ("? * * * *", "minute field \"?\" is not allowed here"),
            ("* * * ? *", "month field \"?\" is not allowed here"),
            (
                "-1 * * * *",
                "minute field \"-1\": \"\" is not a valid value",
            ),
            ("@every 5m", "\"@every 5m\": unknown macro"),
            ("@reboot", "unknown macro"),
            (
                "0 0 L * *",
                "day-of-month field \"L\" needs the 6 or 7-field form",
            ),
            (
                "0 0 * * 5L",
                "day-of-week field \"5L\" needs the 6 or 7-field form",
            ),
            (
                "0 0 * * 5#2",
                "day-of-week field \"5#2\" needs the 6 or 7-field form",
            ),
            ("0 0 0 15W * ?", ""),
            (
                "0 0 0 32W * ?",
                "day-of-month field \"32W\": \"32\" out of range 1-31",
            ),
            (
                "0 0 0 W * ?",
                "day-of-month field \"W\" is not a valid value (expected L, LW, nW or 1-31)",
            ),
            (
                "0 0 0 L,1 * ?",
                "day-of-month field \"L,1\": \"L\" cannot be combined",
            ),
            (
                "0 0 0 ? * 5#6",
                "day-of-week field \"5#6\" has an invalid occurrence",
            ),
            ("0 0 0 ? * 5#0", "has an invalid occurrence"),
            (
                "0 0 0 ? * 9#1",
                "day-of-week field \"9#1\": \"9\" out of range 0-7",
            ),
            (
                "0 0 0 ? * 1,5#2",
                "day-of-week field \"1,5#2\": \"5#2\" cannot be combined",
            ),
            (
                "0 0 0 ? * L",
                "day-of-week field \"L\" is not a valid value",
            ),
            ("60 * * * * *", "second field \"60\" out of range 0-59"),
            (
                "0 0 12 * * ? 1969",
                "year field \"1969\" out of range 1970-2199",
            ),
            (
                "0 0 12 * * ? 2200",
                "year field \"2200\" out of range 1970-2199",
            ),
            ("0 0 12 * * ? ?", "year field \"?\" is not allowed here"),
            (
                "99999999999 * * * *",
                "minute field \"99999999999\" out of range 0-59",
            ),
        ];
        for (expr, want) in bad {
            match check(expr) {
                Ok(()) if want.is_empty() => {}
                Ok(()) => panic!("{expr:?} should be rejected"),
                Err(got) => {
                    assert!(!want.is_empty(), "{expr:?} should be accepted, got {got:?}");
                    assert!(
                        got.contains(want),
                        "{expr:?}: error {got:?} should contain {want:?}"
                    );
                }
            }
        }
    }
}
