//! Where the driver puts one device's control messages: the network loop,
//! for a QUIC connection, or the channel an adapter's dispatcher drains.

use tokio::sync::mpsc;

use super::driver::Outbound;
use super::quic_loop::QuicSink;

/// A device's outbox, as the driver holds it.
#[derive(Debug, Clone)]
pub enum Outbox {
    /// A QUIC connection: the loop queues the message on its control
    /// stream and cuts off a client that lets `OUTBOX_DEPTH` pile up.
    Quic(QuicSink),
    /// An adapter's device, bounded by the channel.
    Channel(mpsc::Sender<Outbound>),
}

/// The message was not queued because the device's outbox is full.
#[derive(Debug)]
pub struct OutboxFull;

impl Outbox {
    /// Queues without waiting. A device already gone drops the message.
    pub fn try_send(&self, out: Outbound) -> Result<(), OutboxFull> {
        match self {
            Outbox::Quic(sink) => {
                sink.send_outbound(out);
                Ok(())
            }
            Outbox::Channel(tx) => match tx.try_send(out) {
                Err(mpsc::error::TrySendError::Full(_)) => Err(OutboxFull),
                _ => Ok(()),
            },
        }
    }

    /// Queues from a blocking thread, waiting for room in a channel.
    pub fn blocking_send(&self, out: Outbound) {
        match self {
            Outbox::Quic(sink) => sink.send_outbound(out),
            Outbox::Channel(tx) => {
                let _ = tx.blocking_send(out);
            }
        }
    }
}
