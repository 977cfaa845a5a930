//! What a caller from outside the platform may not tell a function.
//!
//! The platform speaks to functions through request headers: `x-faas-trigger: sqs` makes the
//! Lambda sidecar hand the body over as an SQS event, `x-faas-run-id` names a cron run,
//! `x-faas-attempt` a retry ([`faas_api::contract`]). A handler trusts them as it trusts
//! Lambda's event sources, so an internet client that could send them could forge an SQS
//! batch or a scheduled run. Requests entering through the public listener lose every
//! platform header before anything reads them; the platform's own callers (the cron
//! scheduler, the SQS poller, the async worker) reach functions from inside and set them.

use http::HeaderMap;

/// Removes the platform's headers from a request a client sent; returns how many it removed.
pub fn strip_platform_headers(headers: &mut HeaderMap) -> usize {
    let forged: Vec<_> = headers
        .keys()
        .filter(|name| faas_api::contract::is_platform_header(name.as_str()))
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

    #[test]
    fn only_the_platform_headers_go_every_value_of_them() {
        let mut headers = HeaderMap::new();
        headers.append("X-Faas-Trigger", "sqs".parse().unwrap());
        headers.append("x-faas-trigger", "cron".parse().unwrap());
        headers.append("x-faas-run-id", "forged".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.1".parse().unwrap());
        headers.append("content-type", "text/plain".parse().unwrap());
        assert_eq!(strip_platform_headers(&mut headers), 2);
        assert!(headers.get("x-faas-trigger").is_none());
        assert!(headers.get("x-faas-run-id").is_none());
        assert_eq!(headers.len(), 2);
    }
}
