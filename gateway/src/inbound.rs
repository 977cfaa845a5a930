//! Who may speak for the platform: which callers' platform headers a function gets to see.
//!
//! The platform speaks to functions through request headers: `x-faas-trigger: sqs` makes the
//! Lambda sidecar hand the body over as an SQS event, `x-faas-run-id` names a cron run,
//! `x-faas-attempt` a retry, `x-faas-timeout-ms` a run's own deadline
//! ([`faas_api::contract`]). A handler trusts them as it trusts Lambda's event sources, so a
//! caller that could send them could forge an SQS batch or a scheduled run to another team's
//! function, or stretch its deadline. They are believed only from the platform:
//!
//! - the public listener (the ALB, the internet): never; every `x-faas-*` header goes;
//! - the admin listener (any pod in the cluster can reach it): only from a caller that shows
//!   the platform token (the controller's cron), compared in constant time; everyone else's
//!   go, as on the public listener;
//! - a listener that answers everything: local mode (the developer's own loopback) and
//!   runtime pods, whose NetworkPolicy admits only the gateway and the controller.
//!
//! The token itself never reaches a function.

use faas_api::contract::{PLATFORM_TOKEN_HEADER, is_platform_header};
use http::HeaderMap;
use subtle::ConstantTimeEq as _;

use crate::server::Exposure;

/// Whether a request's platform headers were kept (its caller is the platform) or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The platform itself: its headers say what started the call.
    Platform,
    /// Anyone else: whatever platform headers it sent are gone.
    Outside { removed: usize },
}

/// Sorts out the platform headers of a request, by whether it comes from the platform
/// ([`is_platform`], decided once per request).
pub fn sort_out(from_platform: bool, headers: &mut HeaderMap) -> Caller {
    let shown = headers.remove(PLATFORM_TOKEN_HEADER);
    if from_platform {
        return Caller::Platform;
    }
    Caller::Outside {
        removed: strip_platform_headers(headers) + usize::from(shown.is_some()),
    }
}

/// Whether a request on a listener of `exposure` comes from the platform itself (see the
/// module's rules), `token` being the platform token this gateway was given (none: nobody on
/// the admin listener is the platform).
pub fn is_platform(exposure: Exposure, token: Option<&str>, headers: &HeaderMap) -> bool {
    match exposure {
        Exposure::All => true,
        Exposure::Public => false,
        Exposure::Admin => match (token, headers.get(PLATFORM_TOKEN_HEADER)) {
            (Some(token), Some(shown)) => bool::from(shown.as_bytes().ct_eq(token.as_bytes())),
            _ => false,
        },
    }
}

/// Removes the platform's headers; returns how many it removed.
fn strip_platform_headers(headers: &mut HeaderMap) -> usize {
    let forged: Vec<_> = headers
        .keys()
        .filter(|name| is_platform_header(name.as_str()))
        .cloned()
        .collect();
    for name in &forged {
        headers.remove(name);
    }
    forged.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TOKEN: &str = "a-platform-token-of-some-length";

    fn forged(token: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append("X-Faas-Trigger", "sqs".parse().unwrap());
        headers.append("x-faas-trigger", "cron".parse().unwrap());
        headers.append("x-faas-timeout-ms", "86400000".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.1".parse().unwrap());
        headers.append("content-type", "text/plain".parse().unwrap());
        if let Some(token) = token {
            headers.append(PLATFORM_TOKEN_HEADER, token.parse().unwrap());
        }
        headers
    }

    fn platform_headers(headers: &HeaderMap) -> Vec<&str> {
        headers
            .keys()
            .map(|k| k.as_str())
            .filter(|k| k.starts_with("x-faas-"))
            .collect()
    }

    #[test]
    fn the_public_never_speaks_for_the_platform_token_or_not() {
        let mut headers = forged(Some(TOKEN));
        assert_eq!(
            sort_out(
                is_platform(Exposure::Public, Some(TOKEN), &headers),
                &mut headers
            ),
            Caller::Outside { removed: 3 }
        );
        assert!(platform_headers(&headers).is_empty());
        assert_eq!(headers.len(), 2, "the client's own headers stay");
    }

    #[test]
    fn on_the_admin_listener_only_the_token_holder_does() {
        for (configured, shown) in [
            (Some(TOKEN), None),
            (Some(TOKEN), Some("a-platform-token-of-some-lengtX")),
            (Some(TOKEN), Some("")),
            (None, Some(TOKEN)),
            (None, None),
        ] {
            let mut headers = forged(shown);
            let caller = sort_out(
                is_platform(Exposure::Admin, configured, &headers),
                &mut headers,
            );
            assert!(
                matches!(caller, Caller::Outside { .. }),
                "{configured:?} {shown:?}"
            );
            assert!(
                platform_headers(&headers).is_empty(),
                "{configured:?} {shown:?}"
            );
        }
        let mut headers = forged(Some(TOKEN));
        assert_eq!(
            sort_out(
                is_platform(Exposure::Admin, Some(TOKEN), &headers),
                &mut headers
            ),
            Caller::Platform
        );
        assert_eq!(
            platform_headers(&headers),
            ["x-faas-trigger", "x-faas-timeout-ms"]
        );
        assert_eq!(headers.get_all("x-faas-trigger").iter().count(), 2);
    }

    #[test]
    fn local_mode_and_runtime_pods_keep_them_but_never_the_token() {
        let mut headers = forged(Some(TOKEN));
        assert_eq!(
            sort_out(is_platform(Exposure::All, None, &headers), &mut headers),
            Caller::Platform
        );
        assert_eq!(
            platform_headers(&headers),
            ["x-faas-trigger", "x-faas-timeout-ms"]
        );
    }
}
