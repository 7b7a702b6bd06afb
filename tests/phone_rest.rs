//! The `phone-rest` adapter (the Swiftarr "KrakenTalk" phone API, mounted
//! at `/api/v3/` by the default config), driven as its real clients drive
//! it: the compiled plugin on a real switch, HTTP/1.1 (and HTTP/2) requests,
//! WebSockets, and QUIC clients on the other end of the calls.
//!
//! Covered: login with Basic auth; the notification socket (refused without
//! a token, `incomingPhoneCall`, `phoneCallAnswered`, `phoneCallEnded`); the
//! server-mediated path between two phone users (initiate and answer
//! sockets, the binary start packet, binary frames forwarded both ways and
//! text frames not, either socket closing ends the call); calls between a
//! phone user and a QUIC client in both directions with audio; a call
//! answered on another device; the direct path (initiate with the caller's
//! address, answer, decline by either party or a stranger); every refusal
//! with its exact status (bad ids, unknown or offline or busy callee, bad
//! bodies, unknown calls, routes and methods, missing tokens), each followed
//! by a request that still works; and the switch's call records of phone
//! calls.

mod common;

use std::time::Duration;

use bytes::Bytes;
use callswitch::client::Client;
use callswitch::wire::{EndReason, MediaFrame, PartyStatus, ServerMessage};
use common::http::{closed, expect_json, http1, http2, next_binary, next_json, ws, Answer, Ws};
use common::{expect, expect_media, TestSwitch, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// The demo users' ids as the API writes them (upper case).
const ALICE_ID: &str = "5F1C5A1E-0000-4000-8000-00000000A11C";
const BOB_ID: &str = "5F1C5A1E-0000-4000-8000-000000000B0B";
const CAROL_ID: &str = "5F1C5A1E-0000-4000-8000-00000000CA01";

const JSON_TYPE: &str = "application/json; charset=utf-8";

// ---- helpers ----

fn bearer(name: &str) -> String {
    format!("Bearer {name}-demo-token")
}

/// A fresh call id as the API's clients make them (Swift's `uuidString`:
/// upper case).
fn new_call() -> (Uuid, String) {
    let id = Uuid::new_v4();
    (id, id.to_string().to_ascii_uppercase())
}

fn api(id: Uuid) -> String {
    id.to_string().to_ascii_uppercase()
}

fn initiate_path(call: &str, to: &str) -> String {
    format!("/api/v3/phone/initiate/{call}/to/{to}")
}

fn socket_initiate_path(call: &str, to: &str) -> String {
    format!("/api/v3/phone/socket/initiate/{call}/to/{to}")
}

fn socket_answer_path(call: &str) -> String {
    format!("/api/v3/phone/socket/answer/{call}")
}

/// Standard base64 with padding, for Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// `POST path` as user `name` (`None`: no `authorization` header).
async fn post(sw: &TestSwitch, name: Option<&str>, path: &str, body: &[u8]) -> Answer {
    let auth = name.map(bearer);
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    http1(sw.http(), "POST", path, &headers, body).await
}

/// Asserts the API's error: `status`, its JSON content type and the body
/// `{"error":true,"status":<status>,"reason":...}`; returns the reason.
fn assert_error(answer: &Answer, status: u16) -> String {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some(JSON_TYPE),
        "{answer:?}"
    );
    let body = answer.json();
    let object = body.as_object().expect("an object");
    assert_eq!(object.len(), 3, "{body}");
    assert_eq!(body["error"], true, "{body}");
    assert_eq!(body["status"], status, "{body}");
    body["reason"].as_str().expect("a reason").to_string()
}

/// Asserts a 200 with an empty body.
fn assert_ok(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.text());
}

/// Opens a WebSocket on `path` as user `name`.
async fn phone_ws(sw: &TestSwitch, name: &str, path: &str) -> Result<Ws, u16> {
    ws(sw.http(), path, &[("authorization", &bearer(name))]).await
}

/// A WebSocket upgrade of `path` as user `name` that the API refuses: the
/// handshake fails with the status, and the same request sent as plain
/// HTTP/1.1 shows the error body, which this returns.
async fn ws_refused(sw: &TestSwitch, name: Option<&str>, path: &str, status: u16) -> Answer {
    let auth = name.map(bearer);
    let auth: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    match ws(sw.http(), path, &auth).await {
        Err(got) => assert_eq!(got, status, "{path}"),
        Ok(_) => panic!("{path}: upgraded, expected {status}"),
    }
    let mut headers = vec![
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    headers.extend(auth);
    let answer = http1(sw.http(), "GET", path, &headers, b"").await;
    assert_eq!(answer.status, status, "{path}: {}", answer.text());
    answer
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

/// Opens a notification socket for `name` and waits until the switch
/// counts its device: the device is opened once the stream is, just after
/// the handshake.
async fn notification_socket(sw: &TestSwitch, name: &str) -> Ws {
    let admin = sw.admin().await;
    let before = devices_online(&admin, name).await;
    let socket = phone_ws(sw, name, "/api/v3/notification/socket")
        .await
        .expect("notification socket opens");
    wait_devices(&admin, name, before + 1).await;
    socket
}

/// The next message that is not a ping or pong.
async fn next_message(ws: &mut Ws) -> Message {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("stream open")
            .expect("message");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

fn incoming_frame(call: &str, caller_id: &str, caller: &str) -> Value {
    json!({
        "type": {"incomingPhoneCall": {}},
        "info": caller,
        "contentID": call,
        "caller": {"userID": caller_id, "username": caller},
    })
}

fn status_frame(kind: &str, call: &str) -> Value {
    json!({"type": {kind: {}}, "info": "", "contentID": call})
}

/// Waits for the status notification `kind` of `call` on a notification
/// socket, and checks the whole frame.
async fn expect_status(socket: &mut Ws, kind: &str, call: &str) {
    let frame = expect_json(socket, kind, |v| v["type"].get(kind).is_some()).await;
    assert_eq!(frame, status_frame(kind, call));
}

/// Checks a start packet: a binary frame of JSON
/// `{"phonecallStartTime":"yyyy-MM-ddTHH:mm:ss.SSSZ"}`.
fn assert_start_packet(packet: &[u8]) {
    let value: Value = serde_json::from_slice(packet).unwrap_or_else(|e| {
        panic!(
            "start packet is not JSON ({e}): {}",
            String::from_utf8_lossy(packet)
        )
    });
    let object = value.as_object().expect("an object");
    assert_eq!(object.len(), 1, "{value}");
    let time = value["phonecallStartTime"].as_str().expect("a time string");
    let bytes = time.as_bytes();
    assert_eq!(bytes.len(), 24, "{time}");
    for (i, &b) in bytes.iter().enumerate() {
        let expected_ok = match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        };
        assert!(expected_ok, "{time}: byte {i}");
    }
}

/// Sends `payload` as a media frame from a QUIC client.
fn send_audio(client: &Client, channel: u32, seq: u32, payload: &'static [u8]) {
    client
        .send_frame(&MediaFrame {
            channel,
            seq,
            timestamp: seq * 160,
            payload: Bytes::from_static(payload),
        })
        .unwrap();
}

/// The payload of the next media frame a QUIC client receives.
async fn recv_audio(client: &Client) -> Vec<u8> {
    tokio::time::timeout(WAIT, client.recv_frame())
        .await
        .expect("a frame in time")
        .expect("a frame")
        .payload
        .to_vec()
}

/// A valid request after a refused one: the plugin still serves.
async fn assert_still_serving(sw: &TestSwitch) {
    let answer = http1(
        sw.http(),
        "POST",
        "/api/v3/auth/login",
        &[("authorization", &basic("carol", "carol-demo-token"))],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["userID"], CAROL_ID);
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

/// A server-mediated call from alice (phone) to bob (phone) answered by
/// bob, with both notification sockets open. Returns (call, alice's
/// notification socket, bob's, alice's phone socket, bob's).
async fn mediated_call(sw: &TestSwitch) -> (Uuid, Ws, Ws, Ws, Ws) {
    let alice_n = notification_socket(sw, "alice").await;
    let mut bob_n = notification_socket(sw, "bob").await;
    let (call_id, call) = new_call();
    let mut alice_p = phone_ws(sw, "alice", &socket_initiate_path(&call, BOB_ID))
        .await
        .expect("initiate socket opens");
    assert_eq!(
        next_json(&mut bob_n).await,
        incoming_frame(&call, ALICE_ID, "alice")
    );
    let mut bob_p = phone_ws(sw, "bob", &socket_answer_path(&call))
        .await
        .expect("answer socket opens");
    expect_status(&mut bob_n, "phoneCallAnswered", &call).await;
    let a_start = next_binary(&mut alice_p).await;
    let b_start = next_binary(&mut bob_p).await;
    assert_start_packet(&a_start);
    assert_eq!(a_start, b_start, "one start packet for both sockets");
    (call_id, alice_n, bob_n, alice_p, bob_p)
}

// ---- login ----

#[tokio::test]
async fn login_with_basic_auth_returns_the_user_id_and_token() {
    let sw = TestSwitch::start().await;
    let answer = http1(
        sw.http(),
        "POST",
        "/api/v3/auth/login",
        &[("authorization", &basic("alice", "alice-demo-token"))],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["content-type"].to_str().unwrap(), JSON_TYPE);
    assert_eq!(
        answer.json(),
        json!({"userID": ALICE_ID, "accessLevel": "verified", "token": "alice-demo-token"})
    );
    // The same over HTTP/2.
    let answer = http2(
        sw.http(),
        "POST",
        "/api/v3/auth/login",
        &[("authorization", &basic("bob", "bob-demo-token"))],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["userID"], BOB_ID);
    // The token works as a bearer token on the API.
    let token = answer.json()["token"].as_str().unwrap().to_string();
    let socket = ws(
        sw.http(),
        "/api/v3/notification/socket",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert!(socket.is_ok());
}

#[tokio::test]
async fn login_with_a_wrong_password_is_401() {
    let sw = TestSwitch::start().await;
    for password in ["wrong", "", "bob-demo-token"] {
        let answer = http1(
            sw.http(),
            "POST",
            "/api/v3/auth/login",
            &[("authorization", &basic("alice", password))],
            b"",
        )
        .await;
        assert_error(&answer, 401);
    }
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn login_with_a_wrong_name_is_401() {
    let sw = TestSwitch::start().await;
    for name in ["mallory", "bob", "Alice", ""] {
        let answer = http1(
            sw.http(),
            "POST",
            "/api/v3/auth/login",
            &[("authorization", &basic(name, "alice-demo-token"))],
            b"",
        )
        .await;
        assert_error(&answer, 401);
    }
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn login_without_basic_credentials_is_401() {
    let sw = TestSwitch::start().await;
    for auth in [
        None,
        Some("Bearer alice-demo-token"),
        Some("Basic !!!"),
        Some("Basic YWxpY2U="), // "alice", no colon
    ] {
        let headers: Vec<(&str, &str)> =
            auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let answer = http1(sw.http(), "POST", "/api/v3/auth/login", &headers, b"").await;
        assert_error(&answer, 401);
    }
    assert_still_serving(&sw).await;
}

// ---- the notification socket ----

#[tokio::test]
async fn notification_socket_without_a_valid_token_is_refused_with_401() {
    let sw = TestSwitch::start().await;
    let path = "/api/v3/notification/socket";
    assert_eq!(ws(sw.http(), path, &[]).await.err(), Some(401));
    let refused = ws_refused(&sw, None, path, 401).await;
    assert_error(&refused, 401);
    let admin_token = format!("Bearer {}", sw.handle().admin_token);
    for auth in [
        "Bearer nope",
        "Basic YWxpY2U6YWxpY2UtZGVtby10b2tlbg==",
        &admin_token,
    ] {
        assert_eq!(
            ws(sw.http(), path, &[("authorization", auth)]).await.err(),
            Some(401),
            "{auth}"
        );
    }
    // Nobody got a device.
    let admin = sw.admin().await;
    assert_eq!(devices_online(&admin, "alice").await, 0);
    // A valid token still gets its socket.
    notification_socket(&sw, "alice").await;
}

#[tokio::test]
async fn notification_socket_needs_a_websocket_upgrade() {
    let sw = TestSwitch::start().await;
    let answer = http1(
        sw.http(),
        "GET",
        "/api/v3/notification/socket",
        &[("authorization", &bearer("bob"))],
        b"",
    )
    .await;
    assert_error(&answer, 400);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn notification_socket_gets_incoming_phone_call_when_a_quic_client_dials() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let mut bob_n2 = notification_socket(&sw, "bob").await;
    let (alice, mut ae) = sw.connect("alice").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    let call = api(call_id);
    // Every notification socket of the callee rings, as a TEXT frame.
    for socket in [&mut bob_n, &mut bob_n2] {
        match next_message(socket).await {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(frame, incoming_frame(&call, ALICE_ID, "alice"));
            }
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
    expect(
        &mut ae,
        "ringing",
        |m| matches!(m, ServerMessage::Ringing { call_id: c, .. } if *c == call_id),
    )
    .await;
    // The caller cancels: the sockets stop ringing.
    alice.hangup(call_id).await.unwrap();
    expect_status(&mut bob_n, "phoneCallEnded", &call).await;
    expect_status(&mut bob_n2, "phoneCallEnded", &call).await;
}

// ---- the server-mediated path ----

#[tokio::test]
async fn mediated_call_forwards_binary_frames_both_ways_and_not_text() {
    let sw = TestSwitch::start().await;
    let (_, _alice_n, _bob_n, mut alice_p, mut bob_p) = mediated_call(&sw).await;

    alice_p.send(Message::text("not audio")).await.unwrap();
    alice_p
        .send(Message::binary(Bytes::from_static(b"\x01\x00\x00\x00a->b")))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut bob_p).await,
        Message::binary(Bytes::from_static(b"\x01\x00\x00\x00a->b"))
    );
    bob_p.send(Message::text("not audio either")).await.unwrap();
    bob_p
        .send(Message::binary(Bytes::from_static(b"\x01\x00\x00\x00b->a")))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut alice_p).await,
        Message::binary(Bytes::from_static(b"\x01\x00\x00\x00b->a"))
    );
    // A second round: still binary only, in order, nothing in between.
    for i in 0..3u8 {
        let frame = vec![i; 320];
        alice_p.send(Message::text("ignored")).await.unwrap();
        alice_p.send(Message::binary(frame.clone())).await.unwrap();
        assert_eq!(
            next_message(&mut bob_p).await,
            Message::binary(frame.clone())
        );
        bob_p.send(Message::binary(frame.clone())).await.unwrap();
        assert_eq!(next_message(&mut alice_p).await, Message::binary(frame));
    }
}

#[tokio::test]
async fn closing_the_callers_socket_ends_the_call_for_the_callee() {
    let sw = TestSwitch::start().await;
    let (call_id, mut alice_n, mut bob_n, mut alice_p, mut bob_p) = mediated_call(&sw).await;
    alice_p.close(None).await.unwrap();
    expect_status(&mut bob_n, "phoneCallEnded", &api(call_id)).await;
    assert_eq!(closed(&mut bob_p).await, Some(1000));
    // A phone socket closing is the API's hang-up.
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.end_reason, EndReason::Hangup, "{record:?}");
    // Alice ended it: her notification socket is not told. The next frame
    // it gets is the next call's.
    let (carol, _ce) = sw.connect("carol").await;
    let next = carol.dial(&["alice"], None).await.unwrap();
    assert_eq!(
        next_json(&mut alice_n).await,
        incoming_frame(&api(next), CAROL_ID, "carol")
    );
}

#[tokio::test]
async fn closing_the_answer_socket_ends_the_call_for_the_caller() {
    let sw = TestSwitch::start().await;
    let (call_id, mut alice_n, _bob_n, mut alice_p, mut bob_p) = mediated_call(&sw).await;
    bob_p.close(None).await.unwrap();
    expect_status(&mut alice_n, "phoneCallEnded", &api(call_id)).await;
    assert_eq!(closed(&mut alice_p).await, Some(1000));
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.end_reason, EndReason::Hangup, "{record:?}");
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn closing_the_callers_socket_before_the_answer_cancels_the_call() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (call_id, call) = new_call();
    let mut alice_p = phone_ws(&sw, "alice", &socket_initiate_path(&call, BOB_ID))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut bob_n).await,
        incoming_frame(&call, ALICE_ID, "alice")
    );
    alice_p.close(None).await.unwrap();
    expect_status(&mut bob_n, "phoneCallEnded", &call).await;
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.end_reason, EndReason::Cancelled, "{record:?}");
    // The call is gone: answering it now finds nothing.
    let refused = ws_refused(&sw, Some("bob"), &socket_answer_path(&call), 404).await;
    assert_error(&refused, 404);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn decline_by_the_callee_closes_the_callers_socket() {
    let sw = TestSwitch::start().await;
    let mut alice_n = notification_socket(&sw, "alice").await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (call_id, call) = new_call();
    let mut alice_p = phone_ws(&sw, "alice", &socket_initiate_path(&call, BOB_ID))
        .await
        .unwrap();
    next_json(&mut bob_n).await;
    assert_ok(
        &post(
            &sw,
            Some("bob"),
            &format!("/api/v3/phone/decline/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut alice_n, "phoneCallEnded", &call).await;
    assert_eq!(closed(&mut alice_p).await, Some(1000));
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.end_reason, EndReason::Declined, "{record:?}");
}

#[tokio::test]
async fn decline_after_the_answer_closes_both_phone_sockets() {
    let sw = TestSwitch::start().await;
    let (call_id, mut alice_n, _bob_n, mut alice_p, mut bob_p) = mediated_call(&sw).await;
    let call = api(call_id);
    assert_ok(
        &post(
            &sw,
            Some("bob"),
            &format!("/api/v3/phone/decline/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut alice_n, "phoneCallEnded", &call).await;
    assert_eq!(closed(&mut alice_p).await, Some(1000));
    assert_eq!(closed(&mut bob_p).await, Some(1000));
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.end_reason, EndReason::Hangup, "{record:?}");
}

#[tokio::test]
async fn every_notification_socket_of_the_callee_is_told_of_the_answer_once() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let mut bob_n2 = notification_socket(&sw, "bob").await;
    let (call_id, call) = new_call();
    let mut alice_p = phone_ws(&sw, "alice", &socket_initiate_path(&call, BOB_ID))
        .await
        .unwrap();
    for socket in [&mut bob_n, &mut bob_n2] {
        assert_eq!(
            next_json(socket).await,
            incoming_frame(&call, ALICE_ID, "alice")
        );
    }
    let mut bob_p = phone_ws(&sw, "bob", &socket_answer_path(&call))
        .await
        .unwrap();
    assert_start_packet(&next_binary(&mut bob_p).await);
    assert_start_packet(&next_binary(&mut alice_p).await);
    alice_p.close(None).await.unwrap();
    assert_eq!(closed(&mut bob_p).await, Some(1000));
    // Each socket: one phoneCallAnswered, then phoneCallEnded, nothing else.
    for socket in [&mut bob_n, &mut bob_n2] {
        assert_eq!(
            next_json(socket).await,
            status_frame("phoneCallAnswered", &call)
        );
        assert_eq!(
            next_json(socket).await,
            status_frame("phoneCallEnded", &call)
        );
    }
    assert_eq!(
        call_record(&sw, call_id).await.end_reason,
        EndReason::Hangup
    );
}

#[tokio::test]
async fn a_notification_socket_closing_ends_the_call_it_answered() {
    let sw = TestSwitch::start().await;
    let mut alice_n = notification_socket(&sw, "alice").await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (call_id, call) = new_call();
    assert_ok(
        &post(
            &sw,
            Some("alice"),
            &initiate_path(&call, BOB_ID),
            br#"{"ipV4Addr":"10.0.0.1"}"#,
        )
        .await,
    );
    next_json(&mut bob_n).await;
    assert_ok(
        &post(
            &sw,
            Some("bob"),
            &format!("/api/v3/phone/answer/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut bob_n, "phoneCallAnswered", &call).await;
    // Bob's device goes away with its socket, and the call with it.
    bob_n.close(None).await.unwrap();
    expect_status(&mut alice_n, "phoneCallEnded", &call).await;
    let record = call_record(&sw, call_id).await;
    assert!(record.answered_at_ms.is_some(), "{record:?}");
    assert_still_serving(&sw).await;
}

// ---- between the API and QUIC clients ----

#[tokio::test]
async fn a_phone_user_answers_a_quic_caller_with_audio_both_ways() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (alice, mut ae) = sw.connect("alice").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    let call = api(call_id);
    assert_eq!(
        next_json(&mut bob_n).await,
        incoming_frame(&call, ALICE_ID, "alice")
    );
    let mut bob_p = phone_ws(&sw, "bob", &socket_answer_path(&call))
        .await
        .expect("answer socket opens");
    expect(&mut ae, "answered", |m| {
        matches!(m, ServerMessage::Answered { call_id: c, user, .. } if *c == call_id && user.name == "bob")
    })
    .await;
    let (alice_channel, _) = expect_media(&mut ae, call_id).await;
    assert_start_packet(&next_binary(&mut bob_p).await);

    // The phone socket's binary frames are the QUIC client's audio payloads...
    bob_p
        .send(Message::binary(Bytes::from_static(b"pcm from bob")))
        .await
        .unwrap();
    assert_eq!(recv_audio(&alice).await, b"pcm from bob");
    // ...and the QUIC client's payloads arrive as binary frames.
    send_audio(&alice, alice_channel, 1, b"pcm from alice");
    assert_eq!(next_binary(&mut bob_p).await, b"pcm from alice");

    // The QUIC caller hangs up: the phone side is told and its socket closed.
    alice.hangup(call_id).await.unwrap();
    expect_status(&mut bob_n, "phoneCallEnded", &call).await;
    assert_eq!(closed(&mut bob_p).await, Some(1000));
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn a_phone_user_calls_a_quic_only_callee_with_audio_both_ways() {
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let (call_id, call) = new_call();
    let mut alice_p = phone_ws(&sw, "alice", &socket_initiate_path(&call, BOB_ID))
        .await
        .expect("initiate socket opens");
    let incoming = expect(
        &mut be,
        "incoming",
        |m| matches!(m, ServerMessage::Incoming { call_id: c, .. } if *c == call_id),
    )
    .await;
    let ServerMessage::Incoming { from, .. } = incoming else {
        unreachable!()
    };
    assert_eq!(from.name, "alice");
    bob.answer(call_id).await.unwrap();
    let (bob_channel, _) = expect_media(&mut be, call_id).await;
    // The caller's socket learns the call started, as when a phone user
    // answers.
    assert_start_packet(&next_binary(&mut alice_p).await);

    alice_p
        .send(Message::binary(Bytes::from_static(b"pcm from alice")))
        .await
        .unwrap();
    assert_eq!(recv_audio(&bob).await, b"pcm from alice");
    send_audio(&bob, bob_channel, 1, b"pcm from bob");
    assert_eq!(next_binary(&mut alice_p).await, b"pcm from bob");

    // The QUIC callee hangs up: the caller's socket is closed.
    bob.hangup(call_id).await.unwrap();
    assert_eq!(closed(&mut alice_p).await, Some(1000));
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.caller.name, "alice");
    assert_eq!(record.end_reason, EndReason::Hangup);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn a_call_answered_on_a_quic_device_stops_the_notification_socket_ringing() {
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (alice, mut ae) = sw.connect("alice").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    let call = api(call_id);
    assert_eq!(
        next_json(&mut bob_n).await,
        incoming_frame(&call, ALICE_ID, "alice")
    );
    expect(
        &mut be,
        "incoming",
        |m| matches!(m, ServerMessage::Incoming { call_id: c, .. } if *c == call_id),
    )
    .await;
    bob.answer(call_id).await.unwrap();
    expect_status(&mut bob_n, "phoneCallAnswered", &call).await;
    expect(
        &mut ae,
        "answered",
        |m| matches!(m, ServerMessage::Answered { call_id: c, .. } if *c == call_id),
    )
    .await;
    // The call is the QUIC device's: answering it through the API now fails.
    let refused = ws_refused(&sw, Some("bob"), &socket_answer_path(&call), 404).await;
    assert_error(&refused, 404);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn a_phone_call_answered_on_a_quic_device_starts_the_callers_socket() {
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (call_id, call) = new_call();
    let mut alice_p = phone_ws(&sw, "alice", &socket_initiate_path(&call, BOB_ID))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut bob_n).await,
        incoming_frame(&call, ALICE_ID, "alice")
    );
    expect(
        &mut be,
        "incoming",
        |m| matches!(m, ServerMessage::Incoming { call_id: c, .. } if *c == call_id),
    )
    .await;
    bob.answer(call_id).await.unwrap();
    expect_status(&mut bob_n, "phoneCallAnswered", &call).await;
    assert_start_packet(&next_binary(&mut alice_p).await);
    let (bob_channel, _) = expect_media(&mut be, call_id).await;
    send_audio(&bob, bob_channel, 1, b"hello from the desk phone");
    assert_eq!(
        next_binary(&mut alice_p).await,
        b"hello from the desk phone"
    );
}

// ---- the direct path ----

#[tokio::test]
async fn direct_initiate_sends_the_callers_address_and_the_caller_can_cancel() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (call_id, call) = new_call();
    let answer = post(
        &sw,
        Some("alice"),
        &initiate_path(&call, BOB_ID),
        br#"{"ipV4Addr":"10.0.0.1"}"#,
    )
    .await;
    assert_ok(&answer);
    let mut expected = incoming_frame(&call, ALICE_ID, "alice");
    expected["callerAddress"] = json!({"ipV4Addr": "10.0.0.1"});
    assert_eq!(next_json(&mut bob_n).await, expected);
    // The caller gives up: the callee's socket stops ringing.
    assert_ok(
        &post(
            &sw,
            Some("alice"),
            &format!("/api/v3/phone/decline/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut bob_n, "phoneCallEnded", &call).await;
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.end_reason, EndReason::Cancelled, "{record:?}");
}

#[tokio::test]
async fn direct_initiate_passes_both_addresses() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (_, call) = new_call();
    let answer = post(
        &sw,
        Some("alice"),
        &initiate_path(&call, &BOB_ID.to_ascii_lowercase()),
        br#"{"ipV4Addr":"10.0.0.1","ipV6Addr":"fe80::1","extra":true}"#,
    )
    .await;
    assert_ok(&answer);
    let frame = next_json(&mut bob_n).await;
    assert_eq!(
        frame["callerAddress"],
        json!({"ipV4Addr": "10.0.0.1", "ipV6Addr": "fe80::1"})
    );
}

#[tokio::test]
async fn direct_answer_tells_the_callee_and_decline_by_the_callee_tells_the_caller() {
    let sw = TestSwitch::start().await;
    let mut alice_n = notification_socket(&sw, "alice").await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (call_id, call) = new_call();
    assert_ok(
        &post(
            &sw,
            Some("alice"),
            &initiate_path(&call, BOB_ID),
            br#"{"ipV6Addr":"fe80::1"}"#,
        )
        .await,
    );
    next_json(&mut bob_n).await;
    assert_ok(
        &post(
            &sw,
            Some("bob"),
            &format!("/api/v3/phone/answer/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut bob_n, "phoneCallAnswered", &call).await;
    // The callee hangs up: the caller is told.
    assert_ok(
        &post(
            &sw,
            Some("bob"),
            &format!("/api/v3/phone/decline/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut alice_n, "phoneCallEnded", &call).await;
    let record = call_record(&sw, call_id).await;
    assert!(record.answered_at_ms.is_some(), "{record:?}");
    assert_eq!(record.end_reason, EndReason::Hangup, "{record:?}");
    // The call is over: declining it again finds nothing.
    let again = post(
        &sw,
        Some("bob"),
        &format!("/api/v3/phone/decline/{call}"),
        b"",
    )
    .await;
    assert_error(&again, 404);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn direct_decline_by_the_caller_after_the_answer_tells_the_callee() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (call_id, call) = new_call();
    assert_ok(
        &post(
            &sw,
            Some("alice"),
            &initiate_path(&call, BOB_ID),
            br#"{"ipV4Addr":"10.0.0.1"}"#,
        )
        .await,
    );
    next_json(&mut bob_n).await;
    assert_ok(
        &post(
            &sw,
            Some("bob"),
            &format!("/api/v3/phone/answer/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut bob_n, "phoneCallAnswered", &call).await;
    assert_ok(
        &post(
            &sw,
            Some("alice"),
            &format!("/api/v3/phone/decline/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut bob_n, "phoneCallEnded", &call).await;
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.end_reason, EndReason::Hangup, "{record:?}");
}

#[tokio::test]
async fn decline_by_a_stranger_is_404_and_leaves_the_call() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (_, call) = new_call();
    assert_ok(
        &post(
            &sw,
            Some("alice"),
            &initiate_path(&call, BOB_ID),
            br#"{"ipV4Addr":"10.0.0.1"}"#,
        )
        .await,
    );
    next_json(&mut bob_n).await;
    let refused = post(
        &sw,
        Some("carol"),
        &format!("/api/v3/phone/decline/{call}"),
        b"",
    )
    .await;
    assert_error(&refused, 404);
    // The call goes on: its callee answers it.
    assert_ok(
        &post(
            &sw,
            Some("bob"),
            &format!("/api/v3/phone/answer/{call}"),
            b"",
        )
        .await,
    );
    expect_status(&mut bob_n, "phoneCallAnswered", &call).await;
}

// ---- refusals ----

#[tokio::test]
async fn bad_uuids_are_400_on_every_route() {
    let sw = TestSwitch::start().await;
    let _bob_n = notification_socket(&sw, "bob").await;
    let (_, call) = new_call();
    let address = br#"{"ipV4Addr":"10.0.0.1"}"#;
    for bad in [
        "not-a-uuid",
        "bob",
        "6F0D3C2E8A7B4C1D9E2F0A1B2C3D4E5F",
        "{6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F}",
    ] {
        for path in [
            initiate_path(bad, BOB_ID),
            initiate_path(&call, bad),
            format!("/api/v3/phone/answer/{bad}"),
            format!("/api/v3/phone/decline/{bad}"),
        ] {
            let answer = post(&sw, Some("alice"), &path, address).await;
            assert_error(&answer, 400);
        }
        for path in [
            socket_initiate_path(bad, BOB_ID),
            socket_initiate_path(&call, bad),
            socket_answer_path(bad),
        ] {
            let answer = ws_refused(&sw, Some("alice"), &path, 400).await;
            assert_error(&answer, 400);
        }
        assert_still_serving(&sw).await;
    }
}

#[tokio::test]
async fn an_unknown_callee_is_400() {
    let sw = TestSwitch::start().await;
    let (_, call) = new_call();
    let nobody = api(Uuid::new_v4());
    let answer = post(
        &sw,
        Some("alice"),
        &initiate_path(&call, &nobody),
        br#"{"ipV4Addr":"10.0.0.1"}"#,
    )
    .await;
    assert_error(&answer, 400);
    let answer = ws_refused(
        &sw,
        Some("alice"),
        &socket_initiate_path(&call, &nobody),
        400,
    )
    .await;
    assert_error(&answer, 400);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn an_offline_callee_is_400_on_the_direct_path() {
    let sw = TestSwitch::start().await;
    let (_, call) = new_call();
    let answer = post(
        &sw,
        Some("alice"),
        &initiate_path(&call, BOB_ID),
        br#"{"ipV4Addr":"10.0.0.1"}"#,
    )
    .await;
    assert_error(&answer, 400);
    // Once bob is online the same call goes through.
    let mut bob_n = notification_socket(&sw, "bob").await;
    assert_ok(
        &post(
            &sw,
            Some("alice"),
            &initiate_path(&call, BOB_ID),
            br#"{"ipV4Addr":"10.0.0.1"}"#,
        )
        .await,
    );
    next_json(&mut bob_n).await;
}

#[tokio::test]
async fn an_offline_callee_is_404_user_unavailable_on_the_socket_path() {
    let sw = TestSwitch::start().await;
    let (_, call) = new_call();
    let answer = ws_refused(
        &sw,
        Some("alice"),
        &socket_initiate_path(&call, BOB_ID),
        404,
    )
    .await;
    assert_eq!(assert_error(&answer, 404), "User unavailable.");
    // Nothing was left behind: the call id is free once bob is online.
    let mut bob_n = notification_socket(&sw, "bob").await;
    let _alice_p = phone_ws(&sw, "alice", &socket_initiate_path(&call, BOB_ID))
        .await
        .expect("initiate socket opens");
    assert_eq!(
        next_json(&mut bob_n).await,
        incoming_frame(&call, ALICE_ID, "alice")
    );
}

#[tokio::test]
async fn an_initiate_body_without_an_address_is_400() {
    let sw = TestSwitch::start().await;
    let _bob_n = notification_socket(&sw, "bob").await;
    let (_, call) = new_call();
    for body in [
        &b"{}"[..],
        br#"{"ipV4Addr":4}"#,
        br#"{"ipv4addr":"10.0.0.1"}"#,
        br#"{"ipV4Addr":null}"#,
        b"",
    ] {
        let answer = post(&sw, Some("alice"), &initiate_path(&call, BOB_ID), body).await;
        assert_error(&answer, 400);
    }
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn an_initiate_body_that_is_not_json_is_400() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let (_, call) = new_call();
    // A body packed with array elements: refused before it is parsed (a
    // JSON tree of it would exceed the plugin's memory cap and take every
    // phone socket down with the instance).
    let packed = format!(
        r#"{{"ipV4Addr":"10.0.0.1","pad":[{}1]}}"#,
        "1,".repeat(300_000)
    );
    for body in [
        &b"ipV4Addr=10.0.0.1"[..],
        b"{not json",
        b"[\"10.0.0.1\"]",
        b"null",
        packed.as_bytes(),
    ] {
        let answer = post(&sw, Some("alice"), &initiate_path(&call, BOB_ID), body).await;
        assert_error(&answer, 400);
    }
    // Bob's notification socket was not closed by a failing instance.
    // Nothing rang; the call id is still free.
    assert_ok(
        &post(
            &sw,
            Some("alice"),
            &initiate_path(&call, BOB_ID),
            br#"{"ipV4Addr":"10.0.0.1"}"#,
        )
        .await,
    );
    let frame = next_json(&mut bob_n).await;
    assert_eq!(frame["contentID"], call.as_str());
}

#[tokio::test]
async fn a_busy_user_is_400() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let _carol_n = notification_socket(&sw, "carol").await;
    let active = common::connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let address = br#"{"ipV4Addr":"10.0.0.1"}"#;
    // Carol calls bob, who is in a call.
    let (_, call) = new_call();
    let answer = post(&sw, Some("carol"), &initiate_path(&call, BOB_ID), address).await;
    assert_error(&answer, 400);
    let answer = ws_refused(
        &sw,
        Some("carol"),
        &socket_initiate_path(&call, BOB_ID),
        400,
    )
    .await;
    assert_error(&answer, 400);
    // Alice, in a call, calls carol.
    let answer = post(&sw, Some("alice"), &initiate_path(&call, CAROL_ID), address).await;
    assert_error(&answer, 400);
    let answer = ws_refused(
        &sw,
        Some("alice"),
        &socket_initiate_path(&call, CAROL_ID),
        400,
    )
    .await;
    assert_error(&answer, 400);
    // Once the call is over both are free.
    alice.hangup(active).await.unwrap();
    expect(
        &mut be,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id, .. } if *call_id == active),
    )
    .await;
    assert_ok(&post(&sw, Some("carol"), &initiate_path(&call, BOB_ID), address).await);
    expect(
        &mut be,
        "incoming",
        |m| matches!(m, ServerMessage::Incoming { from, .. } if from.name == "carol"),
    )
    .await;
}

#[tokio::test]
async fn calling_yourself_is_400_on_both_paths() {
    let sw = TestSwitch::start().await;
    let _alice_n = notification_socket(&sw, "alice").await;
    let (_, call) = new_call();
    let answer = post(
        &sw,
        Some("alice"),
        &initiate_path(&call, ALICE_ID),
        br#"{"ipV4Addr":"10.0.0.1"}"#,
    )
    .await;
    assert_error(&answer, 400);
    let answer = ws_refused(
        &sw,
        Some("alice"),
        &socket_initiate_path(&call, ALICE_ID),
        400,
    )
    .await;
    assert_error(&answer, 400);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn a_call_id_in_use_is_400() {
    let sw = TestSwitch::start().await;
    let _bob_n = notification_socket(&sw, "bob").await;
    let _carol_n = notification_socket(&sw, "carol").await;
    let (_, call) = new_call();
    let address = br#"{"ipV4Addr":"10.0.0.1"}"#;
    assert_ok(&post(&sw, Some("alice"), &initiate_path(&call, BOB_ID), address).await);
    // Carol reuses the id (in either case) for her own call.
    let answer = post(
        &sw,
        Some("carol"),
        &initiate_path(&call.to_ascii_lowercase(), ALICE_ID),
        address,
    )
    .await;
    assert_error(&answer, 400);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn answering_an_unknown_call_is_404() {
    let sw = TestSwitch::start().await;
    let _bob_n = notification_socket(&sw, "bob").await;
    let (_, call) = new_call();
    let answer = post(
        &sw,
        Some("bob"),
        &format!("/api/v3/phone/answer/{call}"),
        b"",
    )
    .await;
    assert_error(&answer, 404);
    let answer = ws_refused(&sw, Some("bob"), &socket_answer_path(&call), 404).await;
    assert_error(&answer, 404);
    let answer = post(
        &sw,
        Some("bob"),
        &format!("/api/v3/phone/decline/{call}"),
        b"",
    )
    .await;
    assert_error(&answer, 404);
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn answering_by_someone_other_than_the_callee_is_404() {
    let sw = TestSwitch::start().await;
    let mut bob_n = notification_socket(&sw, "bob").await;
    let _carol_n = notification_socket(&sw, "carol").await;
    let (_, call) = new_call();
    let mut alice_p = phone_ws(&sw, "alice", &socket_initiate_path(&call, BOB_ID))
        .await
        .unwrap();
    next_json(&mut bob_n).await;
    for who in ["carol", "alice"] {
        let answer = post(&sw, Some(who), &format!("/api/v3/phone/answer/{call}"), b"").await;
        assert_error(&answer, 404);
        let answer = ws_refused(&sw, Some(who), &socket_answer_path(&call), 404).await;
        assert_error(&answer, 404);
    }
    // The callee still can.
    let mut bob_p = phone_ws(&sw, "bob", &socket_answer_path(&call))
        .await
        .expect("the callee answers");
    assert_start_packet(&next_binary(&mut alice_p).await);
    assert_start_packet(&next_binary(&mut bob_p).await);
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let sw = TestSwitch::start().await;
    let (_, call) = new_call();
    for (method, path) in [
        ("GET", "/api/v3/".to_string()),
        ("POST", "/api/v3/phone/teleport".to_string()),
        ("POST", "/api/v3/phone/decline/".to_string()),
        ("POST", format!("/api/v3/phone/answer/{call}/now")),
        ("GET", "/api/v3/notification".to_string()),
    ] {
        let answer = http1(
            sw.http(),
            method,
            &path,
            &[("authorization", &bearer("alice"))],
            b"",
        )
        .await;
        assert_error(&answer, 404);
    }
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn a_wrong_method_is_405() {
    let sw = TestSwitch::start().await;
    let (_, call) = new_call();
    for (method, path, allowed) in [
        ("GET", "/api/v3/auth/login".to_string(), "POST"),
        ("POST", "/api/v3/notification/socket".to_string(), "GET"),
        ("GET", initiate_path(&call, BOB_ID), "POST"),
        ("POST", socket_initiate_path(&call, BOB_ID), "GET"),
        ("PUT", socket_answer_path(&call), "GET"),
        ("GET", format!("/api/v3/phone/answer/{call}"), "POST"),
        ("DELETE", format!("/api/v3/phone/decline/{call}"), "POST"),
    ] {
        let answer = http1(
            sw.http(),
            method,
            &path,
            &[("authorization", &bearer("alice"))],
            b"",
        )
        .await;
        assert_error(&answer, 405);
        assert_eq!(
            answer.headers["allow"].to_str().unwrap(),
            allowed,
            "{method} {path}"
        );
    }
    assert_still_serving(&sw).await;
}

#[tokio::test]
async fn a_missing_or_invalid_bearer_token_is_401() {
    let sw = TestSwitch::start().await;
    let _bob_n = notification_socket(&sw, "bob").await;
    let (_, call) = new_call();
    let admin_token = format!("Bearer {}", sw.handle().admin_token);
    let auths: [Option<&str>; 5] = [
        None,
        Some("Bearer nope"),
        Some("Bearer"),
        Some("Basic YWxpY2U6YWxpY2UtZGVtby10b2tlbg=="),
        Some(&admin_token),
    ];
    for auth in auths {
        let headers: Vec<(&str, &str)> =
            auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        for path in [
            initiate_path(&call, BOB_ID),
            format!("/api/v3/phone/answer/{call}"),
            format!("/api/v3/phone/decline/{call}"),
        ] {
            let answer = http1(
                sw.http(),
                "POST",
                &path,
                &headers,
                br#"{"ipV4Addr":"10.0.0.1"}"#,
            )
            .await;
            assert_error(&answer, 401);
        }
        for path in [
            socket_initiate_path(&call, BOB_ID),
            socket_answer_path(&call),
            "/api/v3/notification/socket".to_string(),
        ] {
            assert_eq!(
                ws(sw.http(), &path, &headers).await.err(),
                Some(401),
                "{auth:?} {path}"
            );
        }
    }
    assert_still_serving(&sw).await;
}

// ---- records ----

#[tokio::test]
async fn a_phone_call_leaves_a_call_record() {
    let sw = TestSwitch::start().await;
    let (call_id, _alice_n, mut bob_n, mut alice_p, mut bob_p) = mediated_call(&sw).await;
    alice_p
        .send(Message::binary(Bytes::from_static(b"audio")))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut bob_p).await, b"audio");
    alice_p.close(None).await.unwrap();
    expect_status(&mut bob_n, "phoneCallEnded", &api(call_id)).await;
    let record = call_record(&sw, call_id).await;
    assert_eq!(record.call_id, call_id);
    assert_eq!(record.caller.name, "alice");
    assert_eq!(record.caller.id.to_string(), ALICE_ID.to_ascii_lowercase());
    let bob = record
        .parties
        .iter()
        .find(|p| p.user.name == "bob")
        .expect("bob is a party");
    assert!(bob.joined_at_ms.is_some(), "{record:?}");
    assert_eq!(bob.status, PartyStatus::Left, "{record:?}");
    assert!(record.answered_at_ms.is_some(), "{record:?}");
    assert!(record.media.frames_received >= 1, "{record:?}");
    assert!(record.media.frames_relayed >= 1, "{record:?}");
}
