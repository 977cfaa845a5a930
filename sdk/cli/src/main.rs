//! `faas`: the command-line interface of the platform.

mod client;
mod commands;
mod runs;
mod schedules;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "faas", version, about = "Run, deploy and call functions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How data is printed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(clap::Args)]
struct GatewayArg {
    /// Gateway URL.
    #[arg(
        long,
        env = "FAAS_GATEWAY",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    gateway: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local platform serving every Function manifest under DIR (watched for changes).
    Up {
        /// Folder of Function manifests.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8080", env = "FAAS_LISTEN")]
        listen: std::net::SocketAddr,
        /// State directory (compiled-artifact cache, deployments).
        #[arg(long, default_value = ".faas", env = "FAAS_STATE")]
        state: PathBuf,
        /// Do not run the cargo builds manifests ask for.
        #[arg(long)]
        no_build: bool,
        /// Seconds between checks for changed manifests and artifacts.
        #[arg(long, default_value_t = 1.0)]
        watch_interval: f64,
        /// JSON logs.
        #[arg(long)]
        json_logs: bool,
        /// Serve the management API (/system) to non-loopback clients too. It has no
        /// authentication of its own.
        #[arg(long)]
        allow_remote_management: bool,
        /// Bytes of each pooled WASM memory kept resident between requests (tuning).
        #[arg(long, env = "FAAS_POOL_KEEP_RESIDENT", default_value_t = faas_runtime::wasm::DEFAULT_KEEP_RESIDENT)]
        pool_keep_resident: usize,
        /// On SIGTERM: how long requests, cron runs and SQS batches in flight may go on
        /// before they are cut (runs recorded Interrupted, SQS messages made visible again).
        #[arg(long, default_value = "30s", value_parser = parse_grace, env = "FAAS_SHUTDOWN_GRACE")]
        shutdown_grace: std::time::Duration,
    },
    /// Deploy a Function manifest (and its artifact) to a running platform.
    Deploy {
        /// Manifest file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Do not run the cargo build the manifest asks for.
        #[arg(long)]
        no_build: bool,
        #[command(flatten)]
        gateway: GatewayArg,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Call a function and print its response body.
    Invoke {
        /// Function name.
        name: String,
        /// Request body: text, @file, or - for stdin.
        #[arg(short = 'd', long = "data")]
        data: Option<String>,
        /// Request header K:V (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// HTTP method (default GET, or POST with -d).
        #[arg(short = 'X', long = "method")]
        method: Option<String>,
        /// Path after /function/NAME.
        #[arg(long, default_value = "/")]
        path: String,
        /// Print the status line and headers too.
        #[arg(short = 'i', long)]
        include: bool,
        #[command(flatten)]
        gateway: GatewayArg,
    },
    /// List functions.
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        gateway: GatewayArg,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Show one function.
    Describe {
        name: String,
        #[command(flatten)]
        gateway: GatewayArg,
        #[arg(short, long, value_enum, default_value = "yaml")]
        output: Output,
    },
    /// Show the next fire times of a function's schedules, or of `--cron EXPR --tz ZONE`.
    Schedules {
        /// Function name (its spec.schedules are read from the gateway).
        name: Option<String>,
        /// A cron expression to check without any function.
        #[arg(long)]
        cron: Option<String>,
        /// IANA time zone (default: the schedule's, or UTC).
        #[arg(long)]
        tz: Option<String>,
        /// How many fire times to show.
        #[arg(short = 'n', long, default_value_t = 5)]
        count: usize,
        #[command(flatten)]
        gateway: GatewayArg,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Run a function now (as its schedule would with --schedule), wait and print the result.
    Run {
        /// Function name.
        name: String,
        /// Run with this schedule's payload, timeout, retries, history and notification.
        #[arg(long)]
        schedule: Option<String>,
        /// Payload (request body): text, @file, or - for stdin. Default: the schedule's.
        #[arg(short = 'd', long = "data")]
        data: Option<String>,
        /// Print the run id and return at once.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        gateway: GatewayArg,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Run history (cron and manual runs), newest first; `faas runs show ID` for one run.
    #[command(args_conflicts_with_subcommands = true)]
    Runs {
        #[command(subcommand)]
        show: Option<RunsCommand>,
        /// Function name (every function when omitted).
        name: Option<String>,
        /// Only runs of this schedule (`manual` for runs started by hand without one).
        #[arg(long)]
        schedule: Option<String>,
        /// Only runs in this phase (Succeeded, Failed, TimedOut, Skipped, ...).
        #[arg(long)]
        phase: Option<String>,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        gateway: GatewayArg,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Delete a function.
    #[command(alias = "rm")]
    Delete {
        name: String,
        #[command(flatten)]
        gateway: GatewayArg,
    },
}

#[derive(Subcommand)]
enum RunsCommand {
    /// One run: times, phase, status, output and log tail.
    Show {
        /// Run id.
        id: String,
        #[command(flatten)]
        gateway: GatewayArg,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(err) = run(cli).await {
        eprintln!("faas: error: {err:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up {
            dir,
            listen,
            state,
            no_build,
            watch_interval,
            json_logs,
            allow_remote_management,
            pool_keep_resident,
            shutdown_grace,
        } => {
            faas_gateway::init_tracing(json_logs);
            faas_gateway::local::run(faas_gateway::local::LocalOptions {
                dir,
                listen,
                state_dir: state,
                build: !no_build,
                watch_interval: std::time::Duration::from_secs_f64(watch_interval.max(0.05)),
                remote_management: allow_remote_management,
                pool_keep_resident,
                shutdown_grace,
                role: faas_gateway::platform::Role::Local,
                source: faas_gateway::local::FunctionSource::Folder,
            })
            .await
        }
        Command::Deploy {
            file,
            no_build,
            gateway,
            output,
        } => commands::deploy(&gateway.gateway, &file, !no_build, output).await,
        Command::Invoke {
            name,
            data,
            headers,
            method,
            path,
            include,
            gateway,
        } => {
            commands::invoke(
                &gateway.gateway,
                &name,
                data,
                &headers,
                method,
                &path,
                include,
            )
            .await
        }
        Command::List { gateway, output } => commands::list(&gateway.gateway, output).await,
        Command::Describe {
            name,
            gateway,
            output,
        } => commands::describe(&gateway.gateway, &name, output).await,
        Command::Run {
            name,
            schedule,
            data,
            detach,
            gateway,
            output,
        } => {
            runs::run(
                &gateway.gateway,
                &name,
                schedule.as_deref(),
                data.as_deref(),
                detach,
                output,
            )
            .await
        }
        Command::Runs {
            show:
                Some(RunsCommand::Show {
                    id,
                    gateway,
                    output,
                }),
            ..
        } => runs::show(&gateway.gateway, &id, output).await,
        Command::Runs {
            show: None,
            name,
            schedule,
            phase,
            limit,
            gateway,
            output,
        } => {
            let filter = runs::Filter {
                function: name.as_deref(),
                schedule: schedule.as_deref(),
                phase: phase.as_deref(),
                limit,
            };
            runs::list(&gateway.gateway, filter, output).await
        }
        Command::Delete { name, gateway } => commands::delete(&gateway.gateway, &name).await,
        Command::Schedules {
            name,
            cron,
            tz,
            count,
            gateway,
            output,
        } => {
            schedules::run(
                &gateway.gateway,
                name.as_deref(),
                cron.as_deref(),
                tz.as_deref(),
                count,
                output,
            )
            .await
        }
    }
}

/// A `--shutdown-grace` value: a duration like `30s` or `2m`.
fn parse_grace(value: &str) -> Result<std::time::Duration, String> {
    faas_api::limits::parse_duration(value)
}
