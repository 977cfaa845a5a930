//! `faas`: the command-line interface of the platform.

mod client;
mod cluster;
mod commands;
mod flags;
mod new;
mod runs;
mod schedules;
mod target;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use target::Target;

#[derive(Parser)]
#[command(name = "faas", version, about = "Run, deploy and call functions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    target: target::TargetArgs,
}

/// How data is printed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
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
        /// Serve the management API (/system) and the dashboard to non-loopback clients and
        /// Host names too; they must then send the management token (Authorization:
        /// Bearer; the faas CLI sends FAAS_MANAGEMENT_TOKEN).
        #[arg(long, requires = "management_token")]
        allow_remote_management: bool,
        /// The bearer token remote management requires (at least 16 characters).
        #[arg(long, env = "FAAS_MANAGEMENT_TOKEN", hide_env_values = true)]
        management_token: Option<String>,
        /// Request bytes all bodies being read or served together may hold in memory; a
        /// body that does not fit is refused with 503 and Retry-After (e.g. 512Mi, 2Gi).
        #[arg(long, env = "FAAS_BODY_BUDGET", default_value = "512Mi", value_parser = faas_api::limits::parse_quantity)]
        body_budget: u64,
        /// Bytes of each pooled WASM memory kept resident between requests (tuning).
        #[arg(long, env = "FAAS_POOL_KEEP_RESIDENT", default_value_t = faas_runtime::wasm::DEFAULT_KEEP_RESIDENT)]
        pool_keep_resident: usize,
        /// On SIGTERM: how long requests, cron runs and SQS batches in flight may go on
        /// before they are cut (runs recorded Interrupted, SQS messages made visible again).
        #[arg(long, default_value = "30s", value_parser = parse_grace, env = "FAAS_SHUTDOWN_GRACE")]
        shutdown_grace: std::time::Duration,
    },
    /// Deploy Function manifests: to the cluster of the kubeconfig (artifact pushed, Function
    /// applied, Ready awaited), or to a local platform with --gateway.
    Deploy {
        /// Manifest file.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Function name: without -f, the function made from --wasm/--image; with -f, only
        /// this one of the manifest's functions.
        name: Option<String>,
        #[command(flatten)]
        flags: flags::FunctionFlags,
        /// Do not run the cargo build the manifest asks for.
        #[arg(long)]
        no_build: bool,
        /// OCI repository to push WASM artifacts under (HOST/PATH, e.g. an ECR registry);
        /// without one, modules up to 900 KiB go into a ConfigMap. Cluster only.
        #[arg(long, env = "FAAS_REGISTRY")]
        registry: Option<String>,
        /// Return once applied, without waiting for Ready. Cluster only.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for Ready.
        #[arg(long, default_value = "3m", value_parser = parse_grace)]
        timeout: std::time::Duration,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Check Function manifests offline, with the controller's own validation.
    Validate {
        /// Manifest file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Print a function's logs (cluster: its pods; a pooled WASM function's own lines only).
    Logs {
        name: String,
        /// Keep streaming.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only lines newer than this (e.g. 10m, 1h).
        #[arg(long, value_parser = parse_grace)]
        since: Option<std::time::Duration>,
        /// Only the last N lines of each pod.
        #[arg(long)]
        tail: Option<i64>,
    },
    /// Create a function from a template that deploys as it is.
    New {
        /// Function name (also the folder created).
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: new::Lang,
        /// Parent folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Print a shell completion script (e.g. `faas completion bash > /etc/bash_completion.d/faas`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Call a function and print its response body.
    Invoke {
        /// Function name.
        name: String,
        #[command(flatten)]
        call: commands::CallArgs,
    },
    /// List functions.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Show one function.
    Describe {
        name: String,
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
        #[arg(short = 'c', long, default_value_t = 5)]
        count: usize,
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
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Delete a function.
    #[command(alias = "rm")]
    Delete { name: String },
}

#[derive(Subcommand)]
enum RunsCommand {
    /// One run: times, phase, status, output and log tail.
    Show {
        /// Run id.
        id: String,
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
        } => {
            faas_gateway::init_tracing(json_logs);
            return faas_gateway::local::run(faas_gateway::local::LocalOptions {
                dir,
                listen,
                state_dir: state,
                build: !no_build,
                watch_interval: std::time::Duration::from_secs_f64(watch_interval.max(0.05)),
                remote_management: allow_remote_management,
                management_token,
                body_budget,
                pool_keep_resident,
                shutdown_grace,
                role: faas_gateway::platform::Role::Local,
                source: faas_gateway::local::FunctionSource::Folder,
                drain_delay: std::time::Duration::ZERO,
                // Locally a callback is usually a listener on this machine.
                async_calls: Some(faas_gateway::async_call::AsyncSettings {
                    internal_callbacks: true,
                    ..Default::default()
                }),
                internal_cidrs: Vec::new(),
            })
            .await;
        }
        // Offline commands: no target.
        Command::Validate { file } => return commands::validate(&file),
        Command::New { name, lang, dir } => return new::create(&dir, &name, lang),
        Command::Completion { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "faas", &mut std::io::stdout());
            return Ok(());
        }
        other => other,
    };
    match cli.target.resolve().await? {
        Target::Gateway(gateway) => on_gateway(&gateway, command).await,
        Target::Cluster(cluster) => on_cluster(&cluster, command).await,
    }
}

async fn on_gateway(gateway: &str, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Deploy {
            file,
            name,
            flags,
            no_build,
            output,
            ..
        } => {
            let manifests = flags::manifests(file.as_deref(), name.as_deref(), &flags, !no_build)?;
            commands::deploy(gateway, &manifests, !no_build, output).await
        }
        Command::Invoke { name, call } => commands::invoke(gateway, &name, call.parse()?).await,
        Command::List { output } => commands::list(gateway, output).await,
        Command::Describe { name, output } => commands::describe(gateway, &name, output).await,
        Command::Run {
            name,
            schedule,
            data,
            detach,
            output,
        } => {
            runs::run(
                gateway,
                &name,
                schedule.as_deref(),
                data.as_deref(),
                detach,
                output,
            )
            .await
        }
        Command::Runs {
            show: Some(RunsCommand::Show { id, output }),
            ..
        } => runs::show(gateway, &id, output).await,
        Command::Runs {
            show: None,
            name,
            schedule,
            phase,
            limit,
            output,
        } => {
            let filter = runs::Filter {
                function: name.as_deref(),
                schedule: schedule.as_deref(),
                phase: phase.as_deref(),
                limit,
            };
            runs::list(gateway, filter, output).await
        }
        Command::Delete { name } => commands::delete(gateway, &name).await,
        Command::Schedules {
            name,
            cron,
            tz,
            count,
            output,
        } => {
            schedules::run(
                gateway,
                name.as_deref(),
                cron.as_deref(),
                tz.as_deref(),
                count,
                output,
            )
            .await
        }
        Command::Logs { name, .. } => anyhow::bail!(
            "a local platform logs to the terminal of `faas up` (every line names its function: grep for function={name})"
        ),
        Command::Up { .. }
        | Command::Validate { .. }
        | Command::New { .. }
        | Command::Completion { .. } => Ok(()),
    }
}

async fn on_cluster(cluster: &target::Cluster, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Deploy {
            file,
            name,
            flags,
            no_build,
            registry,
            no_wait,
            timeout,
            output,
        } => {
            let client = match registry {
                Some(_) => Some(faas_oci::Registry::from_env()?),
                None => None,
            };
            let options = cluster::deploy::DeployOptions {
                build: !no_build,
                registry,
                wait: !no_wait,
                timeout,
                output,
                poll: std::time::Duration::from_secs(1),
            };
            let manifests = flags::manifests(file.as_deref(), name.as_deref(), &flags, !no_build)?;
            cluster::deploy::deploy(cluster, client.as_ref(), &manifests, &options).await
        }
        Command::List { output } => cluster::view::list(cluster, output).await,
        Command::Describe { name, output } => cluster::view::describe(cluster, &name, output).await,
        Command::Delete { name } => cluster::view::delete(cluster, &name).await,
        Command::Runs {
            show: None,
            name,
            schedule,
            phase,
            limit,
            output,
        } => {
            cluster::view::runs(
                cluster,
                name.as_deref(),
                schedule.as_deref(),
                phase.as_deref(),
                limit,
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
            let options = cluster::logs::LogOptions {
                follow,
                since,
                tail,
            };
            cluster::logs::logs(cluster, &name, &options).await
        }
        Command::Schedules {
            name,
            cron,
            tz,
            count,
            output,
        } => {
            let function = match &name {
                Some(name) => Some(cluster::view::get(cluster, name).await?),
                None => None,
            };
            let listed = function
                .as_ref()
                .map(|f| serde_json::to_value(&f.spec.schedules))
                .transpose()?;
            let function = name.as_deref().zip(listed.as_ref());
            schedules::print(function, cron.as_deref(), tz.as_deref(), count, output)
        }
        Command::Invoke { name, call } => {
            cluster::invoke::invoke(cluster, &name, call.parse()?).await
        }
        Command::Runs {
            show: Some(RunsCommand::Show { id, output }),
            ..
        } => cluster::view::show_run(cluster, &id, output).await,
        Command::Run {
            name,
            schedule,
            data,
            detach,
            output,
        } => {
            let options = cluster::run::RunOptions {
                schedule: schedule.as_deref(),
                data: data.as_deref(),
                detach,
                output,
                pickup: std::time::Duration::from_secs(30),
                poll: std::time::Duration::from_secs(1),
            };
            cluster::run::run(cluster, &name, &options).await
        }
        Command::Up { .. }
        | Command::Validate { .. }
        | Command::New { .. }
        | Command::Completion { .. } => Ok(()),
    }
}

/// A `--shutdown-grace` value: a duration like `30s` or `2m`.
fn parse_grace(value: &str) -> Result<std::time::Duration, String> {
    faas_api::limits::parse_duration(value).map_err(|e| e.to_string())
}
