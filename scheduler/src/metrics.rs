//! Metrics of the scheduler, registered on the platform's registry.

use faas_api::RunPhase;
use prometheus::{GaugeVec, Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

use super::job::JobKey;

/// `faas_cron_*` metrics.
#[derive(Clone)]
pub struct CronMetrics {
    /// Finished runs by function, schedule and phase (runs started by hand included).
    pub runs: IntCounterVec,
    /// Start minus scheduled time of cron runs.
    pub lateness: Histogram,
    /// Next fire time of each armed schedule, Unix seconds.
    pub next_fire: GaugeVec,
}

impl CronMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let runs = IntCounterVec::new(
            Opts::new("faas_cron_runs_total", "Finished runs by phase"),
            &["function", "schedule", "phase"],
        )?;
        let lateness = Histogram::with_opts(
            HistogramOpts::new(
                "faas_cron_lateness_seconds",
                "Start of a cron run minus its scheduled time",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0,
            ]),
        )?;
        let next_fire = GaugeVec::new(
            Opts::new(
                "faas_cron_next_fire_timestamp_seconds",
                "Next fire time of a schedule (Unix seconds)",
            ),
            &["function", "schedule"],
        )?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(lateness.clone()))?;
        registry.register(Box::new(next_fire.clone()))?;
        Ok(Self {
            runs,
            lateness,
            next_fire,
        })
    }

    /// Metrics on a registry of their own (tests, benchmarks).
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).expect("fresh registry has no conflicting metric")
    }

    pub(crate) fn count(&self, key: &JobKey, phase: RunPhase) {
        self.runs
            .with_label_values(&[&*key.function, &*key.schedule, phase.as_str()])
            .inc();
    }

    pub(crate) fn set_next(&self, key: &JobKey, at: Option<jiff::Timestamp>) {
        let labels = [&*key.function, &*key.schedule];
        match at {
            Some(at) => self
                .next_fire
                .with_label_values(&labels)
                .set(at.as_millisecond() as f64 / 1000.0),
            None => {
                let _ = self.next_fire.remove_label_values(&labels);
            }
        }
    }
}
