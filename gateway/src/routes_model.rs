//! [`route_for`] against a naive model: random route tables (exact and wildcard hosts, nested
//! path prefixes with and without a trailing slash, private functions) and random requests,
//! each decided by the model from the rules alone: a host route wins (an exact host over a
//! wildcard, the most specific wildcard over a broader one), then the platform's paths, then
//! `/function/{name}` and `/async-function/{name}`, then the longest prefix that ends at a
//! segment boundary; private functions do not exist for the public.

use std::collections::BTreeSet;

use faas_api::seeded::Seeded as Rng;

use super::*;

const SEGMENTS: &[&str] = &[
    "a", "b", "ab", "api", "v1", "function", "system", "ui", "hooks",
];
const HOSTS: &[&str] = &[
    "x.com",
    "a.x.com",
    "b.a.x.com",
    "z.x.com",
    "q.z.x.com",
    "y.org",
    "*.x.com",
    "*.a.x.com",
    "*.z.x.com",
    "*.y.org",
];
const NAMES: &[&str] = &["f1", "f2", "f3", "f4"];

fn path(rng: &mut Rng, min_depth: usize) -> String {
    // Now and then the Lambda Invoke API's path, or one close to it.
    if rng.below(12) == 0 {
        let tail = ["", "/", "/x"][rng.below(3)];
        return format!(
            "/2015-03-31/functions/{}/invocations{tail}",
            rng.pick(SEGMENTS)
        );
    }
    let depth = min_depth + rng.below(4 - min_depth);
    let mut p: String = (0..depth)
        .map(|_| format!("/{}", rng.pick(SEGMENTS)))
        .collect();
    if p.is_empty() || rng.below(4) == 0 {
        p.push('/');
    }
    p
}

fn table(rng: &mut Rng) -> RouteTable {
    let mut t = RouteTable::default();
    let mut hosts = BTreeSet::new();
    for _ in 0..rng.below(5) {
        let host = rng.pick(HOSTS);
        if hosts.insert(host) {
            t.hosts.push((host.to_owned(), rng.pick(NAMES).to_owned()));
        }
    }
    let mut prefixes = BTreeSet::new();
    for _ in 0..rng.below(6) {
        let prefix = path(rng, 1);
        if faas_api::routing::reserved_path(&prefix).is_none() && prefixes.insert(prefix.clone()) {
            t.prefixes.push((prefix, rng.pick(NAMES).to_owned()));
        }
    }
    for name in NAMES {
        if rng.below(4) == 0 {
            t.private.insert((*name).to_owned());
        }
    }
    t.finish();
    t
}

/// What the rules say `(host, path)` reaches, as (name, prefix) or the platform's own route.
fn model(t: &RouteTable, host: Option<&str>, path: &str, audience: Audience) -> String {
    let visible = |name: &str| audience == Audience::Internal || !t.private.contains(name);
    if let Some(host) = host {
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        if let Some((_, name)) = t.hosts.iter().find(|(h, n)| *h == host && visible(n)) {
            return format!("fn {name} ''");
        }
        let best = t
            .hosts
            .iter()
            .filter_map(|(h, n)| Some((h.strip_prefix("*.")?, n)))
            .filter(|(suffix, n)| host.ends_with(&format!(".{suffix}")) && visible(n))
            .max_by_key(|(suffix, _)| suffix.len());
        if let Some((_, name)) = best {
            return format!("fn {name} ''");
        }
    }
    let under = |mount: &str| path == mount || path.starts_with(&format!("{mount}/"));
    for (mount, what) in [
        ("/healthz", "health"),
        ("/readyz", "ready"),
        ("/metrics", "metrics"),
    ] {
        if path == mount {
            return what.to_owned();
        }
    }
    if under("/system") {
        return "system".to_owned();
    }
    if under("/ui") {
        return "ui".to_owned();
    }
    for (mount, kind) in [("/function/", "fn"), ("/async-function/", "async")] {
        if let Some(rest) = path.strip_prefix(mount) {
            let name = rest.split('/').next().unwrap_or_default();
            if !name.is_empty() {
                return format!("{kind} {name} '{mount}{name}'");
            }
        }
    }
    let parts: Vec<&str> = path.split('/').collect();
    if let ["", "2015-03-31", "functions", name, "invocations"] = parts.as_slice() {
        return format!("lambda {name}");
    }
    if let ["", "hooks", name] = parts.as_slice()
        && !name.is_empty()
    {
        return format!("hook {name}");
    }
    if faas_api::routing::reserved_path(path).is_some() {
        return "not found".to_owned();
    }
    let segments = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let wanted = segments(path);
    let best = t
        .prefixes
        .iter()
        .filter(|(_, n)| visible(n))
        .filter(|(prefix, _)| {
            // `/a/` mounts what is under `/a` (but not `/a` itself); `/a` mounts both.
            let mounted = segments(prefix);
            let below = wanted.len() > mounted.len() || path.ends_with('/');
            wanted.starts_with(&mounted)
                && (path == prefix.as_str() || !prefix.ends_with('/') || below)
        })
        .max_by_key(|(prefix, _)| prefix.len());
    match best {
        Some((prefix, name)) => format!("fn {name} '{}'", prefix.trim_end_matches('/')),
        None => "not found".to_owned(),
    }
}

fn shown(route: &Route<'_>) -> String {
    match route {
        Route::Function { name, prefix } => format!("fn {name} '{prefix}'"),
        Route::AsyncFunction { name, prefix } => format!("async {name} '{prefix}'"),
        Route::LambdaInvoke { function } => format!("lambda {function}"),
        Route::Webhook { name } => format!("hook {name}"),
        Route::System => "system".into(),
        Route::Health => "health".into(),
        Route::Ready => "ready".into(),
        Route::Metrics => "metrics".into(),
        Route::Ui => "ui".into(),
        Route::NotFound => "not found".into(),
    }
}

#[test]
fn routes_match_a_naive_model_of_the_rules() {
    let mut rng = Rng::new(0x0a11_7e57);
    let mut function_routes = 0;
    for case in 0..3000 {
        let t = table(&mut rng);
        for _ in 0..8 {
            let host = match rng.below(3) {
                0 => None,
                1 => Some(rng.pick(HOSTS).trim_start_matches("*.").to_owned()),
                _ => Some(format!("{}:8080", rng.pick(HOSTS).replace('*', "w"))),
            };
            let request = path(&mut rng, 0);
            let audience = if rng.below(2) == 0 {
                Audience::Public
            } else {
                Audience::Internal
            };
            let got = shown(&route_for(&t, host.as_deref(), &request, audience));
            let want = model(&t, host.as_deref(), &request, audience);
            assert_eq!(
                got, want,
                "case {case}: {host:?} {request:?} {audience:?} in {t:?}"
            );
            function_routes += usize::from(got.starts_with("fn") && !got.contains("/function/"));
        }
    }
    // Host and prefix routes, not only the fixed paths, were exercised.
    assert!(function_routes > 3000, "{function_routes}");
}
