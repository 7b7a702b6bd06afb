//! The `voice-proxy` adapter (the Self SDK voice-message proxy, mounted at
//! `/voice/`), driven as its clients drive it: the compiled plugin on a
//! real switch, real WebSocket clients on `/voice/socket`, and a QUIC
//! client as the operator's other device.
//!
//! Covered: setup and start from a customer reach the operator's sockets
//! and QUIC device re-addressed, `start` with the configured
//! `operator_name`; the mirrored switch call (ringing on start, active on
//! accept, ended on stop, declined on busy) in `list_calls` and in its
//! record; stop from either side, ringing or answered; busy while the operator also rings on a
//! QUIC device; every refusal (malformed payloads, unknown cid, a stranger,
//! the wrong side, a second start, no operator online, a missing token, a
//! request that is not a WebSocket) with its error frame to the sender
//! only, each followed by a message that still works; and the `cid`
//! mapping surviving a reload of the plugin.

mod common;

use std::time::Duration;

use callswitch::client::Client;
use callswitch::wire::{CallState, CallSummary, EndReason, PartyStatus, ServerMessage};
use common::http::{closed, http1, next_json, send_json, ws, Ws};
use common::{expect, Knobs, TestSwitch, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const ALICE_ID: &str = "5f1c5a1e-0000-4000-8000-00000000a11c";
const BOB_ID: &str = "5f1c5a1e-0000-4000-8000-000000000b0b";
const CAROL_ID: &str = "5f1c5a1e-0000-4000-8000-00000000ca01";

const SOCKET: &str = "/voice/socket";

/// bob is the operator; alice and carol are customers.
fn knobs() -> Knobs {
    Knobs {
        extra: r#"
[[plugin]]
name = "voice-proxy"
path = "builtin:voice-proxy"
world = "adapter"
routes = ["/voice/"]
grants = ["log", "kv", "calls", "config", "streams", "devices"]
[plugin.config]
operators = "bob"
operator_name = "Bob from support"

[[plugin]]
name = "call-log-rest"
path = "builtin:call-log-rest"
world = "adapter"
routes = ["/rtc/"]
grants = ["log", "kv", "clock", "calls", "config", "devices"]
"#
        .into(),
        ..Knobs::default()
    }
}

async fn voice_switch() -> TestSwitch {
    TestSwitch::start_with(knobs()).await
}

// ---- helpers ----

fn bearer(name: &str) -> String {
    format!("Bearer {name}-demo-token")
}

/// How many devices user `name` has online.
async fn devices_online(admin: &Client, name: &str) -> usize {
    admin
        .list_users()
        .await
        .unwrap()
        .iter()
        .find(|u| u.user.name == name)
        .map(|u| u.devices.len())
        .unwrap_or(0)
}

/// Waits (bounded) until user `name` has `n` devices online.
async fn wait_devices(admin: &Client, name: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while devices_online(admin, name).await != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never had {n} devices online"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens a voice socket for `name` and waits until the switch counts its
/// device (opened once the stream is, just after the handshake), so that
/// messages sent to `name` from then on reach it.
async fn socket(sw: &TestSwitch, name: &str) -> Ws {
    let admin = sw.admin().await;
    let before = devices_online(&admin, name).await;
    let socket = ws(sw.http(), SOCKET, &[("authorization", &bearer(name))])
        .await
        .expect("voice socket opens");
    wait_devices(&admin, name, before + 1).await;
    socket
}

fn voice(typ: &str, cid: &str) -> Value {
    json!({
        "typ": format!("chat.voice.{typ}"),
        "cid": cid,
        "call_id": format!("self-{cid}"),
        "peer_info": format!("{typ}-peer-info"),
        "jti": Uuid::new_v4().to_string(),
        "iat": "2026-05-09T10:00:00Z",
        "exp": "2026-05-09T10:01:00Z",
    })
}

/// `sent` as the proxy forwards it from `from` to `to`.
fn readdressed(sent: &Value, from: &str, to: &str) -> Value {
    let mut out = sent.clone();
    out["iss"] = json!(from);
    out["sub"] = json!(to);
    out["aud"] = json!(to);
    out
}

/// The next frame on a socket is `expected` (a voice message or an error).
async fn expect_frame(ws: &mut Ws, expected: &Value) {
    let got = next_json(ws).await;
    assert_eq!(&got, expected);
}

/// The next frame on a socket is the proxy's error for `cid` (`None`:
/// `null`), and its reason contains `reason`.
async fn expect_error(ws: &mut Ws, cid: Option<&str>, reason: &str) {
    let got = next_json(ws).await;
    assert_eq!(got["typ"], "error", "{got}");
    assert_eq!(got["cid"], json!(cid), "{got}");
    let said = got["error"].as_str().expect("a reason");
    assert!(said.contains(reason), "{said:?} does not say {reason:?}");
    assert_eq!(got.as_object().unwrap().len(), 3, "{got}");
}

/// Checks that no text frame arrives on a socket: reads for a short while
/// and asserts nothing came (pings aside). Not a timing assertion: anything
/// the plugin would have written is already under way by then.
async fn quiet(ws: &mut Ws) {
    let window = tokio::time::Instant::now() + Duration::from_millis(300);
    loop {
        match tokio::time::timeout_at(window, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected nothing, got {other:?}"),
        }
    }
}

/// The live calls.
async fn calls(sw: &TestSwitch) -> Vec<CallSummary> {
    sw.admin().await.list_calls().await.unwrap()
}

/// The one live call, once it is in `state` (bounded wait).
async fn wait_call_state(sw: &TestSwitch, state: CallState) -> CallSummary {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let live = calls(sw).await;
        if let [call] = &live[..] {
            if call.state == state {
                return call.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no single {state:?} call: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until no call is live.
async fn wait_no_calls(sw: &TestSwitch) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let live = calls(sw).await;
        if live.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls still live: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) for the switch's record of a call that is ending.
async fn call_record(sw: &TestSwitch, call_id: Uuid) -> callswitch::wire::CallRecord {
    let admin = sw.admin().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match admin.call_log(call_id).await {
            Ok(record) => return record,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "no record of {call_id}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status_of(record: &callswitch::wire::CallRecord, name: &str) -> PartyStatus {
    record
        .parties
        .iter()
        .find(|p| p.user.name == name)
        .unwrap_or_else(|| panic!("{name} not in {record:?}"))
        .status
}

/// alice (customer) and bob (operator) with a socket each; alice starts
/// `cid` and bob's socket gets the start. Returns (alice, bob, the
/// mirrored call).
async fn started(sw: &TestSwitch, cid: &str) -> (Ws, Ws, CallSummary) {
    let mut alice = socket(sw, "alice").await;
    let mut bob = socket(sw, "bob").await;
    let start = voice("start", cid);
    send_json(&mut alice, start.clone()).await;
    let got = next_json(&mut bob).await;
    assert_eq!(got["typ"], "chat.voice.start", "{got}");
    assert_eq!(got["cid"], cid, "{got}");
    let call = wait_call_state(sw, CallState::Ringing).await;
    (alice, bob, call)
}

// ---- the flows ----

#[tokio::test]
async fn a_whole_negotiation_is_proxied_and_mirrored_as_a_call() {
    let sw = voice_switch().await;
    let (_bob_quic, mut bob_events) = sw.connect("bob").await;
    let mut alice = socket(&sw, "alice").await;
    let mut bob = socket(&sw, "bob").await;

    // setup: forwarded to the operator, re-addressed; no call yet.
    let setup = json!({"typ": "chat.voice.setup", "cid": "c1", "data": {"name": "alice"},
                       "jti": "j-1", "iss": "whoever", "sub": "proxy", "aud": "proxy"});
    send_json(&mut alice, setup.clone()).await;
    expect_frame(&mut bob, &readdressed(&setup, ALICE_ID, BOB_ID)).await;
    assert!(calls(&sw).await.is_empty());

    // start: forwarded with the operator's name; the call rings.
    let start = voice("start", "c1");
    send_json(&mut alice, start.clone()).await;
    let mut expected = readdressed(&start, ALICE_ID, BOB_ID);
    expected["data"] = json!({"operator_name": "Bob from support"});
    expect_frame(&mut bob, &expected).await;
    let call = wait_call_state(&sw, CallState::Ringing).await;
    assert_eq!(call.caller.name, "alice");
    assert_eq!(call.parties.len(), 2, "{call:?}");
    assert_eq!(call.parties[1].user.name, "bob");

    // bob's QUIC device rings for the mirrored call and gets the messages
    // too, as switch `message` events from alice.
    let incoming = expect(&mut bob_events, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    let ServerMessage::Incoming { call_id, .. } = incoming else {
        unreachable!()
    };
    assert_eq!(call_id, call.call_id);
    let message = expect(
        &mut bob_events,
        "the start message",
        |m| matches!(m, ServerMessage::Message { body, .. } if body["typ"] == "chat.voice.start"),
    )
    .await;
    let ServerMessage::Message { from, to, body } = message else {
        unreachable!()
    };
    assert_eq!((from.name.as_str(), to.name.as_str()), ("alice", "bob"));
    assert_eq!(body, expected);

    // accept: the call is answered on bob's socket device; alice is told.
    let accept = voice("accept", "c1");
    send_json(&mut bob, accept.clone()).await;
    expect_frame(&mut alice, &readdressed(&accept, BOB_ID, ALICE_ID)).await;
    let active = wait_call_state(&sw, CallState::Active).await;
    assert_eq!(active.call_id, call.call_id);
    expect(
        &mut bob_events,
        "ring_stopped",
        |m| matches!(m, ServerMessage::RingStopped { call_id, .. } if *call_id == call.call_id),
    )
    .await;

    // stop from the customer: bob is told, the call ends.
    let stop = voice("stop", "c1");
    send_json(&mut alice, stop.clone()).await;
    expect_frame(&mut bob, &readdressed(&stop, ALICE_ID, BOB_ID)).await;
    wait_no_calls(&sw).await;
    let record = call_record(&sw, call.call_id).await;
    assert_eq!(record.end_reason, EndReason::Hangup, "{record:?}");
    assert_eq!(record.caller.name, "alice");
    let bob_party = record
        .parties
        .iter()
        .find(|p| p.user.name == "bob")
        .unwrap();
    assert!(bob_party.joined_at_ms.is_some(), "{record:?}");
    assert!(record.answered_at_ms.is_some());

    // A summary after the end still goes to the other side.
    let summary = voice("summary", "c1");
    send_json(&mut bob, summary.clone()).await;
    expect_frame(&mut alice, &readdressed(&summary, BOB_ID, ALICE_ID)).await;

    // The sockets got the voice messages and nothing else (no call event).
    quiet(&mut alice).await;
    quiet(&mut bob).await;
}

#[tokio::test]
async fn every_socket_of_the_recipient_gets_each_message_once() {
    let sw = voice_switch().await;
    let mut alice = socket(&sw, "alice").await;
    let mut alice2 = socket(&sw, "alice").await;
    let mut bob = socket(&sw, "bob").await;
    let mut bob2 = socket(&sw, "bob").await;
    let start = voice("start", "c1");
    send_json(&mut alice, start.clone()).await;
    let mut expected = readdressed(&start, ALICE_ID, BOB_ID);
    expected["data"] = json!({"operator_name": "Bob from support"});
    expect_frame(&mut bob, &expected).await;
    expect_frame(&mut bob2, &expected).await;
    // The customer's other socket gets the copy of its own message.
    expect_frame(&mut alice2, &expected).await;
    // The call rings on both of bob's sockets; he accepts on the second.
    let accept = voice("accept", "c1");
    send_json(&mut bob2, accept.clone()).await;
    let forwarded = readdressed(&accept, BOB_ID, ALICE_ID);
    expect_frame(&mut alice, &forwarded).await;
    expect_frame(&mut alice2, &forwarded).await;
    expect_frame(&mut bob, &forwarded).await;
    wait_call_state(&sw, CallState::Active).await;
    for socket in [&mut alice, &mut alice2, &mut bob, &mut bob2] {
        quiet(socket).await;
    }
}

#[tokio::test]
async fn busy_from_the_operator_reaches_the_customer_and_the_call_is_declined() {
    let sw = voice_switch().await;
    let (mut alice, mut bob, call) = started(&sw, "c1").await;
    let busy = voice("busy", "c1");
    send_json(&mut bob, busy.clone()).await;
    expect_frame(&mut alice, &readdressed(&busy, BOB_ID, ALICE_ID)).await;
    wait_no_calls(&sw).await;
    let record = call_record(&sw, call.call_id).await;
    assert_eq!(record.end_reason, EndReason::Declined, "{record:?}");
    assert_eq!(status_of(&record, "bob"), PartyStatus::Declined);
    assert!(record.answered_at_ms.is_none());
    quiet(&mut bob).await;
}

#[tokio::test]
async fn busy_while_the_operator_also_rings_on_a_quic_device_ends_the_call() {
    let sw = voice_switch().await;
    let (_bob_quic, mut bob_events) = sw.connect("bob").await;
    let (mut alice, mut bob, call) = started(&sw, "c1").await;
    let busy = voice("busy", "c1");
    send_json(&mut bob, busy.clone()).await;
    expect_frame(&mut alice, &readdressed(&busy, BOB_ID, ALICE_ID)).await;
    // The socket's decline leaves the QUIC device ringing: the customer's
    // device then cancels the call, which stops it ringing there.
    expect(
        &mut bob_events,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id, .. } if *call_id == call.call_id),
    )
    .await;
    wait_no_calls(&sw).await;
    let record = call_record(&sw, call.call_id).await;
    assert_eq!(record.end_reason, EndReason::Cancelled, "{record:?}");
    quiet(&mut bob).await;
}

#[tokio::test]
async fn stop_from_the_operator_reaches_the_customer_and_ends_the_call() {
    let sw = voice_switch().await;
    let (mut alice, mut bob, call) = started(&sw, "c1").await;
    send_json(&mut bob, voice("accept", "c1")).await;
    next_json(&mut alice).await;
    wait_call_state(&sw, CallState::Active).await;
    let stop = voice("stop", "c1");
    send_json(&mut bob, stop.clone()).await;
    expect_frame(&mut alice, &readdressed(&stop, BOB_ID, ALICE_ID)).await;
    wait_no_calls(&sw).await;
    let record = call_record(&sw, call.call_id).await;
    assert_eq!(record.end_reason, EndReason::Hangup, "{record:?}");
    assert_eq!(status_of(&record, "bob"), PartyStatus::Left);
    quiet(&mut bob).await;
}

#[tokio::test]
async fn stop_from_the_operator_while_ringing_declines_the_call() {
    let sw = voice_switch().await;
    let (mut alice, mut bob, call) = started(&sw, "c1").await;
    let stop = voice("stop", "c1");
    send_json(&mut bob, stop.clone()).await;
    expect_frame(&mut alice, &readdressed(&stop, BOB_ID, ALICE_ID)).await;
    wait_no_calls(&sw).await;
    let record = call_record(&sw, call.call_id).await;
    assert_eq!(record.end_reason, EndReason::Declined, "{record:?}");
    quiet(&mut bob).await;
}

#[tokio::test]
async fn stop_from_the_customer_while_ringing_cancels_the_call() {
    let sw = voice_switch().await;
    let (mut alice, mut bob, call) = started(&sw, "c1").await;
    let stop = voice("stop", "c1");
    send_json(&mut alice, stop.clone()).await;
    expect_frame(&mut bob, &readdressed(&stop, ALICE_ID, BOB_ID)).await;
    wait_no_calls(&sw).await;
    let record = call_record(&sw, call.call_id).await;
    assert_eq!(record.end_reason, EndReason::Cancelled, "{record:?}");
    // Too late to accept.
    send_json(&mut bob, voice("accept", "c1")).await;
    expect_error(&mut bob, Some("c1"), "no call is ringing for this cid").await;
    quiet(&mut alice).await;
}

// ---- refusals ----

#[tokio::test]
async fn malformed_payloads_get_an_error_and_nothing_is_forwarded() {
    let sw = voice_switch().await;
    let mut alice = socket(&sw, "alice").await;
    let mut bob = socket(&sw, "bob").await;
    for (text, cid, reason) in [
        ("{not json", None, "not JSON"),
        ("[1, 2]", None, "not a JSON object"),
        ("42", None, "not a JSON object"),
        (r#"{"cid":"c1","call_id":"x"}"#, Some("c1"), "no `typ`"),
        (
            r#"{"typ":5,"cid":"c1"}"#,
            Some("c1"),
            "`typ` is not a string",
        ),
        (
            r#"{"typ":"chat.voice.ring","cid":"c1"}"#,
            Some("c1"),
            "unknown typ `chat.voice.ring`",
        ),
        (
            r#"{"typ":"chat.text","cid":"c1"}"#,
            Some("c1"),
            "unknown typ",
        ),
        (r#"{"typ":"chat.voice.start"}"#, None, "no `cid`"),
        (
            r#"{"typ":"chat.voice.start","cid":7}"#,
            None,
            "`cid` is not a string",
        ),
        (
            r#"{"typ":"chat.voice.start","cid":""}"#,
            None,
            "`cid` is empty",
        ),
        (
            r#"{"typ":"chat.voice.start","cid":"c1","data":"x"}"#,
            Some("c1"),
            "`data` is not an object",
        ),
    ] {
        alice.send(Message::text(text)).await.unwrap();
        expect_error(&mut alice, cid, reason).await;
    }
    // Binary frames are ignored.
    alice
        .send(Message::binary(b"{\"typ\":\"chat.voice.start\"}".to_vec()))
        .await
        .unwrap();
    quiet(&mut alice).await;
    quiet(&mut bob).await;
    assert!(calls(&sw).await.is_empty());
    // The proxy still serves.
    let setup = voice("setup", "c1");
    send_json(&mut alice, setup.clone()).await;
    expect_frame(&mut bob, &readdressed(&setup, ALICE_ID, BOB_ID)).await;
}

#[tokio::test]
async fn an_unknown_cid_gets_an_error_and_nothing_is_forwarded() {
    let sw = voice_switch().await;
    let mut alice = socket(&sw, "alice").await;
    let mut bob = socket(&sw, "bob").await;
    for typ in ["stop", "summary"] {
        send_json(&mut alice, voice(typ, "nope")).await;
        expect_error(&mut alice, Some("nope"), "unknown cid").await;
    }
    for typ in ["accept", "busy", "stop"] {
        send_json(&mut bob, voice(typ, "nope")).await;
        expect_error(&mut bob, Some("nope"), "unknown cid").await;
    }
    quiet(&mut alice).await;
    quiet(&mut bob).await;
    // The proxy still serves.
    let setup = voice("setup", "c1");
    send_json(&mut alice, setup.clone()).await;
    expect_frame(&mut bob, &readdressed(&setup, ALICE_ID, BOB_ID)).await;
}

#[tokio::test]
async fn a_stranger_to_the_call_gets_an_error_and_nothing_changes() {
    let sw = voice_switch().await;
    let (mut alice, mut bob, call) = started(&sw, "c1").await;
    let mut carol = socket(&sw, "carol").await;
    for typ in ["setup", "start", "accept", "busy", "stop", "summary"] {
        send_json(&mut carol, voice(typ, "c1")).await;
        expect_error(&mut carol, Some("c1"), "not a party to this cid").await;
    }
    quiet(&mut alice).await;
    quiet(&mut bob).await;
    let still = wait_call_state(&sw, CallState::Ringing).await;
    assert_eq!(still.call_id, call.call_id);
    // A session of carol's own works.
    let setup = voice("setup", "c2");
    send_json(&mut carol, setup.clone()).await;
    expect_frame(&mut bob, &readdressed(&setup, CAROL_ID, BOB_ID)).await;
}

#[tokio::test]
async fn the_wrong_side_and_a_second_start_get_an_error_and_nothing_changes() {
    let sw = voice_switch().await;
    let (mut alice, mut bob, call) = started(&sw, "c1").await;
    for typ in ["accept", "busy"] {
        send_json(&mut alice, voice(typ, "c1")).await;
        expect_error(
            &mut alice,
            Some("c1"),
            &format!("only the side that did not send chat.voice.start sends chat.voice.{typ}"),
        )
        .await;
    }
    send_json(&mut alice, voice("start", "c1")).await;
    expect_error(
        &mut alice,
        Some("c1"),
        "a call is already live for this cid",
    )
    .await;
    send_json(&mut bob, voice("setup", "c1")).await;
    expect_error(
        &mut bob,
        Some("c1"),
        "only the customer side sends chat.voice.setup",
    )
    .await;
    // The operator may start (the seed's direction), but not a second call.
    send_json(&mut bob, voice("start", "c1")).await;
    expect_error(&mut bob, Some("c1"), "a call is already live for this cid").await;
    quiet(&mut alice).await;
    quiet(&mut bob).await;
    let live = calls(&sw).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].call_id, call.call_id);
    assert_eq!(live[0].state, CallState::Ringing);
    // A valid message still works.
    let accept = voice("accept", "c1");
    send_json(&mut bob, accept.clone()).await;
    expect_frame(&mut alice, &readdressed(&accept, BOB_ID, ALICE_ID)).await;
    wait_call_state(&sw, CallState::Active).await;
}

#[tokio::test]
async fn no_operator_online_is_an_error() {
    let sw = voice_switch().await;
    let mut alice = socket(&sw, "alice").await;
    for typ in ["setup", "start"] {
        send_json(&mut alice, voice(typ, "c1")).await;
        expect_error(&mut alice, Some("c1"), "no operator available").await;
    }
    assert!(calls(&sw).await.is_empty());
    // Once bob is online, the same cid opens a session.
    let mut bob = socket(&sw, "bob").await;
    send_json(&mut alice, voice("start", "c1")).await;
    assert_eq!(next_json(&mut bob).await["typ"], "chat.voice.start");
    wait_call_state(&sw, CallState::Ringing).await;
    quiet(&mut alice).await;
}

#[tokio::test]
async fn the_socket_needs_a_token_and_a_websocket_upgrade() {
    let sw = voice_switch().await;
    let addr = sw.http();
    // The handshake is refused with 401 without a token or with a bad one.
    assert_eq!(ws(addr, SOCKET, &[]).await.err(), Some(401));
    assert_eq!(
        ws(addr, SOCKET, &[("authorization", "Bearer nope")])
            .await
            .err(),
        Some(401)
    );
    // The admin token is no user's.
    let admin = format!("Bearer {}", sw.handle().admin_token);
    assert_eq!(
        ws(addr, SOCKET, &[("authorization", &admin)]).await.err(),
        Some(401)
    );
    let upgrade = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let answer = http1(addr, "GET", SOCKET, &upgrade, b"").await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(answer.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert!(answer.json()["error"].is_string(), "{}", answer.text());
    // A plain GET with a good token: not a WebSocket.
    let auth = bearer("alice");
    let answer = http1(addr, "GET", SOCKET, &[("authorization", &auth)], b"").await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.json()["error"]
        .as_str()
        .unwrap()
        .contains("WebSocket"));
    // Other paths and methods.
    let answer = http1(
        addr,
        "GET",
        "/voice/other",
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    let answer = http1(addr, "POST", SOCKET, &[("authorization", &auth)], b"").await;
    assert_eq!(answer.status, 405, "{}", answer.text());
    // The proxy still serves.
    let mut alice = socket(&sw, "alice").await;
    let mut bob = socket(&sw, "bob").await;
    let setup = voice("setup", "c1");
    send_json(&mut alice, setup.clone()).await;
    expect_frame(&mut bob, &readdressed(&setup, ALICE_ID, BOB_ID)).await;
}

// ---- state ----

#[tokio::test]
async fn the_mapping_survives_a_reload_of_the_plugin() {
    let sw = voice_switch().await;
    let (mut alice, mut bob, call) = started(&sw, "c1").await;
    let admin = sw.admin().await;
    let reloaded = admin.reload_plugins(Some("voice-proxy")).await.unwrap();
    assert_eq!(reloaded.len(), 1);
    // The host closes the old instance's sockets and devices, which ends
    // the call: `disconnected` when alice's (the caller's) device goes
    // first, `unavailable` when bob's only ringing device does.
    assert_eq!(closed(&mut alice).await, Some(1011));
    assert_eq!(closed(&mut bob).await, Some(1011));
    wait_no_calls(&sw).await;
    let reason = call_record(&sw, call.call_id).await.end_reason;
    assert!(
        matches!(reason, EndReason::Disconnected | EndReason::Unavailable),
        "{reason:?}"
    );

    // The clients reconnect. The call is gone, so bob cannot accept it...
    let mut alice = socket(&sw, "alice").await;
    let mut bob = socket(&sw, "bob").await;
    send_json(&mut bob, voice("accept", "c1")).await;
    expect_error(&mut bob, Some("c1"), "no call is ringing for this cid").await;
    quiet(&mut alice).await;
    // ...but the cid still maps alice to bob: her stop reaches him.
    let stop = voice("stop", "c1");
    send_json(&mut alice, stop.clone()).await;
    expect_frame(&mut bob, &readdressed(&stop, ALICE_ID, BOB_ID)).await;
    // And a new start for the cid places a new call.
    send_json(&mut alice, voice("start", "c1")).await;
    assert_eq!(next_json(&mut bob).await["typ"], "chat.voice.start");
    let again = wait_call_state(&sw, CallState::Ringing).await;
    assert_ne!(again.call_id, call.call_id);
}

#[tokio::test]
async fn the_seeds_flow_operator_starts_after_the_customers_setup() {
    let sw = voice_switch().await;
    let mut alice = socket(&sw, "alice").await;
    let mut bob = socket(&sw, "bob").await;
    // The customer asks for a voice call; the proxy maps the cid to an
    // operator and tells him.
    let setup = voice("setup", "s1");
    send_json(&mut alice, setup.clone()).await;
    expect_frame(&mut bob, &readdressed(&setup, ALICE_ID, BOB_ID)).await;
    // The operator starts: the customer gets it with the proxy's
    // operator_name, and the mirrored call rings the customer.
    send_json(&mut bob, voice("start", "s1")).await;
    let got = next_json(&mut alice).await;
    assert_eq!(got["typ"], "chat.voice.start", "{got}");
    assert_eq!(got["data"]["operator_name"], "Bob from support", "{got}");
    let call = wait_call_state(&sw, CallState::Ringing).await;
    assert_eq!(call.caller.name, "bob");
    // The customer accepts: the operator is told and the call is active.
    let accept = voice("accept", "s1");
    send_json(&mut alice, accept.clone()).await;
    expect_frame(&mut bob, &readdressed(&accept, ALICE_ID, BOB_ID)).await;
    wait_call_state(&sw, CallState::Active).await;
    // Stop from the customer reaches the operator; the call ends.
    let stop = voice("stop", "s1");
    send_json(&mut alice, stop.clone()).await;
    expect_frame(&mut bob, &readdressed(&stop, ALICE_ID, BOB_ID)).await;
    let record = sw.admin().await.call_log(call.call_id).await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let mut record = record;
    while record.is_err() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        record = sw.admin().await.call_log(call.call_id).await;
    }
    assert_eq!(
        record.unwrap().end_reason,
        callswitch::wire::EndReason::Hangup
    );
}

#[tokio::test]
async fn the_mirrored_call_shows_in_the_call_log_api() {
    let sw = voice_switch().await;
    let (mut alice, mut bob, call) = started(&sw, "l1").await;
    let read = |sw: &TestSwitch| {
        let addr = sw.http();
        let path = format!("/rtc/getCallLogById?callId={}", call.call_id);
        async move {
            common::http::http1(
                addr,
                "GET",
                &path,
                &[("authorization", "Bearer carol-demo-token")],
                b"",
            )
            .await
        }
    };
    let log = read(&sw).await;
    assert_eq!(log.status, 200, "{}", log.text());
    let v = log.json();
    assert_eq!(v["callStatus"], "Started", "{v}");
    assert_eq!(v["creatorContact"]["userId"], "alice", "{v}");
    assert_eq!(v["invitedContacts"][0]["userId"], "bob", "{v}");
    let accept = voice("accept", "l1");
    send_json(&mut bob, accept.clone()).await;
    expect_frame(&mut alice, &readdressed(&accept, BOB_ID, ALICE_ID)).await;
    let stop = voice("stop", "l1");
    send_json(&mut alice, stop.clone()).await;
    expect_frame(&mut bob, &readdressed(&stop, ALICE_ID, BOB_ID)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = read(&sw).await.json();
        if v["callStatus"] == "Ended" {
            let types: Vec<&str> = v["callEvents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].as_str().unwrap())
                .collect();
            assert!(types.contains(&"Join") && types.contains(&"Ended"), "{v}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ended: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
