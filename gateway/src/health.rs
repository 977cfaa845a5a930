//! What state a function is in, as users see it: `Ready`, `Degraded` (it serves, but
//! something is wrong that its owner must hear about: a failed update while the old version
//! serves, an SQS trigger in `Error`, a server process that keeps restarting) or `NotReady`
//! (it cannot serve now), each with the reasons. A failed rebuild under `faas up` degrades
//! like a failed update. The one rule behind `/system/functions`
//! (and so `faas list` and `faas describe`), the `faas up` banner and the dashboard, so no
//! place shows green while another shows why it is not.

use faas_sqs::{TriggerState, TriggerStatus};
use serde::Serialize;

use crate::registry::Entry;

/// A function's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum State {
    /// Serving, nothing wrong known.
    Ready,
    /// Serving, with problems (the reasons say which).
    Degraded,
    /// Cannot serve now (the reasons say why).
    NotReady,
}

impl State {
    /// As shown in tables and the banner.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "Ready",
            State::Degraded => "Degraded",
            State::NotReady => "NotReady",
        }
    }
}

/// One reason for a state other than `Ready`: a stable code and the sentence a user reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// `NotLoaded`, `NotServing`, `UpdateFailed`, `BuildFailed`, `TriggerError`,
    /// `Restarting`, `IdentityUnavailable`.
    pub reason: &'static str,
    pub message: String,
}

/// The state of one function and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    pub state: State,
    /// Empty when `Ready`.
    pub reasons: Vec<Reason>,
}

impl Health {
    /// The reasons as one line (banner, tables).
    pub fn summary(&self) -> String {
        self.reasons
            .iter()
            .map(|r| r.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The health of `entry`, whose SQS triggers report `triggers` and whose last build under
/// `faas up` failed for `build_failure`, if it did.
pub fn of(entry: &Entry, triggers: &[TriggerStatus], build_failure: Option<&str>) -> Health {
    let mut not_ready = Vec::new();
    let mut degraded = Vec::new();
    match &entry.state {
        Err(reason) => {
            not_ready.push(Reason {
                reason: "NotLoaded",
                message: reason.clone(),
            });
            if let Some(why) = build_failure {
                not_ready.push(Reason {
                    reason: "BuildFailed",
                    message: format!("the build failed: {why}"),
                });
            }
        }
        Ok(loaded) => {
            if let Err(reason) = loaded.invoker.readiness() {
                not_ready.push(Reason {
                    reason: "NotServing",
                    message: reason,
                });
            }
            if let Some(error) = &entry.last_error {
                degraded.push(Reason {
                    reason: "UpdateFailed",
                    message: format!(
                        "the previous version serves; the last update failed: {error}"
                    ),
                });
            }
            if let Some(why) = build_failure {
                degraded.push(Reason {
                    reason: "BuildFailed",
                    message: format!("the previous version serves; the last build failed: {why}"),
                });
            }
            if let Some(why) = loaded.invoker.degraded() {
                degraded.push(Reason {
                    reason: why.reason,
                    message: why.message,
                });
            }
        }
    }
    for trigger in triggers {
        let reason = match trigger.state {
            TriggerState::Error => "TriggerError",
            TriggerState::NoCredentials => "TriggerNoCredentials",
            _ => continue,
        };
        degraded.push(Reason {
            reason,
            message: format!(
                "SQS trigger {}: {}",
                trigger.queue_url,
                trigger.message.as_deref().unwrap_or("source error")
            ),
        });
    }
    if !not_ready.is_empty() {
        not_ready.extend(degraded);
        return Health {
            state: State::NotReady,
            reasons: not_ready,
        };
    }
    Health {
        state: if degraded.is_empty() {
            State::Ready
        } else {
            State::Degraded
        },
        reasons: degraded,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use faas_runtime::{CallContext, InvokeError, Invoker, ResponseBody};

    use super::*;
    use crate::admission::Admission;
    use crate::registry::{Loaded, Origin};

    /// An executor whose readiness and health are set by the test.
    struct Fake {
        ready: Result<(), String>,
        degraded: Option<String>,
    }

    impl Invoker for Fake {
        fn invoke(
            &self,
            _: CallContext,
            _: http::Request<bytes::Bytes>,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = Result<http::Response<ResponseBody>, InvokeError>>
                    + Send
                    + '_,
            >,
        > {
            Box::pin(async { Err(InvokeError::Unavailable("fake".into())) })
        }
        fn readiness(&self) -> Result<(), String> {
            self.ready.clone()
        }
        fn degraded(&self) -> Option<faas_invoke::Degradation> {
            self.degraded
                .clone()
                .map(faas_invoke::Degradation::restarting)
        }
    }

    fn entry(state: Result<Fake, &str>, last_error: Option<&str>) -> Entry {
        let function: faas_api::Function = serde_yaml::from_str(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: f}\nspec:\n  runtime: {wasm: {source: f.wasm}}\n",
        )
        .unwrap();
        Entry {
            key: "f".to_owned(),
            function,
            limits: faas_api::Limits::default(),
            origin: Origin::Api,
            state: state
                .map(|fake| {
                    Arc::new(Loaded {
                        invoker: Arc::new(fake),
                        sha256: String::new(),
                        kind: "component",
                    })
                })
                .map_err(str::to_owned),
            last_error: last_error.map(str::to_owned),
            admission: Arc::new(Admission::new(1, 0, std::time::Duration::ZERO)),
            failure_log: Arc::default(),
            updated: std::time::SystemTime::now(),
        }
    }

    fn fine() -> Fake {
        Fake {
            ready: Ok(()),
            degraded: None,
        }
    }

    fn trigger(state: TriggerState) -> TriggerStatus {
        TriggerStatus::new("http://127.0.0.1:1/1/q", state, 1).because("no AWS credentials")
    }

    #[test]
    fn ready_when_nothing_is_wrong() {
        let health = of(
            &entry(Ok(fine()), None),
            &[trigger(TriggerState::Polling)],
            None,
        );
        assert_eq!(health.state, State::Ready);
        assert!(health.reasons.is_empty());
    }

    #[test]
    fn a_failed_update_an_sqs_error_or_restarts_degrade_a_serving_function() {
        let health = of(&entry(Ok(fine()), Some("build failed: E0308")), &[], None);
        assert_eq!(health.state, State::Degraded);
        assert_eq!(health.reasons[0].reason, "UpdateFailed");
        assert!(health.summary().contains("build failed: E0308"));

        let health = of(
            &entry(Ok(fine()), None),
            &[trigger(TriggerState::Error)],
            None,
        );
        assert_eq!(health.state, State::Degraded);
        assert_eq!(health.reasons[0].reason, "TriggerError");
        assert!(
            health.summary().contains("no AWS credentials"),
            "{health:?}"
        );

        let restarting = Fake {
            ready: Ok(()),
            degraded: Some("restarted 3 times".into()),
        };
        let health = of(&entry(Ok(restarting), None), &[], None);
        assert_eq!(health.state, State::Degraded);
        assert_eq!(health.reasons[0].reason, "Restarting");
    }

    #[test]
    fn a_failed_build_degrades_a_serving_function_and_explains_a_missing_one() {
        let failure = Some("error[E0308]: mismatched types --> src/main.rs:3:5");
        let health = of(&entry(Ok(fine()), None), &[], failure);
        assert_eq!(health.state, State::Degraded);
        assert_eq!(health.reasons[0].reason, "BuildFailed");
        assert!(
            health.summary().contains("previous version serves"),
            "{health:?}"
        );
        assert!(health.summary().contains("src/main.rs:3:5"), "{health:?}");

        let health = of(&entry(Err("artifact missing"), None), &[], failure);
        assert_eq!(health.state, State::NotReady);
        let codes: Vec<_> = health.reasons.iter().map(|r| r.reason).collect();
        assert_eq!(codes, ["NotLoaded", "BuildFailed"]);
    }

    #[test]
    fn not_ready_when_nothing_loaded_or_the_executor_cannot_serve() {
        let health = of(&entry(Err("artifact missing"), None), &[], None);
        assert_eq!(health.state, State::NotReady);
        assert_eq!(health.reasons[0].reason, "NotLoaded");

        let crashing = Fake {
            ready: Err("the process is restarting (attempt 4): exited with status 1".into()),
            degraded: Some("restarted 4 times".into()),
        };
        let health = of(
            &entry(Ok(crashing), None),
            &[trigger(TriggerState::Error)],
            None,
        );
        assert_eq!(health.state, State::NotReady);
        let codes: Vec<_> = health.reasons.iter().map(|r| r.reason).collect();
        assert_eq!(codes, ["NotServing", "Restarting", "TriggerError"]);
    }
}
