//! Audio over QUIC datagrams: relayed untouched between parties, meshed in
//! group calls, stopped on hold, and bad or foreign frames dropped and
//! counted without disturbing anyone.

mod common;

use std::time::Duration;

use bytes::Bytes;
use callswitch::client::Client;
use callswitch::wire::{MediaFrame, ServerMessage};
use common::*;

fn frame(channel: u32, seq: u32, tag: &str) -> MediaFrame {
    let mut payload = vec![0u8; 160];
    payload[..tag.len()].copy_from_slice(tag.as_bytes());
    MediaFrame {
        channel,
        seq,
        timestamp: seq * 160,
        payload: Bytes::from(payload),
    }
}

async fn recv(client: &Client) -> MediaFrame {
    tokio::time::timeout(WAIT, client.recv_frame())
        .await
        .expect("a frame in time")
        .unwrap()
}

/// Receives frames until one with `tag` (earlier ones may still be in flight).
async fn recv_tagged(client: &Client, tag: &str) -> MediaFrame {
    loop {
        let f = recv(client).await;
        if f.payload.starts_with(tag.as_bytes()) {
            return f;
        }
    }
}

#[tokio::test]
async fn frames_cross_a_call_both_ways_untouched() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let (a_ch, a_peers) = expect_media(&mut ae, call_id).await;
    let (b_ch, b_peers) = expect_media(&mut be, call_id).await;
    assert_eq!((a_peers, b_peers), (vec![b_ch], vec![a_ch]));
    for seq in 0..20 {
        let sent = frame(a_ch, seq, &format!("a{seq}"));
        alice.send_frame(&sent).unwrap();
        assert_eq!(recv(&bob).await, sent, "header and payload arrive as sent");
        let back = frame(b_ch, seq, &format!("b{seq}"));
        bob.send_frame(&back).unwrap();
        assert_eq!(recv(&alice).await, back);
    }
    let stats = sw.admin().await.stats().await.unwrap();
    assert_eq!(stats.frames_relayed, 40);
    alice.hangup(call_id).await.unwrap();
    let record = sw.admin().await.call_log(call_id).await.unwrap();
    assert_eq!(record.media.frames_received, 40);
    assert_eq!(record.media.frames_relayed, 40);
}

#[tokio::test]
async fn group_audio_reaches_every_other_participant() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    let call_id = alice.dial(&["bob", "carol"], None).await.unwrap();
    for (c, e) in [(&bob, &mut be), (&carol, &mut ce)] {
        expect(e, "incoming", |m| {
            matches!(m, ServerMessage::Incoming { .. })
        })
        .await;
        c.answer(call_id).await.unwrap();
    }
    let mut channels = Vec::new();
    for e in [&mut ae, &mut be, &mut ce] {
        loop {
            let (ch, peers) = expect_media(e, call_id).await;
            if peers.len() == 2 {
                channels.push(ch);
                break;
            }
        }
    }
    let clients = [&alice, &bob, &carol];
    for (i, speaker) in clients.iter().enumerate() {
        let tag = format!("from{i}");
        speaker.send_frame(&frame(channels[i], 1, &tag)).unwrap();
        for (j, listener) in clients.iter().enumerate() {
            if i != j {
                let f = recv_tagged(listener, &tag).await;
                assert_eq!(f.channel, channels[i], "receivers can tell who spoke");
            }
        }
    }
}

#[tokio::test]
async fn held_legs_exchange_no_audio() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let (a_ch, _) = expect_media(&mut ae, call_id).await;
    alice.hold(call_id).await.unwrap();
    expect(
        &mut be,
        "media stops",
        |m| matches!(m, ServerMessage::Media { peers, .. } if peers.is_empty()),
    )
    .await;
    alice.send_frame(&frame(a_ch, 1, "held")).unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), bob.recv_frame())
            .await
            .is_err()
    );
    let admin = sw.admin().await;
    let stats = admin.stats().await.unwrap();
    assert_eq!(
        (stats.frames_relayed, stats.frames_dropped_no_route),
        (0, 1)
    );
    alice.unhold(call_id).await.unwrap();
    expect_media(&mut be, call_id).await;
    alice.send_frame(&frame(a_ch, 2, "back")).unwrap();
    assert_eq!(recv(&bob).await.seq, 2);
}

#[tokio::test]
async fn bad_and_foreign_datagrams_are_dropped_and_counted() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, _ce) = sw.connect("carol").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let (a_ch, _) = expect_media(&mut ae, call_id).await;
    // Too short for a header.
    carol.send_datagram(Bytes::from_static(b"tiny")).unwrap();
    // Carol is not in the call but uses alice's channel: not routed.
    carol.send_frame(&frame(a_ch, 1, "intruder")).unwrap();
    // A channel nobody has.
    alice.send_frame(&frame(999_999, 1, "nowhere")).unwrap();
    // The call itself keeps flowing.
    alice.send_frame(&frame(a_ch, 7, "real")).unwrap();
    let f = recv(&bob).await;
    assert!(
        f.payload.starts_with(b"real"),
        "only the real frame arrives"
    );
    let admin = sw.admin().await;
    let stats = loop {
        let s = admin.stats().await.unwrap();
        if s.frames_dropped >= 3 {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stats.frames_dropped_bad_header, 1);
    assert_eq!(stats.frames_dropped_no_route, 2);
    assert_eq!(stats.frames_relayed, 1);
}

#[tokio::test]
async fn a_receiver_that_never_reads_does_not_stall_the_others() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    let call_id = alice.dial(&["bob", "carol"], None).await.unwrap();
    for (c, e) in [(&bob, &mut be), (&carol, &mut ce)] {
        expect(e, "incoming", |m| {
            matches!(m, ServerMessage::Incoming { .. })
        })
        .await;
        c.answer(call_id).await.unwrap();
    }
    let a_ch = loop {
        let (ch, peers) = expect_media(&mut ae, call_id).await;
        if peers.len() == 2 {
            break ch;
        }
    };
    // Carol never reads a datagram; alice sends a burst far past her buffers.
    for seq in 0..3000 {
        alice.send_frame(&frame(a_ch, seq, "burst")).unwrap();
        if seq % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    alice.send_frame(&frame(a_ch, 5000, "last")).unwrap();
    let got = recv_tagged(&bob, "last").await;
    assert_eq!(got.seq, 5000, "bob still gets the newest frame");
    drop(carol);
}

#[tokio::test]
async fn at_capacity_new_calls_are_refused_and_calls_in_progress_keep_flowing() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&Knobs::default()).replace("max_live_calls = 350", "max_live_calls = 1");
    let config = callswitch::config::Config::parse(&text).unwrap();
    let handle = callswitch::server::start(&config, dir.path())
        .await
        .unwrap();
    let sw = TestSwitch {
        handle: Some(handle),
        dir,
        knobs: Knobs::default(),
    };
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, _ce) = sw.connect("carol").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let (a_ch, _) = expect_media(&mut ae, call_id).await;
    let err = carol.dial(&["alice"], None).await.unwrap_err();
    assert_eq!(err.code(), Some(callswitch::wire::ErrorCode::Overloaded));
    assert!(err.to_string().contains("capacity"), "{err}");
    for seq in 0..10 {
        alice.send_frame(&frame(a_ch, seq, "kept")).unwrap();
        assert_eq!(recv(&bob).await.seq, seq);
    }
}
