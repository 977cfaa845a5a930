//! When a deploy onto a name that exists is a *replacement* of a different function rather than
//! a new version of the same one: what runs it (its kind) or where its artifact comes from
//! changed. A new build of the same source (only the digest moves) is an update. Both platforms
//! (the local gateway's management API and the CLI's cluster deploy) refuse a replacement unless
//! it is asked for (`faas deploy --replace`), and say what differs.

use crate::function::{ContainerMode, Function};

/// `wasm`, `container-http`, `container-cgi`, `lambda` or `job`: what runs a function.
pub fn runtime_kind(function: &Function) -> &'static str {
    match &function.spec.runtime.container {
        None => "wasm",
        Some(c) => match c.mode {
            ContainerMode::Http => "container-http",
            ContainerMode::Cgi => "container-cgi",
            ContainerMode::Lambda => "lambda",
            ContainerMode::Job => "job",
        },
    }
}

/// Where a function's code comes from: the WASM source without a pinned digest, or the
/// container's image, else its command.
pub fn artifact(function: &Function) -> String {
    if let Some(wasm) = &function.spec.runtime.wasm {
        // `oci://repo@sha256:…` names the same artifact line at another version.
        let source = wasm.source.as_str();
        return source
            .split_once("@sha256:")
            .map_or(source, |(repo, _)| repo)
            .to_owned();
    }
    match &function.spec.runtime.container {
        Some(c) => c.image.clone().unwrap_or_else(|| c.command.join(" ")),
        None => String::new(),
    }
}

/// One way the deployed function and the one being deployed differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// `kind`, `artifact`, `digest`, ...
    pub what: &'static str,
    pub old: String,
    pub new: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} → {}", self.what, self.old, self.new)
    }
}

/// How `new` replaces `old` (empty when it is a new version of the same function).
pub fn replacement(old: &Function, new: &Function) -> Vec<Difference> {
    let mut differences = Vec::new();
    let (old_kind, new_kind) = (runtime_kind(old), runtime_kind(new));
    if old_kind != new_kind {
        differences.push(Difference {
            what: "kind",
            old: old_kind.to_owned(),
            new: new_kind.to_owned(),
        });
    }
    let (old_artifact, new_artifact) = (artifact(old), artifact(new));
    if old_artifact != new_artifact {
        differences.push(Difference {
            what: "artifact",
            old: old_artifact,
            new: new_artifact,
        });
    }
    differences
}

/// The differences as one clause: `kind wasm → lambda, artifact a.wasm → handler.py`.
pub fn said(differences: &[Difference]) -> String {
    differences
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn function(yaml: &str) -> Function {
        serde_yaml::from_str(&format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: f}}\nspec:\n  runtime: {yaml}\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_new_build_of_the_same_source_is_no_replacement() {
        let old = function("{wasm: {source: 'oci://r/f@sha256:aaaa', sha256: aaaa}}");
        let new = function("{wasm: {source: 'oci://r/f@sha256:bbbb', sha256: bbbb}}");
        assert_eq!(replacement(&old, &new), Vec::new());
        let old = function("{wasm: {source: target/f.wasm}}");
        assert_eq!(replacement(&old, &old.clone()), Vec::new());
    }

    #[test]
    fn another_kind_or_artifact_is_a_replacement_and_said() {
        let wasm = function("{wasm: {source: a.wasm}}");
        let other = function("{wasm: {source: b.wasm}}");
        let lambda = function("{container: {command: [python3, h.py], mode: lambda}}");
        assert_eq!(
            said(&replacement(&wasm, &other)),
            "artifact a.wasm → b.wasm"
        );
        assert_eq!(
            said(&replacement(&wasm, &lambda)),
            "kind wasm → lambda, artifact a.wasm → python3 h.py"
        );
    }
}
