//! Moving messages out of a dead-letter queue: back to the queue they failed on (a trigger's
//! redrive, an async call's replay) or nowhere (a discard).
//!
//! Two ways, one outcome. SQS's own move task (`StartMessageMoveTask`) is preferred for a
//! whole redrive: the server moves the messages at its pace, keeping their attributes, and
//! nothing here has to stay up. Where the server does not have it (moto, other SQS-protocol
//! servers) or refuses it for this queue, the messages are copied: received, sent to the
//! destination as new messages with their body and message attributes, then deleted from
//! the dead-letter queue. A message is deleted only after its copy was sent, so a failure in
//! between leaves it in both queues (delivered twice) rather than in none: at-least-once,
//! like SQS itself.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use base64::Engine as _;

use serde::Serialize;

use crate::client::{Clients, MAX_PER_CALL, Queue};
use crate::event::Message;
use crate::{SourceError, TriggerConfig, triggers_of};

/// Most messages one copy goes through; a bigger dead-letter queue needs another call, which
/// says how many remain.
pub const MAX_COPIED: usize = 10_000;

/// How a redrive went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "method",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Redrive {
    /// SQS moves the messages itself; its task handle (for `ListMessageMoveTasks` and
    /// `CancelMessageMoveTask`), and how many messages the queue held when it started.
    #[serde(rename = "moveTask")]
    Task {
        #[serde(rename = "taskHandle")]
        handle: String,
        messages: u64,
    },
    /// The messages were copied and deleted here.
    #[serde(rename = "copy")]
    Copied {
        moved: u64,
        /// Why SQS's move task was not used.
        #[serde(rename = "whyNotMoveTask")]
        why_not_task: String,
    },
}

/// One trigger's redrive, as the management API and `faas dlq redrive` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redriven {
    pub queue: String,
    pub dead_letter_queue: String,
    #[serde(flatten)]
    pub outcome: Redrive,
}

/// Why a function's dead letters could not be moved back.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// The function has no SQS trigger (on the queue asked for).
    #[error("{0}")]
    NoTrigger(String),
    /// The trigger's queue has no `RedrivePolicy`.
    #[error("{0}")]
    NoDeadLetterQueue(String),
    #[error("{0}")]
    Queue(#[from] SourceError),
}

/// The SQS triggers of `function` a redrive goes through: all, or the one on `queue`.
pub fn triggers_to_redrive(
    function: &faas_api::Function,
    queue: Option<&str>,
) -> Result<Vec<TriggerConfig>, RedriveError> {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let triggers: Vec<TriggerConfig> = triggers_of(function)
        .into_iter()
        .flatten()
        .filter(|t| queue.is_none_or(|q| t.queue_url == q))
        .collect();
    if triggers.is_empty() {
        return Err(RedriveError::NoTrigger(match queue {
            Some(q) => format!("function {name} has no SQS trigger on {q}"),
            None => format!("function {name} has no SQS trigger"),
        }));
    }
    Ok(triggers)
}

/// Moves the messages of the dead-letter queue of `trigger`'s queue (its `RedrivePolicy`'s)
/// back to that queue, with `clients`' credentials.
pub async fn redrive_trigger(
    clients: &Clients,
    trigger: &TriggerConfig,
) -> Result<Redriven, RedriveError> {
    let source = clients
        .queue(&trigger.queue_url, trigger.queue.region.as_deref())
        .await?;
    let Some(dead_letters) = source.dead_letter_queue().await? else {
        return Err(RedriveError::NoDeadLetterQueue(format!(
            "queue {} has no RedrivePolicy: its failed messages are not kept anywhere to move \
             back",
            trigger.queue_url
        )));
    };
    let outcome = redrive(&dead_letters, &source).await?;
    tracing::info!(function = %trigger.function, queue = %trigger.queue_url, outcome = ?outcome, "sqs: dead letters redriven");
    Ok(Redriven {
        queue: trigger.queue_url.clone(),
        dead_letter_queue: dead_letters.url().to_owned(),
        outcome,
    })
}

/// Moves every message of `dead_letters` back to `destination`: by SQS's move task where the
/// server has it, else by copying ([`move_messages`], at most [`MAX_COPIED`]).
pub async fn redrive(dead_letters: &Queue, destination: &Queue) -> Result<Redrive, SourceError> {
    let source_arn = dead_letters.arn().await?;
    let destination_arn = destination.arn().await?;
    match dead_letters
        .start_move_task(&source_arn, &destination_arn)
        .await
    {
        Ok(handle) => {
            let (visible, _) = dead_letters.depth().await.unwrap_or((0, 0));
            Ok(Redrive::Task {
                handle,
                messages: visible,
            })
        }
        Err(err) if !falls_back(&err) => Err(err),
        Err(err) => {
            tracing::info!(queue = %dead_letters.url(), error = %err, "StartMessageMoveTask unavailable; copying the messages instead");
            let moved =
                move_messages(dead_letters, Some(destination), |_| true, MAX_COPIED).await?;
            Ok(Redrive::Copied {
                moved,
                why_not_task: err.message,
            })
        }
    }
}

/// Whether a failed `StartMessageMoveTask` leaves copying as the way: yes unless the caller
/// may not touch the queues at all (copying would be refused too, and the first refusal is
/// the clearer one).
fn falls_back(err: &SourceError) -> bool {
    !matches!(
        err.code.as_deref(),
        Some(
            "AccessDenied"
                | "AccessDeniedException"
                | "AWS.SimpleQueueService.AccessDenied"
                | "AWS.SimpleQueueService.NonExistentQueue"
                | "QueueDoesNotExist"
        )
    )
}

/// Goes through `from`: each message `select` takes is copied to `to` (if any) and then
/// deleted from `from`; the others are made visible again at once. Stops when a receive
/// brings only messages already seen (those put back), none, or `limit` were taken. Returns
/// how many were taken.
pub async fn move_messages(
    from: &Queue,
    to: Option<&Queue>,
    select: impl Fn(&Message) -> bool,
    limit: usize,
) -> Result<u64, SourceError> {
    let mut seen = HashSet::new();
    let mut taken = 0u64;
    while (taken as usize) < limit {
        let messages = from.receive(MAX_PER_CALL, Duration::ZERO).await?;
        let fresh: Vec<&Message> = messages
            .iter()
            .filter(|m| seen.insert(m.message_id.clone()))
            .collect();
        let mut back: Vec<&str> = messages
            .iter()
            .filter(|m| !fresh.iter().any(|f| f.message_id == m.message_id))
            .map(|m| m.receipt_handle.as_str())
            .collect();
        for message in &fresh {
            if (taken as usize) >= limit || !select(message) {
                back.push(message.receipt_handle.as_str());
                continue;
            }
            if let Some(to) = to {
                to.send_copy(message).await?;
            }
            from.delete(&[message.receipt_handle.as_str()]).await?;
            taken += 1;
        }
        // Seen before, not selected, or past the limit: visible to whoever else reads them.
        if !back.is_empty() {
            from.set_visibility(&back, Duration::ZERO).await?;
        }
        if fresh.is_empty() {
            break;
        }
    }
    Ok(taken)
}

impl Queue {
    /// The queue's ARN (`GetQueueAttributes QueueArn`).
    pub async fn arn(&self) -> Result<String, SourceError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| SourceError::of("GetQueueAttributes", &self.url, e))?;
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| SourceError {
                code: None,
                message: format!("GetQueueAttributes on {} gave no QueueArn", self.url),
            })
    }

    /// Starts SQS's move task from this queue (a dead-letter queue) to `destination_arn`,
    /// asked once: a server without the operation should not be asked four times.
    async fn start_move_task(
        &self,
        source_arn: &str,
        destination_arn: &str,
    ) -> Result<String, SourceError> {
        let out = self
            .client
            .start_message_move_task()
            .source_arn(source_arn)
            .destination_arn(destination_arn)
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(1)),
            )
            .send()
            .await
            .map_err(|e| SourceError::of("StartMessageMoveTask", &self.url, e))?;
        Ok(out.task_handle().unwrap_or_default().to_owned())
    }

    /// Sends a copy of `message` (received from another queue): its body and message
    /// attributes; on a FIFO queue in its message group, with a deduplication id of its own
    /// (reusing the original one within SQS's 5-minute window would drop the copy).
    pub async fn send_copy(&self, message: &Message) -> Result<String, SourceError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(&message.body);
        for (name, value) in &message.message_attributes {
            let mut attribute = MessageAttributeValue::builder()
                .data_type(&value.data_type)
                .set_string_value(value.string_value.clone());
            if let Some(binary) = &value.binary_value {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(binary)
                    .unwrap_or_default();
                attribute = attribute.binary_value(Blob::new(bytes));
            }
            if let Ok(attribute) = attribute.build() {
                send = send.message_attributes(name, attribute);
            }
        }
        if self.url.ends_with(".fifo") {
            let group = message.group().unwrap_or("default");
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            send = send
                .message_group_id(group)
                .message_deduplication_id(format!("{}-{stamp}", message.message_id));
        }
        let out = send
            .send()
            .await
            .map_err(|e| SourceError::of("SendMessage", &self.url, e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: Option<&str>) -> SourceError {
        SourceError {
            code: code.map(str::to_owned),
            message: "StartMessageMoveTask failed".to_owned(),
        }
    }

    #[test]
    fn copying_replaces_the_move_task_unless_the_queues_are_out_of_reach() {
        // A server without the operation (moto answers a bare 500), one that refuses it for
        // this queue, a throttle: copying still works.
        for code in [
            None,
            Some("500"),
            Some("UnsupportedOperation"),
            Some("InvalidParameterValue"),
            Some("RequestThrottled"),
        ] {
            assert!(falls_back(&error(code)), "{code:?}");
        }
        // Copying would be refused too; the first refusal is the clearer one.
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
        ] {
            assert!(!falls_back(&error(Some(code))), "{code}");
        }
    }

    #[test]
    fn a_redrive_is_shown_with_its_method() {
        let task = Redriven {
            queue: "q".into(),
            dead_letter_queue: "d".into(),
            outcome: Redrive::Task {
                handle: "h".into(),
                messages: 3,
            },
        };
        assert_eq!(
            serde_json::to_value(&task).unwrap_or_default(),
            serde_json::json!({"queue": "q", "deadLetterQueue": "d", "method": "moveTask", "taskHandle": "h", "messages": 3})
        );
    }
}
