//! After the function answered for a batch: which messages to delete and which to leave for
//! redelivery, with Lambda's rules.
//!
//! - Non-2xx (error, timeout, trap): the whole batch fails; nothing is deleted, and the
//!   messages return after their visibility timeout, so the queue's redrive policy moves
//!   poison messages to its DLQ.
//! - 2xx without `reportBatchItemFailures`: everything is deleted.
//! - 2xx with it: the body may list failures, `{"batchItemFailures":[{"itemIdentifier":"<id>"}]}`.
//!   An empty body, `null`, an empty or null list mean full success. Anything malformed (not
//!   JSON, a wrong key, an empty or unknown id) fails the whole batch, as Lambda does.
//! - FIFO: a failed message and every later message of its group are kept, so the group is
//!   redelivered in order.

use std::collections::HashSet;

use serde::Deserialize;

use super::event::Message;

/// The decision for one batch, as indexes into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Processed: delete.
    pub delete: Vec<usize>,
    /// Not processed: leave in the queue for redelivery.
    pub keep: Vec<usize>,
    /// Why anything is kept, for the function's status and logs.
    pub reason: Option<String>,
}

impl Settlement {
    fn all_kept(batch: &[Message], reason: String) -> Self {
        Settlement {
            delete: Vec::new(),
            keep: (0..batch.len()).collect(),
            reason: Some(reason),
        }
    }

    fn all_deleted(batch: &[Message]) -> Self {
        Settlement {
            delete: (0..batch.len()).collect(),
            ..Settlement::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialResponse {
    #[serde(rename = "batchItemFailures")]
    batch_item_failures: Option<Vec<ItemFailure>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    item_identifier: Option<String>,
}

/// Settles `batch` after the function answered `status` with `body`.
pub fn settle(
    batch: &[Message],
    fifo: bool,
    report_batch_item_failures: bool,
    status: u16,
    body: &[u8],
) -> Settlement {
    if !(200..300).contains(&status) {
        return Settlement::all_kept(batch, format!("function answered HTTP {status}"));
    }
    if !report_batch_item_failures {
        return Settlement::all_deleted(batch);
    }
    let failed = match failed_ids(batch, body) {
        Ok(failed) => failed,
        Err(reason) => return Settlement::all_kept(batch, reason),
    };
    if failed.is_empty() {
        return Settlement::all_deleted(batch);
    }
    // FIFO: once a message of a group failed, the rest of that group waits with it.
    let mut blocked_groups: HashSet<&str> = HashSet::new();
    let mut settlement = Settlement::default();
    for (i, message) in batch.iter().enumerate() {
        let group = message.group().filter(|_| fifo);
        let blocked = group.is_some_and(|g| blocked_groups.contains(g));
        if blocked || failed.contains(message.message_id.as_str()) {
            if let Some(group) = group {
                blocked_groups.insert(group);
            }
            settlement.keep.push(i);
        } else {
            settlement.delete.push(i);
        }
    }
    settlement.reason = Some(format!(
        "the function reported {} of {} messages failed",
        failed.len(),
        batch.len()
    ));
    settlement
}

/// The ids the function reported failed, or why its answer fails the whole batch.
fn failed_ids<'a>(batch: &'a [Message], body: &[u8]) -> Result<HashSet<&'a str>, String> {
    let text = std::str::from_utf8(body)
        .map_err(|_| "batchItemFailures response is not UTF-8".to_owned())?
        .trim();
    if text.is_empty() || text == "null" {
        return Ok(HashSet::new());
    }
    let response: PartialResponse = serde_json::from_str(text).map_err(|e| {
        format!("batchItemFailures response is not {{\"batchItemFailures\":[{{\"itemIdentifier\":\"<messageId>\"}}]}}: {e}")
    })?;
    let ids: HashSet<&'a str> = batch.iter().map(|m| m.message_id.as_str()).collect();
    let mut failed = HashSet::new();
    for item in response.batch_item_failures.unwrap_or_default() {
        let id = item
            .item_identifier
            .filter(|id| !id.is_empty())
            .ok_or_else(|| "batchItemFailures has an empty itemIdentifier".to_owned())?;
        let known = ids
            .get(id.as_str())
            .ok_or_else(|| format!("batchItemFailures names {id:?}, which is not in the batch"))?;
        failed.insert(*known);
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(groups: &[(&str, Option<&str>)]) -> Vec<Message> {
        groups
            .iter()
            .map(|(id, group)| {
                let mut m = Message {
                    message_id: (*id).into(),
                    ..Message::default()
                };
                if let Some(g) = group {
                    m.attributes.insert("MessageGroupId".into(), (*g).into());
                }
                m
            })
            .collect()
    }

    fn failures(ids: &[&str]) -> Vec<u8> {
        let items: Vec<_> = ids
            .iter()
            .map(|id| serde_json::json!({ "itemIdentifier": id }))
            .collect();
        serde_json::to_vec(&serde_json::json!({ "batchItemFailures": items })).expect("json")
    }

    #[test]
    fn errors_keep_everything_and_success_deletes_everything() {
        let b = batch(&[("a", None), ("b", None)]);
        let s = settle(&b, false, false, 500, b"");
        assert_eq!((s.delete, s.keep), (vec![], vec![0, 1]));
        assert_eq!(s.reason.as_deref(), Some("function answered HTTP 500"));
        let s = settle(&b, false, false, 200, b"anything");
        assert_eq!((s.delete, s.keep), (vec![0, 1], vec![]));
        // Without reportBatchItemFailures a failure list is just a body.
        let s = settle(&b, false, false, 200, &failures(&["a"]));
        assert_eq!(s.delete, vec![0, 1]);
    }

    #[test]
    fn partial_responses_delete_all_but_the_failures() {
        let b = batch(&[("a", None), ("b", None), ("c", None)]);
        let s = settle(&b, false, true, 200, &failures(&["b"]));
        assert_eq!((s.delete, s.keep), (vec![0, 2], vec![1]));
        for success in [
            &b""[..],
            b"null",
            b"{}",
            br#"{"batchItemFailures":[]}"#,
            br#"{"batchItemFailures":null}"#,
            b"  \n",
        ] {
            let s = settle(&b, false, true, 200, success);
            assert_eq!(
                s.delete,
                vec![0, 1, 2],
                "{:?}",
                String::from_utf8_lossy(success)
            );
        }
    }

    #[test]
    fn malformed_partial_responses_fail_the_whole_batch() {
        let b = batch(&[("a", None), ("b", None)]);
        for (body, why) in [
            (&b"not json"[..], "is not {"),
            (br#"{"batchItemFailure":[]}"#, "is not {"),
            (
                br#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
                "empty itemIdentifier",
            ),
            (
                br#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
                "empty itemIdentifier",
            ),
            (
                br#"{"batchItemFailures":[{"itemIdentifier":"zz"}]}"#,
                "\"zz\", which is not in the batch",
            ),
            (br#"{"batchItemFailures":[{"id":"a"}]}"#, "is not {"),
        ] {
            let s = settle(&b, false, true, 200, body);
            assert_eq!(
                (s.delete.len(), s.keep.len()),
                (0, 2),
                "{}",
                String::from_utf8_lossy(body)
            );
            let reason = s.reason.unwrap_or_default();
            assert!(reason.contains(why), "{reason}");
        }
    }

    #[test]
    fn fifo_keeps_the_failed_message_and_the_rest_of_its_group() {
        let b = batch(&[
            ("a1", Some("a")),
            ("b1", Some("b")),
            ("a2", Some("a")),
            ("b2", Some("b")),
            ("a3", Some("a")),
        ]);
        let s = settle(&b, true, true, 200, &failures(&["a2"]));
        assert_eq!((s.delete, s.keep), (vec![0, 1, 3], vec![2, 4]));
        // The same answer on a standard queue keeps only the failure.
        let s = settle(&b, false, true, 200, &failures(&["a2"]));
        assert_eq!(s.keep, vec![2]);
    }
}
