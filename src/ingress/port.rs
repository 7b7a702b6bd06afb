//! One adapter's port to the switch (the `AdapterPort` the plugin host
//! calls): the devices it opened and the WebSocket streams it accepted.
//!
//! Each device gets a dispatcher task that reads what the switch sends it:
//! a reply is handed to the `devices.request` waiting for it; an event is
//! queued for the adapter's event pump. The dispatcher never waits on the
//! plugin, so a reply can never be stuck behind an event the plugin has
//! not taken yet (the plugin may be the one waiting for that reply).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use uuid::Uuid;

use super::metrics::IngressCounters;
use crate::plugins::port::{AdapterPort, PortError, PortFuture, StreamPayload};
use crate::plugins::AdapterPlugin;
use crate::server::{DeviceMedia, Outbound, StreamSlot, SwitchLink};
use crate::switch::{Directory, Identity, User};
use crate::wire::{ClientFrame, Request, ServerMessage, PROTOCOL_VERSION};

/// The device event that tells an adapter its device is closed.
fn closed_event(reason: &str) -> String {
    serde_json::json!({"type": "closed", "reason": reason}).to_string()
}

/// How long `devices.request` waits for the switch.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the writer of a stream sends.
#[derive(Debug)]
pub enum StreamOut {
    Message(StreamPayload),
    Close { code: u16, reason: String },
}

/// A stream's media attachment: the device whose leg it is.
#[derive(Clone)]
pub struct Attachment {
    pub device: Arc<DeviceEntry>,
    pub call_id: Uuid,
}

/// How a stream's messages are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    WebSocket,
    Grpc,
}

pub struct StreamEntry {
    pub kind: StreamKind,
    pub out: mpsc::Sender<StreamOut>,
    /// Audio for the stream (datagrams with their header).
    pub media_tx: mpsc::Sender<Bytes>,
    pub attached: Option<Attachment>,
}

pub struct DeviceEntry {
    pub id: u64,
    pub media: Arc<DeviceMedia>,
    slot: Arc<StreamSlot>,
    /// The channel this device sends on in each call (from `media` events).
    channels: Mutex<HashMap<Uuid, u32>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<ServerMessage>>>,
}

impl DeviceEntry {
    pub fn channel(&self, call_id: Uuid) -> Option<u32> {
        self.channels
            .lock()
            .expect("channels")
            .get(&call_id)
            .copied()
    }
}

pub struct AdapterLinks {
    pub name: String,
    link: SwitchLink,
    directory: Directory,
    pub counters: Arc<IngressCounters>,
    streams: Mutex<HashMap<u64, StreamEntry>>,
    devices: Mutex<HashMap<u64, Arc<DeviceEntry>>>,
    next_stream: Arc<AtomicU64>,
    next_req: AtomicU64,
    events: mpsc::Sender<(u64, String)>,
    adapter: OnceLock<Weak<AdapterPlugin>>,
}

impl AdapterLinks {
    /// A port for adapter `name`; `start_pump` must follow once the
    /// adapter is loaded.
    pub fn new(
        name: String,
        link: SwitchLink,
        directory: Directory,
        counters: Arc<IngressCounters>,
        next_stream: Arc<AtomicU64>,
        max_queued_events: usize,
    ) -> (Arc<Self>, mpsc::Receiver<(u64, String)>) {
        let (events, rx) = mpsc::channel(max_queued_events.max(1));
        let links = Arc::new(AdapterLinks {
            name,
            link,
            directory,
            counters,
            streams: Mutex::default(),
            devices: Mutex::default(),
            next_stream,
            next_req: AtomicU64::new(1),
            events,
            adapter: OnceLock::new(),
        });
        (links, rx)
    }

    /// Delivers device events to the adapter, one at a time, in order.
    pub fn start_pump(
        self: &Arc<Self>,
        adapter: &Arc<AdapterPlugin>,
        mut rx: mpsc::Receiver<(u64, String)>,
    ) {
        let _ = self.adapter.set(Arc::downgrade(adapter));
        let links = Arc::downgrade(self);
        let adapter = Arc::downgrade(adapter);
        tokio::spawn(async move {
            while let Some((device, event)) = rx.recv().await {
                let (Some(links), Some(adapter)) = (links.upgrade(), adapter.upgrade()) else {
                    return;
                };
                // Events of a device closed since (e.g. by a reset) would
                // name a device the adapter no longer has.
                let known = links.devices.lock().expect("devices").contains_key(&device);
                if known || event.starts_with(r#"{"type":"closed""#) {
                    let _ = adapter.on_device_event(device, &event).await;
                }
            }
        });
    }

    pub fn adapter(&self) -> Option<Arc<AdapterPlugin>> {
        self.adapter.get().and_then(Weak::upgrade)
    }

    /// Registers a new stream; returns its id.
    pub fn add_stream(
        &self,
        kind: StreamKind,
        out: mpsc::Sender<StreamOut>,
        media_tx: mpsc::Sender<Bytes>,
    ) -> u64 {
        let id = self.next_stream.fetch_add(1, Relaxed);
        self.streams.lock().expect("streams").insert(
            id,
            StreamEntry {
                kind,
                out,
                media_tx,
                attached: None,
            },
        );
        self.counters.streams_open.fetch_add(1, Relaxed);
        id
    }

    /// Forgets a stream; true if it was still registered (the adapter had
    /// not closed it).
    pub fn remove_stream(&self, id: u64) -> bool {
        let entry = self.streams.lock().expect("streams").remove(&id);
        match entry {
            Some(entry) => {
                self.counters.streams_open.fetch_sub(1, Relaxed);
                if let Some(a) = entry.attached {
                    a.device.slot.detach();
                }
                true
            }
            None => false,
        }
    }

    pub fn has_stream(&self, stream: u64) -> bool {
        self.streams.lock().expect("streams").contains_key(&stream)
    }

    pub fn stats(&self) -> Arc<crate::server::RelayStats> {
        self.link.stats.clone()
    }

    pub fn attachment(&self, stream: u64) -> Option<Attachment> {
        self.streams
            .lock()
            .expect("streams")
            .get(&stream)
            .and_then(|s| s.attached.clone())
    }

    fn device(&self, id: u64) -> Option<Arc<DeviceEntry>> {
        self.devices.lock().expect("devices").get(&id).cloned()
    }

    fn spawn_dispatcher(&self, entry: Arc<DeviceEntry>, mut outbox: mpsc::Receiver<Outbound>) {
        let events = self.events.clone();
        let link = self.link.clone();
        let counters = self.counters.clone();
        let adapter = self.name.clone();
        tokio::spawn(async move {
            while let Some(out) = outbox.recv().await {
                match out {
                    Outbound::Message(message) => {
                        let message = *message;
                        if let Some(req) = message.req() {
                            let waiting = entry.pending.lock().expect("pending").remove(&req);
                            if let Some(tx) = waiting {
                                let _ = tx.send(message);
                                continue;
                            }
                        }
                        match &message {
                            ServerMessage::Media {
                                call_id, channel, ..
                            } => {
                                entry
                                    .channels
                                    .lock()
                                    .expect("channels")
                                    .insert(*call_id, *channel);
                            }
                            ServerMessage::Ended { call_id, .. } => {
                                entry.channels.lock().expect("channels").remove(call_id);
                            }
                            _ => {}
                        }
                        let json = String::from_utf8(message.to_json()).expect("JSON is UTF-8");
                        match events.try_send((entry.id, json)) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                // The adapter is not taking its events: waiting
                                // would stall the device's replies, and dropping
                                // events would leave the adapter wrong about its
                                // calls. The device is closed instead, and the
                                // adapter told so after what was queued before.
                                counters.devices_cut_off.fetch_add(1, Relaxed);
                                warn!(
                                    adapter = %adapter,
                                    device = entry.id,
                                    "adapter's event queue is full; closing the device"
                                );
                                link.close_device(entry.id).await;
                                let reason = "the adapter did not take its device events in time (event queue full)";
                                let _ = events.send((entry.id, closed_event(reason))).await;
                                return;
                            }
                        }
                    }
                    Outbound::Close { reason, .. } => {
                        // Waits for room: this device sends nothing after it.
                        let _ = events.send((entry.id, closed_event(&reason))).await;
                        return;
                    }
                }
            }
        });
    }

    async fn ask(&self, entry: &DeviceEntry, request: Request) -> Result<ServerMessage, PortError> {
        let req = self.next_req.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        entry.pending.lock().expect("pending").insert(req, tx);
        if self.link.request(entry.id, req, request).await.is_err() {
            return Err(PortError::new("internal", "the switch is shutting down"));
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(PortError::new("internal", "the device was closed")),
            Err(_) => {
                entry.pending.lock().expect("pending").remove(&req);
                Err(PortError::new(
                    "timeout",
                    format!(
                        "no answer from the switch within {}s",
                        REQUEST_TIMEOUT.as_secs()
                    ),
                ))
            }
        }
    }

    fn forget_device(&self, id: u64) -> Option<Arc<DeviceEntry>> {
        let entry = self.devices.lock().expect("devices").remove(&id)?;
        entry.slot.detach();
        self.counters.devices_open.fetch_sub(1, Relaxed);
        let mut streams = self.streams.lock().expect("streams");
        for s in streams.values_mut() {
            if s.attached.as_ref().is_some_and(|a| a.device.id == id) {
                s.attached = None;
            }
        }
        Some(entry)
    }
}

/// A close reason fits a WebSocket close frame: at most 123 bytes, cut at
/// a character boundary.
fn cut_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

fn reply_error(message: ServerMessage) -> Result<String, PortError> {
    match message {
        ServerMessage::Error { code, message, .. } => {
            Err(PortError::new(code.to_string(), message))
        }
        other => Ok(String::from_utf8(other.to_json()).expect("JSON is UTF-8")),
    }
}

impl AdapterPort for AdapterLinks {
    fn authenticate(&self, token: &str) -> Result<User, PortError> {
        match self.directory.authenticate(token) {
            Some(Identity::User(id)) => self
                .directory
                .user(&id)
                .cloned()
                .ok_or_else(|| PortError::new("unauthorized", "unknown user")),
            Some(Identity::Admin) => Err(PortError::new(
                "unauthorized",
                "the admin token cannot act as a device through an adapter",
            )),
            None => Err(PortError::new("unauthorized", "invalid token")),
        }
    }

    fn open_device<'a>(
        &'a self,
        token: &'a str,
        label: &'a str,
        rings: bool,
    ) -> PortFuture<'a, Result<(u64, User), PortError>> {
        Box::pin(async move {
            let user = self.authenticate(token)?;
            let linked = self
                .link
                .open_device(rings)
                .await
                .map_err(|e| PortError::new("internal", e.to_string()))?;
            let entry = Arc::new(DeviceEntry {
                id: linked.id,
                media: linked.media,
                slot: linked.slot,
                channels: Mutex::default(),
                pending: Mutex::default(),
            });
            self.devices
                .lock()
                .expect("devices")
                .insert(entry.id, entry.clone());
            self.counters.devices_open.fetch_add(1, Relaxed);
            self.spawn_dispatcher(entry.clone(), linked.outbox);
            let hello = Request::Hello {
                version: PROTOCOL_VERSION,
                token: token.to_string(),
                device: Some(label.to_string()),
                act_as: None,
            };
            match self.ask(&entry, hello).await {
                Ok(ServerMessage::Welcome { .. }) => {
                    debug!(adapter = %self.name, device = entry.id, user = %user.name, "adapter device open");
                    Ok((entry.id, user))
                }
                other => {
                    self.close_device(entry.id);
                    Err(match other {
                        Ok(ServerMessage::Error { code, message, .. }) => {
                            PortError::new(code.to_string(), message)
                        }
                        Ok(m) => PortError::new("internal", format!("unexpected reply {m:?}")),
                        Err(e) => e,
                    })
                }
            }
        })
    }

    fn request(&self, device: u64, request: String) -> PortFuture<'_, Result<String, PortError>> {
        Box::pin(async move {
            let entry = self
                .device(device)
                .ok_or_else(|| PortError::new("bad_request", format!("unknown device {device}")))?;
            // Decode as the switch decodes a client frame, for the same
            // specific errors; `req` is the host's to assign.
            let mut value: Value = serde_json::from_str(&request).map_err(|e| {
                PortError::new("malformed_frame", format!("request is not valid JSON: {e}"))
            })?;
            let Value::Object(map) = &mut value else {
                return Err(PortError::new(
                    "malformed_frame",
                    "request is not a JSON object",
                ));
            };
            map.insert("req".into(), Value::from(0u64));
            let frame = ClientFrame::from_json(value.to_string().as_bytes())
                .map_err(|e| PortError::new(e.code.to_string(), e.message))?;
            if matches!(frame.request, Request::Hello { .. }) || frame.request.is_admin() {
                return Err(PortError::new(
                    "bad_request",
                    "an adapter's device cannot send hello or admin requests",
                ));
            }
            reply_error(self.ask(&entry, frame.request).await?)
        })
    }

    fn close_device(&self, device: u64) {
        if self.forget_device(device).is_some() {
            let link = self.link.clone();
            tokio::spawn(async move { link.close_device(device).await });
        }
    }

    fn stream_send(&self, stream: u64, message: StreamPayload) -> Result<(), String> {
        let streams = self.streams.lock().expect("streams");
        let entry = streams
            .get(&stream)
            .ok_or_else(|| format!("unknown stream {stream}"))?;
        if entry.kind == StreamKind::Grpc && matches!(message, StreamPayload::Text(_)) {
            return Err(format!(
                "stream {stream} is a gRPC call: only binary messages can be sent"
            ));
        }
        let sent = entry.out.try_send(StreamOut::Message(message));
        let kind = entry.kind;
        drop(streams);
        match sent {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                // A peer that does not read would hold messages without
                // bound: it is cut off, as the WIT says.
                let code = match kind {
                    StreamKind::WebSocket => 1008,
                    StreamKind::Grpc => super::grpc::STATUS_RESOURCE_EXHAUSTED,
                };
                self.stream_close(stream, code, "the peer does not read its messages");
                Err(format!(
                    "stream {stream} is not reading: its queue is full; it was closed"
                ))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(format!("stream {stream} is closed")),
        }
    }

    fn stream_close(&self, stream: u64, code: u16, reason: &str) {
        let entry = self
            .streams
            .lock()
            .expect("streams")
            .get(&stream)
            .map(|s| s.out.clone());
        if let Some(out) = entry {
            self.remove_stream(stream);
            // With the queue full the close frame cannot be queued: the
            // writer then ends when the queue drains, dropping the socket.
            let _ = out.try_send(StreamOut::Close {
                code,
                reason: cut_reason(reason),
            });
        }
    }

    fn attach_media(&self, stream: u64, device: u64, call_id: &str) -> Result<(), String> {
        let call_id =
            Uuid::parse_str(call_id).map_err(|_| format!("call id `{call_id}` is not a UUID"))?;
        let device = self
            .device(device)
            .ok_or_else(|| format!("unknown device {device} (not opened by this adapter)"))?;
        let mut streams = self.streams.lock().expect("streams");
        if streams
            .get(&stream)
            .is_some_and(|s| s.kind == StreamKind::Grpc)
        {
            return Err(format!(
                "stream {stream} is a gRPC call: media can only be attached to a WebSocket"
            ));
        }
        // A device has one attached stream: detach it from any other.
        for s in streams.values_mut() {
            if s.attached
                .as_ref()
                .is_some_and(|a| a.device.id == device.id)
            {
                s.attached = None;
            }
        }
        let entry = streams
            .get_mut(&stream)
            .ok_or_else(|| format!("unknown stream {stream}"))?;
        device.slot.attach(entry.media_tx.clone());
        entry.attached = Some(Attachment { device, call_id });
        Ok(())
    }

    fn call_record(&self, call_id: &str) -> PortFuture<'_, Option<String>> {
        let call_id = Uuid::parse_str(call_id).ok();
        let link = self.link.clone();
        Box::pin(async move {
            let call_id = call_id?;
            let found = tokio::task::spawn_blocking(move || link.record(call_id))
                .await
                .ok()?;
            match found {
                Ok(record) => record.map(|r| serde_json::to_string(&r).expect("records serialise")),
                Err(e) => {
                    warn!(error = %e, "reading the call record for an adapter");
                    None
                }
            }
        })
    }

    fn live_events(&self, call_id: &str) -> PortFuture<'_, Option<String>> {
        let call_id = Uuid::parse_str(call_id).ok();
        Box::pin(async move {
            let events = self.link.live_events(call_id?).await.ok()??;
            Some(serde_json::to_string(&events).expect("events serialise"))
        })
    }

    fn reset(&self, reason: &str) {
        let streams: Vec<u64> = self
            .streams
            .lock()
            .expect("streams")
            .keys()
            .copied()
            .collect();
        for s in streams {
            let grpc = self
                .streams
                .lock()
                .expect("streams")
                .get(&s)
                .is_some_and(|e| e.kind == StreamKind::Grpc);
            // 1011 "internal error" for a WebSocket; for a gRPC call,
            // UNAVAILABLE: the client may retry on the fresh instance.
            let code = if grpc {
                super::grpc::STATUS_UNAVAILABLE
            } else {
                1011
            };
            self.stream_close(s, code, reason);
        }
        let devices: Vec<u64> = self
            .devices
            .lock()
            .expect("devices")
            .keys()
            .copied()
            .collect();
        for d in devices {
            self.close_device(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cut_reason;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(cut_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = cut_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(&cut));
        assert_eq!(cut.len(), 122);
    }
}
