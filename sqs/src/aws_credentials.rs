//! Where the platform's own AWS clients (SQS triggers, the async-call queue, anything new)
//! get credentials: never from the instance metadata service unless asked for.
//!
//! The SDK's default chain ends with IMDS, the *node's* IAM role: a gateway or runtime pod
//! whose IRSA setup is missing would silently act with whatever the node may do (pull every
//! image, read every queue the node group's role can). Here the chain is built explicitly from
//! the sources the environment configures (static keys, profile files, web identity (IRSA),
//! the container credential endpoint (EKS Pod Identity)), and IMDS joins only with
//! `FAAS_ALLOW_IMDS_CREDENTIALS=true`. With nothing configured, building the chain fails with
//! one error saying no credentials were found and how to give some where the process runs
//! ([`Place`]: a developer's environment or profile under `faas up`, the ServiceAccount's role
//! in a pod), instead of a timeout against 169.254.169.254 at the first call.
//!
//! The plan ([`plan`]) is pure (an environment lookup in, sources out) so it is tested without
//! touching the process environment or the network.

use std::path::PathBuf;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_sdk_sqs::config::SharedCredentialsProvider as Provider;

/// Turns instance-metadata credentials (the node's role) back on for the platform's clients.
pub const ALLOW_IMDS_ENV: &str = "FAAS_ALLOW_IMDS_CREDENTIALS";
/// The pod's ServiceAccount (downward API `spec.serviceAccountName`), named in the error.
pub const SERVICE_ACCOUNT_ENV: &str = "POD_SERVICE_ACCOUNT";

/// One place credentials can come from, in the order the SDK's default chain tries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (`AWS_SESSION_TOKEN`).
    Environment,
    /// `~/.aws/config`, `~/.aws/credentials` (`AWS_PROFILE`, SSO, `credential_process`).
    Profile,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`: IRSA.
    WebIdentity,
    /// `AWS_CONTAINER_CREDENTIALS_{RELATIVE,FULL}_URI`: EKS Pod Identity, ECS.
    Container,
    /// The instance metadata service: the node's role. Only with [`ALLOW_IMDS_ENV`].
    InstanceMetadata,
}

impl CredentialSource {
    /// The provider's name in the chain (and in SDK error messages).
    pub fn name(self) -> &'static str {
        match self {
            CredentialSource::Environment => "Environment",
            CredentialSource::Profile => "Profile",
            CredentialSource::WebIdentity => "WebIdentityToken",
            CredentialSource::Container => "EcsContainer",
            CredentialSource::InstanceMetadata => "Ec2InstanceMetadata",
        }
    }
}

/// Where the process runs, which decides how the "no credentials" error says to give some.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Place {
    /// A pod: its ServiceAccount's role (IRSA, Pod Identity).
    #[default]
    Pod,
    /// `faas up` on a developer's machine: keys in the environment or a profile.
    Local,
}

/// What the platform allows, independent of what the environment configures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialPolicy {
    /// Let the chain end with the instance metadata service.
    pub allow_instance_metadata: bool,
    /// `namespace/name` of the pod's ServiceAccount, for the error message.
    pub service_account: Option<String>,
    /// Where the process runs, for the error message.
    pub place: Place,
}

impl CredentialPolicy {
    /// From `FAAS_ALLOW_IMDS_CREDENTIALS` and `POD_NAMESPACE` / `POD_SERVICE_ACCOUNT`.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`CredentialPolicy::from_env`] for a process running in `place`.
    pub fn from_env_in(place: Place) -> Self {
        CredentialPolicy {
            place,
            ..Self::from_env()
        }
    }

    /// From any environment lookup.
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Self {
        let service_account =
            env(SERVICE_ACCOUNT_ENV)
                .filter(|s| !s.is_empty())
                .map(|sa| match env("POD_NAMESPACE").filter(|n| !n.is_empty()) {
                    Some(ns) => format!("{ns}/{sa}"),
                    None => sa,
                });
        CredentialPolicy {
            allow_instance_metadata: env(ALLOW_IMDS_ENV).is_some_and(|v| truthy(&v)),
            service_account,
            place: Place::Pod,
        }
    }
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// No source of credentials is configured (and instance metadata is not allowed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoCredentials(pub String);

/// The sources `env` configures, in chain order. `profile_files` tells whether a shared
/// config or credentials file exists (the caller looks; this stays pure).
pub fn plan(
    policy: &CredentialPolicy,
    env: impl Fn(&str) -> Option<String>,
    profile_files: bool,
) -> Result<Vec<CredentialSource>, NoCredentials> {
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    let mut sources = Vec::new();
    if set("AWS_ACCESS_KEY_ID") {
        sources.push(CredentialSource::Environment);
    }
    if set("AWS_PROFILE") || profile_files {
        sources.push(CredentialSource::Profile);
    }
    if set("AWS_WEB_IDENTITY_TOKEN_FILE") && set("AWS_ROLE_ARN") {
        sources.push(CredentialSource::WebIdentity);
    }
    if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        sources.push(CredentialSource::Container);
    }
    // AWS_EC2_METADATA_DISABLED (which every pod the platform renders carries) wins over the
    // flag: the SDK would refuse to call IMDS anyway, and the error should say so.
    let imds_disabled = env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| truthy(&v));
    if policy.allow_instance_metadata && !imds_disabled {
        sources.push(CredentialSource::InstanceMetadata);
    }
    if sources.is_empty() {
        return Err(NoCredentials(no_credentials(policy)));
    }
    Ok(sources)
}

/// "No AWS credentials found", and how to give some where the process runs.
fn no_credentials(policy: &CredentialPolicy) -> String {
    let imds =
        format!("instance metadata (the machine's role) is not asked unless {ALLOW_IMDS_ENV}=true");
    match policy.place {
        Place::Local => format!(
            "no AWS credentials found: set AWS_PROFILE (a profile in ~/.aws/config or \
             ~/.aws/credentials, as `aws configure` or `aws sso login` writes) or \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY where `faas up` runs (any values do \
             for a local SQS server); {imds}"
        ),
        Place::Pod => {
            let who = match &policy.service_account {
                Some(sa) => format!("ServiceAccount {sa}"),
                None => "the pod's ServiceAccount".to_owned(),
            };
            format!(
                "no AWS credentials found: set eks.amazonaws.com/role-arn on {who} (IRSA: the \
                 chart's serviceAccount.roleArn), or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY \
                 or AWS_PROFILE; {imds}"
            )
        }
    }
}

/// Whether a shared config or credentials file exists where the SDK would read it.
pub fn profile_files_exist(env: impl Fn(&str) -> Option<String>) -> bool {
    let home = env("HOME").map(PathBuf::from);
    let config = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let credentials = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    [config, credentials]
        .into_iter()
        .flatten()
        .any(|p| p.is_file())
}

/// The chain of exactly `sources`, configured by `conf` (HTTP client and region for STS);
/// `None` for no sources (which [`plan`] never returns).
pub fn chain(
    sources: &[CredentialSource],
    conf: &ProviderConfig,
) -> Option<CredentialsProviderChain> {
    let mut chain: Option<CredentialsProviderChain> = None;
    for &source in sources {
        let add = |chain: Option<CredentialsProviderChain>, provider| match chain {
            None => CredentialsProviderChain::first_try(source.name(), provider),
            Some(c) => c.or_else(source.name(), provider),
        };
        chain = Some(match source {
            CredentialSource::Environment => add(
                chain,
                Provider::new(EnvironmentVariableCredentialsProvider::new()),
            ),
            CredentialSource::Profile => add(
                chain,
                Provider::new(
                    aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .configure(conf)
                        .build(),
                ),
            ),
            CredentialSource::WebIdentity => add(
                chain,
                Provider::new(
                    aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                        .configure(conf)
                        .build(),
                ),
            ),
            CredentialSource::Container => add(
                chain,
                Provider::new(
                    aws_config::ecs::EcsCredentialsProvider::builder()
                        .configure(conf)
                        .build(),
                ),
            ),
            CredentialSource::InstanceMetadata => add(
                chain,
                Provider::new(
                    aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                        .configure(conf)
                        .build(),
                ),
            ),
        });
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn an_empty_environment_is_one_error_naming_the_service_account_not_the_node_role() {
        let policy = CredentialPolicy::from_lookup(env(&[
            ("POD_NAMESPACE", "faas-system"),
            ("POD_SERVICE_ACCOUNT", "faas-gateway"),
        ]));
        let err = plan(&policy, env(&[]), false).expect_err("no credentials");
        assert!(
            err.0.contains(
                "no AWS credentials found: set eks.amazonaws.com/role-arn on ServiceAccount faas-system/faas-gateway"
            ),
            "{err}"
        );
        assert!(err.0.contains(ALLOW_IMDS_ENV), "{err}");
    }

    #[test]
    fn locally_the_error_says_how_a_developer_gives_credentials() {
        let policy = CredentialPolicy {
            place: Place::Local,
            ..CredentialPolicy::from_lookup(env(&[]))
        };
        let err = plan(&policy, env(&[]), false).expect_err("no credentials");
        assert!(err.0.starts_with("no AWS credentials found: "), "{err}");
        assert!(
            err.0.contains("AWS_PROFILE") && err.0.contains("AWS_ACCESS_KEY_ID"),
            "{err}"
        );
        assert!(!err.0.contains("ServiceAccount"), "{err}");
        assert!(err.0.contains(ALLOW_IMDS_ENV), "{err}");
    }

    #[test]
    fn instance_metadata_is_in_the_chain_only_when_allowed_and_not_disabled() {
        let deny = CredentialPolicy::default();
        let allow = CredentialPolicy {
            allow_instance_metadata: true,
            ..CredentialPolicy::default()
        };
        let keys = [
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ];
        assert_eq!(
            plan(&deny, env(&keys), false).expect("planned"),
            [CredentialSource::Environment]
        );
        assert_eq!(
            plan(&allow, env(&keys), false).expect("planned"),
            [
                CredentialSource::Environment,
                CredentialSource::InstanceMetadata
            ]
        );
        assert_eq!(
            plan(&allow, env(&[]), false).expect("planned"),
            [CredentialSource::InstanceMetadata]
        );
        // The pod-level switch every rendered pod carries beats the flag.
        assert!(plan(&allow, env(&[("AWS_EC2_METADATA_DISABLED", "true")]), false).is_err());
    }

    #[test]
    fn irsa_profiles_and_pod_identity_are_sources_of_their_own() {
        let deny = CredentialPolicy::default();
        let irsa = [
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/token",
            ),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/faas-gateway",
            ),
        ];
        assert_eq!(
            plan(&deny, env(&irsa), false).expect("planned"),
            [CredentialSource::WebIdentity]
        );
        // A token file without a role is not IRSA.
        assert!(plan(&deny, env(&irsa[..1]), false).is_err());
        assert_eq!(
            plan(&deny, env(&[]), true).expect("planned"),
            [CredentialSource::Profile]
        );
        assert_eq!(
            plan(
                &deny,
                env(&[(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://169.254.170.23/v1/credentials"
                )]),
                false
            )
            .expect("planned"),
            [CredentialSource::Container]
        );
    }

    #[test]
    fn the_flag_reads_like_a_boolean() {
        for (v, want) in [("true", true), ("1", true), ("false", false), ("", false)] {
            let policy = CredentialPolicy::from_lookup(env(&[(ALLOW_IMDS_ENV, v)]));
            assert_eq!(policy.allow_instance_metadata, want, "{v:?}");
        }
    }

    #[tokio::test]
    async fn the_chain_holds_exactly_the_planned_providers() {
        // The chain built from a plan that excludes IMDS holds no provider that could call
        // 169.254.169.254: an unset environment provider just reports "not loaded".
        // Building providers connects nowhere; the IMDS one needs a client to exist.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let conf = ProviderConfig::empty().with_http_client(http);
        let policy = CredentialPolicy::default();
        let sources = plan(&policy, env(&[("AWS_ACCESS_KEY_ID", "AKIA")]), true).expect("planned");
        let built = chain(&sources, &conf).expect("planned");
        assert_eq!(
            format!("{built:?}"),
            r#"CredentialsProviderChain { providers: ["Environment", "Profile"] }"#
        );
        let allowed = CredentialPolicy {
            allow_instance_metadata: true,
            ..CredentialPolicy::default()
        };
        let sources = plan(&allowed, env(&[]), false).expect("planned");
        assert_eq!(
            format!("{:?}", chain(&sources, &conf).expect("planned")),
            r#"CredentialsProviderChain { providers: ["Ec2InstanceMetadata"] }"#
        );
    }
}
