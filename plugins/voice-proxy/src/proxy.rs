//! The proxy proper: a voice message a socket sent is checked against its
//! session, the mirrored switch call is moved on, and the message is
//! re-addressed to the other side and sent as a switch `message` from the
//! sender's device (the switch delivers it to every device of the
//! recipient; `sockets.rs` writes it to the recipient's sockets).
//!
//! | message | from | mirrored call | forwarded to |
//! |---|---|---|---|
//! | `setup` | customer | (none) | operator |
//! | `start` | customer | dialled from the customer's device: ringing | operator, with `data.operator_name` |
//! | `accept` | operator | answered from the operator's device: active | customer |
//! | `busy` | operator | declined from the operator's device: ended | customer |
//! | `stop` | either | hung up (declined if ringing) by the sender's side: ended | the other side |
//! | `summary` | either | unchanged | the other side |
//!
//! A refused message gets an error frame on the sender's socket and nothing
//! else: nothing is forwarded and no call changes.

use serde_json::{json, Map, Value};

use crate::host::{Host, Level, User};
use crate::sockets::log_refusal;
use crate::state::{Legs, State};
use crate::store::{self, Phase, Session, Side};
use crate::voice::{self, Kind, VoiceMessage};

/// The reasons of refusals that do not name anything.
pub const UNKNOWN_CID: &str = "unknown cid";
pub const STRANGER: &str = "not a party to this cid";
pub const NO_OPERATOR: &str = "no operator available";
pub const ALREADY_LIVE: &str = "a call is already live for this cid";
pub const NOT_RINGING: &str = "no call is ringing for this cid";
pub const ALREADY_ANSWERED: &str = "the call was accepted: end it with chat.voice.stop";

/// The socket a message came from.
#[derive(Debug, Clone)]
pub struct Sender {
    pub stream: u64,
    pub device: u64,
    pub user: User,
}

fn only_called(kind: Kind) -> String {
    format!(
        "only the side that did not send chat.voice.start sends {}",
        kind.typ()
    )
}

fn only_customer(kind: Kind) -> String {
    format!("only the customer side sends {}", kind.typ())
}

/// A text frame from socket `stream`.
pub fn on_text<H: Host>(host: &H, state: &mut State, stream: u64, text: &str) {
    let Some(socket) = state.sockets.get(&stream).cloned() else {
        return;
    };
    let sender = Sender {
        stream,
        device: socket.device,
        user: socket.user,
    };
    let message = match voice::parse(text) {
        Ok(message) => message,
        Err(rejection) => {
            refuse(host, &sender, rejection.cid.as_deref(), &rejection.reason);
            return;
        }
    };
    let outcome = match message.kind {
        Kind::Setup | Kind::Start => open(host, state, &sender, &message),
        Kind::Accept => accept(host, state, &sender, &message),
        Kind::Busy => busy(host, state, &sender, &message),
        Kind::Stop => stop(host, state, &sender, &message),
        Kind::Summary => summary(host, &sender, &message),
    };
    match outcome {
        Ok(()) => host.log(
            Level::Info,
            &format!(
                "session {:?}: {} from {} proxied",
                message.cid,
                message.kind.typ(),
                sender.user.name
            ),
        ),
        Err(reason) => refuse(host, &sender, Some(&message.cid), &reason),
    }
}

/// The error frame to the sender's socket, and only there.
fn refuse<H: Host>(host: &H, sender: &Sender, cid: Option<&str>, reason: &str) {
    host.log(
        Level::Info,
        &format!(
            "{}: voice message refused (cid {cid:?}): {reason}",
            sender.user.name
        ),
    );
    if let Err(error) = host.send_text(sender.stream, &voice::error_frame(cid, reason)) {
        host.log(
            Level::Warn,
            &format!("error frame to socket {} not sent: {error}", sender.stream),
        );
    }
}

/// The session of `cid` and the side the sender is on.
fn party_session<H: Host>(host: &H, sender: &Sender, cid: &str) -> Result<(Session, Side), String> {
    let session = store::load(host, cid).ok_or(UNKNOWN_CID)?;
    let side = session.side_of(&sender.user.id).ok_or(STRANGER)?;
    Ok((session, side))
}

/// `setup` and `start`: a customer opens a session (a new `cid`, or one
/// whose call ended: a fresh session) or goes on with its own.
fn open<H: Host>(
    host: &H,
    state: &mut State,
    sender: &Sender,
    message: &VoiceMessage,
) -> Result<(), String> {
    let cid = message.cid.as_str();
    let existing = store::load(host, cid);
    let going_on = match &existing {
        None => false,
        Some(session) => match session.side_of(&sender.user.id) {
            None => return Err(STRANGER.into()),
            // The seed's flow: after the customer's `setup`, the operator
            // starts the call (towards the customer).
            Some(Side::Operator)
                if message.kind == Kind::Start && session.phase != Phase::Ended =>
            {
                true
            }
            Some(Side::Operator) => return Err(only_customer(message.kind)),
            Some(Side::Customer) => session.phase != Phase::Ended,
        },
    };
    let settings = state.settings(host).clone();
    let mut session = match existing {
        Some(session) if going_on => session,
        _ => {
            if settings.is_operator(&sender.user.name) {
                return Err(only_customer(message.kind));
            }
            let operator =
                choose_operator(host, &settings.operators, &sender.user).ok_or(NO_OPERATOR)?;
            Session {
                customer: sender.user.clone(),
                operator,
                call_id: None,
                phase: Phase::Setup,
                seq: 0,
                starter: Side::Customer,
            }
        }
    };
    let live = host.live_call_ids();
    let side = session.side_of(&sender.user.id).unwrap_or(Side::Customer);
    if message.kind == Kind::Setup {
        forward(host, sender, &session.operator, &message.body, None)?;
    } else {
        if session.live_call(&live).is_some() {
            return Err(ALREADY_LIVE.into());
        }
        let callee = session.other(side).clone();
        let call_id = dial(host, sender.device, &callee)?;
        let name = settings
            .operator_name
            .clone()
            .unwrap_or_else(|| session.operator.name.clone());
        if let Err(reason) = forward(host, sender, &callee, &message.body, Some(&name)) {
            // Nobody was told of the call: take it back.
            request_call(host, sender.device, "hangup", &call_id);
            return Err(reason);
        }
        if let Some(old) = session.call_id.replace(call_id.clone()) {
            store::forget_call(host, &old);
        }
        session.phase = Phase::Ringing;
        session.starter = side;
        state.legs.insert(
            call_id.clone(),
            Legs {
                caller: Some(sender.device),
                answerer: None,
            },
        );
        host.log(
            Level::Info,
            &format!(
                "session {cid:?}: call {call_id} from {} rings {}",
                sender.user.name, callee.name
            ),
        );
    }
    if going_on {
        if message.kind == Kind::Start {
            store::save(host, cid, &session);
        }
    } else {
        // A new session (an ended one is replaced).
        store::delete(host, cid);
        store::prune(host, &live);
        session.seq = store::next_seq(host);
        store::save(host, cid, &session);
    }
    Ok(())
}

/// The first configured operator who is online (any device) and is not
/// the customer.
fn choose_operator<H: Host>(host: &H, operators: &[String], customer: &User) -> Option<User> {
    operators.iter().find_map(|name| {
        let Some(user) = host.find_user(name) else {
            host.log(
                Level::Warn,
                &format!("operator `{name}` is not a user of the switch"),
            );
            return None;
        };
        (user.id != customer.id && !host.online_devices(&user.id).is_empty()).then_some(user)
    })
}

/// `accept` from the operator: the call is answered from the operator's
/// device the message came from (the switch rang it), then forwarded.
fn accept<H: Host>(
    host: &H,
    state: &mut State,
    sender: &Sender,
    message: &VoiceMessage,
) -> Result<(), String> {
    let cid = message.cid.as_str();
    let (mut session, side) = party_session(host, sender, cid)?;
    if side == session.starter {
        return Err(only_called(Kind::Accept));
    }
    let live = host.live_call_ids();
    let Some(call_id) = session.live_call(&live).map(str::to_owned) else {
        if matches!(session.phase, Phase::Ringing | Phase::Active) {
            // The plugin missed the call's end (a reload closed its legs).
            mark_ended(host, cid, &mut session);
        }
        return Err(NOT_RINGING.into());
    };
    let request = json!({"type": "answer", "call_id": call_id}).to_string();
    if let Err(error) = host.request(sender.device, &request) {
        log_refusal(host, &format!("answering call {call_id}"), &error);
        if error.code == "unknown_call" {
            mark_ended(host, cid, &mut session);
            return Err(NOT_RINGING.into());
        }
        return Err(format!(
            "the switch refused the answer: {} ({})",
            error.message, error.code
        ));
    }
    session.phase = Phase::Active;
    store::save(host, cid, &session);
    state.legs.entry(call_id).or_default().answerer = Some(sender.device);
    let to = session.other(side).clone();
    forward(host, sender, &to, &message.body, None)
}

/// `busy` from the operator: a ringing call is declined from the
/// operator's device (and cancelled if it still rings elsewhere), then the
/// message is forwarded. A session without a ringing call (the switch
/// already ended it, e.g. the operator was in another call) is forwarded
/// all the same.
fn busy<H: Host>(
    host: &H,
    state: &mut State,
    sender: &Sender,
    message: &VoiceMessage,
) -> Result<(), String> {
    let cid = message.cid.as_str();
    let (mut session, side) = party_session(host, sender, cid)?;
    if side == session.starter && session.phase != Phase::Setup {
        return Err(only_called(Kind::Busy));
    }
    let live = host.live_call_ids();
    if let Some(call_id) = session.live_call(&live).map(str::to_owned) {
        if session.phase == Phase::Active {
            return Err(ALREADY_ANSWERED.into());
        }
        request_call(host, sender.device, "decline", &call_id);
        end_call(host, state, &call_id);
    }
    mark_ended(host, cid, &mut session);
    let to = session.other(side).clone();
    forward(host, sender, &to, &message.body, None)
}

/// `stop` from either side: the sender's side leaves the call (its
/// device that dialled or answered; a ringing callee declines), the call
/// is made sure to end, and the message goes to the other side.
fn stop<H: Host>(
    host: &H,
    state: &mut State,
    sender: &Sender,
    message: &VoiceMessage,
) -> Result<(), String> {
    let cid = message.cid.as_str();
    let (mut session, side) = party_session(host, sender, cid)?;
    let live = host.live_call_ids();
    if let Some(call_id) = session.live_call(&live).map(str::to_owned) {
        let legs = state.legs.get(&call_id).cloned().unwrap_or_default();
        let device = if side == session.starter {
            legs.caller
        } else {
            legs.answerer
        }
        .unwrap_or(sender.device);
        request_call(host, device, "hangup", &call_id);
        end_call(host, state, &call_id);
    }
    mark_ended(host, cid, &mut session);
    let to = session.other(side).clone();
    forward(host, sender, &to, &message.body, None)
}

/// `summary` from either side: forwarded only.
fn summary<H: Host>(host: &H, sender: &Sender, message: &VoiceMessage) -> Result<(), String> {
    let (session, side) = party_session(host, sender, &message.cid)?;
    forward(host, sender, session.other(side), &message.body, None)
}

/// Marks a session ended (when it was not already).
fn mark_ended<H: Host>(host: &H, cid: &str, session: &mut Session) {
    if session.phase != Phase::Ended {
        session.phase = Phase::Ended;
        store::save(host, cid, session);
    }
}

/// After one side left or declined: if the call still lives (it rang on
/// another device of the operator too, or the leaving device was not in
/// it), its caller hangs up (a cancel while it rings), then its answerer.
fn end_call<H: Host>(host: &H, state: &mut State, call_id: &str) {
    let legs = state.legs.remove(call_id).unwrap_or_default();
    for device in [legs.caller, legs.answerer].into_iter().flatten() {
        if !host.live_call_ids().iter().any(|id| id == call_id) {
            return;
        }
        request_call(host, device, "hangup", call_id);
    }
    if host.live_call_ids().iter().any(|id| id == call_id) {
        host.log(
            Level::Warn,
            &format!("call {call_id}: still live after the session ended"),
        );
    }
}

/// Sends `{"type":<kind>,"call_id":...}` as `device`. A refusal is logged
/// only: the call may have ended meanwhile.
fn request_call<H: Host>(host: &H, device: u64, kind: &str, call_id: &str) {
    let request = json!({"type": kind, "call_id": call_id}).to_string();
    if let Err(error) = host.request(device, &request) {
        if matches!(
            error.code.as_str(),
            "unknown_call" | "not_in_call" | "not_ringing"
        ) {
            host.log(
                Level::Debug,
                &format!(
                    "{kind} of call {call_id} from device {device}: {} ({})",
                    error.message, error.code
                ),
            );
        } else {
            log_refusal(host, &format!("{kind} of call {call_id}"), &error);
        }
    }
}

/// Dials `operator` from `device`; the new call's id.
fn dial<H: Host>(host: &H, device: u64, operator: &User) -> Result<String, String> {
    let request = json!({"type": "dial", "targets": [operator.id]}).to_string();
    let reply = host.request(device, &request).map_err(|error| {
        log_refusal(host, "dialling the operator", &error);
        format!(
            "the switch refused the call: {} ({})",
            error.message, error.code
        )
    })?;
    serde_json::from_str::<Value>(&reply)
        .ok()
        .and_then(|reply| reply.get("call_id")?.as_str().map(str::to_owned))
        .ok_or_else(|| {
            host.log(
                Level::Warn,
                &format!("dial answered without a call id: {reply}"),
            );
            "the switch gave no call id".to_owned()
        })
}

/// Sends the message re-addressed from the sender to `to` (with
/// `data.operator_name` when given) as a switch `message` from the
/// sender's device.
fn forward<H: Host>(
    host: &H,
    sender: &Sender,
    to: &User,
    body: &Map<String, Value>,
    operator_name: Option<&str>,
) -> Result<(), String> {
    let mut body = voice::readdress(body, &sender.user, to);
    if let Some(name) = operator_name {
        voice::add_operator_name(&mut body, name);
    }
    let request = json!({"type": "message", "to": to.id, "body": Value::Object(body)});
    host.request(sender.device, &request.to_string())
        .map(|_| ())
        .map_err(|error| {
            log_refusal(host, &format!("a message to {}", to.name), &error);
            format!(
                "not delivered to {}: {} ({})",
                to.name, error.message, error.code
            )
        })
}
