//! From text to [`Fields`]: the tokenizer ([`super::syntax`]) reads each field, this puts the
//! answers together and adds what needs the whole expression: expressions whose days never
//! occur (`0 0 30 2 *`) are refused.

use super::CronError;
use super::calendar::{Bits, Fields, Years};
use super::syntax::{self, Field, Form, Reading, field_error};

/// A parsed expression: its fields and whether it has a seconds field.
pub(super) fn parse(expr: &str) -> Result<(Fields, bool), CronError> {
    let form = syntax::split(expr)?;
    if form.quartz {
        // First read with the 5-field day-of-week numbering (0-7), then with Quartz's (1-7):
        // a mistake that does not depend on the numbering is reported the same in every form,
        // wherever it is in the expression, before the numbering is.
        let vixie = Reading {
            extensions: true,
            quartz_weekdays: false,
        };
        fields(expr, &form, vixie)?;
    }
    let reading = Reading {
        extensions: form.quartz,
        quartz_weekdays: form.quartz,
    };
    let fields = fields(expr, &form, reading)?;
    if !fields.ever_matches() {
        return Err(CronError::NeverFires {
            expr: expr.to_owned(),
            day_of_month: form.day_of_month.to_owned(),
            month: form.month.to_owned(),
            day_of_week: form.day_of_week.to_owned(),
            year: form.year.map(str::to_owned),
        });
    }
    Ok((fields, form.quartz))
}

/// Every field of `form`, left to right; the first error names its field.
fn fields(expr: &str, form: &Form<'_>, reading: Reading) -> Result<Fields, CronError> {
    let bits = |field: Field, text: &str| -> Result<Bits, CronError> {
        let mut b = Bits::default();
        for v in
            syntax::values(text, field, reading).map_err(|e| field_error(expr, field, text, e))?
        {
            b.insert(v);
        }
        Ok(b)
    };
    let seconds = bits(Field::Second, form.second)?;
    let minutes = bits(Field::Minute, form.minute)?;
    let hours = bits(Field::Hour, form.hour)?;
    let (dom, dom_star) = syntax::day_of_month(form.day_of_month, reading)
        .map_err(|e| field_error(expr, Field::DayOfMonth, form.day_of_month, e))?;
    let months = bits(Field::Month, form.month)?;
    let (dow, dow_star) = syntax::day_of_week(form.day_of_week, reading)
        .map_err(|e| field_error(expr, Field::DayOfWeek, form.day_of_week, e))?;
    let years = match form.year {
        None | Some("*") => None,
        Some(text) => {
            let mut ys = Years::default();
            for v in syntax::values(text, Field::Year, reading)
                .map_err(|e| field_error(expr, Field::Year, text, e))?
            {
                ys.insert(v);
            }
            Some(ys)
        }
    };
    Ok(Fields {
        seconds,
        minutes,
        hours,
        months,
        dom,
        dom_star,
        dow,
        dow_star,
        years,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The syntax pass alone: every field read with the 5-field day-of-week numbering (what
    /// every form shares), without the never-fires check.
    fn check(expr: &str) -> Result<(), String> {
        check_typed(expr).map_err(|e| e.to_string())
    }

    fn check_typed(expr: &str) -> Result<(), CronError> {
        let form = syntax::split(expr)?;
        let reading = Reading {
            extensions: form.quartz,
            quartz_weekdays: false,
        };
        fields(expr, &form, reading).map(|_| ())
    }

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
