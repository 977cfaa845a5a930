//! The controller's Prometheus metrics: reconcile passes by outcome and their duration, and
//! how many Functions are ready.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Reconcile metrics, registered in their own registry (served on `/metrics`).
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    duration: HistogramVec,
    functions: IntGaugeVec,
    /// (namespace, name) -> ready, to keep the gauge exact across passes.
    readiness: Mutex<HashMap<(String, String), bool>>,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "faas_controller_reconciles_total",
                "Reconcile passes of Functions, by outcome (ok, or the error's kind)",
            ),
            &["outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "faas_controller_reconcile_duration_seconds",
                "Time of one reconcile pass",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["outcome"],
        )?;
        let functions = IntGaugeVec::new(
            Opts::new(
                "faas_controller_functions",
                "Functions by their Ready condition",
            ),
            &["ready"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(functions.clone()))?;
        Ok(Metrics {
            registry,
            reconciles,
            duration,
            functions,
            readiness: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one pass.
    pub fn observe<T>(&self, result: &Result<T, crate::reconcile::Error>, took: Duration) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.metric_label(),
        };
        self.reconciles.with_label_values(&[outcome]).inc();
        self.duration
            .with_label_values(&[outcome])
            .observe(took.as_secs_f64());
    }

    /// Records whether a Function is ready now.
    pub fn record_readiness(&self, namespace: &str, name: &str, ready: bool) {
        let mut map = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((namespace.to_owned(), name.to_owned()), ready);
        self.publish(&map);
    }

    /// Forgets a deleted Function.
    pub fn forget(&self, namespace: &str, name: &str) {
        let mut map = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(namespace.to_owned(), name.to_owned()));
        self.publish(&map);
    }

    fn publish(&self, map: &HashMap<(String, String), bool>) {
        let ready = map.values().filter(|r| **r).count();
        let total = map.len();
        self.functions
            .with_label_values(&["true"])
            .set(i64::try_from(ready).unwrap_or(i64::MAX));
        self.functions
            .with_label_values(&["false"])
            .set(i64::try_from(total - ready).unwrap_or(i64::MAX));
    }

    /// The registry (the scheduler's metrics join it).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        let _ = encoder.encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}
