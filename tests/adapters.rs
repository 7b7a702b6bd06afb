//! The HTTP ingress and the adapter world, driven through the real
//! compiled `adapter-probe` plugin: HTTP/1.1 and HTTP/2 routing, the
//! body cap, an adapter that traps, loops or answers nonsense, `/metrics`,
//! and a WebSocket device that calls, is called by and talks with a QUIC
//! client.

mod common;

use std::time::Duration;

use bytes::Bytes;
use callswitch::wire::{ErrorCode, MediaFrame, ServerMessage};
use common::http::{expect_json, http1, http2, next_binary, send_json, ws};
use common::{expect, expect_media, Knobs, TestSwitch};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

fn probe_knobs() -> Knobs {
    Knobs {
        extra: r#"
[[plugin]]
name = "probe"
path = "builtin:adapter-probe"
world = "adapter"
routes = ["/probe/"]
grants = ["log", "clock", "streams", "devices"]
deadline_ms = 200
"#
        .into(),
        ..Knobs::default()
    }
}

async fn probe_switch() -> TestSwitch {
    TestSwitch::start_with(probe_knobs()).await
}

#[tokio::test]
async fn requests_reach_the_adapter_over_http1_and_http2() {
    let sw = probe_switch().await;
    let addr = sw.http();
    let a = http1(
        addr,
        "POST",
        "/probe/echo?x=1",
        &[("x-test", "yes")],
        b"hello",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/probe/echo");
    assert_eq!(v["query"], "x=1");
    assert_eq!(v["body"], "hello");
    assert_eq!(v["websocket"], false);
    assert!(v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == "x-test" && h[1] == "yes"));

    let b = http2(addr, "GET", "/probe/echo", &[], b"").await;
    assert_eq!(b.status, 200, "{}", b.text());
    assert_eq!(b.json()["method"], "GET");

    // Nothing mounted there: the host answers, in JSON.
    let c = http1(addr, "GET", "/nowhere", &[], b"").await;
    assert_eq!(c.status, 404);
    assert_eq!(c.json()["error"], true);
    assert!(c.json()["reason"].as_str().unwrap().contains("/nowhere"));
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_by_the_host() {
    let sw = probe_switch().await;
    let big = vec![b'x'; 2 << 20];
    let a = http1(sw.http(), "POST", "/probe/echo", &[], &big).await;
    assert_eq!(a.status, 413, "{}", a.text());
    assert!(a.json()["reason"].as_str().unwrap().contains("larger than"));
    // The adapter still serves.
    assert_eq!(
        http1(sw.http(), "GET", "/probe/echo", &[], b"")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_adapter_that_fails_gets_a_500_and_a_fresh_instance() {
    let sw = probe_switch().await;
    let addr = sw.http();
    for (path, why) in [
        ("/probe/trap", "trapped"),
        ("/probe/loop", "deadline"),
        ("/probe/status/999", "invalid status code 999"),
        (
            "/probe/bad-upgrade",
            "neither a WebSocket upgrade nor a gRPC call",
        ),
    ] {
        let a = http1(addr, "GET", path, &[], b"").await;
        assert_eq!(a.status, 500, "{path}: {}", a.text());
        let reason = a.json()["reason"].as_str().unwrap().to_string();
        assert!(
            reason.contains("adapter `probe` failed"),
            "{path}: {reason}"
        );
        assert!(reason.contains(why), "{path}: {reason}");
        let ok = http1(addr, "GET", "/probe/echo", &[], b"").await;
        assert_eq!(ok.status, 200, "after {path}: {}", ok.text());
    }
    let m = http1(addr, "GET", "/metrics", &[], b"").await;
    let text = m.text();
    assert!(
        text.contains(r#"callswitch_plugin_failures_total{plugin="probe",world="adapter"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_calls_and_requests() {
    let sw = probe_switch().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    common::connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    http1(sw.http(), "GET", "/probe/echo", &[], b"").await;
    let m = http1(sw.http(), "GET", "/metrics", &[], b"").await;
    assert_eq!(m.status, 200);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = m.text();
    for line in [
        "callswitch_quic_connections 2",
        r#"callswitch_calls{state="active"} 1"#,
        "callswitch_call_setups_total 1",
        r#"callswitch_adapter_requests_total{adapter="probe",code="200"} 1"#,
        "# TYPE callswitch_frames_relayed_total counter",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn a_websocket_device_talks_with_a_quic_client() {
    let sw = probe_switch().await;
    let (bob, mut be) = sw.connect("bob").await;
    let mut alice = ws(sw.http(), "/probe/ws?token=alice-demo-token", &[])
        .await
        .unwrap();
    let opened = common::http::next_json(&mut alice).await;
    assert_eq!(opened["user"], "alice", "{opened}");

    // Bob (QUIC) calls alice, who is online only through the adapter.
    let call_id = bob.dial(&["alice"], None).await.unwrap();
    let incoming = expect_json(&mut alice, "incoming", |v| v["event"]["type"] == "incoming").await;
    assert_eq!(incoming["event"]["call_id"], call_id.to_string());
    send_json(
        &mut alice,
        json!({"request": {"type": "answer", "call_id": call_id}}),
    )
    .await;
    let reply = expect_json(&mut alice, "answer reply", |v| {
        v.get("reply").is_some() || v.get("error").is_some()
    })
    .await;
    assert_eq!(reply["reply"]["type"], "ok", "{reply}");
    expect(&mut be, "answered", |m| {
        matches!(m, ServerMessage::Answered { .. })
    })
    .await;
    let (bob_channel, _) = expect_media(&mut be, call_id).await;
    expect_json(&mut alice, "media", |v| {
        v["event"]["type"] == "media" && !v["event"]["peers"].as_array().unwrap().is_empty()
    })
    .await;

    send_json(&mut alice, json!({"attach": call_id})).await;
    expect_json(&mut alice, "attached", |v| v.get("attached").is_some()).await;

    // Alice's binary messages reach bob as audio frames...
    alice
        .send(Message::binary(Bytes::from_static(b"from-alice")))
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), bob.recv_frame())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&frame.payload[..], b"from-alice");
    // ...and bob's frames reach alice as binary messages, payload only.
    bob.send_frame(&MediaFrame {
        channel: bob_channel,
        seq: 1,
        timestamp: 160,
        payload: Bytes::from_static(b"from-bob"),
    })
    .unwrap();
    assert_eq!(next_binary(&mut alice).await, b"from-bob");

    // Carol calling alice finds her busy: one user, whatever the protocol.
    let (carol, mut ce) = sw.connect("carol").await;
    let c2 = carol.dial(&["alice"], None).await.unwrap();
    expect(
        &mut ce,
        "busy",
        |m| matches!(m, ServerMessage::Busy { call_id, .. } if *call_id == c2),
    )
    .await;

    // Alice's socket closing is her device going away: bob's call ends.
    alice.close(None).await.unwrap();
    expect(
        &mut be,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id: c, .. } if *c == call_id),
    )
    .await;
}

#[tokio::test]
async fn a_websocket_device_places_calls_and_bad_requests_are_named() {
    let sw = probe_switch().await;
    let (bob, mut be) = sw.connect("bob").await;
    let mut alice = ws(sw.http(), "/probe/ws?token=alice-demo-token", &[])
        .await
        .unwrap();
    common::http::next_json(&mut alice).await;
    for (request, code) in [
        (json!({"type": "teleport"}), "unknown_message"),
        (json!({"type": "answer"}), "bad_request"),
        (
            json!({"type": "hello", "version": 1, "token": "x"}),
            "bad_request",
        ),
        (json!({"type": "list_calls"}), "bad_request"),
        (
            json!({"type": "dial", "targets": ["nobody"]}),
            "unknown_user",
        ),
    ] {
        send_json(&mut alice, json!({ "request": request })).await;
        let reply = expect_json(&mut alice, "error", |v| {
            v.get("error").is_some() || v.get("reply").is_some()
        })
        .await;
        assert_eq!(reply["error"]["code"], code, "{request}: {reply}");
    }
    send_json(
        &mut alice,
        json!({"request": {"type": "dial", "targets": ["bob"]}}),
    )
    .await;
    let reply = expect_json(&mut alice, "dial reply", |v| v.get("reply").is_some()).await;
    let call_id = reply["reply"]["call_id"].as_str().unwrap().to_string();
    let incoming = expect(&mut be, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    let ServerMessage::Incoming {
        from, call_id: c, ..
    } = incoming
    else {
        unreachable!()
    };
    assert_eq!(from.name, "alice");
    assert_eq!(c.to_string(), call_id);
    bob.decline(c).await.unwrap();
    expect_json(&mut alice, "ended", |v| v["event"]["type"] == "ended").await;
}

#[tokio::test]
async fn a_bad_token_and_a_trap_on_a_stream_close_only_that_stream() {
    let sw = probe_switch().await;
    let mut stranger = ws(sw.http(), "/probe/ws?token=wrong", &[]).await.unwrap();
    let refused = common::http::next_json(&mut stranger).await;
    assert_eq!(refused["error"]["code"], "unauthorized", "{refused}");
    assert_eq!(common::http::closed(&mut stranger).await, Some(4001));

    let mut alice = ws(sw.http(), "/probe/ws?token=alice-demo-token", &[])
        .await
        .unwrap();
    common::http::next_json(&mut alice).await;
    let admin = sw.admin().await;
    let online = |users: &[callswitch::wire::UserPresence]| {
        users
            .iter()
            .find(|u| u.user.name == "alice")
            .map(|u| u.devices.len())
            .unwrap_or(0)
    };
    assert_eq!(online(&admin.list_users().await.unwrap()), 1);
    alice.send(Message::text("\"trap\"")).await.unwrap();
    // The instance failed: its streams are closed and its devices gone.
    assert_eq!(common::http::closed(&mut alice).await, Some(1011));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while online(&admin.list_users().await.unwrap()) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice's adapter device was not closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Everyone else is served as before.
    assert_eq!(
        http1(sw.http(), "GET", "/probe/echo", &[], b"")
            .await
            .status,
        200
    );
    let mut again = ws(sw.http(), "/probe/ws?token=alice-demo-token", &[])
        .await
        .unwrap();
    assert_eq!(common::http::next_json(&mut again).await["user"], "alice");
}

#[tokio::test]
async fn host_errors_take_the_adapters_own_shape_when_configured() {
    let mut knobs = probe_knobs();
    knobs.extra.push_str(
        r#"failure_body = '{"status":{status},"error":"{phrase}","message":"{reason}"}'
"#,
    );
    let sw = TestSwitch::start_with(knobs).await;
    let a = http1(sw.http(), "GET", "/probe/trap", &[], b"").await;
    assert_eq!(a.status, 500);
    let v = a.json();
    assert_eq!(v["status"], 500);
    assert_eq!(v["error"], "Internal Server Error");
    assert!(v["message"].as_str().unwrap().contains("trapped"), "{v}");
    let big = vec![b'"'; 2 << 20];
    let b = http1(sw.http(), "POST", "/probe/echo", &[], &big).await;
    assert_eq!(b.status, 413);
    assert_eq!(b.json()["error"], "Payload Too Large");
}

#[tokio::test]
async fn an_adapter_reloads_and_its_old_streams_are_closed() {
    let sw = probe_switch().await;
    let mut alice = ws(sw.http(), "/probe/ws?token=alice-demo-token", &[])
        .await
        .unwrap();
    common::http::next_json(&mut alice).await;
    let admin = sw.admin().await;
    let reloaded = admin.reload_plugins(Some("probe")).await.unwrap();
    assert_eq!(reloaded.len(), 1);
    assert_eq!(reloaded[0].world, "adapter");
    assert_eq!(reloaded[0].hooks, vec!["/probe/".to_string()]);
    // The new instance knows nothing of the old one's sockets.
    assert_eq!(common::http::closed(&mut alice).await, Some(1011));
    assert_eq!(
        http1(sw.http(), "GET", "/probe/echo", &[], b"")
            .await
            .status,
        200
    );
    let listed = admin.list_plugins().await.unwrap();
    assert!(listed
        .iter()
        .any(|p| p.name == "probe" && p.world == "adapter"));
    assert!(admin.reload_plugins(Some("nothing")).await.is_err());
}

#[tokio::test]
async fn the_ingress_serves_https_with_the_switchs_certificate() {
    let mut knobs = probe_knobs();
    knobs.tls = true;
    let sw = TestSwitch::start_with(knobs).await;
    let fingerprint = sw.handle().fingerprint.clone();
    for h2 in [false, true] {
        let a = common::http::https(sw.http(), &fingerprint, h2, "/probe/echo").await;
        assert_eq!(a.status, 200, "h2={h2}: {}", a.text());
        assert_eq!(a.json()["method"], "GET");
    }
    // Cleartext is not served on a TLS ingress.
    let tcp = tokio::net::TcpStream::connect(sw.http()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri("/probe/echo")
        .header("host", "x")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert!(tokio::time::timeout(common::WAIT, send.send_request(req))
        .await
        .expect("an answer or an error in time")
        .is_err());
}

// On the test's one-thread runtime: the spinning adapter yields every few
// milliseconds, so the switch goes on meanwhile.
#[tokio::test]
async fn a_device_whose_adapter_falls_behind_on_events_is_closed_after_its_queued_events() {
    let mut knobs = probe_knobs();
    knobs.extra = knobs
        .extra
        .replace("deadline_ms = 200", "deadline_ms = 5000");
    knobs.max_queued_events = 4;
    let sw = TestSwitch::start_with(knobs).await;
    let (bob, _be) = sw.connect("bob").await;
    let mut alice = ws(sw.http(), "/probe/ws?token=alice-demo-token", &[])
        .await
        .unwrap();
    let opened = common::http::next_json(&mut alice).await;
    assert_eq!(opened["user"], "alice", "{opened}");

    // The adapter is busy for 3 s: its event pump cannot deliver.
    let addr = sw.http();
    let busy = tokio::spawn(async move { http1(addr, "GET", "/probe/spin/3000", &[], b"").await });
    // Meanwhile bob sends alice messages, one event each. Once the adapter
    // is busy, its queue (4) overflows and alice's device is closed on the
    // switch: bob's next message finds her unavailable.
    let mut delivered = 0;
    let mut refused = false;
    for seq in 0..1000 {
        match bob.message("alice", json!({"seq": seq})).await {
            Ok(()) => delivered += 1,
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::Unavailable), "{e}");
                refused = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(refused, "alice was never closed ({delivered} delivered)");
    assert_eq!(busy.await.unwrap().status, 200);

    // Once free, the adapter gets the events queued before the overflow,
    // in order, then the device's `closed` with the reason.
    let mut seqs = Vec::new();
    let closed = loop {
        let v = expect_json(&mut alice, "events", |v| v.get("event").is_some()).await;
        match v["event"]["type"].as_str() {
            Some("message") => seqs.push(v["event"]["body"]["seq"].as_u64().unwrap()),
            Some("closed") => break v,
            _ => {}
        }
    };
    assert!(
        closed["event"]["reason"]
            .as_str()
            .unwrap()
            .contains("event queue full"),
        "{closed}"
    );
    // Nothing it was given is lost or reordered: a prefix of what bob sent
    // (at least what the queue held), without gaps.
    assert!(seqs.len() >= 4 && seqs.len() <= delivered, "{seqs:?}");
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());

    // The switch counts it, and goes on serving: alice connects again.
    let metrics = http1(sw.http(), "GET", "/metrics", &[], b"").await;
    assert!(
        metrics
            .text()
            .contains("callswitch_adapter_devices_cut_off_total 1"),
        "{}",
        metrics.text()
    );
    let mut again = ws(sw.http(), "/probe/ws?token=alice-demo-token", &[])
        .await
        .unwrap();
    assert_eq!(common::http::next_json(&mut again).await["user"], "alice");
    bob.message("alice", json!({"seq": 99})).await.unwrap();
}
