//! The control driver: one task that owns the sans-IO [`Switch`], feeds it
//! what connections say and the ring timers, and executes its effects:
//! installs media routes, appends records, and queues messages on each
//! connection's outbox.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, info_span, warn};
use uuid::Uuid;

use super::relay::{CallCounters, DeviceMedia, RelayStats, Route};
use crate::cdr::CdrStore;
use crate::switch::{DeviceId, Effect, MediaLeg, Switch, SwitchError};
use crate::wire::{
    EndReason, ErrorCode, Millis, Request, Role, ServerMessage, StatsSnapshot, PROTOCOL_VERSION,
};

/// What a connection's outbox carries to its writer.
#[derive(Debug)]
pub enum Outbound {
    Message(ServerMessage),
    /// Flush what is queued, then close the connection with this reason.
    Close {
        code: u32,
        reason: String,
    },
}

/// Outbox depth per connection. A client that lets this many control
/// messages pile up unread is cut off rather than slowing the driver.
pub const OUTBOX_DEPTH: usize = 1024;

/// Inputs from connection tasks.
pub enum Input {
    /// A connection's first stream opened: remember how to reach it.
    Open {
        device: DeviceId,
        conn: quinn::Connection,
        outbox: mpsc::Sender<Outbound>,
        media: Arc<DeviceMedia>,
    },
    /// A request read from a connection's control stream.
    Request {
        device: DeviceId,
        req: u64,
        request: Request,
    },
    /// The connection closed or timed out.
    Closed { device: DeviceId },
    /// End every call, record them, close every connection.
    Shutdown { done: oneshot::Sender<()> },
}

struct DeviceHandle {
    conn: quinn::Connection,
    outbox: mpsc::Sender<Outbound>,
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
}

impl Driver {
    pub fn new(switch: Switch, cdr: CdrStore, data_dir: PathBuf, stats: Arc<RelayStats>) -> Self {
        Driver {
            switch,
            cdr,
            data_dir,
            devices: HashMap::new(),
            calls: HashMap::new(),
            stats,
            clock: Clock::new(),
        }
    }

    /// Runs until a `Shutdown` input (or every sender is gone).
    pub async fn run(mut self, mut inputs: mpsc::Receiver<Input>) {
        loop {
            let wake = self.switch.poll_timeout().map(|t| self.clock.instant_at(t));
            let input = tokio::select! {
                input = inputs.recv() => input,
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
            Input::Open {
                device,
                conn,
                outbox,
                media,
            } => {
                self.devices.insert(
                    device,
                    DeviceHandle {
                        conn,
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
                self.flush(None);
            }
            Input::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    /// Serves one request; returns the reply to send once effects are
    /// durable, or `None` when the reply is sent later.
    fn request(&mut self, device: DeviceId, req: u64, request: Request) -> Option<ServerMessage> {
        let now = self.clock.now();
        let role = self.switch.role(device);
        let error = |code: ErrorCode, message: String| ServerMessage::Error {
            req: Some(req),
            code,
            message,
        };
        let from = |e: SwitchError| error(e.code(), e.to_string());
        let ok = |call_id: Uuid| ServerMessage::Ok {
            req,
            call_id: Some(call_id),
        };
        match (&request, role) {
            (Request::Hello { .. }, Some(_)) => {
                return Some(from(SwitchError::AlreadyAuthenticated));
            }
            (Request::Hello { .. }, None) => {}
            (_, None) => {
                return Some(error(
                    ErrorCode::HelloRequired,
                    "say hello (with your token) before anything else".into(),
                ));
            }
            (r, Some(Role::User)) if r.is_admin() => {
                return Some(error(
                    ErrorCode::Forbidden,
                    "this request needs the admin token".into(),
                ));
            }
            _ => {}
        }
        let reply = match request {
            Request::Hello {
                version,
                token,
                device: label,
                act_as,
            } => {
                if version != PROTOCOL_VERSION {
                    let reply = error(
                        ErrorCode::UnsupportedVersion,
                        format!(
                            "this switch speaks protocol version {PROTOCOL_VERSION}, not {version}"
                        ),
                    );
                    self.send(device, reply);
                    self.close(device, 2, "unsupported protocol version");
                    return None;
                }
                match self
                    .switch
                    .connect(now, device, &token, label, act_as.as_deref())
                {
                    Ok(session) => {
                        info!(device, role = ?session.role, user = ?session.user.as_ref().map(|u| &u.name), "hello");
                        ServerMessage::Welcome {
                            req,
                            role: session.role,
                            user: session.user,
                            device_id: device,
                            server: format!("callswitch {}", env!("CARGO_PKG_VERSION")),
                        }
                    }
                    Err(e) => {
                        warn!(device, error = %e, "hello refused");
                        // The error goes out first: the writer flushes before closing.
                        let reply = from(e);
                        self.send(device, reply);
                        self.close(device, 1, "unauthorized");
                        return None;
                    }
                }
            }
            Request::Dial { call_id, targets } => {
                let call_id = call_id.unwrap_or_else(Uuid::new_v4);
                let span = info_span!("call", %call_id);
                let _g = span.enter();
                match self.switch.dial(now, device, call_id, &targets) {
                    Ok(id) => {
                        info!(device, ?targets, "dial");
                        ok(id)
                    }
                    Err(e) => from(e),
                }
            }
            Request::Answer { call_id } => {
                self.call_op(call_id, ok, from, |s| s.answer(now, device, call_id))
            }
            Request::Decline { call_id } => {
                self.call_op(call_id, ok, from, |s| s.decline(now, device, call_id))
            }
            Request::Hangup { call_id } => {
                self.call_op(call_id, ok, from, |s| s.hangup(now, device, call_id))
            }
            Request::Hold { call_id } => self.call_op(call_id, ok, from, |s| {
                s.set_hold(now, device, call_id, true)
            }),
            Request::Unhold { call_id } => self.call_op(call_id, ok, from, |s| {
                s.set_hold(now, device, call_id, false)
            }),
            Request::Dtmf { call_id, digits } => {
                self.call_op(call_id, ok, from, |s| s.dtmf(now, device, call_id, &digits))
            }
            Request::Invite { call_id, targets } => self.call_op(call_id, ok, from, |s| {
                s.invite(now, device, call_id, &targets)
            }),
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
            Request::AdminHangup { call_id } => self.call_op(call_id, ok, from, |s| {
                s.end_call(now, call_id, EndReason::Admin)
            }),
            Request::CallLog { call_id } => {
                // Reading the file is blocking I/O: do it off the driver.
                let dir = self.data_dir.clone();
                let outbox = self.devices.get(&device).map(|d| d.outbox.clone());
                tokio::task::spawn_blocking(move || {
                    let reply = match CdrStore::find(&dir, call_id) {
                        Ok(Some(record)) => ServerMessage::CallLog {
                            req,
                            record: Box::new(record),
                        },
                        Ok(None) => ServerMessage::Error {
                            req: Some(req),
                            code: ErrorCode::UnknownCall,
                            message: format!("no record of call {call_id}"),
                        },
                        Err(e) => ServerMessage::Error {
                            req: Some(req),
                            code: ErrorCode::Internal,
                            message: e.to_string(),
                        },
                    };
                    if let Some(outbox) = outbox {
                        let _ = outbox.try_send(Outbound::Message(reply));
                    }
                });
                return None;
            }
        };
        Some(reply)
    }

    fn call_op(
        &mut self,
        call_id: Uuid,
        ok: impl Fn(Uuid) -> ServerMessage,
        from: impl Fn(SwitchError) -> ServerMessage,
        op: impl FnOnce(&mut Switch) -> Result<(), SwitchError>,
    ) -> ServerMessage {
        let span = info_span!("call", %call_id);
        let _g = span.enter();
        match op(&mut self.switch) {
            Ok(()) => ok(call_id),
            Err(e) => {
                debug!(error = %e, "request refused");
                from(e)
            }
        }
    }

    /// Executes queued effects: media routes first (so audio flows as soon
    /// as a client learns its channel), then records (durable before anyone
    /// hears of the end), then the reply, then the other messages in order.
    fn flush(&mut self, reply: Option<(DeviceId, ServerMessage)>) {
        let effects: Vec<Effect> = std::iter::from_fn(|| self.switch.poll_effect()).collect();
        let mut sends = Vec::new();
        let mut records = Vec::new();
        for effect in effects {
            match effect {
                Effect::Media { call_id, legs } => self.install_media(call_id, legs),
                Effect::Record(r) => records.push(r),
                Effect::Send { device, message } => sends.push((device, message)),
            }
        }
        for mut record in records {
            if let Some(media) = self.calls.remove(&record.call_id) {
                record.media = media.counters.snapshot();
            }
            let span = info_span!("call", call_id = %record.call_id);
            let _g = span.enter();
            match self.cdr.append(&record) {
                Ok(()) => {
                    info!(reason = ?record.end_reason, duration_ms = record.duration_ms, "call ended")
                }
                Err(e) => error!(error = %e, "call record could not be written"),
            }
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
                .filter_map(|o| self.devices.get(&o.device).map(|p| p.conn.clone()))
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
        if let Err(mpsc::error::TrySendError::Full(_)) =
            handle.outbox.try_send(Outbound::Message(message))
        {
            warn!(device, "control outbox full: closing the connection");
            handle.conn.close(3u32.into(), b"control messages not read");
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
