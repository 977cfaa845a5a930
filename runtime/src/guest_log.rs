//! Guest stdout/stderr: each line becomes a `tracing` event tagged with the function and the
//! call id, within a per-invocation byte budget, and the last lines are kept for run records.
//!
//! The budget matters: a guest printing megabytes must cost the platform a bounded amount of
//! log volume and memory. Past the budget, output is counted and dropped, never buffered.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use tokio::io::AsyncWrite;

use crate::LogTailSink;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Default bytes of guest output logged per invocation (both streams together).
pub const DEFAULT_LOG_BUDGET: usize = 64 * 1024;
/// Bytes of the tail kept for run records.
const TAIL_BYTES: usize = 4 * 1024;
/// A single line longer than this is cut (and continues as a new line).
const MAX_LINE: usize = 4 * 1024;

/// Default sustained guest log rate per function, in bytes per second.
pub const DEFAULT_LOG_RATE: u64 = 16 * 1024;
/// Default burst of guest log bytes per function.
pub const DEFAULT_LOG_BURST: u64 = 256 * 1024;
/// Bytes each line is charged besides its text: the fields every log line carries (time,
/// function, call id, stream), so a flood of empty lines is not free.
const LINE_OVERHEAD: u64 = 64;
/// Shortest time between two "lines dropped" notices of one function.
const NOTICE_INTERVAL: Duration = Duration::from_secs(10);

/// How fast one function may log, across all its invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRate {
    /// Sustained bytes per second.
    pub bytes_per_second: u64,
    /// Bytes that may be logged at once after a quiet period.
    pub burst_bytes: u64,
}

impl Default for LogRate {
    fn default() -> Self {
        Self {
            bytes_per_second: DEFAULT_LOG_RATE,
            burst_bytes: DEFAULT_LOG_BURST,
        }
    }
}

/// Per-function log rates of one process: a token bucket per function, shared by all its
/// invocations (and versions), so one tenant flooding its logs can neither push the other
/// tenants' lines out of the pod's rotated log files nor drown them in the log pipeline. A
/// per-invocation budget alone does not do that: a function called often enough logs without
/// bound. Dropped lines are counted (`faas_guest_log_dropped_lines_total`) and announced by a
/// notice line at most every ten seconds per function.
#[derive(Debug)]
pub struct LogLimits {
    rate: LogRate,
    buckets: Mutex<HashMap<Arc<str>, Arc<LogBucket>>>,
    dropped: IntCounterVec,
}

impl LogLimits {
    /// Limits of `rate` for every function.
    pub fn new(rate: LogRate) -> Self {
        let dropped = IntCounterVec::new(
            Opts::new(
                "faas_guest_log_dropped_lines_total",
                "Guest log lines dropped because their function logged faster than its log rate",
            ),
            &["function"],
        )
        .expect("static metric definition");
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
            dropped,
        }
    }

    /// Registers the dropped-lines counter on `registry`.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.dropped.clone()))
    }

    /// Lines of `function` dropped so far.
    pub fn dropped_lines(&self, function: &str) -> u64 {
        self.dropped.with_label_values(&[function]).get()
    }

    /// The bucket of `function`.
    pub fn bucket(&self, function: &Arc<str>) -> Arc<LogBucket> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(buckets.entry(Arc::clone(function)).or_insert_with(|| {
            Arc::new(LogBucket {
                rate: self.rate,
                dropped: self.dropped.with_label_values(&[function.as_ref()]),
                state: Mutex::new(BucketState {
                    tokens: self.rate.burst_bytes,
                    refilled: Instant::now(),
                    unannounced: 0,
                    announced: None,
                }),
            })
        }))
    }
}

/// One function's log token bucket.
#[derive(Debug)]
pub struct LogBucket {
    rate: LogRate,
    dropped: IntCounter,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: u64,
    refilled: Instant,
    /// Lines dropped since the last notice.
    unannounced: u64,
    announced: Option<Instant>,
}

impl LogBucket {
    /// Takes what a line of `len` bytes costs, or counts it as dropped.
    fn admit(&self, len: usize) -> bool {
        let cost = (len as u64).saturating_add(LINE_OVERHEAD);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let earned = now.saturating_duration_since(state.refilled).as_secs_f64()
            * self.rate.bytes_per_second as f64;
        if earned >= 1.0 {
            state.tokens = state
                .tokens
                .saturating_add(earned as u64)
                .min(self.rate.burst_bytes);
            state.refilled = now;
        }
        if state.tokens >= cost {
            state.tokens -= cost;
            true
        } else {
            state.unannounced += 1;
            self.dropped.inc();
            false
        }
    }

    /// Lines dropped since the last notice, when a notice is due now (then the count starts
    /// again).
    fn notice_due(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let due = state.unannounced > 0
            && state
                .announced
                .is_none_or(|at| at.elapsed() >= NOTICE_INTERVAL);
        due.then(|| {
            state.announced = Some(Instant::now());
            std::mem::take(&mut state.unannounced)
        })
    }
}

/// Shared state of one invocation's guest output.
#[derive(Clone)]
pub struct GuestLog {
    inner: Arc<Mutex<LogState>>,
}

struct LogState {
    function: Arc<str>,
    call_id: Arc<str>,
    budget: usize,
    logged: usize,
    dropped: u64,
    partial: [Vec<u8>; 2],
    tail: std::collections::VecDeque<u8>,
    sink: Option<LogTailSink>,
    rate: Option<Arc<LogBucket>>,
    run_log: Option<faas_invoke::RunLog>,
}

impl Drop for LogState {
    /// Every path that ends an invocation drops the store, and with it the last handle on
    /// the log: the tail reaches the sink even where `finish` was not called (traps).
    fn drop(&mut self) {
        self.fill_sink();
    }
}

/// Which stream a write came from.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    /// Guest stdout.
    Stdout = 0,
    /// Guest stderr.
    Stderr = 1,
}

impl GuestLog {
    /// A log for one invocation, with `budget` bytes of output allowed.
    pub fn new(function: Arc<str>, call_id: Arc<str>, budget: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(LogState {
                function,
                call_id,
                budget,
                logged: 0,
                dropped: 0,
                partial: [Vec::new(), Vec::new()],
                tail: std::collections::VecDeque::new(),
                sink: None,
                rate: None,
                run_log: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A poisoned lock only means another writer panicked mid-line; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A writer for one stream, to hand to `WasiCtxBuilder::stdout`/`stderr`.
    pub fn writer(&self, stream: Stream) -> GuestLogWriter {
        GuestLogWriter {
            log: self.clone(),
            stream,
        }
    }

    /// Records bytes written by the guest.
    pub fn write(&self, stream: Stream, mut data: &[u8]) {
        let mut state = self.lock();
        // A run's log takes everything: it is bounded by its own writer, not the budget.
        if let Some(run_log) = &state.run_log {
            run_log.append(data);
        }
        while !data.is_empty() {
            let room = state.budget.saturating_sub(state.logged);
            if room == 0 {
                state.dropped += data.len() as u64;
                return;
            }
            let take = data.len().min(room);
            let (chunk, rest) = data.split_at(take);
            state.logged += take;
            state.push_tail(chunk);
            for byte in chunk {
                let line = &mut state.partial[stream as usize];
                if *byte == b'\n' || line.len() >= MAX_LINE {
                    let full = std::mem::take(line);
                    state.emit(stream, &full);
                    if *byte != b'\n' {
                        state.partial[stream as usize].push(*byte);
                    }
                } else {
                    line.push(*byte);
                }
            }
            data = rest;
        }
    }

    /// Also holds the lines to the function's log rate (see [`LogLimits`]).
    pub fn with_rate(self, bucket: Arc<LogBucket>) -> Self {
        self.lock().rate = Some(bucket);
        self
    }

    /// Also writes every byte to a run's whole log.
    pub fn with_run_log(self, run_log: Option<faas_invoke::RunLog>) -> Self {
        self.lock().run_log = run_log;
        self
    }

    /// Hands the tail to `sink` when the invocation ends (see [`GuestLog::finish`]).
    pub fn with_sink(self, sink: Option<LogTailSink>) -> Self {
        self.lock().sink = sink;
        self
    }

    /// Flushes partial lines, reports dropped output and fills the tail sink. Call once the
    /// invocation ended.
    pub fn finish(&self) {
        let mut state = self.lock();
        state.fill_sink();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut state.partial[stream as usize]);
            if !line.is_empty() {
                state.emit(stream, &line);
            }
        }
        if let Some(lines) = state.rate.as_ref().and_then(|b| b.notice_due()) {
            tracing::warn!(
                target: "faas::guest",
                function = %state.function,
                dropped_lines = lines,
                "guest log lines dropped: the function logs faster than its log rate"
            );
        }
        if state.dropped > 0 {
            tracing::warn!(
                target: "faas::guest",
                function = %state.function,
                call_id = %state.call_id,
                dropped_bytes = state.dropped,
                budget = state.budget,
                "guest output over the per-invocation log budget was dropped"
            );
        }
    }

    /// Bytes of output dropped over budget so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The last few KiB of output, for run records.
    pub fn tail(&self) -> String {
        let state = self.lock();
        let bytes: Vec<u8> = state.tail.iter().copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl LogState {
    fn emit(&self, stream: Stream, line: &[u8]) {
        if let Some(bucket) = &self.rate
            && !bucket.admit(line.len())
        {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        match stream {
            Stream::Stdout => {
                tracing::info!(target: "faas::guest", function = %self.function, call_id = %self.call_id, stream = "stdout", "{line}")
            }
            Stream::Stderr => {
                tracing::info!(target: "faas::guest", function = %self.function, call_id = %self.call_id, stream = "stderr", "{line}")
            }
        }
    }

    fn fill_sink(&mut self) {
        if let Some(sink) = self.sink.take() {
            let bytes: Vec<u8> = self.tail.iter().copied().collect();
            sink.set(String::from_utf8_lossy(&bytes).into_owned());
        }
    }

    fn push_tail(&mut self, chunk: &[u8]) {
        self.tail.extend(chunk.iter().copied());
        while self.tail.len() > TAIL_BYTES {
            self.tail.pop_front();
        }
    }
}

/// One stream of a [`GuestLog`], usable as a WASI stdout/stderr.
#[derive(Clone)]
pub struct GuestLogWriter {
    log: GuestLog,
    stream: Stream,
}

impl AsyncWrite for GuestLogWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.log.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for GuestLogWriter {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLogWriter {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    // Writes complete synchronously (they only append to a bounded buffer or count dropped
    // bytes), so skip the default adapter's background task and per-write wakeups: a guest
    // printing megabytes must not be slowed down to a crawl by its own logging.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestLogWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestLogWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.log.write(self.stream, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

/// A bounded in-memory stdout for CGI modules: the response. Writing past the limit fails the
/// write (the guest sees an I/O error) and marks the capture as overflowed.
#[derive(Clone, Default)]
pub struct BoundedCapture {
    inner: Arc<Mutex<(Vec<u8>, bool)>>,
    limit: usize,
}

impl BoundedCapture {
    /// A capture holding at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::default(),
            limit,
        }
    }

    /// The captured bytes, and whether the guest tried to write more than the limit.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut guard.0), guard.1)
    }
}

impl AsyncWrite for BoundedCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0.len() + buf.len() > self.limit {
            guard.1 = true;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "response too large",
            )));
        }
        guard.0.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for BoundedCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedCapture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedCapture {
    async fn ready(&mut self) {}
}

impl OutputStream for BoundedCapture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0.len() + bytes.len() > self.limit {
            guard.1 = true;
            return Err(StreamError::Closed);
        }
        guard.0.extend_from_slice(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match self.limit.saturating_sub(guard.0.len()) {
            0 => {
                drop(guard);
                self.inner.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
                Err(StreamError::Closed)
            }
            room => Ok(room.min(64 * 1024)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded_and_tail_kept() {
        let log = GuestLog::new("f".into(), "c".into(), 100);
        for _ in 0..1000 {
            log.write(Stream::Stdout, b"0123456789\n");
        }
        log.finish();
        assert_eq!(log.dropped(), 11_000 - 100);
        assert!(log.tail().len() <= 100);
    }

    #[test]
    fn the_log_rate_is_per_function_across_invocations() {
        let limits = LogLimits::new(LogRate {
            bytes_per_second: 0,
            burst_bytes: 10 * (10 + LINE_OVERHEAD),
        });
        let flood: Arc<str> = "flood".into();
        let quiet: Arc<str> = "quiet".into();
        // Ten invocations of 100 lines each, every one well within its own budget.
        for call in 0..10 {
            let log = GuestLog::new(Arc::clone(&flood), format!("c{call}").into(), 1 << 20)
                .with_rate(limits.bucket(&flood));
            for _ in 0..100 {
                log.write(Stream::Stdout, b"0123456789\n");
            }
            log.finish();
        }
        assert_eq!(limits.dropped_lines("flood"), 1000 - 10);
        let log =
            GuestLog::new(Arc::clone(&quiet), "q".into(), 1 << 20).with_rate(limits.bucket(&quiet));
        log.write(Stream::Stdout, b"still here\n");
        log.finish();
        assert_eq!(limits.dropped_lines("quiet"), 0);
        // One notice for the flood, then none until the interval passed.
        let bucket = limits.bucket(&flood);
        assert_eq!(bucket.notice_due(), None);
        assert!(!bucket.admit(1));
        assert_eq!(bucket.notice_due(), None, "at most one notice per interval");
    }

    #[test]
    fn capture_overflow_is_reported() {
        let cap = BoundedCapture::new(4);
        let mut w = cap.clone();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            Pin::new(&mut w).poll_write(&mut cx, b"abc"),
            Poll::Ready(Ok(3))
        ));
        assert!(matches!(
            Pin::new(&mut w).poll_write(&mut cx, b"de"),
            Poll::Ready(Err(_))
        ));
        assert_eq!(cap.take(), (b"abc".to_vec(), true));
    }
}
