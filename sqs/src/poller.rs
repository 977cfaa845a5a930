//! One trigger's poller: long-polls its queue, gathers batches (size, window, 6 MB), and hands
//! each to a batch task ([`super::batch`]) while no more than `maxConcurrency` are in flight.
//! Self-contained: it needs a queue client and a [`FunctionTarget`], nothing of the gateway,
//! so local mode and the runtime pods of cluster mode run it unchanged.
//!
//! Shutdown has two steps, driven by [`Phase`]: `Drain` stops receiving (a batch being
//! gathered is released at once) and lets batches in flight finish; `Release` (the grace
//! period is over) makes whatever has not finished visible again immediately.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::batch::{self, Batch};
use super::client::{Clients, MAX_PER_CALL, Queue, SourceError};
use super::event::Source;
use super::metrics::{PollerMetrics, SqsMetrics};
use super::status::{StatusCell, TriggerState, TriggerStatus};
use super::trigger::{MAX_BATCH_BYTES, TriggerConfig};
use faas_api::backoff::Backoff;
use faas_invoke::FunctionTarget;

/// First wait after a source error; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Where a poller is in its life; only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Run,
    /// Stop receiving; let batches in flight finish.
    Drain,
    /// Give back what has not finished (visibility 0) and stop.
    Release,
}

/// What a poller and its batch tasks share.
pub(crate) struct Shared {
    pub config: TriggerConfig,
    pub target: Arc<dyn FunctionTarget>,
    pub metrics: PollerMetrics,
    pub status: StatusCell,
    pub in_flight: AtomicUsize,
    pub idle: Notify,
    /// Notified each time a batch ends (a slot for another may be free).
    pub settled: Notify,
    /// How many batches may be in flight now.
    pub scale: super::scale::Scale,
    calls: AtomicU64,
}

impl Shared {
    /// A call id for the next batch: unique per poller, readable in logs.
    pub fn next_call_id(&self) -> String {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        format!(
            "sqs-{}-{}-{n}",
            self.config.function, self.config.queue.name
        )
    }
}

/// A running poller.
pub struct Poller {
    shared: Arc<Shared>,
    /// Whose credentials it reads the queue with.
    clients: Arc<Clients>,
    phase: watch::Sender<Phase>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    /// Starts polling for `config` (which must be enabled).
    pub fn start(
        config: TriggerConfig,
        clients: Arc<Clients>,
        target: Arc<dyn FunctionTarget>,
        metrics: &SqsMetrics,
    ) -> Poller {
        let status = TriggerStatus::new(
            &config.queue_url,
            TriggerState::Starting,
            config.max_concurrency,
        );
        let scale = super::scale::Scale::new(config.max_concurrency);
        let shared = Arc::new(Shared {
            metrics: metrics.of(&config.function, &config.queue.name),
            config,
            target,
            status: StatusCell::new(status),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            settled: Notify::new(),
            scale,
            calls: AtomicU64::new(0),
        });
        let (phase, watch) = watch::channel(Phase::Run);
        let task = tokio::spawn(run(Arc::clone(&shared), Arc::clone(&clients), watch));
        Poller {
            shared,
            clients,
            phase,
            task,
        }
    }

    /// Whether it reads its queue with `clients` (the same identity, not merely equal).
    pub fn reads_with(&self, clients: &Arc<Clients>) -> bool {
        Arc::ptr_eq(&self.clients, clients)
    }

    /// The trigger this poller runs.
    pub fn config(&self) -> &TriggerConfig {
        &self.shared.config
    }

    /// Its status now.
    pub fn status(&self) -> TriggerStatus {
        let mut status = self.shared.status.get();
        status.batches_in_flight = self.shared.in_flight.load(Ordering::Relaxed);
        status.concurrency = self.shared.scale.target();
        status
    }

    /// Stops receiving and waits for the batches in flight, up to `grace` (`None`: as long as
    /// they take, which the function timeout bounds); then releases what is left.
    pub async fn stop(self, grace: Option<Duration>) {
        if self.phase.send_if_modified(|p| advance(p, Phase::Drain)) {
            tracing::info!(
                function = %self.shared.config.function,
                queue = %self.shared.config.queue_url,
                "sqs: stopping; an open receive ends within its long poll ({}s) and what it gets is released",
                self.shared.config.long_poll.as_secs()
            );
        }
        let finished = async {
            let _ = (&mut { self.task }).await;
        };
        match grace {
            None => finished.await,
            Some(grace) => {
                let mut finished = std::pin::pin!(finished);
                if tokio::time::timeout(grace, &mut finished).await.is_err() {
                    self.phase.send_if_modified(|p| advance(p, Phase::Release));
                    finished.await;
                }
            }
        }
    }
}

fn advance(phase: &mut Phase, to: Phase) -> bool {
    if *phase < to {
        *phase = to;
        true
    } else {
        false
    }
}

/// Resolves once the phase is at least `at`.
pub(crate) async fn reached(phase: &mut watch::Receiver<Phase>, at: Phase) {
    // An Err means the sender is gone: the poller handle was dropped, which stops it too.
    let _ = phase.wait_for(|p| *p >= at).await;
}

async fn run(shared: Arc<Shared>, clients: Arc<Clients>, mut phase: watch::Receiver<Phase>) {
    let config = &shared.config;
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    // The queue client and its visibility timeout; errors here are the usual ones of a new
    // trigger (a typo in the URL, a missing permission), retried until fixed.
    let setup = async {
        loop {
            let attempt = async {
                let queue = clients
                    .queue(&config.queue_url, config.queue.region.as_deref())
                    .await?;
                let visibility = queue.visibility_timeout().await?;
                let region = match &config.queue.region {
                    Some(region) => region.clone(),
                    None => clients.default_region().await.unwrap_or_default(),
                };
                Ok::<_, SourceError>((queue, visibility, region))
            };
            match attempt.await {
                Ok(ready) => return ready,
                Err(err) => {
                    source_error(&shared, &err, &mut backoff);
                    tokio::time::sleep(backoff.current()).await;
                }
            }
        }
    };
    let (queue, visibility, region) = tokio::select! {
        ready = setup => ready,
        () = reached(&mut phase, Phase::Drain) => return stopped(&shared),
    };
    backoff.reset();
    shared.status.update(|s| {
        s.visibility_timeout_seconds = Some(visibility.as_secs());
    });
    shared.status.set(TriggerState::Polling, None);
    tracing::info!(
        function = %config.function,
        queue = %config.queue_url,
        visibility_timeout = visibility.as_secs(),
        "sqs: polling"
    );
    let source = Arc::new(Source {
        arn: config.queue.arn(&region),
        region,
    });
    'polling: loop {
        // Backpressure: no receive while maxConcurrency batches are in flight.
        // Backpressure and scaling: no receive while as many batches are in flight as the
        // trigger's concurrency now (at most maxConcurrency). Only this loop starts batches,
        // one at a time, so the count cannot pass it.
        loop {
            let settled = shared.settled.notified();
            if shared.in_flight.load(Ordering::SeqCst) < shared.scale.target() {
                break;
            }
            tokio::select! {
                () = settled => {}
                () = reached(&mut phase, Phase::Drain) => break 'polling,
            }
        }
        let (gathered, error) = gather(&shared, &queue, &source, visibility, &mut phase).await;
        if error.is_none() {
            let got = gathered.as_ref().map_or(0, |b| b.messages.len());
            shared.scale.received(got, config.batch_size);
        }
        if let Some(err) = &error {
            source_error(&shared, err, &mut backoff);
        } else if backoff.failures() > 0 {
            backoff.reset();
            shared.status.set(TriggerState::Polling, None);
        }
        let draining = *phase.borrow() >= Phase::Drain;
        if let Some(batch) = gathered {
            if draining {
                // Gathered but never delivered: give it back now rather than at the end of
                // its visibility timeout.
                batch::release(&shared, &queue, &batch).await;
            } else {
                shared.in_flight.fetch_add(1, Ordering::SeqCst);
                shared.metrics.in_flight.inc();
                let task = batch::run(
                    Arc::clone(&shared),
                    queue.clone(),
                    Arc::clone(&source),
                    batch,
                    phase.clone(),
                );
                tokio::spawn(task);
            }
        }
        if draining {
            break;
        }
        if error.is_some() {
            tokio::select! {
                () = tokio::time::sleep(backoff.current()) => {}
                () = reached(&mut phase, Phase::Drain) => break,
            }
        }
    }
    shared
        .status
        .set(TriggerState::Draining, Some("stopped receiving".into()));
    // Batches in flight finish, or are released when the phase reaches Release.
    while shared.in_flight.load(Ordering::SeqCst) > 0 {
        let idle = shared.idle.notified();
        if shared.in_flight.load(Ordering::SeqCst) == 0 {
            break;
        }
        idle.await;
    }
    stopped(&shared);
}

fn stopped(shared: &Shared) {
    shared.status.set(TriggerState::Stopped, None);
    tracing::info!(function = %shared.config.function, queue = %shared.config.queue_url, "sqs: stopped");
}

fn source_error(shared: &Shared, err: &SourceError, backoff: &mut Backoff) {
    let retry_in = backoff.fail();
    shared.metrics.errors.inc();
    // Logged when it starts and then at most once a minute, not on every retry.
    if backoff.failures() == 1 || backoff.at_max() && backoff.failures().is_multiple_of(4) {
        tracing::warn!(
            function = %shared.config.function,
            queue = %shared.config.queue_url,
            ?retry_in,
            error = %err,
            "sqs: source error"
        );
    }
    shared.status.set(
        TriggerState::Error,
        Some(format!("{err} (retrying in {}s)", retry_in.as_secs())),
    );
}

/// Receives until the batch is full, its window (counted from the first message) has
/// passed, or it reached 6 MB; without a window, one receive. Returns what it gathered (even
/// when a later receive failed) and the error, if any. While the window is open, messages
/// gathered early are kept invisible like messages in flight.
async fn gather(
    shared: &Shared,
    queue: &Queue,
    source: &Source,
    visibility: Duration,
    phase: &mut watch::Receiver<Phase>,
) -> (Option<Batch>, Option<SourceError>) {
    let config = &shared.config;
    let mut batch: Option<Batch> = None;
    loop {
        let wanted = config.batch_size - batch.as_ref().map_or(0, |b| b.messages.len());
        let wait = match &batch {
            None => config.long_poll,
            Some(b) => {
                let now = Instant::now();
                b.window_ends
                    .min(b.keep_alive_due())
                    .saturating_duration_since(now)
                    .min(config.long_poll)
            }
        };
        // Stopping does not cut an open receive short: SQS may already have handed it
        // messages (or hand it some before it notices the closed connection), which would
        // then wait out their visibility timeout. It ends within the long poll and what it
        // got is released at once. Only the end of the grace period cuts it.
        let received = tokio::select! {
            received = queue.receive(wanted.min(MAX_PER_CALL), wait) => received,
            () = reached(phase, Phase::Release) => return (batch, None),
        };
        let received = match received {
            Ok(messages) => {
                Ok(crate::filter::drop_unmatched(shared, queue, source, messages).await)
            }
            Err(err) => Err(err),
        };
        match received {
            Ok(messages) if messages.is_empty() && batch.is_none() => return (None, None),
            Ok(messages) => batch
                .get_or_insert_with(|| Batch::new(config, visibility))
                .add(messages),
            Err(err) => return (batch, Some(err)),
        }
        if *phase.borrow() >= Phase::Drain {
            return (batch, None);
        }
        let Some(b) = &mut batch else { continue };
        if b.messages.len() >= config.batch_size
            || b.bytes >= MAX_BATCH_BYTES
            || Instant::now() >= b.window_ends
        {
            return (batch, None);
        }
        if b.keep_alive_due() <= Instant::now() {
            batch::keep_invisible(shared, queue, b).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_only_move_forward() {
        let mut phase = Phase::Run;
        assert!(advance(&mut phase, Phase::Release));
        assert!(!advance(&mut phase, Phase::Drain));
        assert_eq!(phase, Phase::Release);
    }
}
