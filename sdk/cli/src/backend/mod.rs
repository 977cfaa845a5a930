//! Where the commands' requests go: a [`Backend`] is a local platform (its gateway's management
//! API, [`local`]) or a Kubernetes cluster (its API server, [`cluster`]). Each command is
//! written once over `&dyn Backend` and prints the typed values it returns, so a table or a
//! description looks the same whichever platform answered; the backend's own document comes
//! along ([`Fetched::raw`]) for `-o json|yaml`, which print what the platform said, unchanged.

pub mod cluster;
pub mod local;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use faas_api::{Function, FunctionRun};
use futures::future::BoxFuture;

use crate::client::Reply;
use crate::commands::invoke::Call;
use crate::flags::Manifests;

/// A typed answer and the document it was read from.
#[derive(Debug)]
pub struct Fetched<T> {
    pub value: T,
    /// What the platform answered, for `-o json|yaml`.
    pub raw: serde_json::Value,
}

/// One row of `faas list`: every field a platform may know; `None` prints as `-`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FunctionRow {
    pub name: String,
    /// `Ready`, `Degraded`, `NotReady` or `Unknown` (a cluster Function without a Ready
    /// condition yet).
    pub state: String,
    /// What runs it (`component`, `cgi-module`, `process-http`, ...).
    pub kind: Option<String>,
    /// `ready/desired` (a cluster's replicas).
    pub replicas: Option<String>,
    pub timeout: Option<String>,
    pub memory: Option<String>,
    /// The artifact's digest, shortened.
    pub sha256: Option<String>,
    /// Where to call it.
    pub url: Option<String>,
    /// Why it is not `Ready`.
    pub reason: Option<String>,
}

/// What `faas describe` shows of one function.
#[derive(Debug)]
pub struct Description {
    /// The function with its status (a local platform's summary is put there as a status).
    pub function: Function,
    /// The namespace it lives in (a cluster's).
    pub namespace: Option<String>,
    /// The routes that reach it (a local platform's).
    pub routes: Vec<String>,
    /// Its most recent runs, newest first.
    pub recent_runs: Vec<FunctionRun>,
    /// Its recent events, oldest first (a cluster's).
    pub events: Vec<Event>,
}

/// One event about a function.
#[derive(Debug)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub kind: String,
    pub reason: String,
    pub message: String,
}

/// Which runs `faas runs` lists.
pub struct RunFilter<'a> {
    pub function: Option<&'a str>,
    pub schedule: Option<&'a str>,
    pub phase: Option<&'a str>,
    pub limit: usize,
}

/// A run asked for by `faas run`.
pub struct RunRequest<'a> {
    pub function: &'a str,
    /// Run with this schedule's settings.
    pub schedule: Option<&'a str>,
    pub payload: Option<Bytes>,
    /// Values of the function's options, NAME and VALUE as given (checked by the platform).
    pub options: Vec<(String, String)>,
    /// Return once started instead of once finished.
    pub detach: bool,
}

/// A piece of a run's log, from an offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPiece {
    pub text: String,
    /// Where the next piece starts.
    pub next: u64,
    /// Whether the run has ended (nothing more will be written after `next`).
    pub done: bool,
}

/// How `faas deploy` deploys.
pub struct DeployOptions {
    pub build: bool,
    /// `host/path` to push WASM artifacts under (a cluster's).
    pub registry: Option<String>,
    /// Replace an existing function that is a different one (`faas_api::replace`).
    pub replace: bool,
    /// Wait for Ready (a cluster; a local deploy is synchronous).
    pub wait: bool,
    pub timeout: Duration,
    /// Between status polls.
    pub poll: Duration,
}

/// What a deploy of one function came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Deployed {
    /// A local platform loaded it (`created` when it was new) and serves it at `url`.
    Served { created: bool, url: String },
    /// A cluster has the Function: Ready (when `waited`), public at `url` when it has one.
    Applied { waited: bool, url: Option<String> },
}

/// Which dead letters `faas dlq replay|delete` takes: one call, or all (of a function).
pub struct DeadLetters<'a> {
    pub call_id: Option<&'a str>,
    pub function: Option<&'a str>,
}

/// `faas logs` options.
pub struct LogOptions {
    pub follow: bool,
    pub since: Option<Duration>,
    pub tail: Option<i64>,
}

/// A platform the commands act on. Errors are one line naming the cause and a way out.
pub trait Backend: Send + Sync {
    /// Where this backend acts, for messages: ` in namespace team`, ` at http://…`.
    fn scope(&self) -> String;

    /// Every function.
    fn list(&self) -> BoxFuture<'_, anyhow::Result<Fetched<Vec<FunctionRow>>>>;

    /// One function, its recent runs and events.
    fn describe<'a>(&'a self, name: &'a str)
    -> BoxFuture<'a, anyhow::Result<Fetched<Description>>>;

    /// One function as deployed.
    fn function<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Function>>;

    /// Deletes a function; `Some` says what else goes with it.
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Option<&'static str>>>;

    /// What this platform requires of the manifests on top of `faas_api::validate`, checked
    /// before anything is built or sent.
    fn check(&self, manifests: &Manifests) -> anyhow::Result<()>;

    /// Deploys one function of a manifest whose relative paths start at `base`.
    fn deploy<'a>(
        &'a self,
        function: Function,
        base: &'a Path,
        options: &'a DeployOptions,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<Deployed>>>;

    /// Calls a function and reads the whole answer.
    fn call<'a>(&'a self, name: &'a str, call: &'a Call) -> BoxFuture<'a, anyhow::Result<Reply>>;

    /// Run history, newest first.
    fn runs<'a>(
        &'a self,
        filter: &'a RunFilter<'a>,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<Vec<FunctionRun>>>>;

    /// One run.
    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Fetched<FunctionRun>>>;

    /// Starts a run now; unless detached, returns it finished.
    fn start_run<'a>(
        &'a self,
        request: RunRequest<'a>,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<FunctionRun>>>;

    /// Stops a run in flight: the attempt going on is dropped, nothing is retried, and the
    /// run is recorded `Interrupted` with the message `cancelled by request`.
    fn cancel_run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;

    /// A piece of run `id`'s whole log from `offset`.
    fn run_log<'a>(&'a self, id: &'a str, offset: u64) -> BoxFuture<'a, anyhow::Result<LogPiece>>;

    /// The async calls' dead letters, newest first (`faas dlq list`).
    fn dead_letters(&self) -> BoxFuture<'_, anyhow::Result<Fetched<Vec<serde_json::Value>>>>;

    /// Replays (`replay`) or deletes the dead letters `which` selects; how many.
    fn settle_dead_letters<'a>(
        &'a self,
        replay: bool,
        which: &'a DeadLetters<'a>,
    ) -> BoxFuture<'a, anyhow::Result<u64>>;

    /// Moves the messages of the dead-letter queue of each of `name`'s SQS triggers (or the
    /// one on `queue`) back to the trigger's queue; one document per queue
    /// (`faas_sqs::redrive::Redriven`).
    fn redrive_sqs<'a>(
        &'a self,
        name: &'a str,
        queue: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<serde_json::Value>>>;

    /// A function's log lines, each handed to `sink`; an error of `sink` (standard output
    /// closed) ends it.
    fn logs<'a>(
        &'a self,
        name: &'a str,
        options: &'a LogOptions,
        sink: &'a mut (dyn FnMut(String) -> anyhow::Result<()> + Send),
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// `raw` as `T`, or an error saying the platform answered something unexpected.
pub fn typed<T: serde::de::DeserializeOwned>(raw: &serde_json::Value) -> anyhow::Result<T> {
    serde_json::from_value(raw.clone())
        .map_err(|e| anyhow::anyhow!("the platform answered an unexpected document: {e}"))
}
