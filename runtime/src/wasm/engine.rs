//! One wasmtime `Engine` per process: configuration, the pooling allocator, the epoch ticker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::{LoadError, WasmConfig};

/// Builds the engine. The pooling allocator makes instantiation a few microseconds (slots are
/// reserved up front and recycled with copy-on-write), which is what lets us create a fresh
/// instance for every request. It needs a lot of virtual address space; where the host cannot
/// reserve it, fall back to on-demand allocation rather than refuse to start.
pub(crate) fn build(config: &WasmConfig) -> Result<(Engine, bool), LoadError> {
    let mut base = Config::new();
    base.wasm_component_model(true)
        .epoch_interruption(true)
        .parallel_compilation(true);
    // Guests get at most `max_memory_bytes` of linear memory; reserve just that much address
    // space per memory (plus the default guard) instead of 4 GiB, so a pool of many slots fits.
    base.memory_reservation(config.max_memory_bytes);
    base.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(super::sandbox::TRAP_FRAMES));

    if config.pooling {
        let mut pooled = base.clone();
        let n = config.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_memories(n)
            .total_tables(n.saturating_mul(2))
            .total_stacks(n)
            .total_core_instances(n.saturating_mul(4))
            .max_memory_size(config.max_memory_bytes as usize)
            .table_elements(100_000)
            .max_component_instance_size(10 << 20)
            .max_core_instance_size(10 << 20)
            .max_core_instances_per_component(64)
            .max_tables_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_module(2)
            .max_memories_per_module(2)
            // Keeping the first pages of each memory resident (zeroed with memset on reuse)
            // trades a memset for page faults. In a multi-threaded process every such fault
            // also costs TLB-shootdown IPIs to the other cores, and that dominates in the
            // gateway: hello under wrk did 7.4-8.7k req/s with 0, 9.6k with 1 MiB and
            // 15-18k with 2 MiB or more (benches/README.md). 2 MiB covers a small Rust
            // guest's stack and heap; what a bigger guest touches beyond it is returned to
            // the kernel, so a memory bomb pins nothing.
            .linear_memory_keep_resident(config.keep_resident_bytes)
            .table_keep_resident(config.keep_resident_bytes.min(64 << 10));
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok((engine, true)),
            Err(err) => {
                tracing::warn!(error = %err, "pooling allocator unavailable, using on-demand instance allocation");
            }
        }
    }
    let engine = Engine::new(&base).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    Ok((engine, false))
}

/// Increments the engine's epoch every `tick` on a dedicated thread, so deadlines fire even if
/// every tokio worker is busy running guests.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("faas-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "could not start the epoch ticker: timeouts will not fire");
        }
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
