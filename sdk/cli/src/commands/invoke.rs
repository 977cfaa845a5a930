//! `faas invoke NAME`: one call of a function, its answer's body on stdout.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use bytes::Bytes;

use crate::backend::Backend;
use crate::client::Reply;

pub async fn run(backend: &dyn Backend, name: &str, call: Call) -> anyhow::Result<()> {
    let reply = backend.call(name, &call).await?;
    print_reply(name, &reply, call.include)
}

/// What `faas invoke` sends.
pub struct Call {
    pub method: http::Method,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Path after the function's route, starting with `/` (or empty for the route itself).
    pub path: String,
    pub include: bool,
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
        })
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

/// A `-d` argument: text, `@file`, or `-` for stdin.
pub fn read_data(data: Option<&str>) -> anyhow::Result<Option<Bytes>> {
    Ok(Some(match data {
        None => return Ok(None),
        Some("-") => {
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
