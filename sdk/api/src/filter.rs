//! Lambda's event filter patterns (`filterCriteria.filters[].pattern` of an SQS trigger):
//! which messages reach a function. A pattern is a JSON object shaped like the record it
//! filters; every key must match (AND), and a key's list of rules matches when any rule does
//! (OR). Rules: a literal (string, number, `true`/`false`, `null`; `""` is the empty string),
//! `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`, `{"anything-but": v | [v..]
//! | {"prefix": s} | {"suffix": s}}`, `{"numeric": [op, n(, op, n)]}` with `=`, `<`, `<=`,
//! `>`, `>=`, and `{"exists": bool}`; `"$or": [pattern, pattern, ..]` at any level. A record
//! value that is a list matches when any of its elements does.
//!
//! [`Pattern::parse`] refuses what Lambda refuses, naming what is wrong; [`Pattern::matches`]
//! never fails. Pure: no I/O.

use serde_json::{Map, Value};

/// Lambda's limit on one pattern's length.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Lambda's limit on filters per trigger (after a quota raise; 5 by default).
pub const MAX_FILTERS: usize = 10;
/// Deepest nesting of objects a pattern may have.
const MAX_DEPTH: usize = 20;

/// A compiled filter pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern(Object);

#[derive(Clone, Debug, PartialEq)]
struct Object {
    fields: Vec<(String, Field)>,
    /// `$or` groups: each matches when any of its patterns does.
    or: Vec<Vec<Object>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Field {
    Nested(Object),
    Rules(Vec<Rule>),
}

#[derive(Clone, Debug, PartialEq)]
enum Rule {
    Exact(Value),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    Numeric(Vec<(Op, f64)>),
    Exists(bool),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Why a pattern is refused: the one line a user reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

fn refuse<T>(message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(message.into()))
}

impl Pattern {
    /// Compiles `text` (a JSON object), or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text.len() > MAX_PATTERN_LEN {
            return refuse(format!(
                "is {} characters long; Lambda's limit is {MAX_PATTERN_LEN}",
                text.len()
            ));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| PatternError(format!("is not JSON: {e}")))?;
        match value {
            Value::Object(map) => Ok(Pattern(object(&map, "", 0)?)),
            _ => refuse("must be a JSON object (e.g. {\"body\": {\"type\": [\"order\"]}})"),
        }
    }

    /// Whether `record` matches.
    pub fn matches(&self, record: &Value) -> bool {
        self.0.matches(Some(record))
    }
}

fn object(map: &Map<String, Value>, at: &str, depth: usize) -> Result<Object, PatternError> {
    if depth > MAX_DEPTH {
        return refuse(format!("nests deeper than {MAX_DEPTH} levels at {at}"));
    }
    if map.is_empty() {
        return refuse(format!("has an empty object at {}", shown(at)));
    }
    let mut out = Object {
        fields: Vec::new(),
        or: Vec::new(),
    };
    for (key, value) in map {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        if key == "$or" {
            let Value::Array(alternatives) = value else {
                return refuse(format!("{path} must be a list of patterns"));
            };
            if alternatives.len() < 2 {
                return refuse(format!("{path} needs at least two patterns"));
            }
            let group = alternatives
                .iter()
                .map(|alternative| match alternative {
                    Value::Object(m) => object(m, &path, depth + 1),
                    _ => refuse(format!("{path} must be a list of objects")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.or.push(group);
            continue;
        }
        let field = match value {
            Value::Object(m) => Field::Nested(object(m, &path, depth + 1)?),
            Value::Array(rules) if rules.is_empty() => {
                return refuse(format!("{path} has an empty list of rules"));
            }
            Value::Array(rules) => Field::Rules(
                rules
                    .iter()
                    .map(|r| rule(r, &path))
                    .collect::<Result<_, _>>()?,
            ),
            other => {
                return refuse(format!(
                    "{path}: values are lists of rules, e.g. [{other}], not {other}"
                ));
            }
        };
        out.fields.push((key.clone(), field));
    }
    Ok(out)
}

fn shown(at: &str) -> &str {
    if at.is_empty() { "the top" } else { at }
}

fn rule(value: &Value, path: &str) -> Result<Rule, PatternError> {
    let map = match value {
        Value::String(_) | Value::Bool(_) | Value::Null => return Ok(Rule::Exact(value.clone())),
        Value::Number(n) => {
            return match n.as_f64() {
                Some(f) => Ok(Rule::Exact(Value::from(f))),
                None => refuse(format!("{path}: {n} is not a number Lambda compares")),
            };
        }
        Value::Array(_) => return refuse(format!("{path}: a rule cannot be a list")),
        Value::Object(map) => map,
    };
    let [(operator, operand)] = map.iter().collect::<Vec<_>>()[..] else {
        return refuse(format!("{path}: a rule object has exactly one operator"));
    };
    let text = |what: &str| match operand {
        Value::String(s) => Ok(s.clone()),
        _ => refuse(format!("{path}: {what} takes a string")),
    };
    Ok(match operator.as_str() {
        "prefix" => Rule::Prefix(text("prefix")?),
        "suffix" => Rule::Suffix(text("suffix")?),
        "equals-ignore-case" => Rule::EqualsIgnoreCase(text("equals-ignore-case")?),
        "exists" => match operand {
            Value::Bool(b) => Rule::Exists(*b),
            _ => return refuse(format!("{path}: exists takes true or false")),
        },
        "numeric" => Rule::Numeric(numeric(operand, path)?),
        "anything-but" => anything_but(operand, path)?,
        other => {
            return refuse(format!(
                "{path}: unknown operator {other:?} (prefix, suffix, equals-ignore-case, \
                 anything-but, numeric, exists)"
            ));
        }
    })
}

fn anything_but(operand: &Value, path: &str) -> Result<Rule, PatternError> {
    let scalar = |v: &Value| match v {
        Value::String(_) => Ok(v.clone()),
        Value::Number(n) => n
            .as_f64()
            .map(Value::from)
            .ok_or_else(|| PatternError(format!("{path}: {n} is not a number"))),
        _ => refuse(format!(
            "{path}: anything-but takes strings or numbers, or a prefix or suffix"
        )),
    };
    match operand {
        Value::Array(values) if values.is_empty() => {
            refuse(format!("{path}: anything-but needs at least one value"))
        }
        Value::Array(values) => Ok(Rule::AnythingBut(
            values.iter().map(scalar).collect::<Result<_, _>>()?,
        )),
        Value::Object(map) => match map.iter().collect::<Vec<_>>()[..] {
            [(op, Value::String(s))] if op == "prefix" => Ok(Rule::AnythingButPrefix(s.clone())),
            [(op, Value::String(s))] if op == "suffix" => Ok(Rule::AnythingButSuffix(s.clone())),
            _ => refuse(format!(
                "{path}: anything-but takes {{\"prefix\": s}} or {{\"suffix\": s}} as an object"
            )),
        },
        other => Ok(Rule::AnythingBut(vec![scalar(other)?])),
    }
}

fn numeric(operand: &Value, path: &str) -> Result<Vec<(Op, f64)>, PatternError> {
    let bad = || {
        PatternError(format!(
            "{path}: numeric takes [op, number] or a range [\">\" or \">=\", low, \"<\" or \
             \"<=\", high]"
        ))
    };
    let items = operand.as_array().ok_or_else(bad)?;
    if items.len() != 2 && items.len() != 4 {
        return Err(bad());
    }
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let op = match pair[0].as_str() {
            Some("=") => Op::Eq,
            Some("<") => Op::Lt,
            Some("<=") => Op::Le,
            Some(">") => Op::Gt,
            Some(">=") => Op::Ge,
            _ => return Err(bad()),
        };
        let n = pair[1].as_f64().ok_or_else(bad)?;
        out.push((op, n));
    }
    if let [(low_op, low), (high_op, high)] = out[..] {
        let lower = matches!(low_op, Op::Gt | Op::Ge);
        let upper = matches!(high_op, Op::Lt | Op::Le);
        if !lower || !upper || low >= high {
            return refuse(format!(
                "{path}: a numeric range is a lower bound then a higher upper bound"
            ));
        }
    }
    Ok(out)
}

impl Object {
    fn matches(&self, value: Option<&Value>) -> bool {
        let child = |key: &str| value.and_then(|v| v.as_object()).and_then(|m| m.get(key));
        self.fields.iter().all(|(key, field)| match field {
            Field::Nested(object) => object.matches(child(key)),
            Field::Rules(rules) => rules.iter().any(|r| r.matches(child(key))),
        }) && self
            .or
            .iter()
            .all(|group| group.iter().any(|o| o.matches(value)))
    }
}

impl Rule {
    fn matches(&self, value: Option<&Value>) -> bool {
        if let Rule::Exists(wanted) = self {
            let present = value.is_some_and(|v| !matches!(v, Value::Array(a) if a.is_empty()));
            return present == *wanted;
        }
        let Some(value) = value else { return false };
        let candidates: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        match self {
            // Every element must be outside the list: one forbidden value is enough to refuse.
            Rule::AnythingBut(_) | Rule::AnythingButPrefix(_) | Rule::AnythingButSuffix(_) => {
                !candidates.is_empty() && candidates.iter().all(|c| self.one(c))
            }
            _ => candidates.iter().any(|c| self.one(c)),
        }
    }

    fn one(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Rule::Exact(Value::Number(n)) => value.as_f64() == n.as_f64(),
            Rule::Exact(wanted) => value == wanted,
            Rule::Prefix(p) => text.is_some_and(|t| t.starts_with(p.as_str())),
            Rule::Suffix(s) => text.is_some_and(|t| t.ends_with(s.as_str())),
            Rule::EqualsIgnoreCase(s) => text.is_some_and(|t| t.to_lowercase() == s.to_lowercase()),
            Rule::AnythingBut(values) => {
                (value.is_string() || value.is_number())
                    && !values.iter().any(|v| match (v, value) {
                        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                        (a, b) => a == b,
                    })
            }
            Rule::AnythingButPrefix(p) => text.is_some_and(|t| !t.starts_with(p.as_str())),
            Rule::AnythingButSuffix(s) => text.is_some_and(|t| !t.ends_with(s.as_str())),
            Rule::Numeric(bounds) => value.as_f64().is_some_and(|n| {
                bounds.iter().all(|(op, b)| match op {
                    Op::Eq => n == *b,
                    Op::Lt => n < *b,
                    Op::Le => n <= *b,
                    Op::Gt => n > *b,
                    Op::Ge => n >= *b,
                })
            }),
            Rule::Exists(_) => true,
        }
    }
}

/// Whether `record` passes a trigger's filters: any of them matches, or there are none.
pub fn passes(filters: &[Pattern], record: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|p| p.matches(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(pattern: &str, record: Value) -> bool {
        Pattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .matches(&record)
    }

    /// The rows of Lambda's filter rule syntax table
    /// (docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html), each with a
    /// record it matches and one it does not.
    #[test]
    fn lambdas_documented_rules_match_as_documented() {
        let rows: &[(&str, &str, Value, Value)] = &[
            (
                "null",
                r#"{"UserID": [null]}"#,
                json!({"UserID": null}),
                json!({"UserID": "x"}),
            ),
            (
                "empty",
                r#"{"LastName": [""]}"#,
                json!({"LastName": ""}),
                json!({"LastName": "a"}),
            ),
            (
                "equals",
                r#"{"Name": ["Alice"]}"#,
                json!({"Name": "Alice"}),
                json!({"Name": "alice"}),
            ),
            (
                "equals ignore case",
                r#"{"Name": [{"equals-ignore-case": "alice"}]}"#,
                json!({"Name": "ALICE"}),
                json!({"Name": "Alicia"}),
            ),
            (
                "and",
                r#"{"Location": ["New York"], "Day": ["Monday"]}"#,
                json!({"Location": "New York", "Day": "Monday"}),
                json!({"Location": "New York", "Day": "Sunday"}),
            ),
            (
                "or",
                r#"{"PaymentType": ["Credit", "Debit"]}"#,
                json!({"PaymentType": "Debit"}),
                json!({"PaymentType": "Cash"}),
            ),
            (
                "or across fields",
                r#"{"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}"#,
                json!({"Location": "Paris", "Day": "Monday"}),
                json!({"Location": "Paris", "Day": "Sunday"}),
            ),
            (
                "not",
                r#"{"Weather": [{"anything-but": ["Raining"]}]}"#,
                json!({"Weather": "Sunny"}),
                json!({"Weather": "Raining"}),
            ),
            (
                "numeric equals",
                r#"{"Price": [{"numeric": ["=", 100]}]}"#,
                json!({"Price": 100.0}),
                json!({"Price": 101}),
            ),
            (
                "numeric range",
                r#"{"Price": [{"numeric": [">", 10, "<=", 20]}]}"#,
                json!({"Price": 20}),
                json!({"Price": 10}),
            ),
            (
                "exists",
                r#"{"ProductName": [{"exists": true}]}"#,
                json!({"ProductName": "x"}),
                json!({"Other": "x"}),
            ),
            (
                "does not exist",
                r#"{"ProductName": [{"exists": false}]}"#,
                json!({"Other": "x"}),
                json!({"ProductName": "x"}),
            ),
            (
                "begins with",
                r#"{"Region": [{"prefix": "us-"}]}"#,
                json!({"Region": "us-east-1"}),
                json!({"Region": "eu-west-3"}),
            ),
            (
                "ends with",
                r#"{"FileName": [{"suffix": ".png"}]}"#,
                json!({"FileName": "cat.png"}),
                json!({"FileName": "cat.jpg"}),
            ),
            (
                "anything but a prefix",
                r#"{"Region": [{"anything-but": {"prefix": "us-"}}]}"#,
                json!({"Region": "eu-west-3"}),
                json!({"Region": "us-east-1"}),
            ),
            (
                "nested",
                r#"{"body": {"Order": {"Total": [{"numeric": [">=", 50]}]}}}"#,
                json!({"body": {"Order": {"Total": 75}}}),
                json!({"body": {"Order": {"Total": 5}}}),
            ),
            (
                "a list in the record matches by any element",
                r#"{"Tags": ["urgent"]}"#,
                json!({"Tags": ["low", "urgent"]}),
                json!({"Tags": ["low"]}),
            ),
        ];
        for (name, pattern, yes, no) in rows {
            assert!(
                matches(pattern, yes.clone()),
                "{name}: {pattern} must match {yes}"
            );
            assert!(
                !matches(pattern, no.clone()),
                "{name}: {pattern} must not match {no}"
            );
        }
    }

    #[test]
    fn values_of_another_type_never_match() {
        assert!(!matches(r#"{"n": ["5"]}"#, json!({"n": 5})));
        assert!(!matches(r#"{"n": [5]}"#, json!({"n": "5"})));
        assert!(!matches(
            r#"{"n": [{"numeric": [">", 1]}]}"#,
            json!({"n": "7"})
        ));
        assert!(!matches(r#"{"s": [{"prefix": "a"}]}"#, json!({"s": 1})));
        // anything-but needs the field, and refuses a list holding a forbidden value.
        assert!(!matches(r#"{"w": [{"anything-but": "x"}]}"#, json!({})));
        assert!(!matches(
            r#"{"w": [{"anything-but": "x"}]}"#,
            json!({"w": ["a", "x"]})
        ));
        // A nested pattern on a record that is not an object there.
        assert!(!matches(
            r#"{"body": {"a": ["b"]}}"#,
            json!({"body": "plain text"})
        ));
        assert!(matches(
            r#"{"body": {"a": [{"exists": false}]}}"#,
            json!({"body": "text"})
        ));
    }

    #[test]
    fn malformed_patterns_are_refused_saying_why() {
        for (pattern, says) in [
            ("", "not JSON"),
            ("[1]", "JSON object"),
            ("{}", "empty object"),
            (r#"{"a": "b"}"#, "lists of rules"),
            (r#"{"a": []}"#, "empty list"),
            (r#"{"a": [[1]]}"#, "cannot be a list"),
            (r#"{"a": [{"prefix": 1}]}"#, "takes a string"),
            (
                r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#,
                "exactly one operator",
            ),
            (r#"{"a": [{"wildcard": "x*"}]}"#, "unknown operator"),
            (r#"{"a": [{"numeric": [">", "one"]}]}"#, "numeric takes"),
            (r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#, "lower bound"),
            (r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#, "lower bound"),
            (r#"{"a": [{"exists": "yes"}]}"#, "true or false"),
            (r#"{"a": [{"anything-but": []}]}"#, "at least one"),
            (r#"{"a": [{"anything-but": [true]}]}"#, "strings or numbers"),
            (r#"{"$or": [{"a": ["b"]}]}"#, "at least two"),
            (r#"{"$or": {"a": ["b"]}}"#, "list of patterns"),
        ] {
            let error = Pattern::parse(pattern).expect_err(pattern).to_string();
            assert!(error.contains(says), "{pattern}: {error}");
        }
        let long = format!(r#"{{"a": ["{}"]}}"#, "x".repeat(MAX_PATTERN_LEN));
        assert!(Pattern::parse(&long).is_err());
        let deep = format!("{}[1]{}", r#"{"a":"#.repeat(30), "}".repeat(30));
        assert!(
            Pattern::parse(&deep)
                .expect_err("deep")
                .to_string()
                .contains("deeper")
        );
    }

    #[test]
    fn no_filters_pass_everything_and_several_are_ored() {
        let record = json!({"body": {"type": "refund"}});
        assert!(passes(&[], &record));
        let order = Pattern::parse(r#"{"body": {"type": ["order"]}}"#).expect("valid");
        let refund = Pattern::parse(r#"{"body": {"type": ["refund"]}}"#).expect("valid");
        assert!(!passes(std::slice::from_ref(&order), &record));
        assert!(passes(&[order, refund], &record));
    }
}
