//! `faas invoke NAME`: one call of a function, its answer's body on stdout; with `--async`,
//! the call queued and its id on stdout.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use bytes::Bytes;

use crate::backend::Backend;
use crate::client::Reply;
use crate::stdout::outln;

pub async fn run(backend: &dyn Backend, name: &str, call: Call) -> anyhow::Result<()> {
    let reply = backend.call(name, &call).await?;
    if call.asynchronous && reply.status == http::StatusCode::ACCEPTED {
        return print_queued(name, &reply);
    }
    print_reply(name, &reply, call.include)
}

/// The id of a queued call on stdout (for scripts); on stderr, what happens next and where
/// to look.
fn print_queued(name: &str, reply: &Reply) -> anyhow::Result<()> {
    let accepted: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let Some(id) = accepted["callId"].as_str() else {
        bail!(
            "{name}: the platform accepted the call without naming it: {}",
            String::from_utf8_lossy(&reply.body)
        );
    };
    eprintln!(
        "call {id} queued: {name} runs it shortly, retried on failure (the result goes to \
         --callback, if given); its log lines carry the id: faas logs {name} | grep {id}"
    );
    outln!("{id}")
}

/// What `faas invoke` sends.
pub struct Call {
    pub method: http::Method,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Path after the function's route, starting with `/` (or empty for the route itself).
    pub path: String,
    pub include: bool,
    /// Queued (`/async-function/...`) rather than answered.
    pub asynchronous: bool,
}

impl Call {
    /// From the command line: `-d` (text, @file, -), `-H K:V`, `-X`, `--path`, `-i`.
    pub fn parse(
        data: Option<String>,
        headers: &[String],
        method: Option<String>,
        path: &str,
        include: bool,
    ) -> anyhow::Result<Call> {
        let body = read_data(data.as_deref())?.unwrap_or_default();
        let method = match method {
            Some(m) => http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .with_context(|| format!("invalid method {m:?}"))?,
            None if data.is_some() => http::Method::POST,
            None => http::Method::GET,
        };
        let mut parsed = Vec::new();
        for header in headers {
            let (k, v) = header
                .split_once(':')
                .with_context(|| format!("-H {header:?}: expected NAME:VALUE"))?;
            parsed.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let path = match path {
            "/" | "" => String::new(),
            p if p.starts_with('/') => p.to_owned(),
            p => format!("/{p}"),
        };
        Ok(Call {
            method,
            headers: parsed,
            body,
            path,
            include,
            asynchronous: false,
        })
    }
}

impl Call {
    /// When the body is an event `faas events` prints (or AWS sends), the call that delivers
    /// it as the platform would; the user's own headers stay, after the event's.
    pub fn deliver_events(&mut self) {
        let Some(delivery) = super::events::delivery(&self.body) else {
            return;
        };
        eprintln!("faas: -d is {} (--raw sends it as it is)", delivery.what);
        self.method = delivery.method;
        self.path = delivery.path;
        self.body = delivery.body;
        let own = std::mem::replace(&mut self.headers, delivery.headers);
        self.headers.extend(own);
    }
}

/// The body on stdout; with `-i` the status and headers on stderr first. A failure status
/// is an error naming the call id.
pub fn print_reply(name: &str, reply: &Reply, include: bool) -> anyhow::Result<()> {
    if include {
        eprintln!("{}", reply.status);
        for (k, v) in &reply.headers {
            eprintln!("{k}: {}", v.to_str().unwrap_or("<binary>"));
        }
        eprintln!();
    }
    if !reply.status.is_success() {
        let call = reply
            .headers
            .get("x-call-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        bail!(
            "{name} answered {} (call {call}): {}",
            reply.status,
            reply.error_message()
        );
    }
    crate::stdout::write_bytes(&reply.body)
}

/// A `-d` argument: text, `@file`, or `-` (or curl's `@-`) for stdin.
pub fn read_data(data: Option<&str>) -> anyhow::Result<Option<Bytes>> {
    Ok(Some(match data {
        None => return Ok(None),
        Some("-" | "@-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            Bytes::from(buf)
        }
        Some(d) if d.starts_with('@') => {
            Bytes::from(std::fs::read(&d[1..]).with_context(|| format!("reading {}", &d[1..]))?)
        }
        Some(d) => Bytes::from(d.to_owned()),
    }))
}
