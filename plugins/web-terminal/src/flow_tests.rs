//! Whole flows of the API against a fake switch: what the plugin asks the
//! switch and what it sends on which stream, for a sequence of gRPC calls,
//! terminal messages and switch events. The fake records and answers as
//! told; its snapshot of live calls is set by each test.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::events::on_device_event;
use crate::grpc::{handle_http, status, Reply, Request, SERVICE_PATH};
use crate::host::{Host, Level, LiveCall, PartyState, SwitchError, User};
use crate::presence;
use crate::proto::{
    Action, ActionBody, Body, Code, Offer, PhoneNumber, ToPhone, WebTerminalMessage,
};
use crate::state::State;
use crate::terminal::{on_stream_close, on_stream_message, on_stream_open};
use crate::wire::PLACEHOLDER_SDP;

const ALICE: &str = "5f1c5a1e-0000-4000-8000-00000000a11c";
const BOB: &str = "5f1c5a1e-0000-4000-8000-000000000b0b";
const CAROL: &str = "5f1c5a1e-0000-4000-8000-00000000ca01";
const CALL: &str = "6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5f";
const CALL_UPPER: &str = "6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F";
const OTHER: &str = "77aa0000-8a7b-4c1d-9e2f-0a1b2c3d4e5f";

/// What the plugin did to the fake switch, in order.
#[derive(Debug, Clone, PartialEq)]
enum Did {
    Open(u64),
    Request {
        device: u64,
        json: serde_json::Value,
    },
    CloseDevice(u64),
    Send {
        stream: u64,
        message: WebTerminalMessage,
    },
    CloseStream {
        stream: u64,
        code: u16,
    },
}

struct Fake {
    did: RefCell<Vec<Did>>,
    logs: RefCell<Vec<(Level, String)>>,
    next_device: RefCell<u64>,
    next_call: RefCell<u32>,
    tokens: BTreeMap<&'static str, User>,
    online: RefCell<BTreeMap<String, Vec<String>>>,
    live: RefCell<Vec<LiveCall>>,
    settings: RefCell<BTreeMap<String, String>>,
    /// Refusals by request type (`dial`, `answer`...), taken once each.
    refusals: RefCell<BTreeMap<&'static str, SwitchError>>,
    monotonic: RefCell<u64>,
}

fn user(id: &str, name: &str, number: &str) -> User {
    User {
        id: id.into(),
        name: name.into(),
        numbers: vec![number.into()],
    }
}

impl Fake {
    fn new() -> Fake {
        let mut tokens = BTreeMap::new();
        tokens.insert("alice-token", user(ALICE, "alice", "+15550100"));
        tokens.insert("bob-token", user(BOB, "bob", "+15550101"));
        tokens.insert("carol-token", user(CAROL, "carol", "+15550102"));
        Fake {
            did: RefCell::default(),
            logs: RefCell::default(),
            next_device: RefCell::new(100),
            next_call: RefCell::new(0),
            tokens,
            online: RefCell::default(),
            live: RefCell::default(),
            settings: RefCell::default(),
            refusals: RefCell::default(),
            monotonic: RefCell::new(50_000),
        }
    }

    fn take(&self) -> Vec<Did> {
        std::mem::take(&mut self.did.borrow_mut())
    }

    /// The messages sent, by stream, forgetting everything else.
    fn sent(&self) -> Vec<(u64, WebTerminalMessage)> {
        self.take()
            .into_iter()
            .filter_map(|did| match did {
                Did::Send { stream, message } => Some((stream, message)),
                _ => None,
            })
            .collect()
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

    fn set_live(&self, call_id: &str, parties: &[(&str, PartyState)]) {
        let mut live = self.live.borrow_mut();
        live.retain(|call| call.id != call_id);
        live.push(LiveCall {
            id: call_id.into(),
            parties: parties
                .iter()
                .map(|(id, state)| (id.to_string(), *state))
                .collect(),
        });
    }

    fn end_live(&self, call_id: &str) {
        self.live.borrow_mut().retain(|call| call.id != call_id);
    }
}

impl Host for Fake {
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.into()));
    }
    fn monotonic_ms(&self) -> u64 {
        *self.monotonic.borrow()
    }
    fn config(&self, key: &str) -> Option<String> {
        self.settings.borrow().get(key).cloned()
    }
    fn calls_of(&self, user: &str) -> Vec<LiveCall> {
        self.live
            .borrow()
            .iter()
            .filter(|call| call.state_of(user).is_some())
            .cloned()
            .collect()
    }
    fn find_user(&self, target: &str) -> Option<User> {
        self.tokens
            .values()
            .find(|u| u.id == target || u.name == target || u.numbers.iter().any(|n| n == target))
            .cloned()
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
        assert_eq!(label, "web-terminal");
        assert!(rings);
        let user = self.authenticate(token)?;
        let mut next = self.next_device.borrow_mut();
        *next += 1;
        self.did.borrow_mut().push(Did::Open(*next));
        self.online
            .borrow_mut()
            .entry(user.id.clone())
            .or_default()
            .push(label.into());
        // Like the switch, the device's identity carries the numbers.
        Ok((*next, user))
    }
    fn request(&self, device: u64, request: &str) -> Result<String, SwitchError> {
        let json: serde_json::Value = serde_json::from_str(request).unwrap();
        let kind = json["type"].as_str().unwrap().to_owned();
        self.did.borrow_mut().push(Did::Request {
            device,
            json: json.clone(),
        });
        if let Some(error) = self.refusals.borrow_mut().remove(kind.as_str()) {
            return Err(error);
        }
        let call_id = match json["call_id"].as_str() {
            Some(id) => id.to_owned(),
            None => {
                *self.next_call.borrow_mut() += 1;
                format!("00000000-0000-4000-8000-{:012}", self.next_call.borrow())
            }
        };
        Ok(format!(r#"{{"type":"ok","call_id":"{call_id}"}}"#))
    }
    fn close_device(&self, device: u64) {
        self.did.borrow_mut().push(Did::CloseDevice(device));
    }
    fn send(&self, stream: u64, message: Vec<u8>) -> Result<(), String> {
        let message = WebTerminalMessage::decode(&message).expect("the plugin sends protobuf");
        self.did.borrow_mut().push(Did::Send { stream, message });
        Ok(())
    }
    fn close_stream(&self, stream: u64, code: u16, _reason: &str) {
        self.did
            .borrow_mut()
            .push(Did::CloseStream { stream, code });
    }
}

/// The fake switch and the plugin's state, driven as the host drives the
/// component: each entry point followed by the presence refresh.
struct World {
    host: Fake,
    state: State,
    next_stream: u64,
}

fn grpc_request(method: &str, token: Option<&str>) -> Request {
    Request {
        method: "POST".into(),
        path: format!("{SERVICE_PATH}{method}"),
        headers: token
            .map(|token| vec![("authorization".into(), format!("Bearer {token}"))])
            .unwrap_or_default(),
        grpc: true,
    }
}

fn offer(sdp: &str, callee: &str, call_id: &str) -> WebTerminalMessage {
    WebTerminalMessage {
        message: Some(Body::Offer(Offer {
            sdp: sdp.into(),
            msisdn: Some(PhoneNumber {
                e164: callee.into(),
            }),
        })),
        call_id: call_id.into(),
    }
}

fn to_phone(call_id: &str) -> WebTerminalMessage {
    WebTerminalMessage {
        message: Some(Body::Action(Action {
            message: Some(ActionBody::ToPhone(ToPhone {})),
        })),
        call_id: call_id.into(),
    }
}

impl World {
    fn new() -> World {
        World {
            host: Fake::new(),
            state: State::default(),
            next_stream: 0,
        }
    }

    fn http(&mut self, request: &Request) -> Reply {
        let reply = handle_http(&self.host, &mut self.state, request);
        presence::refresh(&self.host, &mut self.state);
        reply
    }

    /// Registers a terminal; returns its stream and device.
    fn register(&mut self, method: &str, token: &str) -> (u64, u64) {
        let Reply::Upgrade(context) = self.http(&grpc_request(method, Some(token))) else {
            panic!("not accepted");
        };
        self.next_stream += 1;
        let stream = self.next_stream;
        on_stream_open(&self.host, &mut self.state, stream, &context);
        presence::refresh(&self.host, &mut self.state);
        let device = self.state.terminals[&stream].device;
        (stream, device)
    }

    fn message(&mut self, stream: u64, message: &WebTerminalMessage) {
        self.bytes(stream, &message.encode());
    }

    fn bytes(&mut self, stream: u64, bytes: &[u8]) {
        on_stream_message(&self.host, &mut self.state, stream, bytes);
        presence::refresh(&self.host, &mut self.state);
    }

    fn event(&mut self, device: u64, json: &str) {
        on_device_event(&self.host, &mut self.state, device, json);
        presence::refresh(&self.host, &mut self.state);
    }

    fn close(&mut self, stream: u64) {
        on_stream_close(&self.host, &mut self.state, stream);
        presence::refresh(&self.host, &mut self.state);
    }
}

fn status_of(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Respond(response) => response
            .headers
            .iter()
            .find(|(name, _)| name == "grpc-status")
            .map(|(_, value)| value.clone()),
        Reply::Upgrade(_) => None,
    }
}

fn request(device: u64, json: serde_json::Value) -> Did {
    Did::Request { device, json }
}

fn incoming(call_id: &str, from_id: &str, from_name: &str) -> String {
    format!(
        r#"{{"type":"incoming","call_id":"{call_id}","kind":"direct","from":{{"id":"{from_id}","name":"{from_name}"}},"parties":[]}}"#
    )
}

fn event(kind: &str, call_id: &str, extra: &str) -> String {
    format!(r#"{{"type":"{kind}","call_id":"{call_id}"{extra}}}"#)
}

#[test]
fn calls_are_refused_with_grpc_statuses() {
    let mut world = World::new();
    let plain = Request {
        grpc: false,
        ..grpc_request("Pipe", Some("alice-token"))
    };
    let Reply::Respond(response) = world.http(&plain) else {
        panic!("upgraded a plain request");
    };
    assert_eq!(response.status, 415);
    let reply = world.http(&grpc_request("Nope", Some("alice-token")));
    assert_eq!(status_of(&reply).as_deref(), Some("12"));
    let reply = world.http(&grpc_request("Pipe", None));
    assert_eq!(status_of(&reply).as_deref(), Some("16"));
    let reply = world.http(&grpc_request("MultiPipe", Some("wrong")));
    assert_eq!(status_of(&reply).as_deref(), Some("16"));
    let Reply::Respond(response) = reply else {
        unreachable!()
    };
    assert_eq!(response.status, 200);
    assert!(response
        .headers
        .contains(&("content-type".into(), "application/grpc".into())));
    assert_eq!(
        world.http(&grpc_request("MultiPipe", Some("alice-token"))),
        Reply::Upgrade("multipipe:1".into())
    );
}

#[test]
fn a_stale_context_ends_the_call() {
    let mut world = World::new();
    on_stream_open(&world.host, &mut world.state, 9, "pipe:42");
    assert_eq!(
        world.host.take(),
        vec![Did::CloseStream {
            stream: 9,
            code: status::UNAVAILABLE
        }]
    );
}

#[test]
fn a_terminal_is_told_idle_or_in_call_on_open() {
    let mut world = World::new();
    let (stream, device) = world.register("Pipe", "alice-token");
    assert_eq!(
        world.host.take(),
        vec![
            Did::Open(device),
            Did::Send {
                stream,
                message: WebTerminalMessage::idle("")
            }
        ]
    );
    // Alice is in a call on her phone: a new Pipe hears InCall, a new
    // MultiPipe InCall per call.
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Joined)],
    );
    world.host.set_live(
        OTHER,
        &[(CAROL, PartyState::Joined), (ALICE, PartyState::Joined)],
    );
    // (The first terminal hears it too, on the next call into the plugin.)
    let (pipe, _) = world.register("Pipe", "alice-token");
    let sent = world.host.sent();
    assert!(sent.contains(&(pipe, WebTerminalMessage::in_call("+15550100", ""))));
    assert!(sent.contains(&(stream, WebTerminalMessage::in_call("+15550100", ""))));
    let (multi, _) = world.register("MultiPipe", "alice-token");
    assert_eq!(
        world.host.sent(),
        vec![
            (multi, WebTerminalMessage::in_call("+15550100", CALL)),
            (multi, WebTerminalMessage::in_call("+15550100", OTHER)),
        ]
    );
    // The calls end: Idle, once per call on MultiPipe, once on Pipe.
    world.host.end_live(CALL);
    world.host.end_live(OTHER);
    world.close(999);
    let sent = world.host.sent();
    assert_eq!(
        sent,
        vec![
            (stream, WebTerminalMessage::idle("")),
            (pipe, WebTerminalMessage::idle("")),
            (multi, WebTerminalMessage::idle(CALL)),
            (multi, WebTerminalMessage::idle(OTHER)),
        ]
    );
}

#[test]
fn an_outgoing_call_to_a_phone_gets_a_placeholder_answer() {
    let mut world = World::new();
    let (alice, device) = world.register("Pipe", "alice-token");
    world.host.take();
    // Pipe ignores the call id.
    world.message(alice, &offer("sdp-a", "+15550101", "whatever"));
    let call = "00000000-0000-4000-8000-000000000001";
    assert_eq!(
        world.host.take(),
        vec![request(
            device,
            serde_json::json!({"type":"dial","targets":["+15550101"]})
        )]
    );
    world.host.set_live(
        call,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Ringing)],
    );
    let bob = format!(r#","user":{{"id":"{BOB}","name":"bob"}}"#);
    world.event(
        device,
        &event("ringing", call, &format!("{bob},\"device\":7")),
    );
    world.event(
        device,
        &event("ringing", call, &format!("{bob},\"device\":8")),
    );
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::ringing(call))]
    );
    world.host.set_live(
        call,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Joined)],
    );
    world.event(
        device,
        &event("answered", call, &format!("{bob},\"device\":7")),
    );
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::answer(PLACEHOLDER_SDP, call))]
    );
    // An SDP update towards a phone is answered by the plugin.
    world.message(alice, &offer("sdp-a2", "", ""));
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::answer(PLACEHOLDER_SDP, call))]
    );
    // Bob hangs up.
    world.host.end_live(call);
    world.event(device, &event("ended", call, r#","reason":"hangup""#));
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::bye(call))]
    );
    assert!(world.state.terminals[&alice].legs.is_empty());
    // Bye outside a call.
    world.message(alice, &WebTerminalMessage::bye(""));
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::error(Code::NotIncall, ""))]
    );
}

#[test]
fn two_terminals_carry_sdp_end_to_end() {
    let mut world = World::new();
    let (alice, a_dev) = world.register("MultiPipe", "alice-token");
    let (bob, b_dev) = world.register("Pipe", "bob-token");
    world.host.take();

    world.message(alice, &offer("offer-a", "+15550101", CALL_UPPER));
    assert_eq!(
        world.host.take(),
        vec![request(
            a_dev,
            serde_json::json!({"type":"dial","call_id":CALL,"targets":["+15550101"]})
        )]
    );
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Ringing)],
    );
    world.event(b_dev, &incoming(CALL, ALICE, "alice"));
    world.event(a_dev, &event("ringing", CALL, r#","device":102"#));
    assert_eq!(
        world.host.sent(),
        vec![
            (bob, WebTerminalMessage::offer("offer-a", "+15550100", CALL)),
            (alice, WebTerminalMessage::ringing(CALL)),
        ]
    );
    // Bob alerts (nothing on the switch), then answers.
    world.message(bob, &WebTerminalMessage::ringing(""));
    world.message(bob, &WebTerminalMessage::answer("answer-b", ""));
    assert_eq!(
        world.host.take(),
        vec![request(
            b_dev,
            serde_json::json!({"type":"answer","call_id":CALL})
        )]
    );
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Joined)],
    );
    world.event(a_dev, &event("answered", CALL, r#","device":102"#));
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::answer("answer-b", CALL))]
    );
    // An SDP update from Alice reaches Bob as an Offer; his Answer comes
    // back to Alice.
    world.message(alice, &offer("offer-a2", "+15550101", CALL));
    assert_eq!(
        world.host.sent(),
        vec![(
            bob,
            WebTerminalMessage::offer("offer-a2", "+15550100", CALL)
        )]
    );
    world.message(bob, &WebTerminalMessage::answer("answer-b2", ""));
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::answer("answer-b2", CALL))]
    );
    // Alice hangs up; the switch tells Bob's device.
    world.message(alice, &WebTerminalMessage::bye(CALL));
    assert_eq!(
        world.host.take(),
        vec![request(
            a_dev,
            serde_json::json!({"type":"hangup","call_id":CALL})
        )]
    );
    world.host.end_live(CALL);
    world.event(b_dev, &event("ended", CALL, r#","reason":"hangup""#));
    assert_eq!(
        world.host.sent(),
        vec![(bob, WebTerminalMessage::bye(CALL))]
    );
    assert!(world.state.sdp.is_empty());
}

#[test]
fn an_incoming_call_from_a_phone_can_be_declined() {
    let mut world = World::new();
    let (bob, device) = world.register("MultiPipe", "bob-token");
    world.host.take();
    world.host.set_live(
        CALL,
        &[(CAROL, PartyState::Joined), (BOB, PartyState::Ringing)],
    );
    world.event(device, &incoming(CALL, CAROL, "carol"));
    assert_eq!(
        world.host.sent(),
        vec![(
            bob,
            WebTerminalMessage::offer(PLACEHOLDER_SDP, "+15550102", CALL)
        )]
    );
    world.message(bob, &WebTerminalMessage::bye(CALL));
    assert_eq!(
        world.host.take(),
        vec![request(
            device,
            serde_json::json!({"type":"decline","call_id":CALL})
        )]
    );
    assert!(world.state.terminals[&bob].legs.is_empty());
}

#[test]
fn multipipe_needs_a_known_uuid() {
    let mut world = World::new();
    let (alice, _) = world.register("MultiPipe", "alice-token");
    world.host.take();
    world.message(alice, &WebTerminalMessage::bye(""));
    world.message(alice, &WebTerminalMessage::answer("x", "not-a-uuid"));
    world.message(alice, &WebTerminalMessage::answer("x", CALL));
    world.message(alice, &WebTerminalMessage::ringing(CALL));
    world.message(alice, &to_phone(CALL));
    assert_eq!(
        world.host.sent(),
        vec![
            (alice, WebTerminalMessage::error(Code::InvalidCallId, "")),
            (
                alice,
                WebTerminalMessage::error(Code::InvalidCallId, "not-a-uuid")
            ),
            (alice, WebTerminalMessage::error(Code::InvalidCallId, CALL)),
            (alice, WebTerminalMessage::error(Code::InvalidCallId, CALL)),
            (alice, WebTerminalMessage::error(Code::InvalidCallId, CALL)),
        ]
    );
    // A call of Alice's on her phone: Bye and ToPhone are NOT_INCALL there.
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Joined)],
    );
    world.message(alice, &WebTerminalMessage::bye(CALL_UPPER));
    world.message(alice, &to_phone(CALL));
    // (The InCall goes out at the end of the first call into the plugin
    // after the call appeared.)
    let sent = world.host.sent();
    assert_eq!(
        sent,
        vec![
            (
                alice,
                WebTerminalMessage::error(Code::NotIncall, CALL_UPPER)
            ),
            (alice, WebTerminalMessage::in_call("+15550100", CALL)),
            (alice, WebTerminalMessage::error(Code::NotIncall, CALL)),
        ]
    );
}

#[test]
fn pipe_outside_a_call() {
    let mut world = World::new();
    let (alice, _) = world.register("Pipe", "alice-token");
    world.host.take();
    world.message(alice, &to_phone("x"));
    world.message(alice, &WebTerminalMessage::answer("x", ""));
    world.message(alice, &WebTerminalMessage::ringing(""));
    // Messages only the core sends, and an empty one.
    world.message(alice, &WebTerminalMessage::idle("y"));
    world.message(alice, &WebTerminalMessage::default());
    assert_eq!(
        world.host.sent(),
        vec![
            (alice, WebTerminalMessage::error(Code::NotIncall, "x")),
            (alice, WebTerminalMessage::error(Code::NotIncall, "")),
            (alice, WebTerminalMessage::error(Code::Unknown, "y")),
            (alice, WebTerminalMessage::error(Code::Unknown, "")),
        ]
    );
}

#[test]
fn offers_are_rate_limited() {
    let mut world = World::new();
    world
        .host
        .settings
        .borrow_mut()
        .insert("max_offers_per_second".into(), "3".into());
    let (alice, _) = world.register("Pipe", "alice-token");
    world.host.take();
    world.message(alice, &offer("s", "+15550101", ""));
    world.message(alice, &offer("s2", "", ""));
    world.message(alice, &offer("s3", "", ""));
    world.host.take();
    world.message(alice, &offer("s4", "", ""));
    assert_eq!(
        world.host.take(),
        vec![Did::Send {
            stream: alice,
            message: WebTerminalMessage::error(Code::RateLimitHit, "")
        }]
    );
    *world.host.monotonic.borrow_mut() += 1_000;
    world.message(alice, &offer("s5", "", ""));
    // An update of a call still ringing towards a phone is only kept.
    assert!(world.host.take().is_empty());
    assert_eq!(
        world.state.sdp["00000000-0000-4000-8000-000000000001"]
            .offer
            .as_deref(),
        Some("s5")
    );
}

#[test]
fn garbage_ends_the_call_and_the_device() {
    let mut world = World::new();
    let (alice, device) = world.register("Pipe", "alice-token");
    world.message(alice, &offer("s", "+15550101", ""));
    world.host.take();
    world.bytes(alice, &[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        world.host.take(),
        vec![
            Did::CloseStream {
                stream: alice,
                code: status::INVALID_ARGUMENT
            },
            Did::CloseDevice(device),
        ]
    );
    assert!(world.state.terminals.is_empty());
    assert!(world.state.sdp.is_empty());
    // Later messages and events for it are ignored.
    world.bytes(alice, &[0x22, 0x00]);
    world.event(device, &event("ended", "x", ""));
    assert!(world.host.take().is_empty());
}

#[test]
fn closing_the_stream_closes_the_device() {
    let mut world = World::new();
    let (alice, device) = world.register("MultiPipe", "alice-token");
    world.message(alice, &offer("s", "+15550101", CALL));
    world.host.take();
    world.close(alice);
    assert_eq!(world.host.take(), vec![Did::CloseDevice(device)]);
    assert!(world.state.by_device.is_empty());
}

#[test]
fn answered_elsewhere_is_bye_then_in_call_then_idle() {
    let mut world = World::new();
    let (bob, device) = world.register("Pipe", "bob-token");
    world.host.take();
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Ringing)],
    );
    world.event(device, &incoming(CALL, ALICE, "alice"));
    world.host.take();
    // Bob answers on his phone; the snapshot still shows him ringing.
    world.event(
        device,
        &event("ring_stopped", CALL, r#","reason":"answered_elsewhere""#),
    );
    assert_eq!(
        world.host.sent(),
        vec![
            (bob, WebTerminalMessage::bye(CALL)),
            (bob, WebTerminalMessage::in_call("+15550101", "")),
        ]
    );
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Joined)],
    );
    world.close(999);
    assert!(world.host.take().is_empty());
    world.host.end_live(CALL);
    world.close(999);
    assert_eq!(world.host.sent(), vec![(bob, WebTerminalMessage::idle(""))]);
}

#[test]
fn a_busy_pipe_declines_a_second_call() {
    let mut world = World::new();
    let (bob, device) = world.register("Pipe", "bob-token");
    world.event(device, &incoming(CALL, ALICE, "alice"));
    world.host.take();
    world.event(device, &incoming(OTHER, CAROL, "carol"));
    assert_eq!(
        world.host.take(),
        vec![request(
            device,
            serde_json::json!({"type":"decline","call_id":OTHER})
        )]
    );
    assert_eq!(world.state.terminals[&bob].legs.len(), 1);
    // MultiPipe takes both.
    let (multi, device) = world.register("MultiPipe", "carol-token");
    world.event(device, &incoming(CALL, ALICE, "alice"));
    world.event(device, &incoming(OTHER, BOB, "bob"));
    assert_eq!(world.state.terminals[&multi].legs.len(), 2);
}

#[test]
fn refused_dials() {
    let mut world = World::new();
    let (alice, _) = world.register("MultiPipe", "alice-token");
    world.host.take();
    world.host.refuse("dial", "unknown_user");
    world.message(alice, &offer("s", "+19999", CALL));
    world.host.refuse("dial", "duplicate_call_id");
    world.message(alice, &offer("s", "+15550101", CALL));
    world.host.refuse("dial", "overloaded");
    world.message(alice, &offer("s", "+15550101", CALL));
    world.message(alice, &offer("s", "", CALL));
    assert_eq!(
        world.host.sent(),
        vec![
            (alice, WebTerminalMessage::bye(CALL)),
            (alice, WebTerminalMessage::error(Code::InvalidCallId, CALL)),
            (alice, WebTerminalMessage::error(Code::TryAgain, CALL)),
            (alice, WebTerminalMessage::bye(CALL)),
        ]
    );
    assert!(world.state.terminals[&alice].legs.is_empty());
}

#[test]
fn a_busy_callee_is_one_bye() {
    let mut world = World::new();
    let (alice, device) = world.register("MultiPipe", "alice-token");
    world.message(alice, &offer("s", "+15550101", CALL));
    world.host.take();
    world.event(
        device,
        &event(
            "busy",
            CALL,
            &format!(r#","user":{{"id":"{BOB}","name":"bob"}}"#),
        ),
    );
    world.event(device, &event("ended", CALL, r#","reason":"busy""#));
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::bye(CALL))]
    );
}

#[test]
fn an_answer_too_late_is_bye() {
    let mut world = World::new();
    let (bob, device) = world.register("MultiPipe", "bob-token");
    world.event(device, &incoming(CALL, ALICE, "alice"));
    world.host.take();
    world.host.refuse("answer", "not_ringing");
    world.message(bob, &WebTerminalMessage::answer("b", CALL));
    assert_eq!(
        world.host.sent(),
        vec![(bob, WebTerminalMessage::bye(CALL))]
    );
    assert!(world.state.sdp.is_empty());
}

#[test]
fn to_phone_needs_a_phone_and_a_switch_that_moves_legs() {
    let mut world = World::new();
    let (alice, device) = world.register("MultiPipe", "alice-token");
    world.message(alice, &offer("s", "+15550101", CALL));
    world.event(device, &event("answered", CALL, ""));
    world.host.take();
    // No other device: TRY_AGAIN.
    world.message(alice, &to_phone(CALL));
    assert_eq!(
        world.host.take(),
        vec![Did::Send {
            stream: alice,
            message: WebTerminalMessage::error(Code::TryAgain, CALL)
        }]
    );
    // With a phone online, the switch refuses the self-invitation.
    world
        .host
        .online
        .borrow_mut()
        .get_mut(ALICE)
        .unwrap()
        .push("phone".into());
    world.host.refuse("invite", "cannot_call_self");
    world.message(alice, &to_phone(CALL));
    assert_eq!(
        world.host.take(),
        vec![
            request(
                device,
                serde_json::json!({"type":"invite","call_id":CALL,"targets":[ALICE]})
            ),
            Did::Send {
                stream: alice,
                message: WebTerminalMessage::error(Code::TryAgain, CALL)
            },
        ]
    );
    // A switch that accepts it: the terminal leaves, the re-invitation
    // ringing here is declined, the phone answering is InCall.
    world.message(alice, &to_phone(CALL));
    assert_eq!(
        world.host.take(),
        vec![
            request(
                device,
                serde_json::json!({"type":"invite","call_id":CALL,"targets":[ALICE]})
            ),
            request(device, serde_json::json!({"type":"hangup","call_id":CALL})),
        ]
    );
    world.event(device, &incoming(CALL, ALICE, "alice"));
    assert_eq!(
        world.host.take(),
        vec![request(
            device,
            serde_json::json!({"type":"decline","call_id":CALL})
        )]
    );
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Joined)],
    );
    world.close(999);
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::in_call("+15550100", CALL))]
    );
}

#[test]
fn taking_over_a_call_picks_it_up_and_a_refusal_is_try_again() {
    let mut world = World::new();
    let (multi, multi_device) = world.register("MultiPipe", "alice-token");
    let (pipe, pipe_device) = world.register("Pipe", "alice-token");
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Joined)],
    );
    world.close(999);
    world.host.take();
    // MultiPipe: an Offer with the id of a call Alice is in elsewhere is
    // a pickup; with no other terminal in the call, the placeholder answers.
    world.message(multi, &offer("s", "+15550101", CALL));
    let did = world.host.take();
    assert_eq!(
        did[..2],
        [
            request(
                multi_device,
                serde_json::json!({"type": "pickup", "call_id": CALL})
            ),
            Did::Send {
                stream: multi,
                message: WebTerminalMessage::answer(PLACEHOLDER_SDP, CALL)
            },
        ]
    );
    // Pipe: an Offer naming the other party (or nobody) while in a call
    // elsewhere; the switch refuses this one (the call ended meanwhile).
    world.host.refuse("pickup", "unknown_call");
    world.message(pipe, &offer("s", "+15550101", ""));
    assert_eq!(
        world.host.take(),
        vec![
            request(
                pipe_device,
                serde_json::json!({"type": "pickup", "call_id": CALL})
            ),
            Did::Send {
                stream: pipe,
                message: WebTerminalMessage::error(Code::TryAgain, "")
            },
        ]
    );
}

#[test]
fn an_ended_own_call_is_not_reported_as_elsewhere() {
    let mut world = World::new();
    let (alice, device) = world.register("MultiPipe", "alice-token");
    let (other, _) = world.register("MultiPipe", "alice-token");
    world.host.take();
    world.message(alice, &offer("s", "+15550101", CALL));
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Ringing)],
    );
    // The caller is in the call from the dial on: the other terminal of
    // Alice's hears of it; Alice's own does not.
    world.event(device, &event("answered", CALL, ""));
    assert_eq!(
        world.host.sent(),
        vec![
            (alice, WebTerminalMessage::answer(PLACEHOLDER_SDP, CALL)),
            (other, WebTerminalMessage::in_call("+15550100", CALL)),
        ]
    );
    world.host.set_live(
        CALL,
        &[(ALICE, PartyState::Joined), (BOB, PartyState::Joined)],
    );
    world.close(999);
    assert!(world.host.take().is_empty());
    // The call ends; the snapshot still has it for a moment.
    world.event(device, &event("ended", CALL, r#","reason":"hangup""#));
    assert_eq!(
        world.host.sent(),
        vec![(alice, WebTerminalMessage::bye(CALL))]
    );
    world.host.end_live(CALL);
    world.close(999);
    assert_eq!(
        world.host.sent(),
        vec![(other, WebTerminalMessage::idle(CALL))]
    );
}

#[test]
fn the_switch_closing_the_device_ends_the_call() {
    let mut world = World::new();
    let (alice, device) = world.register("Pipe", "alice-token");
    world.host.take();
    world.event(device, r#"{"type":"closed","reason":"shutdown"}"#);
    assert_eq!(
        world.host.take(),
        vec![
            Did::CloseStream {
                stream: alice,
                code: status::UNAVAILABLE
            },
            Did::CloseDevice(device),
        ]
    );
    assert!(world.state.terminals.is_empty());
}

#[test]
fn a_refused_device_ends_the_call() {
    let mut world = World::new();
    let Reply::Upgrade(context) = world.http(&grpc_request("Pipe", Some("alice-token"))) else {
        panic!()
    };
    world.host.tokens.clear();
    on_stream_open(&world.host, &mut world.state, 5, &context);
    assert_eq!(
        world.host.take(),
        vec![Did::CloseStream {
            stream: 5,
            code: status::UNAUTHENTICATED
        }]
    );
    assert!(world
        .host
        .logs
        .borrow()
        .iter()
        .any(|(_, line)| line.contains("refused")));
}
