//! The local platform as a [`Backend`]: the management API (`/system/...`) of the gateway that
//! `faas up` runs, over HTTP. Names and filters go into the URL percent-encoded, so a value
//! with reserved characters reaches the gateway as one segment or one value.

use std::path::Path;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use faas_api::{Condition, Function, FunctionRun};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::{
    Backend, DeadLetters, DeployOptions, Deployed, Description, Fetched, FunctionRow, LogOptions,
    LogPiece, RunFilter, RunRequest, typed,
};
use crate::client::{Gateway, Reply, multipart};
use crate::commands::invoke::Call;
use crate::flags::Manifests;

/// What stays as it is in a path segment or a query value: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` as one path segment or one query value.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// A local platform's gateway.
pub struct Local {
    /// Its base URL, without a trailing `/`.
    base: String,
    gateway: Gateway,
}

impl Local {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            gateway: Gateway::new(base)?,
        })
    }

    fn function_path(name: &str) -> String {
        format!("/system/functions/{}", encode(name))
    }

    /// Sends a manifest (and its artifact) to `PUT /system/functions/NAME`.
    async fn put(
        &self,
        name: &str,
        replace: bool,
        content_type: String,
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let mut path = Self::function_path(name);
        if replace {
            path.push_str("?replace=true");
        }
        self.gateway
            .send(
                http::Method::PUT,
                &path,
                &[("content-type".into(), content_type)],
                body,
            )
            .await
    }

    async fn deploy_one(
        &self,
        mut function: Function,
        base: &Path,
        options: &DeployOptions,
    ) -> anyhow::Result<Fetched<Deployed>> {
        let name = function.metadata.name.clone().unwrap_or_default();
        let reply = if let Some(container) = function.spec.runtime.container.as_mut() {
            // The local platform runs the command on this machine, from the manifest's
            // folder: say which folder, since the server cannot know where the file was.
            let dir = base.join(container.working_dir.as_deref().unwrap_or("."));
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            container.working_dir = Some(dir.to_string_lossy().into_owned());
            let mode = container.mode;
            let manifest = serde_yaml::to_string(&function).context("serializing the manifest")?;
            eprintln!(
                "faas: deploying {name} (container, mode {mode:?}) to {}",
                self.base
            );
            self.put(
                &name,
                options.replace,
                "application/yaml".into(),
                Bytes::from(manifest),
            )
            .await?
        } else {
            let artifact_path =
                faas_gateway::artifact::local_path(&function, base).map_err(anyhow::Error::msg)?;
            let artifact = std::fs::read(&artifact_path).with_context(|| {
                format!(
                    "spec.runtime.wasm.source: cannot read {}{}",
                    artifact_path.display(),
                    if options.build {
                        " (build it first)"
                    } else {
                        " (build it first, or drop --no-build)"
                    }
                )
            })?;
            // Send just this function's document.
            let manifest = serde_yaml::to_string(&function).context("serializing the manifest")?;
            let (content_type, body) = multipart(&[
                ("manifest", "function.yaml", manifest.as_bytes()),
                ("artifact", "artifact.wasm", &artifact),
            ]);
            eprintln!(
                "faas: deploying {name} ({} bytes) to {}",
                artifact.len(),
                self.base
            );
            self.put(&name, options.replace, content_type, body).await?
        };
        if !reply.status.is_success() {
            bail!(
                "deploy of {name} failed ({}): {}",
                reply.status,
                reply.error_message()
            );
        }
        Ok(Fetched {
            value: Deployed::Served {
                created: reply.status == http::StatusCode::CREATED,
                url: format!("{}/function/{name}", self.base),
            },
            raw: serde_json::from_slice(&reply.body).unwrap_or_default(),
        })
    }

    /// A row of `faas list` from the gateway's summary of a function.
    fn row(&self, summary: &Value) -> FunctionRow {
        let text = |key: &str| summary.get(key).and_then(Value::as_str).map(str::to_owned);
        let state = state_of(summary);
        FunctionRow {
            name: text("name").unwrap_or_else(|| "-".into()),
            kind: text("kind"),
            replicas: None,
            timeout: text("timeout"),
            memory: summary
                .get("memoryBytes")
                .and_then(Value::as_u64)
                .map(faas_api::limits::format_bytes),
            sha256: text("sha256").map(|s| s.chars().take(12).collect()),
            url: summary
                .pointer("/routes/0")
                .and_then(Value::as_str)
                .map(|route| self.route_url(route)),
            reason: (state != "Ready").then(|| reasons_of(summary)).flatten(),
            state,
        }
    }

    /// A route as a URL to call (`/function/x` on this gateway; host routes are URLs already).
    fn route_url(&self, route: &str) -> String {
        if route.starts_with('/') {
            format!("{}{route}", self.base)
        } else {
            route.to_owned()
        }
    }
}

/// One line of `faas logs` from the gateway's ring: time, call id, stream, text.
fn log_line(line: &Value) -> String {
    let text = |key: &str| line[key].as_str().unwrap_or_default();
    let call = line["callId"].as_str().unwrap_or("-");
    format!(
        "{} {call} {}: {}",
        text("time"),
        text("stream"),
        text("line")
    )
}

/// `Ready`, `Degraded` or `NotReady` from a summary (a gateway older than `state` says only
/// `ready`).
fn state_of(summary: &Value) -> String {
    match summary.get("state").and_then(Value::as_str) {
        Some(state) => state.to_owned(),
        None if summary.get("ready").and_then(Value::as_bool) == Some(true) => "Ready".into(),
        None => "NotReady".into(),
    }
}

/// Every reason of a summary as one line (`reason` from a gateway older than `reasons`).
fn reasons_of(summary: &Value) -> Option<String> {
    let reasons: Vec<&str> = summary
        .get("reasons")
        .and_then(Value::as_array)
        .map(|all| all.iter().filter_map(|r| r["message"].as_str()).collect())
        .unwrap_or_default();
    if reasons.is_empty() {
        return summary
            .get("reason")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    Some(reasons.join("; "))
}

/// The reasons of a summary with code `code`, as one condition message.
fn reasons_with(summary: &Value, codes: &[&str]) -> Option<(String, String)> {
    let matching: Vec<&Value> = summary
        .get("reasons")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter(|r| r["reason"].as_str().is_some_and(|c| codes.contains(&c)))
                .collect()
        })
        .unwrap_or_default();
    let first = matching.first()?;
    Some((
        first["reason"].as_str().unwrap_or_default().to_owned(),
        matching
            .iter()
            .filter_map(|r| r["message"].as_str())
            .collect::<Vec<_>>()
            .join("; "),
    ))
}

/// The gateway's summary of a function (`ready`, `state`, `reasons`, `kind`) as a status
/// with `Ready` and `Degraded` conditions, so that one description serves both platforms.
fn summary_status(function: &mut Function, summary: &Value) {
    let ready = summary
        .get("ready")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let status = function.status.get_or_insert_with(Default::default);
    status.runtime = summary
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let not_ready = reasons_with(summary, &["NotLoaded", "NotServing"]);
    let degraded = reasons_with(
        summary,
        &["UpdateFailed", "BuildFailed", "Restarting", "TriggerError"],
    );
    status.conditions = vec![
        Condition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            reason: not_ready.as_ref().map(|(code, _)| code.clone()),
            message: match not_ready {
                Some((_, message)) => Some(message),
                None => summary
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
            ..Default::default()
        },
        Condition {
            type_: "Degraded".into(),
            status: if degraded.is_some() { "True" } else { "False" }.into(),
            reason: degraded.as_ref().map(|(code, _)| code.clone()),
            message: degraded.map(|(_, message)| message),
            ..Default::default()
        },
    ];
}

impl Backend for Local {
    fn scope(&self) -> String {
        format!(" at {}", self.base)
    }

    fn list(&self) -> BoxFuture<'_, anyhow::Result<Fetched<Vec<FunctionRow>>>> {
        async move {
            let raw = self.gateway.get_json("/system/functions").await?;
            let rows = raw
                .as_array()
                .map(|all| all.iter().map(|s| self.row(s)).collect())
                .unwrap_or_default();
            Ok(Fetched { value: rows, raw })
        }
        .boxed()
    }

    fn describe<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<Description>>> {
        async move {
            let raw = self.gateway.get_json(&Self::function_path(name)).await?;
            let mut function: Function = typed(&raw["function"])?;
            summary_status(&mut function, &raw["summary"]);
            let routes = raw["summary"]["routes"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .filter_map(Value::as_str)
                        .map(|r| self.route_url(r))
                        .collect()
                })
                .unwrap_or_default();
            let recent_runs = match raw.get("recentRuns") {
                Some(runs) if !runs.is_null() => typed(runs)?,
                _ => Vec::new(),
            };
            Ok(Fetched {
                value: Description {
                    function,
                    namespace: None,
                    routes,
                    recent_runs,
                    events: Vec::new(),
                },
                raw,
            })
        }
        .boxed()
    }

    fn function<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Function>> {
        async move {
            let raw = self.gateway.get_json(&Self::function_path(name)).await?;
            typed(&raw["function"])
        }
        .boxed()
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Option<&'static str>>> {
        async move {
            let reply = self
                .gateway
                .send(
                    http::Method::DELETE,
                    &Self::function_path(name),
                    &[],
                    Bytes::new(),
                )
                .await?;
            if !reply.status.is_success() {
                bail!("{}", reply.error_message());
            }
            Ok(None)
        }
        .boxed()
    }

    fn check(&self, _: &Manifests) -> anyhow::Result<()> {
        // `faas_api::validate` is all a local platform asks (crate::flags::manifests ran it).
        Ok(())
    }

    fn deploy<'a>(
        &'a self,
        function: Function,
        base: &'a Path,
        options: &'a DeployOptions,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<Deployed>>> {
        self.deploy_one(function, base, options).boxed()
    }

    fn call<'a>(&'a self, name: &'a str, call: &'a Call) -> BoxFuture<'a, anyhow::Result<Reply>> {
        async move {
            self.gateway
                .send(
                    call.method.clone(),
                    &format!(
                        "/{}/{}{}",
                        if call.asynchronous {
                            "async-function"
                        } else {
                            "function"
                        },
                        encode(name),
                        call.path
                    ),
                    &call.headers,
                    call.body.clone(),
                )
                .await
        }
        .boxed()
    }

    fn runs<'a>(
        &'a self,
        filter: &'a RunFilter<'a>,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<Vec<FunctionRun>>>> {
        async move {
            let mut path = match filter.function {
                Some(name) => format!("{}/runs?limit={}", Self::function_path(name), filter.limit),
                None => format!("/system/runs?limit={}", filter.limit),
            };
            if let Some(schedule) = filter.schedule {
                path.push_str(&format!("&schedule={}", encode(schedule)));
            }
            if let Some(phase) = filter.phase {
                path.push_str(&format!("&phase={}", encode(phase)));
            }
            let raw = self.gateway.get_json(&path).await?;
            Ok(Fetched {
                value: typed(&raw)?,
                raw,
            })
        }
        .boxed()
    }

    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Fetched<FunctionRun>>> {
        async move {
            let raw = self
                .gateway
                .get_json(&format!("/system/runs/{}", encode(id)))
                .await?;
            Ok(Fetched {
                value: typed(&raw)?,
                raw,
            })
        }
        .boxed()
    }

    fn start_run<'a>(
        &'a self,
        request: RunRequest<'a>,
    ) -> BoxFuture<'a, anyhow::Result<Fetched<FunctionRun>>> {
        async move {
            // The gateway runs it and answers when it is over (or at once, detached).
            let mut path = format!(
                "{}/runs?detach={}",
                Self::function_path(request.function),
                request.detach
            );
            if let Some(schedule) = request.schedule {
                path.push_str(&format!("&schedule={}", encode(schedule)));
            }
            for (name, value) in &request.options {
                path.push_str(&format!("&option={}", encode(&format!("{name}={value}"))));
            }
            let reply = self
                .gateway
                .send(
                    http::Method::POST,
                    &path,
                    &[],
                    request.payload.unwrap_or_default(),
                )
                .await?;
            if !reply.status.is_success() {
                bail!("{}", reply.error_message());
            }
            let raw: Value = serde_json::from_slice(&reply.body)
                .context("the gateway answered with invalid JSON")?;
            Ok(Fetched {
                value: typed(&raw)?,
                raw,
            })
        }
        .boxed()
    }

    fn cancel_run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        async move {
            self.gateway
                .post_action(&format!("/system/runs/{}/cancel", encode(id)))
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn dead_letters(&self) -> BoxFuture<'_, anyhow::Result<Fetched<Vec<serde_json::Value>>>> {
        async move {
            let raw = self.gateway.get_json("/system/async").await?;
            let letters = raw["deadLetters"].as_array().cloned().unwrap_or_default();
            Ok(Fetched {
                raw: serde_json::Value::Array(letters.clone()),
                value: letters,
            })
        }
        .boxed()
    }

    fn settle_dead_letters<'a>(
        &'a self,
        replay: bool,
        which: &'a DeadLetters<'a>,
    ) -> BoxFuture<'a, anyhow::Result<u64>> {
        async move {
            let mut query = Vec::new();
            if let Some(id) = which.call_id {
                query.push(format!("callId={}", encode(id)));
            }
            if let Some(function) = which.function {
                query.push(format!("function={}", encode(function)));
            }
            let action = if replay { "replay" } else { "discard" };
            let answer = self
                .gateway
                .post_action(&format!(
                    "/system/async/dead-letters/{action}?{}",
                    query.join("&")
                ))
                .await?;
            Ok(answer[if replay { "replayed" } else { "discarded" }]
                .as_u64()
                .unwrap_or(0))
        }
        .boxed()
    }

    fn redrive_sqs<'a>(
        &'a self,
        name: &'a str,
        queue: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<serde_json::Value>>> {
        async move {
            let query = queue.map_or(String::new(), |q| format!("?queue={}", encode(q)));
            let answer = self
                .gateway
                .post_action(&format!(
                    "/system/functions/{}/triggers/sqs/redrive{query}",
                    encode(name)
                ))
                .await?;
            Ok(answer["queues"].as_array().cloned().unwrap_or_default())
        }
        .boxed()
    }

    fn run_log<'a>(&'a self, id: &'a str, offset: u64) -> BoxFuture<'a, anyhow::Result<LogPiece>> {
        async move {
            let raw = self
                .gateway
                .get_json(&format!("/system/runs/{}/log?offset={offset}", encode(id)))
                .await?;
            let piece: LogPiece = LogPiece {
                text: raw["text"].as_str().unwrap_or_default().to_owned(),
                next: raw["next"].as_u64().unwrap_or(offset),
                done: raw["done"].as_bool().unwrap_or(true),
            };
            Ok(piece)
        }
        .boxed()
    }

    fn logs<'a>(
        &'a self,
        name: &'a str,
        options: &'a LogOptions,
        print: &'a mut (dyn FnMut(String) -> anyhow::Result<()> + Send),
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        async move {
            // The gateway keeps a bounded ring of each function's recent lines; following is
            // asking again for what came after the last line seen.
            let mut query = Vec::new();
            if let Some(tail) = options.tail.filter(|t| *t >= 0) {
                query.push(format!("tail={tail}"));
            }
            if let Some(since) = options.since {
                query.push(format!("sinceSeconds={}", since.as_secs().max(1)));
            }
            loop {
                let path = format!("{}/logs?{}", Self::function_path(name), query.join("&"));
                let raw = self.gateway.get_json(&path).await?;
                for line in raw["lines"].as_array().into_iter().flatten() {
                    print(log_line(line))?;
                }
                if !options.follow {
                    return Ok(());
                }
                let next = raw["next"].as_u64().unwrap_or_default();
                query = vec![format!("after={next}")];
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn reserved_characters_are_escaped_and_unreserved_ones_kept() {
        assert_eq!(encode("hello-1.2_x~"), "hello-1.2_x~");
        assert_eq!(encode("a b/c?d&e=f#g%"), "a%20b%2Fc%3Fd%26e%3Df%23g%25");
        assert_eq!(encode("été"), "%C3%A9t%C3%A9");
    }

    /// A gateway that answers every request with `body` and hands over each request line.
    async fn stub_gateway(body: &'static str) -> (String, tokio::sync::mpsc::Receiver<String>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                tx.send(line).await.unwrap();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn names_and_filters_reach_the_gateway_percent_encoded() {
        let (url, mut lines) = stub_gateway("[]").await;
        let local = Local::new(&url).unwrap();
        let filter = RunFilter {
            function: Some("a b/c"),
            schedule: Some("x&limit=1"),
            phase: Some("Failed#"),
            limit: 5,
        };
        local.runs(&filter).await.unwrap();
        assert_eq!(
            lines.recv().await.unwrap(),
            "GET /system/functions/a%20b%2Fc/runs?limit=5&schedule=x%26limit%3D1&phase=Failed%23 HTTP/1.1"
        );
        local.run("id/../x?y").await.unwrap_err(); // `[]` is no run; the path is what counts
        assert_eq!(
            lines.recv().await.unwrap(),
            "GET /system/runs/id%2F..%2Fx%3Fy HTTP/1.1"
        );
        let start = RunRequest {
            function: "f?g",
            schedule: Some("s t"),
            payload: None,
            options: vec![("day".into(), "a&b=c".into())],
            detach: true,
        };
        local.start_run(start).await.unwrap_err();
        assert_eq!(
            lines.recv().await.unwrap(),
            "POST /system/functions/f%3Fg/runs?detach=true&schedule=s%20t&option=day%3Da%26b%3Dc HTTP/1.1"
        );
        let call = Call::parse(None, &[], None, "/p?q=1", false).unwrap();
        local.call("h#i", &call).await.unwrap();
        assert_eq!(
            lines.recv().await.unwrap(),
            "GET /function/h%23i/p?q=1 HTTP/1.1",
            "the call's own path and query go as the user wrote them"
        );
    }
}
