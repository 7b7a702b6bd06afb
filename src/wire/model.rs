//! Data the protocol shares with the core and the call records: identities,
//! call states, end reasons, the event log and the snapshots admins read.
//! Times are milliseconds since the Unix epoch (`*_ms`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// A user as the other side of a call sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyRef {
    pub id: Uuid,
    pub name: String,
}

/// What an authenticated connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A device of a user: places and takes calls.
    User,
    /// An administrator: reads and ends calls, reads records and stats.
    Admin,
}

/// 1:1 or multi-party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Direct,
    Group,
}

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Invitees are ringing; nobody but the caller has joined.
    Ringing,
    /// At least two parties exchange audio.
    Active,
    /// Parties are joined but fewer than two are off hold.
    Held,
    /// Over; see the end reason.
    Ended,
}

/// How a party stands in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyStatus {
    Ringing,
    Joined,
    Left,
    Declined,
    Busy,
    NoAnswer,
    Unavailable,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A party hung up and too few were left.
    Hangup,
    /// The caller hung up before anyone answered.
    Cancelled,
    /// Every invitee declined.
    Declined,
    /// Every invitee was busy.
    Busy,
    /// Nobody answered before the ring timeout.
    NoAnswer,
    /// No invitee had a device online.
    Unavailable,
    /// The last parties' devices disconnected or went silent.
    Disconnected,
    /// An administrator ended it.
    Admin,
    /// The switch shut down.
    Shutdown,
    /// A policy plugin refused it.
    Denied,
}

/// Why one party left a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Hangup,
    Disconnected,
    Admin,
    Shutdown,
    /// Moved out of the call by a transfer to another party.
    Transferred,
    /// The user took the call over on another of their devices (`pickup`);
    /// only the device that lost the leg is told.
    PickedUp,
}

/// Why a device stopped ringing without the call ending for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingStopReason {
    /// Another device of the same user answered.
    AnsweredElsewhere,
    /// The ring timeout passed.
    NoAnswer,
}

/// One entry of a call's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    pub at_ms: Millis,
    #[serde(flatten)]
    pub kind: CallEventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEventKind {
    Created {
        by: PartyRef,
        device: u64,
    },
    Ringing {
        user: PartyRef,
        device: u64,
    },
    Answered {
        user: PartyRef,
        device: u64,
    },
    Joined {
        user: PartyRef,
        device: u64,
    },
    Left {
        user: PartyRef,
        reason: LeaveReason,
    },
    Held {
        user: PartyRef,
    },
    Resumed {
        user: PartyRef,
    },
    Busy {
        user: PartyRef,
    },
    Declined {
        user: PartyRef,
        device: u64,
    },
    NoAnswer {
        user: PartyRef,
    },
    Unavailable {
        user: PartyRef,
    },
    Dtmf {
        user: PartyRef,
        digits: String,
    },
    /// A policy plugin's verdict on this call.
    Policy(PolicyNote),
    Ended {
        reason: EndReason,
    },
}

/// A policy plugin's verdict, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyNote {
    pub plugin: String,
    /// `on-dial`, `on-answer`, ...
    pub hook: String,
    /// `allow`, `deny`, `busy`, `redirect`, `ring-also`, `failed-open`,
    /// `failed-closed`.
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A loaded plugin as `callswitch plugins` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub world: String,
    pub path: String,
    /// SHA-256 of the component.
    pub hash: String,
    /// Host interfaces it imports (its used grants).
    pub imports: Vec<String>,
    pub hooks: Vec<String>,
    pub on_error: String,
    pub deadline_ms: u64,
    pub memory_mb: u64,
    /// Hook calls served, failures among them, and time spent in them.
    pub calls: u64,
    pub failures: u64,
    pub time_us: u64,
    /// Instances made (the first, and one after each failure).
    pub instantiations: u64,
}

/// A party as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyRecord {
    pub user: PartyRef,
    pub status: PartyStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at_ms: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at_ms: Option<Millis>,
}

/// Frame counts of a call's media, filled in by the relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaCounts {
    /// Frames received from the call's legs.
    pub frames_received: u64,
    /// Frame copies sent on to other legs.
    pub frames_relayed: u64,
}

/// The call detail record appended when a call ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: Uuid,
    pub kind: CallKind,
    pub caller: PartyRef,
    pub parties: Vec<PartyRecord>,
    pub created_at_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at_ms: Option<Millis>,
    pub ended_at_ms: Millis,
    /// From the first answer to the end; 0 when never answered.
    pub duration_ms: u64,
    pub end_reason: EndReason,
    pub events: Vec<CallEvent>,
    pub media: MediaCounts,
}

/// A live call as `calls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call_id: Uuid,
    pub kind: CallKind,
    pub state: CallState,
    pub caller: PartyRef,
    pub parties: Vec<PartyRecord>,
    pub created_at_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at_ms: Option<Millis>,
}

/// One connected device of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePresence {
    pub device_id: u64,
    pub label: String,
    pub connected_at_ms: Millis,
    /// Live calls this device rings for or takes part in.
    pub calls: Vec<Uuid>,
}

/// A configured user and where they are online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence {
    pub user: PartyRef,
    pub numbers: Vec<String>,
    pub devices: Vec<DevicePresence>,
}

/// Counters for `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub connections: u64,
    pub devices_online: u64,
    pub calls_live: u64,
    pub calls_ringing: u64,
    pub calls_active: u64,
    pub calls_held: u64,
    pub calls_started: u64,
    pub calls_ended: u64,
    pub frames_relayed: u64,
    pub frames_dropped: u64,
    pub frames_dropped_bad_header: u64,
    pub frames_dropped_no_route: u64,
    /// Frame copies a receiver's connection refused (too large for a
    /// datagram, or datagrams not enabled).
    #[serde(default)]
    pub frames_dropped_send: u64,
    /// Call records that could not be written (see the log).
    #[serde(default)]
    pub records_failed: u64,
    /// Call events not delivered to plugins' `on-event` (queue full).
    #[serde(default)]
    pub plugin_events_dropped: u64,
    pub uptime_ms: u64,
}
