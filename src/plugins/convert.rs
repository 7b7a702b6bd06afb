//! Translations between the switch's types and the WIT types plugins see.

use uuid::Uuid;

use super::bindings as wit;
use crate::switch::{Directory, User};
use crate::wire::{self, CallEventKind, CallSummary, PartyRef};

/// A user as a plugin sees them.
pub fn identity(user: &User, device: Option<String>) -> wit::Identity {
    wit::Identity {
        id: user.id.to_string(),
        name: user.name.clone(),
        numbers: user.numbers.clone(),
        device,
    }
}

/// An identity for a party of a call (numbers from the directory).
pub fn party_identity(dir: &Directory, p: &PartyRef) -> wit::Identity {
    match dir.user(&p.id) {
        Some(u) => identity(u, None),
        None => wit::Identity {
            id: p.id.to_string(),
            name: p.name.clone(),
            numbers: Vec::new(),
            device: None,
        },
    }
}

pub fn call_info(dir: &Directory, c: &CallSummary) -> wit::CallInfo {
    wit::CallInfo {
        id: c.call_id.to_string(),
        kind: match c.kind {
            wire::CallKind::Direct => wit::CallKind::Direct,
            wire::CallKind::Group => wit::CallKind::Group,
        },
        state: match c.state {
            wire::CallState::Ringing => wit::CallState::Ringing,
            wire::CallState::Active => wit::CallState::Active,
            wire::CallState::Held => wit::CallState::Held,
            wire::CallState::Ended => wit::CallState::Ended,
        },
        caller: party_identity(dir, &c.caller),
        parties: c
            .parties
            .iter()
            .map(|p| wit::Party {
                user: party_identity(dir, &p.user),
                status: match p.status {
                    wire::PartyStatus::Ringing => wit::PartyStatus::Ringing,
                    wire::PartyStatus::Joined => wit::PartyStatus::Joined,
                    wire::PartyStatus::Left => wit::PartyStatus::Left,
                    wire::PartyStatus::Declined => wit::PartyStatus::Declined,
                    wire::PartyStatus::Busy => wit::PartyStatus::Busy,
                    wire::PartyStatus::NoAnswer => wit::PartyStatus::NoAnswer,
                    wire::PartyStatus::Unavailable => wit::PartyStatus::Unavailable,
                },
            })
            .collect(),
        created_at_ms: c.created_at_ms,
    }
}

/// A call not yet created, as `on-dial` sees it: ringing, caller only.
pub fn proposed_call(
    dir: &Directory,
    call_id: Uuid,
    caller: &User,
    group: bool,
    now_ms: u64,
) -> wit::CallInfo {
    wit::CallInfo {
        id: call_id.to_string(),
        kind: if group {
            wit::CallKind::Group
        } else {
            wit::CallKind::Direct
        },
        state: wit::CallState::Ringing,
        caller: identity(caller, None),
        parties: vec![wit::Party {
            user: party_identity(dir, &caller.party_ref()),
            status: wit::PartyStatus::Joined,
        }],
        created_at_ms: now_ms,
    }
}

/// The notification form of a call event; `None` for events plugins are
/// not told about (created, policy verdicts).
pub fn call_event(dir: &Directory, e: &CallEventKind) -> Option<wit::CallEvent> {
    let id = |p: &PartyRef| party_identity(dir, p);
    Some(match e {
        CallEventKind::Ringing { user, device } => wit::CallEvent::Ringing(wit::RingingEvent {
            user: id(user),
            device: Some(device.to_string()),
        }),
        CallEventKind::Answered { user, .. } => wit::CallEvent::Answered(id(user)),
        CallEventKind::Joined { user, .. } => wit::CallEvent::Joined(id(user)),
        CallEventKind::Left { user, .. } => wit::CallEvent::Left(id(user)),
        CallEventKind::Held { user } => wit::CallEvent::Held(id(user)),
        CallEventKind::Resumed { user } => wit::CallEvent::Resumed(id(user)),
        CallEventKind::Busy { user } => wit::CallEvent::Busy(id(user)),
        CallEventKind::Declined { user, .. } => wit::CallEvent::Declined(id(user)),
        CallEventKind::NoAnswer { user } => wit::CallEvent::NoAnswer(id(user)),
        CallEventKind::Unavailable { user } => wit::CallEvent::NoAnswer(id(user)),
        CallEventKind::Dtmf { user, digits } => wit::CallEvent::Dtmf(wit::DtmfEvent {
            user: id(user),
            digits: digits.clone(),
        }),
        CallEventKind::Ended { reason } => wit::CallEvent::Ended(
            serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ),
        CallEventKind::Created { .. } | CallEventKind::Policy { .. } => return None,
    })
}
