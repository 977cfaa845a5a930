//! Where the guest artifacts built from `examples/` are, shared by the executor's tests and
//! benchmarks (`#[path]`-included by both).

use std::path::PathBuf;

/// The path of guest `name` (`hello`, `hostile`, `echo-cgi`, `sqs-consumer`): the fresh build under
/// `examples/target/` when present, else the copy committed in `tests/fixtures/`.
pub fn guest_path(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = if name == "echo-cgi" {
        "wasm32-wasip1"
    } else {
        "wasm32-wasip2"
    };
    // Components are libraries: their file is named after the crate, `-` as `_`.
    let file = if target == "wasm32-wasip2" {
        name.replace('-', "_")
    } else {
        name.to_owned()
    };
    let built = root
        .join("examples/target")
        .join(target)
        .join("release")
        .join(format!("{file}.wasm"));
    if built.exists() {
        built
    } else {
        root.join("tests/fixtures").join(format!("{file}.wasm"))
    }
}
