//! One loaded policy plugin: its pre-instantiated component, a warm
//! instance reused across hook calls, the limits every call runs under
//! (epoch deadline, memory cap), and its counters. A call that traps, runs
//! past its deadline or exhausts its memory throws the instance away; the
//! next call starts from a fresh one.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;
use uuid::Uuid;
use wasmtime::{Store, Trap};

use super::bindings::{
    CallAction, CallEvent, CallInfo, ConnectVerdict, DialVerdict, Identity, Policy, PolicyPre,
    Verdict,
};
use super::state::{
    enforce_budget, start_budget, HostContext, HttpGrant, KvSpace, PluginState, StateParts,
};
use crate::config::OnError;

/// Why a hook produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookFailure {
    #[error("ran past its {0} ms deadline")]
    Deadline(u64),
    #[error("exceeded its {0} MiB memory cap")]
    Memory(u64),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned an invalid answer: {0}")]
    Invalid(String),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
}

/// Names what went wrong in a call into a plugin.
pub fn classify_failure(e: wasmtime::Error, deadline_ms: u64, memory_mb: u64) -> HookFailure {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => HookFailure::Deadline(deadline_ms),
        Some(Trap::AllocationTooLarge) => HookFailure::Memory(memory_mb),
        Some(trap) => HookFailure::Trap(trap.to_string()),
        None => {
            // The first line is wasmtime's context ("error while
            // executing at wasm backtrace"); the root cause says what.
            let text = e.root_cause().to_string();
            if text.contains("memory") && (text.contains("grow") || text.contains("limit")) {
                HookFailure::Memory(memory_mb)
            } else {
                HookFailure::Trap(text.lines().next().unwrap_or_default().to_string())
            }
        }
    }
}

/// Counters shown by `callswitch plugins`.
#[derive(Debug, Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    pub nanos: AtomicU64,
    pub instantiations: AtomicU64,
}

impl PluginStats {
    /// Counts one call into the plugin.
    pub fn record(&self, spent: Duration, failed: bool) {
        self.calls.fetch_add(1, Relaxed);
        self.nanos.fetch_add(spent.as_nanos() as u64, Relaxed);
        if failed {
            self.failures.fetch_add(1, Relaxed);
        }
    }
}

/// The optional `on-action` export (world `policy-actions`).
type OnAction = wasmtime::component::TypedFunc<(CallInfo, Identity, CallAction), (Verdict,)>;

/// The export name of the `actions` interface.
pub const ACTIONS_INTERFACE: &str = "callswitch:plugin/actions@0.1.0";

/// The optional `vet-dial` export (world `policy-vetting`), called by
/// reference so that its arguments are lowered without a copy on the host.
type VetDial<'a> =
    wasmtime::component::TypedFunc<(&'a str, &'a Identity, &'a [Identity]), (DialVerdict,)>;

/// The export name of the `vetting` interface.
pub const VETTING_INTERFACE: &str = "callswitch:plugin/vetting@0.1.0";

/// The export index of function `func` of the exported interface `iface`.
fn interface_func(
    instance: &wasmtime::component::Instance,
    store: &mut Store<PluginState>,
    iface: &str,
    func: &str,
) -> Result<wasmtime::component::ComponentExportIndex, HookFailure> {
    let missing = |what: &str| HookFailure::Instantiate(format!("no `{what}` export"));
    let index = instance
        .get_export_index(&mut *store, None, iface)
        .ok_or_else(|| missing(iface))?;
    instance
        .get_export_index(&mut *store, Some(&index), func)
        .ok_or_else(|| missing(func))
}

struct Warm {
    store: Store<PluginState>,
    policy: Policy,
    on_action: Option<OnAction>,
    /// `vet-dial`, type-checked when the instance was made.
    vet_dial: Option<wasmtime::component::Func>,
}

/// Everything needed to make instances of one plugin version.
pub struct PolicyPlugin {
    pub name: String,
    pub path: String,
    /// SHA-256 of the component bytes.
    pub hash: String,
    pub on_error: OnError,
    pub deadline_ms: u64,
    pub memory_mb: u64,
    /// Whether `on-event` is called (`events` in its config).
    pub events: bool,
    /// Whether it exports `on-action` (world `policy-actions`).
    pub actions: bool,
    /// Whether it exports `vet-dial` (world `policy-vetting`), called in
    /// place of `on-dial`.
    pub vetting: bool,
    /// The callswitch interfaces it imports.
    pub imports: BTreeSet<String>,
    pub stats: Arc<PluginStats>,
    pre: PolicyPre<PluginState>,
    kv: KvSpace,
    settings: Arc<std::collections::BTreeMap<String, String>>,
    host: Arc<HostContext>,
    http: Arc<HttpGrant>,
    warm: tokio::sync::Mutex<Option<Warm>>,
}

/// The parts of a plugin's configuration an instance needs.
pub struct PolicyParts {
    pub name: String,
    pub path: String,
    pub hash: String,
    pub on_error: OnError,
    pub deadline_ms: u64,
    pub memory_mb: u64,
    pub events: bool,
    pub actions: bool,
    pub vetting: bool,
    pub imports: BTreeSet<String>,
    pub pre: PolicyPre<PluginState>,
    pub kv: KvSpace,
    pub settings: Arc<std::collections::BTreeMap<String, String>>,
    pub host: Arc<HostContext>,
    pub http: Arc<HttpGrant>,
    pub stats: Arc<PluginStats>,
}

/// Runs one hook on the warm instance (making one when needed) under the
/// deadline; on failure the instance is dropped.
macro_rules! hook {
    ($self:ident, $hook:literal, $call_id:expr, |$policy:ident, $store:ident| $call:expr) => {
        hook!($self, $hook, $call_id, warm |w| {
            let $policy = &w.policy;
            let $store = &mut w.store;
            $call
        })
    };
    ($self:ident, $hook:literal, $call_id:expr, warm |$warm:ident| $call:expr) => {{
        let started = Instant::now();
        let mut guard = $self.warm.lock().await;
        let result = match $self.warm_instance(&mut guard).await {
            Err(e) => Err(e),
            Ok(warm) => {
                start_budget(&mut warm.store, Duration::from_millis($self.deadline_ms));
                let $warm = &mut *warm;
                $call.await.map_err(|e| $self.classify(e))
            }
        };
        if result.is_err() {
            *guard = None;
        }
        drop(guard);
        $self.stats.record(started.elapsed(), result.is_err());
        if let Err(failure) = &result {
            warn!(plugin = %$self.name, hook = $hook, call_id = ?$call_id, %failure, "plugin hook failed");
        }
        result
    }};
}

impl PolicyPlugin {
    pub fn new(p: PolicyParts) -> Self {
        PolicyPlugin {
            name: p.name,
            path: p.path,
            hash: p.hash,
            on_error: p.on_error,
            deadline_ms: p.deadline_ms,
            memory_mb: p.memory_mb,
            events: p.events,
            actions: p.actions,
            vetting: p.vetting,
            imports: p.imports,
            stats: p.stats,
            pre: p.pre,
            kv: p.kv,
            settings: p.settings,
            host: p.host,
            http: p.http,
            warm: tokio::sync::Mutex::new(None),
        }
    }

    /// Makes the first instance now, so a plugin that cannot start fails
    /// at load rather than on the first call.
    pub async fn warm_up(&self) -> Result<(), HookFailure> {
        let mut guard = self.warm.lock().await;
        self.warm_instance(&mut guard).await.map(|_| ())
    }

    async fn warm_instance<'a>(
        &self,
        slot: &'a mut Option<Warm>,
    ) -> Result<&'a mut Warm, HookFailure> {
        if slot.is_none() {
            let state = PluginState::new(StateParts {
                plugin: &self.name,
                memory_mb: self.memory_mb,
                kv: &self.kv,
                settings: &self.settings,
                host: &self.host,
                port: None,
                http: &self.http,
            });
            let mut store = Store::new(self.pre.engine(), state);
            store.limiter(|s| &mut s.limits);
            enforce_budget(&mut store);
            // Instantiation runs guest start code too: bound it as well.
            start_budget(&mut store, Duration::from_millis(self.deadline_ms * 4));
            let instantiate = |e: wasmtime::Error| HookFailure::Instantiate(format!("{e:#}"));
            let instance = self
                .pre
                .instance_pre()
                .instantiate_async(&mut store)
                .await
                .map_err(instantiate)?;
            let policy = Policy::new(&mut store, &instance).map_err(instantiate)?;
            let on_action = if self.actions {
                let func = interface_func(&instance, &mut store, ACTIONS_INTERFACE, "on-action")?;
                Some(
                    instance
                        .get_typed_func::<(CallInfo, Identity, CallAction), (Verdict,)>(
                            &mut store, &func,
                        )
                        .map_err(instantiate)?,
                )
            } else {
                None
            };
            let vet_dial = if self.vetting {
                let func = interface_func(&instance, &mut store, VETTING_INTERFACE, "vet-dial")?;
                // Checks the signature once; calls then skip the check.
                let typed = instance
                    .get_typed_func::<(String, Identity, Vec<Identity>), (DialVerdict,)>(
                        &mut store, &func,
                    )
                    .map_err(instantiate)?;
                Some(*typed.func())
            } else {
                None
            };
            self.stats.instantiations.fetch_add(1, Relaxed);
            *slot = Some(Warm {
                store,
                policy,
                on_action,
                vet_dial,
            });
        }
        Ok(slot.as_mut().expect("just made"))
    }

    fn classify(&self, e: wasmtime::Error) -> HookFailure {
        classify_failure(e, self.deadline_ms, self.memory_mb)
    }

    /// Counts a failure found after the hook returned (an invalid answer).
    pub fn count_invalid(&self, hook: &str, call_id: Option<Uuid>, why: &str) {
        self.stats.failures.fetch_add(1, Relaxed);
        warn!(plugin = %self.name, hook, call_id = ?call_id, failure = why, "plugin returned an invalid answer");
    }

    pub async fn on_connect(&self, client: &Identity) -> Result<ConnectVerdict, HookFailure> {
        hook!(self, "on-connect", None::<Uuid>, |p, s| p
            .call_on_connect(s, client))
    }

    /// `on-dial` (the switch calls `vet_dial` instead when the plugin
    /// exports it).
    pub async fn on_dial(
        &self,
        call_id: Uuid,
        call: &CallInfo,
        caller: &Identity,
        targets: &[Identity],
    ) -> Result<DialVerdict, HookFailure> {
        hook!(self, "on-dial", Some(call_id), |p, s| p
            .call_on_dial(s, call, caller, targets))
    }

    /// `vet-dial`, for a plugin with `vetting`; the arguments are lowered
    /// into the guest straight from these references.
    pub async fn vet_dial(
        &self,
        call_id: Uuid,
        caller: &Identity,
        targets: &[Identity],
    ) -> Result<DialVerdict, HookFailure> {
        let id = call_id.to_string();
        hook!(
            self,
            "vet-dial",
            Some(call_id),
            warm | w | {
                let func = w
                    .vet_dial
                    .ok_or_else(|| wasmtime::Error::msg("the plugin does not export `vet-dial`"));
                async {
                    // SAFETY: the signature was checked at instantiation,
                    // with the owned forms of these argument types.
                    let typed = unsafe { VetDial::new_unchecked(func?) };
                    typed
                        .call_async(&mut w.store, (id.as_str(), caller, targets))
                        .await
                        .map(|(verdict,)| verdict)
                }
            }
        )
    }

    pub async fn on_answer(
        &self,
        call_id: Uuid,
        call: &CallInfo,
        answerer: &Identity,
    ) -> Result<Verdict, HookFailure> {
        hook!(self, "on-answer", Some(call_id), |p, s| p
            .call_on_answer(s, call, answerer))
    }

    pub async fn on_transfer(
        &self,
        call_id: Uuid,
        call: &CallInfo,
        from: &Identity,
        to: &Identity,
    ) -> Result<Verdict, HookFailure> {
        hook!(self, "on-transfer", Some(call_id), |p, s| p
            .call_on_transfer(s, call, from, to))
    }

    pub async fn on_message(
        &self,
        sender: &Identity,
        recipient: &Identity,
        body: &str,
    ) -> Result<Verdict, HookFailure> {
        hook!(self, "on-message", None::<Uuid>, |p, s| p
            .call_on_message(s, sender, recipient, body))
    }

    /// `on-action`; a plugin without it allows.
    pub async fn on_action(
        &self,
        call_id: Uuid,
        call: &CallInfo,
        actor: &Identity,
        action: &CallAction,
    ) -> Result<Verdict, HookFailure> {
        if !self.actions {
            return Ok(Verdict::Allow);
        }
        let args = (call.clone(), actor.clone(), action.clone());
        hook!(
            self,
            "on-action",
            Some(call_id),
            warm | w | {
                w.on_action
                    .as_ref()
                    .expect("the actions export is checked at load")
                    .call_async(&mut w.store, args)
            }
        )
        .map(|(verdict,)| verdict)
    }

    pub async fn on_event(
        &self,
        call_id: Uuid,
        call: &CallInfo,
        event: &CallEvent,
    ) -> Result<(), HookFailure> {
        hook!(self, "on-event", Some(call_id), |p, s| p
            .call_on_event(s, call, event))
    }
}
