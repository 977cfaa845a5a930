//! Chained runs: `then` of a function or of one of its schedules starts other functions' runs
//! when a run ends (`onSuccess`, `onFailure`), with options taken from the finished run's
//! output. Each started run names its parent (`spec.parentRun`) and its depth in the chain.
//!
//! Pure: which runs a finished run starts and with which options ([`next_runs`],
//! [`NextRun::given_options`]), loops among a set of functions ([`find_loop`]), and the
//! checks of one manifest. Starting the runs is the scheduler's host's (the gateway's
//! registry locally, the controller's Function cache in a cluster): only those know the
//! other functions' declared options.
//!
//! A loop is refused when it is deployed (the local registry, and `faas deploy` against a
//! cluster, see every function of the namespace); [`MAX_DEPTH`] bounds a chain that gets
//! past that (two deploys racing in a cluster): its run past the bound is not started, and
//! the parent says so.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validate::ValidationErrors;
use crate::{FunctionSpec, RunPhase};

/// Longest chain of runs: a run at this depth starts no other.
pub const MAX_DEPTH: u32 = 10;
/// Most runs one `then` may start.
pub const MAX_NEXT: usize = 10;
/// The `spec.trigger` of a chained run.
pub const TRIGGER: &str = "chain";

/// `spec.then` / `spec.schedules[].then`: the runs started when a run ends.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Then {
    /// Started after a run that succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<NextRun>,
    /// Started after a run that did not (failed, timed out, interrupted or cancelled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<NextRun>,
}

/// One run to start: another function of the same namespace (or the same one, once a loop
/// is impossible: never).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NextRun {
    /// The function to run.
    pub function: String,
    /// One of its schedules, whose settings the run takes (timeout, retries, history,
    /// notification, options, payload); default a plain manual run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Option values, as a schedule's `options`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::any_json_map")]
    pub options: BTreeMap<String, Value>,
    /// Option values read from the finished run's output, a JSON object: option name to a
    /// JSON pointer (`/report/date`). Over `options`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options_from_output: BTreeMap<String, String>,
    /// The finished run's output is the run's payload (its request body, a job's stdin).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pass_output: bool,
}

/// Where a run sits in a chain: the run that started it and how deep it is (a run nobody's
/// `then` started is at depth 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    /// The finished run's id.
    pub run: String,
    /// The started run's depth: the parent's plus one.
    pub depth: u32,
}

/// The runs a run of `function` (`schedule`, or a run by hand) that ended `phase` starts:
/// the schedule's `then` when it has one, else the function's. None for a run that was
/// skipped or has not ended.
pub fn next_runs<'a>(
    spec: &'a FunctionSpec,
    schedule: Option<&str>,
    phase: RunPhase,
) -> &'a [NextRun] {
    let then = schedule
        .and_then(|name| spec.schedules.iter().find(|s| s.name == name))
        .and_then(|s| s.then.as_ref())
        .or(spec.then.as_ref());
    let Some(then) = then else { return &[] };
    match phase {
        RunPhase::Succeeded => &then.on_success,
        RunPhase::Failed | RunPhase::TimedOut | RunPhase::Interrupted => &then.on_failure,
        RunPhase::Pending | RunPhase::Running | RunPhase::Skipped => &[],
    }
}

/// [`next_runs`] of a finished run record of a function whose spec is `spec`.
pub fn next_runs_of<'a>(finished: &crate::FunctionRun, spec: &'a FunctionSpec) -> &'a [NextRun] {
    let phase = finished
        .status
        .as_ref()
        .map_or(RunPhase::Pending, |s| s.phase);
    next_runs(spec, Some(finished.spec.schedule.as_str()), phase)
}

impl NextRun {
    /// The option values this run is given: `options`, then what `optionsFromOutput` reads
    /// from `output` (the finished run's). Fails naming the option whose value is missing or
    /// not a string, number or boolean; the caller resolves the result against the
    /// function's declarations ([`crate::options::for_run`]).
    pub fn given_options(&self, output: Option<&str>) -> Result<BTreeMap<String, Value>, String> {
        let mut given = self.options.clone();
        if !self.options_from_output.is_empty() {
            given.extend(crate::options::from_document(
                output,
                &self.options_from_output,
                "the finished run's output",
            )?);
        }
        Ok(given)
    }
}

/// A run to start, worked out from one [`NextRun`] of a finished run.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub function: String,
    pub schedule: Option<String>,
    /// The option values given (before the function's defaults): what a cluster request
    /// carries in its annotation.
    pub given: BTreeMap<String, Value>,
    /// The same, resolved against the function's declarations.
    pub options: crate::options::Resolved,
    /// Its payload: the finished run's output with `passOutput`.
    pub payload: Option<Vec<u8>>,
    pub parent: Parent,
}

/// The run `next` asks for after `finished` (a record whose `then` lists it), checked
/// against `function`, the function it names as its host knows it (`None`: none of that
/// name). Fails with a line naming the function and why (depth, function, schedule,
/// options): what the finished run's record says.
pub fn plan(
    finished: &crate::FunctionRun,
    next: &NextRun,
    function: Option<&crate::Function>,
) -> Result<Planned, String> {
    let name = &next.function;
    let depth = finished.spec.chain_depth.saturating_add(1);
    if depth > MAX_DEPTH {
        return Err(format!(
            "{name}: not started, the chain is already {MAX_DEPTH} runs long (a loop?)"
        ));
    }
    let Some(function) = function else {
        return Err(format!("{name}: no such function"));
    };
    if let Some(schedule) = &next.schedule
        && !function.spec.schedules.iter().any(|s| &s.name == schedule)
    {
        return Err(format!("{name}: it has no schedule {schedule}"));
    }
    let output = finished.status.as_ref().and_then(|s| s.output.as_deref());
    let given = next
        .given_options(output)
        .map_err(|e| format!("{name}: {e}"))?;
    let options = crate::options::for_run(function, next.schedule.as_deref(), &given)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(Planned {
        function: name.clone(),
        schedule: next.schedule.clone(),
        given,
        options,
        payload: next
            .pass_output
            .then(|| output.unwrap_or_default().as_bytes().to_vec()),
        parent: Parent {
            run: finished.metadata.name.clone().unwrap_or_default(),
            depth,
        },
    })
}

/// Every function a `then` of `spec` (its own or a schedule's) starts.
pub fn successors(spec: &FunctionSpec) -> BTreeSet<&str> {
    spec.schedules
        .iter()
        .filter_map(|s| s.then.as_ref())
        .chain(spec.then.as_ref())
        .flat_map(|t| t.on_success.iter().chain(&t.on_failure))
        .map(|next| next.function.as_str())
        .collect()
}

/// A loop among `functions` (name, spec) through their `then`s, as the names along it
/// (`[a, b, a]`), or `None`. Deterministic: the loop found from the smallest name.
pub fn find_loop<'a>(functions: &BTreeMap<&'a str, &'a FunctionSpec>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        functions: &BTreeMap<&'a str, &'a FunctionSpec>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|n| n.to_string()).collect();
                cycle.push(name.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name, Mark::Open);
        path.push(name);
        if let Some(spec) = functions.get(name) {
            for next in successors(spec) {
                // A function the set does not hold ends the walk: it starts nothing known.
                let Some((&key, _)) = functions.get_key_value(next) else {
                    continue;
                };
                if let Some(cycle) = visit(key, functions, marks, path) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for &name in functions.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = visit(name, functions, &mut marks, &mut path) {
            return Some(cycle);
        }
    }
    None
}

/// The loop of `then`s that `function` would close among `others` (name, spec: the
/// functions already there, `function`'s old version among them or not), written
/// `a → b → a`; `None` when there is none.
pub fn loop_with<'a>(
    others: impl IntoIterator<Item = (&'a str, &'a FunctionSpec)>,
    function: &'a crate::Function,
) -> Option<String> {
    let mut all: BTreeMap<&str, &FunctionSpec> = others.into_iter().collect();
    let name = function.metadata.name.as_deref().unwrap_or_default();
    all.insert(name, &function.spec);
    find_loop(&all).map(|names| names.join(" → "))
}

/// The checks of one manifest's `then` at `path` (`spec.then`, `spec.schedules[0].then`):
/// names, pointers, sizes, and the loop to itself (loops through other functions are found
/// where those are known: [`find_loop`]).
pub(crate) fn validate(
    then: &Then,
    path: &str,
    own_name: Option<&str>,
    errs: &mut ValidationErrors,
) {
    let count = then.on_success.len() + then.on_failure.len();
    if count > MAX_NEXT {
        errs.push(path, format!("starts {count} runs; at most {MAX_NEXT}"));
    }
    for (list, field) in [
        (&then.on_success, "onSuccess"),
        (&then.on_failure, "onFailure"),
    ] {
        for (i, next) in list.iter().enumerate() {
            let p = format!("{path}.{field}[{i}]");
            if let Err(m) = crate::validate::check_dns_label(&next.function) {
                errs.push(format!("{p}.function"), m);
            }
            if own_name == Some(next.function.as_str()) {
                errs.push(
                    format!("{p}.function"),
                    "starts a run of this function itself: a loop",
                );
            }
            if let Some(schedule) = &next.schedule
                && let Err(m) = crate::validate::check_dns_label(schedule)
            {
                errs.push(format!("{p}.schedule"), m);
            }
            for (name, pointer) in &next.options_from_output {
                if !crate::options::is_pointer(pointer) {
                    errs.push(
                        format!("{p}.optionsFromOutput.{name}"),
                        format!("{pointer:?} is not a JSON pointer (`/field/0/name`)"),
                    );
                }
                if next.options.contains_key(name) {
                    errs.push(
                        format!("{p}.optionsFromOutput.{name}"),
                        "also in options: give it one way",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
