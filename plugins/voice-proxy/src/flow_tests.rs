//! Whole flows of the proxy against a fake switch: what the plugin asks the
//! switch, what it writes on which socket and what it keeps in `kv`, for a
//! sequence of socket messages and switch events. The fake models only
//! what the proxy depends on: live call ids (a dial adds one; the caller's
//! hangup or the callee's decline removes it) and a `kv` store.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::host::{Host, Level, SwitchError, User};
use crate::http::{Reply, Request};
use crate::proxy::{self, ALREADY_LIVE, NOT_RINGING, NO_OPERATOR, STRANGER, UNKNOWN_CID};
use crate::sockets::{self, SOCKET_LABEL};
use crate::state::State;
use crate::store::{self, Phase, Side, MAX_SESSIONS};

const ALICE: &str = "5f1c5a1e-0000-4000-8000-00000000a11c";
const BOB: &str = "5f1c5a1e-0000-4000-8000-000000000b0b";
const CAROL: &str = "5f1c5a1e-0000-4000-8000-00000000ca01";
const DAVE: &str = "5f1c5a1e-0000-4000-8000-00000000da7e";

/// What the plugin did to the fake switch, in order.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Open {
        device: u64,
        label: String,
        rings: bool,
    },
    Request {
        device: u64,
        json: Value,
    },
    CloseDevice(u64),
    Send {
        stream: u64,
        json: Value,
    },
    CloseStream {
        stream: u64,
        code: u16,
    },
}

struct Fake {
    actions: RefCell<Vec<Action>>,
    logs: RefCell<Vec<(Level, String)>>,
    next_device: RefCell<u64>,
    next_call: RefCell<u64>,
    tokens: BTreeMap<&'static str, User>,
    config: RefCell<BTreeMap<&'static str, String>>,
    online: RefCell<BTreeMap<String, Vec<String>>>,
    live: RefCell<Vec<String>>,
    kv: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Refusals by request type, taken once each.
    refusals: RefCell<BTreeMap<&'static str, SwitchError>>,
    /// A decline leaves the call live (the operator's other device rings).
    rings_elsewhere: RefCell<bool>,
    /// The caller device of each live call.
    callers: RefCell<BTreeMap<String, u64>>,
}

fn user(id: &str, name: &str) -> User {
    User {
        id: id.into(),
        name: name.into(),
    }
}

impl Fake {
    fn new() -> Fake {
        let mut tokens = BTreeMap::new();
        tokens.insert("alice-token", user(ALICE, "alice"));
        tokens.insert("bob-token", user(BOB, "bob"));
        tokens.insert("carol-token", user(CAROL, "carol"));
        tokens.insert("dave-token", user(DAVE, "dave"));
        let mut config = BTreeMap::new();
        config.insert("operators", "bob,carol".to_string());
        let fake = Fake {
            actions: RefCell::default(),
            logs: RefCell::default(),
            next_device: RefCell::new(100),
            next_call: RefCell::new(0),
            tokens,
            config: RefCell::new(config),
            online: RefCell::default(),
            live: RefCell::default(),
            kv: RefCell::default(),
            refusals: RefCell::default(),
            rings_elsewhere: RefCell::new(false),
            callers: RefCell::default(),
        };
        for id in [ALICE, BOB, CAROL, DAVE] {
            fake.set_online(id, true);
        }
        fake
    }

    fn set_online(&self, id: &str, online: bool) {
        let labels = if online {
            vec!["laptop".into()]
        } else {
            vec![]
        };
        self.online.borrow_mut().insert(id.into(), labels);
    }

    fn take(&self) -> Vec<Action> {
        std::mem::take(&mut self.actions.borrow_mut())
    }

    fn refuse(&self, request_type: &'static str, code: &str) {
        self.refusals.borrow_mut().insert(
            request_type,
            SwitchError {
                code: code.into(),
                message: format!("refused: {code}"),
            },
        );
    }

    fn is_live(&self, call_id: &str) -> bool {
        self.live.borrow().iter().any(|id| id == call_id)
    }

    fn end(&self, call_id: &str) {
        self.live.borrow_mut().retain(|id| id != call_id);
    }
}

impl Host for Fake {
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.into()));
    }
    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.borrow().get(key).cloned()
    }
    fn kv_set(&self, key: &str, value: &[u8]) {
        self.kv.borrow_mut().insert(key.into(), value.to_vec());
    }
    fn kv_delete(&self, key: &str) {
        self.kv.borrow_mut().remove(key);
    }
    fn kv_keys(&self, prefix: &str) -> Vec<String> {
        self.kv
            .borrow()
            .keys()
            .filter(|key| key.starts_with(prefix))
            .cloned()
            .collect()
    }
    fn config(&self, key: &str) -> Option<String> {
        self.config.borrow().get(key).cloned()
    }
    fn find_user(&self, target: &str) -> Option<User> {
        self.tokens
            .values()
            .find(|u| u.id == target || u.name == target)
            .cloned()
    }
    fn online_devices(&self, user: &str) -> Vec<String> {
        self.online.borrow().get(user).cloned().unwrap_or_default()
    }
    fn live_call_ids(&self) -> Vec<String> {
        self.live.borrow().clone()
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
        let value: Value = serde_json::from_str(request).unwrap();
        self.actions.borrow_mut().push(Action::Request {
            device,
            json: value.clone(),
        });
        let kind = value["type"].as_str().unwrap().to_owned();
        if let Some(error) = self.refusals.borrow_mut().remove(kind.as_str()) {
            return Err(error);
        }
        let call_id = value["call_id"].as_str().unwrap_or_default().to_owned();
        let unknown = || SwitchError {
            code: "unknown_call".into(),
            message: "no such call".into(),
        };
        match kind.as_str() {
            "dial" => {
                let mut next = self.next_call.borrow_mut();
                *next += 1;
                let id = format!("call-{next}");
                self.live.borrow_mut().push(id.clone());
                self.callers.borrow_mut().insert(id.clone(), device);
                Ok(json!({"type": "ok", "call_id": id}).to_string())
            }
            "answer" | "decline" | "hangup" => {
                if !self.is_live(&call_id) {
                    return Err(unknown());
                }
                let by_caller = self.callers.borrow().get(&call_id) == Some(&device);
                let ends = match kind.as_str() {
                    "answer" => false,
                    "decline" => !*self.rings_elsewhere.borrow(),
                    _ => by_caller || !*self.rings_elsewhere.borrow(),
                };
                if ends {
                    self.end(&call_id);
                }
                Ok(json!({"type": "ok", "call_id": call_id}).to_string())
            }
            _ => Ok(json!({"type": "ok"}).to_string()),
        }
    }
    fn close_device(&self, device: u64) {
        self.actions.borrow_mut().push(Action::CloseDevice(device));
    }
    fn send_text(&self, stream: u64, text: &str) -> Result<(), String> {
        self.actions.borrow_mut().push(Action::Send {
            stream,
            json: serde_json::from_str(text).unwrap(),
        });
        Ok(())
    }
    fn close_stream(&self, stream: u64, code: u16, _reason: &str) {
        self.actions
            .borrow_mut()
            .push(Action::CloseStream { stream, code });
    }
}

/// The fake switch and the plugin's memory.
struct World {
    fake: Fake,
    state: State,
    next_stream: u64,
}

impl World {
    fn new() -> World {
        World {
            fake: Fake::new(),
            state: State::default(),
            next_stream: 0,
        }
    }

    /// The plugin reloaded: its memory is gone, `kv` and the switch stay.
    fn reload(&mut self) {
        self.state = State::default();
        self.fake.live.borrow_mut().clear();
    }

    fn http(&mut self, method: &str, path: &str, token: Option<&str>, websocket: bool) -> Reply {
        let mut headers = Vec::new();
        if let Some(token) = token {
            headers.push(("authorization".to_string(), format!("Bearer {token}")));
        }
        let request = Request {
            method: method.into(),
            path: path.into(),
            headers,
            websocket,
        };
        sockets::handle_http(&self.fake, &mut self.state, &request)
    }

    /// Opens a socket for `token`; returns (stream, device).
    fn socket(&mut self, token: &str) -> (u64, u64) {
        let Reply::Upgrade(context) = self.http("GET", "/voice/socket", Some(token), true) else {
            panic!("no upgrade");
        };
        self.next_stream += 1;
        let stream = self.next_stream;
        sockets::on_stream_open(&self.fake, &mut self.state, stream, &context);
        let device = self.state.sockets[&stream].device;
        self.fake.take();
        (stream, device)
    }

    fn say(&mut self, stream: u64, message: Value) -> Vec<Action> {
        self.say_text(stream, &message.to_string())
    }

    fn say_text(&mut self, stream: u64, text: &str) -> Vec<Action> {
        proxy::on_text(&self.fake, &mut self.state, stream, text);
        self.fake.take()
    }

    fn event(&mut self, device: u64, event: Value) -> Vec<Action> {
        sockets::on_device_event(&self.fake, &mut self.state, device, &event.to_string());
        self.fake.take()
    }

    fn session(&self, cid: &str) -> store::Session {
        store::load(&self.fake, cid).expect("a session")
    }
}

fn voice(typ: &str, cid: &str) -> Value {
    json!({"typ": format!("chat.voice.{typ}"), "cid": cid, "call_id": "self-call", "peer_info": "p"})
}

fn message_to(device: u64, to: &str, body: Value) -> Action {
    Action::Request {
        device,
        json: json!({"type": "message", "to": to, "body": body}),
    }
}

fn call_request(device: u64, kind: &str, call_id: &str) -> Action {
    Action::Request {
        device,
        json: json!({"type": kind, "call_id": call_id}),
    }
}

fn readdressed(mut body: Value, from: &str, to: &str) -> Value {
    body["iss"] = json!(from);
    body["sub"] = json!(to);
    body["aud"] = json!(to);
    body
}

/// The only action is an error frame on `stream` for `cid` whose reason
/// contains `reason`.
fn assert_refused(actions: &[Action], stream: u64, cid: Option<&str>, reason: &str) {
    assert_eq!(actions.len(), 1, "{actions:#?}");
    let Action::Send { stream: to, json } = &actions[0] else {
        panic!("not an error frame: {actions:#?}");
    };
    assert_eq!(*to, stream);
    assert_eq!(json["typ"], "error", "{json}");
    assert_eq!(json["cid"], json!(cid), "{json}");
    let got = json["error"].as_str().unwrap();
    assert!(got.contains(reason), "{got:?} does not say {reason:?}");
    assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
}

/// alice (customer) and bob (operator) with a socket each, and a session
/// `c1` whose call rings. Returns (world, alice's (stream, device), bob's,
/// the call id).
fn ringing() -> (World, (u64, u64), (u64, u64), String) {
    let mut w = World::new();
    let alice = w.socket("alice-token");
    let bob = w.socket("bob-token");
    w.say(alice.0, voice("start", "c1"));
    let call_id = w.session("c1").call_id.unwrap();
    (w, alice, bob, call_id)
}

// ---- HTTP and sockets ----

#[test]
fn the_socket_route_checks_path_method_token_and_upgrade() {
    let mut w = World::new();
    let status = |reply: Reply| match reply {
        Reply::Respond(response) => response.status,
        Reply::Upgrade(_) => 101,
    };
    assert_eq!(
        status(w.http("GET", "/voice/other", Some("alice-token"), true)),
        404
    );
    assert_eq!(status(w.http("GET", "/elsewhere", None, true)), 404);
    assert_eq!(
        status(w.http("POST", "/voice/socket", Some("alice-token"), true)),
        405
    );
    assert_eq!(status(w.http("GET", "/voice/socket", None, true)), 401);
    assert_eq!(
        status(w.http("GET", "/voice/socket", Some("nope"), true)),
        401
    );
    assert_eq!(
        status(w.http("GET", "/voice/socket", Some("alice-token"), false)),
        400
    );
    let Reply::Upgrade(context) = w.http("GET", "/voice/socket/", Some("alice-token"), true) else {
        panic!("no upgrade");
    };
    assert!(!context.contains("alice-token"), "{context}");
    assert!(w.fake.take().is_empty(), "nothing opened before the stream");
}

#[test]
fn every_socket_rings() {
    // Either side may be rung: the seed's operator starts towards the
    // customer, a customer may start towards the operator.
    let mut w = World::new();
    for (token, rings) in [("alice-token", true), ("bob-token", true)] {
        let Reply::Upgrade(context) = w.http("GET", "/voice/socket", Some(token), true) else {
            panic!("no upgrade");
        };
        sockets::on_stream_open(&w.fake, &mut w.state, 9, &context);
        let actions = w.fake.take();
        assert!(
            matches!(&actions[..], [Action::Open { label, rings: r, .. }]
                if label == SOCKET_LABEL && *r == rings),
            "{token}: {actions:?}"
        );
        sockets::on_stream_close(&w.fake, &mut w.state, 9);
        w.fake.take();
    }
}

#[test]
fn an_unknown_upgrade_context_closes_the_stream() {
    let mut w = World::new();
    sockets::on_stream_open(&w.fake, &mut w.state, 5, "socket:99");
    assert_eq!(
        w.fake.take(),
        vec![Action::CloseStream {
            stream: 5,
            code: 1011
        }]
    );
}

#[test]
fn closing_a_socket_closes_its_device_and_the_switch_closing_it_closes_the_socket() {
    let mut w = World::new();
    let (stream, device) = w.socket("alice-token");
    sockets::on_stream_close(&w.fake, &mut w.state, stream);
    assert_eq!(w.fake.take(), vec![Action::CloseDevice(device)]);
    assert!(w.state.sockets.is_empty() && w.state.by_device.is_empty());
    let (stream, device) = w.socket("alice-token");
    let actions = w.event(
        device,
        json!({"type": "closed", "reason": "switch shutting down"}),
    );
    assert_eq!(actions, vec![Action::CloseStream { stream, code: 1001 }]);
    assert!(w.state.sockets.is_empty());
}

#[test]
fn voice_message_events_are_written_to_the_socket_and_others_are_not() {
    let mut w = World::new();
    let (stream, device) = w.socket("bob-token");
    let body = json!({"typ": "chat.voice.start", "cid": "c1", "iss": ALICE});
    let actions = w.event(
        device,
        json!({"type": "message", "from": {"id": ALICE, "name": "alice"},
               "to": {"id": BOB, "name": "bob"}, "body": body}),
    );
    assert_eq!(actions, vec![Action::Send { stream, json: body }]);
    for other in [
        json!({"type": "message", "from": {}, "to": {}, "body": {"text": "hi"}}),
        json!({"type": "message", "from": {}, "to": {}, "body": "chat.voice.stop"}),
        json!({"type": "incoming", "call_id": "x", "kind": "direct"}),
        json!({"type": "ended", "call_id": "x", "reason": "hangup"}),
        json!({"type": "notification", "plugin": "p", "body": {"typ": "chat.voice.stop"}}),
    ] {
        assert!(w.event(device, other.clone()).is_empty(), "{other}");
    }
    // A device that is not a socket's.
    assert!(w
        .event(
            7,
            json!({"type": "message", "body": {"typ": "chat.voice.stop"}})
        )
        .is_empty());
}

// ---- the negotiation ----

#[test]
fn setup_then_start_forwards_to_the_operator_and_places_the_call() {
    let mut w = World::new();
    w.fake
        .config
        .borrow_mut()
        .insert("operator_name", "Bob from support".into());
    let (alice, alice_dev) = w.socket("alice-token");
    let setup = json!({"typ": "chat.voice.setup", "cid": "c1", "data": {"name": "alice"},
                       "jti": "j1", "iss": "me", "sub": "proxy", "aud": "proxy"});
    let actions = w.say(alice, setup.clone());
    assert_eq!(
        actions,
        vec![message_to(alice_dev, BOB, readdressed(setup, ALICE, BOB))]
    );
    let session = w.session("c1");
    assert_eq!(
        (session.customer.id.as_str(), session.operator.id.as_str()),
        (ALICE, BOB)
    );
    assert_eq!((session.phase, session.call_id), (Phase::Setup, None));

    let start = voice("start", "c1");
    let actions = w.say(alice, start.clone());
    let mut forwarded = readdressed(start, ALICE, BOB);
    forwarded["data"] = json!({"operator_name": "Bob from support"});
    assert_eq!(
        actions,
        vec![
            Action::Request {
                device: alice_dev,
                json: json!({"type": "dial", "targets": [BOB]}),
            },
            message_to(alice_dev, BOB, forwarded),
        ]
    );
    let session = w.session("c1");
    assert_eq!(session.phase, Phase::Ringing);
    assert_eq!(session.call_id.as_deref(), Some("call-1"));
    assert_eq!(store::cid_of_call(&w.fake, "call-1").as_deref(), Some("c1"));
}

#[test]
fn start_without_setup_adds_the_operators_user_name_by_default() {
    let mut w = World::new();
    let (alice, alice_dev) = w.socket("alice-token");
    let start = json!({"typ": "chat.voice.start", "cid": "c1", "call_id": "k",
                       "peer_info": "p", "data": {"extra": 1}});
    let actions = w.say(alice, start.clone());
    let mut forwarded = readdressed(start, ALICE, BOB);
    forwarded["data"] = json!({"extra": 1, "operator_name": "bob"});
    assert_eq!(actions[1], message_to(alice_dev, BOB, forwarded));
}

#[test]
fn the_first_online_operator_is_chosen() {
    let mut w = World::new();
    w.fake.set_online(BOB, false);
    let (alice, _) = w.socket("alice-token");
    w.say(alice, voice("setup", "c1"));
    assert_eq!(w.session("c1").operator.name, "carol");
    w.fake.set_online(CAROL, false);
    let actions = w.say(alice, voice("setup", "c2"));
    assert_refused(&actions, alice, Some("c2"), NO_OPERATOR);
    assert!(store::load(&w.fake, "c2").is_none());
}

#[test]
fn an_unknown_operator_name_is_skipped() {
    let mut w = World::new();
    w.fake
        .config
        .borrow_mut()
        .insert("operators", "zed, carol".into());
    let (alice, _) = w.socket("alice-token");
    w.say(alice, voice("start", "c1"));
    assert_eq!(w.session("c1").operator.name, "carol");
    assert!(w.fake.logs.borrow().iter().any(|(_, l)| l.contains("zed")));
}

#[test]
fn accept_answers_from_the_operators_device_and_reaches_the_customer() {
    let (mut w, (alice, alice_dev), (bob, bob_dev), call_id) = ringing();
    let accept = voice("accept", "c1");
    let actions = w.say(bob, accept.clone());
    assert_eq!(
        actions,
        vec![
            call_request(bob_dev, "answer", &call_id),
            message_to(bob_dev, ALICE, readdressed(accept, BOB, ALICE)),
        ]
    );
    assert_eq!(w.session("c1").phase, Phase::Active);

    // The customer stops: the caller hangs up, the operator is told.
    let stop = voice("stop", "c1");
    let actions = w.say(alice, stop.clone());
    assert_eq!(
        actions,
        vec![
            call_request(alice_dev, "hangup", &call_id),
            message_to(alice_dev, BOB, readdressed(stop, ALICE, BOB)),
        ]
    );
    assert_eq!(w.session("c1").phase, Phase::Ended);
    assert!(!w.fake.is_live(&call_id));
    // A summary after the end still finds its parties.
    let summary = voice("summary", "c1");
    assert_eq!(
        w.say(bob, summary.clone()),
        vec![message_to(bob_dev, ALICE, readdressed(summary, BOB, ALICE))]
    );
}

#[test]
fn stop_from_the_operator_after_accept_hangs_up_its_answering_device() {
    let (mut w, (_, alice_dev), (bob, bob_dev), call_id) = ringing();
    w.say(bob, voice("accept", "c1"));
    let stop = voice("stop", "c1");
    let actions = w.say(bob, stop.clone());
    assert_eq!(
        actions,
        vec![
            call_request(bob_dev, "hangup", &call_id),
            message_to(bob_dev, ALICE, readdressed(stop, BOB, ALICE)),
        ]
    );
    let _ = alice_dev;
    assert_eq!(w.session("c1").phase, Phase::Ended);
}

#[test]
fn busy_declines_from_the_operators_device() {
    let (mut w, (_, _), (bob, bob_dev), call_id) = ringing();
    let busy = voice("busy", "c1");
    let actions = w.say(bob, busy.clone());
    assert_eq!(
        actions,
        vec![
            call_request(bob_dev, "decline", &call_id),
            message_to(bob_dev, ALICE, readdressed(busy, BOB, ALICE)),
        ]
    );
    assert_eq!(w.session("c1").phase, Phase::Ended);
}

#[test]
fn busy_while_the_operator_rings_elsewhere_too_cancels_the_call() {
    let (mut w, (_, alice_dev), (bob, bob_dev), call_id) = ringing();
    *w.fake.rings_elsewhere.borrow_mut() = true;
    let actions = w.say(bob, voice("busy", "c1"));
    assert_eq!(actions[0], call_request(bob_dev, "decline", &call_id));
    assert_eq!(actions[1], call_request(alice_dev, "hangup", &call_id));
    assert!(!w.fake.is_live(&call_id));
    assert!(matches!(&actions[2], Action::Request { device, json }
        if *device == bob_dev && json["type"] == "message"));
}

#[test]
fn stop_from_the_ringing_operator_declines_then_cancels_if_needed() {
    let (mut w, (_, alice_dev), (bob, bob_dev), call_id) = ringing();
    *w.fake.rings_elsewhere.borrow_mut() = true;
    let actions = w.say(bob, voice("stop", "c1"));
    assert_eq!(actions[0], call_request(bob_dev, "hangup", &call_id));
    assert_eq!(actions[1], call_request(alice_dev, "hangup", &call_id));
    assert_eq!(actions.len(), 3, "{actions:#?}");
    assert!(!w.fake.is_live(&call_id));
}

#[test]
fn busy_after_the_switch_ended_the_call_is_forwarded_all_the_same() {
    let (mut w, (_, alice_dev), (bob, bob_dev), call_id) = ringing();
    // The operator was busy in another call: the switch ended it at once.
    w.fake.end(&call_id);
    w.event(
        alice_dev,
        json!({"type": "ended", "call_id": call_id, "reason": "busy"}),
    );
    assert_eq!(w.session("c1").phase, Phase::Ended);
    let busy = voice("busy", "c1");
    assert_eq!(
        w.say(bob, busy.clone()),
        vec![message_to(bob_dev, ALICE, readdressed(busy, BOB, ALICE))]
    );
}

#[test]
fn switch_events_move_the_session_on() {
    let (mut w, (_, alice_dev), _, call_id) = ringing();
    w.event(
        alice_dev,
        json!({"type": "answered", "call_id": call_id, "user": {}, "device": 3}),
    );
    assert_eq!(w.session("c1").phase, Phase::Active);
    w.event(
        alice_dev,
        json!({"type": "ended", "call_id": call_id, "reason": "hangup"}),
    );
    assert_eq!(w.session("c1").phase, Phase::Ended);
    assert!(!w.state.legs.contains_key(&call_id));
}

#[test]
fn a_new_start_after_the_end_places_a_new_call() {
    let (mut w, (alice, _), (bob, _), first) = ringing();
    w.say(bob, voice("busy", "c1"));
    w.say(alice, voice("start", "c1"));
    let session = w.session("c1");
    assert_eq!(session.phase, Phase::Ringing);
    assert_ne!(session.call_id.as_deref(), Some(first.as_str()));
    assert_eq!(store::cid_of_call(&w.fake, &first), None);
    // The old call's events no longer touch the session.
    w.event(
        1,
        json!({"type": "ended", "call_id": first, "reason": "declined"}),
    );
    assert_eq!(w.session("c1").phase, Phase::Ringing);
}

#[test]
fn a_start_whose_forward_fails_takes_the_call_back() {
    let mut w = World::new();
    let (alice, alice_dev) = w.socket("alice-token");
    w.fake.refuse("message", "unavailable");
    let actions = w.say(alice, voice("start", "c1"));
    assert_eq!(actions.len(), 4, "{actions:#?}");
    assert!(matches!(&actions[0], Action::Request { json, .. } if json["type"] == "dial"));
    assert_eq!(actions[2], call_request(alice_dev, "hangup", "call-1"));
    assert_refused(&actions[3..], alice, Some("c1"), "not delivered to bob");
    assert!(store::load(&w.fake, "c1").is_none());
    assert!(!w.fake.is_live("call-1"));
}

#[test]
fn a_refused_dial_is_an_error_and_nothing_is_forwarded() {
    let mut w = World::new();
    let (alice, _) = w.socket("alice-token");
    w.fake.refuse("dial", "overloaded");
    let actions = w.say(alice, voice("start", "c1"));
    assert_eq!(actions.len(), 2, "{actions:#?}");
    assert_refused(&actions[1..], alice, Some("c1"), "overloaded");
    assert!(store::load(&w.fake, "c1").is_none());
}

// ---- refusals ----

#[test]
fn malformed_messages_get_an_error_and_nothing_else() {
    let mut w = World::new();
    let (alice, _) = w.socket("alice-token");
    for (text, cid, reason) in [
        ("{oops", None, "not JSON"),
        ("[]", None, "not a JSON object"),
        (r#"{"cid":"c1"}"#, Some("c1"), "no `typ`"),
        (
            r#"{"typ":1,"cid":"c1"}"#,
            Some("c1"),
            "`typ` is not a string",
        ),
        (
            r#"{"typ":"chat.voice.dance","cid":"c1"}"#,
            Some("c1"),
            "unknown typ",
        ),
        (r#"{"typ":"chat.voice.start"}"#, None, "no `cid`"),
        (
            r#"{"typ":"chat.voice.start","cid":[]}"#,
            None,
            "`cid` is not a string",
        ),
        (
            r#"{"typ":"chat.voice.start","cid":"c1","data":3}"#,
            Some("c1"),
            "`data`",
        ),
    ] {
        let actions = w.say_text(alice, text);
        assert_refused(&actions, alice, cid, reason);
    }
    assert!(w.fake.kv.borrow().is_empty());
}

#[test]
fn unknown_cids_and_strangers_are_refused() {
    let (mut w, (alice, _), (bob, _), call_id) = ringing();
    for typ in ["accept", "busy", "stop", "summary"] {
        let actions = w.say(bob, voice(typ, "nope"));
        assert_refused(&actions, bob, Some("nope"), UNKNOWN_CID);
    }
    let (carol, _) = w.socket("carol-token");
    let (dave, _) = w.socket("dave-token");
    for typ in ["setup", "start", "accept", "busy", "stop", "summary"] {
        assert_refused(&w.say(carol, voice(typ, "c1")), carol, Some("c1"), STRANGER);
        assert_refused(&w.say(dave, voice(typ, "c1")), dave, Some("c1"), STRANGER);
    }
    assert!(w.fake.is_live(&call_id));
    assert_eq!(w.session("c1").phase, Phase::Ringing);
    let _ = alice;
}

#[test]
fn the_starter_cannot_accept_or_busy_and_the_operator_cannot_open_sessions() {
    let (mut w, (alice, _), (bob, _), call_id) = ringing();
    for typ in ["accept", "busy"] {
        let actions = w.say(alice, voice(typ, "c1"));
        assert_refused(
            &actions,
            alice,
            Some("c1"),
            "only the side that did not send chat.voice.start",
        );
    }
    let actions = w.say(bob, voice("setup", "c1"));
    assert_refused(&actions, bob, Some("c1"), "only the customer side");
    // A start while the call rings is a second call.
    let actions = w.say(bob, voice("start", "c1"));
    assert_refused(&actions, bob, Some("c1"), ALREADY_LIVE);
    for typ in ["setup", "start"] {
        // Nor may the operator open a session of their own.
        let actions = w.say(bob, voice(typ, "b1"));
        assert_refused(&actions, bob, Some("b1"), "only the customer side");
    }
    assert!(w.fake.is_live(&call_id));
    assert!(store::load(&w.fake, "b1").is_none());
}

#[test]
fn the_seeds_flow_has_the_operator_start_after_the_customers_setup() {
    let mut w = World::new();
    let (alice, alice_device) = w.socket("alice-token");
    let (bob, bob_device) = w.socket("bob-token");
    w.say(alice, voice("setup", "c9"));
    // The operator starts: the call rings the customer.
    let actions = w.say(bob, voice("start", "c9"));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Request { device, json }
            if *device == bob_device && json["type"] == "dial")),
        "{actions:?}"
    );
    let session = w.session("c9");
    assert_eq!(session.starter, Side::Operator);
    let call_id = session.call_id.clone().expect("a call");
    // The customer accepts: answered from the customer's socket device.
    let actions = w.say(alice, voice("accept", "c9"));
    assert!(
        actions.iter().any(|a| matches!(a, Action::Request { device, json }
            if *device == alice_device && json["type"] == "answer" && json["call_id"] == call_id.as_str())),
        "{actions:?}"
    );
    assert_eq!(w.session("c9").phase, Phase::Active);
}

#[test]
fn a_second_start_for_a_live_call_is_refused() {
    let (mut w, (alice, _), _, call_id) = ringing();
    let actions = w.say(alice, voice("start", "c1"));
    assert_refused(&actions, alice, Some("c1"), ALREADY_LIVE);
    assert_eq!(w.session("c1").call_id.as_deref(), Some(call_id.as_str()));
    // Setup again is only forwarded.
    let actions = w.say(alice, voice("setup", "c1"));
    assert!(matches!(&actions[..], [Action::Request { json, .. }] if json["type"] == "message"));
}

#[test]
fn accept_without_a_ringing_call_is_refused() {
    let mut w = World::new();
    let (alice, _) = w.socket("alice-token");
    let (bob, _) = w.socket("bob-token");
    w.say(alice, voice("setup", "c1"));
    let actions = w.say(bob, voice("accept", "c1"));
    assert_refused(&actions, bob, Some("c1"), NOT_RINGING);
    assert_eq!(w.session("c1").phase, Phase::Setup);
}

#[test]
fn an_answer_the_switch_refuses_is_reported_to_the_operator_only() {
    let (mut w, _, (bob, bob_dev), call_id) = ringing();
    w.fake.refuse("answer", "not_ringing");
    let actions = w.say(bob, voice("accept", "c1"));
    assert_eq!(actions[0], call_request(bob_dev, "answer", &call_id));
    assert_refused(&actions[1..], bob, Some("c1"), "not_ringing");
    assert_eq!(w.session("c1").phase, Phase::Ringing);
}

#[test]
fn busy_after_accept_is_refused() {
    let (mut w, _, (bob, _), call_id) = ringing();
    w.say(bob, voice("accept", "c1"));
    let actions = w.say(bob, voice("busy", "c1"));
    assert_refused(
        &actions,
        bob,
        Some("c1"),
        "the call was accepted: end it with chat.voice.stop",
    );
    assert!(w.fake.is_live(&call_id));
}

// ---- state across reloads ----

#[test]
fn sessions_survive_a_reload() {
    let (mut w, _, _, call_id) = ringing();
    w.reload();
    let (alice, alice_dev) = w.socket("alice-token");
    let (bob, bob_dev) = w.socket("bob-token");
    // The call died with the old devices: accepting is refused, and the
    // session is marked ended.
    let actions = w.say(bob, voice("accept", "c1"));
    assert_refused(&actions, bob, Some("c1"), NOT_RINGING);
    assert_eq!(w.session("c1").phase, Phase::Ended);
    // A stop still reaches the operator.
    let stop = voice("stop", "c1");
    assert_eq!(
        w.say(alice, stop.clone()),
        vec![message_to(alice_dev, BOB, readdressed(stop, ALICE, BOB))]
    );
    let _ = (bob_dev, call_id);
}

#[test]
fn a_stale_ringing_session_after_a_reload_can_start_again() {
    let (mut w, _, _, first) = ringing();
    w.reload();
    let (alice, _) = w.socket("alice-token");
    let actions = w.say(alice, voice("start", "c1"));
    assert!(matches!(&actions[0], Action::Request { json, .. } if json["type"] == "dial"));
    let session = w.session("c1");
    assert_ne!(session.call_id.as_deref(), Some(first.as_str()));
    assert_eq!(session.phase, Phase::Ringing);
}

#[test]
fn the_store_is_pruned_of_the_oldest_idle_sessions() {
    let mut w = World::new();
    let (alice, _) = w.socket("alice-token");
    w.say(alice, voice("start", "live"));
    for n in 0..MAX_SESSIONS + 5 {
        w.say(alice, voice("setup", &format!("s{n}")));
    }
    let sessions = w.fake.kv_keys("cid/").len();
    assert!(sessions <= MAX_SESSIONS, "{sessions}");
    assert!(
        store::load(&w.fake, "live").is_some(),
        "a live session stays"
    );
    assert!(store::load(&w.fake, "s0").is_none(), "the oldest went");
    assert!(store::load(&w.fake, &format!("s{}", MAX_SESSIONS + 4)).is_some());
}
