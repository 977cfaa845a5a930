//! `faas validate -f FILE`: a manifest checked offline, with the controller's own validation.

use std::path::Path;

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
