//! Who owns which route: the short `/function/{name}`, host names and path prefixes.
//!
//! Many teams share one gateway, so a route is something a Function *claims*, and a claim
//! can be lost. [`Claims::decide`] is the one rule, a pure function of all Functions: the
//! gateway builds its route table from it and the controller writes a `RouteConflict`
//! condition from it, so every gateway replica routes the same (whatever order it saw the
//! events in) and the status says exactly what the gateway does.
//!
//! The rule: Functions are taken oldest first (`metadata.creationTimestamp`, then
//! `metadata.uid`, then namespace and name for objects that have neither, as in local mode);
//! each claim is granted unless an earlier Function holds the same one, or (for hosts and
//! paths) one from *another namespace* holds an overlapping one: a team cannot mount a
//! sub-path of another team's prefix, nor an exact host under another team's wildcard.
//! Inside one namespace overlaps are the team's own layout (longest prefix wins, an exact
//! host beats a wildcard). Host names the platform answers on, wildcard hosts outside the
//! suffixes the platform allows, and the platform's own paths ([`RESERVED_PATHS`]) are never
//! granted. Every Function keeps the always-valid `/function/{name}.{namespace}`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::Function;

/// Path prefixes the platform serves itself. No Function may mount a path under them
/// (validation refuses it) and routing never sends them to a Function's path prefix.
pub const RESERVED_PATHS: &[&str] = &[
    "/function",
    "/async-function",
    "/system",
    "/ui",
    "/healthz",
    "/readyz",
    "/metrics",
    // Functions' webhooks (`spec.webhook`): `/hooks/{name}`.
    "/hooks",
    // The Lambda Invoke API (`/2015-03-31/functions/{name}/invocations`).
    "/2015-03-31",
];

/// The reserved prefix `path` falls under (the prefix itself, or a path below it), if any.
pub fn reserved_path(path: &str) -> Option<&'static str> {
    RESERVED_PATHS.iter().copied().find(|reserved| {
        path.strip_prefix(reserved)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The always-valid address of a Function in a cluster: `{name}.{namespace}`, one path
/// segment (`/function/orders.shop/...`). Names and namespaces are DNS labels, which have no
/// dot, so it can be neither a short name nor ambiguous with the function's own sub-paths.
pub fn qualified_name(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}")
}

/// A key read back: `(name, Some(namespace))` for a [`qualified_name`], `(name, None)` for a
/// short name.
pub fn split_qualified_name(key: &str) -> (&str, Option<&str>) {
    match key.split_once('.') {
        Some((name, namespace)) => (name, Some(namespace)),
        None => (key, None),
    }
}

/// Whether the function is served on the internet-facing listener (`spec.http.public`,
/// default true). A private one is reached only by in-cluster callers and event sources.
pub fn is_public(function: &Function) -> bool {
    function.spec.http.as_ref().and_then(|h| h.public) != Some(false)
}

/// What the platform allows Functions to claim, from the chart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingPolicy {
    /// Host names the platform answers on itself (the gateway's public host): never
    /// claimable, neither exactly nor under a wildcard. Lowercase.
    pub platform_hosts: Vec<String>,
    /// Domains under which `*.` wildcard hosts may be claimed (`apps.example.com` allows
    /// `*.apps.example.com` and `*.team.apps.example.com`). `None`: any (local mode, one
    /// developer); in a cluster the default is `Some(empty)`: no wildcard at all.
    pub wildcard_suffixes: Option<Vec<String>>,
}

impl RoutingPolicy {
    /// Local mode: one tenant, any wildcard.
    pub fn local() -> Self {
        RoutingPolicy {
            platform_hosts: Vec::new(),
            wildcard_suffixes: None,
        }
    }

    /// A cluster's policy from its settings (lists of host names; empty entries ignored).
    pub fn cluster<S: AsRef<str>>(platform_hosts: &[S], wildcard_suffixes: &[S]) -> Self {
        let clean = |list: &[S]| -> Vec<String> {
            list.iter()
                .map(|s| normalize_host(s.as_ref()))
                .filter(|s| !s.is_empty())
                .collect()
        };
        RoutingPolicy {
            platform_hosts: clean(platform_hosts),
            wildcard_suffixes: Some(clean(wildcard_suffixes)),
        }
    }

    /// Why `host` (lowercase, as validated) may not be claimed at all, if so.
    pub fn refuses_host(&self, host: &str) -> Option<String> {
        let host = normalize_host(host);
        if let Some(platform) = self.platform_hosts.iter().find(|p| host_overlaps(&host, p)) {
            return Some(format!(
                "{host} is (or covers) {platform}, a host the platform itself answers on"
            ));
        }
        let suffix = host.strip_prefix("*.")?;
        let allowed = self.wildcard_suffixes.as_ref()?;
        if allowed.iter().any(|a| under(suffix, a)) {
            return None;
        }
        Some(if allowed.is_empty() {
            format!("{host}: wildcard hosts are not allowed on this platform")
        } else {
            format!(
                "{host}: wildcard hosts are allowed only under {}",
                allowed.join(", ")
            )
        })
    }
}

fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `name` is `domain` or a subdomain of it.
fn under(name: &str, domain: &str) -> bool {
    name == domain
        || name
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether some request host would match both host claims.
fn host_overlaps(a: &str, b: &str) -> bool {
    match (a.strip_prefix("*."), b.strip_prefix("*.")) {
        (None, None) => a == b,
        (Some(wild), None) => b != wild && under(b, wild),
        (None, Some(wild)) => a != wild && under(a, wild),
        (Some(x), Some(y)) => under(x, y) || under(y, x),
    }
}

/// Granted host or path claims, as label (or segment) sequences from the root: a host
/// `a.shop.com` is `[com, shop, a]` (exact), `*.shop.com` is `[com, shop]` covering what lies
/// strictly below it, a path prefix `/shop/cart` is `[shop, cart]` covering itself and below
/// (`/` is `[]`: everything). A lookup costs the claim's length, not the number of claims,
/// so the whole set can be decided again on every change.
#[derive(Default)]
struct Held {
    /// Exact claims (hosts without a wildcard).
    exact: HashMap<Vec<String>, FunctionId>,
    /// Covering claims (wildcard hosts, path prefixes).
    covering: HashMap<Vec<String>, FunctionId>,
    /// Each proper ancestor of a held claim -> the holders of claims below it, oldest first.
    below: HashMap<Vec<String>, Vec<FunctionId>>,
}

impl Held {
    /// Who holds `key` against `claimant`: the same claim (anyone), or an overlapping one
    /// from another namespace (a covering claim above it, or, for a covering claim, any
    /// claim below it).
    fn holder(&self, key: &[String], covering: bool, claimant: &FunctionId) -> Option<FunctionId> {
        let same = if covering {
            self.covering.get(key)
        } else {
            self.exact.get(key)
        };
        if let Some(owner) = same {
            return Some(owner.clone());
        }
        let foreign = |owner: &&FunctionId| owner.namespace != claimant.namespace;
        for len in (0..key.len()).rev() {
            if let Some(owner) = self.covering.get(&key[..len]).filter(foreign) {
                return Some(owner.clone());
            }
        }
        if covering {
            return self
                .below
                .get(key)
                .and_then(|holders| holders.iter().find(foreign))
                .cloned();
        }
        None
    }

    fn hold(&mut self, key: Vec<String>, covering: bool, owner: &FunctionId) {
        for len in 0..key.len() {
            self.below
                .entry(key[..len].to_vec())
                .or_default()
                .push(owner.clone());
        }
        if covering {
            self.covering.insert(key, owner.clone());
        } else {
            self.exact.insert(key, owner.clone());
        }
    }
}

/// One Function, as claims name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionId {
    /// Empty outside a cluster.
    pub namespace: String,
    pub name: String,
}

impl FunctionId {
    /// The id of `function`.
    pub fn of(function: &Function) -> Self {
        FunctionId {
            namespace: function.metadata.namespace.clone().unwrap_or_default(),
            name: function.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// Something a Function asks to be reached by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The short `/function/{name}`.
    Name(String),
    /// `spec.http.hosts[i]`.
    Host(String),
    /// `spec.http.path`.
    Path(String),
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Claim::Name(name) => write!(f, "/function/{name}"),
            Claim::Host(host) => write!(f, "host {host}"),
            Claim::Path(path) => write!(f, "path {path}"),
        }
    }
}

/// A claim a Function did not get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loss {
    /// An older Function holds it (or an overlapping one, from another namespace).
    Taken {
        claim: Claim,
        /// The holder.
        by: FunctionId,
    },
    /// The platform never grants it.
    Refused { claim: Claim, why: String },
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::Taken { claim, by } => write!(f, "{claim} belongs to {by}, which is older"),
            Loss::Refused { claim, why } => write!(f, "{claim} is refused: {why}"),
        }
    }
}

/// Who owns what, and what each Function lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Short name -> its owner.
    pub names: BTreeMap<String, FunctionId>,
    /// Host (lowercase, `*.` for wildcards) -> its owner.
    pub hosts: BTreeMap<String, FunctionId>,
    /// Path prefix, as written in the spec -> its owner.
    pub paths: BTreeMap<String, FunctionId>,
    /// Function -> the claims it did not get, in spec order.
    pub losses: BTreeMap<FunctionId, Vec<Loss>>,
}

impl Claims {
    /// Decides every claim of `functions` (see the module's doc). Only what routes depend on
    /// is checked here (the name, each host, the path), not the whole spec: an owner whose
    /// spec turns invalid for another reason keeps its routes (and answers 503 meanwhile)
    /// rather than handing them to the next claimant, and the rule stays cheap enough to run
    /// on every change of the set.
    pub fn decide<'a>(
        functions: impl IntoIterator<Item = &'a Function>,
        policy: &RoutingPolicy,
    ) -> Claims {
        let mut ordered: Vec<&Function> = functions
            .into_iter()
            .filter(|f| {
                f.metadata
                    .name
                    .as_deref()
                    .is_some_and(crate::validate::is_dns_label)
            })
            .collect();
        ordered.sort_by_cached_key(|f| {
            let created = f.metadata.creation_timestamp.as_ref().map(|t| t.0);
            (
                created.is_none(),
                created,
                f.metadata.uid.clone().unwrap_or_default(),
                FunctionId::of(f),
            )
        });
        let mut claims = Claims::default();
        let mut hosts = Held::default();
        let mut paths = Held::default();
        for function in ordered {
            let id = FunctionId::of(function);
            let mut lost = Vec::new();
            match claims.names.get(&id.name) {
                Some(owner) => lost.push(Loss::Taken {
                    claim: Claim::Name(id.name.clone()),
                    by: owner.clone(),
                }),
                None => {
                    claims.names.insert(id.name.clone(), id.clone());
                }
            }
            let http = function.spec.http.as_ref();
            for written in http.map(|h| h.hosts.as_slice()).unwrap_or_default() {
                let claim = Claim::Host(written.clone());
                if let Err(why) = crate::validate::check_route_host(written) {
                    lost.push(Loss::Refused { claim, why });
                    continue;
                }
                let host = normalize_host(written);
                if let Some(why) = policy.refuses_host(&host) {
                    lost.push(Loss::Refused { claim, why });
                    continue;
                }
                let (domain, wild) = match host.strip_prefix("*.") {
                    Some(suffix) => (suffix, true),
                    None => (host.as_str(), false),
                };
                let key: Vec<String> = domain.split('.').rev().map(str::to_owned).collect();
                match hosts.holder(&key, wild, &id) {
                    Some(owner) if owner == id => {} // listed twice
                    Some(owner) => lost.push(Loss::Taken { claim, by: owner }),
                    None => {
                        hosts.hold(key, wild, &id);
                        claims.hosts.insert(host, id.clone());
                    }
                }
            }
            if let Some(path) = http.and_then(|h| h.path.as_deref()) {
                let claim = Claim::Path(path.to_owned());
                if let Err(why) = crate::validate::check_http_path(path) {
                    lost.push(Loss::Refused { claim, why });
                } else {
                    // A prefix mounts itself and everything below it (the root: everything).
                    let key: Vec<String> = path
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    match paths.holder(&key, true, &id) {
                        Some(owner) => lost.push(Loss::Taken { claim, by: owner }),
                        None => {
                            paths.hold(key, true, &id);
                            claims.paths.insert(path.to_owned(), id.clone());
                        }
                    }
                }
            }
            if !lost.is_empty() {
                claims.losses.insert(id, lost);
            }
        }
        claims
    }

    /// The claims `function` did not get.
    pub fn losses_of(&self, function: &FunctionId) -> &[Loss] {
        self.losses.get(function).map_or(&[], Vec::as_slice)
    }

    /// Whether `function` owns its short `/function/{name}`.
    pub fn owns_name(&self, function: &FunctionId) -> bool {
        self.names.get(&function.name) == Some(function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FunctionSpec, HttpSpec, RuntimeSpec, WasmRuntime};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn function(namespace: &str, name: &str, created: i64, http: HttpSpec) -> Function {
        let mut f = Function::new(
            name,
            FunctionSpec {
                runtime: RuntimeSpec {
                    wasm: Some(WasmRuntime {
                        source: "oci://registry.example.com/fn/a@sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
                        ..WasmRuntime::default()
                    }),
                    container: None,
                },
                http: Some(http),
                ..FunctionSpec::default()
            },
        );
        f.metadata.namespace = Some(namespace.into());
        f.metadata.uid = Some(format!("uid-{namespace}-{name}"));
        f.metadata.creation_timestamp = Some(Time(
            jiff::Timestamp::from_second(1_700_000_000 + created).expect("time"),
        ));
        f
    }

    fn hosts(list: &[&str]) -> HttpSpec {
        HttpSpec {
            hosts: list.iter().map(|h| (*h).to_owned()).collect(),
            ..HttpSpec::default()
        }
    }

    fn path(p: &str) -> HttpSpec {
        HttpSpec {
            path: Some(p.into()),
            ..HttpSpec::default()
        }
    }

    fn id(namespace: &str, name: &str) -> FunctionId {
        FunctionId {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn cluster() -> RoutingPolicy {
        RoutingPolicy::cluster(&["fn.example.com"], &["apps.example.com"])
    }

    #[test]
    fn reserved_paths_are_one_list_with_the_dashboard() {
        for p in [
            "/ui",
            "/ui/x",
            "/function",
            "/function/a",
            "/system/x",
            "/metrics",
        ] {
            assert!(reserved_path(p).is_some(), "{p}");
        }
        for p in ["/", "/uix", "/functional", "/metrics-ui", "/api/ui"] {
            assert_eq!(reserved_path(p), None, "{p}");
        }
    }

    #[test]
    fn the_oldest_gets_a_contested_claim_whatever_the_input_order() {
        let old = function("shop", "front", 0, hosts(&["shop.example.com"]));
        let young = function("attacker", "grab", 10, hosts(&["shop.example.com"]));
        // Alphabetically first, but younger: loses (today's rule gave it to "attacker").
        let a = Claims::decide([&old, &young], &cluster());
        let b = Claims::decide([&young, &old], &cluster());
        assert_eq!(a, b);
        assert_eq!(a.hosts.get("shop.example.com"), Some(&id("shop", "front")));
        assert_eq!(
            a.losses_of(&id("attacker", "grab")),
            [Loss::Taken {
                claim: Claim::Host("shop.example.com".into()),
                by: id("shop", "front")
            }]
        );
        assert!(a.losses_of(&id("shop", "front")).is_empty());
        // Same creation time: the uid decides.
        let twin = function("zzz", "twin", 0, hosts(&["shop.example.com"]));
        let c = Claims::decide([&twin, &old], &cluster());
        let d = Claims::decide([&old, &twin], &cluster());
        assert_eq!(c, d);
        assert_eq!(c.hosts.get("shop.example.com"), Some(&id("shop", "front")));
    }

    #[test]
    fn wildcards_only_under_allowed_suffixes_and_never_the_platforms_host() {
        let grab = |h: &str| function("attacker", "grab", 0, hosts(&[h]));
        for (host, refused) in [
            ("*.com", true),
            ("*.example.com", true),
            ("fn.example.com", true),
            ("*.apps.example.com", false),
            ("*.team.apps.example.com", false),
            ("shop.example.com", false),
        ] {
            let f = grab(host);
            let claims = Claims::decide([&f], &cluster());
            assert_eq!(
                matches!(
                    claims.losses_of(&id("attacker", "grab")),
                    [Loss::Refused { .. }]
                ),
                refused,
                "{host}: {claims:?}"
            );
            assert_eq!(claims.hosts.is_empty(), refused, "{host}");
        }
        // No suffix allowed (the chart's default): no wildcard at all.
        let f = grab("*.apps.example.com");
        let none = RoutingPolicy::cluster(&["fn.example.com"], &[] as &[&str]);
        assert!(Claims::decide([&f], &none).hosts.is_empty());
        // Local mode: any wildcard.
        assert!(
            !Claims::decide([&f], &RoutingPolicy::local())
                .hosts
                .is_empty()
        );
    }

    #[test]
    fn another_namespace_cannot_claim_inside_a_held_host_or_path() {
        let wild = function("team-a", "site", 0, hosts(&["*.a.apps.example.com"]));
        let inside = function("team-b", "x", 5, hosts(&["login.a.apps.example.com"]));
        let same_team = function("team-a", "login", 6, hosts(&["login.a.apps.example.com"]));
        let claims = Claims::decide([&inside, &same_team, &wild], &cluster());
        assert!(matches!(
            claims.losses_of(&id("team-b", "x")),
            [Loss::Taken { .. }]
        ));
        assert_eq!(
            claims.hosts.get("login.a.apps.example.com"),
            Some(&id("team-a", "login"))
        );

        let shop = function("team-a", "shop", 0, path("/shop"));
        let sub = function("team-b", "admin", 1, path("/shop/admin"));
        let root = function("team-c", "all", 2, path("/"));
        let own_sub = function("team-a", "cart", 3, path("/shop/cart/"));
        let dup = function("team-a", "again", 4, path("/shop/"));
        let claims = Claims::decide([&root, &own_sub, &sub, &shop, &dup], &cluster());
        assert_eq!(
            claims.paths.keys().collect::<Vec<_>>(),
            ["/shop", "/shop/cart/"]
        );
        for loser in [
            id("team-b", "admin"),
            id("team-c", "all"),
            id("team-a", "again"),
        ] {
            assert!(
                matches!(claims.losses_of(&loser), [Loss::Taken { by, .. }] if *by == id("team-a", "shop")),
                "{loser}: {claims:?}"
            );
        }
    }

    #[test]
    fn overlaps_follow_what_a_request_could_match() {
        let policy = RoutingPolicy::local();
        let wild = function("a", "wild", 0, hosts(&["*.shop.com"]));
        // The bare domain is not under its wildcard: no conflict.
        let bare = function("b", "bare", 1, hosts(&["shop.com"]));
        // A wider or narrower wildcard of another namespace overlaps.
        let wider = function("c", "wider", 2, hosts(&["*.com"]));
        let narrower = function("d", "narrower", 3, hosts(&["*.eu.shop.com"]));
        let deep = function("e", "deep", 4, hosts(&["x.eu.shop.com"]));
        let claims = Claims::decide([&deep, &narrower, &wider, &bare, &wild], &policy);
        assert_eq!(
            claims.hosts.keys().collect::<Vec<_>>(),
            ["*.shop.com", "shop.com"]
        );
        for loser in [id("c", "wider"), id("d", "narrower"), id("e", "deep")] {
            assert!(
                matches!(claims.losses_of(&loser), [Loss::Taken { by, .. }] if *by == id("a", "wild")),
                "{loser}: {claims:?}"
            );
        }
        // A root prefix held first blocks every other namespace's path, not its own team's.
        let root = function("a", "root", 0, path("/"));
        let mine = function("a", "api", 1, path("/api"));
        let theirs = function("b", "api", 2, path("/api"));
        let claims = Claims::decide([&theirs, &mine, &root], &policy);
        assert_eq!(claims.paths.keys().collect::<Vec<_>>(), ["/", "/api"]);
        assert!(!claims.losses_of(&id("b", "api")).is_empty());
    }

    #[test]
    fn a_short_name_belongs_to_the_oldest_function_of_that_name() {
        let old = function("zeta", "orders", 0, HttpSpec::default());
        let young = function("alpha", "orders", 9, HttpSpec::default());
        let claims = Claims::decide([&young, &old], &cluster());
        assert!(claims.owns_name(&id("zeta", "orders")));
        assert!(!claims.owns_name(&id("alpha", "orders")));
        assert_eq!(
            claims.losses_of(&id("alpha", "orders")),
            [Loss::Taken {
                claim: Claim::Name("orders".into()),
                by: id("zeta", "orders")
            }]
        );
        assert_eq!(qualified_name("orders", "alpha"), "orders.alpha");
        assert_eq!(
            split_qualified_name(&qualified_name("orders", "alpha")),
            ("orders", Some("alpha"))
        );
        assert_eq!(split_qualified_name("orders"), ("orders", None));
    }

    #[test]
    fn a_broken_spec_keeps_its_routes_but_a_bad_route_claims_nothing() {
        // The owner's spec turns invalid elsewhere (a typo in its timeout): it keeps its
        // host (and answers 503) rather than hand it to the next claimant.
        let mut owner = function("a", "owner", 0, hosts(&["shop.example.com"]));
        owner.spec.timeout = Some("soon".into());
        let next = function("b", "next", 5, hosts(&["shop.example.com"]));
        let claims = Claims::decide([&next, &owner], &cluster());
        assert_eq!(
            claims.hosts.get("shop.example.com"),
            Some(&id("a", "owner"))
        );
        // Malformed routes are refused one by one; an invalid name claims nothing at all.
        let bad = function(
            "c",
            "bad",
            0,
            HttpSpec {
                hosts: vec!["Shop.example.com".into(), "10.0.0.1".into()],
                path: Some("/ui/x".into()),
                ..HttpSpec::default()
            },
        );
        let claims = Claims::decide([&bad], &cluster());
        assert_eq!(claims.losses_of(&id("c", "bad")).len(), 3);
        assert!(claims.hosts.is_empty() && claims.paths.is_empty());
        let mut unnamed = function("c", "x", 0, hosts(&["free.example.com"]));
        unnamed.metadata.name = Some("Not A Label".into());
        assert_eq!(Claims::decide([&unnamed], &cluster()), Claims::default());
    }
}
