//! The data commands: deploy, invoke, list, describe, delete.

use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use bytes::Bytes;

use crate::Output;
use crate::client::{Gateway, multipart};

/// `faas validate -f FILE`: the checks the controller and `faas deploy` make, offline.
pub fn validate(file: &Path) -> anyhow::Result<()> {
    let functions = faas_api::manifest::load_file(file)?;
    for function in &functions {
        let kind = if function.spec.runtime.wasm.is_some() {
            "wasm".to_owned()
        } else {
            function
                .spec
                .runtime
                .container
                .as_ref()
                .map(|c| format!("container, mode {:?}", c.mode).to_lowercase())
                .unwrap_or_default()
        };
        println!(
            "{}: valid ({kind})",
            function.metadata.name.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

pub async fn deploy(
    gateway: &str,
    manifests: &crate::flags::Manifests,
    build: bool,
    output: Output,
) -> anyhow::Result<()> {
    // Validated already (crate::flags::manifests): a broken manifest is refused before
    // anything is sent.
    let functions = manifests.functions.clone();
    let base = manifests.base.clone();
    if build && let Some(file) = &manifests.file {
        faas_gateway::local::build_all(file);
    }
    let gw = Gateway::new(gateway)?;
    for mut function in functions {
        let name = function.metadata.name.clone().unwrap_or_default();
        if let Some(container) = function.spec.runtime.container.as_mut() {
            // The local platform runs the command on this machine, from the manifest's
            // folder: say which folder, since the server cannot know where the file was.
            let dir = base.join(container.working_dir.as_deref().unwrap_or("."));
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            container.working_dir = Some(dir.to_string_lossy().into_owned());
            let mode = container.mode;
            let manifest = serde_yaml::to_string(&function).context("serializing the manifest")?;
            eprintln!("faas: deploying {name} (container, mode {mode:?}) to {gateway}");
            let reply = gw
                .send(
                    http::Method::PUT,
                    &format!("/system/functions/{name}"),
                    &[("content-type".into(), "application/yaml".into())],
                    Bytes::from(manifest),
                )
                .await?;
            report_deploy(gateway, &name, &reply, output)?;
            continue;
        }
        let artifact_path =
            faas_gateway::local::artifact_path(&function, &base).map_err(anyhow::Error::msg)?;
        let artifact = std::fs::read(&artifact_path).with_context(|| {
            format!(
                "spec.runtime.wasm.source: cannot read {} (build it first, or drop --no-build)",
                artifact_path.display()
            )
        })?;
        // Send just this function's document.
        let manifest = serde_yaml::to_string(&function).context("serializing the manifest")?;
        let (content_type, body) = multipart(&[
            ("manifest", "function.yaml", manifest.as_bytes()),
            ("artifact", "artifact.wasm", &artifact),
        ]);
        eprintln!(
            "faas: deploying {name} ({} bytes) to {gateway}",
            artifact.len()
        );
        let reply = gw
            .send(
                http::Method::PUT,
                &format!("/system/functions/{name}"),
                &[("content-type".into(), content_type)],
                body,
            )
            .await?;
        report_deploy(gateway, &name, &reply, output)?;
    }
    Ok(())
}

fn report_deploy(
    gateway: &str,
    name: &str,
    reply: &crate::client::Reply,
    output: Output,
) -> anyhow::Result<()> {
    if !reply.status.is_success() {
        bail!(
            "deploy of {name} failed ({}): {}",
            reply.status,
            reply.error_message()
        );
    }
    let summary: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    match output {
        Output::Table => {
            let verb = if reply.status == http::StatusCode::CREATED {
                "created"
            } else {
                "updated"
            };
            println!(
                "{name} {verb}: {}/function/{name}",
                gateway.trim_end_matches('/')
            );
        }
        other => print_value(&summary, other)?,
    }
    Ok(())
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

/// What `faas invoke` takes from the command line.
#[derive(clap::Args)]
pub struct CallArgs {
    /// Request body: text, @file, or - for stdin.
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    /// Request header K:V (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// HTTP method (default GET, or POST with -d).
    #[arg(short = 'X', long = "method")]
    method: Option<String>,
    /// Path after /function/NAME.
    #[arg(long, default_value = "/")]
    path: String,
    /// Print the status line and headers too.
    #[arg(short = 'i', long)]
    include: bool,
}

impl CallArgs {
    /// The call: `-d` read (text, @file, -), method defaulted, headers split, path rooted.
    pub fn parse(self) -> anyhow::Result<Call> {
        Call::parse(
            self.data,
            &self.headers,
            self.method,
            &self.path,
            self.include,
        )
    }
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

pub async fn invoke(gateway: &str, name: &str, call: Call) -> anyhow::Result<()> {
    let gw = Gateway::new(gateway)?;
    let reply = gw
        .send(
            call.method.clone(),
            &format!("/function/{name}{}", call.path),
            &call.headers,
            call.body.clone(),
        )
        .await?;
    print_reply(name, &reply, call.include)
}

/// The body on stdout; with `-i` the status and headers on stderr first. A failure status
/// is an error naming the call id.
pub fn print_reply(name: &str, reply: &crate::client::Reply, include: bool) -> anyhow::Result<()> {
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
    std::io::stdout()
        .write_all(&reply.body)
        .context("writing output")?;
    Ok(())
}

pub async fn list(gateway: &str, output: Output) -> anyhow::Result<()> {
    let value = Gateway::new(gateway)?.get_json("/system/functions").await?;
    if output != Output::Table {
        return print_value(&value, output);
    }
    let rows = value.as_array().cloned().unwrap_or_default();
    println!(
        "{:<24} {:<6} {:<11} {:<8} {:<8} {:<12} ROUTE",
        "NAME", "READY", "KIND", "TIMEOUT", "MEMORY", "SHA256"
    );
    for row in rows {
        let s = |k: &str| {
            row.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_owned()
        };
        let ready = row.get("ready").and_then(|v| v.as_bool()).unwrap_or(false);
        let memory = row
            .get("memoryBytes")
            .and_then(|v| v.as_u64())
            .map(faas_api::limits::format_bytes)
            .unwrap_or_default();
        let route = row
            .get("routes")
            .and_then(|r| r.get(0))
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_owned();
        let sha: String = s("sha256").chars().take(12).collect();
        println!(
            "{:<24} {:<6} {:<11} {:<8} {:<8} {:<12} {}",
            s("name"),
            if ready { "True" } else { "False" },
            s("kind"),
            s("timeout"),
            memory,
            sha,
            route
        );
        if !ready {
            println!("  reason: {}", s("reason"));
        }
    }
    Ok(())
}

pub async fn describe(gateway: &str, name: &str, output: Output) -> anyhow::Result<()> {
    let value = Gateway::new(gateway)?
        .get_json(&format!("/system/functions/{name}"))
        .await?;
    print_value(
        &value,
        if output == Output::Table {
            Output::Yaml
        } else {
            output
        },
    )
}

pub async fn delete(gateway: &str, name: &str) -> anyhow::Result<()> {
    let reply = Gateway::new(gateway)?
        .send(
            http::Method::DELETE,
            &format!("/system/functions/{name}"),
            &[],
            Bytes::new(),
        )
        .await?;
    if !reply.status.is_success() {
        bail!("{}", reply.error_message());
    }
    println!("{name} deleted");
    Ok(())
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

pub fn print_value(value: &serde_json::Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json | Output::Table => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => print!("{}", serde_yaml::to_string(value)?),
    }
    Ok(())
}
