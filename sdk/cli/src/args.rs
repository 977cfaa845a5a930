//! The command line: every command, argument and flag `faas` takes (clap definitions), and
//! nothing else. What a command does lives in `commands/`, one file each.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::commands::invoke::Call;
use crate::{flags, target};

#[derive(Parser)]
#[command(name = "faas", version, about = "Run, deploy and call functions")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub target: target::TargetArgs,
}

/// How data is printed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Seconds between checks for changed manifests and artifacts (a change the OS
        /// reports is applied at once; the check catches what it does not report).
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
        /// Folder of the Kubernetes Secrets functions name (`valueFrom.secretKeyRef`), one
        /// file per key: DIR/<secret>/<key>, its exact contents the value (write it with
        /// printf, not echo, unless the value ends with a newline).
        #[arg(long, value_name = "DIR", env = "FAAS_SECRETS")]
        secrets: Option<PathBuf>,
        /// The longest spec.timeout a function may have: Lambda's 15m by default; up to 24h
        /// for container functions (long jobs), as the cluster's controller.maxTimeout allows.
        #[arg(long, default_value = "15m", value_parser = parse_max_timeout, env = "FAAS_MAX_TIMEOUT")]
        max_timeout: std::time::Duration,
    },
    /// Deploy Function manifests to the target (`faas target`): a local platform, or a chosen
    /// cluster (artifact pushed, Function applied, Ready awaited).
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
        /// Replace an existing function of the same name that is a different one (another
        /// kind or artifact source); without it such a deploy is refused, saying what differs.
        #[arg(long)]
        replace: bool,
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
        lang: crate::commands::new::Lang,
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
        call: CallArgs,
    },
    /// List functions.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
        /// Only the names, one a line (scripts, shell completion).
        #[arg(short, long, conflicts_with = "output")]
        quiet: bool,
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
        /// IANA time zone: the zone of --cron (default UTC); with NAME, a zone to show the
        /// times in too (default TZ, or this machine's; schedules fire in their own zone).
        #[arg(long)]
        tz: Option<String>,
        /// How many fire times to show.
        #[arg(short = 'c', long, default_value_t = 5)]
        count: usize,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Run a function now (as its schedule would with --schedule), follow it and print the result.
    ///
    /// Prints the run id first, then its progress. Ctrl-C stops waiting; the run goes on
    /// (`faas runs cancel ID` stops it).
    Run {
        /// Function name.
        name: String,
        /// Run with this schedule's payload, timeout, retries, history and notification.
        #[arg(long)]
        schedule: Option<String>,
        /// Payload (request body): text, @file, or - for stdin. Default: the schedule's.
        #[arg(short = 'd', long = "data")]
        data: Option<String>,
        /// A value of one of the function's options (spec.options), NAME=VALUE; repeatable.
        /// Checked before the run exists: a bad one names the option and nothing runs.
        #[arg(long = "option", value_name = "NAME=VALUE")]
        options: Vec<String>,
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
        /// Show times in this IANA zone (default: TZ, or this machine's zone).
        #[arg(long)]
        tz: Option<String>,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Dead letters: async calls that failed every attempt (list, replay, delete) and SQS
    /// triggers' dead-letter queues (redrive).
    Dlq {
        #[command(subcommand)]
        action: DlqCommand,
    },
    /// Print a sample event to call a handler with (as `sam local generate-event` does), e.g.
    /// `faas events sqs --body hi | faas invoke NAME -d @-`.
    Events {
        #[command(subcommand)]
        event: crate::commands::events::Event,
    },
    /// Delete a function.
    #[command(alias = "rm")]
    Delete { name: String },
    /// Show which platform commands act on and why; `faas target set|unset` to choose.
    Target {
        #[command(subcommand)]
        action: Option<TargetCommand>,
    },
}

#[derive(Subcommand)]
pub enum TargetCommand {
    /// Save the target: `local` (the running `faas up`, or --gateway URL) or `cluster`
    /// (--context, default the current one, pinned by name; -n NAMESPACE).
    Set {
        #[arg(value_enum)]
        kind: TargetKind,
    },
    /// Forget the saved target: a running `faas up` is preferred again, and a cluster must be
    /// chosen per command.
    Unset,
}

/// What `faas target set` saves.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum TargetKind {
    Local,
    Cluster,
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// One run: times, phase, status, output and log tail.
    Show {
        /// Run id.
        id: String,
        /// Show times in this IANA zone (default: TZ, or this machine's zone).
        #[arg(long)]
        tz: Option<String>,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Stop a run in flight (local platform): the attempt under way is dropped, nothing is
    /// retried, the run is recorded Interrupted.
    Cancel {
        /// Run id.
        id: String,
    },
    /// A run's whole log (its output and the platform's lines about each attempt).
    Logs {
        /// Run id.
        id: String,
        /// Keep printing while the run goes on, until it ends.
        #[arg(short, long)]
        follow: bool,
    },
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// The dead letters, newest first: call id, function, attempts, last failure, request.
    List {
        /// Only this function's.
        #[arg(long)]
        function: Option<String>,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Put dead letters back in the queue: each is called again as a new call (attempt 1).
    Replay {
        #[command(flatten)]
        which: DeadLetterArgs,
    },
    /// Delete dead letters for good.
    Delete {
        #[command(flatten)]
        which: DeadLetterArgs,
    },
    /// Move the messages of an SQS trigger's dead-letter queue (its queue's RedrivePolicy)
    /// back to the queue: SQS's move task where the server has it, else copied and deleted.
    /// In a cluster, with your own AWS credentials.
    Redrive {
        /// The function whose SQS triggers' dead letters go back.
        function: String,
        /// Only the trigger on this queue URL.
        #[arg(long)]
        queue: Option<String>,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
}

/// Which dead letters `faas dlq replay|delete` takes.
#[derive(clap::Args)]
pub struct DeadLetterArgs {
    /// The call id of one dead letter.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    /// Every dead letter (of --function when given).
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub function: Option<String>,
}

/// What `faas invoke` takes from the command line.
#[derive(clap::Args)]
pub struct CallArgs {
    /// Request body: text, @file, or - for stdin. An SQS, scheduled, ALB or API Gateway
    /// event (`faas events`) is delivered as the platform delivers that event.
    #[arg(short = 'd', long = "data")]
    pub data: Option<String>,
    /// Send -d as a plain request body even when it is an event.
    #[arg(long)]
    pub raw: bool,
    /// Request header K:V (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// HTTP method (default GET, or POST with -d).
    #[arg(short = 'X', long = "method")]
    pub method: Option<String>,
    /// Path after /function/NAME.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Print the status line and headers too.
    #[arg(short = 'i', long)]
    pub include: bool,
    /// Queue the call (`/async-function/NAME`, a POST) instead of waiting for it: prints
    /// the call id, and the function runs it soon, retried on failure.
    #[arg(long = "async")]
    pub asynchronous: bool,
    /// With --async: where the platform POSTs the call's result (X-Callback-Url).
    #[arg(long, requires = "asynchronous")]
    pub callback: Option<String>,
}

impl CallArgs {
    /// The call: `-d` read (text, @file, -), method defaulted, headers split, path rooted.
    pub fn parse(self) -> anyhow::Result<Call> {
        // Only a body given alone can be an event: -X or --path say it is a request.
        let may_be_event =
            self.data.is_some() && !self.raw && self.method.is_none() && self.path == "/";
        let mut call = Call::parse(
            self.data,
            &self.headers,
            self.method,
            &self.path,
            self.include,
        )?;
        if may_be_event {
            call.deliver_events();
        }
        if self.asynchronous {
            if call.method != http::Method::POST && call.method != http::Method::GET {
                anyhow::bail!("--async calls are POST requests; drop -X {}", call.method);
            }
            call.method = http::Method::POST;
            call.asynchronous = true;
        }
        if let Some(url) = self.callback {
            call.headers.push(("X-Callback-Url".to_owned(), url));
        }
        Ok(call)
    }
}

/// A `--shutdown-grace` value: a duration like `30s` or `2m`.
/// `--max-timeout`: a duration up to [`faas_api::limits::MAX_LONG_TIMEOUT`].
pub fn parse_max_timeout(value: &str) -> Result<std::time::Duration, String> {
    let cap = faas_api::limits::parse_duration(value).map_err(|e| e.to_string())?;
    if cap < faas_api::limits::MIN_TIMEOUT || cap > faas_api::limits::MAX_LONG_TIMEOUT {
        return Err(format!("must be between 1s and 24h, got {value:?}"));
    }
    Ok(cap)
}

pub fn parse_grace(value: &str) -> Result<std::time::Duration, String> {
    faas_api::limits::parse_duration(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_cap_is_a_duration_from_a_second_to_a_day() {
        assert_eq!(
            parse_max_timeout("3h"),
            Ok(std::time::Duration::from_secs(3 * 3600))
        );
        assert_eq!(
            parse_max_timeout("24h"),
            Ok(faas_api::limits::MAX_LONG_TIMEOUT)
        );
        for bad in ["25h", "500ms", "0s", "forever", ""] {
            let error = parse_max_timeout(bad).expect_err(bad);
            assert!(!error.is_empty(), "{bad}");
        }
        assert!(
            parse_max_timeout("25h")
                .expect_err("too long")
                .contains("between 1s and 24h")
        );
    }
}
