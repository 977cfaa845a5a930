//! `faas deploy` without a manifest (`faas deploy NAME --wasm FILE|CRATE` or `--image IMAGE`),
//! and flags that adjust a manifest's functions (`--env`, `--schedule`, `--role-arn`, `--sqs`).
//! Whatever the source, the result passes the same validation as a manifest.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use faas_api::Function;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct FunctionFlags {
    /// Without -f: the function's module, a .wasm file or a Rust crate folder (built for
    /// wasm32-wasip2).
    #[arg(long, conflicts_with = "image")]
    pub wasm: Option<PathBuf>,
    /// Without -f: the function's container image (cluster; locally, give a manifest with a command).
    #[arg(long)]
    pub image: Option<String>,
    /// With --image: the port its HTTP server listens on.
    #[arg(long, requires = "image")]
    pub port: Option<u16>,
    /// With --image: `http` (a server on --port) or `lambda` (an unmodified Lambda handler).
    #[arg(long, requires = "image")]
    pub mode: Option<String>,
    /// A cron schedule, `CRON` or `NAME=CRON`, UTC (repeatable).
    #[arg(long = "schedule")]
    pub schedules: Vec<String>,
    /// An environment variable, `KEY=VALUE` (repeatable).
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// The IAM role the function runs with (IRSA), `arn:aws:iam::<account>:role/<name>`.
    #[arg(long)]
    pub role_arn: Option<String>,
    /// An SQS queue URL that triggers the function (repeatable).
    #[arg(long = "sqs")]
    pub sqs: Vec<String>,
}

/// Functions to deploy and where their relative paths start.
pub struct Manifests {
    pub functions: Vec<Function>,
    /// The manifest's folder (relative paths in it start there), or the current directory.
    pub base: PathBuf,
    /// The manifest file, when there is one (its `build` steps, its declared namespaces).
    pub file: Option<PathBuf>,
}

/// The functions of `file` (only `name` when given), or one made from the flags; flags that
/// adjust are applied to each; the result is validated.
pub fn manifests(
    file: Option<&Path>,
    name: Option<&str>,
    flags: &FunctionFlags,
    build: bool,
) -> anyhow::Result<Manifests> {
    let mut manifests = match file {
        Some(file) => {
            if flags.wasm.is_some() || flags.image.is_some() {
                anyhow::bail!(
                    "--wasm and --image make a manifest; with -f the manifest says what runs (edit spec.runtime there)"
                );
            }
            let mut functions = faas_api::manifest::load_file(file)?;
            if let Some(name) = name {
                functions.retain(|f| f.metadata.name.as_deref() == Some(name));
                if functions.is_empty() {
                    anyhow::bail!("{} defines no function named {name}", file.display());
                }
            }
            Manifests {
                functions,
                base: file.parent().map(Path::to_path_buf).unwrap_or_default(),
                file: Some(file.to_path_buf()),
            }
        }
        None => {
            let Some(name) = name else {
                anyhow::bail!(
                    "nothing to deploy; hint: `faas deploy -f function.yaml`, or `faas deploy NAME --wasm FILE|CRATE` / `--image IMAGE`"
                );
            };
            Manifests {
                functions: vec![from_flags(name, flags, build)?],
                base: std::env::current_dir().unwrap_or_default(),
                file: None,
            }
        }
    };
    for function in &mut manifests.functions {
        adjust(function, flags)?;
        faas_api::validate(function).map_err(|errors| {
            anyhow::anyhow!(
                "{}: {errors}",
                function.metadata.name.as_deref().unwrap_or("-")
            )
        })?;
    }
    Ok(manifests)
}

fn from_flags(name: &str, flags: &FunctionFlags, build: bool) -> anyhow::Result<Function> {
    let mut spec = faas_api::FunctionSpec::default();
    match (&flags.wasm, &flags.image) {
        (Some(wasm), None) => {
            let source = if wasm.is_dir() {
                faas_gateway::build::crate_artifact(wasm, build)?
            } else {
                std::path::absolute(wasm).unwrap_or_else(|_| wasm.clone())
            };
            spec.runtime.wasm = Some(faas_api::WasmRuntime {
                source: source.to_string_lossy().into_owned(),
                ..Default::default()
            });
        }
        (None, Some(image)) => {
            let mode = match flags.mode.as_deref() {
                None => faas_api::ContainerMode::default(),
                Some(mode) => serde_json::from_value(serde_json::json!(mode))
                    .map_err(|_| anyhow::anyhow!("--mode {mode:?}: expected http or lambda"))?,
            };
            spec.runtime.container = Some(faas_api::ContainerRuntime {
                image: Some(image.clone()),
                port: flags.port,
                mode,
                ..Default::default()
            });
        }
        _ => anyhow::bail!("{name}: give --wasm FILE|CRATE or --image IMAGE (or -f function.yaml)"),
    }
    let mut function = Function::new(name, spec);
    function.metadata.namespace = Some("default".to_owned());
    Ok(function)
}

/// Applies the adjusting flags to one function.
fn adjust(function: &mut Function, flags: &FunctionFlags) -> anyhow::Result<()> {
    for pair in &flags.env {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--env {pair:?}: expected KEY=VALUE"))?;
        function.spec.env.insert(key.to_owned(), value.to_owned());
    }
    let numbered = flags.schedules.len() > 1;
    for (i, text) in flags.schedules.iter().enumerate() {
        let (name, cron) = match text.split_once('=') {
            Some((name, cron)) => (name.trim().to_owned(), cron.trim().to_owned()),
            None if numbered => (format!("schedule-{}", i + 1), text.trim().to_owned()),
            None => ("schedule".to_owned(), text.trim().to_owned()),
        };
        function.spec.schedules.retain(|s| s.name != name);
        function.spec.schedules.push(faas_api::Schedule {
            name,
            cron,
            ..Default::default()
        });
    }
    if let Some(role) = &flags.role_arn {
        function.spec.iam = Some(faas_api::IamSpec {
            role_arn: role.clone(),
        });
    }
    if !flags.sqs.is_empty() {
        let triggers = function.spec.triggers.get_or_insert_with(Default::default);
        for url in &flags.sqs {
            if !triggers.sqs.iter().any(|t| t.queue_url == *url) {
                triggers.sqs.push(faas_api::SqsTrigger {
                    queue_url: url.clone(),
                    ..Default::default()
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> FunctionFlags {
        FunctionFlags {
            wasm: Some("/srv/hello.wasm".into()),
            ..Default::default()
        }
    }

    #[test]
    fn flags_make_a_valid_function() {
        let made = manifests(
            None,
            Some("hello"),
            &FunctionFlags {
                schedules: vec!["0 3 * * *".into()],
                env: vec!["LOG=debug".into(), "EMPTY=".into()],
                role_arn: Some("arn:aws:iam::123456789012:role/hello".into()),
                sqs: vec!["https://sqs.eu-west-3.amazonaws.com/123456789012/jobs".into()],
                ..flags()
            },
            false,
        )
        .expect("valid");
        let function = &made.functions[0];
        assert_eq!(
            function
                .spec
                .runtime
                .wasm
                .as_ref()
                .map(|w| w.source.as_str()),
            Some("/srv/hello.wasm")
        );
        assert_eq!(function.spec.schedules[0].name, "schedule");
        assert_eq!(function.spec.env.get("EMPTY"), Some(""));
        assert_eq!(
            function.spec.triggers.as_ref().map(|t| t.sqs.len()),
            Some(1)
        );
        assert!(made.file.is_none());
    }

    #[test]
    fn bad_flags_name_the_flag_or_field() {
        for (flags, name, why) in [
            (
                FunctionFlags {
                    env: vec!["NOEQUALS".into()],
                    ..flags()
                },
                Some("hello"),
                "--env \"NOEQUALS\"",
            ),
            (
                FunctionFlags {
                    schedules: vec!["61 * * * *".into()],
                    ..flags()
                },
                Some("hello"),
                "spec.schedules[0].cron",
            ),
            (
                FunctionFlags {
                    role_arn: Some("role/x".into()),
                    ..flags()
                },
                Some("hello"),
                "spec.iam.roleArn",
            ),
            (FunctionFlags::default(), Some("hello"), "give --wasm"),
            (flags(), None, "nothing to deploy"),
            (
                FunctionFlags {
                    wasm: None,
                    image: Some("r/i:1".into()),
                    mode: Some("grpc".into()),
                    ..Default::default()
                },
                Some("web"),
                "--mode \"grpc\"",
            ),
        ] {
            let err = manifests(None, name, &flags, false)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
