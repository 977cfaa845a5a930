//! `faas-runtime`: the executors that run a function behind one [`Invoker`] interface.
//!
//! - [`wasm`]: `wasi:http/proxy` components with a fresh instance per request, and WASI
//!   preview1 command modules run CGI-style ([`cgi`]), with guest logs ([`guest_log`]) and the
//!   outbound policy for guests' requests ([`outbound`]).
//! - [`process`]: functions that are processes (a CGI process per request, a supervised HTTP
//!   server, an unmodified Lambda handler), on this machine or beside it in the same pod.
//!
//! The gateway owns routing, admission (body size, concurrency) and metrics; the runtime owns
//! what happens once a request is admitted: sandbox, deadlines, memory caps, outbound policy and
//! guest logs. The invocation contract itself ([`Invoker`], [`InvokeError`], [`CallContext`])
//! is `faas-invoke`'s; the event sources are their own crates (`faas-schedule`, `faas-sqs`) and
//! link no executor.

pub mod cgi;
pub mod guest_log;
pub mod outbound;
pub mod process;
pub mod wasm;

pub use faas_invoke::{
    BoxError, CallContext, InvokeError, Invoker, LogTailSink, ResponseBody, RunLog, RunLogWriter,
    full_body, target,
};
