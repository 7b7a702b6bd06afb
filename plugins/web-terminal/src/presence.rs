//! `InCall` / `Idle`: telling each terminal whether its number is in a
//! call on another device (another terminal, a QUIC client, any device of
//! the user).
//!
//! The switch sends a device no event about its user's calls on other
//! devices, except `ring_stopped` (`answered_elsewhere`) for a call that
//! rang on it too. So the plugin compares, at the end of every call into
//! it (a request, a stream message, a switch event), each terminal's
//! user's joined calls in the switch's snapshot (`calls.calls-of`) with
//! what it last told the terminal, and sends the difference. A change
//! that happens while nothing calls into the plugin (say, the user's QUIC
//! phone hangs up a call nobody on the plugin is in) is told at the
//! plugin's next call.

use std::collections::{BTreeMap, BTreeSet};

use crate::host::{Host, LiveCall, PartyState};
use crate::proto::WebTerminalMessage;
use crate::state::{Mode, State, Terminal};
use crate::terminal::send;

/// The calls of `term`'s user on other devices, from the snapshot: those
/// the user is joined in, without the terminal's own calls (now or past).
/// A call already reported stays while the user's party still rings in the
/// snapshot (a snapshot that trails a `ring_stopped` must not take back
/// the `InCall` just sent).
fn elsewhere(term: &Terminal, calls: &[LiveCall]) -> BTreeSet<String> {
    calls
        .iter()
        .filter(|call| !term.had_call(&call.id))
        .filter(|call| match call.state_of(&term.user.id) {
            Some(PartyState::Joined) => true,
            Some(PartyState::Ringing) => term.elsewhere.contains(&call.id),
            _ => false,
        })
        .map(|call| call.id.clone())
        .collect()
}

/// Sets what terminal `stream` was told to `now` and sends the
/// difference: on `Pipe` one `InCall` when the number gets into a call
/// and one `Idle` when it is in none (without `call_id`); on `MultiPipe`
/// `InCall` / `Idle` per call, with its `call_id`.
pub fn update<H: Host>(host: &H, state: &mut State, stream: u64, now: BTreeSet<String>) {
    let Some(term) = state.terminals.get_mut(&stream) else {
        return;
    };
    let before = std::mem::replace(&mut term.elsewhere, now);
    let now = &term.elsewhere;
    let mut out = Vec::new();
    match term.mode {
        Mode::Pipe => {
            if before.is_empty() && !now.is_empty() {
                out.push(WebTerminalMessage::in_call(&term.msisdn, ""));
            } else if !before.is_empty() && now.is_empty() {
                out.push(WebTerminalMessage::idle(""));
            }
        }
        Mode::Multi => {
            for gone in before.difference(now) {
                out.push(WebTerminalMessage::idle(gone));
            }
            for new in now.difference(&before) {
                out.push(WebTerminalMessage::in_call(&term.msisdn, new));
            }
        }
    }
    for message in out {
        send(host, stream, &message);
    }
}

/// The first word to a new terminal: `InCall` if its number is in calls on
/// other devices (one per call on `MultiPipe`), else `Idle`.
pub fn announce<H: Host>(host: &H, state: &mut State, stream: u64) {
    let Some(term) = state.terminals.get(&stream) else {
        return;
    };
    let now = elsewhere(term, &host.calls_of(&term.user.id));
    if now.is_empty() {
        send(host, stream, &WebTerminalMessage::idle(""));
    } else {
        update(host, state, stream, now);
    }
}

/// The terminal's number joined `call_id` on another device (the call
/// stopped ringing on the terminal as answered elsewhere).
pub fn joined_elsewhere<H: Host>(host: &H, state: &mut State, stream: u64, call_id: &str) {
    let Some(term) = state.terminals.get(&stream) else {
        return;
    };
    let mut now = term.elsewhere.clone();
    now.insert(call_id.to_owned());
    update(host, state, stream, now);
}

/// Brings every terminal up to date with the switch's snapshot.
pub fn refresh<H: Host>(host: &H, state: &mut State) {
    let mut calls: BTreeMap<String, Vec<LiveCall>> = BTreeMap::new();
    let streams: Vec<u64> = state.terminals.keys().copied().collect();
    for stream in streams {
        let term = &state.terminals[&stream];
        let user = term.user.id.clone();
        let calls = calls
            .entry(user)
            .or_insert_with_key(|user| host.calls_of(user));
        let now = elsewhere(term, calls);
        if now != term.elsewhere {
            update(host, state, stream, now);
        }
    }
}
