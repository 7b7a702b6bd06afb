//! The voice sockets and the switch's events on their devices: the HTTP
//! route `GET /voice/socket` (a WebSocket, `Authorization: Bearer
//! <token>`), sockets opening and closing, and delivery of `message` events
//! to the sockets. What a socket's text frames say is `proxy.rs`'s
//! business.

use serde_json::Value;

use crate::host::{Host, Level, SwitchError};
use crate::http::{Reply, Request};
use crate::state::{Socket, State};
use crate::store::{self, Phase};
use crate::voice;

/// Where the operator mounts the plugin (its `routes`).
pub const MOUNT: &str = "/voice/";

/// The label of the devices behind voice sockets (what `callswitch users`
/// shows).
pub const SOCKET_LABEL: &str = "voice-proxy socket";

/// WebSocket close codes.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_ERROR: u16 = 1011;

/// Logs a refusal by the switch: refusals a client can cause at `info`;
/// those that mean the plugin or the switch misbehaved at `warn`.
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

/// Answers one HTTP request: `GET /voice/socket` upgrades to a voice
/// socket; anything else is refused.
pub fn handle_http<H: Host>(host: &H, state: &mut State, request: &Request) -> Reply {
    let Some(rest) = request.path.strip_prefix(MOUNT) else {
        return Reply::error(404, "not found");
    };
    if rest.strip_suffix('/').unwrap_or(rest) != "socket" {
        return Reply::error(404, "not found");
    }
    if request.method != "GET" {
        return Reply::method_not_allowed("GET");
    }
    let Some(token) = request.bearer_token() else {
        return Reply::error(401, "a bearer token is required");
    };
    if let Err(error) = host.authenticate(token) {
        log_refusal(host, "a voice socket's token", &error);
        return Reply::error(401, "invalid token");
    }
    if !request.websocket {
        return Reply::error(400, "a WebSocket upgrade is required");
    }
    Reply::Upgrade(state.add_pending(token))
}

/// A socket the plugin accepted is open: open its device. It rings: the
/// mirrored call of a `start` rings on the other side's sockets, and is
/// answered from the one that sends `accept`.
pub fn on_stream_open<H: Host>(host: &H, state: &mut State, stream: u64, context: &str) {
    let Some(token) = state.take_pending(context) else {
        // Accepted by an instance since reloaded.
        host.close_stream(stream, CLOSE_ERROR, "unknown socket");
        return;
    };
    let rings = match host.authenticate(&token) {
        Ok(_) => true,
        Err(error) => {
            log_refusal(host, "a voice socket's token", &error);
            host.close_stream(stream, CLOSE_POLICY, &error.message);
            return;
        }
    };
    match host.open_device(&token, SOCKET_LABEL, rings) {
        Ok((device, user)) => {
            host.log(
                Level::Info,
                &format!(
                    "{}: voice socket {stream} open (device {device})",
                    user.name
                ),
            );
            state.by_device.insert(device, stream);
            state.sockets.insert(stream, Socket { device, user });
        }
        Err(error) => {
            log_refusal(host, "opening a voice socket's device", &error);
            host.close_stream(stream, CLOSE_POLICY, &error.message);
        }
    }
}

/// The client closed a socket: its device is closed, which makes it leave
/// its calls (a mirrored call it dialled or answered ends; the session is
/// marked ended by the `ended` event the other side's device gets, or when
/// a message next finds the call gone).
pub fn on_stream_close<H: Host>(host: &H, state: &mut State, stream: u64) {
    if let Some(socket) = state.remove_socket(stream) {
        host.close_device(socket.device);
        host.log(
            Level::Info,
            &format!("{}: voice socket {stream} closed", socket.user.name),
        );
    }
}

/// An event of the switch on one of the plugin's devices.
pub fn on_device_event<H: Host>(host: &H, state: &mut State, device: u64, event: &str) {
    let Ok(event) = serde_json::from_str::<Value>(event) else {
        host.log(
            Level::Warn,
            &format!("device {device}: an event that is not JSON"),
        );
        return;
    };
    let call_id = event.get("call_id").and_then(Value::as_str);
    match (event.get("type").and_then(Value::as_str), call_id) {
        (Some("message"), _) => deliver(host, state, device, &event),
        (Some("answered"), Some(call_id)) => {
            if let Some(cid) = store::cid_of_call(host, call_id) {
                if session_call_is(host, &cid, call_id)
                    && store::set_phase(host, &cid, &[Phase::Ringing], Phase::Active)
                {
                    host.log(Level::Debug, &format!("session {cid:?}: call answered"));
                }
            }
        }
        (Some("ended"), Some(call_id)) => call_ended(host, state, call_id, &event),
        (Some("closed"), _) => {
            // The switch shuts down.
            if let Some(stream) = state.by_device.get(&device).copied() {
                state.remove_socket(stream);
                let reason = event.get("reason").and_then(Value::as_str).unwrap_or("");
                host.close_stream(stream, CLOSE_GOING_AWAY, reason);
            }
        }
        (Some(kind), call_id) => host.log(
            Level::Debug,
            &format!(
                "device {device}: `{kind}` event (call {})",
                call_id.unwrap_or("-")
            ),
        ),
        (None, _) => {}
    }
}

/// Whether `cid`'s session's current call is `call_id` (a session that
/// moved on to a new call ignores its old call's events).
fn session_call_is<H: Host>(host: &H, cid: &str, call_id: &str) -> bool {
    store::load(host, cid).is_some_and(|session| session.call_id.as_deref() == Some(call_id))
}

/// A mirrored call ended on the switch: its session is marked ended. No
/// voice message is sent for it: the sockets only carry the clients'
/// messages.
fn call_ended<H: Host>(host: &H, state: &mut State, call_id: &str, event: &Value) {
    state.legs.remove(call_id);
    let Some(cid) = store::cid_of_call(host, call_id) else {
        return;
    };
    if session_call_is(host, &cid, call_id)
        && store::set_phase(
            host,
            &cid,
            &[Phase::Setup, Phase::Ringing, Phase::Active],
            Phase::Ended,
        )
    {
        let reason = event.get("reason").and_then(Value::as_str).unwrap_or("?");
        host.log(
            Level::Info,
            &format!("session {cid:?}: call {call_id} ended ({reason})"),
        );
    }
}

/// A `message` event on a socket's device: a voice message (its body's
/// `typ` starts with `chat.voice.`) is written to the socket as a text
/// frame, the body alone; other messages are not for voice sockets.
fn deliver<H: Host>(host: &H, state: &State, device: u64, event: &Value) {
    let Some(&stream) = state.by_device.get(&device) else {
        return;
    };
    let Some(body) = event.get("body") else {
        return;
    };
    if !voice::is_voice_body(body) {
        host.log(
            Level::Debug,
            &format!("device {device}: a message that is not a voice message, not written"),
        );
        return;
    }
    if let Err(error) = host.send_text(stream, &body.to_string()) {
        host.log(
            Level::Warn,
            &format!("voice message to socket {stream} not sent: {error}"),
        );
    }
}
