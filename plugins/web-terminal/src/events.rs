//! The switch's events on the terminals' devices, turned into messages to
//! the terminals: calls ringing on them (`Offer`), the progress of calls
//! they placed (`Ringing`, `Answer`, `Bye`), and calls ending (`Bye`).

use crate::grpc::status;
use crate::host::{Host, Level};
use crate::presence;
use crate::proto::WebTerminalMessage;
use crate::state::{Leg, Mode, Phase, Role, State};
use crate::terminal::{drop_terminal, log_refusal, send};
use crate::wire::{call_request, PartyRef, SwitchEvent, PLACEHOLDER_SDP};

/// An event of the switch on one of the plugin's devices.
pub fn on_device_event<H: Host>(host: &H, state: &mut State, device: u64, event: &str) {
    let Some(&stream) = state.by_device.get(&device) else {
        return;
    };
    match SwitchEvent::parse(event) {
        SwitchEvent::Incoming { call_id, from } => incoming(host, state, stream, &call_id, &from),
        SwitchEvent::Ringing { call_id } => {
            let term = state.terminals.get_mut(&stream).expect("indexed");
            if let Some(leg) = term.legs.get_mut(&call_id) {
                if leg.role == Role::Caller && !leg.ringing_sent {
                    leg.ringing_sent = true;
                    send(host, stream, &WebTerminalMessage::ringing(&call_id));
                }
            }
        }
        SwitchEvent::Answered { call_id, .. } => answered(host, state, stream, &call_id),
        SwitchEvent::RingStopped { call_id, reason } => {
            if state.terminals[&stream].legs.contains_key(&call_id) {
                send(host, stream, &WebTerminalMessage::bye(&call_id));
                let elsewhere = reason == "answered_elsewhere";
                state.forget_leg(stream, &call_id, !elsewhere);
                if elsewhere {
                    presence::joined_elsewhere(host, state, stream, &call_id);
                }
            }
        }
        SwitchEvent::Outcome {
            call_id,
            kind,
            user,
        } => {
            // The callee of a call the terminal placed did not take it:
            // `ended` follows, the terminal hears `Bye` once, now.
            let term = &state.terminals[&stream];
            let unanswered = term
                .legs
                .get(&call_id)
                .is_some_and(|leg| leg.role == Role::Caller && leg.phase == Phase::Ringing);
            if unanswered {
                host.log(
                    Level::Info,
                    &format!("call {call_id}: {} {kind}", user.name),
                );
                end_leg(host, state, stream, &call_id);
            }
        }
        SwitchEvent::Left {
            call_id,
            user,
            reason,
        } => {
            // The terminal's own leg was moved away (a plugin's transfer).
            if user.id == state.terminals[&stream].user.id {
                host.log(
                    Level::Info,
                    &format!("call {call_id}: web terminal left it ({reason})"),
                );
                end_leg(host, state, stream, &call_id);
            }
        }
        SwitchEvent::Ended { call_id, reason } => {
            if state.terminals[&stream].legs.contains_key(&call_id) {
                host.log(Level::Debug, &format!("call {call_id}: ended ({reason})"));
                end_leg(host, state, stream, &call_id);
            }
        }
        SwitchEvent::Closed { reason } => {
            // The switch shuts down: the terminal must register again.
            host.close_stream(
                stream,
                status::UNAVAILABLE,
                &format!("the switch closed the terminal's device: {reason}"),
            );
            drop_terminal(host, state, stream);
        }
        SwitchEvent::Other => {}
    }
}

/// `Bye` to the terminal for `call_id`, and the leg forgotten.
fn end_leg<H: Host>(host: &H, state: &mut State, stream: u64, call_id: &str) {
    if state.forget_leg(stream, call_id, true).is_some() {
        send(host, stream, &WebTerminalMessage::bye(call_id));
    }
}

/// A call rings on the terminal's device: an `Offer` with the caller's
/// SDP (when the caller is a web terminal of the plugin) or the
/// placeholder, and the caller's number.
fn incoming<H: Host>(host: &H, state: &mut State, stream: u64, call_id: &str, from: &PartyRef) {
    let term = &state.terminals[&stream];
    let device = term.device;
    let busy = term.mode == Mode::Pipe && !term.legs.is_empty();
    if term.was_moved(call_id) || busy {
        // A call moved away with ToPhone rings here again; a Pipe terminal
        // takes one call at a time. Only this device stops ringing.
        if let Err(refusal) = host.request(device, &call_request("decline", call_id)) {
            log_refusal(
                host,
                &format!("declining call {call_id} on a web terminal"),
                &refusal,
            );
        }
        return;
    }
    if term.legs.contains_key(call_id) {
        return;
    }
    let caller_number = host
        .find_user(&from.id)
        .map(|user| user.msisdn())
        .unwrap_or_default();
    let sdp = state
        .sdp
        .get(call_id)
        .and_then(|sdp| sdp.offer.clone())
        .unwrap_or_else(|| PLACEHOLDER_SDP.to_owned());
    host.log(
        Level::Info,
        &format!(
            "call {call_id}: {} rings {}'s web terminal",
            from.name, term.user.name
        ),
    );
    let term = state.terminals.get_mut(&stream).expect("indexed");
    term.legs
        .insert(call_id.to_owned(), Leg::new(Role::Callee, &caller_number));
    send(
        host,
        stream,
        &WebTerminalMessage::offer(&sdp, &caller_number, call_id),
    );
}

/// The callee took the call the terminal placed: `Answer` with the callee
/// terminal's SDP, or the placeholder for any other device.
fn answered<H: Host>(host: &H, state: &mut State, stream: u64, call_id: &str) {
    let term = state.terminals.get_mut(&stream).expect("indexed");
    let Some(leg) = term.legs.get_mut(call_id) else {
        return;
    };
    if leg.role != Role::Caller || leg.phase != Phase::Ringing {
        // Someone else answering a group call the terminal is in.
        return;
    }
    leg.phase = Phase::Joined;
    let sdp = state
        .sdp
        .get(call_id)
        .and_then(|sdp| sdp.answer.clone())
        .unwrap_or_else(|| PLACEHOLDER_SDP.to_owned());
    send(host, stream, &WebTerminalMessage::answer(&sdp, call_id));
}
