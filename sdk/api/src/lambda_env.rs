//! The environment Lambda gives a handler process, in one place: the runtime sets it for the
//! handler processes it starts (local mode), the controller renders it into the function
//! container beside the runtime sidecar (cluster mode).
//!
//! Runtime interface clients depend on it: the Rust `lambda_runtime` crate refuses to start
//! without the function name, memory size, version and log group/stream variables.
//! `AWS_LAMBDA_MAX_CONCURRENCY` is set only for a function with
//! `perProcessConcurrency` above 1: it switches runtime clients (`awslambdaric`,
//! `lambda_runtime::run_concurrent`) into Lambda Managed Instances' mode, where one process
//! polls the Runtime API several times at once.

/// What the handler's environment is made from.
#[derive(Clone, Debug)]
pub struct LambdaIdentity<'a> {
    /// Function name.
    pub function: &'a str,
    /// `spec.memory` in MiB.
    pub memory_mib: u64,
    /// AWS region (`AWS_REGION` and `AWS_DEFAULT_REGION`).
    pub region: &'a str,
    /// `_HANDLER`: the handler name the runtime client loads (`module.function` for Python).
    pub handler: &'a str,
    /// `LAMBDA_TASK_ROOT`: where the function's code is.
    pub task_root: &'a str,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`.
    pub log_stream: &'a str,
    /// Invocations a process serves at once: `AWS_LAMBDA_MAX_CONCURRENCY` when above 1.
    pub per_process: u32,
}

/// Variables the Rust `lambda_runtime` crate refuses to start without.
pub const REQUIRED_BY_LAMBDA_RUNTIME: &[&str] = &[
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
];

/// Variables the handler must not get from `spec.env`: the platform owns them.
pub const RESERVED: &[&str] = &["AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_MAX_CONCURRENCY"];

/// The region of this process (`AWS_REGION`, else `us-east-1`, as the Lambda runtime
/// emulator assumes): what a function's ARNs and `AWS_REGION` say when nothing else does.
pub fn process_region() -> String {
    std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "us-east-1".to_owned())
}

/// `(name, value)` of every variable Lambda sets for a handler, except
/// `AWS_LAMBDA_RUNTIME_API` (where the Runtime API is depends on the placement).
pub fn handler_environment(identity: &LambdaIdentity<'_>) -> Vec<(&'static str, String)> {
    let name = identity.function;
    let mut env = vec![
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            identity.memory_mib.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", identity.log_stream.to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", identity.region.to_owned()),
        ("AWS_DEFAULT_REGION", identity.region.to_owned()),
        ("_HANDLER", identity.handler.to_owned()),
        ("LAMBDA_TASK_ROOT", identity.task_root.to_owned()),
        ("LAMBDA_RUNTIME_DIR", identity.task_root.to_owned()),
        ("TZ", ":UTC".to_owned()),
    ];
    if identity.per_process > 1 {
        env.push((
            "AWS_LAMBDA_MAX_CONCURRENCY",
            identity.per_process.to_string(),
        ));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_what_lambda_runtime_requires_and_the_concurrency_switch_only_when_asked() {
        let identity = LambdaIdentity {
            function: "orders",
            memory_mib: 256,
            region: "eu-west-3",
            handler: "app.handler",
            task_root: "/var/task",
            log_stream: "2026/11/29/[$LATEST]faas",
            per_process: 1,
        };
        let concurrent = handler_environment(&LambdaIdentity {
            per_process: 8,
            ..identity.clone()
        });
        assert!(concurrent.contains(&("AWS_LAMBDA_MAX_CONCURRENCY", "8".to_owned())));
        let env = handler_environment(&identity);
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        for required in REQUIRED_BY_LAMBDA_RUNTIME {
            assert!(get(required).is_some(), "{required} missing");
        }
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(get("AWS_LAMBDA_LOG_GROUP_NAME"), Some("/aws/lambda/orders"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-3"));
        assert_eq!(get("_HANDLER"), Some("app.handler"));
        for reserved in RESERVED {
            assert!(
                get(reserved).is_none(),
                "{reserved} must not be set with one per process"
            );
        }
    }
}
