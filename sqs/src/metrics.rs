//! `faas_sqs_*` metrics, registered on the platform's registry. Labels: the function and the
//! queue's name (not its URL: account ids stay out of dashboards' legends).

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// The metric families.
#[derive(Clone)]
pub struct SqsMetrics {
    messages: IntCounterVec,
    batch_size: HistogramVec,
    receive_errors: IntCounterVec,
    in_flight: IntGaugeVec,
    oldest_age: GaugeVec,
}

impl SqsMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let labels = &["function", "queue"];
        let messages = IntCounterVec::new(
            Opts::new(
                "faas_sqs_messages_total",
                "Messages settled by outcome: deleted (processed), failed (left for redelivery), \
                 released (made visible again at shutdown), filtered (matched no filter: \
                 deleted without a call)",
            ),
            &["function", "queue", "outcome"],
        )?;
        let batch_size = HistogramVec::new(
            HistogramOpts::new(
                "faas_sqs_batch_size",
                "Messages per batch delivered to the function",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 10000.0,
            ]),
            labels,
        )?;
        let receive_errors = IntCounterVec::new(
            Opts::new(
                "faas_sqs_receive_errors_total",
                "Failed calls to the queue (receive, delete, visibility, attributes)",
            ),
            labels,
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "faas_sqs_batches_in_flight",
                "Batches delivered and not yet settled",
            ),
            labels,
        )?;
        let oldest_age = GaugeVec::new(
            Opts::new(
                "faas_sqs_oldest_message_age_seconds",
                "Age (now minus SentTimestamp) of the oldest message of the last batch delivered",
            ),
            labels,
        )?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(receive_errors.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(oldest_age.clone()))?;
        Ok(Self {
            messages,
            batch_size,
            receive_errors,
            in_flight,
            oldest_age,
        })
    }

    /// Metrics on a registry of their own (tests, benchmarks).
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).expect("fresh registry has no conflicting metric")
    }

    /// The metrics of one poller, labels resolved once.
    pub(crate) fn of(&self, function: &str, queue: &str) -> PollerMetrics {
        let labels = [function, queue];
        let outcome = |o: &str| self.messages.with_label_values(&[function, queue, o]);
        PollerMetrics {
            deleted: outcome("deleted"),
            failed: outcome("failed"),
            released: outcome("released"),
            filtered: outcome("filtered"),
            batch_size: self.batch_size.with_label_values(&labels),
            errors: self.receive_errors.with_label_values(&labels),
            in_flight: self.in_flight.with_label_values(&labels),
            oldest_age: self.oldest_age.with_label_values(&labels),
        }
    }
}

/// One poller's series.
#[derive(Clone)]
pub(crate) struct PollerMetrics {
    pub deleted: IntCounter,
    pub failed: IntCounter,
    pub released: IntCounter,
    pub filtered: IntCounter,
    pub batch_size: prometheus::Histogram,
    pub errors: IntCounter,
    pub in_flight: prometheus::IntGauge,
    pub oldest_age: prometheus::Gauge,
}
