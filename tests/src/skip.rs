//! Skips the suite says out loud.
//!
//! A test that cannot run on this machine is in one of two cases:
//! - it needs a part the suite's setup can install (a tool, root, a wasm target, a built guest):
//!   [`missing`]. Under `FAAS_REQUIRE_ALL=1`, which `scripts/test.sh` (and so CI) sets, that
//!   fails the test, so a bare machine cannot pass by skipping; elsewhere the test is skipped.
//! - it needs what no CI machine has (a real cluster, a bucket of its own): [`deliberate`],
//!   never a failure.
//!
//! Both are appended to the file `$FAAS_SKIP_LOG` names, because cargo shows nothing of a test
//! that passed; `scripts/test.sh` prints that file at the end of every run.

use std::io::Write;

/// The variable that turns a missing installable part into a failure.
pub const REQUIRE_ALL: &str = "FAAS_REQUIRE_ALL";
/// The file every skip is appended to.
pub const SKIP_LOG: &str = "FAAS_SKIP_LOG";

/// True when every installable part is required (`FAAS_REQUIRE_ALL=1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1")
}

/// The test cannot run because `what` (something the suite's setup installs) is missing. Panics
/// under `FAAS_REQUIRE_ALL=1`; otherwise records the skip and returns, and the caller returns.
pub fn missing(what: &str) {
    if required() {
        panic!(
            "{what}. {REQUIRE_ALL}=1 (set by scripts/test.sh) requires every part the suite can \
             install; install it, or unset {REQUIRE_ALL} to skip this test"
        );
    }
    record("SKIPPED", what);
}

/// The test does not run here on purpose (`why`: what it needs that no CI machine has).
pub fn deliberate(why: &str) {
    record("SKIPPED (deliberate)", why);
}

fn record(kind: &str, what: &str) {
    let binary = std::env::args()
        .next()
        .and_then(|arg0| {
            let name = std::path::Path::new(&arg0)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            // cargo's test binaries are `NAME-<16 hex digits>`.
            Some(match name.rsplit_once('-') {
                Some((stem, hash)) if hash.len() == 16 => stem.to_owned(),
                _ => name,
            })
        })
        .unwrap_or_default();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("{kind}: {binary} {test}: {what}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os(SKIP_LOG) {
        // One write of one line with O_APPEND: concurrent tests do not interleave.
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = file.write_all(format!("{line}\n").as_bytes());
        }
    }
}
