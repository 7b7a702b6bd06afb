//! Whole flows of the API against a fake switch: what the plugin asks the
//! switch, what it sends on which stream, for a sequence of requests and
//! events. The fake only records and answers as told; it does not model
//! calls.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::events;
use crate::host::{Engagement, Host, Level, LiveCall, Message, SwitchError, User};
use crate::http::{Reply, Request};
use crate::routes::handle_http;
use crate::state::State;

const ALICE: &str = "5f1c5a1e-0000-4000-8000-00000000a11c";
const BOB: &str = "5f1c5a1e-0000-4000-8000-000000000b0b";
const CAROL: &str = "5f1c5a1e-0000-4000-8000-00000000ca01";
const CALL: &str = "6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5f";
const CALL_UPPER: &str = "6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F";

/// What the plugin did to the fake switch, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Open {
        device: u64,
        label: String,
        rings: bool,
    },
    Request {
        device: u64,
        json: String,
    },
    CloseDevice(u64),
    Send {
        stream: u64,
        message: Message,
    },
    CloseStream {
        stream: u64,
        code: u16,
    },
    Attach {
        stream: u64,
        device: u64,
        call_id: String,
    },
}

#[derive(Default)]
struct Fake {
    actions: RefCell<Vec<Action>>,
    logs: RefCell<Vec<(Level, String)>>,
    next_device: RefCell<u64>,
    /// Users by token.
    tokens: BTreeMap<&'static str, User>,
    online: RefCell<BTreeMap<String, Vec<String>>>,
    live: RefCell<Vec<LiveCall>>,
    /// Refusals by request type (`dial`, `answer`...), taken once each.
    refusals: RefCell<BTreeMap<&'static str, SwitchError>>,
    monotonic: RefCell<u64>,
}

fn user(id: &str, name: &str) -> User {
    User {
        id: id.into(),
        name: name.into(),
    }
}

impl Fake {
    fn new() -> Fake {
        let mut fake = Fake {
            next_device: RefCell::new(100),
            monotonic: RefCell::new(10_000),
            ..Fake::default()
        };
        fake.tokens.insert("alice-token", user(ALICE, "alice"));
        fake.tokens.insert("bob-token", user(BOB, "bob"));
        fake.tokens.insert("carol-token", user(CAROL, "carol"));
        for id in [ALICE, BOB, CAROL] {
            fake.online
                .borrow_mut()
                .insert(id.into(), vec!["laptop".into()]);
        }
        fake
    }

    fn take(&self) -> Vec<Action> {
        std::mem::take(&mut self.actions.borrow_mut())
    }

    fn refuse(&self, request_type: &'static str, code: &str, message: &str) {
        self.refusals.borrow_mut().insert(
            request_type,
            SwitchError {
                code: code.into(),
                message: message.into(),
            },
        );
    }

    fn set_live(&self, call_id: &str, parties: &[&str]) {
        self.live.borrow_mut().push(LiveCall {
            id: call_id.into(),
            parties: parties
                .iter()
                .map(|id| (id.to_string(), Engagement::Engaged))
                .collect(),
        });
    }
}

impl Host for Fake {
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.into()));
    }
    fn now_ms(&self) -> u64 {
        1_795_361_322_123
    }
    fn monotonic_ms(&self) -> u64 {
        *self.monotonic.borrow()
    }
    fn live_call_ids(&self) -> Vec<String> {
        self.live.borrow().iter().map(|c| c.id.clone()).collect()
    }
    fn calls_of(&self, user: &str) -> Vec<LiveCall> {
        self.live
            .borrow()
            .iter()
            .filter(|c| c.parties.iter().any(|(id, _)| id == user))
            .cloned()
            .collect()
    }
    fn find_user(&self, target: &str) -> Option<User> {
        self.tokens.values().find(|u| u.id == target).cloned()
    }
    fn online_devices(&self, user: &str) -> Vec<String> {
        self.online.borrow().get(user).cloned().unwrap_or_default()
    }
    fn authenticate(&self, token: &str) -> Result<User, SwitchError> {
        self.tokens.get(token).cloned().ok_or(SwitchError {
            code: "unauthorized".into(),
            message: "bad token".into(),
        })
    }
    fn open_device(
        &self,
        token: &str,
        label: &str,
        rings: bool,
    ) -> Result<(u64, User), SwitchError> {
        let user = self.authenticate(token)?;
        let mut next = self.next_device.borrow_mut();
        *next += 1;
        self.actions.borrow_mut().push(Action::Open {
            device: *next,
            label: label.into(),
            rings,
        });
        Ok((*next, user))
    }
    fn request(&self, device: u64, request: &str) -> Result<String, SwitchError> {
        self.actions.borrow_mut().push(Action::Request {
            device,
            json: request.into(),
        });
        let value: serde_json::Value = serde_json::from_str(request).unwrap();
        let kind = value["type"].as_str().unwrap().to_owned();
        let refusal = self.refusals.borrow_mut().remove(kind.as_str());
        match refusal {
            Some(error) => Err(error),
            None => Ok(format!(r#"{{"type":"ok","call_id":{}}}"#, value["call_id"])),
        }
    }
    fn close_device(&self, device: u64) {
        self.actions.borrow_mut().push(Action::CloseDevice(device));
    }
    fn send(&self, stream: u64, message: Message) -> Result<(), String> {
        self.actions
            .borrow_mut()
            .push(Action::Send { stream, message });
        Ok(())
    }
    fn close_stream(&self, stream: u64, code: u16, _reason: &str) {
        self.actions
            .borrow_mut()
            .push(Action::CloseStream { stream, code });
    }
    fn attach_media(&self, stream: u64, device: u64, call_id: &str) -> Result<(), String> {
        self.actions.borrow_mut().push(Action::Attach {
            stream,
            device,
            call_id: call_id.into(),
        });
        Ok(())
    }
}

fn request(method: &str, path: &str, token: Option<&str>) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        headers: token
            .map(|t| vec![("authorization".to_string(), format!("Bearer {t}"))])
            .unwrap_or_default(),
        body: Vec::new(),
        websocket: method == "GET",
    }
}

/// The status and JSON body of a response (`Null` for an empty body).
fn response(reply: Reply) -> (u16, serde_json::Value) {
    match reply {
        Reply::Respond(r) if r.body.is_empty() => (r.status, serde_json::Value::Null),
        Reply::Respond(r) => (r.status, serde_json::from_slice(&r.body).unwrap()),
        Reply::Upgrade(context) => panic!("upgrade {context}"),
    }
}

fn error_reason(reply: Reply) -> (u16, String) {
    let (status, body) = response(reply);
    assert_eq!(body["error"], true);
    assert_eq!(body["status"], status);
    (status, body["reason"].as_str().unwrap().to_owned())
}

fn text(stream: u64, json: &str) -> Action {
    Action::Send {
        stream,
        message: Message::Text(json.into()),
    }
}

fn status_frame(kind: &str) -> String {
    format!(r#"{{"type":{{"{kind}":{{}}}},"info":"","contentID":"{CALL_UPPER}"}}"#)
}

/// Opens a notification socket on `stream` for `token`; returns its device.
fn open_notify(fake: &Fake, state: &mut State, stream: u64, token: &str) -> u64 {
    let reply = handle_http(
        fake,
        state,
        &request("GET", "/api/v3/notification/socket", Some(token)),
    );
    let Reply::Upgrade(context) = reply else {
        panic!("no upgrade: {reply:?}");
    };
    events::on_stream_open(fake, state, stream, &context);
    let actions = fake.take();
    let [Action::Open {
        device,
        label,
        rings: true,
    }] = actions.as_slice()
    else {
        panic!("{actions:?}");
    };
    assert_eq!(label, "phone-rest notification socket");
    *device
}

fn incoming_event(from_id: &str, from_name: &str) -> String {
    format!(
        r#"{{"type":"incoming","call_id":"{CALL}","kind":"direct","from":{{"id":"{from_id}","name":"{from_name}"}},"parties":[]}}"#
    )
}

/// Alice (notification stream 1) places CALL to Bob (stream 2) by the
/// direct path; Bob's socket gets `incomingPhoneCall`. Returns
/// (alice's device, bob's device, the leg device).
fn direct_call(fake: &Fake, state: &mut State) -> (u64, u64, u64) {
    let alice = open_notify(fake, state, 1, "alice-token");
    let bob = open_notify(fake, state, 2, "bob-token");
    let mut post = request(
        "POST",
        &format!(
            "/api/v3/phone/initiate/{CALL_UPPER}/to/{}",
            BOB.to_uppercase()
        ),
        Some("alice-token"),
    );
    post.body = br#"{"ipV4Addr":"10.1.2.3"}"#.to_vec();
    assert_eq!(
        response(handle_http(fake, state, &post)),
        (200, serde_json::Value::Null)
    );
    let actions = fake.take();
    let leg = match actions.as_slice() {
        [Action::Open {
            device,
            rings: false,
            ..
        }, Action::Request { device: from, json }] => {
            assert_eq!(from, device);
            assert_eq!(
                json,
                &format!(r#"{{"type":"dial","call_id":"{CALL}","targets":["{BOB}"]}}"#)
            );
            *device
        }
        other => panic!("{other:?}"),
    };
    fake.set_live(CALL, &[ALICE, BOB]);
    events::on_device_event(fake, state, bob, &incoming_event(ALICE, "alice"));
    assert_eq!(
        fake.take(),
        vec![text(
            2,
            &format!(
                r#"{{"type":{{"incomingPhoneCall":{{}}}},"info":"alice","contentID":"{CALL_UPPER}","caller":{{"userID":"{}","username":"alice"}},"callerAddress":{{"ipV4Addr":"10.1.2.3"}}}}"#,
                ALICE.to_uppercase()
            )
        )]
    );
    (alice, bob, leg)
}

#[test]
fn login_checks_name_and_token() {
    let fake = Fake::new();
    let mut state = State::default();
    let mut login = request("POST", "/api/v3/auth/login", None);
    // "alice:alice-token"
    login.headers = vec![(
        "authorization".into(),
        "Basic YWxpY2U6YWxpY2UtdG9rZW4=".into(),
    )];
    let (status, body) = response(handle_http(&fake, &mut state, &login));
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"userID": ALICE.to_uppercase(), "accessLevel": "verified", "token": "alice-token"})
    );
    // "bob:alice-token": the token is Alice's.
    login.headers = vec![("authorization".into(), "Basic Ym9iOmFsaWNlLXRva2Vu".into())];
    assert_eq!(error_reason(handle_http(&fake, &mut state, &login)).0, 401);
    // "alice:nope"
    login.headers = vec![("authorization".into(), "Basic YWxpY2U6bm9wZQ==".into())];
    assert_eq!(error_reason(handle_http(&fake, &mut state, &login)).0, 401);
    login.headers.clear();
    assert_eq!(error_reason(handle_http(&fake, &mut state, &login)).0, 401);
}

#[test]
fn unknown_paths_methods_and_tokens() {
    let fake = Fake::new();
    let mut state = State::default();
    let get_login = request("GET", "/api/v3/auth/login", None);
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &get_login)).0,
        405
    );
    let unknown = request("GET", "/api/v3/phone/ring", Some("alice-token"));
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &unknown)).0,
        404
    );
    let no_token = request("GET", "/api/v3/notification/socket", None);
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &no_token)),
        (401, "Unauthorized".into())
    );
    let bad_token = request("GET", "/api/v3/notification/socket", Some("nope"));
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &bad_token)).0,
        401
    );
    let mut not_ws = request("GET", "/api/v3/notification/socket", Some("alice-token"));
    not_ws.websocket = false;
    assert_eq!(error_reason(handle_http(&fake, &mut state, &not_ws)).0, 400);
    assert!(fake.take().is_empty());
}

#[test]
fn initiate_refusals() {
    let fake = Fake::new();
    let mut state = State::default();
    let post = |path: String, body: &[u8]| {
        let mut r = request("POST", &path, Some("alice-token"));
        r.body = body.to_vec();
        r
    };
    let address = br#"{"ipV6Addr":"fe80::1"}"#;
    let cases = [
        (
            post(format!("/api/v3/phone/initiate/x/to/{BOB}"), address),
            "Invalid call ID.",
        ),
        (
            post(format!("/api/v3/phone/initiate/{CALL}/to/bob"), address),
            "Invalid user ID.",
        ),
        (
            post(format!("/api/v3/phone/initiate/{CALL}/to/{CALL}"), address),
            "User not found.",
        ),
        (
            post(format!("/api/v3/phone/initiate/{CALL}/to/{ALICE}"), address),
            "You cannot call yourself.",
        ),
        (
            post(format!("/api/v3/phone/initiate/{CALL}/to/{BOB}"), b"{}"),
            "Request body must hold an ipV4Addr or an ipV6Addr.",
        ),
    ];
    for (req, reason) in cases {
        assert_eq!(
            error_reason(handle_http(&fake, &mut state, &req)),
            (400, reason.to_string())
        );
    }
    fake.online.borrow_mut().insert(BOB.into(), Vec::new());
    let to_bob = post(format!("/api/v3/phone/initiate/{CALL}/to/{BOB}"), address);
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &to_bob)),
        (400, "User unavailable.".into())
    );
    fake.online
        .borrow_mut()
        .insert(BOB.into(), vec!["phone".into()]);
    fake.set_live("11111111-2222-4333-8444-555555555555", &[BOB, CAROL]);
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &to_bob)),
        (400, "User is busy.".into())
    );
    assert!(fake.take().is_empty());
    fake.live.borrow_mut().clear();
    // The switch refuses the dial: its reason, and the leg closed.
    fake.refuse("dial", "duplicate_call_id", "call id already used");
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &to_bob)),
        (400, "call id already used".into())
    );
    let actions = fake.take();
    assert!(
        matches!(actions.last(), Some(Action::CloseDevice(101))),
        "{actions:?}"
    );
    assert!(state.calls.is_empty());
}

#[test]
fn direct_call_answered_then_ended_by_the_switch() {
    let fake = Fake::new();
    let mut state = State::default();
    let (_alice, bob, leg) = direct_call(&fake, &mut state);
    // Bob has a second notification socket, opened after the call rang.
    let bob2 = open_notify(&fake, &mut state, 3, "bob-token");

    // Carol may not answer Bob's call.
    let carol_answer = request(
        "POST",
        &format!("/api/v3/phone/answer/{CALL}"),
        Some("carol-token"),
    );
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &carol_answer)),
        (404, "Call not found.".into())
    );

    let answer = request(
        "POST",
        &format!("/api/v3/phone/answer/{CALL_UPPER}"),
        Some("bob-token"),
    );
    assert_eq!(response(handle_http(&fake, &mut state, &answer)).0, 200);
    assert_eq!(
        fake.take(),
        vec![
            // From the device the call rings on.
            Action::Request {
                device: bob,
                json: format!(r#"{{"type":"answer","call_id":"{CALL}"}}"#)
            },
            text(2, &status_frame("phoneCallAnswered")),
            text(3, &status_frame("phoneCallAnswered")),
        ]
    );
    // The switch stops the call ringing on Bob's other device: told already.
    let stopped =
        format!(r#"{{"type":"ring_stopped","call_id":"{CALL}","reason":"answered_elsewhere"}}"#);
    events::on_device_event(&fake, &mut state, bob2, &stopped);
    assert!(fake.take().is_empty());

    // Alice hangs up from elsewhere: Bob's answering device hears `ended`.
    let ended = format!(r#"{{"type":"ended","call_id":"{CALL}","reason":"hangup"}}"#);
    events::on_device_event(&fake, &mut state, bob, &ended);
    assert_eq!(
        fake.take(),
        vec![
            text(1, &status_frame("phoneCallEnded")),
            text(2, &status_frame("phoneCallEnded")),
            text(3, &status_frame("phoneCallEnded")),
            Action::CloseDevice(leg),
        ]
    );
    // The same end seen on another device changes nothing.
    events::on_device_event(&fake, &mut state, leg, &ended);
    assert!(fake.take().is_empty());
    assert!(state.calls.is_empty() && state.legs.is_empty());
}

#[test]
fn caller_declines_a_ringing_call() {
    let fake = Fake::new();
    let mut state = State::default();
    let (_alice, _bob, leg) = direct_call(&fake, &mut state);
    let decline = request(
        "POST",
        &format!("/api/v3/phone/decline/{CALL}"),
        Some("alice-token"),
    );
    assert_eq!(response(handle_http(&fake, &mut state, &decline)).0, 200);
    assert_eq!(
        fake.take(),
        vec![
            Action::Request {
                device: leg,
                json: format!(r#"{{"type":"hangup","call_id":"{CALL}"}}"#)
            },
            // Only the other party is told.
            text(2, &status_frame("phoneCallEnded")),
            Action::CloseDevice(leg),
        ]
    );
    let stranger = request(
        "POST",
        &format!("/api/v3/phone/decline/{CALL}"),
        Some("carol-token"),
    );
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &stranger)).0,
        404
    );
}

#[test]
fn callee_declines_a_ringing_call() {
    let fake = Fake::new();
    let mut state = State::default();
    let (_alice, bob, leg) = direct_call(&fake, &mut state);
    let stranger = request(
        "POST",
        &format!("/api/v3/phone/decline/{CALL}"),
        Some("carol-token"),
    );
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &stranger)).0,
        404
    );
    let decline = request(
        "POST",
        &format!("/api/v3/phone/decline/{CALL}"),
        Some("bob-token"),
    );
    assert_eq!(response(handle_http(&fake, &mut state, &decline)).0, 200);
    assert_eq!(
        fake.take(),
        vec![Action::Request {
            device: bob,
            json: format!(r#"{{"type":"decline","call_id":"{CALL}"}}"#)
        }]
    );
    // The switch ends the call on the caller's leg: Alice alone is told.
    let ended = format!(r#"{{"type":"ended","call_id":"{CALL}","reason":"declined"}}"#);
    events::on_device_event(&fake, &mut state, leg, &ended);
    assert_eq!(
        fake.take(),
        vec![
            text(1, &status_frame("phoneCallEnded")),
            Action::CloseDevice(leg)
        ]
    );
}

#[test]
fn server_mediated_call() {
    let fake = Fake::new();
    let mut state = State::default();
    let bob = open_notify(&fake, &mut state, 2, "bob-token");
    let path = format!("/api/v3/phone/socket/initiate/{CALL_UPPER}/to/{BOB}");

    fake.online.borrow_mut().insert(BOB.into(), Vec::new());
    let initiate = request("GET", &path, Some("alice-token"));
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &initiate)),
        (404, "User unavailable.".into())
    );
    // Calling oneself is refused before the upgrade.
    let to_self = request(
        "GET",
        &format!("/api/v3/phone/socket/initiate/{CALL_UPPER}/to/{ALICE}"),
        Some("alice-token"),
    );
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &to_self)),
        (400, "You cannot call yourself.".into())
    );
    fake.online
        .borrow_mut()
        .insert(BOB.into(), vec!["x".into()]);

    let Reply::Upgrade(context) = handle_http(&fake, &mut state, &initiate) else {
        panic!("no upgrade");
    };
    assert!(
        fake.take().is_empty(),
        "nothing is dialled before the socket opens"
    );
    events::on_stream_open(&fake, &mut state, 10, &context);
    // The caller's socket gets no media before its start packet.
    let leg = match fake.take().as_slice() {
        [Action::Open {
            device,
            label,
            rings: false,
        }, Action::Request { json, .. }] => {
            assert_eq!(label, "phone-rest call");
            assert!(json.contains(r#""type":"dial""#));
            *device
        }
        other => panic!("{other:?}"),
    };
    fake.set_live(CALL, &[ALICE, BOB]);
    events::on_device_event(&fake, &mut state, bob, &incoming_event(ALICE, "alice"));
    let actions = fake.take();
    let [Action::Send {
        stream: 2,
        message: Message::Text(incoming),
    }] = actions.as_slice()
    else {
        panic!("no incoming");
    };
    assert!(!incoming.contains("callerAddress"), "{incoming}");

    // Alice may not answer her own call.
    let answer_path = format!("/api/v3/phone/socket/answer/{CALL}");
    let by_alice = request("GET", &answer_path, Some("alice-token"));
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &by_alice)).0,
        404
    );

    let by_bob = request("GET", &answer_path, Some("bob-token"));
    let Reply::Upgrade(context) = handle_http(&fake, &mut state, &by_bob) else {
        panic!("no upgrade");
    };
    assert_eq!(
        fake.take(),
        vec![
            Action::Request {
                device: bob,
                json: format!(r#"{{"type":"answer","call_id":"{CALL}"}}"#)
            },
            text(2, &status_frame("phoneCallAnswered")),
        ]
    );
    events::on_stream_open(&fake, &mut state, 11, &context);
    let start = Message::Binary(br#"{"phonecallStartTime":"2026-11-22T15:28:42.123Z"}"#.to_vec());
    assert_eq!(
        fake.take(),
        vec![
            Action::Send {
                stream: 10,
                message: start.clone()
            },
            Action::Send {
                stream: 11,
                message: start
            },
            Action::Attach {
                stream: 10,
                device: leg,
                call_id: CALL.into()
            },
            Action::Attach {
                stream: 11,
                device: bob,
                call_id: CALL.into()
            },
        ]
    );
    // The leg hears of the answer too: the call has started already.
    let answered = format!(
        r#"{{"type":"answered","call_id":"{CALL}","user":{{"id":"{BOB}","name":"bob"}},"device":{bob}}}"#
    );
    events::on_device_event(&fake, &mut state, leg, &answered);
    assert_eq!(fake.take(), vec![]);

    // Bob's phone socket closes: he hangs up, Alice's socket is closed.
    events::on_stream_close(&fake, &mut state, 11);
    assert_eq!(
        fake.take(),
        vec![
            Action::Request {
                device: bob,
                json: format!(r#"{{"type":"hangup","call_id":"{CALL}"}}"#)
            },
            Action::CloseStream {
                stream: 10,
                code: 1000
            },
            Action::CloseDevice(leg),
        ]
    );
    assert!(state.calls.is_empty() && state.phone_sockets.is_empty());
}

#[test]
fn caller_socket_closing_ends_the_call() {
    let fake = Fake::new();
    let mut state = State::default();
    open_notify(&fake, &mut state, 2, "bob-token");
    let path = format!("/api/v3/phone/socket/initiate/{CALL}/to/{BOB}");
    let Reply::Upgrade(context) = handle_http(
        &fake,
        &mut state,
        &request("GET", &path, Some("alice-token")),
    ) else {
        panic!("no upgrade");
    };
    events::on_stream_open(&fake, &mut state, 10, &context);
    let leg = match fake.take().first() {
        Some(Action::Open { device, .. }) => *device,
        other => panic!("{other:?}"),
    };
    events::on_stream_close(&fake, &mut state, 10);
    // A hang-up (the switch records a cancel), not a vanished device.
    assert_eq!(
        fake.take(),
        vec![
            Action::Request {
                device: leg,
                json: format!(r#"{{"type":"hangup","call_id":"{CALL}"}}"#)
            },
            Action::CloseDevice(leg),
            text(2, &status_frame("phoneCallEnded"))
        ]
    );
    assert!(state.calls.is_empty() && state.legs.is_empty());
}

#[test]
fn phone_call_answered_on_another_client_starts_the_callers_socket() {
    let fake = Fake::new();
    let mut state = State::default();
    let path = format!("/api/v3/phone/socket/initiate/{CALL}/to/{BOB}");
    let Reply::Upgrade(context) = handle_http(
        &fake,
        &mut state,
        &request("GET", &path, Some("alice-token")),
    ) else {
        panic!("no upgrade");
    };
    events::on_stream_open(&fake, &mut state, 10, &context);
    let leg = match fake.take().first() {
        Some(Action::Open { device, .. }) => *device,
        other => panic!("{other:?}"),
    };
    // Bob answers on his QUIC client (device 900, not the plugin's).
    let answered = format!(
        r#"{{"type":"answered","call_id":"{CALL}","user":{{"id":"{BOB}","name":"bob"}},"device":900}}"#
    );
    events::on_device_event(&fake, &mut state, leg, &answered);
    let start = Message::Binary(br#"{"phonecallStartTime":"2026-11-22T15:28:42.123Z"}"#.to_vec());
    assert_eq!(
        fake.take(),
        vec![
            Action::Send {
                stream: 10,
                message: start
            },
            Action::Attach {
                stream: 10,
                device: leg,
                call_id: CALL.into()
            },
        ]
    );
    // Once only.
    events::on_device_event(&fake, &mut state, leg, &answered);
    assert_eq!(fake.take(), vec![]);
}

#[test]
fn failed_dial_closes_the_caller_socket() {
    let fake = Fake::new();
    let mut state = State::default();
    let path = format!("/api/v3/phone/socket/initiate/{CALL}/to/{BOB}");
    let Reply::Upgrade(context) = handle_http(
        &fake,
        &mut state,
        &request("GET", &path, Some("alice-token")),
    ) else {
        panic!("no upgrade");
    };
    fake.refuse("dial", "denied", "not now (policy `hours`)");
    events::on_stream_open(&fake, &mut state, 10, &context);
    let actions = fake.take();
    assert_eq!(
        &actions[2..],
        &[
            Action::CloseDevice(101),
            Action::CloseStream {
                stream: 10,
                code: 1011
            }
        ]
    );
    assert!(state.calls.is_empty());
}

#[test]
fn quic_callers_calls_ring_and_can_be_answered() {
    let fake = Fake::new();
    let mut state = State::default();
    let bob = open_notify(&fake, &mut state, 2, "bob-token");
    events::on_device_event(&fake, &mut state, bob, &incoming_event(CAROL, "carol"));
    let actions = fake.take();
    let [Action::Send {
        message: Message::Text(incoming),
        ..
    }] = actions.as_slice()
    else {
        panic!("no incoming");
    };
    assert!(incoming.contains(r#""info":"carol""#) && !incoming.contains("callerAddress"));
    let call = &state.calls[CALL];
    assert_eq!(
        (call.caller.id.as_str(), call.callee.id.as_str()),
        (CAROL, BOB)
    );
    assert_eq!(call.leg_device, None);

    // The answer is refused by the switch: 404 with its reason.
    fake.refuse("answer", "denied", "no (policy `x`)");
    let answer = request(
        "POST",
        &format!("/api/v3/phone/answer/{CALL}"),
        Some("bob-token"),
    );
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &answer)),
        (404, "no (policy `x`)".into())
    );
    fake.take();
    assert_eq!(response(handle_http(&fake, &mut state, &answer)).0, 200);
    // The caller cannot end it here: the plugin has no leg of theirs.
    let decline = request(
        "POST",
        &format!("/api/v3/phone/decline/{CALL}"),
        Some("carol-token"),
    );
    assert_eq!(
        error_reason(handle_http(&fake, &mut state, &decline)).0,
        400
    );
}

#[test]
fn calls_that_ended_unseen_are_swept() {
    let fake = Fake::new();
    let mut state = State::default();
    let bob = open_notify(&fake, &mut state, 2, "bob-token");
    fake.set_live(CALL, &[CAROL, BOB]);
    events::on_device_event(&fake, &mut state, bob, &incoming_event(CAROL, "carol"));
    fake.take();
    fake.live.borrow_mut().clear();
    // Too soon after the plugin learnt of it: kept.
    let any = request("POST", "/api/v3/phone/answer/x", Some("bob-token"));
    handle_http(&fake, &mut state, &any);
    assert!(state.calls.contains_key(CALL));
    *fake.monotonic.borrow_mut() += 5_000;
    handle_http(&fake, &mut state, &any);
    assert!(state.calls.is_empty());
    assert_eq!(fake.take(), vec![text(2, &status_frame("phoneCallEnded"))]);
}

#[test]
fn notification_socket_closing_closes_its_device() {
    let fake = Fake::new();
    let mut state = State::default();
    let (_alice, bob, leg) = direct_call(&fake, &mut state);
    events::on_stream_close(&fake, &mut state, 2);
    assert_eq!(fake.take(), vec![Action::CloseDevice(bob)]);
    assert!(state.calls[CALL].ringing.is_empty());
    // Once answered, closing the answering device's socket ends the call.
    let bob = open_notify(&fake, &mut state, 3, "bob-token");
    let answer = request(
        "POST",
        &format!("/api/v3/phone/answer/{CALL}"),
        Some("bob-token"),
    );
    assert_eq!(response(handle_http(&fake, &mut state, &answer)).0, 200);
    fake.take();
    events::on_stream_close(&fake, &mut state, 3);
    assert_eq!(
        fake.take(),
        vec![
            Action::CloseDevice(bob),
            text(1, &status_frame("phoneCallEnded")),
            Action::CloseDevice(leg),
        ]
    );
    assert!(fake
        .logs
        .borrow()
        .iter()
        .all(|(level, _)| *level != Level::Warn));
}
