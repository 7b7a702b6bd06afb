//! What a plugin's store holds: the closed WASI context, its memory limits,
//! and handles to the capabilities it was granted (its key-value space,
//! its settings, a read view of the switch and a command channel).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::port::AdapterPort;
use crate::switch::Directory;
use crate::wire::CallSummary;

pub use super::kv_store::KvSpace;

/// A request from a plugin to act on the switch (`calls-control`, `notify`).
#[derive(Debug)]
pub enum PluginCommand {
    Dial {
        plugin: String,
        as_user: Uuid,
        targets: Vec<String>,
        reply: oneshot::Sender<Result<Uuid, String>>,
    },
    Hangup {
        plugin: String,
        call_id: Uuid,
        reply: oneshot::Sender<Result<(), String>>,
    },
    AddParty {
        plugin: String,
        call_id: Uuid,
        target: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Transfer {
        plugin: String,
        call_id: Uuid,
        from_user: Uuid,
        to_target: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Notify {
        plugin: String,
        user: Uuid,
        body: serde_json::Value,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What plugins can see of the switch: the directory, and a snapshot of
/// live calls and online devices that the driver keeps current.
pub struct HostContext {
    pub directory: Directory,
    pub calls: RwLock<HashMap<Uuid, CallSummary>>,
    pub online: RwLock<HashMap<Uuid, Vec<String>>>,
    pub commands: OnceLock<mpsc::Sender<PluginCommand>>,
    pub started: Instant,
}

impl HostContext {
    pub fn new(directory: Directory) -> Self {
        HostContext {
            directory,
            calls: RwLock::default(),
            online: RwLock::default(),
            commands: OnceLock::new(),
            started: Instant::now(),
        }
    }
}

/// The data of one plugin instance's store.
pub struct PluginState {
    pub plugin: Arc<str>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    pub kv: KvSpace,
    pub settings: Arc<BTreeMap<String, String>>,
    pub host: Arc<HostContext>,
    /// An adapter's access to its devices and streams (`None` for policies).
    pub port: Option<Arc<dyn AdapterPort>>,
    /// Its `http-client` destinations.
    pub http: Arc<HttpGrant>,
    /// Time the current call spent waiting in host functions, which does
    /// not count against an adapter's deadline.
    pub waited: Duration,
    /// The current call: when it started and how long the plugin's own
    /// code may run (waits in `http-client`, and an adapter's waits in
    /// `devices`, are credited back through `waited`).
    pub budget: Option<CallBudget>,
    /// Time the current call spent yielded to other tasks (nanoseconds),
    /// credited back like `waited`; shared with the yield futures.
    pub yielded_ns: Arc<std::sync::atomic::AtomicU64>,
}

/// The running time an adapter call may use.
#[derive(Debug, Clone, Copy)]
pub struct CallBudget {
    pub started: Instant,
    pub limit: Duration,
}

/// Where a plugin's `http-client` may go, and its default timeout.
#[derive(Debug, Clone, Default)]
pub struct HttpGrant {
    pub hosts: Vec<String>,
    pub timeout: Duration,
    /// Certificates trusted for `https://` besides the system's
    /// (`http_ca_file`).
    pub extra_roots: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
    /// The TLS client configuration, made on the first `https://` request
    /// (reading the system's certificates takes a while).
    pub tls: std::sync::OnceLock<Arc<tokio_rustls::rustls::ClientConfig>>,
}

/// What a fresh store of one plugin is made from.
pub struct StateParts<'a> {
    pub plugin: &'a str,
    pub http: &'a Arc<HttpGrant>,
    pub memory_mb: u64,
    pub kv: &'a KvSpace,
    pub settings: &'a Arc<BTreeMap<String, String>>,
    pub host: &'a Arc<HostContext>,
    pub port: Option<Arc<dyn AdapterPort>>,
}

impl PluginState {
    /// A fresh store's data: the closed sandbox, the memory cap and the
    /// plugin's capabilities.
    pub fn new(p: StateParts<'_>) -> Self {
        PluginState {
            plugin: p.plugin.into(),
            // Nothing inherited: no env, args, files or stdio.
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size((p.memory_mb as usize) << 20)
                .trap_on_grow_failure(true)
                .build(),
            kv: p.kv.clone(),
            settings: p.settings.clone(),
            host: p.host.clone(),
            port: p.port,
            http: p.http.clone(),
            waited: Duration::ZERO,
            budget: None,
            yielded_ns: Arc::default(),
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn budget_ticks(d: Duration) -> u64 {
    (d.as_micros() as u64 / super::engine::EPOCH_TICK.as_micros() as u64).max(1)
}

/// How long a plugin runs before it yields to the other tasks of its
/// tokio worker. Wasm runs on the runtime's threads: without yielding, a
/// plugin busy for its whole deadline would hold a worker (and the tasks
/// queued on it) that long.
const YIELD_SLICE: Duration = Duration::from_millis(2);

/// Makes the store's epoch deadline enforce `budget`: every `YIELD_SLICE`
/// the plugin yields to the executor, and when the budget is spent (not
/// counting the time it waited in host functions or yielded) it is
/// interrupted.
pub fn enforce_budget(store: &mut wasmtime::Store<PluginState>) {
    store.epoch_deadline_callback(|ctx| {
        let state = ctx.data();
        let yielded = state.yielded_ns.clone();
        let remaining = match state.budget {
            None => YIELD_SLICE,
            Some(budget) => {
                let credited = state.waited
                    + Duration::from_nanos(yielded.load(std::sync::atomic::Ordering::Relaxed));
                let used = budget.started.elapsed().saturating_sub(credited);
                if used >= budget.limit {
                    return Err(wasmtime::Trap::Interrupt.into());
                }
                budget.limit - used
            }
        };
        let pause = Box::pin(async move {
            let paused = Instant::now();
            tokio::task::yield_now().await;
            yielded.fetch_add(
                paused.elapsed().as_nanos() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        });
        Ok(wasmtime::UpdateDeadline::YieldCustom(
            budget_ticks(remaining.min(YIELD_SLICE)),
            pause,
        ))
    });
}

/// Starts a call of at most `limit` of the plugin's own running time.
pub fn start_budget(store: &mut wasmtime::Store<PluginState>, limit: Duration) {
    let state = store.data_mut();
    state.budget = Some(CallBudget {
        started: Instant::now(),
        limit,
    });
    state.waited = Duration::ZERO;
    state
        .yielded_ns
        .store(0, std::sync::atomic::Ordering::Relaxed);
    store.set_epoch_deadline(budget_ticks(limit.min(YIELD_SLICE)));
}
