//! The media relay: per device, a table from the channels it sends on to
//! the connections that receive them. The datagram task of each connection
//! reads the channel from the header, looks up its own table (a lock only
//! that connection and the control driver touch) and hands the same buffer
//! to every peer: no allocation, no global lock, no wait on signalling.
//! `send_datagram` never blocks: a slow receiver's buffer drops its oldest
//! frame and nobody else is stalled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::wire::{MediaCounts, MediaFrame};

/// Switch-wide counters (relaxed atomics: they are statistics).
#[derive(Debug, Default)]
pub struct RelayStats {
    pub connections: AtomicU64,
    pub frames_received: AtomicU64,
    pub frames_relayed: AtomicU64,
    pub frames_dropped_bad_header: AtomicU64,
    pub frames_dropped_no_route: AtomicU64,
    /// Frame copies a peer's connection refused (too large, datagrams off).
    pub frames_dropped_send: AtomicU64,
    /// Call records that could not be written.
    pub records_failed: AtomicU64,
    /// Call events not handed to plugins because their queue was full.
    pub plugin_events_dropped: AtomicU64,
}

/// Frame counts of one call, shared by its routes.
#[derive(Debug, Default)]
pub struct CallCounters {
    received: AtomicU64,
    relayed: AtomicU64,
}

impl CallCounters {
    pub fn snapshot(&self) -> MediaCounts {
        MediaCounts {
            frames_received: self.received.load(Relaxed),
            frames_relayed: self.relayed.load(Relaxed),
        }
    }
}

/// Where one channel's frames go.
#[derive(Debug)]
pub struct Route {
    pub counters: Arc<CallCounters>,
    pub peers: Vec<MediaSink>,
}

/// How a device receives audio.
#[derive(Debug, Clone)]
pub enum MediaSink {
    /// A QUIC client: as datagrams on its connection.
    Quic(quinn::Connection),
    /// An adapter's device: on the WebSocket stream attached to it, if any.
    Stream(Arc<StreamSlot>),
}

impl MediaSink {
    /// Hands one datagram on without waiting; false when it was dropped.
    fn send(&self, datagram: Bytes) -> bool {
        match self {
            MediaSink::Quic(conn) => conn.send_datagram(datagram).is_ok(),
            MediaSink::Stream(slot) => slot.send(datagram),
        }
    }
}

/// The stream an adapter attached to one of its devices as its media leg.
/// Its lock is taken once per frame, only by the relay and by an attach.
#[derive(Debug, Default)]
pub struct StreamSlot {
    tx: Mutex<Option<mpsc::Sender<Bytes>>>,
}

impl StreamSlot {
    pub fn attach(&self, tx: mpsc::Sender<Bytes>) {
        *self.tx.lock().expect("stream slot") = Some(tx);
    }

    pub fn detach(&self) {
        *self.tx.lock().expect("stream slot") = None;
    }

    fn send(&self, datagram: Bytes) -> bool {
        match &*self.tx.lock().expect("stream slot") {
            // A full queue means the peer reads slower than audio arrives:
            // drop this frame rather than let delay build up.
            Some(tx) => tx.try_send(datagram).is_ok(),
            None => false,
        }
    }
}

/// One connection's routing table.
#[derive(Debug, Default)]
pub struct DeviceMedia {
    routes: RwLock<HashMap<u32, Arc<Route>>>,
}

impl DeviceMedia {
    pub fn set_route(&self, channel: u32, route: Arc<Route>) {
        self.routes
            .write()
            .expect("route lock")
            .insert(channel, route);
    }

    pub fn remove_route(&self, channel: u32) {
        self.routes.write().expect("route lock").remove(&channel);
    }

    /// Relays one datagram received on this device's connection.
    pub fn relay(&self, datagram: Bytes, stats: &RelayStats) {
        stats.frames_received.fetch_add(1, Relaxed);
        let channel = match MediaFrame::peek_channel(&datagram) {
            Ok(c) => c,
            Err(_) => {
                stats.frames_dropped_bad_header.fetch_add(1, Relaxed);
                return;
            }
        };
        let route = self
            .routes
            .read()
            .expect("route lock")
            .get(&channel)
            .cloned();
        let Some(route) = route else {
            stats.frames_dropped_no_route.fetch_add(1, Relaxed);
            return;
        };
        route.counters.received.fetch_add(1, Relaxed);
        let mut sent = 0;
        for peer in &route.peers {
            if peer.send(datagram.clone()) {
                sent += 1;
            } else {
                stats.frames_dropped_send.fetch_add(1, Relaxed);
            }
        }
        route.counters.relayed.fetch_add(sent, Relaxed);
        stats.frames_relayed.fetch_add(sent, Relaxed);
    }
}

/// Reads a connection's datagrams until it closes.
pub async fn run_datagrams(
    conn: quinn::Connection,
    media: Arc<DeviceMedia>,
    stats: Arc<RelayStats>,
) {
    while let Ok(datagram) = conn.read_datagram().await {
        media.relay(datagram, &stats);
    }
}
