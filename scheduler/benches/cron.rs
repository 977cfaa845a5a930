//! Scheduler benchmark: 10,000 schedules in one scheduler.
//!
//! `cargo bench -p faas-schedule --bench cron [-- --seconds N]` prints, for each scenario, the
//! lateness (start of the run minus its scheduled time) p50/p99/max and the CPU the process
//! used, next to a baseline measured in the same run: 10,000 bare tokio tasks sleeping until
//! the same whole seconds (the best a timer-based scheduler on this runtime can do).
//!
//! Scenarios: `every-second` (all 10,000 fire every second: 10,000 runs/s, each claimed and
//! finished in the store), `spread` (each fires once a minute, spread over the seconds: ~167
//! runs/s), `idle` (10,000 yearly schedules that do not fire: the cost of waiting).
//! The function called is a no-op target, so what is measured is the scheduler and the store.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_api::Schedule;
use faas_invoke::{CallContext, ResponseBody, full_body};
use faas_schedule::{
    Clock, CronMetrics, FunctionTarget, Job, MemoryStore, RunStore, Runner, Scheduler,
    SchedulerOptions, SqliteStore,
};
use http::{Request, Response};
use jiff::Timestamp;

const SCHEDULES: usize = 10_000;

/// Records how late each call started.
#[derive(Default)]
struct Recorder {
    late_ms: Mutex<Vec<f64>>,
    measuring: std::sync::atomic::AtomicBool,
}

impl FunctionTarget for Recorder {
    fn call(
        &self,
        _function: &str,
        request: Request<Bytes>,
        _ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send + '_>> {
        let now = Timestamp::now();
        if self.measuring.load(std::sync::atomic::Ordering::Relaxed)
            && let Some(due) = request
                .headers()
                .get("x-faas-scheduled-time")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Timestamp>().ok())
        {
            let late = now.duration_since(due).as_secs_f64() * 1000.0;
            if let Ok(mut samples) = self.late_ms.lock() {
                samples.push(late);
            }
        }
        Box::pin(async { Response::new(full_body("ok")) })
    }
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

struct Figures {
    samples: Vec<f64>,
    cpu_percent: f64,
}

impl Figures {
    fn percentile(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }

    fn print(&self, label: &str) {
        println!(
            "{label:<34} runs {:>7}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  cpu {:>6.1}% of a core",
            self.samples.len(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.percentile(1.0),
            self.cpu_percent
        );
    }
}

fn jobs(cron: impl Fn(usize) -> String) -> Vec<Job> {
    (0..SCHEDULES)
        .map(|i| {
            let schedule = Schedule {
                name: "s".into(),
                cron: cron(i),
                ..Schedule::default()
            };
            Job::from_schedule(&format!("fn-{i}"), &schedule).expect("valid schedule")
        })
        .collect()
}

async fn measure_scheduler(store: Arc<dyn RunStore>, jobs: Vec<Job>, seconds: u64) -> Figures {
    let recorder = Arc::new(Recorder::default());
    let runner = Runner::new(
        store,
        recorder.clone(),
        CronMetrics::unregistered(),
        Clock::System,
        "bench".into(),
    );
    let scheduler = Scheduler::start(runner, SchedulerOptions::default());
    scheduler.set_jobs(jobs);
    // Warm up: arming 10,000 schedules and the first fires.
    tokio::time::sleep(Duration::from_secs(2)).await;
    recorder
        .measuring
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let cpu = cpu_seconds();
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu_percent = (cpu_seconds() - cpu) / wall.elapsed().as_secs_f64() * 100.0;
    recorder
        .measuring
        .store(false, std::sync::atomic::Ordering::Relaxed);
    scheduler.shutdown(Duration::from_secs(5)).await;
    let samples = std::mem::take(&mut *recorder.late_ms.lock().expect("samples"));
    Figures {
        samples,
        cpu_percent,
    }
}

/// 10,000 tasks sleeping until the next whole second, `every` seconds apart.
async fn measure_baseline(seconds: u64, offset: impl Fn(usize) -> u64) -> Figures {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let measure_from = Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let stop = measure_from + jiff::SignedDuration::from_secs(seconds as i64);
    let mut tasks = Vec::new();
    for i in 0..SCHEDULES {
        let samples = samples.clone();
        let period = offset(i);
        tasks.push(tokio::spawn(async move {
            loop {
                let now = Timestamp::now();
                let next_second = now.as_second() + 1;
                let due_second = if period == 1 {
                    next_second
                } else {
                    // Once a minute, at second (i % 60).
                    let phase = (i % 60) as i64;
                    let minute = next_second - next_second.rem_euclid(60);
                    let candidate = minute + phase;
                    if candidate >= next_second {
                        candidate
                    } else {
                        candidate + 60
                    }
                };
                let due = Timestamp::from_second(due_second).expect("timestamp");
                if due > stop {
                    break;
                }
                let wait =
                    Duration::try_from(due.duration_since(Timestamp::now())).unwrap_or_default();
                tokio::time::sleep(wait).await;
                let late = Timestamp::now().duration_since(due).as_secs_f64() * 1000.0;
                if due >= measure_from {
                    samples.lock().expect("samples").push(late);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_seconds();
    let wall = Instant::now();
    for task in tasks {
        let _ = task.await;
    }
    let cpu_percent = (cpu_seconds() - cpu) / wall.elapsed().as_secs_f64() * 100.0;
    let samples = std::mem::take(&mut *samples.lock().expect("samples"));
    Figures {
        samples,
        cpu_percent,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(10u64);
    let only = args
        .iter()
        .position(|a| a == "--scenario")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let wants = |name: &str| only.as_deref().is_none_or(|o| o == name);
    // `--store memory` or `--store sqlite`: one store only (profiling).
    let store_only = args
        .iter()
        .position(|a| a == "--store")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let store_wanted = |name: &str| store_only.as_deref().is_none_or(|o| o == name);
    println!("{SCHEDULES} schedules, {seconds} s measured per scenario, 2 worker threads");
    runtime.block_on(async {
        if wants("every-second") && store_only.is_none() {
            measure_baseline(seconds, |_| 1)
                .await
                .print("every-second: baseline tokio timers");
        }
        if wants("every-second") && store_wanted("sqlite") {
            let sqlite: Arc<dyn RunStore> =
                Arc::new(SqliteStore::open(&dir.path().join("every.db")).expect("sqlite"));
            measure_scheduler(sqlite, jobs(|_| "* * * * * *".into()), seconds)
                .await
                .print("every-second: scheduler + SQLite");
        }
        if wants("every-second") && store_wanted("memory") {
            measure_scheduler(
                Arc::new(MemoryStore::default()),
                jobs(|_| "* * * * * *".into()),
                seconds,
            )
            .await
            .print("every-second: scheduler + memory");
        }
        if wants("spread") {
            measure_baseline(seconds, |_| 60)
                .await
                .print("spread: baseline tokio timers");
            let sqlite: Arc<dyn RunStore> =
                Arc::new(SqliteStore::open(&dir.path().join("spread.db")).expect("sqlite"));
            measure_scheduler(sqlite, jobs(|i| format!("{} * * * * *", i % 60)), seconds)
                .await
                .print("spread: scheduler + SQLite");
        }
        if wants("idle") {
            let cpu = cpu_seconds();
            let wall = Instant::now();
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            let base = (cpu_seconds() - cpu) / wall.elapsed().as_secs_f64() * 100.0;
            Figures {
                samples: Vec::new(),
                cpu_percent: base,
            }
            .print("idle: baseline (no scheduler)");
            let sqlite: Arc<dyn RunStore> =
                Arc::new(SqliteStore::open(&dir.path().join("idle.db")).expect("sqlite"));
            measure_scheduler(sqlite, jobs(|_| "0 0 1 1 *".into()), seconds)
                .await
                .print("idle: 10k yearly schedules");
        }
    });
}
