//! The last hour of each function's invocations, by minute: counts by status class and a
//! latency histogram, for the dashboard and `GET /system/stats`. Prometheus keeps the long
//! history; this is what a page can show without one.
//!
//! Percentiles come from fixed histogram buckets, so p50 and p99 are the upper bound of the
//! bucket the quantile falls in ("at most X ms"), like Prometheus's `histogram_quantile`
//! without interpolation.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Upper bounds of the latency buckets, in milliseconds (the last catches everything).
const BOUNDS_MS: [f64; 16] = [
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    500.0,
    1000.0,
    2000.0,
    5000.0,
    10000.0,
    30000.0,
    60000.0,
    f64::INFINITY,
];
/// Minutes kept per function.
pub const WINDOW_MINUTES: usize = 60;

#[derive(Clone, Default)]
struct Bucket {
    /// Unix time of the minute's start, in minutes.
    minute: i64,
    /// Calls by status class: 2xx, 3xx, 4xx, 5xx.
    classes: [u64; 4],
    latency: [u64; BOUNDS_MS.len()],
}

impl Bucket {
    fn count(&self) -> u64 {
        self.classes.iter().sum()
    }
}

/// One minute as the API shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Minute {
    /// RFC 3339 start of the minute.
    pub start: String,
    pub count: u64,
    /// 5xx answers.
    pub errors: u64,
    pub codes: BTreeMap<&'static str, u64>,
    /// Upper bound of the median's bucket, ms (none without calls).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// A function's hour: totals and the minutes, oldest first.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Hour {
    pub count: u64,
    pub errors: u64,
    /// 5xx answers over all answers (0 without calls).
    pub error_rate: f64,
    /// Calls per minute over the minutes that had any, over the hour.
    pub per_minute: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub minutes: Vec<Minute>,
}

#[derive(Default)]
pub struct Stats {
    series: Mutex<BTreeMap<String, VecDeque<Bucket>>>,
    loads: Mutex<BTreeMap<String, Loads>>,
}

/// Cold loads of a function's artifact (a new version, a restart): how many, and the last few.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Loads {
    pub count: u64,
    /// Newest last.
    pub recent: VecDeque<Load>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Load {
    pub at: String,
    /// `compiled`, `disk_cache` or `memory`.
    pub source: String,
    pub millis: f64,
}

const RECENT_LOADS: usize = 10;

impl Stats {
    /// Counts one answered call at unix time `now_secs`.
    pub fn record(&self, function: &str, status: u16, elapsed: Duration, now_secs: i64) {
        let minute = now_secs.div_euclid(60);
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let buckets = series.entry(function.to_owned()).or_default();
        if buckets.back().is_none_or(|b| b.minute != minute) {
            buckets.push_back(Bucket {
                minute,
                ..Bucket::default()
            });
        }
        while buckets
            .front()
            .is_some_and(|b| b.minute <= minute - WINDOW_MINUTES as i64)
        {
            buckets.pop_front();
        }
        let Some(bucket) = buckets.back_mut() else {
            return;
        };
        let class = match status {
            500.. => 3,
            400..=499 => 2,
            300..=399 => 1,
            _ => 0,
        };
        bucket.classes[class] += 1;
        let ms = elapsed.as_secs_f64() * 1000.0;
        let slot = BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(BOUNDS_MS.len() - 1);
        bucket.latency[slot] += 1;
    }

    /// Counts one load of `function`'s artifact (`source`: where the compiled code came from).
    pub fn record_load(&self, function: &str, source: &str, took: Duration) {
        let mut loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
        let entry = loads.entry(function.to_owned()).or_default();
        entry.count += 1;
        entry.recent.push_back(Load {
            at: jiff::Timestamp::now().to_string(),
            source: source.to_owned(),
            millis: took.as_secs_f64() * 1000.0,
        });
        while entry.recent.len() > RECENT_LOADS {
            entry.recent.pop_front();
        }
    }

    /// The loads of `function` so far.
    pub fn loads(&self, function: &str) -> Loads {
        self.loads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(function)
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets a deleted function.
    pub fn forget(&self, function: &str) {
        self.series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(function);
        self.loads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(function);
    }

    /// The hour before `now_secs` of `function`: 60 minutes, zero-filled.
    pub fn hour(&self, function: &str, now_secs: i64) -> Hour {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let empty = VecDeque::new();
        let buckets = series.get(function).unwrap_or(&empty);
        let current = now_secs.div_euclid(60);
        let mut total = Bucket::default();
        let mut busy_minutes = 0u64;
        let minutes = (current - WINDOW_MINUTES as i64 + 1..=current)
            .map(|minute| {
                let bucket = buckets.iter().find(|b| b.minute == minute);
                if let Some(b) = bucket {
                    for i in 0..4 {
                        total.classes[i] += b.classes[i];
                    }
                    for (t, n) in total.latency.iter_mut().zip(b.latency) {
                        *t += n;
                    }
                    if b.count() > 0 {
                        busy_minutes += 1;
                    }
                }
                minute_view(minute, bucket)
            })
            .collect();
        let count = total.count();
        Hour {
            count,
            errors: total.classes[3],
            error_rate: if count == 0 {
                0.0
            } else {
                total.classes[3] as f64 / count as f64
            },
            per_minute: count as f64 / busy_minutes.max(1) as f64,
            p50_ms: quantile(&total.latency, 0.50),
            p99_ms: quantile(&total.latency, 0.99),
            minutes,
        }
    }
}

fn minute_view(minute: i64, bucket: Option<&Bucket>) -> Minute {
    let start = jiff::Timestamp::from_second(minute * 60)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let Some(b) = bucket else {
        return Minute {
            start,
            count: 0,
            errors: 0,
            codes: BTreeMap::new(),
            p50_ms: None,
            p99_ms: None,
        };
    };
    let codes = ["2xx", "3xx", "4xx", "5xx"]
        .into_iter()
        .zip(b.classes)
        .filter(|(_, n)| *n > 0)
        .collect();
    Minute {
        start,
        count: b.count(),
        errors: b.classes[3],
        codes,
        p50_ms: quantile(&b.latency, 0.50),
        p99_ms: quantile(&b.latency, 0.99),
    }
}

/// Upper bound of the bucket holding quantile `q` (the largest finite bound for the last).
fn quantile(latency: &[u64; BOUNDS_MS.len()], q: f64) -> Option<f64> {
    let total: u64 = latency.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in latency.iter().enumerate() {
        seen += n;
        if seen >= rank {
            let bound = BOUNDS_MS[i];
            return Some(if bound.is_finite() {
                bound
            } else {
                BOUNDS_MS[BOUNDS_MS.len() - 2]
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000; // a minute boundary is not needed: buckets are by minute

    #[test]
    fn minutes_count_classes_and_latency_and_slide_out_after_an_hour() {
        let stats = Stats::default();
        for ms in [3, 4, 4, 8, 40] {
            stats.record("hello", 200, Duration::from_millis(ms), T0);
        }
        stats.record("hello", 503, Duration::from_millis(900), T0 + 60);
        stats.record("hello", 404, Duration::from_millis(1), T0 + 60);
        let hour = stats.hour("hello", T0 + 60);
        assert_eq!(hour.minutes.len(), WINDOW_MINUTES);
        assert_eq!((hour.count, hour.errors), (7, 1));
        assert!((hour.error_rate - 1.0 / 7.0).abs() < 1e-9);
        assert!((hour.per_minute - 3.5).abs() < 1e-9, "{}", hour.per_minute);
        assert_eq!(hour.p50_ms, Some(5.0));
        assert_eq!(hour.p99_ms, Some(1000.0));
        let last = &hour.minutes[WINDOW_MINUTES - 1];
        assert_eq!(last.codes.get("5xx"), Some(&1));
        assert_eq!(last.codes.get("4xx"), Some(&1));
        assert_eq!(hour.minutes[WINDOW_MINUTES - 2].count, 5);

        // An hour later the old minutes are gone.
        let later = stats.hour("hello", T0 + 61 * 60);
        assert_eq!(later.count, 0);
        assert_eq!(later.p50_ms, None);
        stats.record("hello", 200, Duration::from_secs(120), T0 + 61 * 60);
        assert_eq!(stats.hour("hello", T0 + 61 * 60).p99_ms, Some(60000.0));
        for _ in 0..12 {
            stats.record_load("hello", "compiled", Duration::from_millis(30));
        }
        let loads = stats.loads("hello");
        assert_eq!((loads.count, loads.recent.len()), (12, RECENT_LOADS));
        stats.forget("hello");
        assert_eq!(stats.hour("hello", T0).count, 0);
        assert_eq!(stats.loads("hello").count, 0);
    }
}
