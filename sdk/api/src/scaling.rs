//! Who sets a container function's `replicas`, and the fewest it may have, decided in one
//! place so the controller, KEDA and the gateway can never both think they do, and no event
//! source finds a function at a count that cannot serve it.
//!
//! Two writers fighting over `spec.replicas` of a Deployment make it flap: the controller's
//! server-side apply would put back `scale.min` while the gateway scales from zero, and KEDA's
//! HorizontalPodAutoscaler would undo both. So exactly one of them owns the field per
//! function, and the others leave it out of what they write:
//!
//! - functions with SQS triggers scale on queue depth: KEDA when it is installed (it wakes
//!   the function from zero on the first message), else the controller keeps at least one
//!   replica, because the poller runs in the function's pod (the runtime sidecar) and nothing
//!   else would ever start one;
//! - functions with `scale.min: 0` and no SQS trigger scale on requests, which only the
//!   gateway sees: it asks for a replica when a request arrives and takes it back after
//!   `scale.idleAfter` without traffic. Schedules are requests too: the controller's cron
//!   calls functions through the gateway's admin listener, so a schedule-only function sits
//!   at zero between fires and its schedule wakes it;
//! - everything else keeps [`FunctionSpec::min_replicas`], set by the controller.

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
        // Neither has a Deployment: a process per request (local only), a Job per run.
        if matches!(
            container.mode,
            crate::ContainerMode::Cgi | crate::ContainerMode::Job
        ) {
            return ReplicasOwner::Controller;
        }
        match (self.polls_queues(), keda_installed) {
            (true, true) => ReplicasOwner::Keda,
            (true, false) => ReplicasOwner::Controller,
            (false, _) if self.min_replicas(keda_installed) == 0 => ReplicasOwner::Gateway,
            (false, _) => ReplicasOwner::Controller,
        }
    }

    /// The fewest replicas the function may sit at: `scale.min`, raised to one when
    /// something needs a replica up and nothing would start one:
    ///
    /// - an enabled SQS trigger without KEDA: its poller is the runtime sidecar in the
    ///   function's pod (with KEDA, the first message wakes the function from zero);
    /// - a schedule that is not suspended, on a function KEDA scales: cron goes through the
    ///   gateway, whose scale-from-zero hold wakes only the functions whose replicas it owns,
    ///   so a fire would wait for a message that may never come.
    ///
    /// A schedule on a function the gateway scales needs nothing: the fire is a request.
    /// What the controller writes when it owns `replicas`, and KEDA's `minReplicaCount`.
    pub fn min_replicas(&self, keda_installed: bool) -> u32 {
        let min = self.scale.as_ref().map_or(0, |s| s.min);
        let queue_needs_one = self.polls_queues() && (!keda_installed || self.fires_schedules());
        if queue_needs_one { min.max(1) } else { min }
    }

    /// Whether an enabled SQS trigger needs a poller.
    fn polls_queues(&self) -> bool {
        self.triggers
            .as_ref()
            .is_some_and(|t| t.sqs.iter().any(|q| q.enabled != Some(false)))
    }

    /// Whether a schedule may fire (one that is not suspended).
    fn fires_schedules(&self) -> bool {
        self.schedules.iter().any(|s| !s.suspend)
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

    fn scheduled(mut spec: FunctionSpec, suspend: bool) -> FunctionSpec {
        spec.schedules = vec![crate::Schedule {
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            suspend,
            ..crate::Schedule::default()
        }];
        spec
    }

    #[test]
    fn a_queue_without_keda_always_has_a_poller() {
        let http = ContainerMode::Http;
        let spec = container(http, 0, vec![queue(None)]);
        assert_eq!(spec.replicas_owner(false), ReplicasOwner::Controller);
        assert_eq!(spec.min_replicas(false), 1, "the sidecar in the pod polls");
        // KEDA wakes it from zero on the first message.
        assert_eq!(spec.replicas_owner(true), ReplicasOwner::Keda);
        assert_eq!(spec.min_replicas(true), 0);
        // More than one asked for: kept.
        assert_eq!(container(http, 3, vec![queue(None)]).min_replicas(false), 3);
        // A disabled queue needs no poller.
        assert_eq!(
            container(http, 0, vec![queue(Some(false))]).min_replicas(false),
            0
        );
    }

    #[test]
    fn a_schedule_wakes_what_the_gateway_scales_and_keeps_a_replica_of_what_keda_does() {
        use ReplicasOwner::*;
        let http = ContainerMode::Http;
        // Schedule-only: at zero between fires; the fire goes through the gateway's hold.
        let spec = scheduled(container(http, 0, vec![]), false);
        assert_eq!(spec.replicas_owner(false), Gateway);
        assert_eq!(spec.replicas_owner(true), Gateway);
        assert_eq!(spec.min_replicas(false), 0);
        // Lambda handlers alike (their sidecar turns the call into a scheduled event).
        let lambda = scheduled(container(ContainerMode::Lambda, 0, vec![]), false);
        assert_eq!(lambda.replicas_owner(false), Gateway);
        assert_eq!(lambda.min_replicas(false), 0);
        // With a queue and KEDA, KEDA owns replicas, which the gateway cannot raise: one stays.
        let both = scheduled(container(http, 0, vec![queue(None)]), false);
        assert_eq!(both.replicas_owner(true), Keda);
        assert_eq!(both.min_replicas(true), 1);
        // Its schedule suspended: the queue wakes it.
        let suspended = scheduled(container(http, 0, vec![queue(None)]), true);
        assert_eq!(suspended.min_replicas(true), 0);
        // Without KEDA the poller keeps one anyway.
        assert_eq!(both.replicas_owner(false), Controller);
        assert_eq!(both.min_replicas(false), 1);
        // More asked for: kept.
        assert_eq!(
            scheduled(container(http, 2, vec![]), false).min_replicas(false),
            2
        );
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
