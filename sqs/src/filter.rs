//! Lambda's event filtering on an SQS trigger: a message whose record matches none of the
//! trigger's `filterCriteria` is deleted without a call, as Lambda does; the others go on to
//! the batch. The patterns themselves are `faas_api::filter`.

use super::client::Queue;
use super::event::{Message, Source, filter_record};
use super::poller::Shared;

/// `messages` without those no filter matches, which are deleted now. A delete that fails
/// leaves those messages to come back after their visibility timeout, to be filtered again.
pub(crate) async fn drop_unmatched(
    shared: &Shared,
    queue: &Queue,
    source: &Source,
    messages: Vec<Message>,
) -> Vec<Message> {
    let filters = &shared.config.filters;
    if filters.is_empty() || messages.is_empty() {
        return messages;
    }
    let (kept, dropped): (Vec<Message>, Vec<Message>) = messages
        .into_iter()
        .partition(|m| faas_api::filter::passes(filters, &filter_record(source, m)));
    if dropped.is_empty() {
        return kept;
    }
    let handles: Vec<&str> = dropped.iter().map(|m| m.receipt_handle.as_str()).collect();
    let deleted = match queue.delete(&handles).await {
        Ok(failures) => handles.len() - failures.len().min(handles.len()),
        Err(err) => {
            tracing::warn!(function = %shared.config.function, queue = %shared.config.queue_url, error = %err, "sqs: filtered messages not deleted; they come back and are filtered again");
            0
        }
    };
    shared.metrics.filtered.inc_by(deleted as u64);
    shared.status.update(|s| s.filtered += deleted as u64);
    kept
}
