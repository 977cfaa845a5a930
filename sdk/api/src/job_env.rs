//! What a `mode: job` process finds in its environment, wherever it runs: a child process of
//! `faas up` (`faas_runtime::process::job`) or the container of a Kubernetes Job the
//! controller renders (`faas_controller::render::job`). Both build it from the run's request
//! as the scheduler made it (its `x-faas-*` headers and body), here, so the two cannot drift:
//!
//! - `FAAS_RUN_ID`, `FAAS_SCHEDULE`, `FAAS_TRIGGER`, `FAAS_ATTEMPT`, `FAAS_SCHEDULED_TIME`;
//! - `FAAS_OPTION_<NAME>` for each of the run's options ([`crate::options`]);
//! - the payload as `FAAS_PAYLOAD` (text) or `FAAS_PAYLOAD_BASE64` (anything else), up to
//!   [`MAX_PAYLOAD_ENV`] bytes (a Job's pod has no stdin; locally it is on stdin too);
//! - `FAAS_OUTPUT`: where the job writes its output (set by each host: a file locally, the
//!   container's termination message in a Job, at most [`MAX_CLUSTER_OUTPUT`] bytes there).

use std::time::Duration;

use crate::contract;

/// The run's identity, variable by variable, and the header each comes from.
pub const RUN_VARIABLES: [(&str, &str); 5] = [
    ("FAAS_RUN_ID", contract::RUN_ID_HEADER),
    ("FAAS_SCHEDULE", contract::SCHEDULE_HEADER),
    ("FAAS_TRIGGER", contract::TRIGGER_HEADER),
    ("FAAS_ATTEMPT", contract::ATTEMPT_HEADER),
    ("FAAS_SCHEDULED_TIME", contract::SCHEDULED_TIME_HEADER),
];
/// The file a job writes its output to.
pub const OUTPUT_VARIABLE: &str = "FAAS_OUTPUT";
/// The payload as text.
pub const PAYLOAD_VARIABLE: &str = "FAAS_PAYLOAD";
/// The payload, base64, when it is not text.
pub const PAYLOAD_BASE64_VARIABLE: &str = "FAAS_PAYLOAD_BASE64";
/// Largest payload passed in the environment (Linux refuses a single variable past 128 KiB).
pub const MAX_PAYLOAD_ENV: usize = 96 * 1024;
/// Largest output of a job in a cluster: Kubernetes keeps 4 KiB of a termination message.
pub const MAX_CLUSTER_OUTPUT: usize = 4096;
/// Between SIGTERM (the deadline, a cancellation) and SIGKILL: a late run should not hold
/// its slot long, yet a script can still clean up.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The environment of a run, from its request's headers (`header(name)`) and payload.
pub fn environment(
    header: impl Fn(&str) -> Option<String>,
    payload: &[u8],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = RUN_VARIABLES
        .iter()
        .filter_map(|(var, name)| header(name).map(|v| ((*var).to_owned(), v)))
        .collect();
    if let Some(options) = header(contract::OPTIONS_HEADER)
        .as_deref()
        .and_then(crate::options::parse_header)
    {
        env.extend(options.iter().map(|(name, value)| {
            (
                crate::options::env_name(name),
                crate::options::text_of(value),
            )
        }));
    }
    if !payload.is_empty() && payload.len() <= MAX_PAYLOAD_ENV {
        match std::str::from_utf8(payload) {
            Ok(text) if !text.contains('\0') => {
                env.push((PAYLOAD_VARIABLE.to_owned(), text.to_owned()))
            }
            _ => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
                env.push((PAYLOAD_BASE64_VARIABLE.to_owned(), encoded));
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn a_run_becomes_variables_in_a_stable_order() {
        let env = environment(
            headers(&[
                ("x-faas-run-id", "r.nightly.20261207t030000z"),
                ("x-faas-schedule", "nightly"),
                ("x-faas-trigger", "cron"),
                ("x-faas-attempt", "2"),
                ("x-faas-scheduled-time", "2026-12-07T03:00:00Z"),
                ("x-faas-options", r#"{"days":7,"dry_run":false}"#),
            ]),
            b"{\"scope\": \"yesterday\"}",
        );
        let want: Vec<(String, String)> = [
            ("FAAS_RUN_ID", "r.nightly.20261207t030000z"),
            ("FAAS_SCHEDULE", "nightly"),
            ("FAAS_TRIGGER", "cron"),
            ("FAAS_ATTEMPT", "2"),
            ("FAAS_SCHEDULED_TIME", "2026-12-07T03:00:00Z"),
            ("FAAS_OPTION_DAYS", "7"),
            ("FAAS_OPTION_DRY_RUN", "false"),
            ("FAAS_PAYLOAD", "{\"scope\": \"yesterday\"}"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(env, want);
    }

    #[test]
    fn a_payload_that_is_not_text_is_base64_and_a_huge_one_is_left_out() {
        let env = environment(headers(&[]), &[0xff, 0x00, 0x01]);
        assert_eq!(
            env,
            vec![(PAYLOAD_BASE64_VARIABLE.to_owned(), "/wAB".to_owned())]
        );
        let nul = environment(headers(&[]), b"a\0b");
        assert_eq!(nul[0].0, PAYLOAD_BASE64_VARIABLE);
        assert!(environment(headers(&[]), &vec![b'x'; MAX_PAYLOAD_ENV + 1]).is_empty());
        assert!(environment(headers(&[]), b"").is_empty());
        // Options that are not a JSON object of scalars are no options.
        assert!(environment(headers(&[("x-faas-options", "[1]")]), b"").is_empty());
    }
}
