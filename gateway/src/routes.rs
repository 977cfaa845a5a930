//! Request routing, as a pure function of (host, path) and the route table.

use std::collections::{BTreeMap, BTreeSet};

/// What a request is for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// A function call. `prefix` is the mount point stripped from the path the function sees.
    Function {
        /// Function name.
        name: &'a str,
        /// The matched mount point (`/function/hello`, `/hello`, or empty for host routes).
        prefix: &'a str,
    },
    /// An asynchronous call: `/async-function/{name}[/...]`, answered 202 and queued.
    AsyncFunction {
        /// Function name.
        name: &'a str,
        /// `/async-function/{name}`, stripped from the path the function sees.
        prefix: &'a str,
    },
    /// The Lambda Invoke API: `/2015-03-31/functions/{function}/invocations` (the
    /// `FunctionName` segment as sent, percent-encoded).
    LambdaInvoke { function: &'a str },
    /// A function's webhook (`spec.webhook`): `POST /hooks/{name}` starts a run.
    Webhook { name: &'a str },
    /// The management API (`/system/...`).
    System,
    /// `/healthz`.
    Health,
    /// `/readyz`.
    Ready,
    /// `/metrics`.
    Metrics,
    /// The dashboard (`/ui`, `/ui/...`).
    Ui,
    /// Nothing here.
    NotFound,
}

/// The routes of registered functions, as [`faas_api::routing::Claims`] granted them. Every
/// route leads to a registry key: the function's name, or in a cluster its
/// `{name}.{namespace}` ([`faas_api::routing::qualified_name`]).
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    /// Lowercase host (no port) -> key. `*.example.com` entries match subdomains.
    pub hosts: Vec<(String, String)>,
    /// Path prefix -> key, longest first.
    pub prefixes: Vec<(String, String)>,
    /// Short name (`/function/{name}`) -> key, where the two differ.
    pub names: BTreeMap<String, String>,
    /// Keys of functions with `spec.http.public: false`: never routed on the public listener.
    pub private: BTreeSet<String>,
}

impl RouteTable {
    /// The registry key of the function called `name` (`/function/{name}`): itself, or in a
    /// cluster gateway its `{name}.{namespace}` where that is unambiguous.
    pub fn key_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.names.get(name).map_or(name, String::as_str)
    }

    /// Sorts prefixes and hosts longest first, so the longest prefix and the most specific
    /// wildcard (`*.eu.example.com` before `*.example.com`) win.
    pub fn finish(&mut self) {
        let longest_first = |a: &(String, String), b: &(String, String)| {
            b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0))
        };
        self.prefixes.sort_by(longest_first);
        self.hosts.sort_by(longest_first);
    }

    /// Whether the function of `key` may be reached by `audience`.
    pub fn reaches(&self, key: &str, audience: Audience) -> bool {
        audience == Audience::Internal || !self.private.contains(key)
    }

    fn host_route(&self, host: &str, audience: Audience) -> Option<&str> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let visible = |name: &&String| self.reaches(name, audience);
        if let Some((_, name)) = self
            .hosts
            .iter()
            .find(|(h, name)| *h == host && visible(&name))
        {
            return Some(name);
        }
        self.hosts.iter().find_map(|(pattern, name)| {
            let suffix = pattern.strip_prefix("*.")?;
            (host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                && visible(&name))
            .then_some(name.as_str())
        })
    }
}

/// Who is asking: the internet (the public listener: private functions do not exist there)
/// or the platform's own side (local mode, in-cluster callers on the admin listener).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Public,
    Internal,
}

/// Routes a request of the platform's own side ([`Audience::Internal`]).
pub fn route<'a>(table: &'a RouteTable, host: Option<&str>, path: &'a str) -> Route<'a> {
    route_for(table, host, path, Audience::Internal)
}

/// Routes a request. Host routes win over everything (a function owning a host owns all its
/// paths), then the platform's own paths, then `/function/{name}`, then path prefixes. The
/// name a route carries is the function's registry key. For [`Audience::Public`], private
/// functions' hosts and prefixes do not exist (requests fall through as if nobody claimed
/// them); their `/function/...` routes are refused by the caller with the same 404 as an
/// unknown name.
pub fn route_for<'a>(
    table: &'a RouteTable,
    host: Option<&str>,
    path: &'a str,
    audience: Audience,
) -> Route<'a> {
    if let Some(host) = host.map(strip_port)
        && let Some(name) = table.host_route(host, audience)
    {
        return Route::Function { name, prefix: "" };
    }
    match path {
        "/healthz" => return Route::Health,
        "/readyz" => return Route::Ready,
        "/metrics" => return Route::Metrics,
        _ => {}
    }
    if path == "/system" || path.starts_with("/system/") {
        return Route::System;
    }
    if path == "/ui" || path.starts_with("/ui/") {
        return Route::Ui;
    }
    if let Some(function) = crate::lambda_api::function_segment(path) {
        return Route::LambdaInvoke { function };
    }
    let key = |name: &'a str| table.key_of(name);
    if let Some((name, prefix)) = named(path, "/function/") {
        return Route::Function {
            name: key(name),
            prefix,
        };
    }
    if let Some((name, prefix)) = named(path, "/async-function/") {
        return Route::AsyncFunction {
            name: key(name),
            prefix,
        };
    }
    if let Some((name, mount)) = named(path, "/hooks/")
        && mount.len() == path.len()
    {
        return Route::Webhook { name: key(name) };
    }
    // The one list of the platform's paths (validation refuses them as `spec.http.path`).
    if faas_api::routing::reserved_path(path).is_some() {
        return Route::NotFound;
    }
    for (prefix, name) in &table.prefixes {
        if !table.reaches(name, audience) {
            continue;
        }
        let matches = path == prefix
            || (path.starts_with(prefix.as_str())
                && (prefix.ends_with('/') || path.as_bytes().get(prefix.len()) == Some(&b'/')));
        if matches {
            return Route::Function {
                name,
                prefix: prefix.trim_end_matches('/'),
            };
        }
    }
    Route::NotFound
}

/// `(name, mount point)` of `{mount}{name}[/...]`, when the name is not empty.
fn named<'a>(path: &'a str, mount: &str) -> Option<(&'a str, &'a str)> {
    let rest = path.strip_prefix(mount)?;
    let name_len = rest.find('/').unwrap_or(rest.len());
    let name = &rest[..name_len];
    (!name.is_empty()).then(|| (name, &path[..mount.len() + name_len]))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// The path a function sees: the request path with its mount point removed, never empty.
pub fn function_path(path: &str, prefix: &str) -> String {
    let rest = path.strip_prefix(prefix).unwrap_or(path);
    if rest.is_empty() {
        "/".to_owned()
    } else if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

#[cfg(test)]
#[path = "routes_model.rs"]
mod model;

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let mut t = RouteTable {
            hosts: vec![
                ("resize.fn.example.com".into(), "resize".into()),
                ("*.tenant.example.com".into(), "tenant".into()),
            ],
            prefixes: vec![
                ("/hello".into(), "hello".into()),
                ("/hello/admin".into(), "admin".into()),
            ],
            ..RouteTable::default()
        };
        t.finish();
        t
    }

    #[test]
    fn routes_by_name_host_and_prefix() {
        let t = table();
        assert_eq!(
            route(&t, None, "/function/echo/a/b"),
            Route::Function {
                name: "echo",
                prefix: "/function/echo"
            }
        );
        assert_eq!(
            route(&t, None, "/function/echo"),
            Route::Function {
                name: "echo",
                prefix: "/function/echo"
            }
        );
        assert_eq!(route(&t, None, "/function/"), Route::NotFound);
        assert_eq!(
            route(&t, None, "/async-function/echo/a"),
            Route::AsyncFunction {
                name: "echo",
                prefix: "/async-function/echo"
            }
        );
        assert_eq!(route(&t, None, "/async-function/"), Route::NotFound);
        // A host route owns every path of its host, async calls included.
        assert_eq!(
            route(&t, Some("resize.fn.example.com"), "/async-function/echo"),
            Route::Function {
                name: "resize",
                prefix: ""
            }
        );
        assert_eq!(
            route(&t, Some("resize.fn.example.com:443"), "/x"),
            Route::Function {
                name: "resize",
                prefix: ""
            }
        );
        assert_eq!(
            route(&t, Some("RESIZE.fn.example.com."), "/metrics"),
            Route::Function {
                name: "resize",
                prefix: ""
            }
        );
        assert_eq!(
            route(&t, Some("a.tenant.example.com"), "/"),
            Route::Function {
                name: "tenant",
                prefix: ""
            }
        );
        assert_eq!(route(&t, Some("tenant.example.com"), "/"), Route::NotFound);
        assert_eq!(
            route(&t, None, "/hello"),
            Route::Function {
                name: "hello",
                prefix: "/hello"
            }
        );
        assert_eq!(
            route(&t, None, "/hello/x"),
            Route::Function {
                name: "hello",
                prefix: "/hello"
            }
        );
        assert_eq!(
            route(&t, None, "/hello/admin/x"),
            Route::Function {
                name: "admin",
                prefix: "/hello/admin"
            }
        );
        assert_eq!(route(&t, None, "/helloworld"), Route::NotFound);
        assert_eq!(route(&t, None, "/system/functions"), Route::System);
        assert_eq!(route(&t, None, "/ui/"), Route::Ui);
        assert_eq!(route(&t, None, "/ui/runs/x"), Route::Ui);
        assert_eq!(route(&t, None, "/uix"), Route::NotFound);
        assert_eq!(route(&t, None, "/healthz"), Route::Health);
        assert_eq!(route(&t, None, "/metrics"), Route::Metrics);
    }

    #[test]
    fn short_names_lead_to_their_owner_and_private_functions_hide_from_the_public() {
        let mut t = RouteTable {
            hosts: vec![("intra.example.com".into(), "intra.ops".into())],
            prefixes: vec![("/ops".into(), "intra.ops".into())],
            names: [("orders".to_owned(), "orders.shop".to_owned())].into(),
            private: ["intra.ops".to_owned()].into(),
        };
        t.finish();
        let public = |host, path| route_for(&t, host, path, Audience::Public);
        assert_eq!(
            route(&t, None, "/function/orders/x"),
            Route::Function {
                name: "orders.shop",
                prefix: "/function/orders"
            }
        );
        assert_eq!(
            route(&t, None, "/function/orders.billing/x"),
            Route::Function {
                name: "orders.billing",
                prefix: "/function/orders.billing"
            }
        );
        assert_eq!(
            route(&t, None, "/async-function/orders"),
            Route::AsyncFunction {
                name: "orders.shop",
                prefix: "/async-function/orders"
            }
        );
        // Internal callers reach the private function by its host and prefix...
        assert_eq!(
            route(&t, Some("intra.example.com"), "/x"),
            Route::Function {
                name: "intra.ops",
                prefix: ""
            }
        );
        assert_eq!(
            route(&t, None, "/ops/x"),
            Route::Function {
                name: "intra.ops",
                prefix: "/ops"
            }
        );
        // ...the public does not: as if nobody had claimed them.
        assert_eq!(public(Some("intra.example.com"), "/x"), Route::NotFound);
        assert_eq!(public(None, "/ops/x"), Route::NotFound);
        assert!(!t.reaches("intra.ops", Audience::Public));
        assert!(t.reaches("orders.shop", Audience::Public));
        // The platform's paths are never a function's prefix, `/ui` included.
        let mut root = RouteTable {
            prefixes: vec![("/".into(), "all".into())],
            ..RouteTable::default()
        };
        root.finish();
        for reserved in ["/ui", "/function", "/async-function", "/system"] {
            assert_ne!(
                route(&root, None, reserved),
                Route::Function {
                    name: "all",
                    prefix: ""
                },
                "{reserved}"
            );
        }
    }

    #[test]
    fn functions_see_paths_relative_to_their_mount() {
        assert_eq!(
            function_path("/function/echo/a/b", "/function/echo"),
            "/a/b"
        );
        assert_eq!(function_path("/function/echo", "/function/echo"), "/");
        assert_eq!(function_path("/x/y", ""), "/x/y");
    }
}
