//! Options of a function's runs (Rundeck's job options): named, typed parameters declared in
//! `spec.options`, given by a schedule (`schedules[].options`), by `faas run --option`, by the
//! runs API or a webhook, and checked here, all at once, before a run exists. A run gets the
//! [`Resolved`] values:
//!
//! - a `mode: job` process as environment variables, `FAAS_OPTION_<NAME>` ([`Resolved::env`]);
//! - every other function as the `x-faas-options` request header, a JSON object
//!   ([`Resolved::header_value`]), and a Lambda handler's scheduled event as
//!   `detail: {"options": …, "payload": …}`;
//! - the run record as [`Resolved::shown`]: secret values replaced by [`REDACTED`].
//!
//! Values are JSON scalars: a string option holds a string, `number` a number, `boolean` a
//! boolean, `enum` one of its `values`. Text is accepted for every type (the command line and
//! query strings only have text) and converted by the type's rule; a `pattern` must match the
//! whole value.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most options a function may declare.
pub const MAX_OPTIONS: usize = 64;
/// Longest option name (it becomes part of an environment variable's name).
pub const MAX_NAME_LEN: usize = 64;
/// Longest value, in bytes of its text.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Longest the resolved options of one run may be together, as JSON: they travel in a request
/// header and a run record.
pub const MAX_TOTAL_BYTES: usize = 16 * 1024;
/// Prefix of the environment variable of each option of a `mode: job` run.
pub const ENV_PREFIX: &str = "FAAS_OPTION_";
/// What a secret option's value shows as, wherever it is shown.
pub const REDACTED: &str = "********";

/// One declared option (`spec.options[]`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunOption {
    /// A letter, then letters, digits and `_` (`region`, `dry_run`); unique without regard to
    /// case, since it becomes `FAAS_OPTION_<NAME>` upper-cased.
    pub name: String,
    /// `string` (default), `number`, `boolean` or `enum` (one of `values`).
    #[serde(rename = "type", default)]
    pub kind: OptionType,
    /// A run without a value (and without a `default`) is refused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// The value when none is given: a string, number or boolean of the option's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_json")]
    pub default: Option<Value>,
    /// `string` options: a regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// `enum` options: the allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value is a secret: shown as `********` in run records, the dashboard and the CLI.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secret: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The type of an option's values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OptionType {
    #[default]
    String,
    Number,
    Boolean,
    Enum,
}

impl OptionType {
    pub fn as_str(self) -> &'static str {
        match self {
            OptionType::String => "string",
            OptionType::Number => "number",
            OptionType::Boolean => "boolean",
            OptionType::Enum => "enum",
        }
    }
}

/// One problem with the options of a run: the option it is about (or `options` for the whole)
/// and the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError {
    pub option: String,
    pub message: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "option {}: {}", self.option, self.message)
    }
}

/// Every problem with the options of a run, each naming its option.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct OptionErrors(pub Vec<OptionError>);

impl fmt::Display for OptionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The options of one run, checked: every value of its declared type, secrets marked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resolved(BTreeMap<String, Resolve>);

#[derive(Clone, Debug, PartialEq)]
struct Resolve {
    value: Value,
    secret: bool,
}

impl Resolved {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values as the function gets them.
    pub fn values(&self) -> BTreeMap<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }

    /// The values as a record shows them: secrets as [`REDACTED`].
    pub fn shown(&self) -> BTreeMap<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| {
                let value = if v.secret {
                    Value::String(REDACTED.to_owned())
                } else {
                    v.value.clone()
                };
                (k.clone(), value)
            })
            .collect()
    }

    /// `FAAS_OPTION_<NAME>` = the value's text, for each option.
    pub fn env(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(k, v)| (env_name(k), text_of(&v.value)))
            .collect()
    }

    /// The `x-faas-options` header's value: the values as a JSON object in ASCII (every other
    /// character escaped as JSON allows), so any value fits a header.
    pub fn header_value(&self) -> String {
        ascii_json(&Value::Object(self.values().into_iter().collect()))
    }

    /// The options of a resumed run, from its record: secrets were never recorded, so they
    /// come from `declared` defaults again, or are left out.
    pub fn from_record(
        declared: &[RunOption],
        shown: &BTreeMap<String, Value>,
    ) -> Result<Resolved, OptionErrors> {
        let given: BTreeMap<String, Value> = shown
            .iter()
            .filter(|(name, _)| declared.iter().any(|d| &d.name == *name && !d.secret))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        resolve(declared, &[&given])
    }
}

/// The options of a run by hand of `function`: `given` over the values of its schedule named
/// `schedule` (none when it has no such schedule), over the defaults. The one rule of the runs
/// API, the CLI's cluster request and the controller's adoption of that request.
pub fn for_run(
    function: &crate::Function,
    schedule: Option<&str>,
    given: &BTreeMap<String, Value>,
) -> Result<Resolved, OptionErrors> {
    let from_schedule = schedule
        .and_then(|name| function.spec.schedules.iter().find(|s| s.name == name))
        .map(|s| &s.options);
    let empty = BTreeMap::new();
    resolve(
        &function.spec.options,
        &[from_schedule.unwrap_or(&empty), given],
    )
}

/// Option values read from `document` (a JSON object, `what` names it in errors: "the
/// finished run's output", "the request body") by JSON pointer: option name to pointer
/// (`/report/date`). Fails naming the option whose value is missing or not a string,
/// number or boolean. The caller resolves the result ([`for_run`]).
pub fn from_document(
    document: Option<&str>,
    pointers: &BTreeMap<String, String>,
    what: &str,
) -> Result<BTreeMap<String, Value>, String> {
    let parsed: Value = document
        .and_then(|text| serde_json::from_str(text).ok())
        .filter(Value::is_object)
        .ok_or_else(|| format!("{what} is not a JSON object"))?;
    let mut values = BTreeMap::new();
    for (name, pointer) in pointers {
        let value = parsed
            .pointer(pointer)
            .ok_or_else(|| format!("option {name}: {what} has nothing at {pointer:?}"))?;
        if !is_scalar(value) {
            return Err(format!(
                "option {name}: the value at {pointer:?} of {what} is not a string, number or \
                 boolean"
            ));
        }
        values.insert(name.clone(), value.clone());
    }
    Ok(values)
}

/// Whether `pointer` is a JSON pointer (empty, or `/`-led).
pub fn is_pointer(pointer: &str) -> bool {
    pointer.is_empty() || pointer.starts_with('/')
}

/// The environment variable of option `name`.
pub fn env_name(name: &str) -> String {
    format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())
}

/// Parses the `x-faas-options` header back (the job executor's side). `None` when it is not a
/// JSON object of scalars.
pub fn parse_header(value: &str) -> Option<BTreeMap<String, Value>> {
    let map: BTreeMap<String, Value> = serde_json::from_str(value).ok()?;
    map.values().all(is_scalar).then_some(map)
}

/// The text of a scalar: a string as is, numbers and booleans as JSON writes them.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Resolves the options of a run: `layers` of given values, later ones winning (a schedule's,
/// then a person's), then each declared option's default. Every problem is reported at once.
pub fn resolve(
    declared: &[RunOption],
    layers: &[&BTreeMap<String, Value>],
) -> Result<Resolved, OptionErrors> {
    let mut errors = Vec::new();
    let mut given: BTreeMap<&str, &Value> = BTreeMap::new();
    for layer in layers {
        for (name, value) in *layer {
            given.insert(name, value);
        }
    }
    for name in given.keys() {
        if !declared.iter().any(|d| d.name == *name) {
            let known: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
            let message = if known.is_empty() {
                "unknown: this function declares no options (spec.options)".to_owned()
            } else {
                format!("unknown; this function's options are {}", known.join(", "))
            };
            errors.push(OptionError {
                option: (*name).to_owned(),
                message,
            });
        }
    }
    let mut resolved = BTreeMap::new();
    for option in declared {
        let value = match (given.get(option.name.as_str()), &option.default) {
            (Some(value), _) => Some(*value),
            (None, Some(default)) => Some(default),
            (None, None) => None,
        };
        match value {
            Some(value) => match coerce(option, value) {
                Ok(value) => {
                    resolved.insert(
                        option.name.clone(),
                        Resolve {
                            value,
                            secret: option.secret,
                        },
                    );
                }
                Err(message) => errors.push(OptionError {
                    option: option.name.clone(),
                    message,
                }),
            },
            None if option.required => errors.push(OptionError {
                option: option.name.clone(),
                message: "is required and has no default".to_owned(),
            }),
            None => {}
        }
    }
    let resolved = Resolved(resolved);
    if errors.is_empty() && resolved.header_value().len() > MAX_TOTAL_BYTES {
        errors.push(OptionError {
            option: "options".to_owned(),
            message: format!("together longer than {MAX_TOTAL_BYTES} bytes as JSON"),
        });
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(OptionErrors(errors))
    }
}

/// `value` as a value of `option`'s type, or why it is not one.
fn coerce(option: &RunOption, value: &Value) -> Result<Value, String> {
    let shown = |v: &Value| {
        if option.secret {
            "the value given".to_owned()
        } else {
            format!("{v}")
        }
    };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        _ => {
            return Err(format!(
                "must be a {} (a string, number or boolean), got {}",
                option.kind.as_str(),
                kind_of(value)
            ));
        }
    };
    if text.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "longer than {MAX_VALUE_BYTES} bytes ({} bytes)",
            text.len()
        ));
    }
    if text.contains('\0') {
        return Err("must not contain a NUL character".to_owned());
    }
    match option.kind {
        OptionType::String => {
            if let Some(pattern) = &option.pattern {
                let re =
                    whole_match(pattern).map_err(|e| format!("pattern does not compile: {e}"))?;
                if !re.is_match(&text) {
                    return Err(format!(
                        "{} does not match the pattern {pattern:?}",
                        shown(value)
                    ));
                }
            }
            Ok(Value::String(text))
        }
        OptionType::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => parse_number(s.trim())
                .ok_or_else(|| format!("must be a number, got {}", shown(value))),
            _ => Err(format!("must be a number, got {}", shown(value))),
        },
        OptionType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(format!("must be true or false, got {}", shown(value))),
        },
        OptionType::Enum => {
            if option.values.contains(&text) {
                Ok(Value::String(text))
            } else {
                Err(format!(
                    "must be one of {}, got {}",
                    option.values.join(", "),
                    shown(value)
                ))
            }
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
    }
}

/// A finite number: an integer when it is one, else a float.
fn parse_number(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f = s.parse::<f64>().ok().filter(|f| f.is_finite())?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

/// `pattern` anchored at both ends. regex-lite matches in time linear in the input, whatever
/// the pattern, so a tenant's pattern cannot stall the platform.
fn whole_match(pattern: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
}

/// JSON with every non-ASCII character escaped (`\uXXXX`, surrogate pairs past the BMP):
/// outside strings, JSON is ASCII already.
fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Checks `spec.options` (the declarations) and every schedule's `options` against them,
/// pushing errors with their field paths.
pub(crate) fn validate(
    declared: &[RunOption],
    schedules: &[crate::Schedule],
    errs: &mut crate::ValidationErrors,
) {
    if declared.len() > MAX_OPTIONS {
        errs.push(
            "spec.options",
            format!("at most {MAX_OPTIONS} options, got {}", declared.len()),
        );
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, option) in declared.iter().enumerate() {
        let p = format!("spec.options[{i}]");
        if let Err(m) = check_name(&option.name) {
            errs.push(format!("{p}.name"), m);
        } else if let Some(first) = seen.insert(option.name.to_ascii_uppercase(), i) {
            errs.push(
                format!("{p}.name"),
                format!(
                    "{:?} is also spec.options[{first}] (names are compared without case: \
                     both would be {})",
                    option.name,
                    env_name(&option.name)
                ),
            );
        }
        match option.kind {
            OptionType::Enum if option.values.is_empty() => {
                errs.push(format!("{p}.values"), "an enum option needs its values");
            }
            OptionType::Enum => {}
            _ if !option.values.is_empty() => errs.push(
                format!("{p}.values"),
                format!(
                    "only enum options have values (this one is {})",
                    option.kind.as_str()
                ),
            ),
            _ => {}
        }
        if let Some(pattern) = &option.pattern {
            if option.kind != OptionType::String {
                errs.push(
                    format!("{p}.pattern"),
                    format!(
                        "only string options have a pattern (this one is {})",
                        option.kind.as_str()
                    ),
                );
            } else if let Err(e) = whole_match(pattern) {
                errs.push(format!("{p}.pattern"), format!("does not compile: {e}"));
            }
        }
        if let Some(default) = &option.default
            && let Err(m) = coerce(option, default)
        {
            errs.push(format!("{p}.default"), m);
        }
        if option.required && option.default.is_some() {
            errs.push(
                format!("{p}.required"),
                "an option with a default is never missing: drop required or the default",
            );
        }
    }
    // Each fire must resolve: a required option without a default needs the schedule's value.
    for (i, schedule) in schedules.iter().enumerate() {
        if let Err(e) = resolve(declared, &[&schedule.options]) {
            push_schedule_errors(i, e, errs);
        }
    }
}

fn push_schedule_errors(i: usize, e: OptionErrors, errs: &mut crate::ValidationErrors) {
    for e in e.0 {
        let path = if e.option == "options" {
            format!("spec.schedules[{i}].options")
        } else {
            format!("spec.schedules[{i}].options.{}", e.option)
        };
        errs.push(path, e.message);
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "must be a letter followed by letters, digits and _ (it becomes {ENV_PREFIX}<NAME>), \
             got {name:?}"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "at most {MAX_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
