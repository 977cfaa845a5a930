//! `faas new NAME --lang ...`: a folder with a function that deploys as it is, locally
//! (`faas up`) and to a cluster (`faas deploy`, after setting the image for container kinds).

use std::path::Path;

use anyhow::Context as _;

#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum Lang {
    /// A Rust WASM component (faas-sdk): the lightest kind, pooled in shared runtime pods.
    Rust,
    /// An unmodified Python Lambda handler, run through awslambdaric.
    PythonLambda,
    /// An unmodified Rust Lambda handler (lambda_runtime).
    RustLambda,
    /// Any HTTP server in a container (Python here).
    Container,
}

/// Writes the template into `parent/name`; refuses to overwrite an existing folder.
pub fn create(parent: &Path, name: &str, lang: Lang) -> anyhow::Result<()> {
    faas_api::validate::check_dns_label(name)
        .map_err(|why| anyhow::anyhow!("NAME {name:?}: {why} (it becomes the function's name)"))?;
    let dir = parent.join(name);
    if dir.exists() {
        anyhow::bail!(
            "{} already exists; pick another NAME or --dir",
            dir.display()
        );
    }
    let files = files(name, lang);
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("created {} ({lang:?}):", dir.display());
    for (path, _) in &files {
        println!("  {name}/{path}");
    }
    println!(
        "run it here:   faas up {}\ndeploy it:     faas deploy -f {}/function.yaml{}",
        dir.display(),
        dir.display(),
        match lang {
            Lang::Rust => " [--registry HOST/PATH]",
            _ => "   (build and push the image first; see the Dockerfile)",
        }
    );
    Ok(())
}

fn files(name: &str, lang: Lang) -> Vec<(&'static str, String)> {
    let snake = name.replace('-', "_");
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", rust_cargo(name)),
            ("src/lib.rs", RUST_LIB.to_owned()),
            (
                "function.yaml",
                format!(
                    "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime:\n    wasm:\n      source: target/wasm32-wasip2/release/{snake}.wasm\n      build: {{cargo: {{target: wasm32-wasip2}}}}\n  timeout: 10s\n  memory: 64Mi\n  http: {{path: /{name}}}\n"
                ),
            ),
            (".gitignore", "target/\n".to_owned()),
        ],
        Lang::PythonLambda => vec![
            ("app.py", PYTHON_LAMBDA.to_owned()),
            (
                "function.yaml",
                format!(
                    "# Local mode runs `command`; a cluster runs `image` (build it from the Dockerfile).\napiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime:\n    container:\n      image: REGISTRY/{name}:0.1.0\n      command: [python3, -m, awslambdaric, app.handler]\n      mode: lambda\n  timeout: 30s\n  concurrency: 2\n"
                ),
            ),
            (
                "Dockerfile",
                "FROM public.ecr.aws/lambda/python:3.12\nCOPY app.py ${LAMBDA_TASK_ROOT}/\nCMD [\"app.handler\"]\n".to_owned(),
            ),
        ],
        Lang::RustLambda => vec![
            (
                "Cargo.toml",
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nlambda_runtime = \"1.5\"\nserde_json = \"1\"\ntokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n\n# A project of its own, even inside another workspace.\n[workspace]\n"
                ),
            ),
            ("src/main.rs", RUST_LAMBDA.to_owned()),
            (
                "function.yaml",
                format!(
                    "# Local mode runs `command` (cargo build first); a cluster runs `image`.\napiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime:\n    container:\n      image: REGISTRY/{name}:0.1.0\n      command: [target/debug/{name}]\n      mode: lambda\n  timeout: 30s\n  concurrency: 4\n"
                ),
            ),
            (
                "Dockerfile",
                format!(
                    "FROM rust:1.95 AS build\nWORKDIR /src\nCOPY . .\nRUN cargo build --release\n\nFROM gcr.io/distroless/cc-debian12:nonroot\nCOPY --from=build /src/target/release/{name} /function\nENTRYPOINT [\"/function\"]\n"
                ),
            ),
            (".gitignore", "target/\n".to_owned()),
        ],
        Lang::Container => vec![
            ("server.py", CONTAINER_SERVER.to_owned()),
            (
                "function.yaml",
                format!(
                    "# Local mode runs `command`; a cluster runs `image` (build it from the Dockerfile).\napiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime:\n    container:\n      image: REGISTRY/{name}:0.1.0\n      command: [python3, server.py]\n      port: 8081\n      mode: http\n      readinessPath: /healthz\n  timeout: 30s\n"
                ),
            ),
            (
                "Dockerfile",
                "FROM python:3.12-slim\nWORKDIR /app\nCOPY server.py .\nUSER 65532\nENV PORT=8081\nCMD [\"python3\", \"server.py\"]\n".to_owned(),
            ),
        ],
    }
}

/// The SDK from this checkout when the CLI was built from one, else the published crate.
fn rust_cargo(name: &str) -> String {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rust");
    let dependency = match std::fs::canonicalize(&sdk) {
        Ok(path) => format!("faas-sdk = {{ path = {:?} }}", path.display().to_string()),
        Err(_) => "faas-sdk = \"0.1\"".to_owned(),
    };
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n{dependency}\n\n[profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n\n# A project of its own, even inside another workspace.\n[workspace]\n"
    )
}

const RUST_LIB: &str = r#"//! A faas function: an HTTP request in, a response out.

use faas_sdk::{Request, Response};

pub fn handle(req: Request) -> Response {
    Response::new(format!("Hello from {} {}\n", req.method(), req.uri().path()).into())
}

faas_sdk::export_handler!(handle);
"#;

const PYTHON_LAMBDA: &str = r#"import json


def handler(event, context):
    """An unmodified Lambda handler: HTTP requests arrive as ALB events, SQS batches as SQS
    events, cron runs as EventBridge scheduled events."""
    if "Records" in event:
        return {"batchItemFailures": []}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"path": event.get("path"), "function": context.function_name}),
    }
"#;

const RUST_LAMBDA: &str = r#"use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let path = event.payload.get("path").cloned().unwrap_or(Value::Null);
    Ok(json!({"statusCode": 200, "body": json!({"path": path}).to_string()}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
"#;

const CONTAINER_SERVER: &str = r#"import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, {"ok": True})
        self.reply(200, {"path": self.path})

    def reply(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8081"))), Handler).serve_forever()
"#;
