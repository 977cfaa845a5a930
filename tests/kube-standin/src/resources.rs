//! The table of resources the stand-in serves: the built-in kinds, plus those registered by
//! creating a CustomResourceDefinition.

use serde_json::Value;

/// Where a scale subresource reads and writes its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// `spec.replicas` of the object (`specReplicasPath`), as path segments.
    pub spec_replicas: Vec<String>,
    /// `status.replicas` (`statusReplicasPath`).
    pub status_replicas: Vec<String>,
    /// Where `status.selector` of the Scale comes from.
    pub selector: SelectorSource,
}

/// The source of a Scale's `status.selector`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectorSource {
    /// A Deployment's `spec.selector` (a LabelSelector), rendered as a selector string.
    LabelSelector(Vec<String>),
    /// A string at this path (a CRD's `labelSelectorPath`).
    String(Vec<String>),
    /// None declared.
    None,
}

/// One served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group, `""` for core.
    pub group: String,
    /// Served versions; the first is the one listed in discovery as preferred.
    pub versions: Vec<String>,
    /// Plural name, the path segment.
    pub plural: String,
    /// Singular name (discovery only).
    pub singular: String,
    /// Kind of its objects.
    pub kind: String,
    /// Short names (discovery only, for kubectl).
    pub short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Has a `/status` subresource: main-resource writes ignore `.status`.
    pub status: bool,
    /// Has a `/scale` subresource.
    pub scale: Option<ScalePaths>,
    /// Has a `/token` subresource (ServiceAccounts: TokenRequest).
    pub token: bool,
    /// The CRD that registered it (`None` for built-ins).
    pub crd: Option<String>,
}

impl Resource {
    /// `apiVersion` of its objects in `version`.
    pub fn api_version(&self, version: &str) -> String {
        api_version(&self.group, version)
    }

    /// The key its objects are stored under: one store per group and plural, whatever version.
    pub fn key(&self) -> ResourceKey {
        (self.group.clone(), self.plural.clone())
    }

    /// `plural.group` (as in messages and CRD names).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// `(group, plural)`.
pub type ResourceKey = (String, String);

/// `group/version`, or `version` for core.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn path(dotted: &str) -> Vec<String> {
    dotted
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Clone, Copy)]
struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
    status: bool,
}

const fn b(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
    status: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        plural,
        kind,
        short,
        namespaced,
        status,
    }
}

const BUILTINS: &[Builtin] = &[
    b("", "v1", "namespaces", "Namespace", &["ns"], false, true),
    b("", "v1", "nodes", "Node", &["no"], false, true),
    b("", "v1", "pods", "Pod", &["po"], true, true),
    b("", "v1", "services", "Service", &["svc"], true, true),
    b(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        &["sa"],
        true,
        false,
    ),
    b("", "v1", "configmaps", "ConfigMap", &["cm"], true, false),
    b("", "v1", "secrets", "Secret", &[], true, false),
    b("", "v1", "events", "Event", &["ev"], true, false),
    b("", "v1", "endpoints", "Endpoints", &["ep"], true, false),
    b(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        &["deploy"],
        true,
        true,
    ),
    b(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        &[],
        true,
        false,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        &[],
        true,
        false,
    ),
    b(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        &["ev"],
        true,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        &[],
        true,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        &[],
        true,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        &[],
        false,
        false,
    ),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        &["pdb"],
        true,
        true,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        &["netpol"],
        true,
        false,
    ),
    b(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        &["hpa"],
        true,
        true,
    ),
    b("batch", "v1", "jobs", "Job", &[], true, true),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        &["crd", "crds"],
        false,
        true,
    ),
];

/// The resources served now.
#[derive(Debug, Clone)]
pub struct Registry {
    resources: Vec<Resource>,
}

impl Default for Registry {
    fn default() -> Self {
        let resources = BUILTINS
            .iter()
            .map(|b| Resource {
                group: b.group.to_string(),
                versions: vec![b.version.to_string()],
                plural: b.plural.to_string(),
                singular: b.kind.to_lowercase(),
                kind: b.kind.to_string(),
                short_names: b.short.iter().map(|s| s.to_string()).collect(),
                namespaced: b.namespaced,
                status: b.status,
                scale: (b.plural == "deployments").then(|| ScalePaths {
                    spec_replicas: path("spec.replicas"),
                    status_replicas: path("status.replicas"),
                    selector: SelectorSource::LabelSelector(path("spec.selector")),
                }),
                token: b.plural == "serviceaccounts",
                crd: None,
            })
            .collect();
        Registry { resources }
    }
}

impl Registry {
    /// The resource served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| {
            r.group == group && r.plural == plural && r.versions.iter().any(|v| v == version)
        })
    }

    /// The resource stored under `key`, whatever version.
    pub fn by_key(&self, key: &ResourceKey) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.group == key.0 && r.plural == key.1)
    }

    /// All resources.
    pub fn all(&self) -> &[Resource] {
        &self.resources
    }

    /// Registers (or re-registers) the resource a CRD defines; replaces what the same CRD
    /// defined before. Errors name what is missing.
    pub fn register_crd(&mut self, crd: &Value) -> Result<Resource, String> {
        let resource = from_crd(crd)?;
        if let Some(other) = self.resources.iter().find(|r| {
            r.group == resource.group && r.plural == resource.plural && r.crd != resource.crd
        }) {
            return Err(format!("{} is already served", other.group_resource()));
        }
        self.resources.retain(|r| r.crd != resource.crd);
        self.resources.push(resource.clone());
        Ok(resource)
    }

    /// Unregisters what the CRD named `crd_name` defined; the removed resource, if any.
    pub fn unregister_crd(&mut self, crd_name: &str) -> Option<Resource> {
        let at = self
            .resources
            .iter()
            .position(|r| r.crd.as_deref() == Some(crd_name))?;
        Some(self.resources.remove(at))
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The resource a CRD object defines. Subresources are taken from the first served version
/// that declares any (the stand-in keeps one set per resource).
fn from_crd(crd: &Value) -> Result<Resource, String> {
    let name = str_at(crd, "/metadata/name").ok_or("metadata.name is required")?;
    let group = str_at(crd, "/spec/group").ok_or("spec.group is required")?;
    let plural = str_at(crd, "/spec/names/plural").ok_or("spec.names.plural is required")?;
    let kind = str_at(crd, "/spec/names/kind").ok_or("spec.names.kind is required")?;
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name must be spec.names.plural+\".\"+spec.group: {plural}.{group}"
        ));
    }
    let namespaced = match str_at(crd, "/spec/scope") {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope must be Namespaced or Cluster".to_string()),
    };
    let versions: Vec<&Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<String> = versions
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err("spec.versions must name at least one served version".to_string());
    }
    let subresources = versions
        .iter()
        .find_map(|v| v.get("subresources").filter(|s| s.is_object()));
    let status = subresources.is_some_and(|s| s.get("status").is_some());
    let scale = subresources
        .and_then(|s| s.get("scale"))
        .map(|scale| ScalePaths {
            spec_replicas: path(
                scale
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas"),
            ),
            status_replicas: path(
                scale
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas"),
            ),
            selector: match scale.get("labelSelectorPath").and_then(Value::as_str) {
                Some(p) => SelectorSource::String(path(p)),
                None => SelectorSource::None,
            },
        });
    Ok(Resource {
        group: group.to_string(),
        versions: names,
        plural: plural.to_string(),
        singular: str_at(crd, "/spec/names/singular")
            .map_or_else(|| kind.to_lowercase(), str::to_string),
        kind: kind.to_string(),
        short_names: crd
            .pointer("/spec/names/shortNames")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        namespaced,
        status,
        scale,
        token: false,
        crd: Some(name.to_string()),
    })
}
