//! The QUIC network loop: one task owns the UDP socket, the quinn-proto
//! endpoint and every connection, with no task, channel or timer per
//! connection. Packets are read in batches (recvmmsg, GRO); a datagram is
//! decrypted, routed and queued on its peers' connections in the same pass,
//! and every connection touched is then flushed to the socket once. The
//! driver reaches connections through [`QuicSink`]s (one unbounded channel
//! into the loop); the loop hands the driver requests through its bounded
//! input channel, holding clients back by their flow control when the
//! driver falls behind.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, IoSliceMut};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn::udp::{self, RecvMeta, UdpSocketState, BATCH_SIZE};
use quinn_proto::{ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, ServerConfig};
use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::connection::Conn;
use super::driver::{Input, Outbound};
use super::outbox::Outbox;
use super::relay::{MediaSink, RelayStats};
use super::send_batch::SendBatch;
use crate::switch::DeviceId;

/// Room for one GRO batch per receive slot (the kernel's 64 KiB cap).
const RECV_SLOT: usize = 64 * 1024;
/// Most GSO segments in one send.
const MAX_GSO_SEGMENTS: usize = 10;
/// Receive batches handled before the loop flushes what they produced.
const RECV_BATCHES_PER_PASS: usize = 8;
/// Inputs waiting for room in the driver's channel before the loop stops
/// reading control streams.
const BACKLOG_LIMIT: usize = 1024;
/// Commands taken per pass, so a flood of them cannot starve the socket.
const COMMANDS_PER_PASS: usize = 1024;
/// How soon a full driver channel is tried again.
const BACKLOG_RETRY: Duration = Duration::from_millis(1);
/// How long shutdown waits for clients to leave before closing them, and
/// then for the closes to be delivered.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);

/// What the rest of the switch asks of the loop.
#[derive(Debug)]
pub enum Command {
    Outbound {
        key: usize,
        device: DeviceId,
        out: Outbound,
    },
    Datagram {
        key: usize,
        device: DeviceId,
        datagram: Bytes,
    },
    StopAccepting,
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// The way to one QUIC device: its control messages and its audio.
#[derive(Debug, Clone)]
pub struct QuicSink {
    key: usize,
    device: DeviceId,
    tx: mpsc::UnboundedSender<Command>,
}

impl QuicSink {
    /// Queues a control message (or a close) on the device's stream.
    pub fn send_outbound(&self, out: Outbound) {
        let _ = self.tx.send(Command::Outbound {
            key: self.key,
            device: self.device,
            out,
        });
    }

    /// Queues a datagram from outside the loop; false when the loop is gone.
    pub fn send_datagram(&self, datagram: Bytes) -> bool {
        self.tx
            .send(Command::Datagram {
                key: self.key,
                device: self.device,
                datagram,
            })
            .is_ok()
    }
}

/// The running loop, as the server holds it.
pub struct LoopHandle {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl LoopHandle {
    pub fn stop_accepting(&self) {
        let _ = self.commands.send(Command::StopAccepting);
    }

    /// Lets clients leave (up to 3 s), closes the rest, waits for the
    /// closes to go out (up to 2 s) and ends the loop.
    pub async fn shutdown(self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).is_ok() {
            let _ = wait.await;
        }
        let _ = self.task.await;
    }
}

/// Starts the loop on the current tokio runtime.
pub fn spawn(
    socket: std::net::UdpSocket,
    server: Arc<ServerConfig>,
    driver: mpsc::Sender<Input>,
    stats: Arc<RelayStats>,
    next_device: Arc<AtomicU64>,
) -> io::Result<LoopHandle> {
    let udp = UdpSocketState::new((&socket).into())?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(socket)?;
    let endpoint = Endpoint::new(
        Arc::new(EndpointConfig::default()),
        Some(server),
        !udp.may_fragment(),
        None,
    );
    let (tx, commands) = mpsc::unbounded_channel();
    let net = QuicLoop {
        max_gso: udp.max_gso_segments().clamp(1, MAX_GSO_SEGMENTS),
        socket,
        udp,
        endpoint,
        conns: Vec::new(),
        timers: BTreeSet::new(),
        dirty: Vec::new(),
        flush: Vec::new(),
        tx: tx.clone(),
        commands,
        driver,
        backlog: VecDeque::new(),
        paused: Vec::new(),
        stats,
        next_device,
        recv_buf: vec![0; RECV_SLOT * BATCH_SIZE].into_boxed_slice(),
        response_buf: Vec::new(),
        outgoing: SendBatch::default(),
        inputs: Vec::new(),
        datagrams: Vec::new(),
        accepting: true,
        shutdown: None,
    };
    let task = tokio::spawn(net.run());
    Ok(LoopHandle { commands: tx, task })
}

/// A shutdown in progress.
struct Shutdown {
    /// Until then, clients are being told and may leave by themselves;
    /// then the rest are closed and `until` moves on by the drain time.
    until: Instant,
    /// The rest were closed; waiting for the closes to go out.
    closed_rest: bool,
    done: oneshot::Sender<()>,
}

struct QuicLoop {
    socket: tokio::net::UdpSocket,
    udp: UdpSocketState,
    max_gso: usize,
    endpoint: Endpoint,
    /// Indexed by quinn-proto's connection handle.
    conns: Vec<Option<Conn>>,
    /// Each connection's next deadline, earliest first.
    timers: BTreeSet<(Instant, usize)>,
    /// Connections with events to handle.
    dirty: Vec<usize>,
    /// Connections handled in this pass, to be flushed to the socket.
    flush: Vec<usize>,
    tx: mpsc::UnboundedSender<Command>,
    commands: mpsc::UnboundedReceiver<Command>,
    driver: mpsc::Sender<Input>,
    /// Inputs the driver's channel had no room for, in order.
    backlog: VecDeque<Input>,
    /// Connections that stopped reading their control stream for the backlog.
    paused: Vec<usize>,
    stats: Arc<RelayStats>,
    next_device: Arc<AtomicU64>,
    recv_buf: Box<[u8]>,
    response_buf: Vec<u8>,
    /// Packets of this pass, and those the socket would not take yet.
    outgoing: SendBatch,
    /// Scratch: inputs and datagrams one connection produced.
    inputs: Vec<Input>,
    datagrams: Vec<Bytes>,
    accepting: bool,
    shutdown: Option<Shutdown>,
}

impl QuicLoop {
    async fn run(mut self) {
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        loop {
            let wake = self.next_wake();
            sleep.as_mut().reset(tokio::time::Instant::from_std(
                wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            ));
            let mut readable = false;
            let mut command = None;
            let mut writable = false;
            tokio::select! {
                biased;
                r = self.socket.readable() => readable = r.is_ok(),
                c = self.commands.recv() => command = c,
                r = self.socket.writable(), if !self.outgoing.is_empty() => writable = r.is_ok(),
                _ = &mut sleep => {}
            }
            let now = Instant::now();
            if writable {
                self.outgoing.flush(&self.socket, &self.udp);
            }
            if readable {
                self.receive(now);
            }
            if let Some(command) = command {
                self.command(command, now);
            }
            // Every pass takes what is queued, whichever branch woke it: a
            // socket that stays readable under load must not starve the
            // driver's messages.
            for _ in 0..COMMANDS_PER_PASS {
                match self.commands.try_recv() {
                    Ok(command) => self.command(command, now),
                    Err(_) => break,
                }
            }
            self.expire_timers(now);
            self.drain_backlog();
            self.drive(now);
            if self.shutdown_step(now) {
                return;
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut wake = self.timers.first().map(|(t, _)| *t);
        let mut consider = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if !self.backlog.is_empty() {
            consider(Instant::now() + BACKLOG_RETRY);
        }
        if let Some(shutdown) = &self.shutdown {
            // Re-check every 20 ms whether everyone has left.
            consider(
                shutdown
                    .until
                    .min(Instant::now() + Duration::from_millis(20)),
            );
        }
        wake
    }

    /// Reads packets until the socket is empty or this pass's share is used.
    fn receive(&mut self, now: Instant) {
        let mut buf = std::mem::take(&mut self.recv_buf);
        let mut metas = [RecvMeta::default(); BATCH_SIZE];
        for _ in 0..RECV_BATCHES_PER_PASS {
            let received = {
                let mut slots = buf.chunks_mut(RECV_SLOT).map(IoSliceMut::new);
                let mut iovs: [IoSliceMut; BATCH_SIZE] =
                    std::array::from_fn(|_| slots.next().expect("BATCH_SIZE slots"));
                let (socket, udp) = (&self.socket, &self.udp);
                socket.try_io(Interest::READABLE, || {
                    udp.recv(socket.into(), &mut iovs, &mut metas)
                })
            };
            match received {
                Ok(count) => {
                    for (meta, slot) in metas.iter().zip(buf.chunks(RECV_SLOT)).take(count) {
                        let mut data = &slot[..meta.len];
                        while !data.is_empty() {
                            let take = meta.stride.min(data.len());
                            self.packet(now, meta, BytesMut::from(&data[..take]));
                            data = &data[take..];
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // Undefined in QUIC, and may be injected: ignore.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
                Err(e) => {
                    warn!(error = %e, "QUIC socket receive failed");
                    break;
                }
            }
        }
        self.recv_buf = buf;
    }

    fn packet(&mut self, now: Instant, meta: &RecvMeta, data: BytesMut) {
        self.response_buf.clear();
        let ecn = meta.ecn.map(proto_ecn);
        match self.endpoint.handle(
            now,
            meta.addr,
            meta.dst_ip,
            ecn,
            data,
            &mut self.response_buf,
        ) {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(Some(conn)) = self.conns.get_mut(handle.0) {
                    conn.proto.handle_event(event);
                    mark(&mut self.dirty, conn, handle.0);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                if !self.accepting {
                    let transmit = self.endpoint.refuse(incoming, &mut self.response_buf);
                    self.respond(transmit);
                    return;
                }
                match self
                    .endpoint
                    .accept(incoming, now, &mut self.response_buf, None)
                {
                    Ok((handle, proto)) => {
                        let device = self.next_device.fetch_add(1, Relaxed);
                        let key = handle.0;
                        if self.conns.len() <= key {
                            self.conns.resize_with(key + 1, || None);
                        }
                        let conn = self.conns[key].insert(Conn::new(device, proto));
                        mark(&mut self.dirty, conn, key);
                    }
                    Err(e) => {
                        debug!(error = %e.cause, "connection refused");
                        if let Some(transmit) = e.response {
                            self.respond(transmit);
                        }
                    }
                }
            }
            Some(DatagramEvent::Response(transmit)) => self.respond(transmit),
            None => {}
        }
    }

    /// Queues an endpoint's stateless answer (version negotiation, close,
    /// reset, retry).
    fn respond(&mut self, transmit: quinn_proto::Transmit) {
        self.outgoing
            .push(&transmit, &self.response_buf[..transmit.size]);
    }

    fn command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Outbound { key, device, out } => {
                if let Some(conn) = conn_of(&mut self.conns, key, device) {
                    conn.outbound(out, now);
                    mark(&mut self.dirty, conn, key);
                }
            }
            Command::Datagram {
                key,
                device,
                datagram,
            } => {
                if !self.queue_datagram(key, device, datagram) {
                    self.stats.frames_dropped_send.fetch_add(1, Relaxed);
                }
            }
            Command::StopAccepting => self.accepting = false,
            Command::Shutdown { done } => {
                self.accepting = false;
                self.shutdown = Some(Shutdown {
                    until: now + SHUTDOWN_WAIT,
                    closed_rest: false,
                    done,
                });
            }
        }
    }

    /// Queues a datagram on a connection of this loop.
    fn queue_datagram(&mut self, key: usize, device: DeviceId, datagram: Bytes) -> bool {
        let Some(conn) = conn_of(&mut self.conns, key, device) else {
            return false;
        };
        // `drop = true`: a full buffer loses its oldest frame, not this one.
        let queued = conn.proto.datagrams().send(datagram, true).is_ok();
        mark(&mut self.dirty, conn, key);
        queued
    }

    fn expire_timers(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(Some(conn)) = self.conns.get_mut(key) {
                conn.timer = None;
                conn.on_timeout(now);
                mark(&mut self.dirty, conn, key);
            }
        }
    }

    /// Hands the driver what waited for room, in order.
    fn drain_backlog(&mut self) {
        while let Some(input) = self.backlog.pop_front() {
            match self.driver.try_send(input) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(input)) => {
                    self.backlog.push_front(input);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
        // Room again: the paused connections read on.
        for key in std::mem::take(&mut self.paused) {
            if let Some(Some(conn)) = self.conns.get_mut(key) {
                conn.wants_read = true;
                conn.read_paused = false;
                mark(&mut self.dirty, conn, key);
            }
        }
    }

    fn send_input(&mut self, input: Input) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(input);
            return;
        }
        match self.driver.try_send(input) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(input)) => self.backlog.push_back(input),
        }
    }

    /// Handles the events of every connection touched in this pass (a
    /// datagram relayed to a peer touches the peer), then flushes them.
    fn drive(&mut self, now: Instant) {
        while let Some(key) = self.dirty.pop() {
            self.drive_events(key, now);
        }
        for key in std::mem::take(&mut self.flush) {
            self.flush_conn(key, now);
        }
        // One system call for the pass's packets, whoever they are for.
        if !self.outgoing.is_empty() {
            self.outgoing.flush(&self.socket, &self.udp);
        }
    }

    fn drive_events(&mut self, key: usize, now: Instant) {
        let Some(Some(conn)) = self.conns.get_mut(key) else {
            return;
        };
        conn.dirty = false;
        let was_connected = conn.connected;
        let tx = &self.tx;
        let mut make_open = |conn: &Conn| {
            let sink = QuicSink {
                key,
                device: conn.device,
                tx: tx.clone(),
            };
            Input::Open {
                device: conn.device,
                sink: MediaSink::Quic(sink.clone()),
                outbox: Outbox::Quic(sink),
                media: conn.media.clone(),
                rings: true,
            }
        };
        conn.poll_events(now, &mut self.inputs, &mut self.datagrams, &mut make_open);
        if conn.connected && !was_connected {
            self.stats.connections.fetch_add(1, Relaxed);
        }
        if conn.wants_read {
            let room = BACKLOG_LIMIT.saturating_sub(self.backlog.len());
            let budget = self.inputs.len() + room;
            conn.read_control(now, &mut self.inputs, budget);
            if conn.wants_read && !conn.read_paused {
                conn.read_paused = true;
                self.paused.push(key);
            }
        }
        conn.report_if_closed(&mut self.inputs);
        let media = (!self.datagrams.is_empty()).then(|| conn.media.clone());
        if !conn.flush {
            conn.flush = true;
            self.flush.push(key);
        }
        for input in std::mem::take(&mut self.inputs) {
            self.send_input(input);
        }
        if let Some(media) = media {
            let mut datagrams = std::mem::take(&mut self.datagrams);
            let stats = self.stats.clone();
            for datagram in datagrams.drain(..) {
                media.relay_with(datagram, &stats, &mut |peer, datagram| match peer {
                    MediaSink::Quic(sink) if sink.tx.same_channel(&self.tx) => {
                        self.queue_datagram(sink.key, sink.device, datagram)
                    }
                    other => other.send(datagram),
                });
            }
            self.datagrams = datagrams;
        }
    }

    /// Passes a connection's endpoint events on, writes its packets and
    /// files its next deadline.
    fn flush_conn(&mut self, key: usize, now: Instant) {
        let Some(Some(conn)) = self.conns.get_mut(key) else {
            return;
        };
        conn.flush = false;
        let handle = ConnectionHandle(key);
        let mut drained = false;
        while let Some(event) = conn.proto.poll_endpoint_events() {
            drained |= event.is_drained();
            if let Some(event) = self.endpoint.handle_event(handle, event) {
                conn.proto.handle_event(event);
            }
        }
        // quinn-proto encrypts straight into the batch's own buffers.
        loop {
            let mut buf = self.outgoing.take_buffer();
            match conn.proto.poll_transmit(now, self.max_gso, &mut buf) {
                Some(transmit) => self.outgoing.push_owned(&transmit, buf),
                None => {
                    self.outgoing.recycle(buf);
                    break;
                }
            }
        }
        let deadline = conn.next_deadline();
        if deadline != conn.timer {
            if let Some(old) = conn.timer {
                self.timers.remove(&(old, key));
            }
            if let Some(new) = deadline {
                self.timers.insert((new, key));
            }
            conn.timer = deadline;
        }
        if drained {
            let conn = self.conns[key].take().expect("drained connection");
            if let Some(at) = conn.timer {
                self.timers.remove(&(at, key));
            }
            if conn.connected {
                self.stats.connections.fetch_sub(1, Relaxed);
                let reason = conn.lost.as_ref().map(|r| r.to_string());
                info!(parent: &conn.span, reason, "disconnected");
            }
        }
    }

    /// Advances a shutdown; true when the loop may end.
    fn shutdown_step(&mut self, now: Instant) -> bool {
        let Some(shutdown) = &self.shutdown else {
            return false;
        };
        let open = self.conns.iter().flatten().count();
        if open == 0 || (shutdown.closed_rest && now >= shutdown.until) {
            let shutdown = self.shutdown.take().expect("shutting down");
            let _ = shutdown.done.send(());
            return true;
        }
        if now >= shutdown.until {
            for (key, conn) in self.conns.iter_mut().enumerate() {
                if let Some(conn) = conn {
                    conn.close_now(now, 0, "switch shut down");
                    mark(&mut self.dirty, conn, key);
                }
            }
            self.drive(now);
            let shutdown = self.shutdown.as_mut().expect("shutting down");
            shutdown.closed_rest = true;
            shutdown.until = now + SHUTDOWN_DRAIN;
        }
        false
    }
}

/// The connection under `key` if it still serves `device` (a handle may be
/// reused by a later connection).
fn conn_of(conns: &mut [Option<Conn>], key: usize, device: DeviceId) -> Option<&mut Conn> {
    match conns.get_mut(key) {
        Some(Some(conn)) if conn.device == device => Some(conn),
        _ => None,
    }
}

fn mark(dirty: &mut Vec<usize>, conn: &mut Conn, key: usize) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(key);
    }
}

fn proto_ecn(ecn: udp::EcnCodepoint) -> quinn_proto::EcnCodepoint {
    match ecn {
        udp::EcnCodepoint::Ect0 => quinn_proto::EcnCodepoint::Ect0,
        udp::EcnCodepoint::Ect1 => quinn_proto::EcnCodepoint::Ect1,
        udp::EcnCodepoint::Ce => quinn_proto::EcnCodepoint::Ce,
    }
}
