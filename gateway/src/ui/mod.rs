//! The dashboard under `/ui/`: functions, one function, runs, one run, async calls. Server-rendered HTML
//! (maud escapes every interpolation: names, outputs and log lines are user data) from the same
//! data the `/system/` JSON endpoints serve, plus a little plain JavaScript (`/ui/app.js`) that
//! re-renders the live part of the page every 2 s and posts Run now / Run again / Cancel /
//! Suspend / Resume to `/system/` (local mode; a cluster's dashboard shows no actions).
//!
//! Served where the management API is: local mode, to loopback clients unless
//! `--allow-remote-management`. Runtime pods (pool, sidecar) have no dashboard: in a cluster
//! it belongs on the gateway's internal admin listener, never the public one.

mod charts;
mod pages;

use std::sync::Arc;

use faas_runtime::ResponseBody;
use http::{HeaderValue, Request, Response, StatusCode};
use maud::{DOCTYPE, Markup, html};

use crate::platform::Platform;

const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// The header asking for only the live part of a page (the refresh script sends it).
const FRAGMENT_HEADER: &str = "x-faas-fragment";

/// Serves `/ui` and everything under it.
pub async fn handle<B>(platform: &Arc<Platform>, request: &Request<B>) -> Response<ResponseBody> {
    let path = request.uri().path();
    let rest = path
        .strip_prefix("/ui")
        .unwrap_or_default()
        .trim_matches('/')
        .to_owned();
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let query = request.uri().query().unwrap_or_default();
    let fragment = request.headers().contains_key(FRAGMENT_HEADER);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    // The run page's log follows below its live part, never replaced by a refresh.
    let mut trailer = None;
    let (status, title, live, fixed) = match segments.as_slice() {
        ["app.js"] => return asset("text/javascript; charset=utf-8", APP_JS),
        ["app.css"] => return asset("text/css; charset=utf-8", APP_CSS),
        [] | ["functions"] => (
            StatusCode::OK,
            "Functions".to_owned(),
            pages::functions(platform).await,
            None,
        ),
        ["functions", name] => match platform.registry.get(name) {
            Some(_) => (
                StatusCode::OK,
                (*name).to_owned(),
                pages::function(platform, name).await,
                Some(pages::run_now_form(platform, name)),
            ),
            None => not_found(&format!("function {name}")),
        },
        ["runs"] => (
            StatusCode::OK,
            "Runs".to_owned(),
            pages::runs(platform, query).await,
            None,
        ),
        ["async"] => (
            StatusCode::OK,
            "Async calls".to_owned(),
            pages::async_calls(platform).await,
            None,
        ),
        ["runs", id] => {
            match pages::run(platform, id, query_value(query, "namespace").as_deref()).await {
                Some(markup) => {
                    trailer = pages::run_log_section(platform, id);
                    (StatusCode::OK, format!("Run {id}"), markup, None)
                }
                None => not_found(&format!("run {id}")),
            }
        }
        _ => not_found(path),
    };
    let body = if fragment {
        live
    } else {
        layout(&title, fixed, live, trailer)
    };
    let mut response = Response::new(faas_runtime::full_body(body.into_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    // Scripts and styles from this origin only: no inline script can run, so an escaped
    // string that somehow were not would still be inert.
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    response
}

fn not_found(what: &str) -> (StatusCode, String, Markup, Option<Markup>) {
    (
        StatusCode::NOT_FOUND,
        "Not found".to_owned(),
        html! { p.empty { (what) " does not exist. " a href="/ui/" { "All functions" } } },
        None,
    )
}

fn asset(content_type: &'static str, text: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(faas_runtime::full_body(text));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=60"),
    );
    response
}

/// The page: navigation, the part that does not refresh (forms), the live part, and what
/// follows it without refreshing (a run's log).
fn layout(title: &str, fixed: Option<Markup>, live: Markup, trailer: Option<Markup>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · faas" }
                // No favicon request (a 404 in every page's console otherwise).
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/ui/app.css";
                script src="/ui/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/ui/" { "faas" }
                    nav { a href="/ui/" { "Functions" } a href="/ui/runs" { "Runs" } a href="/ui/async" { "Async calls" } }
                    span.updated id="updated" {}
                }
                h1 { (title) }
                @if let Some(fixed) = fixed { section.fixed { (fixed) } }
                main id="live" { (live) }
                @if let Some(trailer) = trailer { section.trailer { (trailer) } }
            }
        }
    }
}

/// `%xx` sequences of a path segment decoded (names are ASCII; anything odd stays literal).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = segment.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in a query string (`+` and `%xx` decoded).
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(&v.replace('+', " ")))
    })
}
