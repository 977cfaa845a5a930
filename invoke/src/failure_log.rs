//! How many lines about its failed calls one function may put in the platform's log.
//!
//! A function that fails on every request (a guest trapping, a handler crashing) would
//! otherwise write one warning per call: thousands of lines a second in a log every team
//! shares, and the CPU to format them taken from the functions beside it. Each function
//! version gets [`LINES_PER_WINDOW`] lines per [`WINDOW`]; the rest are counted, and the next
//! line logged says how many were left out. Every failure still counts in the metrics
//! (`faas_invocations_total` by status) and the dashboard's statistics, and its caller still
//! gets the whole error: only the log line is skipped. The gateway's "invocation failed" lines
//! and the WASM executor's (a failure after the response head was sent) are limited this way.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failure lines logged per function version in one window.
pub const LINES_PER_WINDOW: u32 = 10;
/// Length of a window.
pub const WINDOW: Duration = Duration::from_secs(1);

/// One function version's failure lines. Starts with a full window.
#[derive(Debug, Default)]
pub struct FailureLog {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Start of the current window (none before the first failure).
    window: Option<Instant>,
    /// Lines logged in the current window.
    logged: u32,
    /// Lines left out since the last line logged.
    suppressed: u64,
}

/// What to do with one failure's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it, saying that `suppressed` lines were left out before it.
    Log { suppressed: u64 },
    /// Leave it out (counted for the next line that is logged).
    Suppress,
}

impl FailureLog {
    /// The verdict on a failure at `now`.
    pub fn admit(&self, now: Instant) -> Verdict {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let window_over = state
            .window
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if window_over {
            state.window = Some(now);
            state.logged = 0;
        }
        if state.logged < LINES_PER_WINDOW {
            state.logged += 1;
            Verdict::Log {
                suppressed: std::mem::take(&mut state.suppressed),
            }
        } else {
            state.suppressed += 1;
            Verdict::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(log: &FailureLog, now: Instant, calls: u32) -> (u32, Vec<u64>) {
        let mut logged = 0;
        let mut announced = Vec::new();
        for _ in 0..calls {
            if let Verdict::Log { suppressed } = log.admit(now) {
                logged += 1;
                if suppressed > 0 {
                    announced.push(suppressed);
                }
            }
        }
        (logged, announced)
    }

    #[test]
    fn a_flood_logs_a_window_of_lines_and_counts_the_rest() {
        let log = FailureLog::default();
        let start = Instant::now();
        assert_eq!(tally(&log, start, 1_000), (LINES_PER_WINDOW, vec![]));
        // Still the same window: nothing more.
        let (logged, _) = tally(&log, start + WINDOW / 2, 500);
        assert_eq!(logged, 0);
        // The next window's first line says how many were left out.
        let (logged, announced) = tally(&log, start + WINDOW, 1_000);
        assert_eq!(logged, LINES_PER_WINDOW);
        assert_eq!(announced, vec![1_500 - u64::from(LINES_PER_WINDOW)]);
    }

    #[test]
    fn occasional_failures_are_all_logged() {
        let log = FailureLog::default();
        let start = Instant::now();
        for i in 0..100u32 {
            let now = start + WINDOW * i / 4;
            assert_eq!(
                log.admit(now),
                Verdict::Log { suppressed: 0 },
                "failure {i}"
            );
        }
    }

    #[test]
    fn a_clock_that_goes_back_does_not_reopen_the_window() {
        let log = FailureLog::default();
        let start = Instant::now() + WINDOW;
        assert_eq!(tally(&log, start, 20).0, LINES_PER_WINDOW);
        assert_eq!(log.admit(start - WINDOW / 2), Verdict::Suppress);
    }
}
