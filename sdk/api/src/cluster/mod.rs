//! The cluster profile of validation: what a Function may not do once it runs in a shared
//! cluster, on top of [`crate::validate`] (which local mode also runs).
//!
//! Two halves, one entry point, [`validate_for_cluster`]:
//!
//! - rules that need nothing but the Function (refused by the CLI before sending, by the
//!   controller, by pool pods before loading, and where CEL can say it by the CRD): no host
//!   directories (`spec.runtime.wasm.dirs`: in a pool pod they would be opened with the
//!   runtime's own authority: its service-account and IRSA tokens, `/proc`, the compile cache),
//!   OCI artifacts pinned by digest;
//! - rules that need what the platform team decided ([`ClusterPolicy`], from the chart): which
//!   IAM roles a namespace may use, which node groups, node labels and taints functions may
//!   ask for,
//!   and whether a WASM function fits its pool pod's memory.
//!
//! What the cluster's parts must agree on (object names, labels, headers, where a Function
//! is served) is [`contract`].

pub mod contract;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::artifact::ArtifactSource;
use crate::function::Function;
use crate::validate::{ValidationErrors, validate};

/// What the platform team allows in this cluster (the chart's values, given to the
/// controller as flags).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPolicy {
    /// Namespace (or `*` for every namespace) to the IAM role ARN patterns its Functions may
    /// name in `spec.iam.roleArn`. `*` in a pattern matches any run of characters (`/`
    /// included); `{namespace}` stands for the Function's namespace. Nothing listed: no role.
    #[serde(default)]
    pub allowed_role_arns: BTreeMap<String, Vec<String>>,
    /// Node groups `spec.placement.nodeGroup` may name. Empty: none.
    #[serde(default)]
    pub allowed_node_groups: Vec<String>,
    /// Node label keys `spec.placement.nodeSelector` may use. Empty: none.
    #[serde(default)]
    pub allowed_node_selector_keys: Vec<String>,
    /// Taint keys `spec.placement.tolerations` may tolerate (on top of the functions node
    /// group's own tolerations, which every function pod gets). Empty: none. Without this, a
    /// toleration of the system nodes' taint (`CriticalAddonsOnly`) would let function pods
    /// onto them.
    #[serde(default)]
    pub allowed_toleration_keys: Vec<String>,
    /// Memory limit of a runtime pool pod, in bytes: a WASM function's `memory x
    /// concurrency` must fit in it. `None`: not checked.
    #[serde(default)]
    pub pool_memory_bytes: Option<u64>,
    /// The longest `spec.timeout` allowed (chart value `controller.maxTimeout`). `None`:
    /// Lambda's 15 minutes.
    #[serde(default)]
    pub max_timeout: Option<std::time::Duration>,
}

impl ClusterPolicy {
    /// Whether `namespace` may use `arn`.
    pub fn allows_role(&self, namespace: &str, arn: &str) -> bool {
        [namespace, "*"]
            .iter()
            .filter_map(|key| self.allowed_role_arns.get(*key))
            .flatten()
            .any(|pattern| glob_match(&pattern.replace("{namespace}", namespace), arn))
    }
}

/// `*` matches any run of characters (possibly empty); everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: exact.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// [`validate`] plus the cluster's rules: the static ones always, the platform team's when
/// `policy` is given (the controller has it; the CLI and pool pods do not, and the
/// controller's condition tells the user).
pub fn validate_for_cluster(
    function: &Function,
    policy: Option<&ClusterPolicy>,
) -> Result<(), ValidationErrors> {
    let mut errs = match validate(function) {
        Ok(()) => ValidationErrors::default(),
        Err(errs) => errs,
    };
    static_rules(function, &mut errs);
    if let Some(policy) = policy {
        policy_rules(function, policy, &mut errs);
    }
    errs.into_result()
}

/// The AWS SDKs' switch for instance-metadata credentials.
const IMDS_SWITCH: &str = "AWS_EC2_METADATA_DISABLED";

fn static_rules(function: &Function, errs: &mut ValidationErrors) {
    // A container function's outbound list becomes its pods' NetworkPolicy egress: what
    // NetworkPolicy cannot express (host names) is refused rather than silently not enforced.
    // WASM functions' lists are enforced by the runtime and may name hosts.
    if function.spec.runtime.container.is_some()
        && let Some(network) = &function.spec.network
        && let Err(e) =
            crate::network::egress_rules_for_networkpolicy(&network.allowed_outbound_hosts)
    {
        errs.0.extend(e.0);
    }
    // Every pod the controller renders turns instance metadata off (the node's role); a
    // Function does not get to turn it back on.
    if function.spec.env.contains_key(IMDS_SWITCH) {
        errs.push(
            format!("spec.env[{IMDS_SWITCH:?}]"),
            "is set by the platform in a cluster: function pods never use the node's IAM role \
             (instance metadata); use spec.iam.roleArn",
        );
    }
    // A container's environment is fixed when its pod starts, by the kubelet, which reads
    // Kubernetes Secrets only: SSM and Secrets Manager reach WASM functions (their pool reads
    // them with the function's role at each refresh) and, for containers, through Secrets.
    if function.spec.runtime.container.is_some() {
        for (name, source) in function.spec.env.secrets() {
            let field = match source {
                crate::SecretRef::Kubernetes(_) => continue,
                crate::SecretRef::Ssm(_) => "ssmParameter",
                crate::SecretRef::SecretsManager(_) => "secretsManager",
            };
            errs.push(
                format!("spec.env[{name:?}].valueFrom.{field}"),
                "container functions in a cluster take secrets from Kubernetes Secrets \
                 (secretKeyRef; sync SSM or Secrets Manager into a Secret, e.g. with the \
                 External Secrets Operator): only WASM functions read them directly there",
            );
        }
    }
    // A webhook's token is read by the controller, which publishes only its keyed digest
    // (the gateway reads no Secret): a Kubernetes Secret of the Function's namespace.
    if let Some(webhook) = &function.spec.webhook {
        let field = match webhook.token_secret.source() {
            Ok(crate::SecretRef::Ssm(_)) => Some("ssmParameter"),
            Ok(crate::SecretRef::SecretsManager(_)) => Some("secretsManager"),
            _ => None,
        };
        if let Some(field) = field {
            errs.push(
                format!("spec.webhook.tokenSecret.{field}"),
                "a webhook's token comes from a Kubernetes Secret of the Function's namespace \
                 in a cluster (secretKeyRef): the controller reads it and publishes only a \
                 keyed digest",
            );
        }
    }
    // A schedule's notify URL from a secret is read by the controller, which has no role of
    // the function's to read SSM or Secrets Manager with: a Kubernetes Secret only.
    for (i, schedule) in function.spec.schedules.iter().enumerate() {
        let Some(from) = schedule.notify.as_ref().and_then(|n| n.url_from.as_ref()) else {
            continue;
        };
        let field = match from.source() {
            Ok(crate::SecretRef::Ssm(_)) => "ssmParameter",
            Ok(crate::SecretRef::SecretsManager(_)) => "secretsManager",
            _ => continue,
        };
        errs.push(
            format!("spec.schedules[{i}].notify.urlFrom.{field}"),
            "a notify URL comes from a Kubernetes Secret of the Function's namespace in a              cluster (secretKeyRef): the controller sends notifications and reads no AWS              secret",
        );
    }
    let Some(wasm) = &function.spec.runtime.wasm else {
        return;
    };
    // A pool pod reads a member's queues with the member's own role; the pod's own identity
    // (the platform's pull role) is never a tenant's. Without a role, nothing would poll.
    if function.spec.iam.is_none() {
        for (i, _) in function
            .spec
            .sqs_triggers()
            .iter()
            .enumerate()
            .filter(|(_, t)| t.enabled != Some(false))
        {
            errs.push(
                format!("spec.triggers.sqs[{i}]"),
                "a WASM function's queues are read with its own IAM role in a cluster (as \
                 Lambda's event source mapping uses the execution role): set spec.iam.roleArn \
                 to a role that may receive and delete the queue's messages",
            );
        }
    }
    for (i, _) in wasm.dirs.iter().enumerate() {
        errs.push(
            format!("spec.runtime.wasm.dirs[{i}].hostPath"),
            "host directories are local mode only: in a cluster a guest gets no host \
             filesystem (a pool pod's directories hold its tokens and compiled code)",
        );
    }
    if let Ok(ArtifactSource::Oci(oci)) = ArtifactSource::parse(&wasm.source)
        && oci.digest.is_none()
    {
        errs.push(
            "spec.runtime.wasm.source",
            format!(
                "must be pinned by digest in a cluster (oci://registry/repository@sha256:<64 \
                 hex>; faas deploy pins what it pushes), got {:?}",
                wasm.source
            ),
        );
    }
}

fn policy_rules(function: &Function, policy: &ClusterPolicy, errs: &mut ValidationErrors) {
    let namespace = function.metadata.namespace.as_deref().unwrap_or("default");
    let cap = policy.max_timeout.unwrap_or(crate::limits::MAX_TIMEOUT);
    if let Ok(limits) = function.spec.limits()
        && let Some(why) = crate::limits::over_timeout_cap(
            limits.timeout,
            cap,
            "chart value controller.maxTimeout",
        )
    {
        errs.push("spec.timeout", why);
    }
    if let Some(iam) = &function.spec.iam
        && !policy.allows_role(namespace, &iam.role_arn)
    {
        errs.push(
            "spec.iam.roleArn",
            format!(
                "{:?} is not allowed in namespace {namespace}: the platform team lists the \
                 roles each namespace may use (chart value controller.allowedRoleArns)",
                iam.role_arn
            ),
        );
    }
    if let Some(placement) = &function.spec.placement {
        if let Some(group) = &placement.node_group
            && !policy.allowed_node_groups.contains(group)
        {
            errs.push(
                "spec.placement.nodeGroup",
                format!(
                    "{group:?} is not a node group functions may use (allowed: {}; chart \
                     value nodeGroups.functions.allowedNodeGroups)",
                    listing(&policy.allowed_node_groups)
                ),
            );
        }
        for (i, toleration) in placement.tolerations.iter().enumerate() {
            // An empty key is refused by `validate` already (it tolerates every taint).
            if !toleration.key.is_empty()
                && !policy.allowed_toleration_keys.contains(&toleration.key)
            {
                errs.push(
                    format!("spec.placement.tolerations[{i}].key"),
                    format!(
                        "taint {:?} may not be tolerated by functions (allowed: {}; chart \
                         value nodeGroups.functions.allowedTolerationKeys)",
                        toleration.key,
                        listing(&policy.allowed_toleration_keys)
                    ),
                );
            }
        }
        for key in placement.node_selector.keys() {
            if !policy.allowed_node_selector_keys.contains(key) {
                errs.push(
                    format!("spec.placement.nodeSelector.{key}"),
                    format!(
                        "node label {key:?} may not be selected by functions (allowed: {}; \
                         chart value nodeGroups.functions.allowedNodeSelectorKeys)",
                        listing(&policy.allowed_node_selector_keys)
                    ),
                );
            }
        }
    }
    if function.spec.runtime.wasm.is_some()
        && let Some(pool_memory) = policy.pool_memory_bytes
        && let Ok(limits) = function.spec.limits_in(Some(pool_memory))
    {
        pool_fit_rule(function, &limits, pool_memory, errs);
    }
}

/// A WASM function's instances at their memory cap must fit the pool pod they share: one
/// that does not would have the pod OOM-killed with every function in it. An absent
/// `spec.concurrency` already fits ([`crate::FunctionSpec::limits_in`]); what can still
/// fail is `spec.memory` alone or an explicit concurrency.
fn pool_fit_rule(
    function: &Function,
    limits: &crate::Limits,
    pool_memory: u64,
    errs: &mut ValidationErrors,
) {
    let bytes = crate::limits::format_bytes;
    if limits.memory_bytes > pool_memory {
        errs.push(
            "spec.memory",
            format!(
                "{} is more than a runtime pool pod has ({}): lower it (chart value \
                 runtime.pools.memory sizes the pods)",
                bytes(limits.memory_bytes),
                bytes(pool_memory),
            ),
        );
        return;
    }
    let needed = limits
        .memory_bytes
        .saturating_mul(u64::from(limits.concurrency));
    if function.spec.concurrency.is_some() && needed > pool_memory {
        let fits = pool_memory / limits.memory_bytes.max(1);
        errs.push(
            "spec.concurrency",
            format!(
                "memory x concurrency ({} x {} = {}) does not fit a runtime pool pod ({}): \
                 concurrent instances at their memory cap would have the pod killed with \
                 every function in it; set spec.concurrency to at most {fits} (or leave it \
                 out: a pool runs as many as fit) or lower spec.memory",
                bytes(limits.memory_bytes),
                limits.concurrency,
                bytes(needed),
                bytes(pool_memory),
            ),
        );
    }
}

fn listing(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::{
        DirGrant, FunctionSpec, IamSpec, PlacementSpec, RuntimeSpec, WasmRuntime,
    };

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn wasm(source: &str) -> Function {
        let mut f = Function::new(
            "resize",
            FunctionSpec {
                runtime: RuntimeSpec {
                    wasm: Some(WasmRuntime {
                        source: source.into(),
                        ..WasmRuntime::default()
                    }),
                    container: None,
                },
                concurrency: Some(4),
                ..FunctionSpec::default()
            },
        );
        f.metadata.namespace = Some("team-a".into());
        f
    }

    fn paths(result: Result<(), ValidationErrors>) -> Vec<String> {
        result
            .err()
            .map(|e| e.iter().map(|e| e.path.clone()).collect())
            .unwrap_or_default()
    }

    fn policy() -> ClusterPolicy {
        ClusterPolicy {
            allowed_role_arns: [(
                "*".to_owned(),
                vec!["arn:aws:iam::123456789012:role/faas/{namespace}/*".to_owned()],
            )]
            .into(),
            allowed_node_groups: vec!["gpu".into()],
            allowed_node_selector_keys: vec!["example.com/tier".into()],
            allowed_toleration_keys: vec!["example.com/gpu".into()],
            pool_memory_bytes: Some(1 << 30),
            max_timeout: None,
        }
    }

    #[test]
    fn a_long_job_runs_only_where_the_platform_raised_the_cap() {
        let mut job = wasm("configmap://fn-report/a.wasm");
        job.spec.runtime = RuntimeSpec {
            wasm: None,
            container: Some(crate::function::ContainerRuntime {
                image: Some("registry.example.com/report:1".into()),
                mode: crate::function::ContainerMode::Lambda,
                ..Default::default()
            }),
        };
        job.spec.timeout = Some("2h".into());
        assert_eq!(validate(&job), Ok(()), "a container may ask for hours");
        let refused = validate_for_cluster(&job, Some(&policy())).expect_err("over 15m");
        assert!(
            refused
                .to_string()
                .contains("spec.timeout: 2h is over this platform's cap of 15m")
                && refused.to_string().contains("controller.maxTimeout"),
            "{refused}"
        );
        let raised = ClusterPolicy {
            max_timeout: Some(std::time::Duration::from_secs(4 * 3600)),
            ..policy()
        };
        assert_eq!(validate_for_cluster(&job, Some(&raised)), Ok(()));
        // Never a WASM function, whatever the cap: its instance holds a pool pod's memory.
        let mut wasm_job = wasm("configmap://fn-report/a.wasm");
        wasm_job.spec.timeout = Some("2h".into());
        assert!(
            validate(&wasm_job)
                .expect_err("over 15m")
                .to_string()
                .contains("15m for a WASM function")
        );
        job.spec.timeout = Some("25h".into());
        assert!(
            validate(&job)
                .expect_err("over a day")
                .to_string()
                .contains("24h")
        );
    }

    #[test]
    fn host_directories_are_refused_in_a_cluster_and_kept_locally() {
        for host in [
            "/tmp/faas",
            "/var/run/secrets/kubernetes.io/serviceaccount",
            ".",
        ] {
            let mut f = wasm("configmap://fn-resize/a.wasm");
            if let Some(w) = f.spec.runtime.wasm.as_mut() {
                w.dirs = vec![DirGrant {
                    host_path: host.into(),
                    guest_path: "/data".into(),
                    read_only: true,
                }];
            }
            assert_eq!(validate(&f), Ok(()), "local mode keeps dirs");
            assert_eq!(
                paths(validate_for_cluster(&f, None)),
                ["spec.runtime.wasm.dirs[0].hostPath"],
                "{host}"
            );
        }
    }

    #[test]
    fn a_function_cannot_turn_instance_metadata_back_on_in_a_cluster() {
        let mut f = wasm("configmap://fn-resize/a.wasm");
        f.spec.env.insert(IMDS_SWITCH, "false");
        assert_eq!(
            validate(&f),
            Ok(()),
            "local mode leaves the machine's setup alone"
        );
        assert_eq!(
            paths(validate_for_cluster(&f, None)),
            ["spec.env[\"AWS_EC2_METADATA_DISABLED\"]"]
        );
    }

    #[test]
    fn a_container_in_a_cluster_takes_secrets_from_kubernetes_secrets_only() {
        let env: crate::Env = serde_json::from_value(serde_json::json!([
            {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "API", "valueFrom": {"ssmParameter": {"name": "/shop/api"}}},
            {"name": "TOKEN", "valueFrom": {"secretsManager": {"secretId": "shop"}}},
        ]))
        .expect("env");
        let mut wasm_fn = wasm("configmap://fn-resize/a.wasm");
        wasm_fn.spec.env = env.clone();
        assert_eq!(
            paths(validate_for_cluster(&wasm_fn, None)),
            Vec::<String>::new()
        );
        let mut container = wasm_fn.clone();
        container.spec.runtime = crate::RuntimeSpec {
            wasm: None,
            container: Some(crate::ContainerRuntime {
                image: Some("registry.example.com/shop:1".into()),
                port: Some(8080),
                ..crate::ContainerRuntime::default()
            }),
        };
        assert_eq!(validate(&container), Ok(()), "local mode reads them all");
        assert_eq!(
            paths(validate_for_cluster(&container, None)),
            [
                "spec.env[\"API\"].valueFrom.ssmParameter",
                "spec.env[\"TOKEN\"].valueFrom.secretsManager"
            ]
        );
    }

    #[test]
    fn oci_artifacts_must_be_pinned_by_digest_in_a_cluster() {
        let tag = wasm("oci://123456789012.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4");
        assert_eq!(validate(&tag), Ok(()));
        assert_eq!(
            paths(validate_for_cluster(&tag, None)),
            ["spec.runtime.wasm.source"]
        );
        let short = wasm("oci://r.example.com/fn/resize@sha256:abc");
        assert!(!paths(validate_for_cluster(&short, None)).is_empty());
        let digest = wasm(&format!(
            "oci://123456789012.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4@sha256:{DIGEST}"
        ));
        assert_eq!(validate_for_cluster(&digest, None), Ok(()));
        assert_eq!(
            validate_for_cluster(&wasm("configmap://fn-resize/a.wasm"), None),
            Ok(())
        );
    }

    #[test]
    fn a_wasm_function_reads_its_queues_only_with_a_role_of_its_own() {
        let mut f = wasm("configmap://fn-orders/a.wasm");
        let trigger = |queue: &str, enabled| crate::function::SqsTrigger {
            queue_url: format!("https://sqs.eu-west-3.amazonaws.com/123456789012/{queue}"),
            enabled,
            ..crate::function::SqsTrigger::default()
        };
        f.spec.triggers = Some(crate::function::TriggersSpec {
            sqs: vec![trigger("old", Some(false)), trigger("orders", None)],
        });
        // The disabled one reads nothing; the other would have nothing to read with.
        assert_eq!(
            paths(validate_for_cluster(&f, None)),
            ["spec.triggers.sqs[1]"]
        );
        assert_eq!(
            validate(&f),
            Ok(()),
            "locally, the developer's credentials read it"
        );
        f.spec.iam = Some(IamSpec {
            role_arn: "arn:aws:iam::123456789012:role/faas/team-a/orders".into(),
        });
        assert_eq!(validate_for_cluster(&f, Some(&policy())), Ok(()));
    }

    #[test]
    fn a_foreign_role_arn_is_refused_naming_the_field() {
        let mut f = wasm("configmap://fn-resize/a.wasm");
        f.spec.iam = Some(IamSpec {
            role_arn: "arn:aws:iam::123456789012:role/faas/team-a/resize".into(),
        });
        assert_eq!(validate_for_cluster(&f, Some(&policy())), Ok(()));
        for foreign in [
            // Another team's role.
            "arn:aws:iam::123456789012:role/faas/team-b/payments",
            // A namespace whose name starts like ours: paths keep them apart.
            "arn:aws:iam::123456789012:role/faas/team-a-b/payments",
            // The platform's own.
            "arn:aws:iam::123456789012:role/faas-controller",
            // Another account.
            "arn:aws:iam::999999999999:role/faas/team-a/resize",
        ] {
            f.spec.iam = Some(IamSpec {
                role_arn: foreign.into(),
            });
            assert_eq!(
                paths(validate_for_cluster(&f, Some(&policy()))),
                ["spec.iam.roleArn"],
                "{foreign}"
            );
        }
        // No policy for roles: none allowed.
        f.spec.iam = Some(IamSpec {
            role_arn: "arn:aws:iam::123456789012:role/faas/team-a/resize".into(),
        });
        assert_eq!(
            paths(validate_for_cluster(&f, Some(&ClusterPolicy::default()))),
            ["spec.iam.roleArn"]
        );
        // A namespace's own entry.
        let mine = ClusterPolicy {
            allowed_role_arns: [(
                "team-a".to_owned(),
                vec!["arn:aws:iam::123456789012:role/faas/team-a/resize".to_owned()],
            )]
            .into(),
            ..ClusterPolicy::default()
        };
        assert_eq!(validate_for_cluster(&f, Some(&mine)), Ok(()));
        f.metadata.namespace = Some("team-b".into());
        assert_eq!(
            paths(validate_for_cluster(&f, Some(&mine))),
            ["spec.iam.roleArn"]
        );
    }

    #[test]
    fn globs_match_whole_arns() {
        assert!(glob_match("a*c", "abc"));
        assert!(glob_match("a*c", "ac"));
        assert!(!glob_match("a*c", "acb"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn node_groups_and_selector_keys_only_from_the_charts_lists() {
        let mut f = wasm("configmap://fn-resize/a.wasm");
        let toleration = |key: &str| crate::function::TolerationSpec {
            key: key.into(),
            operator: Some("Exists".into()),
            value: None,
            effect: None,
        };
        f.spec.placement = Some(PlacementSpec {
            node_group: Some("gpu".into()),
            node_selector: [("example.com/tier".to_owned(), "batch".to_owned())].into(),
            tolerations: vec![toleration("example.com/gpu")],
            ..PlacementSpec::default()
        });
        assert_eq!(validate_for_cluster(&f, Some(&policy())), Ok(()));
        f.spec.placement = Some(PlacementSpec {
            tolerations: vec![toleration("CriticalAddonsOnly")],
            node_group: Some("system".into()),
            node_selector: [(
                "node-role.kubernetes.io/control-plane".to_owned(),
                "true".to_owned(),
            )]
            .into(),
            ..PlacementSpec::default()
        });
        assert_eq!(
            paths(validate_for_cluster(&f, Some(&policy()))),
            [
                "spec.placement.nodeGroup",
                "spec.placement.tolerations[0].key",
                "spec.placement.nodeSelector.node-role.kubernetes.io/control-plane"
            ]
        );
    }

    #[test]
    fn a_wasm_function_must_fit_its_pool_pod() {
        let mut f = wasm("configmap://fn-resize/a.wasm");
        f.spec.memory = Some("256Mi".into());
        f.spec.concurrency = Some(4);
        assert_eq!(validate_for_cluster(&f, Some(&policy())), Ok(()));
        f.spec.concurrency = Some(5);
        let errors = validate_for_cluster(&f, Some(&policy())).expect_err("too big");
        assert_eq!(errors.0[0].path, "spec.concurrency");
        assert!(errors.0[0].message.contains("at most 4"), "{errors}");
        // Defaults: as many 128Mi instances as fit 1Gi, so a first deploy runs.
        f.spec.memory = None;
        f.spec.concurrency = None;
        assert_eq!(validate_for_cluster(&f, Some(&policy())), Ok(()));
        // Memory alone larger than the pod: named as memory, whatever the concurrency.
        f.spec.memory = Some("2Gi".into());
        assert_eq!(
            paths(validate_for_cluster(&f, Some(&policy()))),
            ["spec.memory"]
        );
    }
}
