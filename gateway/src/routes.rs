//! Request routing, as a pure function of (host, path) and the route table.

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

/// The host and path-prefix routes of registered functions.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    /// Lowercase host (no port) -> function. `*.example.com` entries match subdomains.
    pub hosts: Vec<(String, String)>,
    /// Path prefix -> function, longest first.
    pub prefixes: Vec<(String, String)>,
}

impl RouteTable {
    /// Sorts prefixes so the longest match wins.
    pub fn finish(&mut self) {
        self.prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        self.hosts.sort();
    }

    fn host_route(&self, host: &str) -> Option<&str> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some((_, name)) = self.hosts.iter().find(|(h, _)| *h == host) {
            return Some(name);
        }
        self.hosts.iter().find_map(|(pattern, name)| {
            let suffix = pattern.strip_prefix("*.")?;
            (host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.')
                .then_some(name.as_str())
        })
    }
}

/// Routes a request. Host routes win over everything (a function owning a host owns all its
/// paths), then the platform's own paths, then `/function/{name}`, then path prefixes.
pub fn route<'a>(table: &'a RouteTable, host: Option<&str>, path: &'a str) -> Route<'a> {
    if let Some(host) = host.map(strip_port)
        && let Some(name) = table.host_route(host)
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
    if let Some((name, prefix)) = named(path, "/function/") {
        return Route::Function { name, prefix };
    }
    if let Some((name, prefix)) = named(path, "/async-function/") {
        return Route::AsyncFunction { name, prefix };
    }
    if path.starts_with("/function/") || path.starts_with("/async-function/") {
        return Route::NotFound;
    }
    for (prefix, name) in &table.prefixes {
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
    fn functions_see_paths_relative_to_their_mount() {
        assert_eq!(
            function_path("/function/echo/a/b", "/function/echo"),
            "/a/b"
        );
        assert_eq!(function_path("/function/echo", "/function/echo"), "/");
        assert_eq!(function_path("/x/y", ""), "/x/y");
    }
}
