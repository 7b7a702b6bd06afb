//! Application messages on the control stream: delivered to every device
//! of the recipient and copied to the sender's other devices; refused for
//! unknown or offline recipients; vetted by the policy chain's `on-message`.

mod common;

use callswitch::wire::{ErrorCode, ServerMessage};
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_message_reaches_every_device_and_the_senders_others() {
    let sw = TestSwitch::start().await;
    let (alice1, mut a1) = sw.connect("alice").await;
    let (_alice2, mut a2) = sw.connect("alice").await;
    let (_bob1, mut b1) = sw.connect("bob").await;
    let (_bob2, mut b2) = sw.connect("bob").await;
    let body = json!({"typ": "chat.voice.setup", "cid": "c-1", "data": {"name": "alice"}});
    alice1.message("bob", body.clone()).await.unwrap();
    for events in [&mut b1, &mut b2, &mut a2] {
        let m = expect(events, "message", |m| {
            matches!(m, ServerMessage::Message { .. })
        })
        .await;
        let ServerMessage::Message {
            from,
            to,
            body: got,
        } = m
        else {
            unreachable!()
        };
        assert_eq!((from.name.as_str(), to.name.as_str()), ("alice", "bob"));
        assert_eq!(got, body);
    }
    expect_quiet(&mut a1, 200).await;
}

#[tokio::test]
async fn messages_to_unknown_or_offline_users_are_refused() {
    let sw = TestSwitch::start().await;
    let (alice, _) = sw.connect("alice").await;
    assert_eq!(
        alice.message("zed", json!({})).await.unwrap_err().code(),
        Some(ErrorCode::UnknownUser)
    );
    assert_eq!(
        alice.message("carol", json!({})).await.unwrap_err().code(),
        Some(ErrorCode::Unavailable)
    );
    assert_eq!(
        sw.admin()
            .await
            .message("alice", json!({}))
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::Forbidden)
    );
}

#[tokio::test]
async fn on_message_can_refuse() {
    let extra = "\n[[plugin]]\nname = \"faulty\"\npath = \"builtin:faulty\"\nworld = \"policy\"\ngrants = [\"config\"]\n[plugin.config]\nmode = \"deny\"\nhook = \"on-message\"\n";
    let sw = TestSwitch::start_with(Knobs {
        extra: extra.into(),
        ..Knobs::default()
    })
    .await;
    let (alice, _) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let err = alice.message("bob", json!({"hi": 1})).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("faulty says no"), "{err}");
    expect_quiet(&mut be, 200).await;
}
