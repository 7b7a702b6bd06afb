//! The plugin host: compiles components once (cached precompiled in the
//! data directory, keyed by content hash and engine), checks their imports
//! against their grants, pre-instantiates them, and keeps the current chain
//! of policy plugins, which a reload swaps atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tracing::{info, warn};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Engine;

use super::adapter::{AdapterParts, AdapterPlugin};
use super::bindings::adapter::{Adapter, AdapterPre};
use super::bindings::{Policy, PolicyPre};
use super::engine::{build_engine, start_epoch_ticker};
use super::grants::check_imports;
use super::kv_store::KvStore;
use super::policy::{PluginStats, PolicyParts, PolicyPlugin};
use super::port::AdapterPort;
use super::state::{HostContext, HttpGrant, KvSpace, PluginState};
use super::{builtin, PluginError};
use crate::config::{PluginConfig, PluginWorld};
use crate::wire::PluginInfo;

/// The ordered policy chain in force.
pub type Chain = Arc<Vec<Arc<PolicyPlugin>>>;

pub struct PluginHost {
    engine: Engine,
    linker: Linker<PluginState>,
    adapter_linker: Linker<PluginState>,
    cache_dir: PathBuf,
    state_dir: PathBuf,
    config_dir: PathBuf,
    configs: Vec<PluginConfig>,
    chain: RwLock<Chain>,
    adapters: RwLock<Vec<Arc<AdapterPlugin>>>,
    kv: Mutex<HashMap<String, KvSpace>>,
    stats: Mutex<HashMap<String, Arc<PluginStats>>>,
    pub context: Arc<HostContext>,
}

impl PluginHost {
    /// Loads every configured plugin; the first that fails stops start-up
    /// with an error naming it.
    pub async fn load(
        configs: &[PluginConfig],
        config_dir: &Path,
        data_dir: &Path,
        context: Arc<HostContext>,
    ) -> Result<Self, PluginError> {
        let engine = build_engine().map_err(PluginError::Engine)?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        Policy::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        let mut adapter_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut adapter_linker)
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        Adapter::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut adapter_linker, |s| s)
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        let cache_dir = data_dir.join("plugin-cache");
        std::fs::create_dir_all(&cache_dir).map_err(|e| PluginError::Cache(e.to_string()))?;
        let state_dir = data_dir.join("plugin-state");
        std::fs::create_dir_all(&state_dir).map_err(|e| PluginError::Cache(e.to_string()))?;
        let host = PluginHost {
            engine,
            linker,
            adapter_linker,
            cache_dir,
            state_dir,
            config_dir: config_dir.to_path_buf(),
            configs: configs.to_vec(),
            chain: RwLock::new(Arc::new(Vec::new())),
            adapters: RwLock::default(),
            kv: Mutex::default(),
            stats: Mutex::default(),
            context,
        };
        let mut chain = Vec::new();
        for c in configs.iter().filter(|c| c.world == PluginWorld::Policy) {
            chain.push(Arc::new(host.load_one(c).await?));
        }
        *host.chain.write().expect("chain lock") = Arc::new(chain);
        Ok(host)
    }

    /// The chain in force; a reload does not disturb a caller holding it.
    pub fn chain(&self) -> Chain {
        self.chain.read().expect("chain lock").clone()
    }

    pub fn is_empty(&self) -> bool {
        self.chain().is_empty()
    }

    /// Whether any configured plugin takes call events.
    pub fn wants_events(&self) -> bool {
        self.configs
            .iter()
            .any(|c| c.world == PluginWorld::Policy && c.events)
    }

    /// Reloads one plugin (or all): each new version is loaded and warmed
    /// first; only then is it swapped in. A version that fails leaves the old
    /// one serving, and the error says why.
    pub async fn reload(&self, name: Option<&str>) -> Result<Vec<PluginInfo>, PluginError> {
        let targets: Vec<&PluginConfig> = self
            .configs
            .iter()
            .filter(|c| c.world == PluginWorld::Policy)
            .filter(|c| name.is_none_or(|n| c.name.get_ref() == n))
            .collect();
        let adapters: Vec<Arc<AdapterPlugin>> = self
            .adapters()
            .into_iter()
            .filter(|a| name.is_none_or(|n| a.name == n))
            .collect();
        if targets.is_empty() && adapters.is_empty() {
            return Err(PluginError::Unknown(name.unwrap_or_default().to_string()));
        }
        let mut reloaded_adapters = Vec::new();
        for adapter in adapters {
            let Some(c) = self
                .configs
                .iter()
                .find(|c| *c.name.get_ref() == adapter.name)
            else {
                continue;
            };
            let fail = |why: String| PluginError::Load {
                plugin: adapter.name.clone(),
                why,
            };
            let (_, hash, component) = self.component_of(c).map_err(&fail)?;
            let imports = check_imports(&self.engine, &component, &c.grants).map_err(&fail)?;
            let pre = self
                .adapter_linker
                .instantiate_pre(&component)
                .and_then(AdapterPre::new)
                .map_err(|e| fail(format!("it does not implement the `adapter` world: {e:#}")))?;
            adapter
                .swap(hash, imports, pre)
                .await
                .map_err(|e| fail(format!("its first instance failed: {e}")))?;
            info!(plugin = %adapter.name, "adapter reloaded");
            reloaded_adapters.push(adapter_info(&adapter));
        }
        let mut fresh = Vec::new();
        for c in targets {
            fresh.push(Arc::new(self.load_one(c).await?));
        }
        let mut guard = self.chain.write().expect("chain lock");
        let mut chain: Vec<Arc<PolicyPlugin>> = guard.as_ref().clone();
        for plugin in &fresh {
            if let Some(slot) = chain.iter_mut().find(|p| p.name == plugin.name) {
                *slot = plugin.clone();
            }
        }
        *guard = Arc::new(chain);
        drop(guard);
        for p in &fresh {
            info!(plugin = %p.name, hash = %&p.hash[..12], "plugin reloaded");
        }
        let mut infos: Vec<PluginInfo> = fresh.iter().map(|p| info_of(p)).collect();
        infos.extend(reloaded_adapters);
        Ok(infos)
    }

    /// What `callswitch plugins` shows.
    pub fn list(&self) -> Vec<PluginInfo> {
        let mut all: Vec<PluginInfo> = self.chain().iter().map(|p| info_of(p)).collect();
        all.extend(self.adapters().iter().map(|a| adapter_info(a)));
        all
    }

    /// The adapters loaded so far.
    pub fn adapters(&self) -> Vec<Arc<AdapterPlugin>> {
        self.adapters.read().expect("adapters lock").clone()
    }

    /// The adapter configurations, in config order.
    pub fn adapter_configs(&self) -> Vec<PluginConfig> {
        self.configs
            .iter()
            .filter(|c| c.world == PluginWorld::Adapter)
            .cloned()
            .collect()
    }

    /// Loads one adapter with its port to devices and streams; the first
    /// instance is made at once, so a broken adapter fails at start.
    pub async fn load_adapter(
        &self,
        c: &PluginConfig,
        port: Arc<dyn AdapterPort>,
    ) -> Result<Arc<AdapterPlugin>, PluginError> {
        let name = c.name.get_ref().clone();
        let fail = |why: String| PluginError::Load {
            plugin: name.clone(),
            why,
        };
        let (bytes, hash, component) = self.component_of(c).map_err(&fail)?;
        drop(bytes);
        let imports = check_imports(&self.engine, &component, &c.grants).map_err(&fail)?;
        let pre = self
            .adapter_linker
            .instantiate_pre(&component)
            .and_then(AdapterPre::new)
            .map_err(|e| fail(format!("it does not implement the `adapter` world: {e:#}")))?;
        let adapter = Arc::new(AdapterPlugin::new(AdapterParts {
            name: name.clone(),
            path: c.path.clone(),
            hash,
            deadline_ms: c.deadline_ms(),
            memory_mb: c.memory_mb,
            routes: c.routes.clone(),
            imports,
            pre,
            kv: self.kv_of(&name),
            settings: Arc::new(settings(&c.config)),
            host: self.context.clone(),
            stats: self.stats_of(&name),
            port,
            http: http_grant(c).map_err(&fail)?,
        }));
        adapter
            .warm_up()
            .await
            .map_err(|e| fail(format!("its first instance failed: {e}")))?;
        self.adapters
            .write()
            .expect("adapters lock")
            .push(adapter.clone());
        Ok(adapter)
    }

    fn kv_of(&self, name: &str) -> KvSpace {
        self.kv
            .lock()
            .expect("kv lock")
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(KvStore::persistent(
                    self.state_dir.join(format!("{name}.json")),
                ))
            })
            .clone()
    }

    fn stats_of(&self, name: &str) -> Arc<PluginStats> {
        self.stats
            .lock()
            .expect("stats lock")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// A plugin's bytes, their hash and the compiled component.
    fn component_of(&self, c: &PluginConfig) -> Result<(Vec<u8>, String, Component), String> {
        let bytes = match builtin::bytes(&c.path) {
            Some(b) => b?.to_vec(),
            None => {
                let path = self.resolve_path(&c.path);
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
            }
        };
        let hash = hex::encode(Sha256::digest(&bytes));
        let component = self.compile_cached(&bytes, &hash)?;
        Ok((bytes, hash, component))
    }

    /// Reloads plugins with `watch = true` when their file changes.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let watched: Vec<(String, PathBuf)> = self
            .configs
            .iter()
            .filter(|c| c.watch && !c.path.starts_with(builtin::PREFIX))
            .map(|c| (c.name.get_ref().clone(), self.resolve_path(&c.path)))
            .collect();
        if watched.is_empty() {
            return;
        }
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let mut seen: Vec<Option<SystemTime>> = watched.iter().map(|(_, p)| mtime(p)).collect();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Some(host) = host.upgrade() else { return };
                for (i, (name, path)) in watched.iter().enumerate() {
                    let now = mtime(path);
                    if now != seen[i] {
                        seen[i] = now;
                        match host.reload(Some(name)).await {
                            Ok(_) => info!(plugin = %name, "reloaded after a file change"),
                            Err(e) => {
                                warn!(plugin = %name, error = %e, "changed file failed to load; the old version keeps serving")
                            }
                        }
                    }
                }
            }
        });
    }

    fn resolve_path(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            p
        } else {
            self.config_dir.join(p)
        }
    }

    async fn load_one(&self, c: &PluginConfig) -> Result<PolicyPlugin, PluginError> {
        let name = c.name.get_ref().clone();
        let fail = |why: String| PluginError::Load {
            plugin: name.clone(),
            why,
        };
        let (_, hash, component) = self.component_of(c).map_err(&fail)?;
        let imports = check_imports(&self.engine, &component, &c.grants).map_err(&fail)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(PolicyPre::new)
            .map_err(|e| fail(format!("it does not implement the `policy` world: {e:#}")))?;
        let kv = self.kv_of(&name);
        let stats = self.stats_of(&name);
        let exports = |interface: &str| {
            component
                .component_type()
                .exports(&self.engine)
                .any(|(name, _)| name == interface)
        };
        let actions = exports(super::policy::ACTIONS_INTERFACE);
        let vetting = exports(super::policy::VETTING_INTERFACE);
        let plugin = PolicyPlugin::new(PolicyParts {
            name: name.clone(),
            path: c.path.clone(),
            hash,
            on_error: c.on_error,
            deadline_ms: c.deadline_ms(),
            memory_mb: c.memory_mb,
            events: c.events,
            actions,
            vetting,
            imports,
            pre,
            kv,
            settings: Arc::new(settings(&c.config)),
            host: self.context.clone(),
            http: http_grant(c).map_err(&fail)?,
            stats,
        });
        plugin
            .warm_up()
            .await
            .map_err(|e| fail(format!("its first instance failed: {e}")))?;
        Ok(plugin)
    }

    /// Compiles a component, or loads it precompiled from the cache.
    fn compile_cached(&self, bytes: &[u8], hash: &str) -> Result<Component, String> {
        let mut h = Sha256::new();
        std::hash::Hash::hash(
            &self.engine.precompile_compatibility_hash(),
            &mut HashWriter(&mut h),
        );
        let engine_key = hex::encode(&h.finalize()[..8]);
        let path = self.cache_dir.join(format!("{hash}-{engine_key}.cwasm"));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash, in our own data dir.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "stale plugin cache entry; recompiling")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| format!("not a valid component: {e:#}"))?;
        if let Ok(serialized) = component.serialize() {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, serialized)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .is_err()
            {
                warn!(path = %path.display(), "could not cache the compiled plugin");
            }
        }
        Ok(component)
    }
}

/// Feeds `Hash` into a SHA-256.
struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A plugin's settings as strings: TOML strings unquoted, other values as TOML.
fn settings(table: &toml::Table) -> BTreeMap<String, String> {
    table
        .iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

fn info_of(p: &PolicyPlugin) -> PluginInfo {
    use std::sync::atomic::Ordering::Relaxed;
    PluginInfo {
        name: p.name.clone(),
        world: "policy".into(),
        path: p.path.clone(),
        hash: p.hash.clone(),
        imports: p.imports.iter().cloned().collect(),
        hooks: [
            "on-connect",
            if p.vetting { "vet-dial" } else { "on-dial" },
            "on-answer",
            "on-transfer",
            "on-message",
            "on-event",
            "on-action",
        ]
        .into_iter()
        .filter(|h| p.events || *h != "on-event")
        .filter(|h| p.actions || *h != "on-action")
        .map(String::from)
        .collect(),
        on_error: format!("{:?}", p.on_error).to_lowercase(),
        deadline_ms: p.deadline_ms,
        memory_mb: p.memory_mb,
        calls: p.stats.calls.load(Relaxed),
        failures: p.stats.failures.load(Relaxed),
        time_us: p.stats.nanos.load(Relaxed) / 1000,
        instantiations: p.stats.instantiations.load(Relaxed),
    }
}

/// The plugin's `http-client` grant; an unreadable `http_ca_file`, or one
/// with no certificate in it, is an error naming the file.
fn http_grant(c: &PluginConfig) -> Result<Arc<HttpGrant>, String> {
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer};
    let extra_roots = match &c.http_ca_file {
        None => Vec::new(),
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("http_ca_file `{}`: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "http_ca_file `{}` holds no PEM certificate",
                    path.display()
                ));
            }
            certs
        }
    };
    Ok(Arc::new(HttpGrant {
        hosts: c.http_hosts.clone(),
        timeout: Duration::from_millis(c.http_timeout_ms),
        extra_roots,
        tls: std::sync::OnceLock::new(),
    }))
}

fn adapter_info(a: &AdapterPlugin) -> PluginInfo {
    use std::sync::atomic::Ordering::Relaxed;
    let version = a.version();
    PluginInfo {
        name: a.name.clone(),
        world: "adapter".into(),
        path: a.path.clone(),
        hash: version.hash,
        imports: version.imports.into_iter().collect(),
        hooks: a.routes.clone(),
        on_error: "close".into(),
        deadline_ms: a.deadline_ms,
        memory_mb: a.memory_mb,
        calls: a.stats.calls.load(Relaxed),
        failures: a.stats.failures.load(Relaxed),
        time_us: a.stats.nanos.load(Relaxed) / 1000,
        instantiations: a.stats.instantiations.load(Relaxed),
    }
}
