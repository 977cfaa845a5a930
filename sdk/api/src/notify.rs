//! A schedule's notifications (`schedules[].notify`): when they are sent and what their body
//! is. Pure: the scheduler sends them (`faas_schedule::notify`).
//!
//! A custom `body` is a JSON template: `{{name}}` placeholders (inside JSON strings) are
//! replaced by the run's values, JSON-escaped, so a message or an output can never break the
//! document. Validation renders it with sample values and refuses a template that is not
//! JSON then, or that names a placeholder that does not exist.

use std::collections::BTreeMap;

/// Every placeholder a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "event",
    "runId",
    "function",
    "schedule",
    "trigger",
    "phase",
    "attempt",
    "scheduledTime",
    "startTime",
    "endTime",
    "exitCode",
    "httpStatus",
    "message",
    "output",
    "text",
];

/// `template` with each `{{name}}` replaced by `values[name]`, JSON-escaped (without quotes).
/// Unknown names are left as they are (validation refuses them before this runs).
pub fn render(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match values.get(name) {
                    Some(value) => out.push_str(&escaped(value)),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `value` as the inside of a JSON string.
fn escaped(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Why `template` is not a usable body, if it is not.
pub fn check(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a {{ without its }}".to_owned());
        };
        let name = after[..end].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}}; known: {}",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[end + 2..];
    }
    let sample: BTreeMap<&str, String> = PLACEHOLDERS
        .iter()
        .map(|name| (*name, "sample \"quoted\" \\ value\nline".to_owned()))
        .collect();
    serde_json::from_str::<serde_json::Value>(&render(template, &sample))
        .map(drop)
        .map_err(|e| format!("is not JSON once its placeholders are filled in: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_inside_their_strings() {
        let values: BTreeMap<&str, String> = [
            ("function", "report".to_owned()),
            ("message", "exited \"3\"\nsee log".to_owned()),
        ]
        .into_iter()
        .collect();
        let body = render(
            r#"{"text": "{{function}} failed: {{ message }}", "raw": "{{nope}}"}"#,
            &values,
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(parsed["text"], "report failed: exited \"3\"\nsee log");
        assert_eq!(parsed["raw"], "{{nope}}");
    }

    #[test]
    fn templates_are_checked_before_any_run() {
        assert_eq!(check(r#"{"text": "{{function}}: {{phase}}"}"#), Ok(()));
        assert!(
            check(r#"{"text": "{{functon}}"}"#)
                .err()
                .unwrap_or_default()
                .starts_with("unknown placeholder {{functon}}")
        );
        assert!(
            check(r#"{"text": {{function}}}"#).is_err(),
            "a placeholder outside a string"
        );
        assert!(check(r#"{"text": "{{function"}"#).is_err());
        assert!(check("not json").is_err());
    }
}
