//! Cold-start timing: how long each phase of getting a function ready to answer took, per
//! function: `faas_cold_start_seconds{function,phase}` on the platform's registry, and the
//! last few samples for the dashboard's function page (last, median, count).
//!
//! Counting loads says that a cold start happened; timing its phases says where the first
//! caller's wait went. Every host records the phases it runs: local mode and pool pods
//! `compile` and `instantiate`, local mode and sidecars `process_start` and `lambda_init`,
//! the cluster gateway `scale_from_zero` (its hold while a function at zero gets a replica).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_runtime::process::{StartObserver, StartPhase};
use prometheus::{HistogramOpts, HistogramVec};

/// A phase of a cold start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// A WASM artifact to native code (compiled, or read from the compiled-code cache).
    Compile,
    /// A WASM instance for a call (every call gets a fresh one).
    Instantiate,
    /// The cluster gateway's hold while a function at zero replicas gets one.
    ScaleFromZero,
    /// An `http` process function from start to accepting connections.
    ProcessStart,
    /// A Lambda handler from start to its first request for work (its init code).
    LambdaInit,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Compile,
        Phase::Instantiate,
        Phase::ScaleFromZero,
        Phase::ProcessStart,
        Phase::LambdaInit,
    ];

    /// The `phase` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Compile => "compile",
            Phase::Instantiate => "instantiate",
            Phase::ScaleFromZero => "scale_from_zero",
            Phase::ProcessStart => "process_start",
            Phase::LambdaInit => "lambda_init",
        }
    }
}

/// Samples kept per function and phase for the dashboard's median.
const KEPT: usize = 64;

/// One phase of one function, as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseSummary {
    pub phase: &'static str,
    pub last_ms: f64,
    /// Of the last [`KEPT`] samples.
    pub p50_ms: f64,
    pub count: u64,
}

#[derive(Default)]
struct Recent {
    count: u64,
    /// Seconds, newest last.
    samples: VecDeque<f64>,
}

/// The cold-start histogram and its recent samples.
#[derive(Clone)]
pub struct ColdStarts {
    histogram: HistogramVec,
    recent: Arc<Mutex<BTreeMap<(String, Phase), Recent>>>,
}

impl ColdStarts {
    pub(crate) fn new() -> Self {
        let histogram = HistogramVec::new(
            HistogramOpts::new(
                "faas_cold_start_seconds",
                "Time of each cold-start phase: compile, instantiate, scale_from_zero, \
                 process_start, lambda_init",
            )
            .buckets(vec![
                0.00001, 0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0, 120.0,
            ]),
            &["function", "phase"],
        )
        .expect("static metric definition");
        ColdStarts {
            histogram,
            recent: Arc::default(),
        }
    }

    pub(crate) fn collector(&self) -> Box<dyn prometheus::core::Collector> {
        Box::new(self.histogram.clone())
    }

    /// One phase of `function` took `took`.
    pub fn record(&self, function: &str, phase: Phase, took: Duration) {
        let seconds = took.as_secs_f64();
        self.histogram
            .with_label_values(&[function, phase.as_str()])
            .observe(seconds);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let entry = recent.entry((function.to_owned(), phase)).or_default();
        entry.count += 1;
        if entry.samples.len() == KEPT {
            entry.samples.pop_front();
        }
        entry.samples.push_back(seconds);
    }

    /// What a process function's start reports, recorded for `function`.
    pub fn process_observer(&self, function: &str) -> StartObserver {
        let this = self.clone();
        let function = function.to_owned();
        StartObserver::new(move |phase, took| {
            let phase = match phase {
                StartPhase::ProcessStart => Phase::ProcessStart,
                StartPhase::LambdaInit => Phase::LambdaInit,
            };
            this.record(&function, phase, took);
        })
    }

    /// The phases `function` went through, in [`Phase::ALL`] order.
    pub fn summary(&self, function: &str) -> Vec<PhaseSummary> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        Phase::ALL
            .iter()
            .filter_map(|&phase| {
                let entry = recent.get(&(function.to_owned(), phase))?;
                let last = *entry.samples.back()?;
                let mut sorted: Vec<f64> = entry.samples.iter().copied().collect();
                sorted.sort_by(f64::total_cmp);
                Some(PhaseSummary {
                    phase: phase.as_str(),
                    last_ms: last * 1000.0,
                    p50_ms: sorted[sorted.len() / 2] * 1000.0,
                    count: entry.count,
                })
            })
            .collect()
    }

    /// Drops what a deleted function left (its series too: names are reused).
    pub fn forget(&self, function: &str) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(name, _), _| name != function);
        for phase in Phase::ALL {
            let _ = self
                .histogram
                .remove_label_values(&[function, phase.as_str()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_recorded_per_function_with_last_median_and_count() {
        let cold = ColdStarts::new();
        for ms in [30, 10, 20] {
            cold.record("a", Phase::Compile, Duration::from_millis(ms));
        }
        cold.record("a", Phase::LambdaInit, Duration::from_millis(5));
        cold.record("b", Phase::Compile, Duration::from_millis(1));
        let a = cold.summary("a");
        assert_eq!(
            a.iter().map(|p| p.phase).collect::<Vec<_>>(),
            ["compile", "lambda_init"]
        );
        assert_eq!(a[0].count, 3);
        assert!((a[0].last_ms - 20.0).abs() < 1e-6, "{a:?}");
        assert!((a[0].p50_ms - 20.0).abs() < 1e-6, "{a:?}");

        cold.forget("a");
        assert!(cold.summary("a").is_empty());
        assert_eq!(cold.summary("b").len(), 1);
    }
}
