//! `faas-runtime`: the executors that run a function behind one [`Invoker`] interface.
//!
//! Today that is the WebAssembly executor ([`wasm`]): `wasi:http/proxy` components with a fresh
//! instance per request, and WASI preview1 command modules run CGI-style. Container and Lambda
//! executors plug in behind the same trait later.
//!
//! The gateway owns routing, admission (body size, concurrency) and metrics; the runtime owns
//! what happens once a request is admitted: sandbox, deadlines, memory caps, outbound policy and
//! guest logs.

pub mod aws_credentials;
mod backoff;
pub mod cgi;
mod error;
pub mod guest_log;
mod invoker;
pub mod outbound;
pub mod process;
pub mod schedule;
pub mod sqs;
pub mod target;
pub mod wasm;

pub use error::InvokeError;
pub use invoker::{BoxError, CallContext, Invoker, LogTailSink, ResponseBody, full_body};
