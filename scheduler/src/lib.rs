//! `faas-schedule`: cron schedules, an event source that feeds functions through the same
//! invocation path as HTTP requests ([`FunctionTarget`]), and records every run. Used by local
//! mode (SQLite store, feature `sqlite`) and by the controller (FunctionRun objects), so it
//! links no executor.
//!
//! - [`job`]: a schedule in typed form; [`plan`]: the pure rules (ids, deadlines, catch-up,
//!   backoff, phases).
//! - [`scheduler`]: the one timer over a heap of fire times, leadership, catch-up.
//! - [`run`]: executing a run (claim, cancellation, record, notification); `attempt`: calling
//!   the function (retries, timeout, bounded output).
//! - [`store`]: the record store trait (+ memory); [`sqlite`]: local mode's store;
//!   [`run_log`]: local mode's whole run logs, one file per run.

mod attempt;
mod clock;
pub mod job;
mod metrics;
pub mod notify;
pub mod plan;
pub mod run;
pub mod run_log;
pub mod scheduler;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;

pub use clock::Clock;
pub use faas_invoke::FunctionTarget;
pub use job::{Job, JobKey, ScheduleError, jobs_of};
pub use metrics::CronMetrics;
pub use run::{ChainOutcome, Chains, RunHandle, Runner, Trigger};
pub use scheduler::{Leadership, Role, Scheduler, SchedulerOptions, StartError};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{Cursor, MemoryStore, RunQuery, RunStore, StoreError};
