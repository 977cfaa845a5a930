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
        return built;
    }
    // faas_e2e::skip's rule, in a crate that cannot use it: the fixture stands in for a guest
    // only where the suite may skip what it cannot install.
    assert!(
        !std::env::var("FAAS_REQUIRE_ALL").is_ok_and(|v| v == "1"),
        "{} is not built (examples/build.sh); FAAS_REQUIRE_ALL=1 forbids falling back to tests/fixtures/",
        built.display()
    );
    root.join("tests/fixtures").join(format!("{file}.wasm"))
}
