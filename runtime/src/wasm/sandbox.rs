//! Per-invocation sandbox state: WASI contexts without ambient authority, the memory cap, the
//! deadline, and the mapping from wasmtime errors to [`InvokeError`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::{FunctionSettings, WasmRuntime};
use crate::InvokeError;
use crate::outbound::OutboundHooks;

/// Store data of a `wasi:http/proxy` instance.
pub(crate) struct ProxyState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: MemoryCap,
    pub(crate) hooks: OutboundHooks,
    /// This instance's slots of its function's share: given back with the store.
    pub(crate) _slot: super::share::Held,
}

impl WasiView for ProxyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ProxyState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Store data of a WASI preview1 command module.
pub(crate) struct CgiState {
    pub(crate) wasi: wasmtime_wasi::p1::WasiP1Ctx,
    pub(crate) limits: MemoryCap,
    pub(crate) _slot: super::share::Held,
}

/// Caps what one store may hold at the function's `memory`: the sum of every linear memory
/// *and* every table of the store, not each one alone (a component may define up to 16
/// memories; capped one by one, a 64 MiB function would hold 1 GiB). Remembers that the cap
/// was hit so the resulting trap is reported as "memory limit exceeded" rather than a
/// generic trap.
pub(crate) struct MemoryCap {
    limit: usize,
    /// Bytes of linear memory and tables the store holds now.
    used: usize,
    /// The last charge, refunded if wasmtime then fails the growth itself.
    last: usize,
    exceeded: Arc<AtomicBool>,
}

/// Bytes charged per table element: a funcref is a pointer in the host's representation.
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// Most memories, tables and instances one store may create (the pooling allocator's limits
/// per component are the same; this also bounds the on-demand allocator).
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;
const MAX_INSTANCES: usize = 64;

impl MemoryCap {
    pub(crate) fn new(limit: u64) -> (Self, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        (
            Self {
                limit,
                used: 0,
                last: 0,
                exceeded: Arc::clone(&exceeded),
            },
            exceeded,
        )
    }

    /// Charges growing one memory or table from `current` to `desired` bytes.
    fn charge(&mut self, what: &str, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.limit {
            self.exceeded.store(true, Ordering::Relaxed);
            // Trap rather than fail the grow: a guest that ignores a failed grow would
            // otherwise keep running in an undefined state, and the caller deserves a clear 500.
            wasmtime::bail!(
                "memory limit of {} bytes exceeded: the store's memories and tables would hold {total} ({what})",
                self.limit
            );
        }
        self.last = total - self.used;
        self.used = total;
        Ok(true)
    }

    fn refund(&mut self) {
        self.used -= self.last;
        self.last = 0;
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.charge("linear memory", current, desired)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refund();
        Ok(())
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refund();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.charge(
            "table",
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// A WASI context with no filesystem (unless granted), no sockets, no inherited environment.
pub(crate) fn wasi_builder(settings: &FunctionSettings) -> Result<WasiCtxBuilder, InvokeError> {
    let mut builder = WasiCtxBuilder::new();
    builder.envs(&settings.env);
    for source in &settings.invocation_env {
        source.each(&mut |name, value| {
            builder.env(name, value);
        });
    }
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (host, guest, read_only) in &settings.dirs {
        let perms = if *read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder.preopened_dir(host, guest, perms).map_err(|e| {
            InvokeError::Instantiate(format!("cannot open {}: {e:#}", host.display()))
        })?;
    }
    Ok(builder)
}

/// Applies the deadline: the guest yields to the async executor every epoch tick (so one busy
/// guest cannot starve other requests on the same worker thread), and traps once the
/// wall-clock deadline has passed.
pub(crate) fn arm_deadline<T: 'static>(store: &mut Store<T>, deadline: Instant) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// Turns a wasmtime error from instantiate/call into what the caller sees.
pub(crate) fn classify(
    err: wasmtime::Error,
    settings: &FunctionSettings,
    timeout: Duration,
    memory_exceeded: &AtomicBool,
) -> InvokeError {
    if memory_exceeded.load(Ordering::Relaxed) {
        return InvokeError::MemoryLimit {
            limit: settings.limits.memory_bytes,
        };
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => InvokeError::Timeout(timeout),
            Trap::AllocationTooLarge => InvokeError::MemoryLimit {
                limit: settings.limits.memory_bytes,
            },
            other => InvokeError::Trap(format!("{other}{}", wasm_frames(&err))),
        };
    }
    let text = format!("{err:#}");
    if text.contains("pooling") || text.contains("concurrent") && text.contains("limit") {
        return InvokeError::Instantiate(text);
    }
    InvokeError::Trap(text)
}

/// The most wasm frames captured when a guest traps (wasmtime's default is 20). Capturing
/// and symbolicating them is paid on every trap, and a function that traps on every request
/// pays it at its request rate on the cores its neighbours share; the innermost ten say where
/// a guest failed (a Rust panic also prints its message to the function's log).
pub(crate) const TRAP_FRAMES: usize = 10;

/// A trap's wasm frames on one line, innermost first (" in 0x1c3 - hostile!panic <- 0x1a0 -
/// hostile!handle"), ending in " <- ..." when the capture was cut at [`TRAP_FRAMES`]; empty
/// when wasmtime captured none. One line, because the message is also logged.
fn wasm_frames(err: &wasmtime::Error) -> String {
    let Some(backtrace) = err.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return String::new();
    };
    // wasmtime's rendering (demangled names): a header line, then "  N: 0xOFF - name" per
    // frame, with indented lines under a frame for inlined functions and source locations.
    let text = backtrace.to_string();
    let frames: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (index, frame) = line.trim().split_once(": ")?;
            index.parse::<usize>().ok().map(|_| frame.trim())
        })
        .collect();
    if frames.is_empty() {
        return String::new();
    }
    let more = if backtrace.frames().len() >= TRAP_FRAMES {
        " <- ..."
    } else {
        ""
    };
    format!(" in {}{more}", frames.join(" <- "))
}

impl WasmRuntime {
    pub(crate) fn new_store<T: 'static>(&self, data: T) -> Store<T> {
        Store::new(self.engine(), data)
    }
}

/// The task a guest runs in, aborted when the caller stops waiting for it: a caller that
/// gives up (a replaced cron run, a client that went away before the response head) must not
/// leave the guest burning CPU until its deadline.
pub(crate) struct GuestTask<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> GuestTask<T> {
    pub(crate) fn spawn(future: impl Future<Output = T> + Send + 'static) -> Self
    where
        T: Send + 'static,
    {
        Self(Some(tokio::spawn(future)))
    }

    /// Hands the task over to a new owner, who becomes responsible for ending it.
    pub(crate) fn detach(mut self) -> tokio::task::JoinHandle<T> {
        self.0.take().expect("a guest task is detached once")
    }

    pub(crate) fn abort(&self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl<T> Future for GuestTask<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.0.as_mut() {
            Some(task) => std::pin::Pin::new(task).poll(cx),
            None => std::task::Poll::Pending,
        }
    }
}

impl<T> Drop for GuestTask<T> {
    fn drop(&mut self) {
        self.abort();
    }
}
