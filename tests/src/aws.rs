//! What a guest's AWS credentials are, as STS itself says: shared by the local (`faas up`)
//! and cluster tests of functions' own identities.

/// The `AWS_*` variables in `env` (`NAME=value` lines, as the `hostile` guest's `env` mode
/// prints its environment), in order.
pub fn aws_variables(env: &str) -> Vec<(String, String)> {
    env.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("AWS_"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The ARN `GetCallerIdentity` answers for the credentials in `env` (from
/// [`aws_variables`]), asked of the STS `config` names.
pub async fn caller_of(config: &aws_config::SdkConfig, env: &[(String, String)]) -> String {
    let get = |k: &str| {
        env.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} in {env:?}"))
    };
    let credentials = aws_sdk_sts::config::Credentials::new(
        get("AWS_ACCESS_KEY_ID"),
        get("AWS_SECRET_ACCESS_KEY"),
        Some(get("AWS_SESSION_TOKEN")),
        None,
        "guest",
    );
    let config = aws_sdk_sts::config::Builder::from(config)
        .credentials_provider(credentials)
        .build();
    aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity with the guest's credentials")
        .arn()
        .unwrap_or_default()
        .to_owned()
}

/// The ARN STS gives the session `session` of role `role_arn` (a role's path is not part
/// of it): `arn:aws:sts::<account>:assumed-role/<name>/<session>`.
pub fn assumed_role_arn(role_arn: &str, session: &str) -> String {
    let account = role_arn.split(':').nth(4).unwrap_or_default();
    let name = role_arn.rsplit('/').next().unwrap_or_default();
    format!("arn:aws:sts::{account}:assumed-role/{name}/{session}")
}

/// Writes SSM parameter `name` (a `SecureString`, overwritten) with `value`, through `config`.
pub async fn put_secure_parameter(config: &aws_config::SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put the parameter {name}: {e}"));
}

/// The variables a function with a role holds, as Lambda gives them, in name order (as
/// [`aws_variables`] lists the `hostile` guest's sorted environment).
pub const ROLE_VARIABLES: [&str; 5] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The names of `variables`, in order.
pub fn names_of(variables: &[(String, String)]) -> Vec<&str> {
    variables.iter().map(|(k, _)| k.as_str()).collect()
}
