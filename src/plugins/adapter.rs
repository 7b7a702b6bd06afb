//! One loaded adapter plugin: its pre-instantiated component, the warm
//! instance every call goes to (one call at a time), and the port to its
//! devices and streams. An adapter's deadline counts only the time its own
//! code runs: waits in host functions (`devices.request`) are credited
//! back, since an adapter's work is mostly waiting for the switch. A call
//! that fails throws the instance away and closes everything the adapter
//! had opened: a fresh instance must not inherit devices it knows nothing
//! of.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;
use wasmtime::Store;

use super::bindings::adapter::{Adapter, AdapterPre, HttpReply, HttpRequest, StreamMessage};
use super::policy::{classify_failure, HookFailure, PluginStats};
use super::port::AdapterPort;
use super::state::{
    enforce_budget, start_budget, HostContext, HttpGrant, KvSpace, PluginState, StateParts,
};

struct Warm {
    store: Store<PluginState>,
    adapter: Adapter,
}

/// Everything needed to make instances of one adapter.
pub struct AdapterParts {
    pub name: String,
    pub path: String,
    pub hash: String,
    pub deadline_ms: u64,
    pub memory_mb: u64,
    pub routes: Vec<String>,
    pub imports: BTreeSet<String>,
    pub pre: AdapterPre<PluginState>,
    pub kv: KvSpace,
    pub settings: Arc<std::collections::BTreeMap<String, String>>,
    pub host: Arc<HostContext>,
    pub stats: Arc<PluginStats>,
    pub port: Arc<dyn AdapterPort>,
    pub http: Arc<HttpGrant>,
}

/// One version of the adapter's component (a reload swaps it).
#[derive(Clone)]
pub struct AdapterVersion {
    /// SHA-256 of the component bytes.
    pub hash: String,
    /// The callswitch interfaces it imports.
    pub imports: BTreeSet<String>,
    pre: AdapterPre<PluginState>,
}

pub struct AdapterPlugin {
    pub name: String,
    pub path: String,
    pub deadline_ms: u64,
    pub memory_mb: u64,
    /// Path prefixes the ingress routes here.
    pub routes: Vec<String>,
    pub stats: Arc<PluginStats>,
    version: std::sync::RwLock<AdapterVersion>,
    kv: KvSpace,
    settings: Arc<std::collections::BTreeMap<String, String>>,
    host: Arc<HostContext>,
    port: Arc<dyn AdapterPort>,
    http: Arc<HttpGrant>,
    warm: tokio::sync::Mutex<Option<Warm>>,
}

/// Runs one export on the warm instance (making one when needed) under
/// the adapter's budget; on failure the instance is dropped and the port
/// reset.
macro_rules! adapter_call {
    ($self:ident, $what:literal, |$adapter:ident, $store:ident| $call:expr) => {{
        let started = Instant::now();
        let mut guard = $self.warm.lock().await;
        let result = match $self.warm_instance(&mut guard).await {
            Err(e) => Err(e),
            Ok(warm) => {
                start_budget(&mut warm.store, Duration::from_millis($self.deadline_ms));
                let $adapter = &warm.adapter;
                let $store = &mut warm.store;
                $call
                    .await
                    .map_err(|e| classify_failure(e, $self.deadline_ms, $self.memory_mb))
            }
        };
        let failed = result.is_err();
        if failed {
            *guard = None;
        }
        drop(guard);
        $self.stats.record(started.elapsed(), failed);
        if let Err(failure) = &result {
            warn!(plugin = %$self.name, call = $what, %failure, "adapter failed; closing its streams and devices");
            $self.port.reset("adapter failed");
        }
        result
    }};
}

impl AdapterPlugin {
    pub fn new(p: AdapterParts) -> Self {
        AdapterPlugin {
            name: p.name,
            path: p.path,
            deadline_ms: p.deadline_ms,
            memory_mb: p.memory_mb,
            routes: p.routes,
            stats: p.stats,
            version: std::sync::RwLock::new(AdapterVersion {
                hash: p.hash,
                imports: p.imports,
                pre: p.pre,
            }),
            kv: p.kv,
            settings: p.settings,
            host: p.host,
            port: p.port,
            http: p.http,
            warm: tokio::sync::Mutex::new(None),
        }
    }

    /// Makes the first instance now, so an adapter that cannot start fails
    /// at load rather than on its first request.
    pub async fn warm_up(&self) -> Result<(), HookFailure> {
        let mut guard = self.warm.lock().await;
        self.warm_instance(&mut guard).await.map(|_| ())
    }

    /// The version in force.
    pub fn version(&self) -> AdapterVersion {
        self.version.read().expect("version lock").clone()
    }

    /// Swaps in a new version of the component: its first instance is made
    /// before the swap, so a version that cannot start leaves the old one
    /// serving. The old instance's streams and devices are closed (the new
    /// instance knows nothing of them); clients reconnect.
    pub async fn swap(
        &self,
        hash: String,
        imports: BTreeSet<String>,
        pre: AdapterPre<PluginState>,
    ) -> Result<(), HookFailure> {
        let mut guard = self.warm.lock().await;
        let mut fresh = None;
        self.make_instance(&pre, &mut fresh).await?;
        *guard = fresh;
        *self.version.write().expect("version lock") = AdapterVersion { hash, imports, pre };
        drop(guard);
        self.port.reset("adapter reloaded");
        Ok(())
    }

    async fn warm_instance<'a>(
        &self,
        slot: &'a mut Option<Warm>,
    ) -> Result<&'a mut Warm, HookFailure> {
        if slot.is_none() {
            let pre = self.version().pre;
            self.make_instance(&pre, slot).await?;
        }
        Ok(slot.as_mut().expect("just made"))
    }

    async fn make_instance(
        &self,
        pre: &AdapterPre<PluginState>,
        slot: &mut Option<Warm>,
    ) -> Result<(), HookFailure> {
        let state = PluginState::new(StateParts {
            plugin: &self.name,
            memory_mb: self.memory_mb,
            kv: &self.kv,
            settings: &self.settings,
            host: &self.host,
            port: Some(self.port.clone()),
            http: &self.http,
        });
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        enforce_budget(&mut store);
        // Instantiation runs guest start code too: bound it as well.
        start_budget(&mut store, Duration::from_millis(self.deadline_ms * 4));
        let adapter = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| HookFailure::Instantiate(format!("{e:#}")))?;
        self.stats.instantiations.fetch_add(1, Relaxed);
        *slot = Some(Warm { store, adapter });
        Ok(())
    }

    pub async fn handle_http(&self, request: &HttpRequest) -> Result<HttpReply, HookFailure> {
        adapter_call!(self, "handle-http", |a, s| a.call_handle_http(s, request))
    }

    pub async fn on_stream_open(&self, stream: u64, context: &str) -> Result<(), HookFailure> {
        adapter_call!(self, "on-stream-open", |a, s| a
            .call_on_stream_open(s, stream, context))
    }

    pub async fn on_stream_message(
        &self,
        stream: u64,
        message: &StreamMessage,
    ) -> Result<(), HookFailure> {
        adapter_call!(self, "on-stream-message", |a, s| a
            .call_on_stream_message(s, stream, message))
    }

    pub async fn on_stream_close(&self, stream: u64) -> Result<(), HookFailure> {
        adapter_call!(self, "on-stream-close", |a, s| a
            .call_on_stream_close(s, stream))
    }

    pub async fn on_device_event(&self, device: u64, event: &str) -> Result<(), HookFailure> {
        adapter_call!(self, "on-device-event", |a, s| a
            .call_on_device_event(s, device, event))
    }
}
