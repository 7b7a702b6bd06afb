//! Calls over real QUIC connections: fork, answer elsewhere, decline, busy,
//! no answer, hold, DTMF, group calls, departures and idle devices.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callswitch::client::Client;
use callswitch::wire::{
    CallState, EndReason, ErrorCode, PartyStatus, RingStopReason, ServerMessage,
};
use common::*;
use tokio::net::UdpSocket;

#[tokio::test]
async fn fork_rings_every_device_and_first_answer_wins() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob1, mut b1) = sw.connect("bob").await;
    let (bob2, mut b2) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    for events in [&mut b1, &mut b2] {
        let m = expect(events, "incoming", |m| {
            matches!(m, ServerMessage::Incoming { .. })
        })
        .await;
        let ServerMessage::Incoming { from, .. } = m else {
            unreachable!()
        };
        assert_eq!(from.name, "alice");
    }
    for _ in 0..2 {
        expect(&mut ae, "ringing", |m| {
            matches!(m, ServerMessage::Ringing { .. })
        })
        .await;
    }
    bob2.answer(call_id).await.unwrap();
    let m = expect(&mut b1, "ring stopped", |m| {
        matches!(m, ServerMessage::RingStopped { .. })
    })
    .await;
    assert_eq!(
        m,
        ServerMessage::RingStopped {
            call_id,
            reason: RingStopReason::AnsweredElsewhere
        }
    );
    expect(&mut ae, "answered", |m| {
        matches!(m, ServerMessage::Answered { .. })
    })
    .await;
    let err = bob1.answer(call_id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotRinging));
    let calls = sw.admin().await.list_calls().await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state, CallState::Active);
    bob2.hangup(call_id).await.unwrap();
    let m = expect(&mut ae, "ended", |m| {
        matches!(m, ServerMessage::Ended { .. })
    })
    .await;
    assert_eq!(
        m,
        ServerMessage::Ended {
            call_id,
            reason: EndReason::Hangup
        }
    );
}

#[tokio::test]
async fn dial_by_number_and_uuid_with_chosen_call_id() {
    let sw = TestSwitch::start().await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let chosen = uuid::Uuid::new_v4();
    assert_eq!(
        alice.dial(&["+15550101"], Some(chosen)).await.unwrap(),
        chosen
    );
    expect(
        &mut be,
        "incoming",
        |m| matches!(m, ServerMessage::Incoming { call_id, .. } if *call_id == chosen),
    )
    .await;
    alice.hangup(chosen).await.unwrap();
    let bob_id = "5f1c5a1e-0000-4000-8000-000000000b0b";
    let id2 = alice.dial(&[bob_id], None).await.unwrap();
    assert_ne!(id2, chosen);
    expect(
        &mut be,
        "incoming",
        |m| matches!(m, ServerMessage::Incoming { call_id, .. } if *call_id == id2),
    )
    .await;
}

#[tokio::test]
async fn decline_from_every_device_ends_the_call() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob1, mut b1) = sw.connect("bob").await;
    let (bob2, mut b2) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    expect(&mut b1, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    expect(&mut b2, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    bob1.decline(call_id).await.unwrap();
    bob2.decline(call_id).await.unwrap();
    expect(&mut ae, "declined", |m| {
        matches!(m, ServerMessage::Declined { .. })
    })
    .await;
    let m = expect(&mut ae, "ended", |m| {
        matches!(m, ServerMessage::Ended { .. })
    })
    .await;
    assert_eq!(
        m,
        ServerMessage::Ended {
            call_id,
            reason: EndReason::Declined
        }
    );
}

#[tokio::test]
async fn busy_callee() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let call_id = carol.dial(&["bob"], None).await.unwrap();
    expect(&mut ce, "busy", |m| matches!(m, ServerMessage::Busy { .. })).await;
    let m = expect(&mut ce, "ended", |m| {
        matches!(m, ServerMessage::Ended { .. })
    })
    .await;
    assert_eq!(
        m,
        ServerMessage::Ended {
            call_id,
            reason: EndReason::Busy
        }
    );
    // Bob's devices were not disturbed.
    assert!(be
        .try_next()
        .is_none_or(|m| !matches!(m, ServerMessage::Incoming { .. })));
}

#[tokio::test]
async fn no_answer_timeout_ends_the_call() {
    let sw = TestSwitch::start_with(Knobs {
        ring_timeout_secs: 1,
        ..Knobs::default()
    })
    .await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    expect(&mut be, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    expect(&mut ae, "no answer", |m| {
        matches!(m, ServerMessage::NoAnswer { .. })
    })
    .await;
    let end = ServerMessage::Ended {
        call_id,
        reason: EndReason::NoAnswer,
    };
    assert_eq!(
        expect(&mut ae, "ended", |m| matches!(
            m,
            ServerMessage::Ended { .. }
        ))
        .await,
        end
    );
    assert_eq!(
        expect(&mut be, "ended", |m| matches!(
            m,
            ServerMessage::Ended { .. }
        ))
        .await,
        end
    );
}

#[tokio::test]
async fn caller_cancels_while_ringing() {
    let sw = TestSwitch::start().await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    expect(&mut be, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    alice.hangup(call_id).await.unwrap();
    let m = expect(&mut be, "ended", |m| {
        matches!(m, ServerMessage::Ended { .. })
    })
    .await;
    assert_eq!(
        m,
        ServerMessage::Ended {
            call_id,
            reason: EndReason::Cancelled
        }
    );
}

#[tokio::test]
async fn hold_unhold_and_dtmf() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    alice.hold(call_id).await.unwrap();
    expect(&mut be, "held", |m| matches!(m, ServerMessage::Held { .. })).await;
    expect(
        &mut be,
        "media stops",
        |m| matches!(m, ServerMessage::Media { peers, .. } if peers.is_empty()),
    )
    .await;
    let admin = sw.admin().await;
    assert_eq!(admin.list_calls().await.unwrap()[0].state, CallState::Held);
    assert_eq!(
        alice.hold(call_id).await.unwrap_err().code(),
        Some(ErrorCode::InvalidState)
    );
    alice.unhold(call_id).await.unwrap();
    expect(&mut be, "resumed", |m| {
        matches!(m, ServerMessage::Resumed { .. })
    })
    .await;
    expect_media(&mut be, call_id).await;
    assert_eq!(
        admin.list_calls().await.unwrap()[0].state,
        CallState::Active
    );
    bob.dtmf(call_id, "123#").await.unwrap();
    let m = expect(&mut ae, "dtmf", |m| matches!(m, ServerMessage::Dtmf { .. })).await;
    let ServerMessage::Dtmf { digits, user, .. } = m else {
        unreachable!()
    };
    assert_eq!((digits.as_str(), user.name.as_str()), ("123#", "bob"));
    assert_eq!(
        bob.dtmf(call_id, "9x").await.unwrap_err().code(),
        Some(ErrorCode::InvalidDtmf)
    );
}

#[tokio::test]
async fn group_call_and_invite() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    // Invite bob and carol at once.
    let call_id = alice.dial(&["bob", "carol"], None).await.unwrap();
    for (c, e) in [(&bob, &mut be), (&carol, &mut ce)] {
        expect(e, "incoming", |m| {
            matches!(
                m,
                ServerMessage::Incoming {
                    kind: callswitch::wire::CallKind::Group,
                    ..
                }
            )
        })
        .await;
        c.answer(call_id).await.unwrap();
    }
    loop {
        let (_, peers) = expect_media(&mut ae, call_id).await;
        if peers.len() == 2 {
            break;
        }
    }
    // Alice leaves; bob and carol go on.
    alice.hangup(call_id).await.unwrap();
    expect(
        &mut be,
        "alice left",
        |m| matches!(m, ServerMessage::Left { user, .. } if user.name == "alice"),
    )
    .await;
    let calls = sw.admin().await.list_calls().await.unwrap();
    assert_eq!(calls[0].state, CallState::Active);
    carol.hangup(call_id).await.unwrap();
    let m = expect(&mut be, "ended", |m| {
        matches!(m, ServerMessage::Ended { .. })
    })
    .await;
    assert_eq!(
        m,
        ServerMessage::Ended {
            call_id,
            reason: EndReason::Hangup
        }
    );

    // A 1:1 call that grows: bob adds carol.
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    bob.invite(call_id, &["carol"]).await.unwrap();
    expect(
        &mut ce,
        "incoming",
        |m| matches!(m, ServerMessage::Incoming { call_id: c, .. } if *c == call_id),
    )
    .await;
    carol.answer(call_id).await.unwrap();
    let (_, peers) = expect_media(&mut ce, call_id).await;
    assert_eq!(peers.len(), 2);
    let calls = sw.admin().await.list_calls().await.unwrap();
    assert_eq!(calls[0].kind, callswitch::wire::CallKind::Group);
    assert_eq!(
        calls[0]
            .parties
            .iter()
            .filter(|p| p.status == PartyStatus::Joined)
            .count(),
        3
    );
}

#[tokio::test]
async fn a_disconnected_device_leaves_its_calls() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    bob.close().await;
    let m = expect(&mut ae, "ended", |m| {
        matches!(m, ServerMessage::Ended { .. })
    })
    .await;
    assert_eq!(
        m,
        ServerMessage::Ended {
            call_id,
            reason: EndReason::Disconnected
        }
    );
}

/// A UDP relay between a client and the switch that can go silent, to
/// make a device vanish without closing its connection.
async fn blackhole_proxy(server: SocketAddr, silent: Arc<AtomicBool>) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    back.connect(server).await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let mut client: Option<SocketAddr> = None;
        let mut a = [0u8; 2048];
        let mut b = [0u8; 2048];
        // Bounded: the proxy stops with the test's runtime.
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { return };
                    client = Some(from);
                    if !silent.load(Ordering::Relaxed) { let _ = back.send(&a[..n]).await; }
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { return };
                    if let (Some(c), false) = (client, silent.load(Ordering::Relaxed)) {
                        let _ = front.send_to(&b[..n], c).await;
                    }
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_silent_device_times_out_and_leaves() {
    let sw = TestSwitch::start_with(Knobs {
        idle_timeout_ms: 1500,
        ..Knobs::default()
    })
    .await;
    let (alice, mut ae) = sw.connect("alice").await;
    let silent = Arc::new(AtomicBool::new(false));
    let proxy = blackhole_proxy(sw.handle().addr, silent.clone()).await;
    let mut opts = sw.options("bob-demo-token");
    opts.server = proxy;
    opts.keep_alive = Duration::from_millis(300);
    let (bob, mut be, _) = Client::connect(opts).await.unwrap();
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    silent.store(true, Ordering::Relaxed);
    let m = expect(&mut ae, "ended", |m| {
        matches!(m, ServerMessage::Ended { .. })
    })
    .await;
    assert_eq!(
        m,
        ServerMessage::Ended {
            call_id,
            reason: EndReason::Disconnected
        }
    );
    let users = sw.admin().await.list_users().await.unwrap();
    let bob_presence = users.iter().find(|u| u.user.name == "bob").unwrap();
    assert!(bob_presence.devices.is_empty(), "{bob_presence:?}");
}

#[tokio::test]
async fn users_lists_every_device() {
    let sw = TestSwitch::start().await;
    let (_b1, _) = sw.connect("bob").await;
    let (_b2, _) = sw.connect("bob").await;
    let users = sw.admin().await.list_users().await.unwrap();
    let bob = users.iter().find(|u| u.user.name == "bob").unwrap();
    assert_eq!(bob.devices.len(), 2);
    assert!(users
        .iter()
        .find(|u| u.user.name == "carol")
        .unwrap()
        .devices
        .is_empty());
}

#[tokio::test]
async fn a_user_picks_a_call_up_on_another_device_and_the_audio_follows() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (desk, mut de) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    expect(&mut de, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    desk.answer(call_id).await.unwrap();
    expect_media(&mut ae, call_id).await;
    // Bob's laptop comes online and takes the call over.
    let (laptop, mut le) = sw.connect("bob").await;
    laptop.pickup(call_id).await.unwrap();
    expect(&mut de, "left picked_up", |m| {
        matches!(
            m,
            ServerMessage::Left {
                reason: callswitch::wire::LeaveReason::PickedUp,
                ..
            }
        )
    })
    .await;
    let (laptop_channel, _) = expect_media(&mut le, call_id).await;
    let (alice_channel, peers) = expect_media(&mut ae, call_id).await;
    assert_eq!(peers, vec![laptop_channel]);
    laptop
        .send_frame(&callswitch::wire::MediaFrame {
            channel: laptop_channel,
            seq: 1,
            timestamp: 0,
            payload: bytes::Bytes::from_static(b"from-laptop"),
        })
        .unwrap();
    let frame = tokio::time::timeout(common::WAIT, alice.recv_frame())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&frame.payload[..], b"from-laptop");
    assert_eq!(frame.channel, laptop_channel);
    let _ = alice_channel;
    // The desk phone no longer has the call; picking it up twice is refused.
    assert!(desk.hangup(call_id).await.is_err());
    let again = laptop.pickup(call_id).await.unwrap_err();
    assert_eq!(
        again.code(),
        Some(callswitch::wire::ErrorCode::InvalidState)
    );
}
