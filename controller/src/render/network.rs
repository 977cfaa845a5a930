//! NetworkPolicies of function and pool pods: who may reach them, and where they may go.
//!
//! Ingress: only the platform's own pods (the gateway, which forwards every request, and the
//! controller), named by namespace and pod labels the chart passes. Nothing else in the
//! cluster, another team's pods included, can call a function pod around the gateway's
//! routing, limits and `public: false`. Kubelet probes are not subject to NetworkPolicy, and
//! no Prometheus scrapes these pods (their metrics are the gateway's), so nothing else needs
//! in.
//!
//! Egress: never the instance metadata ranges ([`METADATA_V4`], [`METADATA_V6`]: the node's
//! role, the ECS and Pod Identity credential endpoints). A container function with
//! `spec.network` gets exactly its `allowedOutboundHosts` as address and port rules
//! ([`faas_api::network::egress_rules_for_networkpolicy`], which refuses host names rather
//! than ignore them), plus DNS, plus HTTPS anywhere when its sidecar polls SQS (SQS and STS
//! have no fixed addresses). Without `spec.network` it goes anywhere but the metadata ranges.
//! Pool pods go anywhere but the metadata ranges: their guests' outbound traffic is checked by
//! the runtime, host names included, before any connection.
//!
//! NetworkPolicies add up: a pod selected by several policies may do what any of them allows.
//! Pods whose egress is restricted carry [`EGRESS_LABEL`] so the chart's namespace-wide
//! metadata policy (which allows everything else) leaves them out.

use std::collections::BTreeMap;

use faas_api::Function;
use faas_api::network::{
    EgressPeer, EgressPorts, METADATA_V4, METADATA_V6, egress_rules_for_networkpolicy,
};
use faas_api::validate::ValidationErrors;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pool::{POOL_LABEL, Pool};
use super::{labels, object_name, selector};

/// On the pods of a function whose egress its own policy restricts (`spec.network` set).
pub const EGRESS_LABEL: &str = "faas.dev/egress";

/// What the chart tells the controller about the platform's own pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkDefaults {
    /// The namespace of the gateway and the controller.
    pub platform_namespace: String,
    /// Pod labels of each platform component that may reach function and pool pods.
    pub ingress_from: Vec<BTreeMap<String, String>>,
}

/// Whether the function's pods have restricted egress (and so [`EGRESS_LABEL`]).
pub fn egress_restricted(function: &Function) -> bool {
    function.spec.runtime.container.is_some() && function.spec.network.is_some()
}

fn anywhere_but_metadata() -> Vec<NetworkPolicyPeer> {
    [("0.0.0.0/0", METADATA_V4), ("::/0", METADATA_V6)]
        .into_iter()
        .map(|(cidr, except)| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.to_owned(),
                except: Some(vec![except.to_owned()]),
            }),
            ..NetworkPolicyPeer::default()
        })
        .collect()
}

fn port(protocol: &str, port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: Some(IntOrString::Int(i32::from(port))),
        ..NetworkPolicyPort::default()
    }
}

fn ingress(defaults: &NetworkDefaults) -> Vec<NetworkPolicyIngressRule> {
    let from: Vec<NetworkPolicyPeer> = defaults
        .ingress_from
        .iter()
        .map(|labels| NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    defaults.platform_namespace.clone(),
                )])),
                ..LabelSelector::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        })
        .collect();
    // No peers at all would be an empty rule list: deny every ingress, which is still safe.
    if from.is_empty() {
        return Vec::new();
    }
    vec![NetworkPolicyIngressRule {
        from: Some(from),
        ports: None,
    }]
}

fn policy(
    name: String,
    namespace: Option<String>,
    object_labels: BTreeMap<String, String>,
    pods: BTreeMap<String, String>,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name),
            namespace,
            labels: Some(object_labels),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(pods),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    }
}

/// The policy of a container function's pods (`fn-<name>`, owned by the Function), or why its
/// `allowedOutboundHosts` cannot be one.
pub fn function_policy(
    function: &Function,
    defaults: &NetworkDefaults,
) -> Result<NetworkPolicy, ValidationErrors> {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let egress = match &function.spec.network {
        None => vec![NetworkPolicyEgressRule {
            to: Some(anywhere_but_metadata()),
            ports: None,
        }],
        Some(network) => {
            let mut egress = Vec::new();
            for rule in egress_rules_for_networkpolicy(&network.allowed_outbound_hosts)? {
                let to = match rule.to {
                    EgressPeer::Anywhere => anywhere_but_metadata(),
                    EgressPeer::Address(ip) => vec![NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }),
                            except: None,
                        }),
                        ..NetworkPolicyPeer::default()
                    }],
                };
                let ports = match rule.ports {
                    EgressPorts::Any => None,
                    EgressPorts::Tcp(ports) => {
                        Some(ports.into_iter().map(|p| port("TCP", p)).collect())
                    }
                };
                egress.push(NetworkPolicyEgressRule {
                    to: Some(to),
                    ports,
                });
            }
            // Name resolution (an address-only list still runs code that resolves names).
            egress.push(NetworkPolicyEgressRule {
                to: Some(anywhere_but_metadata()),
                ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
            });
            let sqs = function
                .spec
                .triggers
                .as_ref()
                .is_some_and(|t| !t.sqs.is_empty());
            if sqs {
                // The sidecar's pollers call SQS and STS (IRSA), whose addresses are not
                // fixed: HTTPS anywhere, which the function's own container shares.
                egress.push(NetworkPolicyEgressRule {
                    to: Some(anywhere_but_metadata()),
                    ports: Some(vec![port("TCP", 443)]),
                });
            }
            egress
        }
    };
    Ok(policy(
        object_name(name),
        function.metadata.namespace.clone(),
        labels(name),
        selector(name),
        ingress(defaults),
        egress,
    ))
}

/// The policy of a pool's pods (`pool-<name>`, shared like the pool's other objects).
pub fn pool_policy(pool: &Pool, namespace: &str, defaults: &NetworkDefaults) -> NetworkPolicy {
    policy(
        pool.object_name(),
        Some(namespace.to_owned()),
        super::pool::pool_labels(pool),
        BTreeMap::from([
            (POOL_LABEL.to_owned(), pool.name.clone()),
            (
                faas_api::contract::COMPONENT_LABEL.to_owned(),
                faas_api::contract::POOL_COMPONENT.to_owned(),
            ),
        ]),
        ingress(defaults),
        vec![NetworkPolicyEgressRule {
            to: Some(anywhere_but_metadata()),
            ports: None,
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::pool::{pool_objects, pool_of};
    use crate::render::workload::workload;
    use crate::render::{ClusterDefaults, IMDS_DISABLED_ENV};
    use faas_api::{
        ContainerMode, ContainerRuntime, FunctionSpec, NetworkSpec, RuntimeSpec, SqsTrigger,
        TriggersSpec, WasmRuntime,
    };
    use k8s_openapi::api::core::v1::Container;

    fn defaults() -> NetworkDefaults {
        NetworkDefaults {
            platform_namespace: "faas-system".into(),
            ingress_from: vec![
                BTreeMap::from([("app.kubernetes.io/name".into(), "faas-gateway".into())]),
                BTreeMap::from([("app.kubernetes.io/name".into(), "faas-controller".into())]),
            ],
        }
    }

    fn container(network: Option<&[&str]>) -> Function {
        let mut f = Function::new(
            "orders",
            FunctionSpec {
                runtime: RuntimeSpec {
                    container: Some(ContainerRuntime {
                        image: Some("registry.example.com/orders:1".into()),
                        port: Some(8000),
                        mode: ContainerMode::Http,
                        ..ContainerRuntime::default()
                    }),
                    ..RuntimeSpec::default()
                },
                network: network.map(|hosts| NetworkSpec {
                    allowed_outbound_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
                }),
                ..FunctionSpec::default()
            },
        );
        f.metadata.namespace = Some("shop".into());
        f
    }

    fn json(policy: &NetworkPolicy) -> serde_json::Value {
        serde_json::to_value(policy).expect("serializes")
    }

    #[test]
    fn function_pods_let_in_only_the_gateway_and_the_controller() {
        let policy = json(&function_policy(&container(None), &defaults()).expect("renders"));
        assert_eq!(policy["metadata"]["name"], "fn-orders");
        assert_eq!(policy["metadata"]["namespace"], "shop");
        assert_eq!(
            policy["spec"]["podSelector"],
            serde_json::json!({"matchLabels": {"faas.dev/function": "orders"}})
        );
        assert_eq!(
            policy["spec"]["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
        let system =
            serde_json::json!({"matchLabels": {"kubernetes.io/metadata.name": "faas-system"}});
        assert_eq!(
            policy["spec"]["ingress"],
            serde_json::json!([{"from": [
                {"namespaceSelector": system, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "faas-gateway"}}},
                {"namespaceSelector": system, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "faas-controller"}}},
            ]}])
        );
        // Without spec.network: anywhere but instance metadata.
        assert_eq!(
            policy["spec"]["egress"],
            serde_json::json!([{"to": [
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},
                {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::/32"]}},
            ]}])
        );
    }

    #[test]
    fn allowed_outbound_hosts_become_the_only_egress_besides_dns() {
        let f = container(Some(&["https://203.0.113.7", "*://[2001:db8::1]:5432"]));
        let policy = json(&function_policy(&f, &defaults()).expect("renders"));
        let anywhere = serde_json::json!([
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},
            {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::/32"]}},
        ]);
        assert_eq!(
            policy["spec"]["egress"],
            serde_json::json!([
                {"to": [{"ipBlock": {"cidr": "203.0.113.7/32"}}],
                 "ports": [{"protocol": "TCP", "port": 443}]},
                {"to": [{"ipBlock": {"cidr": "2001:db8::1/128"}}],
                 "ports": [{"protocol": "TCP", "port": 5432}]},
                {"to": anywhere, "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            ])
        );
        // The namespace-wide chart policy (egress anywhere) must leave these pods out.
        let w = workload(&f, &ClusterDefaults::default()).expect("workload");
        let pod_labels = w
            .deployment
            .spec
            .template
            .metadata
            .and_then(|m| m.labels)
            .unwrap_or_default();
        assert_eq!(
            pod_labels.get(EGRESS_LABEL).map(String::as_str),
            Some("restricted")
        );
        let open = workload(&container(None), &ClusterDefaults::default()).expect("workload");
        let open_labels = open
            .deployment
            .spec
            .template
            .metadata
            .and_then(|m| m.labels)
            .unwrap_or_default();
        assert!(!open_labels.contains_key(EGRESS_LABEL));
    }

    #[test]
    fn a_function_with_an_sqs_sidecar_also_gets_https_anywhere() {
        let mut f = container(Some(&["https://203.0.113.7"]));
        f.spec.triggers = Some(TriggersSpec {
            sqs: vec![SqsTrigger {
                queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/orders".into(),
                ..SqsTrigger::default()
            }],
        });
        let policy = json(&function_policy(&f, &defaults()).expect("renders"));
        let last = &policy["spec"]["egress"][2];
        assert_eq!(
            last["ports"],
            serde_json::json!([{"protocol": "TCP", "port": 443}])
        );
        assert_eq!(
            last["to"][0]["ipBlock"]["except"],
            serde_json::json!(["169.254.0.0/16"])
        );
    }

    #[test]
    fn host_names_are_refused_for_container_functions_not_ignored() {
        let f = container(Some(&["https://203.0.113.7", "https://api.example.com"]));
        let errs = function_policy(&f, &defaults()).expect_err("refused");
        assert_eq!(
            errs.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["spec.network.allowedOutboundHosts[1]"]
        );
        // The same rule is the cluster profile (status: NotAllowedInCluster, not runnable).
        let err = faas_api::validate_for_cluster(&f, None).expect_err("refused");
        assert!(
            err.to_string().starts_with(
                "spec.network.allowedOutboundHosts[1]: \"https://api.example.com\" names a host"
            ),
            "{err}"
        );
        // WASM functions' rules are the runtime's, names included.
        let mut wasm = f.clone();
        wasm.spec.runtime = RuntimeSpec {
            wasm: Some(WasmRuntime {
                source: "configmap://fn-a/a.wasm".into(),
                ..WasmRuntime::default()
            }),
            container: None,
        };
        assert!(faas_api::validate_for_cluster(&wasm, None).is_ok());
    }

    #[test]
    fn pool_pods_let_in_only_the_platform_and_never_reach_metadata() {
        let mut f = container(None);
        f.spec.runtime = RuntimeSpec {
            wasm: Some(WasmRuntime {
                source: "configmap://fn-a/a.wasm".into(),
                ..WasmRuntime::default()
            }),
            container: None,
        };
        let pool = pool_of(&f);
        let policy = json(&pool_policy(&pool, "shop", &defaults()));
        assert_eq!(policy["metadata"]["name"], "pool-default");
        // Selects exactly the pool's pods (their labels include the selector).
        let objects = pool_objects(&pool, 30, &ClusterDefaults::default());
        let pod_labels = objects
            .deployment
            .spec
            .template
            .metadata
            .and_then(|m| m.labels)
            .unwrap_or_default();
        let selector: BTreeMap<String, String> =
            serde_json::from_value(policy["spec"]["podSelector"]["matchLabels"].clone())
                .expect("labels");
        assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
        assert_eq!(
            policy["spec"]["ingress"][0]["from"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(
            policy["spec"]["egress"][0]["to"][0]["ipBlock"]["except"],
            serde_json::json!(["169.254.0.0/16"])
        );
        assert_eq!(
            policy["spec"]["egress"][0]["to"][1]["ipBlock"]["except"],
            serde_json::json!(["fd00:ec2::/32"])
        );
    }

    fn imds_values(c: &Container) -> Vec<Option<String>> {
        c.env
            .iter()
            .flatten()
            .filter(|e| e.name == IMDS_DISABLED_ENV)
            .map(|e| e.value.clone())
            .collect()
    }

    #[test]
    fn every_rendered_container_disables_instance_metadata_and_a_function_cannot_undo_it() {
        let mut f = container(None);
        f.spec.runtime.container.as_mut().expect("container").mode = ContainerMode::Lambda;
        f.spec.env.insert(IMDS_DISABLED_ENV, "false");
        f.spec.triggers = Some(TriggersSpec {
            sqs: vec![SqsTrigger {
                queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/orders".into(),
                ..SqsTrigger::default()
            }],
        });
        let w = workload(&f, &ClusterDefaults::default()).expect("workload");
        let pod = w.deployment.spec.template.spec.expect("pod");
        let containers: Vec<&Container> = pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
            .collect();
        assert_eq!(containers.len(), 2, "the function and its sidecar");
        for c in containers {
            assert_eq!(imds_values(c), [Some("true".to_owned())], "{}", c.name);
        }
        let sidecar = &pod.init_containers.as_ref().expect("sidecar")[0];
        let account = sidecar
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "POD_SERVICE_ACCOUNT")
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.field_ref.as_ref())
            .map(|r| r.field_path.clone());
        assert_eq!(account.as_deref(), Some("spec.serviceAccountName"));

        let mut wasm = container(None);
        wasm.spec.runtime = RuntimeSpec {
            wasm: Some(WasmRuntime {
                source: "configmap://fn-a/a.wasm".into(),
                ..WasmRuntime::default()
            }),
            container: None,
        };
        let objects = pool_objects(&pool_of(&wasm), 30, &ClusterDefaults::default());
        let pool_pod = objects.deployment.spec.template.spec.expect("pod");
        for c in pool_pod
            .containers
            .iter()
            .chain(pool_pod.init_containers.iter().flatten())
        {
            assert_eq!(imds_values(c), [Some("true".to_owned())], "{}", c.name);
        }
    }
}
