//! The terminals' side: gRPC streams opening and closing, and what each
//! client message (`Offer`, `Answer`, `Ringing`, `Bye`, `Action`) does on
//! the switch.

use crate::grpc::{status, status_for};
use crate::host::{Host, Level, PartyState, SwitchError};
use crate::presence;
use crate::proto::{ActionBody, Body, Code, Offer, WebTerminalMessage};
use crate::state::{CallSdp, Leg, Mode, Phase, Role, State, Terminal};
use crate::wire::{
    call_request, dial_request, invite_request, normalize_uuid, reply_call_id, PLACEHOLDER_SDP,
};

/// The label of the terminals' devices (what `callswitch users` shows).
pub const DEVICE_LABEL: &str = "web-terminal";

/// Offers a terminal may send per second unless the `max_offers_per_second`
/// setting says otherwise.
pub const DEFAULT_OFFERS_PER_SECOND: usize = 10;

/// Sends one message on a terminal's stream.
pub fn send<H: Host>(host: &H, stream: u64, message: &WebTerminalMessage) {
    if let Err(error) = host.send(stream, message.encode()) {
        host.log(
            Level::Warn,
            &format!("message to terminal stream {stream} not sent: {error}"),
        );
    }
}

/// Logs a refusal by the switch: those a client can cause at `info`, those
/// that mean the plugin or the switch misbehaved at `warn`.
pub fn log_refusal<H: Host>(host: &H, what: &str, error: &SwitchError) {
    let unexpected = matches!(
        error.code.as_str(),
        "malformed_frame" | "bad_request" | "unknown_message" | "timeout" | "internal"
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

/// A gRPC call the plugin accepted is open: register its terminal (a
/// ringing device of the token's user) and tell it `InCall` or `Idle`.
pub fn on_stream_open<H: Host>(host: &H, state: &mut State, stream: u64, context: &str) {
    let Some(pending) = state.take_pending(context) else {
        // Accepted by an instance that has since been replaced.
        host.close_stream(stream, status::UNAVAILABLE, "registration lost; retry");
        return;
    };
    let (device, mut user) = match host.open_device(&pending.token, DEVICE_LABEL, true) {
        Ok(opened) => opened,
        Err(error) => {
            log_refusal(host, "opening a web terminal device", &error);
            host.close_stream(stream, status_for(&error.code), &error.message);
            return;
        }
    };
    if user.numbers.is_empty() {
        if let Some(found) = host.find_user(&user.id) {
            user.numbers = found.numbers;
        }
    }
    host.log(
        Level::Info,
        &format!(
            "{}: web terminal {} open on stream {stream} (device {device}, msisdn {})",
            user.name,
            match pending.mode {
                Mode::Pipe => "Pipe",
                Mode::Multi => "MultiPipe",
            },
            if user.numbers.is_empty() {
                "none"
            } else {
                &user.numbers[0]
            }
        ),
    );
    state.by_device.insert(device, stream);
    state
        .terminals
        .insert(stream, Terminal::new(pending.mode, device, user));
    presence::announce(host, state, stream);
}

/// The client ended its side of the call (or went away): the terminal is
/// gone, and its device with it, which ends its calls (the other parties
/// are told by the switch).
pub fn on_stream_close<H: Host>(host: &H, state: &mut State, stream: u64) {
    if let Some(term) = drop_terminal(host, state, stream) {
        host.log(
            Level::Info,
            &format!(
                "{}: web terminal on stream {stream} closed ({} call(s) left)",
                term.user.name,
                term.legs.len()
            ),
        );
    }
}

/// Forgets terminal `stream` and closes its device.
pub fn drop_terminal<H: Host>(host: &H, state: &mut State, stream: u64) -> Option<Terminal> {
    let term = state.remove_terminal(stream)?;
    host.close_device(term.device);
    Some(term)
}

/// A message from a terminal. Bytes that are no `WebTerminalMessage` end
/// the call with INVALID_ARGUMENT (and the terminal with it).
pub fn on_stream_message<H: Host>(host: &H, state: &mut State, stream: u64, bytes: &[u8]) {
    if !state.terminals.contains_key(&stream) {
        return;
    }
    match WebTerminalMessage::decode(bytes) {
        Ok(message) => on_message(host, state, stream, message),
        Err(error) => {
            host.close_stream(
                stream,
                status::INVALID_ARGUMENT,
                &format!("not a WebTerminalMessage: {error}"),
            );
            if let Some(term) = drop_terminal(host, state, stream) {
                host.log(
                    Level::Info,
                    &format!(
                        "{}: web terminal on stream {stream} sent garbage ({error}); ended",
                        term.user.name
                    ),
                );
            }
        }
    }
}

/// What a client message is about.
struct Target {
    /// The call id as the client wrote it (echoed in `Error`s).
    raw: String,
    /// The call the message names: on `MultiPipe` the client's id
    /// (lower-cased), on `Pipe` the terminal's current call.
    call_id: Option<String>,
}

fn on_message<H: Host>(host: &H, state: &mut State, stream: u64, message: WebTerminalMessage) {
    let term = &state.terminals[&stream];
    let raw = message.call_id;
    let call_id = match term.mode {
        Mode::Pipe => term.current_call(),
        Mode::Multi => match normalize_uuid(&raw) {
            Some(id) => Some(id),
            None => {
                send(
                    host,
                    stream,
                    &WebTerminalMessage::error(Code::InvalidCallId, &raw),
                );
                return;
            }
        },
    };
    let target = Target { raw, call_id };
    match message.message {
        Some(Body::Offer(offer)) => on_offer(host, state, stream, target, offer),
        Some(Body::Answer(answer)) => on_answer(host, state, stream, target, answer.sdp),
        Some(Body::Ringing(_)) => on_ringing(host, state, stream, target),
        Some(Body::Bye(_)) => on_bye(host, state, stream, target),
        Some(Body::Action(action)) => match action.message {
            Some(ActionBody::ToPhone(_)) => on_to_phone(host, state, stream, target),
            None => send(
                host,
                stream,
                &WebTerminalMessage::error(Code::Unknown, &target.raw),
            ),
        },
        // Nothing, or what only the core sends.
        None | Some(Body::Idle(_)) | Some(Body::InCall(_)) | Some(Body::Error(_)) => send(
            host,
            stream,
            &WebTerminalMessage::error(Code::Unknown, &target.raw),
        ),
    }
}

fn error<H: Host>(host: &H, stream: u64, code: Code, target: &Target) {
    send(host, stream, &WebTerminalMessage::error(code, &target.raw));
}

/// The leg of terminal `stream` the message names, if it has one.
fn leg_of<'a>(state: &'a State, stream: u64, target: &Target) -> Option<(String, &'a Leg)> {
    let call_id = target.call_id.as_ref()?;
    let leg = state.terminals[&stream].legs.get(call_id)?;
    Some((call_id.clone(), leg))
}

/// Where the user of terminal `stream` stands in live call `call_id` (not
/// counting the terminal's own leg).
fn user_state_in<H: Host>(
    host: &H,
    state: &State,
    stream: u64,
    call_id: &str,
) -> Option<PartyState> {
    let user = &state.terminals[&stream].user.id;
    host.calls_of(user)
        .into_iter()
        .find(|call| call.id == call_id)
        .and_then(|call| call.state_of(user))
}

/// The error for a message naming no call of the terminal: `NOT_INCALL`
/// when the terminal has no call to speak of (`Pipe`) or the call is one
/// of the user's on another device, else `INVALID_CALL_ID`.
fn no_such_call<H: Host>(host: &H, state: &State, stream: u64, target: &Target) {
    let code = match &target.call_id {
        None => Code::NotIncall,
        Some(call_id) => match user_state_in(host, state, stream, call_id) {
            Some(PartyState::Joined) | Some(PartyState::Ringing) => Code::NotIncall,
            _ => Code::InvalidCallId,
        },
    };
    error(host, stream, code, target);
}

fn offer_limit<H: Host>(host: &H, state: &mut State) -> usize {
    *state.offer_limit.get_or_insert_with(|| {
        match host.config("max_offers_per_second") {
            None => DEFAULT_OFFERS_PER_SECOND,
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                host.log(
                    Level::Warn,
                    &format!(
                        "max_offers_per_second = {text:?} is not a number; using {DEFAULT_OFFERS_PER_SECOND}"
                    ),
                );
                DEFAULT_OFFERS_PER_SECOND
            }),
        }
    })
}

/// `Offer`: a new call, an SDP update of the terminal's call, or an attempt
/// to take over a call of the user's on another device.
fn on_offer<H: Host>(host: &H, state: &mut State, stream: u64, target: Target, offer: Offer) {
    let limit = offer_limit(host, state);
    let now = host.monotonic_ms();
    let term = state.terminals.get_mut(&stream).expect("checked");
    if !term.allow_offer(now, limit) {
        host.log(
            Level::Info,
            &format!("{}: more than {limit} Offers in a second", term.user.name),
        );
        error(host, stream, Code::RateLimitHit, &target);
        return;
    }
    let callee = offer
        .msisdn
        .map(|number| number.e164.trim().to_owned())
        .unwrap_or_default();
    if let Some((call_id, _)) = leg_of(state, stream, &target) {
        update_sdp(host, state, stream, &call_id, offer.sdp);
        return;
    }
    let term = &state.terminals[&stream];
    let user = term.user.id.clone();
    let chosen_id = match term.mode {
        Mode::Multi => {
            let call_id = target.call_id.clone().expect("MultiPipe ids are checked");
            match user_state_in(host, state, stream, &call_id) {
                Some(PartyState::Joined) => {
                    take_over(host, state, stream, &target, &call_id, offer.sdp);
                    return;
                }
                // A live call the user only rings in, or has left.
                Some(_) => {
                    error(host, stream, Code::InvalidCallId, &target);
                    return;
                }
                // Not a call of the user's: a new call with this id (an id
                // of any live or recorded call is refused by the switch as
                // `duplicate_call_id`).
                None => {}
            }
            Some(call_id)
        }
        Mode::Pipe => {
            // `Pipe` carries no call id: an Offer while the number is in a
            // call elsewhere is a take-over when it names nobody, the
            // terminal's own number or a party of that call.
            let callee_id = host.find_user(&callee).map(|found| found.id);
            let taken = host.calls_of(&user).into_iter().find(|call| {
                call.state_of(&user) == Some(PartyState::Joined)
                    && !term.had_call(&call.id)
                    && (callee.is_empty()
                        || callee == term.msisdn
                        || callee_id
                            .as_ref()
                            .is_some_and(|id| id != &user && call.state_of(id).is_some()))
            });
            if let Some(call) = taken {
                take_over(host, state, stream, &target, &call.id, offer.sdp);
                return;
            }
            None
        }
    };
    place_call(host, state, stream, &target, chosen_id, &callee, offer.sdp);
}

/// Taking over a call the user is in on another device: the switch's
/// `pickup` moves the user's leg to the terminal's device (the device that
/// had it is told it left). The terminal's offer then goes to the other
/// terminals in the call as an SDP update; with none, the terminal gets the
/// placeholder `Answer`. A refused pickup (the call ended meanwhile) is
/// `TRY_AGAIN`.
fn take_over<H: Host>(
    host: &H,
    state: &mut State,
    stream: u64,
    target: &Target,
    call_id: &str,
    sdp: String,
) {
    let term = &state.terminals[&stream];
    match host.request(term.device, &call_request("pickup", call_id)) {
        Ok(_) => {
            host.log(
                Level::Info,
                &format!(
                    "call {call_id}: {} took it over on a web terminal",
                    term.user.name
                ),
            );
            let remote = target_remote(host, &term.user.id, call_id);
            let term = state.terminals.get_mut(&stream).expect("checked");
            let mut leg = Leg::new(Role::Callee, &remote);
            leg.phase = Phase::Joined;
            term.legs.insert(call_id.to_owned(), leg);
            update_sdp(host, state, stream, call_id, sdp);
        }
        Err(e) => {
            host.log(
                Level::Info,
                &format!("call {call_id}: take-over refused: {}", e.message),
            );
            error(host, stream, Code::TryAgain, target);
        }
    }
}

/// The number of the first other party of a live call (empty if none).
fn target_remote<H: Host>(host: &H, user: &str, call_id: &str) -> String {
    host.calls_of(user)
        .into_iter()
        .find(|c| c.id == call_id)
        .and_then(|c| {
            let (other, _) = c.parties.iter().find(|(id, _)| id != user)?;
            host.find_user(other).map(|u| u.msisdn())
        })
        .unwrap_or_default()
}

/// Dials `callee` from the terminal's device.
fn place_call<H: Host>(
    host: &H,
    state: &mut State,
    stream: u64,
    target: &Target,
    call_id: Option<String>,
    callee: &str,
    sdp: String,
) {
    let term = &state.terminals[&stream];
    let echo = call_id.clone().unwrap_or_default();
    if callee.is_empty() {
        host.log(
            Level::Info,
            &format!("{}: Offer without a callee msisdn", term.user.name),
        );
        send(host, stream, &WebTerminalMessage::bye(&echo));
        return;
    }
    let device = term.device;
    let name = term.user.name.clone();
    match host.request(device, &dial_request(callee, call_id.as_deref())) {
        Ok(reply) => {
            let Some(call_id) = reply_call_id(&reply).or(call_id) else {
                host.log(
                    Level::Warn,
                    &format!("dial answered without a call id: {reply}"),
                );
                send(host, stream, &WebTerminalMessage::bye(&echo));
                return;
            };
            host.log(
                Level::Info,
                &format!("call {call_id}: {name} calls {callee} from a web terminal"),
            );
            let term = state.terminals.get_mut(&stream).expect("checked");
            term.legs
                .insert(call_id.clone(), Leg::new(Role::Caller, callee));
            state.sdp.insert(
                call_id,
                CallSdp {
                    offer: Some(sdp),
                    answer: None,
                },
            );
        }
        Err(refusal) => {
            log_refusal(host, &format!("{name} calling {callee}"), &refusal);
            match refusal.code.as_str() {
                "duplicate_call_id" => error(host, stream, Code::InvalidCallId, target),
                "overloaded" | "timeout" => error(host, stream, Code::TryAgain, target),
                // Unknown number, oneself, denied by policy...: the call
                // is rejected.
                _ => send(host, stream, &WebTerminalMessage::bye(&echo)),
            }
        }
    }
}

/// A new SDP for the terminal's call `call_id`: passed on as an `Offer` to
/// the other terminals in the call; with none (the other party is no web
/// terminal) an answered call gets the placeholder `Answer` back.
fn update_sdp<H: Host>(host: &H, state: &mut State, stream: u64, call_id: &str, sdp: String) {
    let term = &state.terminals[&stream];
    let leg = &term.legs[call_id];
    let (role, phase) = (leg.role, leg.phase);
    let msisdn = term.msisdn.clone();
    if role == Role::Caller && phase == Phase::Ringing {
        // Whoever the call rings on next gets the newest offer.
        state.sdp.entry(call_id.to_owned()).or_default().offer = Some(sdp.clone());
    }
    let peers = state.peers(call_id, stream);
    for &peer in &peers {
        send(
            host,
            peer,
            &WebTerminalMessage::offer(&sdp, &msisdn, call_id),
        );
    }
    if peers.is_empty() && phase == Phase::Joined {
        send(
            host,
            stream,
            &WebTerminalMessage::answer(PLACEHOLDER_SDP, call_id),
        );
    }
}

/// `Answer`: the terminal takes a call ringing on it, or answers an SDP
/// update of its call.
fn on_answer<H: Host>(host: &H, state: &mut State, stream: u64, target: Target, sdp: String) {
    let Some((call_id, leg)) = leg_of(state, stream, &target) else {
        no_such_call(host, state, stream, &target);
        return;
    };
    match (leg.role, leg.phase) {
        (Role::Callee, Phase::Ringing) => {
            // Kept before answering: the caller's `answered` comes after.
            state.sdp.entry(call_id.clone()).or_default().answer = Some(sdp);
            let term = &state.terminals[&stream];
            match host.request(term.device, &call_request("answer", &call_id)) {
                Ok(_) => {
                    host.log(
                        Level::Info,
                        &format!(
                            "call {call_id}: {} answered on a web terminal",
                            term.user.name
                        ),
                    );
                    let term = state.terminals.get_mut(&stream).expect("checked");
                    if let Some(leg) = term.legs.get_mut(&call_id) {
                        leg.phase = Phase::Joined;
                    }
                }
                Err(refusal) => {
                    log_refusal(host, &format!("answering call {call_id}"), &refusal);
                    state.forget_leg(stream, &call_id, true);
                    send(host, stream, &WebTerminalMessage::bye(&call_id));
                }
            }
        }
        (_, Phase::Joined) => {
            for peer in state.peers(&call_id, stream) {
                send(host, peer, &WebTerminalMessage::answer(&sdp, &call_id));
            }
        }
        // The caller's own call, not answered yet.
        (Role::Caller, Phase::Ringing) => error(host, stream, Code::Unknown, &target),
    }
}

/// `Ringing`: the terminal alerts its user. Nothing to do on the switch
/// (the caller was told `ringing` when the device started ringing).
fn on_ringing<H: Host>(host: &H, state: &mut State, stream: u64, target: Target) {
    match leg_of(state, stream, &target) {
        Some((call_id, _)) => host.log(
            Level::Debug,
            &format!("call {call_id}: web terminal stream {stream} is alerting"),
        ),
        None if state.terminals[&stream].mode == Mode::Multi => {
            error(host, stream, Code::InvalidCallId, &target)
        }
        None => {}
    }
}

/// `Bye`: decline a call ringing on the terminal, cancel one it placed, or
/// leave one it is in.
fn on_bye<H: Host>(host: &H, state: &mut State, stream: u64, target: Target) {
    let Some((call_id, leg)) = leg_of(state, stream, &target) else {
        no_such_call(host, state, stream, &target);
        return;
    };
    let kind = match (leg.role, leg.phase) {
        (Role::Callee, Phase::Ringing) => "decline",
        _ => "hangup",
    };
    let term = &state.terminals[&stream];
    host.log(
        Level::Info,
        &format!("call {call_id}: {} sends Bye ({kind})", term.user.name),
    );
    if let Err(refusal) = host.request(term.device, &call_request(kind, &call_id)) {
        // Typically the call ended meanwhile; its `ended` is on its way.
        log_refusal(host, &format!("{kind} of call {call_id}"), &refusal);
    }
    state.forget_leg(stream, &call_id, true);
}

/// `Action{ToPhone}`: move the terminal's call to the user's other device.
///
/// The transfer-like sequence is: invite the user into the call from the
/// terminal's device (ringing its other devices), then leave the call on
/// the terminal, which stays up while the invitation rings. The switch
/// refuses the first step today (`cannot_call_self`: a user cannot invite
/// itself, nor be invited into a call it is joined to), so the terminal
/// gets `TRY_AGAIN`; a switch that accepts it gets the move done.
fn on_to_phone<H: Host>(host: &H, state: &mut State, stream: u64, target: Target) {
    let joined =
        matches!(leg_of(state, stream, &target), Some((_, leg)) if leg.phase == Phase::Joined);
    let Some(call_id) = target.call_id.clone().filter(|_| joined) else {
        if leg_of(state, stream, &target).is_some() {
            // Still ringing: not in a call yet.
            error(host, stream, Code::NotIncall, &target);
        } else {
            no_such_call(host, state, stream, &target);
        }
        return;
    };
    let term = &state.terminals[&stream];
    let user = term.user.clone();
    let device = term.device;
    let others = host
        .online_devices(&user.id)
        .len()
        .saturating_sub(state.terminals_of(&user.id));
    if others == 0 {
        host.log(
            Level::Info,
            &format!(
                "call {call_id}: ToPhone, but {} has no other device online",
                user.name
            ),
        );
        error(host, stream, Code::TryAgain, &target);
        return;
    }
    if let Err(refusal) = host.request(device, &invite_request(&call_id, &user.id)) {
        log_refusal(
            host,
            &format!("ToPhone of call {call_id} (inviting {})", user.name),
            &refusal,
        );
        error(host, stream, Code::TryAgain, &target);
        return;
    }
    // The invitation rings; the call survives the terminal leaving.
    if let Err(refusal) = host.request(device, &call_request("hangup", &call_id)) {
        log_refusal(
            host,
            &format!("leaving call {call_id} after ToPhone"),
            &refusal,
        );
    }
    host.log(
        Level::Info,
        &format!("call {call_id}: {} moves it to another device", user.name),
    );
    let term = state.terminals.get_mut(&stream).expect("checked");
    term.mark_moved(&call_id);
    // Not remembered as the terminal's own: once the phone answers, the
    // call is reported with `InCall`.
    state.forget_leg(stream, &call_id, false);
}
