//! `faas-identity`: a function's own AWS identity, as Lambda gives one to each handler.
//!
//! A function with `spec.iam.roleArn` gets temporary credentials for exactly that role in its
//! environment at each invocation (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_DEFAULT_REGION`): never the process's own identity,
//! never another function's. Where they come from is a [`RoleSource`]:
//!
//! - [`AssumeRole`], locally (`faas up`): STS `AssumeRole` into the role with the developer's
//!   own credentials, so a function runs with the permissions it will have in production;
//! - [`WebIdentity`], in a cluster: STS `AssumeRoleWithWebIdentity` with a token of the
//!   function's ServiceAccount (a [`TokenSource`]: the pool pod's TokenRequest), the trust
//!   relationship IRSA uses, so per-function roles and their trust policies keep working
//!   when functions share a pool pod.
//!
//! [`FunctionIdentity`] keeps a function's credentials fresh in the background (refreshing
//! before they expire, retrying with the platform's backoff) and hands them to the executor as
//! a [`faas_invoke::InvocationEnv`]: reading them at an invocation is a lock-free borrow.
//! When the role cannot be assumed, invocations run without credentials (the guest's SDK
//! says "no credentials"), and [`FunctionIdentity::status`] says why.

mod credentials;
mod refresh;
mod sts;

pub use credentials::AwsCredentials;
pub use refresh::{FunctionIdentity, IdentityStatus, refresh_in};
pub use sts::{
    AssumeRole, BoxFuture, IdentityError, RoleSource, TokenSource, Unavailable, WebIdentity,
    session_name,
};
