//! Prometheus metrics of the gateway and the runtime it hosts.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the platform exports, on one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Invocations by function and HTTP status code.
    pub invocations: IntCounterVec,
    /// Time to the response head, by function.
    pub duration: HistogramVec,
    /// Invocations in flight, by function.
    pub in_flight: IntGaugeVec,
    /// Instance creation time (store + instantiate), all functions.
    pub instantiate: HistogramVec,
    /// Artifact loads by outcome: `compiled`, `disk_cache`, `memory`, `failed`.
    pub loads: IntCounterVec,
    /// Requests refused before running, by function and reason (`body_too_large`,
    /// `body_timeout`, `overloaded`, `not_ready`).
    pub rejected: IntCounterVec,
    /// Async calls by function and outcome.
    pub async_calls: IntCounterVec,
    /// Scale from / to zero by the cluster gateway, by function.
    pub scale_events: IntCounterVec,
    /// How long each cold-start phase took, by function and phase.
    pub cold_starts: crate::cold_start::ColdStarts,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let invocations = IntCounterVec::new(
            Opts::new(
                "faas_invocations_total",
                "Function invocations by status code",
            ),
            &["function", "code"],
        )
        .expect("static metric definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "faas_invocation_duration_seconds",
                "Time from admission to response head",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["function"],
        )
        .expect("static metric definition");
        let in_flight = IntGaugeVec::new(
            Opts::new("faas_invocations_in_flight", "Invocations in flight"),
            &["function"],
        )
        .expect("static metric definition");
        let instantiate = HistogramVec::new(
            HistogramOpts::new("faas_instantiate_seconds", "Time to instantiate a guest").buckets(
                vec![
                    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.01,
                ],
            ),
            &[],
        )
        .expect("static metric definition");
        let loads = IntCounterVec::new(
            Opts::new(
                "faas_artifact_loads_total",
                "Artifact loads (cold starts of a version)",
            ),
            &["outcome"],
        )
        .expect("static metric definition");
        let rejected = IntCounterVec::new(
            Opts::new(
                "faas_rejected_total",
                "Requests refused before the function ran",
            ),
            &["function", "reason"],
        )
        .expect("static metric definition");
        let async_calls = IntCounterVec::new(
            Opts::new(
                "faas_async_calls_total",
                "Asynchronous calls by outcome: accepted, succeeded, retried, dead_lettered, \
                 callback_failed",
            ),
            &["function", "outcome"],
        )
        .expect("static metric definition");
        let scale_events = IntCounterVec::new(
            Opts::new(
                "faas_gateway_scale_total",
                "Replica changes the cluster gateway made: from_zero, to_zero, \
                 from_zero_timeout",
            ),
            &["function", "event"],
        )
        .expect("static metric definition");
        let cold_starts = crate::cold_start::ColdStarts::new();
        for collector in [
            cold_starts.collector(),
            Box::new(invocations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(async_calls.clone()),
            Box::new(scale_events.clone()),
            Box::new(duration.clone()),
            Box::new(in_flight.clone()),
            Box::new(instantiate.clone()),
            Box::new(loads.clone()),
            Box::new(rejected.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            invocations,
            duration,
            in_flight,
            instantiate,
            loads,
            rejected,
            async_calls,
            scale_events,
            cold_starts,
        }
    }

    /// The registry, for metrics defined elsewhere (the scheduler's).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %err, "metrics encoding failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
