//! Each function's recent output in local mode, for `faas logs NAME [-f]`: a bounded ring of
//! lines per function (process stdout/stderr, Lambda handlers, WASM guest output), each with
//! the call id when the executor knows it. Filled by a `tracing` layer from the events the
//! runtime logs under the `faas::guest` target, so executors keep one way to report output;
//! served by `GET /system/functions/{name}/logs`. Not a log store: a restart forgets it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use tracing::field::{Field, Visit};

/// Lines kept per function; older ones are dropped first.
pub const LINES_PER_FUNCTION: usize = 2000;
/// The target the runtime logs guest output under.
const GUEST_TARGET: &str = "faas::guest";

/// One line a function printed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Increases by one per line across functions: `after` in the next request follows.
    pub seq: u64,
    /// When the platform read it (RFC 3339).
    pub time: jiff::Timestamp,
    /// The invocation it belongs to, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// `stdout` or `stderr` (or empty for the platform's own notes about the guest).
    pub stream: String,
    pub line: String,
}

#[derive(Default)]
struct Book {
    next: u64,
    lines: HashMap<String, VecDeque<LogLine>>,
}

/// The rings of every function of this process.
#[derive(Default)]
pub struct LogBook {
    book: Mutex<Book>,
}

/// The process's log book (one per process, as the `tracing` subscriber is).
pub fn book() -> &'static LogBook {
    static BOOK: OnceLock<LogBook> = OnceLock::new();
    BOOK.get_or_init(LogBook::default)
}

/// Which lines to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Query {
    /// Only lines with a larger `seq` (following).
    pub after: Option<u64>,
    /// Only lines at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Only the last N of what matches.
    pub tail: Option<usize>,
}

impl LogBook {
    /// Keeps one line of `function`.
    pub fn push(&self, function: &str, stream: &str, call_id: Option<String>, line: String) {
        let mut book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        book.next += 1;
        let seq = book.next;
        let ring = book.lines.entry(function.to_owned()).or_default();
        if ring.len() == LINES_PER_FUNCTION {
            ring.pop_front();
        }
        ring.push_back(LogLine {
            seq,
            time: jiff::Timestamp::now(),
            call_id: call_id.filter(|id| !id.is_empty()),
            stream: stream.to_owned(),
            line,
        });
    }

    /// The lines of `function` that `query` selects, oldest first, and the `seq` to follow
    /// from.
    pub fn read(&self, function: &str, query: Query) -> (Vec<LogLine>, u64) {
        let book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        let mut lines: Vec<LogLine> = book
            .lines
            .get(function)
            .into_iter()
            .flatten()
            .filter(|l| query.after.is_none_or(|after| l.seq > after))
            .filter(|l| query.since.is_none_or(|since| l.time >= since))
            .cloned()
            .collect();
        if let Some(tail) = query.tail {
            lines.drain(..lines.len().saturating_sub(tail));
        }
        (lines, query.after.unwrap_or(0).max(book.next))
    }
}

/// The `tracing` layer that fills [`book`] from guest output events.
pub struct Layer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Layer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != GUEST_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(function) = fields.function {
            book().push(
                &function,
                fields.stream.as_deref().unwrap_or_default(),
                fields.call_id,
                fields.message.unwrap_or_default(),
            );
        }
    }
}

#[derive(Default)]
struct Fields {
    function: Option<String>,
    call_id: Option<String>,
    stream: Option<String>,
    message: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field, format!("{value:?}"));
    }
}

impl Fields {
    fn set(&mut self, field: &Field, value: String) {
        match field.name() {
            "function" => self.function = Some(value),
            "call_id" => self.call_id = Some(value),
            "stream" => self.stream = Some(value),
            "message" => self.message = Some(value),
            _ => {}
        }
    }
}

/// Lines kept on a run record (the newest), and their bytes at most.
const TAIL_LINES: usize = 100;
const TAIL_BYTES: usize = 4 * 1024;

/// The last lines `function` printed for call `call_id` (a run id for runs), bounded, one
/// per line: the log tail of a run whose executor keeps no tail of its own (processes,
/// Lambda handlers). `None` when it printed nothing known to be its own.
pub fn tail_of_call(function: &str, call_id: &str) -> Option<String> {
    let book = book().book.lock().unwrap_or_else(|e| e.into_inner());
    let mut kept: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for line in book.lines.get(function)?.iter().rev() {
        if line.call_id.as_deref() != Some(call_id) {
            continue;
        }
        bytes += line.line.len() + 1;
        if kept.len() == TAIL_LINES || (bytes > TAIL_BYTES && !kept.is_empty()) {
            break;
        }
        kept.push(&line.line);
    }
    kept.reverse();
    (!kept.is_empty()).then(|| kept.join("\n"))
}

/// `GET /system/functions/{name}/logs?tail=N&after=SEQ&sinceSeconds=S`.
pub fn json(function: &str, raw_query: &str) -> serde_json::Value {
    let mut query = Query::default();
    for (key, value) in raw_query.split('&').filter_map(|kv| kv.split_once('=')) {
        match key {
            "after" => query.after = value.parse().ok(),
            "tail" => query.tail = value.parse().ok(),
            "sinceSeconds" => {
                query.since = value.parse::<i64>().ok().and_then(|s| {
                    jiff::Timestamp::now()
                        .checked_sub(jiff::SignedDuration::from_secs(s))
                        .ok()
                })
            }
            _ => {}
        }
    }
    let (lines, next) = book().read(function, query);
    serde_json::json!({ "lines": lines, "next": next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_bounded_per_function_and_followable() {
        let book = LogBook::default();
        for i in 0..LINES_PER_FUNCTION + 5 {
            book.push("a", "stdout", Some("call-1".into()), format!("line {i}"));
        }
        book.push("b", "stderr", None, "other".into());
        let (all, next) = book.read("a", Query::default());
        assert_eq!(all.len(), LINES_PER_FUNCTION);
        assert_eq!(all[0].line, "line 5");
        let (tail, _) = book.read(
            "a",
            Query {
                tail: Some(2),
                ..Query::default()
            },
        );
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[1].line, format!("line {}", LINES_PER_FUNCTION + 4));
        book.push("a", "stdout", None, "new".into());
        let (new, _) = book.read(
            "a",
            Query {
                after: Some(next),
                ..Query::default()
            },
        );
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].line, "new");
        assert_eq!(new[0].call_id, None);
    }

    #[test]
    fn a_calls_tail_is_its_own_lines_only() {
        let name = "tail-of-call-test";
        book().push(name, "stdout", Some("run-1".into()), "first".into());
        book().push(name, "stdout", Some("run-2".into()), "other".into());
        book().push(name, "stderr", Some("run-1".into()), "second".into());
        book().push(name, "stdout", None, "nobody's".into());
        assert_eq!(
            tail_of_call(name, "run-1").as_deref(),
            Some("first\nsecond")
        );
        assert_eq!(tail_of_call(name, "run-3"), None);
        for i in 0..TAIL_LINES + 10 {
            book().push(name, "stdout", Some("run-4".into()), format!("{i}"));
        }
        let tail = tail_of_call(name, "run-4").expect("run-4 printed");
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(tail.ends_with(&format!("{}", TAIL_LINES + 9)));
    }
}
