//! The media relay: per device, a table from the channels it sends on to
//! the devices that receive them. The network loop reads the channel from
//! a datagram's header, looks up the sender's own table (a lock only that
//! device and the control driver touch) and hands the same buffer to every
//! peer: no allocation, no global lock, no wait on signalling. A peer on
//! the same loop gets it queued on its connection in the same pass.
//! Sending never blocks: a slow receiver's buffer drops its oldest frame
//! and nobody else is stalled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::quic_loop::QuicSink;
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
    /// A QUIC client: as datagrams on its connection, in the network loop.
    Quic(QuicSink),
    /// An adapter's device: on the WebSocket stream attached to it, if any.
    Stream(Arc<StreamSlot>),
}

impl MediaSink {
    /// Hands one datagram on without waiting; false when it was dropped.
    pub fn send(&self, datagram: Bytes) -> bool {
        match self {
            MediaSink::Quic(sink) => sink.send_datagram(datagram),
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

    /// Relays one datagram this device sent, from outside the network loop.
    pub fn relay(&self, datagram: Bytes, stats: &RelayStats) {
        self.relay_with(datagram, stats, &mut |peer, datagram| peer.send(datagram));
    }

    /// Relays one datagram this device sent, handing each copy to `send`
    /// (the network loop queues it on a local peer's connection directly).
    pub fn relay_with(
        &self,
        datagram: Bytes,
        stats: &RelayStats,
        send: &mut dyn FnMut(&MediaSink, Bytes) -> bool,
    ) {
        stats.frames_received.fetch_add(1, Relaxed);
        let channel = match MediaFrame::peek_channel(&datagram) {
            Ok(c) => c,
            Err(_) => {
                stats.frames_dropped_bad_header.fetch_add(1, Relaxed);
                return;
            }
        };
        let routes = self.routes.read().expect("route lock");
        let Some(route) = routes.get(&channel) else {
            stats.frames_dropped_no_route.fetch_add(1, Relaxed);
            return;
        };
        route.counters.received.fetch_add(1, Relaxed);
        let mut sent = 0;
        for peer in &route.peers {
            if send(peer, datagram.clone()) {
                sent += 1;
            } else {
                stats.frames_dropped_send.fetch_add(1, Relaxed);
            }
        }
        route.counters.relayed.fetch_add(sent, Relaxed);
        stats.frames_relayed.fetch_add(sent, Relaxed);
    }
}
