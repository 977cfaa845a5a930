//! The commands against a Kubernetes cluster: Functions are resources, managed with the user's
//! own kubeconfig (so Kubernetes RBAC, mapped from IAM on EKS, decides who may do what).

pub mod artifact;
pub mod deploy;
pub mod invoke;
pub mod logs;
pub mod run;
pub mod view;

#[cfg(test)]
mod tests;

use std::io::IsTerminal as _;

use faas_api::Function;
use kube::Api;

use crate::target::Cluster;

/// The field manager of everything `faas` applies.
pub const MANAGER: &str = "faas-cli";

impl Cluster {
    pub fn functions(&self) -> Api<Function> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// Progress lines on stderr: `✓ step detail`, coloured only on a terminal (and not with
/// `NO_COLOR`).
pub struct Progress {
    colour: bool,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            colour: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    pub fn done(&self, step: &str, detail: &str) {
        let mark = if self.colour {
            "\x1b[32m✓\x1b[0m"
        } else {
            "✓"
        };
        eprintln!("  {mark} {step:<10} {detail}");
    }

    pub fn waiting(&self, detail: &str) {
        let mark = if self.colour {
            "\x1b[33m…\x1b[0m"
        } else {
            "…"
        };
        eprintln!("  {mark} {:<10} {detail}", "waiting");
    }

    pub fn failed(&self, step: &str, detail: &str) {
        let mark = if self.colour {
            "\x1b[31m✗\x1b[0m"
        } else {
            "✗"
        };
        eprintln!("  {mark} {step:<10} {detail}");
    }
}

/// A condition of a Function's status, by type.
pub fn condition<'a>(function: &'a Function, kind: &str) -> Option<&'a faas_api::Condition> {
    function
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == kind))
}
