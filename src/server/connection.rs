//! One QUIC connection's state inside the network loop: quinn-proto's
//! connection, the control stream (frames read off it and checked, replies
//! queued onto it), the close sequence and the connection's deadlines. No
//! task, channel or timer of its own: the loop calls in when a packet, a
//! command or a deadline concerns it, and it answers with inputs for the
//! driver and datagrams for the relay.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use quinn_proto::{Dir, ReadError, StreamEvent, StreamId, VarInt, WriteError};
use tracing::{debug, info, warn, Span};

use super::driver::{Input, Outbound, OUTBOX_DEPTH};
use super::relay::DeviceMedia;
use crate::switch::DeviceId;
use crate::wire::{
    decode_frame_len, encode_frame_max, ClientFrame, ErrorCode, FrameError, ServerMessage,
    FRAME_HEADER_LEN, MAX_SERVER_FRAME_LEN,
};

/// How long a new connection may take to open its control stream.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the peer to read the last messages.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// One connection, owned by the network loop.
pub struct Conn {
    pub device: DeviceId,
    pub proto: quinn_proto::Connection,
    pub span: Span,
    pub media: Arc<DeviceMedia>,
    /// Whether the handshake completed (counted in the switch's stats).
    pub connected: bool,
    /// Whether the driver knows this device (`Input::Open` sent).
    opened: bool,
    /// Whether the driver has been told it is gone (`Input::Closed` sent).
    closed_reported: bool,
    control: Option<StreamId>,
    /// Bytes read off the control stream, not yet a whole frame.
    read_buf: BytesMut,
    /// Encoded frames not yet taken by the stream (flow control).
    write_queue: VecDeque<Bytes>,
    /// The close to apply once the queue is written and read.
    closing: Option<(u32, String)>,
    finish_sent: bool,
    /// The app's own deadline: the stream timeout, or the flush timeout.
    pub app_deadline: Option<Instant>,
    /// The deadline this connection is filed under in the loop's timers.
    pub timer: Option<Instant>,
    /// Queued in the loop's list of connections with events to handle.
    pub dirty: bool,
    /// Queued in the loop's list of connections to flush to the socket.
    pub flush: bool,
    /// Its control stream may have data to read.
    pub wants_read: bool,
    /// Listed in the loop's connections waiting for the driver's backlog.
    pub read_paused: bool,
    pub lost: Option<quinn_proto::ConnectionError>,
}

impl Conn {
    pub fn new(device: DeviceId, proto: quinn_proto::Connection) -> Self {
        let span = tracing::info_span!("conn", device, remote = %proto.remote_address());
        Conn {
            device,
            proto,
            span,
            media: Arc::new(DeviceMedia::default()),
            connected: false,
            opened: false,
            closed_reported: false,
            control: None,
            read_buf: BytesMut::new(),
            write_queue: VecDeque::new(),
            closing: None,
            finish_sent: false,
            app_deadline: None,
            timer: None,
            dirty: false,
            flush: false,
            wants_read: false,
            read_paused: false,
            lost: None,
        }
    }

    /// The earliest of quinn's timers and the app's deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        match (self.proto.poll_timeout(), self.app_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A deadline filed under this connection passed.
    pub fn on_timeout(&mut self, now: Instant) {
        self.proto.handle_timeout(now);
        if self.app_deadline.is_some_and(|d| d <= now) {
            self.app_deadline = None;
            if self.control.is_none() {
                self.close_now(now, 4, "no control stream opened");
            } else if let Some((code, reason)) = self.closing.clone() {
                // The peer did not read the last messages in time.
                self.close_now(now, code, &reason);
            }
        }
    }

    /// Handles quinn's events for this connection. Datagrams received are
    /// appended to `datagrams` for the relay; inputs for the driver to
    /// `inputs`.
    pub fn poll_events(
        &mut self,
        now: Instant,
        inputs: &mut Vec<Input>,
        datagrams: &mut Vec<Bytes>,
        make_open: &mut dyn FnMut(&Conn) -> Input,
    ) {
        while let Some(event) = self.proto.poll() {
            use quinn_proto::Event;
            match event {
                Event::Connected => {
                    self.connected = true;
                    // The control stream's time starts with the handshake's end.
                    if self.control.is_none() {
                        self.app_deadline = Some(now + STREAM_TIMEOUT);
                    }
                    info!(parent: &self.span, "connected");
                }
                Event::ConnectionLost { reason } => {
                    if self.connected {
                        debug!(parent: &self.span, %reason, "connection lost");
                    } else {
                        debug!(parent: &self.span, error = %reason, "handshake failed");
                    }
                    self.lost = Some(reason);
                    self.report_closed(inputs);
                }
                Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                    while let Some(id) = self.proto.streams().accept(Dir::Bi) {
                        if self.control.is_none() && self.lost.is_none() {
                            self.control = Some(id);
                            self.app_deadline = None;
                            self.opened = true;
                            inputs.push(make_open(self));
                            self.wants_read = true;
                        }
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) if Some(id) == self.control => {
                    self.wants_read = true;
                }
                Event::Stream(StreamEvent::Writable { id }) if Some(id) == self.control => {
                    self.flush_writes(now);
                }
                Event::Stream(StreamEvent::Finished { id })
                | Event::Stream(StreamEvent::Stopped { id, .. })
                    if Some(id) == self.control =>
                {
                    // The peer has everything we wrote (or wants no more).
                    if let Some((code, reason)) = self.closing.clone() {
                        self.close_now(now, code, &reason);
                    }
                }
                Event::DatagramReceived => {
                    while let Some(datagram) = self.proto.datagrams().recv() {
                        datagrams.push(datagram);
                    }
                }
                _ => {}
            }
        }
    }

    /// Reads whole frames off the control stream until it has no more or
    /// `inputs` holds `budget` entries: requests go to the driver, bad
    /// frames get an error reply. Bytes are pulled from quinn only when no
    /// whole frame is buffered, so a client that floods requests is held
    /// back by its own flow control while the driver catches up.
    pub fn read_control(&mut self, now: Instant, inputs: &mut Vec<Input>, budget: usize) {
        let Some(id) = self.control else {
            self.wants_read = false;
            return;
        };
        loop {
            if self.lost.is_some() || self.closed_reported {
                self.wants_read = false;
                return;
            }
            // Whole frames already read.
            while inputs.len() < budget {
                if self.read_buf.len() < FRAME_HEADER_LEN {
                    break;
                }
                let header: [u8; FRAME_HEADER_LEN] = self.read_buf[..FRAME_HEADER_LEN]
                    .try_into()
                    .expect("header length");
                let len = match decode_frame_len(header) {
                    Ok(len) => len,
                    Err(e) => {
                        let code = match e {
                            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
                            FrameError::Empty => ErrorCode::MalformedFrame,
                        };
                        // Framing is lost: report and close.
                        self.queue_message(&error_reply(None, code, e.to_string()), now);
                        self.close_after_flush(now, 2, e.to_string());
                        self.read_buf = BytesMut::new();
                        self.report_closed(inputs);
                        self.wants_read = false;
                        return;
                    }
                };
                if self.read_buf.len() < FRAME_HEADER_LEN + len {
                    break;
                }
                self.read_buf.advance(FRAME_HEADER_LEN);
                let body = self.read_buf.split_to(len);
                match ClientFrame::from_json(&body) {
                    Ok(ClientFrame { req, request }) => inputs.push(Input::Request {
                        device: self.device,
                        req,
                        request,
                    }),
                    Err(e) => {
                        debug!(parent: &self.span, code = %e.code, message = %e.message, "bad frame");
                        self.queue_message(&error_reply(e.req, e.code, e.message), now);
                    }
                }
            }
            if inputs.len() >= budget {
                // The driver is behind: resume when the loop says so.
                self.wants_read = true;
                return;
            }
            if self.read_buf.is_empty() && self.read_buf.capacity() > 4096 {
                // Give back a large frame's buffer.
                self.read_buf = BytesMut::new();
            }
            // More bytes from quinn.
            let mut stream = self.proto.recv_stream(id);
            let Ok(mut chunks) = stream.read(true) else {
                self.wants_read = false;
                return;
            };
            let pulled = chunks.next(usize::MAX);
            // Flow-control credit goes out with the next transmit.
            let _ = chunks.finalize();
            match pulled {
                Ok(Some(chunk)) => self.read_buf.extend_from_slice(&chunk.bytes),
                Err(ReadError::Blocked) => {
                    self.wants_read = false;
                    return;
                }
                Ok(None) | Err(ReadError::Reset(_)) => {
                    // The client finished its stream: it is leaving.
                    self.report_closed(inputs);
                    self.close_after_flush(now, 0, "bye".into());
                    self.wants_read = false;
                    return;
                }
            }
        }
    }

    /// Queues one message from the driver.
    pub fn outbound(&mut self, out: Outbound, now: Instant) {
        match out {
            Outbound::Message(message) => {
                if self.closing.is_some() {
                    return;
                }
                self.queue_message(&message, now);
                if self.write_queue.len() > OUTBOX_DEPTH {
                    warn!(parent: &self.span, "control outbox full: closing the connection");
                    self.write_queue.clear();
                    self.close_now(now, 3, "control messages not read");
                }
            }
            Outbound::Close { code, reason } => self.close_after_flush(now, code, reason),
        }
    }

    /// Closes the connection at once (quinn sends CONNECTION_CLOSE).
    pub fn close_now(&mut self, now: Instant, code: u32, reason: &str) {
        if self.lost.is_none() && !self.proto.is_closed() {
            self.proto.close(
                now,
                VarInt::from_u32(code),
                Bytes::copy_from_slice(reason.as_bytes()),
            );
        }
    }

    /// Tells the driver the device is gone if the connection is closing,
    /// whoever closed it: the peer, a timeout, or the switch itself
    /// (quinn-proto reports no loss for a close of our own).
    pub fn report_if_closed(&mut self, inputs: &mut Vec<Input>) {
        if self.proto.is_closed() || self.lost.is_some() {
            self.report_closed(inputs);
        }
    }

    /// Tells the driver the device is gone, once.
    fn report_closed(&mut self, inputs: &mut Vec<Input>) {
        if self.opened && !self.closed_reported {
            self.closed_reported = true;
            inputs.push(Input::Closed {
                device: self.device,
            });
        }
    }

    fn queue_message(&mut self, message: &ServerMessage, now: Instant) {
        let frame = match encode_frame_max(&message.to_json(), MAX_SERVER_FRAME_LEN) {
            Ok(frame) => frame,
            Err(e) => {
                // Tell the client instead of silently dropping the reply.
                let error = error_reply(
                    message.req(),
                    ErrorCode::Internal,
                    format!("reply too large: {e}"),
                );
                encode_frame_max(&error.to_json(), MAX_SERVER_FRAME_LEN).expect("small error")
            }
        };
        self.write_queue.push_back(Bytes::from(frame));
        self.flush_writes(now);
    }

    /// Finishes the stream after what is queued, then closes the connection
    /// when the peer has read it (or after `FLUSH_TIMEOUT`).
    fn close_after_flush(&mut self, now: Instant, code: u32, reason: String) {
        if self.closing.is_none() {
            self.closing = Some((code, reason));
            self.flush_writes(now);
        }
    }

    /// Hands queued frames to the stream as far as flow control allows;
    /// once a closing connection's queue is empty, finishes the stream.
    fn flush_writes(&mut self, now: Instant) {
        let Some(id) = self.control else { return };
        let mut stream = self.proto.send_stream(id);
        // Whole `Bytes` are handed over (no copy); a chunk written in part
        // is advanced in place and stays first in the queue.
        loop {
            let (chunks, _) = self.write_queue.as_mut_slices();
            let queued = chunks.len();
            if queued == 0 {
                break;
            }
            match stream.write_chunks(chunks) {
                Ok(written) => {
                    self.write_queue.drain(..written.chunks);
                    if written.chunks < queued {
                        break;
                    }
                }
                Err(WriteError::Blocked) => break,
                Err(_) => {
                    // Stopped or closed: nobody reads these any more.
                    self.write_queue.clear();
                    break;
                }
            }
        }
        if !self.write_queue.is_empty() || self.closing.is_none() || self.finish_sent {
            return;
        }
        self.finish_sent = true;
        if stream.finish().is_ok() {
            self.app_deadline = Some(now + FLUSH_TIMEOUT);
        } else {
            let (code, reason) = self.closing.clone().expect("closing");
            self.close_now(now, code, &reason);
        }
    }
}

fn error_reply(req: Option<u64>, code: ErrorCode, message: String) -> ServerMessage {
    ServerMessage::Error { req, code, message }
}
