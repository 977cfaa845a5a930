//! The token of a function's webhook (`spec.webhook`), one rule for every host: what a
//! secret's value means as a token, how short is too short, and, in a cluster, the keyed
//! digest the controller publishes so that the internet-facing gateway can check a token
//! without reading any Secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `spec.trigger` of a run a webhook started.
pub const TRIGGER: &str = "webhook";

/// Shortest token a webhook accepts: a shorter one turns the webhook off, saying so.
pub const MIN_TOKEN_LEN: usize = 16;

/// The token a secret's value holds: a file's trailing newline is not part of a token
/// someone pastes.
pub fn token_of(value: &str) -> &str {
    value.trim_end_matches(['\n', '\r'])
}

/// Why `token` cannot guard a webhook, if it cannot.
pub fn too_short(token: &str) -> Option<String> {
    (token.len() < MIN_TOKEN_LEN).then(|| {
        format!(
            "the webhook's token is shorter than {MIN_TOKEN_LEN} characters: it is turned off until a longer one is set"
        )
    })
}

/// The digest of `token` under the platform's `key` (HMAC-SHA256, hex): what the controller
/// writes to the Function's `status.webhook.tokenDigest`. Readable by whoever may read the
/// Function, it says nothing about the token without the key, which only the platform holds.
pub fn token_digest(key: &[u8], token: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length.
        return String::new();
    };
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `shown` is the token whose digest under `key` is `digest` (constant time in the
/// digest).
pub fn matches_digest(key: &[u8], shown: &[u8], digest: &str) -> bool {
    let Ok(expected) = hex::decode(digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(shown);
    mac.verify_slice(&expected).is_ok()
}

/// Whether `signature` (GitHub's `X-Hub-Signature-256` value, `sha256=<hex>`) is the
/// HMAC-SHA256 of `body` under `token` (constant time).
pub fn matches_signature(token: &[u8], body: &[u8], signature: &[u8]) -> bool {
    let Some(shown) = signature
        .strip_prefix(b"sha256=")
        .and_then(|hex| hex::decode(hex).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&shown).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_matches_its_token_under_its_key_only() {
        let digest = token_digest(b"platform", "hook-token-0123456789");
        assert_eq!(digest.len(), 64);
        assert!(matches_digest(
            b"platform",
            b"hook-token-0123456789",
            &digest
        ));
        assert!(!matches_digest(
            b"platform",
            b"hook-token-012345678",
            &digest
        ));
        assert!(!matches_digest(
            b"another",
            b"hook-token-0123456789",
            &digest
        ));
        assert!(!matches_digest(
            b"platform",
            b"hook-token-0123456789",
            "not hex"
        ));
        assert_eq!(token_of("abc\n"), "abc");
        assert!(too_short("short").is_some() && too_short("0123456789abcdef").is_none());
    }
}
