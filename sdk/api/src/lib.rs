//! `faas-api`: the `Function` and `FunctionRun` resources of `faas.dev/v1alpha1`, their defaults,
//! their validation, and manifest loading. Pure: no I/O but reading manifest files.
//!
//! Every consumer (gateway, runtime, controller, CLI) sees a `Function` only after
//! [`validate`] accepted it, and reads typed limits through [`FunctionSpec::limits`].

pub mod artifact;
pub mod backoff;
pub mod chain;
pub mod cluster;
pub mod crd;
pub mod cron;
pub mod env;
pub mod filter;
mod function;
pub mod job_env;
pub mod lambda_env;
pub mod limits;
pub mod manifest;
pub mod network;
pub mod notify;
pub mod options;
pub mod pool;
pub mod replace;
pub mod routing;
mod run;
pub mod scaling;
mod schema;
#[doc(hidden)]
pub mod seeded;
pub mod sqs;
pub mod validate;
pub mod webhook;

pub use cluster::{ClusterPolicy, contract, validate_for_cluster};
pub use env::{
    Env, EnvSource, EnvVar, SecretKeyRef, SecretRef, SecretsManagerRef, SsmParameterRef,
};
pub use function::*;
pub use limits::Limits;
pub use run::*;
pub use validate::{FieldError, ValidationErrors, validate};

/// API group of every resource here.
pub const GROUP: &str = "faas.dev";
/// `apiVersion` of every resource here.
pub const API_VERSION: &str = "faas.dev/v1alpha1";

/// Both CRDs (`Function`, then `FunctionRun`) as a two-document YAML stream, ready for
/// `kubectl apply -f -` or the Helm chart's `crds/` directory.
pub fn crd_yaml() -> String {
    let function =
        serde_yaml::to_string(&crd::function_crd()).expect("the Function CRD serializes");
    let run =
        serde_yaml::to_string(&crd::function_run_crd()).expect("the FunctionRun CRD serializes");
    format!("{function}---\n{run}")
}
