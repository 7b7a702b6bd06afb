//! The wasmtime engine every plugin shares: Cranelift, the pooling
//! allocator (so a fresh instance costs microseconds), epoch interruption
//! for hook deadlines, and the ticker that advances the epoch.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::MAX_PLUGIN_MEMORY_MB;

/// One epoch tick: the resolution of hook deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Instances the pool can hold at once (two per plugin: one serving, one
/// being made during a reload or after a failure).
const MAX_COMPONENT_INSTANCES: u32 = 64;

pub fn build_engine() -> Result<Engine, String> {
    let mut pool = PoolingAllocationConfig::default();
    // A wasip2 component built by Rust makes several core instances.
    pool.total_component_instances(MAX_COMPONENT_INSTANCES)
        .total_core_instances(MAX_COMPONENT_INSTANCES * 8)
        .total_memories(MAX_COMPONENT_INSTANCES * 2)
        .total_tables(MAX_COMPONENT_INSTANCES * 8)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_core_instances_per_component(32)
        .max_memory_size((MAX_PLUGIN_MEMORY_MB as usize) << 20)
        .table_elements(20_000)
        .total_stacks(MAX_COMPONENT_INSTANCES);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        // Each pool slot reserves only what a plugin may use (plus a small
        // guard): bounds are checked explicitly instead of by 4 GiB guards.
        .memory_reservation(MAX_PLUGIN_MEMORY_MB << 20)
        .memory_guard_size(64 << 10);
    Engine::new(&config).map_err(|e| e.to_string())
}

/// Advances the engine's epoch every tick until the engine is dropped
/// elsewhere; runs on a plain thread so a busy runtime cannot delay it.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawning the epoch ticker");
}
