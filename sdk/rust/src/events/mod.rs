//! Lambda-shaped events, for functions triggered by the platform's event sources: the same
//! JSON a Lambda function receives, so handlers and their fixtures move over unchanged.

pub mod sqs;
