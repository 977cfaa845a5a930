//! Who sets a container function's `replicas`, decided in one place so the controller and the
//! gateway can never both think they do.
//!
//! Two writers fighting over `spec.replicas` of a Deployment make it flap: the controller's
//! server-side apply would put back `scale.min` while the gateway scales from zero, and KEDA's
//! HorizontalPodAutoscaler would undo both. So exactly one of them owns the field per
//! function, and the others leave it out of what they write:
//!
//! - functions with SQS triggers scale on queue depth: KEDA when it is installed, else the
//!   controller keeps `scale.min` replicas;
//! - functions with `scale.min: 0` and no SQS trigger scale on requests, which only the
//!   gateway sees: it asks for a replica when a request arrives and takes it back after
//!   `scale.idleAfter` without traffic;
//! - everything else keeps `scale.min` replicas, set by the controller.

use std::time::Duration;

use crate::FunctionSpec;

/// `scale.idleAfter` when the spec does not say.
pub const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(600);
/// Shortest `scale.idleAfter`: below this, ordinary gaps between requests would stop
/// replicas and every few requests would pay a cold start.
pub const MIN_IDLE_AFTER: Duration = Duration::from_secs(30);

/// Who writes a function Deployment's `spec.replicas`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicasOwner {
    /// The controller, to `scale.min` (also every WASM function's pool).
    Controller,
    /// The gateway: zero until a request arrives, back to zero after `scale.idleAfter`.
    Gateway,
    /// KEDA's HorizontalPodAutoscaler, from the depth of the function's queues.
    Keda,
}

impl FunctionSpec {
    /// Who owns `replicas` of this function's Deployment, given whether KEDA is installed.
    pub fn replicas_owner(&self, keda_installed: bool) -> ReplicasOwner {
        let Some(container) = &self.runtime.container else {
            return ReplicasOwner::Controller;
        };
        if container.mode == crate::ContainerMode::Cgi {
            return ReplicasOwner::Controller;
        }
        let queues = self
            .triggers
            .as_ref()
            .is_some_and(|t| t.sqs.iter().any(|q| q.enabled != Some(false)));
        let min = self.scale.as_ref().map_or(0, |s| s.min);
        match (queues, keda_installed, min) {
            (true, true, _) => ReplicasOwner::Keda,
            (true, false, _) => ReplicasOwner::Controller,
            (false, _, 0) => ReplicasOwner::Gateway,
            (false, _, _) => ReplicasOwner::Controller,
        }
    }

    /// `scale.idleAfter` as a duration (the default when unset or invalid; validation
    /// reports invalid values).
    pub fn idle_after(&self) -> Duration {
        self.scale
            .as_ref()
            .and_then(|s| s.idle_after.as_deref())
            .and_then(|d| crate::limits::parse_duration(d).ok())
            .map_or(DEFAULT_IDLE_AFTER, |d| d.max(MIN_IDLE_AFTER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ContainerMode, ContainerRuntime, RuntimeSpec, ScaleSpec, SqsTrigger, TriggersSpec,
        WasmRuntime,
    };

    fn container(mode: ContainerMode, min: u32, queues: Vec<SqsTrigger>) -> FunctionSpec {
        FunctionSpec {
            runtime: RuntimeSpec {
                container: Some(ContainerRuntime {
                    image: Some("registry.example.com/f:1".into()),
                    port: Some(8080),
                    mode,
                    ..ContainerRuntime::default()
                }),
                ..RuntimeSpec::default()
            },
            scale: Some(ScaleSpec {
                min,
                ..ScaleSpec::default()
            }),
            triggers: (!queues.is_empty()).then_some(TriggersSpec { sqs: queues }),
            ..FunctionSpec::default()
        }
    }

    fn queue(enabled: Option<bool>) -> SqsTrigger {
        SqsTrigger {
            queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/q".into(),
            enabled,
            ..SqsTrigger::default()
        }
    }

    #[test]
    fn exactly_one_owner_per_function() {
        use ReplicasOwner::*;
        let http = ContainerMode::Http;
        assert_eq!(container(http, 0, vec![]).replicas_owner(true), Gateway);
        assert_eq!(container(http, 0, vec![]).replicas_owner(false), Gateway);
        assert_eq!(
            container(ContainerMode::Lambda, 0, vec![]).replicas_owner(false),
            Gateway
        );
        assert_eq!(container(http, 2, vec![]).replicas_owner(true), Controller);
        assert_eq!(
            container(http, 0, vec![queue(None)]).replicas_owner(true),
            Keda
        );
        assert_eq!(
            container(http, 0, vec![queue(None)]).replicas_owner(false),
            Controller
        );
        // A disabled queue scales nothing: requests do.
        assert_eq!(
            container(http, 0, vec![queue(Some(false))]).replicas_owner(true),
            Gateway
        );
        assert_eq!(
            container(ContainerMode::Cgi, 0, vec![]).replicas_owner(true),
            Controller
        );
        let wasm = FunctionSpec {
            runtime: RuntimeSpec {
                wasm: Some(WasmRuntime::default()),
                ..RuntimeSpec::default()
            },
            ..FunctionSpec::default()
        };
        assert_eq!(wasm.replicas_owner(true), Controller);
    }

    #[test]
    fn idle_after_defaults_and_floor() {
        let mut spec = container(ContainerMode::Http, 0, vec![]);
        assert_eq!(spec.idle_after(), DEFAULT_IDLE_AFTER);
        spec.scale = Some(ScaleSpec {
            idle_after: Some("90s".into()),
            ..ScaleSpec::default()
        });
        assert_eq!(spec.idle_after(), Duration::from_secs(90));
        spec.scale = Some(ScaleSpec {
            idle_after: Some("1s".into()),
            ..ScaleSpec::default()
        });
        assert_eq!(spec.idle_after(), MIN_IDLE_AFTER);
    }
}
