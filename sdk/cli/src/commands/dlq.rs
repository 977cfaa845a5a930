//! `faas dlq list|replay|delete`: the async calls that failed every attempt. `list` shows
//! each with what was asked (method, path, body) and why it failed; `replay` puts them back
//! in the queue as new calls (attempt 1, same call id); `delete` drops them.

use serde_json::Value;

use super::table::{Column, left, print_value, render, right};
use crate::args::{DeadLetterArgs, DlqCommand, Output};
use crate::backend::{Backend, DeadLetters};
use crate::stdout::out;

const COLUMNS: [Column; 6] = [
    left("CALL"),
    left("FUNCTION"),
    right("ATTEMPTS"),
    left("REQUEST"),
    left("ACCEPTED"),
    left("LAST FAILURE"),
];

/// Most characters of a request body shown in the table (`-o json` has the rest).
const SHOWN_BODY: usize = 60;

pub async fn run(backend: &dyn Backend, action: DlqCommand) -> anyhow::Result<()> {
    match action {
        DlqCommand::List { function, output } => list(backend, function.as_deref(), output).await,
        DlqCommand::Replay { which } => settle(backend, true, &which).await,
        DlqCommand::Delete { which } => settle(backend, false, &which).await,
        DlqCommand::Redrive {
            function,
            queue,
            output,
        } => redrive(backend, &function, queue.as_deref(), output).await,
    }
}

/// `faas dlq redrive`: one line per trigger queue saying what moved and how.
async fn redrive(
    backend: &dyn Backend,
    function: &str,
    queue: Option<&str>,
    output: Output,
) -> anyhow::Result<()> {
    let queues = backend.redrive_sqs(function, queue).await?;
    if output != Output::Table {
        return print_value(&Value::Array(queues), output);
    }
    for q in &queues {
        eprintln!("{}", redrive_line(q));
    }
    Ok(())
}

/// What one queue's redrive did, in words.
fn redrive_line(q: &Value) -> String {
    let text = |k: &str| q[k].as_str().unwrap_or("?").to_owned();
    let (queue, dlq) = (text("queue"), text("deadLetterQueue"));
    let plural = |n: u64| if n == 1 { "message" } else { "messages" };
    match q["method"].as_str() {
        Some("moveTask") => {
            let n = q["messages"].as_u64().unwrap_or(0);
            format!(
                "SQS is moving {n} {} from {dlq} back to {queue} (move task {}; follow it with \
                 `aws sqs list-message-move-tasks --source-arn <the dead-letter queue's ARN>`)",
                plural(n),
                text("taskHandle")
            )
        }
        _ => {
            let n = q["moved"].as_u64().unwrap_or(0);
            format!(
                "moved {n} {} from {dlq} back to {queue} (copied and deleted: {})",
                plural(n),
                text("whyNotMoveTask")
            )
        }
    }
}

async fn list(backend: &dyn Backend, function: Option<&str>, output: Output) -> anyhow::Result<()> {
    let letters = backend.dead_letters().await?;
    let shown: Vec<Value> = letters
        .value
        .into_iter()
        .filter(|l| function.is_none_or(|f| l["function"] == f))
        .collect();
    if output != Output::Table {
        return print_value(&Value::Array(shown), output);
    }
    if shown.is_empty() {
        eprintln!("no dead letters{}", backend.scope());
        return Ok(());
    }
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|l| {
            vec![
                text(&l["callId"]),
                text(&l["function"]),
                l["attempts"].as_u64().map_or("-".into(), |n| n.to_string()),
                request(l),
                text(&l["acceptedAt"]),
                text(&l["reason"]),
            ]
        })
        .collect();
    out!("{}", render("", &COLUMNS, &rows))
}

/// `POST /orders {"id": 1}`: method, path and the start of the body, on one line.
fn request(letter: &Value) -> String {
    let (Some(method), Some(path)) = (letter["method"].as_str(), letter["path"].as_str()) else {
        return "(not a call)".to_owned();
    };
    let body = match (letter["body"].as_str(), letter["bodyBytes"].as_u64()) {
        (_, Some(0) | None) => String::new(),
        (Some(text), _) => {
            let mut printable = text.chars().filter(|c| !c.is_control());
            let line: String = printable.by_ref().take(SHOWN_BODY).collect();
            let cut = if printable.next().is_some() {
                "…"
            } else {
                ""
            };
            format!(" {line}{cut}")
        }
        (None, Some(bytes)) => format!(" ({bytes} bytes, binary)"),
    };
    format!("{method} {path}{body}")
}

async fn settle(backend: &dyn Backend, replay: bool, args: &DeadLetterArgs) -> anyhow::Result<()> {
    let which = DeadLetters {
        call_id: args.id.as_deref(),
        function: args.function.as_deref(),
    };
    let count = backend.settle_dead_letters(replay, &which).await?;
    let what = if replay { "replayed" } else { "deleted" };
    let letters = if count == 1 {
        "dead letter"
    } else {
        "dead letters"
    };
    eprintln!("{what} {count} {letters}{}", backend.scope());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{redrive_line, request};
    use serde_json::json;

    #[test]
    fn a_redrive_says_what_moved_and_how() {
        assert_eq!(
            redrive_line(
                &json!({"queue": "Q", "deadLetterQueue": "D", "method": "copy", "moved": 1,
                                 "whyNotMoveTask": "StartMessageMoveTask on D failed: 500"})
            ),
            "moved 1 message from D back to Q (copied and deleted: StartMessageMoveTask on D failed: 500)"
        );
        let task = redrive_line(
            &json!({"queue": "Q", "deadLetterQueue": "D", "method": "moveTask",
                                        "taskHandle": "H", "messages": 40}),
        );
        assert!(
            task.starts_with("SQS is moving 40 messages from D back to Q (move task H;"),
            "{task}"
        );
    }

    #[test]
    fn a_request_is_one_line_with_the_start_of_its_body() {
        assert_eq!(
            request(
                &json!({"method": "POST", "path": "/orders", "body": "{\"id\": 1}\n", "bodyBytes": 10})
            ),
            "POST /orders {\"id\": 1}"
        );
        let long = "x".repeat(100);
        let shown = request(&json!({"method": "PUT", "path": "/", "body": long, "bodyBytes": 100}));
        assert_eq!(shown, format!("PUT / {}…", "x".repeat(60)));
        assert_eq!(
            request(&json!({"method": "POST", "path": "/b", "bodyBase64": "/wA=", "bodyBytes": 2})),
            "POST /b (2 bytes, binary)"
        );
        assert_eq!(
            request(&json!({"method": "GET", "path": "/", "bodyBytes": 0})),
            "GET /"
        );
        assert_eq!(request(&json!({"callId": "x"})), "(not a call)");
    }
}
