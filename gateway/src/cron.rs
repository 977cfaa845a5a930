//! Cron in the gateway: this platform's scheduler, fed with the schedules of the registered
//! functions, calling them through the same path as HTTP requests ([`crate::invoke::invoke`]:
//! admission, concurrency limits, metrics, executor).

use std::sync::Arc;
use std::time::Duration;

use faas_schedule::{
    Clock, CronMetrics, Leadership, Role, Runner, Scheduler, SchedulerOptions, SqliteStore, jobs_of,
};

use crate::error::StartError;
use crate::platform::Platform;
use crate::target::PlatformTarget;

/// Starts the scheduler of `platform`: runs recorded in `<state>/runs.db`, leadership through
/// `<state>/scheduler.lock`, schedules following the registry.
pub fn start(platform: &Arc<Platform>, local_port: u16) -> Result<Arc<Scheduler>, StartError> {
    let state = &platform.config.state_dir;
    std::fs::create_dir_all(state).map_err(|source| StartError::StateDir {
        path: state.clone(),
        source,
    })?;
    let store = SqliteStore::open(&state.join("runs.db"))?;
    let metrics = CronMetrics::new(platform.metrics.registry())?;
    let target = PlatformTarget::new(platform, local_port);
    let owner = format!(
        "pid-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    );
    let runner = Runner::new(
        Arc::new(store),
        Arc::new(target),
        metrics,
        Clock::System,
        owner,
    );
    runner.set_chains(Arc::new(crate::chain::RegistryChains::new(platform)));
    runner.set_secrets(Arc::new(crate::secrets::SchedulerSecrets(Arc::downgrade(
        platform,
    ))));
    let lock_path = state.join("scheduler.lock");
    let scheduler = Scheduler::start(
        runner,
        SchedulerOptions {
            leadership: Leadership::LockFile(lock_path.clone()),
            standby_retry: Duration::from_secs(1),
        },
    );
    if platform.scheduler.set(Arc::clone(&scheduler)).is_err() {
        return Err(StartError::AlreadyStarted("the scheduler"));
    }
    let _ = platform
        .run_history
        .set(Arc::new(crate::run_history::SchedulerHistory(Arc::clone(
            &scheduler,
        ))));
    let _ = platform
        .suspended
        .set(Arc::new(crate::suspend::Suspensions::load(state)));
    // The full set of schedules after every registry change.
    crate::platform::follow_registry(platform, feed);
    tokio::spawn(report_role(Arc::clone(&scheduler), lock_path));
    Ok(scheduler)
}

/// Gives the scheduler every registered schedule, with the operator's suspensions applied:
/// after every registry change, and after a schedule is suspended or resumed.
pub fn feed(platform: &Platform) {
    let Some(scheduler) = platform.scheduler.get() else {
        return;
    };
    let suspended = platform.suspended.get();
    let jobs = platform
        .registry
        .list()
        .iter()
        .flat_map(|entry| jobs_of(&entry.function))
        .map(|job| match suspended {
            Some(suspended) => suspended.apply(job),
            None => job,
        })
        .collect();
    scheduler.set_jobs(jobs);
}

/// Logs leadership changes, so that a second `faas up` on the same state says why it does not
/// fire.
async fn report_role(scheduler: Arc<Scheduler>, lock_path: std::path::PathBuf) {
    let mut last = None;
    loop {
        let role = scheduler.role();
        if last != Some(role) {
            match role {
                Role::Leader => {
                    tracing::info!("scheduler: leading, this platform fires the schedules")
                }
                Role::Standby => tracing::warn!(
                    lock = %lock_path.display(),
                    "scheduler: standby, another platform on this state directory fires the schedules; this one takes over if it stops"
                ),
                Role::Stopped => return,
                Role::Starting => {}
            }
            last = Some(role);
        }
        // Wait for the next change of role.
        let mut changed = scheduler.role_changes();
        if changed.wait_for(|r| *r != role).await.is_err() {
            return;
        }
    }
}
