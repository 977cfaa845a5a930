//! The commands, one module each, written once over a [`Backend`]: whichever platform
//! answers, a command prints the same table or description (or, with `-o json|yaml`, the
//! platform's own document).

pub mod completion;
pub mod delete;
pub mod deploy;
pub mod describe;
pub mod dlq;
pub mod events;
pub mod invoke;
pub mod list;
pub mod logs;
pub mod new;
pub mod run;
pub mod run_logs;
pub mod runs;
pub mod schedules;
pub mod table;
pub mod target;
pub mod up;
pub mod validate;
pub mod zone;

use crate::args::{Command, RunsCommand};
use crate::backend::{Backend, DeployOptions, LogOptions, RunFilter};

/// Runs a command that acts on a platform. The offline commands (`up`, `validate`, `new`,
/// `completion`) and `target` are run before a target is resolved and do nothing here.
pub async fn dispatch(backend: &dyn Backend, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Deploy {
            file,
            name,
            flags,
            no_build,
            registry,
            replace,
            no_wait,
            timeout,
            output,
        } => {
            let options = DeployOptions {
                build: !no_build,
                registry,
                replace,
                wait: !no_wait,
                timeout,
                poll: std::time::Duration::from_secs(1),
            };
            let source = deploy::Source { file, name, flags };
            deploy::run(backend, &source, &options, output).await
        }
        Command::Invoke { name, call } => invoke::run(backend, &name, call.parse()?).await,
        Command::List { output, quiet } => list::run(backend, output, quiet).await,
        Command::Describe { name, output } => describe::run(backend, &name, output).await,
        Command::Delete { name } => delete::run(backend, &name).await,
        Command::Run {
            name,
            schedule,
            data,
            options,
            detach,
            output,
        } => {
            let start = run::Start {
                name: &name,
                schedule: schedule.as_deref(),
                data: data.as_deref(),
                options: &options,
                detach,
            };
            run::start(backend, start, output).await
        }
        Command::Runs {
            show: Some(RunsCommand::Logs { id, follow }),
            ..
        } => run_logs::print(backend, &id, follow).await,
        Command::Runs {
            show: Some(RunsCommand::Show { id, tz, output }),
            ..
        } => runs::show(backend, &id, tz.as_deref(), output).await,
        Command::Runs {
            show: Some(RunsCommand::Cancel { id }),
            ..
        } => run::cancel(backend, &id).await,
        Command::Runs {
            show: None,
            name,
            schedule,
            phase,
            limit,
            tz,
            output,
        } => {
            let filter = RunFilter {
                function: name.as_deref(),
                schedule: schedule.as_deref(),
                phase: phase.as_deref(),
                limit,
            };
            runs::list(backend, filter, tz.as_deref(), output).await
        }
        Command::Schedules {
            name,
            cron,
            tz,
            count,
            output,
        } => {
            schedules::run(
                backend,
                name.as_deref(),
                cron.as_deref(),
                tz.as_deref(),
                count,
                output,
            )
            .await
        }
        Command::Logs {
            name,
            follow,
            since,
            tail,
        } => {
            let options = LogOptions {
                follow,
                since,
                tail,
            };
            logs::run(backend, &name, &options).await
        }
        Command::Dlq { action } => dlq::run(backend, action).await,
        Command::Up { .. }
        | Command::Validate { .. }
        | Command::New { .. }
        | Command::Completion { .. }
        | Command::Events { .. }
        | Command::Target { .. } => Ok(()),
    }
}
