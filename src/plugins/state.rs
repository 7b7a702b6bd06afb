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
    /// Time the current call spent waiting in host functions, which does
    /// not count against an adapter's deadline.
    pub waited: Duration,
    /// An adapter's current call: when it started and how long its own
    /// code may run (`None` for policies, whose deadline is a plain epoch
    /// deadline).
    pub budget: Option<CallBudget>,
}

/// The running time an adapter call may use.
#[derive(Debug, Clone, Copy)]
pub struct CallBudget {
    pub started: Instant,
    pub limit: Duration,
}

/// What a fresh store of one plugin is made from.
pub struct StateParts<'a> {
    pub plugin: &'a str,
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
            waited: Duration::ZERO,
            budget: None,
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
