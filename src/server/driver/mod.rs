//! The control driver: one task that owns the sans-IO [`Switch`], feeds it
//! what connections say, the ring timers and the policy chain's decisions,
//! and executes its effects: installs media routes, appends records, queues
//! messages on each connection's outbox, and keeps the plugins' view of the
//! switch current. Plugin hooks never run on this task (see `policy.rs`).

mod policy;

use policy::next_command;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, info_span, warn};
use uuid::Uuid;

use super::outbox::Outbox;
use super::relay::{CallCounters, DeviceMedia, MediaSink, RelayStats, Route};
use crate::cdr::CdrStore;
use crate::plugins::{DialDecision, PluginCommand, PluginHost, Refusal};
use crate::switch::{DeviceId, Effect, MediaLeg, Switch, SwitchError};
use crate::wire::{
    CallEvent, CallRecord, EndReason, ErrorCode, Millis, PolicyNote, Request, Role, ServerMessage,
    StatsSnapshot, PROTOCOL_VERSION,
};

/// What a connection's outbox carries to its writer.
#[derive(Debug)]
pub enum Outbound {
    /// Boxed: every connection's outbox allocates its first block of 32
    /// slots up front, 4.6 KiB with the message inline, 0.5 KiB boxed.
    Message(Box<ServerMessage>),
    /// Flush what is queued, then close the connection with this reason.
    Close { code: u32, reason: String },
}

/// Outbox depth per connection. A client that lets this many control
/// messages pile up unread is cut off rather than slowing the driver.
pub const OUTBOX_DEPTH: usize = 1024;

/// Inputs from connection tasks and from policy hook tasks.
pub enum Input {
    /// A connection's first stream opened: remember how to reach it.
    Open {
        device: DeviceId,
        sink: MediaSink,
        outbox: Outbox,
        media: Arc<DeviceMedia>,
        /// False for an adapter's leg that must never ring.
        rings: bool,
    },
    /// A request read from a connection's control stream.
    Request {
        device: DeviceId,
        req: u64,
        request: Request,
    },
    /// The connection closed or timed out.
    Closed { device: DeviceId },
    /// The policy chain decided a hello (`on-connect`).
    HelloDecided {
        device: DeviceId,
        req: u64,
        hello: Hello,
        outcome: Result<Option<String>, Refusal>,
    },
    /// The policy chain decided a dial (`on-dial`).
    DialDecided {
        device: DeviceId,
        req: u64,
        call_id: Uuid,
        targets: Vec<String>,
        decision: DialDecision,
        notes: Vec<PolicyNote>,
    },
    /// The policy chain decided an answer (`on-answer`).
    AnswerDecided {
        device: DeviceId,
        req: u64,
        call_id: Uuid,
        outcome: Result<(), Refusal>,
        notes: Vec<PolicyNote>,
    },
    /// The policy chain decided an in-call operation (`on-action`).
    ActionDecided {
        device: DeviceId,
        req: u64,
        call_id: Uuid,
        request: Request,
        outcome: Result<(), Refusal>,
        notes: Vec<PolicyNote>,
    },
    /// The policy chain decided a plugin's transfer (`on-transfer`).
    TransferDecided {
        call_id: Uuid,
        from_user: Uuid,
        to_target: String,
        outcome: Result<(), Refusal>,
        notes: Vec<PolicyNote>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// The policy chain decided a message (`on-message`).
    MessageDecided {
        device: DeviceId,
        req: u64,
        to: String,
        body: serde_json::Value,
        outcome: Result<(), Refusal>,
    },
    /// Admin: reload finished (or failed).
    Reloaded {
        device: DeviceId,
        reply: ServerMessage,
    },
    /// End every call, record them, close every connection.
    Shutdown { done: oneshot::Sender<()> },
    /// The counters (for `/metrics`).
    Stats {
        reply: oneshot::Sender<StatsSnapshot>,
    },
    /// The events of a live call so far (`None` if it is not live).
    CallEvents {
        call_id: Uuid,
        reply: oneshot::Sender<Option<Vec<CallEvent>>>,
    },
}

/// The parts of a `hello` kept while policy decides it.
pub struct Hello {
    pub token: String,
    pub label: Option<String>,
    pub act_as: Option<String>,
}

struct DeviceHandle {
    sink: MediaSink,
    rings: bool,
    outbox: Outbox,
    media: Arc<DeviceMedia>,
}

struct CallMedia {
    counters: Arc<CallCounters>,
    legs: Vec<MediaLeg>,
}

/// A clock that is monotonic but reads as wall time: records carry real
/// times and a clock step never fires a timer early.
struct Clock {
    start: Instant,
    start_ms: Millis,
}

impl Clock {
    fn new() -> Self {
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0);
        Clock {
            start: Instant::now(),
            start_ms,
        }
    }

    fn now(&self) -> Millis {
        self.start_ms + self.start.elapsed().as_millis() as Millis
    }

    fn instant_at(&self, ms: Millis) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.start_ms))
    }
}

pub struct Driver {
    switch: Switch,
    cdr: CdrStore,
    data_dir: PathBuf,
    devices: HashMap<DeviceId, DeviceHandle>,
    calls: HashMap<Uuid, CallMedia>,
    stats: Arc<RelayStats>,
    clock: Clock,
    plugins: Option<Arc<PluginHost>>,
    /// Where hook tasks send their decisions back.
    inputs: mpsc::Sender<Input>,
    /// Events of each live call already handed to `on-event`.
    events_seen: HashMap<Uuid, usize>,
    /// Queue of call events for the plugins' `on-event`.
    plugin_events: Option<mpsc::Sender<policy::EventJob>>,
}

fn error(req: u64, code: ErrorCode, message: String) -> ServerMessage {
    ServerMessage::Error {
        req: Some(req),
        code,
        message,
    }
}

fn switch_error(req: u64, e: SwitchError) -> ServerMessage {
    error(req, e.code(), e.to_string())
}

fn ok(req: u64, call_id: Uuid) -> ServerMessage {
    ServerMessage::Ok {
        req,
        call_id: Some(call_id),
    }
}

impl Driver {
    pub fn new(
        switch: Switch,
        cdr: CdrStore,
        data_dir: PathBuf,
        stats: Arc<RelayStats>,
        plugins: Option<Arc<PluginHost>>,
        inputs: mpsc::Sender<Input>,
    ) -> Self {
        let plugin_events = plugins
            .as_ref()
            .filter(|p| !p.is_empty() && p.wants_events())
            .map(|p| policy::spawn_event_delivery(p.clone()));
        Driver {
            switch,
            cdr,
            data_dir,
            devices: HashMap::new(),
            calls: HashMap::new(),
            stats,
            clock: Clock::new(),
            plugins,
            inputs,
            events_seen: HashMap::new(),
            plugin_events,
        }
    }

    /// Runs until a `Shutdown` input (or every sender is gone).
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut commands: Option<mpsc::Receiver<PluginCommand>>,
    ) {
        loop {
            let wake = self.switch.poll_timeout().map(|t| self.clock.instant_at(t));
            let input = tokio::select! {
                input = inputs.recv() => input,
                Some(command) = next_command(&mut commands) => {
                    self.plugin_command(command);
                    continue;
                }
                _ = sleep_until(wake) => {
                    let now = self.clock.now();
                    self.switch.handle_timeout(now);
                    self.flush(None);
                    continue;
                }
            };
            match input {
                None => break,
                Some(Input::Shutdown { done }) => {
                    self.shutdown();
                    let _ = done.send(());
                    break;
                }
                Some(input) => self.handle(input),
            }
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Stats { reply } => {
                let _ = reply.send(self.stats_snapshot());
            }
            Input::CallEvents { call_id, reply } => {
                let _ = reply.send(self.switch.call_events(call_id).map(<[_]>::to_vec));
            }
            Input::Open {
                device,
                sink,
                outbox,
                media,
                rings,
            } => {
                self.devices.insert(
                    device,
                    DeviceHandle {
                        sink,
                        rings,
                        outbox,
                        media,
                    },
                );
            }
            Input::Request {
                device,
                req,
                request,
            } => {
                let reply = self.request(device, req, request);
                self.flush(reply.map(|r| (device, r)));
            }
            Input::Closed { device } => {
                self.switch.disconnect(self.clock.now(), device);
                self.devices.remove(&device);
                self.refresh_online();
                self.flush(None);
            }
            Input::HelloDecided {
                device,
                req,
                hello,
                outcome,
            } => {
                let reply = match outcome {
                    Ok(display) => self.connect(
                        device,
                        req,
                        &hello.token,
                        display.or(hello.label),
                        hello.act_as.as_deref(),
                    ),
                    Err(r) => {
                        self.refuse_hello(
                            device,
                            error(
                                req,
                                ErrorCode::Denied,
                                format!("{} (policy `{}`)", r.reason, r.plugin),
                            ),
                        );
                        None
                    }
                };
                self.flush(reply.map(|r| (device, r)));
            }
            Input::DialDecided {
                device,
                req,
                call_id,
                targets,
                decision,
                notes,
            } => {
                let reply = self.apply_dial(device, req, call_id, &targets, decision, notes);
                self.flush(Some((device, reply)));
            }
            Input::ActionDecided {
                device,
                req,
                call_id,
                request,
                outcome,
                notes,
            } => {
                let now = self.clock.now();
                self.switch.log_notes(now, call_id, notes);
                let reply = match outcome {
                    Ok(()) => self.apply_action(device, req, request),
                    Err(r) => error(
                        req,
                        ErrorCode::Denied,
                        format!("{} (policy `{}`)", r.reason, r.plugin),
                    ),
                };
                self.flush(Some((device, reply)));
            }
            Input::AnswerDecided {
                device,
                req,
                call_id,
                outcome,
                notes,
            } => {
                let now = self.clock.now();
                self.switch.log_notes(now, call_id, notes);
                let reply = match outcome {
                    Ok(()) => match self.switch.answer(now, device, call_id) {
                        Ok(()) => ok(req, call_id),
                        Err(e) => switch_error(req, e),
                    },
                    Err(r) => error(
                        req,
                        ErrorCode::Denied,
                        format!("{} (policy `{}`)", r.reason, r.plugin),
                    ),
                };
                self.flush(Some((device, reply)));
            }
            Input::TransferDecided {
                call_id,
                from_user,
                to_target,
                outcome,
                notes,
                reply,
            } => {
                let now = self.clock.now();
                self.switch.log_notes(now, call_id, notes);
                let result = match outcome {
                    Ok(()) => self
                        .switch
                        .transfer(now, call_id, from_user, &to_target)
                        .map_err(|e| e.to_string()),
                    Err(r) => Err(format!("transfer denied by `{}`: {}", r.plugin, r.reason)),
                };
                self.flush(None);
                let _ = reply.send(result);
            }
            Input::MessageDecided {
                device,
                req,
                to,
                body,
                outcome,
            } => {
                let reply = match outcome {
                    Ok(()) => match self.switch.message(device, &to, body) {
                        Ok(()) => ServerMessage::Ok { req, call_id: None },
                        Err(e) => switch_error(req, e),
                    },
                    Err(r) => error(
                        req,
                        ErrorCode::Denied,
                        format!("{} (policy `{}`)", r.reason, r.plugin),
                    ),
                };
                self.flush(Some((device, reply)));
            }
            Input::Reloaded { device, reply } => self.send(device, reply),
            Input::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    /// Serves one request; returns the reply to send once effects are
    /// durable, or `None` when the reply comes later (policy, file reads).
    fn request(&mut self, device: DeviceId, req: u64, request: Request) -> Option<ServerMessage> {
        let now = self.clock.now();
        let role = self.switch.role(device);
        match (&request, role) {
            (Request::Hello { .. }, Some(_)) => {
                return Some(switch_error(req, SwitchError::AlreadyAuthenticated));
            }
            (Request::Hello { .. }, None) => {}
            (_, None) => {
                return Some(error(
                    req,
                    ErrorCode::HelloRequired,
                    "say hello (with your token) before anything else".into(),
                ));
            }
            (r, Some(Role::User)) if r.is_admin() => {
                return Some(error(
                    req,
                    ErrorCode::Forbidden,
                    "this request needs the admin token".into(),
                ));
            }
            _ => {}
        }
        let chain = self
            .plugins
            .as_ref()
            .map(|p| p.chain())
            .filter(|c| !c.is_empty());
        let reply = match request {
            Request::Hello {
                version,
                token,
                device: label,
                act_as,
            } => {
                if version != PROTOCOL_VERSION {
                    self.refuse_hello(
                        device,
                        error(
                            req,
                            ErrorCode::UnsupportedVersion,
                            format!("this switch speaks protocol version {PROTOCOL_VERSION}, not {version}"),
                        ),
                    );
                    return None;
                }
                let hello = Hello {
                    token,
                    label,
                    act_as,
                };
                return match (
                    chain,
                    self.switch
                        .authenticate(&hello.token, hello.act_as.as_deref()),
                ) {
                    (_, Err(e)) => {
                        warn!(device, error = %e, "hello refused");
                        self.refuse_hello(device, switch_error(req, e));
                        None
                    }
                    // Users pass `on-connect`; a plain admin connection does not.
                    (Some(chain), Ok(Some(user))) => {
                        self.spawn_connect_decision(chain, device, req, user, hello);
                        None
                    }
                    (_, Ok(_)) => self.connect(
                        device,
                        req,
                        &hello.token,
                        hello.label,
                        hello.act_as.as_deref(),
                    ),
                };
            }
            Request::Dial { call_id, targets } => {
                let call_id = call_id.unwrap_or_else(Uuid::new_v4);
                let span = info_span!("call", %call_id);
                let _g = span.enter();
                // A call the operator places through the admin API (the
                // admin token acting as a user) is not put to policy.
                let chain = chain.filter(|_| !self.switch.is_admin_acting(device));
                match (chain, self.switch.check_dial(device, call_id, &targets)) {
                    (_, Err(e)) => switch_error(req, e),
                    (Some(chain), Ok((caller, _))) => {
                        self.spawn_dial_decision(chain, device, req, call_id, caller, targets);
                        return None;
                    }
                    (None, Ok(_)) => self.apply_dial(
                        device,
                        req,
                        call_id,
                        &targets,
                        DialDecision::Proceed {
                            targets: targets.clone(),
                        },
                        Vec::new(),
                    ),
                }
            }
            Request::Answer { call_id } => match (chain, self.switch.check_answer(device, call_id))
            {
                (_, Err(e)) => switch_error(req, e),
                (Some(chain), Ok(user)) => {
                    self.spawn_answer_decision(chain, device, req, call_id, user);
                    return None;
                }
                (None, Ok(_)) => self.call_op(req, call_id, |s| s.answer(now, device, call_id)),
            },
            Request::Decline { call_id } => {
                self.call_op(req, call_id, |s| s.decline(now, device, call_id))
            }
            Request::Pickup { call_id } => {
                self.call_op(req, call_id, |s| s.pickup(now, device, call_id))
            }
            Request::Hangup { call_id }
            | Request::Hold { call_id }
            | Request::Unhold { call_id }
            | Request::Dtmf { call_id, .. } => {
                // Policies with `on-action` are asked first, when the device
                // is joined to the call (else the switch's own error).
                // Bad digits get the switch's own error, unasked.
                let digits_ok = match &request {
                    Request::Dtmf { digits, .. } => crate::switch::valid_dtmf(digits),
                    _ => true,
                };
                let chain = chain
                    .filter(|c| c.iter().any(|p| p.actions))
                    .filter(|_| digits_ok && !self.switch.is_admin_acting(device))
                    .filter(|_| self.switch.is_joined(device, call_id));
                if let (Some(chain), Some(user)) = (chain, self.switch.device_user(device)) {
                    self.spawn_action_decision(chain, device, req, call_id, user, request);
                    return None;
                }
                self.apply_action(device, req, request)
            }
            Request::Invite { call_id, targets } => {
                self.call_op(req, call_id, |s| s.invite(now, device, call_id, &targets))
            }
            Request::Message { to, body } => {
                match (chain, self.switch.check_message(device, &to)) {
                    (_, Err(e)) => switch_error(req, e),
                    (Some(chain), Ok((sender, recipient))) => {
                        self.spawn_message_decision(
                            chain, device, req, sender, recipient, to, body,
                        );
                        return None;
                    }
                    (None, Ok(_)) => match self.switch.message(device, &to, body) {
                        Ok(()) => ServerMessage::Ok { req, call_id: None },
                        Err(e) => switch_error(req, e),
                    },
                }
            }
            Request::Ping => ServerMessage::Ok { req, call_id: None },
            Request::ListCalls => ServerMessage::Calls {
                req,
                calls: self.switch.calls(),
            },
            Request::ListUsers => ServerMessage::Users {
                req,
                users: self.switch.users(),
            },
            Request::Stats => ServerMessage::Stats {
                req,
                stats: self.stats_snapshot(),
            },
            Request::AdminHangup { call_id } => {
                self.call_op(req, call_id, |s| s.end_call(now, call_id, EndReason::Admin))
            }
            Request::ListPlugins => ServerMessage::Plugins {
                req,
                plugins: self.plugins.as_ref().map(|p| p.list()).unwrap_or_default(),
            },
            Request::ReloadPlugins { name } => {
                self.spawn_reload(device, req, name);
                return None;
            }
            Request::CallLog { call_id } => {
                self.spawn_call_log(device, req, call_id);
                return None;
            }
        };
        Some(reply)
    }

    /// Registers an authenticated device and makes its welcome.
    fn connect(
        &mut self,
        device: DeviceId,
        req: u64,
        token: &str,
        label: Option<String>,
        act_as: Option<&str>,
    ) -> Option<ServerMessage> {
        if !self.devices.contains_key(&device) {
            // Closed while policy decided.
            return None;
        }
        match self
            .switch
            .connect(self.clock.now(), device, token, label, act_as)
        {
            Ok(session) => {
                if !self.devices[&device].rings {
                    self.switch.set_rings(device, false);
                }
                info!(device, role = ?session.role, user = ?session.user.as_ref().map(|u| &u.name), "hello");
                self.refresh_online();
                Some(ServerMessage::Welcome {
                    req,
                    role: session.role,
                    user: session.user,
                    device_id: device,
                    server: format!("callswitch {}", env!("CARGO_PKG_VERSION")),
                })
            }
            Err(e) => {
                self.refuse_hello(device, switch_error(req, e));
                None
            }
        }
    }

    /// Sends a hello's error, then closes the connection (the writer
    /// flushes the error before closing).
    fn refuse_hello(&mut self, device: DeviceId, reply: ServerMessage) {
        self.send(device, reply);
        self.close(device, 1, "hello refused");
    }

    /// Places (or refuses) a dial as policy decided.
    fn apply_dial(
        &mut self,
        device: DeviceId,
        req: u64,
        call_id: Uuid,
        targets: &[String],
        decision: DialDecision,
        notes: Vec<PolicyNote>,
    ) -> ServerMessage {
        let now = self.clock.now();
        let span = info_span!("call", %call_id);
        let _g = span.enter();
        let result = match decision {
            DialDecision::Proceed { targets } => self
                .switch
                .dial_with_notes(now, device, call_id, &targets, notes)
                .map(|id| {
                    info!(device, ?targets, "dial");
                    ok(req, id)
                }),
            DialDecision::Busy { plugin, reason } => {
                info!(device, %plugin, %reason, "dial answered busy by policy");
                self.switch
                    .refuse_dial(now, device, call_id, targets, EndReason::Busy, notes)
                    .map(|id| ok(req, id))
            }
            DialDecision::Deny { plugin, reason } => {
                info!(device, %plugin, %reason, "dial denied by policy");
                self.switch
                    .refuse_dial(now, device, call_id, targets, EndReason::Denied, notes)
                    .map(|_| {
                        error(
                            req,
                            ErrorCode::Denied,
                            format!("{reason} (policy `{plugin}`)"),
                        )
                    })
            }
        };
        result.unwrap_or_else(|e| switch_error(req, e))
    }

    /// Carries out hold, unhold, DTMF or hang-up (after `on-action`).
    fn apply_action(&mut self, device: DeviceId, req: u64, request: Request) -> ServerMessage {
        let now = self.clock.now();
        match request {
            Request::Hangup { call_id } => {
                self.call_op(req, call_id, |s| s.hangup(now, device, call_id))
            }
            Request::Hold { call_id } => {
                self.call_op(req, call_id, |s| s.set_hold(now, device, call_id, true))
            }
            Request::Unhold { call_id } => {
                self.call_op(req, call_id, |s| s.set_hold(now, device, call_id, false))
            }
            Request::Dtmf { call_id, digits } => {
                self.call_op(req, call_id, |s| s.dtmf(now, device, call_id, &digits))
            }
            other => error(
                req,
                ErrorCode::Internal,
                format!("not a call action: {other:?}"),
            ),
        }
    }

    fn call_op(
        &mut self,
        req: u64,
        call_id: Uuid,
        op: impl FnOnce(&mut Switch) -> Result<(), SwitchError>,
    ) -> ServerMessage {
        let span = info_span!("call", %call_id);
        let _g = span.enter();
        match op(&mut self.switch) {
            Ok(()) => ok(req, call_id),
            Err(e) => {
                debug!(error = %e, "request refused");
                switch_error(req, e)
            }
        }
    }

    /// Reads a record off the driver (blocking file I/O).
    fn spawn_call_log(&self, device: DeviceId, req: u64, call_id: Uuid) {
        let dir = self.data_dir.clone();
        let outbox = self.devices.get(&device).map(|d| d.outbox.clone());
        tokio::task::spawn_blocking(move || {
            let reply = match CdrStore::find(&dir, call_id) {
                Ok(Some(record)) => ServerMessage::CallLog {
                    req,
                    record: Box::new(record),
                },
                Ok(None) => error(
                    req,
                    ErrorCode::UnknownCall,
                    format!("no record of call {call_id}"),
                ),
                Err(e) => error(req, ErrorCode::Internal, e.to_string()),
            };
            if let Some(outbox) = outbox {
                // A blocking-pool thread may wait for room in the outbox.
                outbox.blocking_send(Outbound::Message(Box::new(reply)));
            }
        });
    }

    /// Executes queued effects: media routes first (so audio flows as soon
    /// as a client learns its channel), then records (durable before anyone
    /// hears of the end), then the reply, then the other messages in order.
    fn flush(&mut self, reply: Option<(DeviceId, ServerMessage)>) {
        let effects: Vec<Effect> = std::iter::from_fn(|| self.switch.poll_effect()).collect();
        let mut sends = Vec::new();
        let mut records: Vec<Box<CallRecord>> = Vec::new();
        let mut touched = Vec::new();
        for effect in effects {
            match effect {
                Effect::Media { call_id, legs } => {
                    touched.push(call_id);
                    self.install_media(call_id, legs);
                }
                Effect::Record(r) => records.push(r),
                Effect::Send { device, message } => {
                    touched.extend(message.call_id());
                    sends.push((device, message));
                }
            }
        }
        for record in &mut records {
            if let Some(media) = self.calls.remove(&record.call_id) {
                record.media = media.counters.snapshot();
            }
            let span = info_span!("call", call_id = %record.call_id);
            let _g = span.enter();
            match self.cdr.append(record) {
                Ok(()) => {
                    info!(reason = ?record.end_reason, duration_ms = record.duration_ms, "call ended")
                }
                Err(e) => {
                    self.stats.records_failed.fetch_add(1, Relaxed);
                    error!(error = %e, "call record could not be written")
                }
            }
        }
        if self.plugins.is_some() {
            self.update_plugin_view(touched, &records);
        }
        if let Some((device, message)) = reply {
            self.send(device, message);
        }
        for (device, message) in sends {
            self.send(device, message);
        }
    }

    fn install_media(&mut self, call_id: Uuid, legs: Vec<MediaLeg>) {
        let entry = self.calls.entry(call_id).or_insert_with(|| CallMedia {
            counters: Arc::default(),
            legs: Vec::new(),
        });
        for old in &entry.legs {
            if let Some(d) = self.devices.get(&old.device) {
                d.media.remove_route(old.channel);
            }
        }
        for leg in &legs {
            let Some(d) = self.devices.get(&leg.device) else {
                continue;
            };
            let peers = legs
                .iter()
                .filter(|o| o.channel != leg.channel)
                .filter_map(|o| self.devices.get(&o.device).map(|p| p.sink.clone()))
                .collect();
            d.media.set_route(
                leg.channel,
                Arc::new(Route {
                    counters: entry.counters.clone(),
                    peers,
                }),
            );
        }
        entry.legs = legs;
    }

    fn send(&mut self, device: DeviceId, message: ServerMessage) {
        let Some(handle) = self.devices.get(&device) else {
            return;
        };
        if handle
            .outbox
            .try_send(Outbound::Message(Box::new(message)))
            .is_err()
        {
            // Only an adapter's channel fills (the network loop cuts off a
            // QUIC client that stops reading). Its dispatcher drains the
            // outbox without waiting on the plugin, so this is a stuck
            // task; the message is lost and logged.
            warn!(device, "adapter device's outbox full: message dropped");
        }
    }

    fn close(&mut self, device: DeviceId, code: u32, reason: &str) {
        if let Some(handle) = self.devices.get(&device) {
            let _ = handle.outbox.try_send(Outbound::Close {
                code,
                reason: reason.to_string(),
            });
        }
    }

    fn stats_snapshot(&self) -> StatsSnapshot {
        let c = self.switch.counts();
        let s = &self.stats;
        let bad = s.frames_dropped_bad_header.load(Relaxed);
        let no_route = s.frames_dropped_no_route.load(Relaxed);
        StatsSnapshot {
            connections: s.connections.load(Relaxed),
            devices_online: c.devices_online,
            calls_live: c.calls_live,
            calls_ringing: c.calls_ringing,
            calls_active: c.calls_active,
            calls_held: c.calls_held,
            calls_started: c.calls_started,
            calls_ended: c.calls_ended,
            frames_relayed: s.frames_relayed.load(Relaxed),
            frames_dropped: bad + no_route,
            frames_dropped_bad_header: bad,
            frames_dropped_no_route: no_route,
            frames_dropped_send: s.frames_dropped_send.load(Relaxed),
            records_failed: s.records_failed.load(Relaxed),
            plugin_events_dropped: s.plugin_events_dropped.load(Relaxed),
            uptime_ms: self.clock.start.elapsed().as_millis() as u64,
        }
    }

    fn shutdown(&mut self) {
        let live = self.switch.counts().calls_live;
        info!(live_calls = live, "shutting down: ending calls");
        self.switch.shutdown(self.clock.now());
        self.flush(None);
        let devices: Vec<DeviceId> = self.devices.keys().copied().collect();
        for device in devices {
            self.close(device, 0, "switch shutting down");
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
