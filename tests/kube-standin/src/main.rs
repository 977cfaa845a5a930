//! `kube-standin`: runs the in-memory Kubernetes API stand-in until interrupted.
//!
//! `kube-standin [--port N] [--kubeconfig PATH] [--namespace NS]` prints its URL, writes a
//! kubeconfig to PATH when asked (default namespace NS, `default` if unset).

use std::path::PathBuf;
use std::process::ExitCode;

use faas_kube_standin::{ApiServer, Config};

fn usage() -> ExitCode {
    eprintln!("usage: kube-standin [--port N] [--kubeconfig PATH] [--namespace NS]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let (mut port, mut kubeconfig, mut namespace) = (0u16, None::<PathBuf>, "default".to_string());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(p)) => match p.parse() {
                Ok(p) => port = p,
                Err(_) => return usage(),
            },
            ("--kubeconfig", Some(path)) => kubeconfig = Some(path.into()),
            ("--namespace", Some(ns)) => namespace = ns,
            _ => return usage(),
        }
    }
    let server = match ApiServer::bind(port, Config::default()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("kube-standin: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = kubeconfig
        && let Err(e) = server.write_kubeconfig(&path, &namespace)
    {
        eprintln!("kube-standin: writing {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("{}", server.url());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("kube-standin: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
