//! What the core asks its runtime to do. The runtime drains these after each
//! input and executes them in order, except that records are made durable
//! before any message is sent (an `ended` is only seen once its record is on
//! disk).

use uuid::Uuid;

use crate::wire::{CallRecord, ServerMessage};

/// A connection's handle inside the core, allocated by the runtime.
pub type DeviceId = u64;

/// One device's leg of a call's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLeg {
    pub device: DeviceId,
    pub channel: u32,
}

/// An instruction for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a message on a device's control stream.
    Send {
        device: DeviceId,
        message: ServerMessage,
    },
    /// The complete set of legs that now exchange audio in a call: each
    /// leg's frames go to every other leg. Empty: stop relaying the call.
    Media { call_id: Uuid, legs: Vec<MediaLeg> },
    /// Append a finished call's record (the runtime adds media counts).
    Record(Box<CallRecord>),
}
