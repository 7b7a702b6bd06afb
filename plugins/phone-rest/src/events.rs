//! Everything that is not an HTTP request: streams opening and closing, and
//! the switch's events on the plugin's devices. Also the end of a call
//! (`finish_call`), which every way of ending one comes to, and the sweep
//! of calls that ended unseen.

use std::collections::BTreeSet;

use crate::host::{Host, Level, Message, SwitchError, User};
use crate::routes::{hang_up, place_call, NOTIFY_LABEL};
use crate::state::{Call, NotifySocket, Pending, PhoneSocket, Side, State};
use crate::wire::{start_packet, Notification, NotificationKind, PartyRef, SwitchEvent};

/// WebSocket close codes.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_ERROR: u16 = 1011;

/// How long a call must have been known before a sweep may forget it for
/// not being live: the switch's snapshot of live calls may trail a dial
/// by a moment.
const SWEEP_GRACE_MS: u64 = 2_000;

/// Logs a refusal by the switch: refusals a client can cause (busy, not
/// ringing, a policy's denial...) at `info`; those that mean the plugin or
/// the switch misbehaved at `warn`.
pub fn log_refusal<H: Host>(host: &H, what: &str, error: &SwitchError) {
    let unexpected = matches!(
        error.code.as_str(),
        "malformed_frame"
            | "bad_request"
            | "unknown_message"
            | "timeout"
            | "internal"
            | "forbidden"
    );
    let level = if unexpected { Level::Warn } else { Level::Info };
    host.log(
        level,
        &format!(
            "{what} refused by the switch: {} ({})",
            error.message, error.code
        ),
    );
}

/// Sends a `phoneCallAnswered` or `phoneCallEnded` frame to a notification
/// socket.
pub fn notify<H: Host>(host: &H, stream: u64, kind: NotificationKind, call_id: &str) {
    send_text(host, stream, Notification::status(kind, call_id).to_json());
}

fn send_text<H: Host>(host: &H, stream: u64, text: String) {
    if let Err(error) = host.send(stream, Message::Text(text)) {
        host.log(
            Level::Warn,
            &format!("notification to stream {stream} not sent: {error}"),
        );
    }
}

/// Ends call `call_id` for the plugin: `phoneCallEnded` to the notification
/// sockets of both parties except `ended_by` (or the user who declined),
/// its phone sockets closed, the caller's leg device closed, the call
/// forgotten. Later events about the call find nothing, so each socket is
/// told at most once.
pub fn finish_call<H: Host>(host: &H, state: &mut State, call_id: &str, ended_by: Option<&str>) {
    let Some(call) = state.calls.remove(call_id) else {
        return;
    };
    let ended_by = ended_by.map(str::to_owned).or(call.ended_by);
    for user in [&call.caller, &call.callee] {
        if ended_by.as_deref() == Some(user.id.as_str()) {
            continue;
        }
        for stream in state.notify_streams_of(&user.id) {
            notify(host, stream, NotificationKind::PhoneCallEnded {}, call_id);
        }
    }
    for stream in [call.caller_stream, call.answer_stream]
        .into_iter()
        .flatten()
    {
        state.phone_sockets.remove(&stream);
        host.close_stream(stream, CLOSE_NORMAL, "call ended");
    }
    if let Some(leg) = call.leg_device {
        state.legs.remove(&leg);
        host.close_device(leg);
    }
    host.log(Level::Info, &format!("call {call_id}: ended"));
}

/// Finishes the calls the switch no longer has. Calls normally end through
/// an `ended` event on one of the plugin's devices, but when none of them is
/// left in a call nothing tells the plugin: a QUIC client called an API
/// user, who answered on another QUIC device (the notification devices got
/// `ring_stopped` and are out of the call).
pub fn reap_dead_calls<H: Host>(host: &H, state: &mut State) {
    if state.calls.is_empty() {
        return;
    }
    let now = host.monotonic_ms();
    let live: BTreeSet<String> = host.live_call_ids().into_iter().collect();
    let dead: Vec<String> = state
        .calls
        .iter()
        .filter(|(id, call)| {
            !live.contains(*id) && now.saturating_sub(call.known_since_ms) >= SWEEP_GRACE_MS
        })
        .map(|(id, _)| id.clone())
        .collect();
    for call_id in dead {
        finish_call(host, state, &call_id, None);
    }
}

/// A stream the plugin accepted is open: do what its upgrade was for.
pub fn on_stream_open<H: Host>(host: &H, state: &mut State, stream: u64, context: &str) {
    let Some(pending) = state.take_pending(context) else {
        // Not ours any more (the plugin was reloaded since the upgrade).
        host.close_stream(stream, CLOSE_ERROR, "Unknown socket.");
        return;
    };
    match pending {
        Pending::Notify { token } => open_notification_socket(host, state, stream, &token),
        Pending::Initiate {
            token,
            call_id,
            caller,
            callee,
        } => open_caller_socket(host, state, stream, &token, call_id, caller, callee),
        Pending::Answer { call_id, device } => {
            open_answer_socket(host, state, stream, &call_id, device)
        }
    }
}

fn open_notification_socket<H: Host>(host: &H, state: &mut State, stream: u64, token: &str) {
    match host.open_device(token, NOTIFY_LABEL, true) {
        Ok((device, user)) => {
            host.log(
                Level::Info,
                &format!(
                    "{}: notification socket {stream} open (device {device})",
                    user.name
                ),
            );
            state.notify_by_device.insert(device, stream);
            state.notify.insert(stream, NotifySocket { device, user });
        }
        Err(error) => {
            log_refusal(host, "opening a notification device", &error);
            host.close_stream(stream, CLOSE_POLICY, &error.message);
        }
    }
}

/// The caller's socket of the server-mediated path: place the call. The
/// socket carries the call's media once the call starts (`start_call`):
/// until someone answers there is no one to hear the caller, and nothing
/// may reach the socket before its start packet.
fn open_caller_socket<H: Host>(
    host: &H,
    state: &mut State,
    stream: u64,
    token: &str,
    call_id: String,
    caller: User,
    callee: User,
) {
    let leg = match place_call(host, token, &call_id, &callee) {
        Ok(leg) => leg,
        Err(reason) => {
            host.close_stream(stream, CLOSE_ERROR, &reason);
            return;
        }
    };
    host.log(
        Level::Info,
        &format!(
            "call {call_id}: {} calls {} (socket path)",
            caller.name, callee.name
        ),
    );
    let mut call = Call::new(caller, callee, host.monotonic_ms());
    call.leg_device = Some(leg);
    call.caller_stream = Some(stream);
    state.legs.insert(leg, call_id.clone());
    state.phone_sockets.insert(
        stream,
        PhoneSocket {
            call_id: call_id.clone(),
            side: Side::Caller,
        },
    );
    state.calls.insert(call_id, call);
}

/// The callee's socket, for a call answered before the upgrade: the call
/// starts.
fn open_answer_socket<H: Host>(
    host: &H,
    state: &mut State,
    stream: u64,
    call_id: &str,
    device: u64,
) {
    let Some(call) = state.calls.get_mut(call_id) else {
        host.close_stream(stream, CLOSE_NORMAL, "call ended");
        return;
    };
    call.answer_stream = Some(stream);
    call.answering_device = Some(device);
    state.phone_sockets.insert(
        stream,
        PhoneSocket {
            call_id: call_id.to_owned(),
            side: Side::Answerer,
        },
    );
    start_call(host, state, call_id);
}

/// The call is answered: the start packet goes to its phone sockets, then
/// their media is attached (the caller's socket to the leg device, the
/// answer socket to the device that answered), so that the start packet is
/// each socket's first frame. Once per call.
fn start_call<H: Host>(host: &H, state: &mut State, call_id: &str) {
    let Some(call) = state.calls.get_mut(call_id) else {
        return;
    };
    if call.started {
        return;
    }
    call.started = true;
    let sockets: Vec<(u64, Option<u64>)> = [
        (call.caller_stream, call.leg_device),
        (call.answer_stream, call.answering_device),
    ]
    .into_iter()
    .filter_map(|(stream, device)| Some((stream?, device)))
    .collect();
    let packet = start_packet(host.now_ms());
    for &(to, _) in &sockets {
        if let Err(error) = host.send(to, Message::Binary(packet.clone())) {
            host.log(
                Level::Warn,
                &format!("call {call_id}: start packet to stream {to} not sent: {error}"),
            );
        }
    }
    for (stream, device) in sockets {
        let attached = match device {
            Some(device) => host.attach_media(stream, device, call_id),
            None => Err("no device of the plugin in the call".into()),
        };
        if let Err(error) = attached {
            host.log(
                Level::Warn,
                &format!("call {call_id}: media of stream {stream} not attached: {error}"),
            );
        }
    }
}

/// A party answered call `call_id` on `answering` (a device of the switch).
/// A phone caller's call answered on a device that is not the plugin's (a
/// QUIC client of the callee) has no answer socket to wait for: it starts
/// now. A call answered through the API starts when its answer socket
/// opens.
fn answered<H: Host>(host: &H, state: &mut State, device: u64, call_id: &str, answering: u64) {
    if state.legs.get(&device).map(String::as_str) != Some(call_id) {
        return;
    }
    let Some(call) = state.calls.get(call_id) else {
        return;
    };
    let by_the_api =
        call.answering_device.is_some() || state.notify_by_device.contains_key(&answering);
    if call.caller_stream.is_some() && !by_the_api {
        start_call(host, state, call_id);
    }
}

/// The client closed a stream.
pub fn on_stream_close<H: Host>(host: &H, state: &mut State, stream: u64) {
    if let Some(socket) = state.notify.remove(&stream) {
        close_notification_device(host, state, socket.device);
        host.log(
            Level::Info,
            &format!("{}: notification socket {stream} closed", socket.user.name),
        );
    } else if let Some(phone) = state.phone_sockets.remove(&stream) {
        let Some(call) = state.calls.get_mut(&phone.call_id) else {
            return;
        };
        // Either phone socket closing ends the call; the other party is
        // told and its socket closed by `finish_call`.
        let ended_by = match phone.side {
            Side::Caller => {
                call.caller_stream = None;
                // The caller hangs up (a cancel if nobody answered yet),
                // which ends the call, and the leg is closed.
                if let Some(leg) = call.leg_device.take() {
                    hang_up(host, leg, &phone.call_id);
                    state.legs.remove(&leg);
                    host.close_device(leg);
                }
                call.caller.id.clone()
            }
            Side::Answerer => {
                call.answer_stream = None;
                if let Some(device) = call.answering_device {
                    hang_up(host, device, &phone.call_id);
                }
                call.callee.id.clone()
            }
        };
        finish_call(host, state, &phone.call_id, Some(&ended_by));
    }
}

/// Closes a notification device and drops it from the calls it rang for. A
/// device that had answered a call leaves it, which ends the call.
fn close_notification_device<H: Host>(host: &H, state: &mut State, device: u64) {
    state.notify_by_device.remove(&device);
    host.close_device(device);
    let mut answered = Vec::new();
    for (call_id, call) in &mut state.calls {
        call.ringing.remove(&device);
        if call.answering_device == Some(device) {
            answered.push(call_id.clone());
        }
    }
    for call_id in answered {
        finish_call(host, state, &call_id, None);
    }
}

/// An event of the switch on one of the plugin's devices.
pub fn on_device_event<H: Host>(host: &H, state: &mut State, device: u64, event: &str) {
    match SwitchEvent::parse(event) {
        SwitchEvent::Incoming { call_id, from } => incoming(host, state, device, &call_id, from),
        SwitchEvent::Answered {
            call_id,
            device: answering,
        } => answered(host, state, device, &call_id, answering),
        SwitchEvent::RingStopped { call_id, reason } => {
            ring_stopped(host, state, device, &call_id, &reason)
        }
        SwitchEvent::Ended { call_id, reason } => {
            if state.calls.contains_key(&call_id) {
                host.log(
                    Level::Debug,
                    &format!("call {call_id}: switch ended it ({reason})"),
                );
                finish_call(host, state, &call_id, None);
            }
        }
        SwitchEvent::Closed => device_closed(host, state, device),
        SwitchEvent::Other => {}
    }
}

/// A call rings on a notification device: `incomingPhoneCall` to its socket.
/// A call the plugin did not place (a QUIC client called this user) is
/// recorded here, so that it can be answered and declined through the API.
fn incoming<H: Host>(host: &H, state: &mut State, device: u64, call_id: &str, from: PartyRef) {
    let Some(&stream) = state.notify_by_device.get(&device) else {
        return;
    };
    let Some(socket) = state.notify.get(&stream) else {
        return;
    };
    let user = socket.user.clone();
    let now = host.monotonic_ms();
    let call = state.calls.entry(call_id.to_owned()).or_insert_with(|| {
        let caller = User {
            id: from.id.clone(),
            name: from.name.clone(),
        };
        Call::new(caller, user.clone(), now)
    });
    if call.callee.id != user.id {
        // Someone else's call this user was invited into (a group call of
        // QUIC clients): the API has no way to show it.
        return;
    }
    call.ringing.insert(device);
    let notification =
        Notification::incoming(call_id, &from.id, &from.name, call.caller_address.clone());
    send_text(host, stream, notification.to_json());
}

/// A call stopped ringing on a notification device while it goes on.
fn ring_stopped<H: Host>(host: &H, state: &mut State, device: u64, call_id: &str, reason: &str) {
    let Some(&stream) = state.notify_by_device.get(&device) else {
        return;
    };
    let Some(call) = state.calls.get_mut(call_id) else {
        return;
    };
    call.ringing.remove(&device);
    if reason == "no_answer" {
        // The callee's ring timeout in a call that goes on without them
        // (only a group call does): the callee is out of it.
        if call.ringing.is_empty() && call.answering_device.is_none() {
            finish_call(host, state, call_id, None);
        }
    } else if call.answered_sent.insert(stream) {
        // Answered on another device (of the API or not).
        notify(
            host,
            stream,
            NotificationKind::PhoneCallAnswered {},
            call_id,
        );
    }
}

/// The switch closed a device (it shuts down).
fn device_closed<H: Host>(host: &H, state: &mut State, device: u64) {
    if let Some(stream) = state.notify_by_device.remove(&device) {
        // The socket cannot ring any more: close it, so its client
        // reconnects once the switch is back.
        state.notify.remove(&stream);
        host.close_stream(stream, CLOSE_GOING_AWAY, "switch closed the device");
        for call in state.calls.values_mut() {
            call.ringing.remove(&device);
        }
    } else if let Some(call_id) = state.legs.remove(&device) {
        if let Some(call) = state.calls.get_mut(&call_id) {
            call.leg_device = None;
        }
    }
}
