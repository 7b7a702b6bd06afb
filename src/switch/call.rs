//! One call: its parties, their legs and the event log, with the derived
//! state and the record it becomes when it ends. Plain data: the rules that
//! move a call between states live in `core.rs`.

use uuid::Uuid;

use super::effect::{DeviceId, MediaLeg};
use crate::wire::{
    CallEvent, CallEventKind, CallKind, CallRecord, CallState, CallSummary, EndReason, MediaCounts,
    Millis, PartyRecord, PartyRef, PartyStatus,
};

/// A device's presence in a call's audio.
#[derive(Debug, Clone)]
pub(crate) struct Leg {
    pub device: DeviceId,
    pub channel: u32,
    pub held: bool,
    /// Peer channels last announced to this leg, to send `media` only on change.
    pub announced_peers: Vec<u32>,
}

/// A user invited to (or placing) a call.
#[derive(Debug, Clone)]
pub(crate) struct Party {
    pub user: PartyRef,
    pub status: PartyStatus,
    /// Devices still ringing (status `Ringing` only).
    pub ringing: Vec<DeviceId>,
    /// Set while `Joined`.
    pub leg: Option<Leg>,
    /// When the ring timeout fires for this party.
    pub ring_deadline: Option<Millis>,
    pub joined_at: Option<Millis>,
    pub left_at: Option<Millis>,
}

impl Party {
    pub fn new(user: PartyRef, status: PartyStatus) -> Self {
        Party {
            user,
            status,
            ringing: Vec::new(),
            leg: None,
            ring_deadline: None,
            joined_at: None,
            left_at: None,
        }
    }

    fn record(&self) -> PartyRecord {
        PartyRecord {
            user: self.user.clone(),
            status: self.status,
            joined_at_ms: self.joined_at,
            left_at_ms: self.left_at,
        }
    }
}

/// A live call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub id: Uuid,
    pub kind: CallKind,
    /// Index 0 is always the caller.
    pub parties: Vec<Party>,
    pub created_at: Millis,
    pub answered_at: Option<Millis>,
    pub events: Vec<CallEvent>,
    /// Legs last handed to the runtime, to emit `Effect::Media` only on change.
    pub media_legs: Vec<MediaLeg>,
}

impl Call {
    pub fn caller(&self) -> &PartyRef {
        &self.parties[0].user
    }

    pub fn log(&mut self, at_ms: Millis, kind: CallEventKind) {
        self.events.push(CallEvent { at_ms, kind });
    }

    pub fn party_of(&self, user: Uuid) -> Option<usize> {
        self.parties.iter().position(|p| p.user.id == user)
    }

    pub fn count(&self, status: PartyStatus) -> usize {
        self.parties.iter().filter(|p| p.status == status).count()
    }

    /// Legs that are joined and not on hold.
    pub fn live_legs(&self) -> Vec<MediaLeg> {
        self.parties
            .iter()
            .filter_map(|p| p.leg.as_ref())
            .filter(|l| !l.held)
            .map(|l| MediaLeg {
                device: l.device,
                channel: l.channel,
            })
            .collect()
    }

    pub fn state(&self) -> CallState {
        let joined = self.count(PartyStatus::Joined);
        if self.answered_at.is_none() || joined < 2 {
            return CallState::Ringing;
        }
        if self.live_legs().len() >= 2 {
            CallState::Active
        } else {
            CallState::Held
        }
    }

    /// Devices joined to the call, except `except`.
    pub fn joined_devices(&self, except: Option<DeviceId>) -> Vec<DeviceId> {
        self.parties
            .iter()
            .filter_map(|p| p.leg.as_ref().map(|l| l.device))
            .filter(|d| Some(*d) != except)
            .collect()
    }

    pub fn summary(&self) -> CallSummary {
        CallSummary {
            call_id: self.id,
            kind: self.kind,
            state: self.state(),
            caller: self.caller().clone(),
            parties: self.parties.iter().map(Party::record).collect(),
            created_at_ms: self.created_at,
            answered_at_ms: self.answered_at,
        }
    }

    pub fn into_record(self, ended_at: Millis, reason: EndReason) -> CallRecord {
        CallRecord {
            call_id: self.id,
            kind: self.kind,
            caller: self.caller().clone(),
            parties: self.parties.iter().map(Party::record).collect(),
            created_at_ms: self.created_at,
            answered_at_ms: self.answered_at,
            ended_at_ms: ended_at,
            duration_ms: self
                .answered_at
                .map(|a| ended_at.saturating_sub(a))
                .unwrap_or(0),
            end_reason: reason,
            events: self.events,
            media: MediaCounts::default(),
        }
    }
}
