//! Call records: durable before the end is announced, complete, found by
//! `call_log` after a restart, written for every call at shutdown, and a
//! torn file left by a crash does not stop the switch.

mod common;

use std::io::Write;

use callswitch::cdr::RECORDS_FILE;
use callswitch::wire::{CallRecord, EndReason, ErrorCode, PartyStatus, ServerMessage};
use common::*;

fn records_on_disk(sw: &TestSwitch) -> Vec<CallRecord> {
    let text = std::fs::read_to_string(sw.dir.path().join(RECORDS_FILE)).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every line is a record"))
        .collect()
}

#[tokio::test]
async fn the_record_is_on_disk_before_the_end_is_announced() {
    let sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    bob.dtmf(call_id, "5").await.unwrap();
    alice.hangup(call_id).await.unwrap();
    // The hangup is acknowledged: the record must already be there.
    let recs = records_on_disk(&sw);
    assert_eq!(recs.len(), 1);
    expect(&mut be, "ended", |m| {
        matches!(m, ServerMessage::Ended { .. })
    })
    .await;
    let r = &recs[0];
    assert_eq!(r.call_id, call_id);
    assert_eq!(r.end_reason, EndReason::Hangup);
    assert_eq!(r.caller.name, "alice");
    assert_eq!(r.parties.len(), 2);
    assert!(r
        .parties
        .iter()
        .all(|p| p.status == PartyStatus::Left && p.joined_at_ms.is_some()));
    let answered = r.answered_at_ms.unwrap();
    assert!(r.created_at_ms <= answered && answered <= r.ended_at_ms);
    assert_eq!(r.duration_ms, r.ended_at_ms - answered);
    let kinds: Vec<String> = r
        .events
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // The default config's max-calls policy vetted the dial and the answer.
    assert_eq!(
        kinds,
        ["created", "policy", "ringing", "policy", "answered", "joined", "dtmf", "left", "ended"]
    );
}

#[tokio::test]
async fn call_log_finds_records_after_a_restart() {
    let mut sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    bob.hangup(call_id).await.unwrap();
    // An unanswered call is recorded too.
    let missed = alice.dial(&["carol"], None).await.unwrap();
    expect(
        &mut ae,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id, .. } if *call_id == missed),
    )
    .await;
    drop((alice, bob));
    sw.restart().await;
    let admin = sw.admin().await;
    let r = admin.call_log(call_id).await.unwrap();
    assert_eq!((r.call_id, r.end_reason), (call_id, EndReason::Hangup));
    let r = admin.call_log(missed).await.unwrap();
    assert_eq!(r.end_reason, EndReason::Unavailable);
    let err = admin.call_log(uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownCall));
    // Ids of recorded calls are not reused within a run; after a restart
    // the id space is the records'.
    assert_eq!(records_on_disk(&sw).len(), 2);
}

#[tokio::test]
async fn shutdown_ends_and_records_live_calls() {
    let mut sw = TestSwitch::start().await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    let active = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let ringing = carol.dial(&["alice"], None).await.unwrap();
    // Alice is busy: carol's call ends at once, and is recorded too.
    expect(
        &mut ce,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id, .. } if *call_id == ringing),
    )
    .await;
    sw.stop().await;
    for events in [&mut ae, &mut be] {
        let m = expect(events, "ended by shutdown", |m| {
            matches!(m, ServerMessage::Ended { .. })
        })
        .await;
        assert_eq!(
            m,
            ServerMessage::Ended {
                call_id: active,
                reason: EndReason::Shutdown
            }
        );
    }
    let recs = records_on_disk(&sw);
    assert_eq!(recs.len(), 2);
    assert!(recs
        .iter()
        .any(|r| r.call_id == active && r.end_reason == EndReason::Shutdown));
}

#[tokio::test]
async fn a_torn_record_file_is_repaired_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join(RECORDS_FILE)).unwrap();
    f.write_all(b"{\"call_id\":\"half-written").unwrap();
    drop(f);
    let config = callswitch::config::Config::parse(&config_text(&Knobs::default())).unwrap();
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
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    alice.hangup(call_id).await.unwrap();
    let recs = records_on_disk(&sw);
    assert_eq!(
        recs.len(),
        1,
        "the torn line is gone, the new record is whole"
    );
    assert_eq!(
        sw.admin().await.call_log(call_id).await.unwrap().call_id,
        call_id
    );
}
