//! SQS triggers (issue 4, in progress): the parts of Lambda's event-source-mapping semantics
//! that are pure, built and tested before the poller that will use them.
//!
//! - [`event`]: the Lambda SQS event a function receives for a batch, in Lambda's shape.
//! - [`settle`]: what to delete and what to keep after the function answered (partial batch
//!   responses, FIFO ordering).

pub mod event;
pub mod settle;
