//! Temporary credentials, and the environment a guest sees them in.

use std::time::SystemTime;

/// Temporary credentials for one role.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// When STS says they stop working.
    pub expiration: SystemTime,
    /// The region the guest is told (`AWS_REGION`, `AWS_DEFAULT_REGION`), if known.
    pub region: Option<String>,
}

impl AwsCredentials {
    /// Whether they still work at `now`.
    pub fn valid_at(&self, now: SystemTime) -> bool {
        now < self.expiration
    }

    /// Calls `put` with each variable a guest gets, as Lambda names them.
    pub fn each_env(&self, put: &mut dyn FnMut(&str, &str)) {
        put("AWS_ACCESS_KEY_ID", &self.access_key_id);
        put("AWS_SECRET_ACCESS_KEY", &self.secret_access_key);
        put("AWS_SESSION_TOKEN", &self.session_token);
        if let Some(region) = &self.region {
            put("AWS_REGION", region);
            put("AWS_DEFAULT_REGION", region);
        }
    }
}

/// Never the secrets: credentials end up in `Debug` output of whatever holds them.
impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .field("region", &self.region)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_guest_gets_lambdas_variables_and_debug_output_no_secret() {
        let credentials = AwsCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "the-secret".into(),
            session_token: "the-token".into(),
            expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
            region: Some("eu-west-3".into()),
        };
        let mut env = Vec::new();
        credentials.each_env(&mut |k, v| env.push(format!("{k}={v}")));
        assert_eq!(
            env,
            [
                "AWS_ACCESS_KEY_ID=ASIAEXAMPLE",
                "AWS_SECRET_ACCESS_KEY=the-secret",
                "AWS_SESSION_TOKEN=the-token",
                "AWS_REGION=eu-west-3",
                "AWS_DEFAULT_REGION=eu-west-3",
            ]
        );
        let shown = format!("{credentials:?}");
        assert!(
            !shown.contains("the-secret") && !shown.contains("the-token"),
            "{shown}"
        );
        assert!(credentials.valid_at(SystemTime::UNIX_EPOCH + Duration::from_secs(99)));
        assert!(!credentials.valid_at(SystemTime::UNIX_EPOCH + Duration::from_secs(100)));
    }
}
