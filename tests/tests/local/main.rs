//! End-to-end tests of local mode: `faas up` as a subprocess, driven over loopback HTTP.
#![allow(clippy::unwrap_used)]

mod aws_credentials;
mod aws_sdk_guest;
mod chains;
mod cli;
mod cli_polish;
mod cold_start;
mod crash;
mod cron;
mod dlq;
mod errors;
mod examples;
mod first_hour;
mod hostile;
mod identity;
mod jobs;
mod lambda;
mod lambda_invoke;
mod lifecycle;
mod management;
mod netns;
mod new_templates;
mod notify;
mod process;
mod rebuild;
mod run_logs;
mod runs;
mod runtime_pods;
mod schedules;
mod secrets;
mod sqs;
mod status;
mod target;
mod ui;
mod unhealthy;
mod webhooks;
