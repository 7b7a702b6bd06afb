//! The API's HTTP routes under `/api/v3/`: matching a path to a route, and
//! the handler of each (login, the notification socket, placing, answering
//! and declining calls). WebSocket routes do their checks and switch work
//! here, before the upgrade, and leave the rest to `events::on_stream_open`.

use crate::events::{self, finish_call, log_refusal, notify};
use crate::host::{Engagement, Host, Level, User};
use crate::http::{Reply, Request};
use crate::state::{Call, Pending, State};
use crate::wire::{
    api_uuid, parse_uuid, CallerAddress, LoginReply, NotificationKind, SwitchRequest,
};

/// Where the operator mounts the plugin (its `routes`); the API's clients
/// use these paths as they are.
pub const MOUNT: &str = "/api/v3/";

/// The label of the devices behind notification sockets.
pub const NOTIFY_LABEL: &str = "phone-rest notification socket";
/// The label of the devices the plugin dials from for API callers.
pub const LEG_LABEL: &str = "phone-rest call";

/// A route of the API, with its path parameters as given (checked by the
/// handlers, as a bad id is a 400, not a 404).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST auth/login`
    Login,
    /// `GET notification/socket` (WebSocket)
    NotificationSocket,
    /// `POST phone/initiate/:call_id/to/:user_id` (direct path)
    Initiate { call_id: &'a str, user_id: &'a str },
    /// `GET phone/socket/initiate/:call_id/to/:user_id` (WebSocket)
    SocketInitiate { call_id: &'a str, user_id: &'a str },
    /// `GET phone/socket/answer/:call_id` (WebSocket)
    SocketAnswer { call_id: &'a str },
    /// `POST phone/answer/:call_id` (direct path)
    Answer { call_id: &'a str },
    /// `POST phone/decline/:call_id`
    Decline { call_id: &'a str },
}

impl Route<'_> {
    /// The one method the route accepts.
    pub fn method(&self) -> &'static str {
        match self {
            Route::NotificationSocket
            | Route::SocketInitiate { .. }
            | Route::SocketAnswer { .. } => "GET",
            _ => "POST",
        }
    }
}

/// The route of `path` (as sent, without the query), or `None` for a path
/// the API does not have. One trailing slash is tolerated.
pub fn parse_route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix(MOUNT)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<&str> = rest.split('/').collect();
    Some(match segments.as_slice() {
        ["auth", "login"] => Route::Login,
        ["notification", "socket"] => Route::NotificationSocket,
        ["phone", "initiate", call_id, "to", user_id] => Route::Initiate { call_id, user_id },
        ["phone", "socket", "initiate", call_id, "to", user_id] => {
            Route::SocketInitiate { call_id, user_id }
        }
        ["phone", "socket", "answer", call_id] => Route::SocketAnswer { call_id },
        ["phone", "answer", call_id] => Route::Answer { call_id },
        ["phone", "decline", call_id] => Route::Decline { call_id },
        _ => return None,
    })
    .filter(|route| match route {
        Route::Initiate { call_id, user_id } | Route::SocketInitiate { call_id, user_id } => {
            !call_id.is_empty() && !user_id.is_empty()
        }
        Route::SocketAnswer { call_id }
        | Route::Answer { call_id }
        | Route::Decline { call_id } => !call_id.is_empty(),
        _ => true,
    })
}

/// Answers one HTTP request.
pub fn handle_http<H: Host>(host: &H, state: &mut State, request: &Request) -> Reply {
    let Some(route) = parse_route(&request.path) else {
        return Reply::not_found("Not Found");
    };
    if request.method != route.method() {
        return Reply::method_not_allowed(route.method());
    }
    events::reap_dead_calls(host, state);
    if route == Route::Login {
        return login(host, request);
    }
    let Some(token) = request.bearer_token() else {
        return Reply::unauthorized();
    };
    let Ok(requester) = host.authenticate(token) else {
        return Reply::unauthorized();
    };
    let requester = Requester {
        user: requester,
        token,
    };
    match route {
        // Answered above, without a bearer token.
        Route::Login => login(host, request),
        Route::NotificationSocket => notification_socket(state, request, &requester),
        Route::Initiate { call_id, user_id } => {
            initiate(host, state, request, &requester, call_id, user_id)
        }
        Route::SocketInitiate { call_id, user_id } => {
            socket_initiate(host, state, request, &requester, call_id, user_id)
        }
        Route::SocketAnswer { call_id } => socket_answer(host, state, request, &requester, call_id),
        Route::Answer { call_id } => answer(host, state, &requester, call_id),
        Route::Decline { call_id } => decline(host, state, &requester, call_id),
    }
}

/// The authenticated user of a request and the token they gave.
struct Requester<'a> {
    user: User,
    token: &'a str,
}

/// `POST auth/login`: the password is the user's switch token, and the
/// user name must be the name the token authenticates.
fn login<H: Host>(host: &H, request: &Request) -> Reply {
    let Some((username, password)) = request.basic_credentials() else {
        return Reply::unauthorized();
    };
    match host.authenticate(&password) {
        Ok(user) if user.name == username => Reply::json(
            200,
            &LoginReply {
                user_id: api_uuid(&user.id),
                access_level: "verified",
                token: password,
            },
        ),
        _ => Reply::unauthorized(),
    }
}

/// `GET notification/socket`: the device is opened once the stream is.
fn notification_socket(state: &mut State, request: &Request, requester: &Requester) -> Reply {
    if !request.websocket {
        return Reply::bad_request("WebSocket upgrade required.");
    }
    Reply::Upgrade(state.add_pending(Pending::Notify {
        token: requester.token.to_owned(),
    }))
}

/// The checks both ways of placing a call share: the ids, the callee (known,
/// not the caller, online), and a call id the plugin does not hold already.
/// `unavailable_status` is what a callee with no device online gets (400 on
/// the direct path, 404 on the socket path, as in the original server).
/// The socket path dials only once its socket is open: what can be checked
/// before the upgrade is checked here, so that it is an HTTP error.
fn check_new_call<H: Host>(
    host: &H,
    state: &State,
    requester: &Requester,
    call_id: &str,
    user_id: &str,
    unavailable_status: u16,
) -> Result<(String, User), Reply> {
    let call_id = parse_uuid(call_id).ok_or_else(|| Reply::bad_request("Invalid call ID."))?;
    let user_id = parse_uuid(user_id).ok_or_else(|| Reply::bad_request("Invalid user ID."))?;
    let callee = host
        .find_user(&user_id)
        .filter(|user| user.id == user_id)
        .ok_or_else(|| Reply::bad_request("User not found."))?;
    if callee.id == requester.user.id {
        return Err(Reply::bad_request("You cannot call yourself."));
    }
    if host.online_devices(&callee.id).is_empty() {
        return Err(Reply::error(unavailable_status, "User unavailable."));
    }
    if state.calls.contains_key(&call_id) {
        return Err(Reply::bad_request("Call ID already in use."));
    }
    Ok((call_id, callee))
}

/// Whether `user_id` is ringing or joined in a live call: the API allows a
/// user one call at a time.
fn is_busy<H: Host>(host: &H, user_id: &str) -> bool {
    host.calls_of(user_id).iter().any(|call| {
        call.parties
            .iter()
            .any(|(id, engagement)| id == user_id && *engagement == Engagement::Engaged)
    })
}

/// Opens a leg device for the caller and dials `callee` from it with the
/// API's call id. On a refusal the leg is closed and the switch's reason
/// returned.
pub fn place_call<H: Host>(
    host: &H,
    token: &str,
    call_id: &str,
    callee: &User,
) -> Result<u64, String> {
    let (leg, _) = host.open_device(token, LEG_LABEL, false).map_err(|error| {
        log_refusal(host, "opening a call leg", &error);
        error.message
    })?;
    let dial = SwitchRequest::Dial {
        call_id,
        targets: [&callee.id],
    };
    match host.request(leg, &dial.to_json()) {
        Ok(_) => Ok(leg),
        Err(error) => {
            log_refusal(host, "dial", &error);
            host.close_device(leg);
            Err(error.message)
        }
    }
}

/// `POST phone/initiate/:call_id/to/:user_id`: the direct path. The call
/// rings at once; the callee's notification sockets get `incomingPhoneCall`
/// with the caller's address from the `incoming` event that follows.
fn initiate<H: Host>(
    host: &H,
    state: &mut State,
    request: &Request,
    requester: &Requester,
    call_id: &str,
    user_id: &str,
) -> Reply {
    let (call_id, callee) = match check_new_call(host, state, requester, call_id, user_id, 400) {
        Ok(checked) => checked,
        Err(reply) => return reply,
    };
    let Some(address) = CallerAddress::from_body(&request.body) else {
        return Reply::bad_request("Request body must hold an ipV4Addr or an ipV6Addr.");
    };
    if is_busy(host, &requester.user.id) || is_busy(host, &callee.id) {
        return Reply::bad_request("User is busy.");
    }
    let leg = match place_call(host, requester.token, &call_id, &callee) {
        Ok(leg) => leg,
        Err(reason) => return Reply::bad_request(&reason),
    };
    host.log(
        Level::Info,
        &format!(
            "call {call_id}: {} calls {} (direct path)",
            requester.user.name, callee.name
        ),
    );
    let mut call = Call::new(requester.user.clone(), callee, host.monotonic_ms());
    call.leg_device = Some(leg);
    call.caller_address = Some(address);
    state.legs.insert(leg, call_id.clone());
    state.calls.insert(call_id, call);
    Reply::ok()
}

/// `GET phone/socket/initiate/:call_id/to/:user_id`: the server-mediated
/// path. The call is placed when the caller's socket opens.
fn socket_initiate<H: Host>(
    host: &H,
    state: &mut State,
    request: &Request,
    requester: &Requester,
    call_id: &str,
    user_id: &str,
) -> Reply {
    let (call_id, callee) = match check_new_call(host, state, requester, call_id, user_id, 404) {
        Ok(checked) => checked,
        Err(reply) => return reply,
    };
    if is_busy(host, &requester.user.id) || is_busy(host, &callee.id) {
        return Reply::bad_request("User is busy.");
    }
    if !request.websocket {
        return Reply::bad_request("WebSocket upgrade required.");
    }
    Reply::Upgrade(state.add_pending(Pending::Initiate {
        token: requester.token.to_owned(),
        call_id,
        caller: requester.user.clone(),
        callee,
    }))
}

/// The call `call_id` if the requester is its callee.
fn callees_call(state: &State, requester: &Requester, call_id: &str) -> Result<String, Reply> {
    let call_id = parse_uuid(call_id).ok_or_else(|| Reply::bad_request("Invalid call ID."))?;
    match state.calls.get(&call_id) {
        Some(call) if call.callee.id == requester.user.id => Ok(call_id),
        _ => Err(Reply::not_found("Call not found.")),
    }
}

/// Answers call `call_id` for its callee from one of their notification
/// devices, those it rings on first; returns the device that answered, or
/// the reason none could.
fn answer_call<H: Host>(host: &H, state: &mut State, call_id: &str) -> Result<u64, String> {
    let Some(call) = state.calls.get(call_id) else {
        return Err("Call not found.".into());
    };
    let mut candidates: Vec<u64> = call.ringing.iter().copied().collect();
    for device in state.notify_devices_of(&call.callee.id) {
        if !candidates.contains(&device) {
            candidates.push(device);
        }
    }
    let mut reason = String::from("No notification socket to answer from.");
    for device in candidates {
        let answer = SwitchRequest::Answer { call_id };
        match host.request(device, &answer.to_json()) {
            Ok(_) => {
                if let Some(call) = state.calls.get_mut(call_id) {
                    call.answering_device = Some(device);
                    call.ringing.remove(&device);
                }
                host.log(Level::Info, &format!("call {call_id}: answered"));
                return Ok(device);
            }
            // Not ringing on this device (it declined, or never rang): try
            // the user's next one.
            Err(error) if error.code == "not_ringing" => reason = error.message,
            Err(error) => {
                log_refusal(host, "answer", &error);
                return Err(error.message);
            }
        }
    }
    Err(reason)
}

/// Tells the notification sockets of `user_id` that call `call_id` was
/// answered, each socket once.
fn notify_answered<H: Host>(host: &H, state: &mut State, call_id: &str, user_id: &str) {
    let streams = state.notify_streams_of(user_id);
    let Some(call) = state.calls.get_mut(call_id) else {
        return;
    };
    for stream in streams {
        if call.answered_sent.insert(stream) {
            notify(
                host,
                stream,
                NotificationKind::PhoneCallAnswered {},
                call_id,
            );
        }
    }
}

/// `GET phone/socket/answer/:call_id`: answers before the upgrade, so a
/// refusal is still an HTTP error, and stops the callee's other devices
/// ringing; the media is attached when the socket opens.
fn socket_answer<H: Host>(
    host: &H,
    state: &mut State,
    request: &Request,
    requester: &Requester,
    call_id: &str,
) -> Reply {
    let call_id = match callees_call(state, requester, call_id) {
        Ok(call_id) => call_id,
        Err(reply) => return reply,
    };
    // Checked before answering: answering is not undone.
    if !request.websocket {
        return Reply::bad_request("WebSocket upgrade required.");
    }
    let device = match answer_call(host, state, &call_id) {
        Ok(device) => device,
        Err(reason) => return Reply::not_found(&reason),
    };
    notify_answered(host, state, &call_id, &requester.user.id);
    Reply::Upgrade(state.add_pending(Pending::Answer { call_id, device }))
}

/// `POST phone/answer/:call_id`: the direct path's answer; the media goes
/// between the clients, not through the switch.
fn answer<H: Host>(host: &H, state: &mut State, requester: &Requester, call_id: &str) -> Reply {
    let call_id = match callees_call(state, requester, call_id) {
        Ok(call_id) => call_id,
        Err(reply) => return reply,
    };
    if let Err(reason) = answer_call(host, state, &call_id) {
        return Reply::not_found(&reason);
    }
    notify_answered(host, state, &call_id, &requester.user.id);
    Reply::ok()
}

/// `POST phone/decline/:call_id`: either party ends the call (the caller
/// cancels or hangs up, the callee declines or hangs up).
fn decline<H: Host>(host: &H, state: &mut State, requester: &Requester, call_id: &str) -> Reply {
    let Some(call_id) = parse_uuid(call_id) else {
        return Reply::bad_request("Invalid call ID.");
    };
    let user_id = requester.user.id.as_str();
    let Some(call) = state.calls.get_mut(&call_id) else {
        return Reply::not_found("Call not found.");
    };
    if user_id == call.caller.id {
        let Some(leg) = call.leg_device else {
            // Dialled from the caller's own client: the plugin has no leg
            // in the call to end it with.
            return Reply::bad_request("The call was placed from another client.");
        };
        // Leaving a direct call ends it, ringing (a cancel) or answered.
        hang_up(host, leg, &call_id);
        finish_call(host, state, &call_id, Some(user_id));
    } else if user_id == call.callee.id {
        if let Some(device) = call.answering_device {
            hang_up(host, device, &call_id);
            finish_call(host, state, &call_id, Some(user_id));
        } else if !call.ringing.is_empty() {
            let ringing = std::mem::take(&mut call.ringing);
            call.ended_by = Some(user_id.to_owned());
            let caller_has_leg = call.leg_device.is_some();
            for device in ringing {
                let request = SwitchRequest::Decline { call_id: &call_id };
                if let Err(error) = host.request(device, &request.to_json()) {
                    if error.code != "not_ringing" && error.code != "unknown_call" {
                        log_refusal(host, "decline", &error);
                    }
                }
            }
            // The switch ends the call once the callee's last ringing device
            // declines; the caller's leg then gets `ended`, which finishes
            // the call here (phoneCallEnded to the caller only, their socket
            // closed). A callee still ringing on a QUIC device keeps ringing
            // there: the call goes on until that device answers, declines or
            // times out, so the caller's socket stays open meanwhile.
            if !caller_has_leg {
                // The caller dialled from their own client: no device of the
                // plugin is left in the call to hear its end, forget it now.
                finish_call(host, state, &call_id, Some(user_id));
            }
        } else {
            // The callee is in the call only through another client, if at
            // all: end it from the caller's side (`finish_call` closes the
            // caller's leg device).
            finish_call(host, state, &call_id, Some(user_id));
        }
    } else {
        return Reply::not_found("Call not found.");
    }
    Reply::ok()
}

/// Sends `hangup` for `call_id` from `device`; a call that already ended is
/// not worth a warning.
pub fn hang_up<H: Host>(host: &H, device: u64, call_id: &str) {
    let request = SwitchRequest::Hangup { call_id };
    if let Err(error) = host.request(device, &request.to_json()) {
        if error.code != "unknown_call" {
            log_refusal(host, "hangup", &error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = "6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F";
    const BOB: &str = "5f1c5a1e-0000-4000-8000-000000000b0b";

    #[test]
    fn routes_are_parsed() {
        assert_eq!(parse_route("/api/v3/auth/login"), Some(Route::Login));
        assert_eq!(
            parse_route("/api/v3/notification/socket"),
            Some(Route::NotificationSocket)
        );
        assert_eq!(
            parse_route(&format!("/api/v3/phone/initiate/{CALL}/to/{BOB}")),
            Some(Route::Initiate {
                call_id: CALL,
                user_id: BOB
            })
        );
        assert_eq!(
            parse_route(&format!("/api/v3/phone/socket/initiate/{CALL}/to/{BOB}")),
            Some(Route::SocketInitiate {
                call_id: CALL,
                user_id: BOB
            })
        );
        assert_eq!(
            parse_route(&format!("/api/v3/phone/socket/answer/{CALL}")),
            Some(Route::SocketAnswer { call_id: CALL })
        );
        assert_eq!(
            parse_route(&format!("/api/v3/phone/answer/{CALL}")),
            Some(Route::Answer { call_id: CALL })
        );
        assert_eq!(
            parse_route(&format!("/api/v3/phone/decline/{CALL}/")),
            Some(Route::Decline { call_id: CALL })
        );
        // Parameters are checked by the handlers, not here.
        assert_eq!(
            parse_route("/api/v3/phone/decline/nope"),
            Some(Route::Decline { call_id: "nope" })
        );
    }

    #[test]
    fn unknown_paths_have_no_route() {
        for path in [
            "/api/v3/",
            "/api/v3",
            "/api/v3/auth",
            "/api/v3/auth/login/extra",
            "/api/v3/phone/decline/",
            "/api/v3/phone/decline//",
            "/api/v3/phone/initiate//to/x",
            "/api/v3/phone/initiate/x/from/y",
            "/api/v3/phone/socket/answer",
            "/api/v4/auth/login",
            "/api/v3//auth/login",
        ] {
            assert_eq!(parse_route(path), None, "{path}");
        }
    }

    #[test]
    fn each_route_has_one_method() {
        assert_eq!(Route::Login.method(), "POST");
        assert_eq!(Route::NotificationSocket.method(), "GET");
        assert_eq!(Route::SocketAnswer { call_id: "x" }.method(), "GET");
        assert_eq!(
            Route::SocketInitiate {
                call_id: "x",
                user_id: "y"
            }
            .method(),
            "GET"
        );
        assert_eq!(
            Route::Initiate {
                call_id: "x",
                user_id: "y"
            }
            .method(),
            "POST"
        );
        assert_eq!(Route::Answer { call_id: "x" }.method(), "POST");
        assert_eq!(Route::Decline { call_id: "x" }.method(), "POST");
    }
}
