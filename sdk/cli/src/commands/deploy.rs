//! `faas deploy`: manifests (or flags) validated, checked for the platform, built, and each
//! function deployed; one line per function says where it is served.

use std::path::PathBuf;

use super::table::print_value;
use crate::args::Output;
use crate::backend::{Backend, DeployOptions, Deployed};
use crate::flags::{FunctionFlags, manifests};

/// What to deploy: a manifest file (or only its function `name`), or the function `name`
/// made from flags.
pub struct Source {
    pub file: Option<PathBuf>,
    pub name: Option<String>,
    pub flags: FunctionFlags,
}

pub async fn run(
    backend: &dyn Backend,
    source: &Source,
    options: &DeployOptions,
    output: Output,
) -> anyhow::Result<()> {
    // Validated first: a broken manifest is refused before anything is built or sent.
    let manifests = manifests(
        source.file.as_deref(),
        source.name.as_deref(),
        &source.flags,
        options.build,
    )?;
    backend.check(&manifests)?;
    if options.build
        && let Some(file) = &manifests.file
    {
        faas_gateway::build::build_all(file);
    }
    for function in manifests.functions.clone() {
        let name = function.metadata.name.clone().unwrap_or_default();
        let deployed = backend.deploy(function, &manifests.base, options).await?;
        match output {
            Output::Table => println!("{}", said(&name, &deployed.value)),
            other => print_value(&deployed.raw, other)?,
        }
    }
    Ok(())
}

/// The line a deploy ends with.
fn said(name: &str, deployed: &Deployed) -> String {
    match deployed {
        Deployed::Served { created, url } => {
            let verb = if *created { "created" } else { "updated" };
            format!("{name} {verb}: {url}")
        }
        Deployed::Applied { url: Some(url), .. } => format!("{name}: {url}"),
        Deployed::Applied {
            url: None,
            waited: true,
        } => format!(
            "{name}: ready (no public URL: spec.http.public is off; call it with `faas invoke {name}`)"
        ),
        Deployed::Applied {
            url: None,
            waited: false,
        } => format!("{name}: applied (not waiting for Ready: `faas describe {name}`)"),
    }
}
