//! Bad input on the control stream: each case gets a specific error to
//! that client alone, and the switch and other calls keep going.

mod common;

use std::sync::Arc;
use std::time::Duration;

use callswitch::client::{client_config, Client, Events};
use callswitch::wire::{
    encode_frame, ClientFrame, ErrorCode, Request, ServerMessage, PROTOCOL_VERSION,
};
use common::*;

/// Waits for an error event (a reply whose `req` could not be read, or one
/// to a raw frame) with this code.
async fn expect_error(events: &mut Events, code: ErrorCode) -> ServerMessage {
    expect(
        events,
        &format!("error {code}"),
        |m| matches!(m, ServerMessage::Error { code: c, .. } if *c == code),
    )
    .await
}

/// A call in progress that must survive whatever the test throws at the switch.
struct Bystanders {
    alice: Client,
    bob: Client,
    call_id: uuid::Uuid,
}

impl Bystanders {
    async fn start(sw: &TestSwitch) -> Self {
        let (alice, mut ae) = sw.connect("alice").await;
        let (bob, mut be) = sw.connect("bob").await;
        let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
        Bystanders {
            alice,
            bob,
            call_id,
        }
    }

    async fn still_fine(&self, sw: &TestSwitch) {
        self.alice
            .dtmf(self.call_id, "1")
            .await
            .expect("caller still served");
        self.bob.ping().await.expect("callee still served");
        let calls = sw.admin().await.list_calls().await.unwrap();
        assert!(
            calls.iter().any(|c| c.call_id == self.call_id),
            "call still live"
        );
    }
}

#[tokio::test]
async fn malformed_json_frame() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    let (carol, mut ce) = sw.connect("carol").await;
    carol
        .send_raw(&encode_frame(b"{not json").unwrap())
        .await
        .unwrap();
    let m = expect_error(&mut ce, ErrorCode::MalformedFrame).await;
    assert!(matches!(m, ServerMessage::Error { req: None, .. }));
    carol.ping().await.expect("the connection stays usable");
    others.still_fine(&sw).await;
}

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    let (carol, mut ce) = sw.connect("carol").await;
    carol.send_raw(&(1u32 << 20).to_be_bytes()).await.unwrap();
    let m = expect_error(&mut ce, ErrorCode::FrameTooLarge).await;
    let ServerMessage::Error { message, .. } = m else {
        unreachable!()
    };
    assert!(message.contains("1048576"), "{message}");
    let closed = tokio::time::timeout(WAIT, carol.connection().closed()).await;
    assert!(closed.is_ok(), "connection closed after losing framing");
    others.still_fine(&sw).await;
}

#[tokio::test]
async fn unknown_message_type_and_bad_fields() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    let (carol, mut ce) = sw.connect("carol").await;
    carol
        .send_raw(&encode_frame(br#"{"type":"teleport","req":77}"#).unwrap())
        .await
        .unwrap();
    let m = expect_error(&mut ce, ErrorCode::UnknownMessage).await;
    assert!(matches!(m, ServerMessage::Error { req: Some(77), .. }));
    carol
        .send_raw(&encode_frame(br#"{"type":"answer","req":78,"call_id":"not-a-uuid"}"#).unwrap())
        .await
        .unwrap();
    let m = expect_error(&mut ce, ErrorCode::BadRequest).await;
    assert!(matches!(m, ServerMessage::Error { req: Some(78), .. }));
    others.still_fine(&sw).await;
}

#[tokio::test]
async fn nothing_before_hello() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    let (raw, _events) = Client::connect_unauthenticated(&sw.options("carol-demo-token"))
        .await
        .unwrap();
    let err = raw.dial(&["alice"], None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::HelloRequired));
    let err = raw.request(Request::Stats).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::HelloRequired));
    // Hello still works afterwards, but only once.
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
        token: "carol-demo-token".into(),
        device: None,
        act_as: None,
    };
    assert!(matches!(
        raw.request(hello.clone()).await.unwrap(),
        ServerMessage::Welcome { .. }
    ));
    assert_eq!(
        raw.request(hello).await.unwrap_err().code(),
        Some(ErrorCode::AlreadyAuthenticated)
    );
    others.still_fine(&sw).await;
}

#[tokio::test]
async fn wrong_or_missing_token_is_refused_and_closed() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    for token in ["wrong", ""] {
        let err = Client::connect(sw.options(token))
            .await
            .err()
            .expect("refused");
        assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");
    }
    let (raw, _) = Client::connect_unauthenticated(&sw.options("x"))
        .await
        .unwrap();
    let _ = raw
        .request(Request::Hello {
            version: PROTOCOL_VERSION,
            token: "x".into(),
            device: None,
            act_as: None,
        })
        .await;
    assert!(
        tokio::time::timeout(WAIT, raw.connection().closed())
            .await
            .is_ok(),
        "closed after a bad token"
    );
    // A user token cannot act as someone else.
    let mut opts = sw.options("carol-demo-token");
    opts.act_as = Some("alice".into());
    assert_eq!(
        Client::connect(opts).await.err().unwrap().code(),
        Some(ErrorCode::Forbidden)
    );
    others.still_fine(&sw).await;
}

#[tokio::test]
async fn unsupported_version_is_refused() {
    let sw = TestSwitch::start().await;
    let (raw, _) = Client::connect_unauthenticated(&sw.options("carol-demo-token"))
        .await
        .unwrap();
    let err = raw
        .request(Request::Hello {
            version: 99,
            token: "carol-demo-token".into(),
            device: None,
            act_as: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnsupportedVersion));
}

#[tokio::test]
async fn answer_of_a_call_not_ringing_for_you() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    let (carol, _) = sw.connect("carol").await;
    assert_eq!(
        carol.answer(others.call_id).await.unwrap_err().code(),
        Some(ErrorCode::NotRinging)
    );
    assert_eq!(
        carol.hangup(others.call_id).await.unwrap_err().code(),
        Some(ErrorCode::NotInCall)
    );
    assert_eq!(
        carol.answer(uuid::Uuid::new_v4()).await.unwrap_err().code(),
        Some(ErrorCode::UnknownCall)
    );
    others.still_fine(&sw).await;
}

#[tokio::test]
async fn dialing_yourself_an_unknown_user_or_a_duplicate_call_id() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    let (carol, _) = sw.connect("carol").await;
    assert_eq!(
        carol.dial(&["carol"], None).await.unwrap_err().code(),
        Some(ErrorCode::CannotCallSelf)
    );
    assert_eq!(
        carol.dial(&["+15550103"], None).await.unwrap_err().code(),
        Some(ErrorCode::CannotCallSelf)
    );
    let err = carol.dial(&["zed"], None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownUser));
    assert!(err.to_string().contains("zed"), "{err}");
    assert_eq!(
        carol.dial(&[], None).await.unwrap_err().code(),
        Some(ErrorCode::BadRequest)
    );
    let err = carol
        .dial(&["alice"], Some(others.call_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::DuplicateCallId));
    others.still_fine(&sw).await;
}

#[tokio::test]
async fn user_devices_cannot_make_admin_requests_and_admins_cannot_call() {
    let sw = TestSwitch::start().await;
    let (carol, _) = sw.connect("carol").await;
    assert_eq!(
        carol.list_calls().await.unwrap_err().code(),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        carol.stats().await.unwrap_err().code(),
        Some(ErrorCode::Forbidden)
    );
    let admin = sw.admin().await;
    assert_eq!(
        admin.dial(&["bob"], None).await.unwrap_err().code(),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        admin
            .admin_hangup(uuid::Uuid::new_v4())
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::UnknownCall)
    );
}

/// A raw QUIC connection to the switch with the client's TLS settings and
/// this transport configuration.
async fn raw_connection(sw: &TestSwitch, transport: quinn::TransportConfig) -> quinn::Connection {
    let mut config = client_config(&sw.options("carol-demo-token")).unwrap();
    config.transport_config(Arc::new(transport));
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint
        .connect_with(config, sw.handle().addr, "callswitch")
        .unwrap()
        .await
        .expect("handshake")
}

fn application_close(error: quinn::ConnectionError) -> (u64, String) {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => (
            close.error_code.into_inner(),
            String::from_utf8_lossy(&close.reason).into_owned(),
        ),
        other => panic!("expected an application close, got {other}"),
    }
}

#[tokio::test]
async fn a_connection_that_never_opens_its_control_stream_is_closed() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    let conn = raw_connection(&sw, quinn::TransportConfig::default()).await;
    // The switch gives a new connection 10 s to open its control stream.
    let closed = tokio::time::timeout(Duration::from_secs(20), conn.closed())
        .await
        .expect("closed by the switch");
    let (code, reason) = application_close(closed);
    assert_eq!((code, reason.as_str()), (4, "no control stream opened"));
    others.still_fine(&sw).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_its_replies_is_cut_off() {
    let sw = TestSwitch::start().await;
    let others = Bystanders::start(&sw).await;
    let mut transport = quinn::TransportConfig::default();
    // A small window fills after a few dozen replies; the switch then
    // queues up to 1024 more before it gives up on this client.
    transport.stream_receive_window(4096u32.into());
    let conn = raw_connection(&sw, transport).await;
    let (mut send, _recv_never_read) = conn.open_bi().await.unwrap();
    let hello = ClientFrame {
        req: 1,
        request: Request::Hello {
            version: PROTOCOL_VERSION,
            token: "carol-demo-token".into(),
            device: None,
            act_as: None,
        },
    };
    send.write_all(&encode_frame(&hello.to_json()).unwrap())
        .await
        .unwrap();
    let mut req = 2;
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            let ping = ClientFrame {
                req,
                request: Request::Ping,
            };
            req += 1;
            if send
                .write_all(&encode_frame(&ping.to_json()).unwrap())
                .await
                .is_err()
            {
                return conn.closed().await;
            }
            if req % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
    })
    .await
    .expect("cut off");
    let (code, reason) = application_close(closed);
    assert_eq!((code, reason.as_str()), (3, "control messages not read"));
    assert!(
        req > 1024,
        "cut off only after its queue filled: {req} requests"
    );
    // The switch closed it, and the device left with it.
    let admin = sw.admin().await;
    let carol_online = || async {
        let users = admin.list_users().await.unwrap();
        let carol = users
            .iter()
            .find(|u| u.user.name == "carol")
            .expect("carol");
        !carol.devices.is_empty()
    };
    tokio::time::timeout(WAIT, async {
        while carol_online().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("carol's device is gone");
    others.still_fine(&sw).await;
}
