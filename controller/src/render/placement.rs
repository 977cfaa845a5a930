//! Where function pods run: the functions node group (its taints tolerated, its labels
//! required), the capacity type (`spot` by default: required; `on-demand`: required;
//! `any`: spot preferred), an optional node group override, and zone spreading so that one
//! spot reclaim or zone outage takes only part of a function.

use faas_api::{Capacity, Function};
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PreferredSchedulingTerm, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{ClusterDefaults, selector};

/// The node label EKS managed node groups set for the capacity type.
pub const CAPACITY_TYPE_LABEL: &str = "eks.amazonaws.com/capacityType";
/// The node label naming an EKS managed node group.
pub const NODE_GROUP_LABEL: &str = "eks.amazonaws.com/nodegroup";
/// The zone label.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The scheduling constraints of a function's pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    pub tolerations: Vec<Toleration>,
    pub affinity: Affinity,
    pub topology_spread: Vec<TopologySpreadConstraint>,
}

fn requirement(key: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: "In".to_owned(),
        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

/// The placement of `function`'s pods under `defaults`.
pub fn placement(function: &Function, defaults: &ClusterDefaults) -> Placement {
    let spec = function.spec.placement.clone().unwrap_or_default();
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let mut required: Vec<NodeSelectorRequirement> = defaults
        .function_node_labels
        .iter()
        .map(|(k, v)| requirement(k, &[v]))
        .collect();
    if let Some(group) = &spec.node_group {
        required.push(requirement(NODE_GROUP_LABEL, &[group]));
    }
    required.extend(spec.node_selector.iter().map(|(k, v)| requirement(k, &[v])));
    let mut preferred = Vec::new();
    match spec.capacity {
        Capacity::Spot => required.push(requirement(CAPACITY_TYPE_LABEL, &["SPOT"])),
        Capacity::OnDemand => required.push(requirement(CAPACITY_TYPE_LABEL, &["ON_DEMAND"])),
        Capacity::Any => preferred.push(PreferredSchedulingTerm {
            weight: 100,
            preference: NodeSelectorTerm {
                match_expressions: Some(vec![requirement(CAPACITY_TYPE_LABEL, &["SPOT"])]),
                ..NodeSelectorTerm::default()
            },
        }),
    }
    let node_affinity = NodeAffinity {
        required_during_scheduling_ignored_during_execution: (!required.is_empty()).then(|| {
            NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(required),
                    ..NodeSelectorTerm::default()
                }],
            }
        }),
        preferred_during_scheduling_ignored_during_execution: (!preferred.is_empty())
            .then_some(preferred),
    };
    let mut tolerations = defaults.function_tolerations.clone();
    // An empty key would tolerate every taint: validation refuses it, and it is never
    // rendered even if a Function got past validation.
    tolerations.extend(
        spec.tolerations
            .iter()
            .filter(|t| !t.key.is_empty())
            .map(|t| Toleration {
                key: Some(t.key.clone()),
                operator: t.operator.clone(),
                value: t.value.clone(),
                effect: t.effect.clone(),
                toleration_seconds: None,
            }),
    );
    Placement {
        tolerations,
        affinity: Affinity {
            node_affinity: Some(node_affinity),
            ..Affinity::default()
        },
        // Spread, but never refuse to schedule: a function with 2 replicas in a cluster that
        // has spot capacity in one zone only must still run.
        topology_spread: vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: ZONE_LABEL.to_owned(),
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
            label_selector: Some(LabelSelector {
                match_labels: Some(selector(name)),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::PlacementSpec;

    fn function(capacity: Capacity, group: Option<&str>) -> Function {
        let mut f = Function::new("resize", faas_api::FunctionSpec::default());
        f.spec.placement = Some(PlacementSpec {
            capacity,
            node_group: group.map(str::to_owned),
            ..PlacementSpec::default()
        });
        f
    }

    fn defaults() -> ClusterDefaults {
        ClusterDefaults {
            function_tolerations: vec![Toleration {
                key: Some("faas.dev/functions".into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            }],
            function_node_labels: [("node-group".to_owned(), "functions".to_owned())]
                .into_iter()
                .collect(),
            ..ClusterDefaults::default()
        }
    }

    fn required(p: &Placement) -> Vec<(String, Vec<String>)> {
        p.affinity
            .node_affinity
            .as_ref()
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| {
                s.node_selector_terms[0]
                    .match_expressions
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| (r.key, r.values.unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn spot_is_required_by_default_on_the_functions_node_group() {
        let p = placement(&function(Capacity::Spot, None), &defaults());
        assert_eq!(
            required(&p),
            vec![
                ("node-group".to_owned(), vec!["functions".to_owned()]),
                (CAPACITY_TYPE_LABEL.to_owned(), vec!["SPOT".to_owned()]),
            ]
        );
        assert_eq!(p.tolerations, defaults().function_tolerations);
        let spread = &p.topology_spread[0];
        assert_eq!(
            (
                spread.topology_key.as_str(),
                spread.when_unsatisfiable.as_str(),
                spread.max_skew
            ),
            (ZONE_LABEL, "ScheduleAnyway", 1)
        );
    }

    #[test]
    fn on_demand_is_required_and_any_prefers_spot() {
        let p = placement(&function(Capacity::OnDemand, Some("batch")), &defaults());
        assert!(
            required(&p).contains(&(CAPACITY_TYPE_LABEL.to_owned(), vec!["ON_DEMAND".to_owned()]))
        );
        assert!(required(&p).contains(&(NODE_GROUP_LABEL.to_owned(), vec!["batch".to_owned()])));

        let p = placement(&function(Capacity::Any, None), &defaults());
        assert!(!required(&p).iter().any(|(k, _)| k == CAPACITY_TYPE_LABEL));
        let preferred = p
            .affinity
            .node_affinity
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution)
            .expect("a preference");
        assert_eq!(preferred[0].weight, 100);
        let term = preferred[0]
            .preference
            .match_expressions
            .clone()
            .unwrap_or_default();
        assert_eq!(term[0].key, CAPACITY_TYPE_LABEL);
        assert_eq!(term[0].values, Some(vec!["SPOT".to_owned()]));
    }

    #[test]
    fn per_function_tolerations_and_node_labels_add_to_the_defaults() {
        let mut f = function(Capacity::Spot, None);
        if let Some(p) = f.spec.placement.as_mut() {
            p.tolerations = vec![faas_api::TolerationSpec {
                key: "gpu".into(),
                operator: Some("Equal".into()),
                value: Some("a10".into()),
                effect: Some("NoSchedule".into()),
            }];
            p.node_selector = [("disk".to_owned(), "nvme".to_owned())].into();
        }
        let p = placement(&f, &defaults());
        assert_eq!(p.tolerations.len(), 2);
        assert_eq!(p.tolerations[0], defaults().function_tolerations[0]);
        assert_eq!(p.tolerations[1].key.as_deref(), Some("gpu"));
        assert_eq!(p.tolerations[1].value.as_deref(), Some("a10"));
        let required = required(&p);
        assert!(required.contains(&("node-group".to_owned(), vec!["functions".to_owned()])));
        assert!(required.contains(&("disk".to_owned(), vec!["nvme".to_owned()])));
        assert!(required.contains(&(CAPACITY_TYPE_LABEL.to_owned(), vec!["SPOT".to_owned()])));
    }

    #[test]
    fn the_functions_node_group_is_always_required_and_no_wildcard_is_rendered() {
        let mut f = function(Capacity::Spot, Some("batch"));
        if let Some(p) = f.spec.placement.as_mut() {
            p.tolerations = vec![faas_api::TolerationSpec {
                key: String::new(),
                operator: Some("Exists".into()),
                value: None,
                effect: None,
            }];
            p.node_selector = [("node-group".to_owned(), "system".to_owned())].into();
        }
        let p = placement(&f, &defaults());
        assert_eq!(p.tolerations, defaults().function_tolerations);
        let required = required(&p);
        // Both terms must hold: asking for another node group's label only makes the pod
        // unschedulable, never moves it off the functions nodes.
        assert!(required.contains(&("node-group".to_owned(), vec!["functions".to_owned()])));
        assert!(required.contains(&(NODE_GROUP_LABEL.to_owned(), vec!["batch".to_owned()])));
    }

    #[test]
    fn no_defaults_and_any_capacity_leave_no_required_terms() {
        let p = placement(&function(Capacity::Any, None), &ClusterDefaults::default());
        assert!(
            p.affinity
                .node_affinity
                .and_then(|a| a.required_during_scheduling_ignored_during_execution)
                .is_none()
        );
    }
}
