//! Watch streams: newline-delimited JSON events, fed from the store's broadcast channel by one
//! task per watch. A watch that falls behind the channel's buffer is ended (the client then
//! resumes or relists) so that a slow reader never holds up writers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::Shared;
use crate::error::ApiError;
use crate::resources::ResourceKey;
use crate::selector::Selectors;
use crate::store::{Change, ChangeKind};

/// What one watch sends.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// The resource watched.
    pub key: ResourceKey,
    /// Its namespace, `None` for all (or cluster-scoped).
    pub namespace: Option<String>,
    /// The `apiVersion` objects are sent as.
    pub api_version: String,
    /// The kind (for bookmarks).
    pub kind: String,
    /// Label and field selectors applied to events.
    pub selectors: Selectors,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: a bookmark marked `k8s.io/initial-events-end` follows the
    /// synthetic ADDED events.
    pub initial_events_end: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The `ERROR` event of a watch that cannot start (410 Expired).
pub fn error_line(error: &ApiError) -> Bytes {
    line("ERROR", &error.status())
}

impl WatchParams {
    /// The event a watcher sees for a change, if any: selectors turn a modification that
    /// enters or leaves the selection into ADDED or DELETED.
    fn event(&self, change: &Change) -> Option<Bytes> {
        if change.key != self.key
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != change.namespace)
        {
            return None;
        }
        let now = self.selectors.matches(&change.object);
        let kind = match change.kind {
            ChangeKind::Added => now.then_some("ADDED")?,
            ChangeKind::Deleted => now.then_some("DELETED")?,
            ChangeKind::Modified => {
                let before = change
                    .old
                    .as_ref()
                    .is_none_or(|o| self.selectors.matches(o));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
        };
        let mut object = (*change.object).clone();
        object["apiVersion"] = Value::String(self.api_version.clone());
        Some(line(kind, &object))
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": metadata}),
        )
    }
}

/// Starts the task feeding one watch; the body stream of its response.
pub fn start(
    shared: Arc<Shared>,
    params: WatchParams,
    first: Vec<Arc<Change>>,
    feed: broadcast::Receiver<Arc<Change>>,
    start_rv: u64,
) -> impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(run(shared, params, first, feed, start_rv, tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(Frame::data(b)), rx))
    })
}

async fn run(
    shared: Arc<Shared>,
    params: WatchParams,
    first: Vec<Arc<Change>>,
    mut feed: broadcast::Receiver<Arc<Change>>,
    start_rv: u64,
    tx: mpsc::Sender<Bytes>,
) {
    for change in &first {
        if let Some(event) = params.event(change)
            && tx.send(event).await.is_err()
        {
            return;
        }
    }
    if params.initial_events_end && tx.send(params.bookmark(start_rv, true)).await.is_err() {
        return;
    }
    let deadline = tokio::time::sleep(params.timeout);
    tokio::pin!(deadline);
    let period = shared
        .config
        .bookmark_interval
        .max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let event = tokio::select! {
            () = &mut deadline => return,
            _ = tick.tick() => {
                // Also how a watch notices its client went away while nothing changes.
                if tx.is_closed() {
                    return;
                }
                let rv = shared.store().caught_up(&feed);
                match rv {
                    Some(rv) if params.bookmarks => params.bookmark(rv, false),
                    _ => continue,
                }
            }
            received = feed.recv() => match received {
                Ok(change) => match params.event(&change) {
                    Some(event) => event,
                    None => continue,
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(resource = %params.key.1, missed, "watch fell behind; ending it");
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}
