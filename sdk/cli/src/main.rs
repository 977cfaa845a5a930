//! `faas`: the command-line interface of the platform. The entry point only: the command line
//! is in [`args`], each command in [`commands`], the platforms they act on in [`backend`].

mod args;
mod backend;
mod client;
mod commands;
mod flags;
mod report;
mod stdout;
mod target;

use clap::Parser as _;

use args::{Cli, Command, DlqCommand, RunsCommand};
use target::Target;

#[tokio::main]
async fn main() {
    stdout::install();
    let cli = Cli::parse();
    if let Err(err) = run(cli).await {
        if stdout::closed(&err) {
            std::process::exit(stdout::CLOSED_STATUS);
        }
        eprintln!("faas: error: {}", report::one_line(&err));
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        Command::Up {
            dir,
            listen,
            state,
            no_build,
            watch_interval,
            json_logs,
            allow_remote_management,
            management_token,
            body_budget,
            pool_keep_resident,
            shutdown_grace,
            secrets,
            max_timeout,
        } => {
            return commands::up::run(commands::up::Up {
                secrets,
                max_timeout,
                dir,
                listen,
                state,
                no_build,
                watch_interval,
                json_logs,
                allow_remote_management,
                management_token,
                body_budget,
                pool_keep_resident,
                shutdown_grace,
            })
            .await;
        }
        // Offline commands: no target.
        Command::Validate { file } => return commands::validate::validate(&file),
        Command::New { name, lang, dir } => return commands::new::create(&dir, &name, lang),
        Command::Completion { shell } => return commands::completion::print(shell),
        Command::Events { event } => return commands::events::print(event),
        Command::Target { action } => return commands::target::run(&cli.target, action).await,
        other => other,
    };
    let action = changes(&command);
    let resolved = cli.target.resolve(action).await?;
    if action.is_some() {
        // Before anything is sent: where it goes.
        eprintln!("→ {}", resolved.said());
    }
    let backend: Box<dyn backend::Backend> = match resolved.target {
        Target::Gateway(gateway) => Box::new(backend::local::Local::new(&gateway)?),
        Target::Cluster(cluster) => Box::new(cluster),
    };
    commands::dispatch(backend.as_ref(), command).await
}

/// What `command` does when it changes something on the platform (it then names its target
/// first, and refuses a cluster nobody chose). `invoke` counts: a call may change anything
/// the function touches, and the platform cannot know which calls are safe.
fn changes(command: &Command) -> Option<&'static str> {
    match command {
        Command::Deploy { .. } => Some("deploy"),
        Command::Delete { .. } => Some("delete"),
        Command::Run { .. } => Some("run a function"),
        Command::Invoke { .. } => Some("invoke a function"),
        Command::Runs {
            show: Some(RunsCommand::Cancel { .. }),
            ..
        } => Some("cancel a run"),
        Command::Dlq {
            action: DlqCommand::Replay { .. },
        } => Some("replay dead letters"),
        Command::Dlq {
            action: DlqCommand::Delete { .. },
        } => Some("delete dead letters"),
        Command::Dlq {
            action: DlqCommand::Redrive { .. },
        } => Some("redrive dead letters"),
        Command::Runs {
            show: None | Some(RunsCommand::Show { .. } | RunsCommand::Logs { .. }),
            ..
        }
        | Command::Dlq {
            action: DlqCommand::List { .. },
        }
        | Command::List { .. }
        | Command::Describe { .. }
        | Command::Schedules { .. }
        | Command::Logs { .. }
        | Command::Up { .. }
        | Command::Validate { .. }
        | Command::New { .. }
        | Command::Completion { .. }
        | Command::Events { .. }
        | Command::Target { .. } => None,
    }
}
