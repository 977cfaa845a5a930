//! Fuzz targets: one function per parser of input a user, a tenant or the network controls.
//! Each takes arbitrary bytes, must never panic, loop or allocate without bound on them, and
//! checks what must hold of whatever it accepts (a next fire time later than its start, a
//! parsed reference printing back to itself, every message of a batch settled exactly once).
//!
//! Two drivers run them: cargo-fuzz (`fuzz/`, nightly, coverage-guided, for long runs) and
//! `tests/replay.rs` on stable, in the test suite: every committed corpus input plus seeded
//! mutations of them, so a regression is caught by CI without a nightly toolchain.

mod parse;
mod protocol;

pub use parse::{cron, manifest, oci, query};
pub use protocol::{async_call, cgi, lambda_events, routes, settle};

/// A target: arbitrary bytes in, a panic on anything that must not happen.
pub type Target = fn(&[u8]);

/// Every target by the name of its `fuzz/fuzz_targets/` binary and corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("cron", cron),
    ("cgi", cgi),
    ("routes", routes),
    ("lambda_events", lambda_events),
    ("settle", settle),
    ("oci", oci),
    ("async_call", async_call),
    ("query", query),
];

/// `data` as text, or `None` (the parsers below take `&str`).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
