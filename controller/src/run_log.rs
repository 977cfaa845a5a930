//! A container function's run log tail, from its pod's log. A pool pod sends the guest's
//! last lines back with the answer ([`faas_api::contract::LOG_TAIL_HEADER`]); a container
//! function's own server cannot (nothing of ours runs in its process), so the gateway names
//! the pod that answered ([`faas_api::contract::POD_HEADER`]) and the controller reads that
//! pod's log through the API (`pods/log`, container
//! [`faas_api::contract::FUNCTION_CONTAINER`], with timestamps), keeping the lines stamped
//! between the call and its answer.
//!
//! What the tail is: the pod's output during the run. A pod serving other calls at the same
//! time mixes their lines in, as its `kubectl logs` does. The pod must be one of the
//! function's (its labels, in the run's namespace), so a forged name reads nothing.

use std::time::Duration;

use faas_api::contract;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

/// How long after the answer the log is read: a container runtime copies a container's
/// output to its log file on its own, so lines printed just before the answer may land a
/// moment after it.
pub const SETTLE: Duration = Duration::from_millis(300);
/// Lines stamped this long before the call (or after the answer) are kept too: the node's
/// clock and ours differ (by milliseconds where both keep time with NTP), and the API takes
/// `sinceTime` in whole seconds.
const CLOCK_SLACK: SignedDuration = SignedDuration::from_secs(1);
/// The most lines read from the pod's log (its last since the call).
const MAX_LINES: i64 = 2000;
/// The longest the API is waited for: a run's record does not wait on a slow log.
const READ_LIMIT: Duration = Duration::from_secs(5);

/// Reads run log tails from function pods' logs.
#[derive(Clone)]
pub struct PodLogs {
    client: Client,
}

/// Why a tail could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("pod {pod} is not a pod of function {function} in {namespace}")]
    NotTheFunctionsPod {
        pod: String,
        function: String,
        namespace: String,
    },
    #[error("reading the log of pod {pod}: {source}")]
    Api {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading the log of pod {pod}: no answer within {READ_LIMIT:?}")]
    Slow { pod: String },
}

impl PodLogs {
    pub fn new(client: Client) -> Self {
        PodLogs { client }
    }

    /// The tail of a run of `function` in `namespace` that pod `pod` answered: its lines
    /// stamped from `since` (the call) to `until` (its answer).
    pub async fn tail(
        &self,
        namespace: &str,
        function: &str,
        pod: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<String, TailError> {
        tokio::time::timeout(
            READ_LIMIT,
            self.read(namespace, function, pod, since, until),
        )
        .await
        .unwrap_or_else(|_| Err(TailError::Slow { pod: pod.into() }))
    }

    async fn read(
        &self,
        namespace: &str,
        function: &str,
        pod: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<String, TailError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let api_error = |source| TailError::Api {
            pod: pod.into(),
            source,
        };
        // A list, not a get: the controller's role lists pods (stale load reports) and
        // needs nothing more to check a name against the function's labels.
        let selector = format!(
            "{}={function},{}={}",
            contract::FUNCTION_LABEL,
            contract::MANAGED_BY_LABEL,
            contract::CONTROLLER
        );
        let found = pods
            .list(
                &ListParams::default()
                    .labels(&selector)
                    .fields(&format!("metadata.name={pod}")),
            )
            .await
            .map_err(api_error)?;
        if found.items.is_empty() {
            return Err(TailError::NotTheFunctionsPod {
                pod: pod.into(),
                function: function.into(),
                namespace: namespace.into(),
            });
        }
        let since = since - CLOCK_SLACK;
        let log = pods
            .logs(
                pod,
                &LogParams {
                    container: Some(contract::FUNCTION_CONTAINER.into()),
                    since_time: Some(since),
                    tail_lines: Some(MAX_LINES),
                    timestamps: true,
                    ..LogParams::default()
                },
            )
            .await
            .map_err(api_error)?;
        Ok(tail_between(&log, since, until + CLOCK_SLACK))
    }
}

/// The lines of `log` (each `<RFC 3339 time> <text>`, as `timestamps=true` gives them)
/// stamped from `since` to `until`, without their stamps: the last
/// [`contract::MAX_LOG_TAIL_BYTES`] of them, from a line's start where one fits.
pub fn tail_between(log: &str, since: Timestamp, until: Timestamp) -> String {
    let mut tail = String::new();
    for line in log.lines() {
        let Some((stamp, text)) = line.split_once(' ') else {
            continue;
        };
        let Ok(stamp) = stamp.parse::<Timestamp>() else {
            continue;
        };
        if stamp >= since && stamp <= until {
            tail.push_str(text);
            tail.push('\n');
        }
    }
    if tail.len() <= contract::MAX_LOG_TAIL_BYTES {
        return tail;
    }
    let mut start = tail.len() - contract::MAX_LOG_TAIL_BYTES;
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    let cut = &tail[start..];
    // Whole lines where one starts within the window.
    match cut.find('\n') {
        Some(end) if end + 1 < cut.len() => cut[end + 1..].to_owned(),
        _ => cut.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_lines_stamped_during_the_run_without_their_stamps() {
        let log = "2026-12-06T03:00:00.5Z before\n\
                   2026-12-06T03:00:01.000000001Z first\n\
                   not a stamped line\n\
                   2026-12-06T03:00:02Z second with  spaces\n\
                   2026-12-06T03:00:03.1Z after\n";
        assert_eq!(
            tail_between(log, at("2026-12-06T03:00:01Z"), at("2026-12-06T03:00:03Z")),
            "first\nsecond with  spaces\n"
        );
        assert_eq!(
            tail_between("", at("2026-12-06T03:00:01Z"), at("2026-12-06T03:00:03Z")),
            ""
        );
    }

    #[test]
    fn a_long_tail_keeps_its_last_whole_lines() {
        let log: String = (0..1000)
            .map(|n| format!("2026-12-06T03:00:01Z line {n}\n"))
            .collect();
        let tail = tail_between(&log, at("2026-12-06T03:00:00Z"), at("2026-12-06T03:00:05Z"));
        assert!(tail.len() <= contract::MAX_LOG_TAIL_BYTES, "{}", tail.len());
        assert!(tail.starts_with("line "), "{tail}");
        assert!(tail.ends_with("line 999\n"), "{tail}");
    }
}
