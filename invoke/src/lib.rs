//! `faas-invoke`: how a function is called, independent of what runs it.
//!
//! The executors (`faas-runtime`: wasmtime, processes) implement [`Invoker`]; the event
//! sources (`faas-schedule`, `faas-sqs`) call functions through [`FunctionTarget`] like an HTTP
//! request does. Both sides meet here so that an event source does not link an executor
//! (the controller runs cron without wasmtime).

pub mod buffer;
mod error;
pub mod failure_log;
mod invoker;
pub mod target;

pub use buffer::{Buffered, buffer_whole, prepend};
pub use error::InvokeError;
pub use invoker::{
    BoxError, CallContext, Degradation, InvocationEnv, Invoker, LogTailSink, ResponseBody, RunLog,
    RunLogWriter, full_body,
};
pub use target::{BoundedBody, FunctionTarget, read_bounded};
