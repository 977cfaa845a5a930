//! Standard output, and what happens when its reader goes away (`faas list | head -1`,
//! `faas completion fish | head -1`): faas stops quietly with status 0, as `ls` and `cat` do,
//! instead of panicking or printing an error about a pipe the user closed on purpose.
//!
//! The decision is made here and nowhere else. Commands write through [`out!`]/[`outln!`]
//! (or [`write`]), which turn a closed pipe into the [`Closed`] error; `main` asks
//! [`closed`] about the error a command ends with. [`install`] covers the writes that cannot
//! return an error (`println!` panics on a closed pipe) with a panic hook that makes the
//! same decision, so a `println!` anywhere is no crash either.

use std::io::Write as _;

/// Standard output's reader is gone: nothing more can be said there, and nothing is wrong.
#[derive(Debug)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed by its reader")
    }
}

impl std::error::Error for Closed {}

/// Writes to standard output and flushes (so a closed pipe is seen now, not lost at exit).
pub fn write(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    settled(stdout.write_fmt(text).and_then(|()| stdout.flush()))
}

/// Writes bytes as they are (a response body, a generated script).
pub fn write_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    settled(stdout.write_all(bytes).and_then(|()| stdout.flush()))
}

fn settled(written: std::io::Result<()>) -> anyhow::Result<()> {
    written.map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => anyhow::Error::new(Closed),
        _ => anyhow::Error::new(e).context("writing to standard output"),
    })
}

/// `print!` that returns [`Closed`] instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*)) };
}

/// `println!` that returns [`Closed`] instead of panicking.
macro_rules! outln {
    () => { $crate::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};

/// Whether `err` (a command's end) is standard output having been closed.
pub fn closed(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<Closed>())
}

/// The exit status for a closed standard output: success, as for any tool whose reader
/// stopped reading early.
pub const CLOSED_STATUS: i32 = 0;

/// Makes a `println!` on a closed pipe end the process as [`closed`] does, quietly; any
/// other panic is reported as before.
pub fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_closed_stdout_panic(message) {
            std::process::exit(CLOSED_STATUS);
        }
        previous(info);
    }));
}

/// The standard library's panic for a `print!` to a closed pipe ("failed printing to stdout:
/// Broken pipe (os error 32)"; EPIPE is 32 on Linux and macOS).
fn is_closed_stdout_panic(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("(os error 32)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_is_quiet() {
        assert!(closed(&anyhow::Error::new(Closed).context("listing")));
        let other = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        // A socket to the gateway that broke is an error worth reporting.
        assert!(!closed(&anyhow::Error::new(other).context("calling hello")));
        assert!(is_closed_stdout_panic(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_stdout_panic(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_stdout_panic("index out of bounds"));
    }
}
