//! Why a cron expression is refused: one line naming the expression, the field and the bad
//! part, e.g. `"61 * * * *": minute field "61" out of range 0-59`.

/// A refused cron expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("must not be empty")]
    Empty,
    #[error("{expr:?}: unknown macro (expected one of {expected})")]
    UnknownMacro { expr: String, expected: String },
    #[error("{expr:?}: expected 5, 6 or 7 fields, got {got}")]
    FieldCount { expr: String, got: usize },
    /// A field's text, or a part of it (`token`), is wrong.
    #[error("{expr:?}: {field} field {text:?}{} {message}", part(.token))]
    Field {
        expr: String,
        field: &'static str,
        text: String,
        token: Option<String>,
        message: String,
    },
    #[error(
        "{expr:?}: never fires (no date matches day-of-month {day_of_month:?}, month {month:?}, \
         day-of-week {day_of_week:?}{})",
        year_part(.year)
    )]
    NeverFires {
        expr: String,
        day_of_month: String,
        month: String,
        day_of_week: String,
        year: Option<String>,
    },
}

fn part(token: &Option<String>) -> String {
    token.as_ref().map_or(String::new(), |t| format!(": {t:?}"))
}

fn year_part(year: &Option<String>) -> String {
    year.as_ref()
        .map_or(String::new(), |y| format!(", year {y:?}"))
}
