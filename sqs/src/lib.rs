//! `faas-sqs`: SQS triggers with Lambda's event-source-mapping semantics, calling functions
//! through [`faas_invoke::FunctionTarget`] like an HTTP request does. Its own crate so that
//! only what runs triggers (the gateway) links the AWS SDK.
//!
//! - [`trigger`]: `spec.triggers.sqs[]` with defaults applied.
//! - [`poller`]: one trigger's receive loop (long polling, batch window, backpressure,
//!   shutdown in two steps); [`batch`] takes one batch from delivery to settlement
//!   (visibility extension, delete, release).
//! - [`event`]: the Lambda SQS event a function receives; [`settle`]: what to delete after it
//!   answered (partial batch responses, FIFO ordering).
//! - [`client`]: the SQS API through `aws-sdk-sqs`, with [`aws_credentials`]: which credential
//!   sources it may use; [`status`], [`metrics`]: what users see.
//! - [`redrive`]: messages out of a dead-letter queue, back where they failed or away.
//! - [`pollers`]: the set of pollers following the platform's functions.

pub mod aws_credentials;
mod batch;
pub mod client;
pub mod event;
mod filter;
pub mod metrics;
pub mod poller;
pub mod pollers;
pub mod redrive;
mod scale;
pub mod settle;
pub mod status;
pub mod trigger;

pub use client::{Clients, SourceError};
pub use metrics::SqsMetrics;
pub use poller::{Phase, Poller};
pub use pollers::{Pollers, ReadAs, Wanted};
pub use status::{TriggerState, TriggerStatus};
pub use trigger::{TriggerConfig, TriggerError, triggers_of};
