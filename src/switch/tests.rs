//! State-machine tests of the core, without any network: each drives the
//! switch with explicit times and checks the effects it queues.

use uuid::Uuid;

use super::*;
use crate::wire::{EndReason, LeaveReason, PartyStatus, RingStopReason, Role, ServerMessage};

const RING_MS: u64 = 60_000;

fn user(n: u128, name: &str, number: &str) -> User {
    User {
        id: Uuid::from_u128(n),
        name: name.into(),
        numbers: vec![number.into()],
    }
}

fn switch() -> Switch {
    let mut d = Directory::default();
    for (n, name, num) in [
        (1, "alice", "+15550101"),
        (2, "bob", "+15550102"),
        (3, "carol", "+15550103"),
        (4, "dave", "+15550104"),
    ] {
        d.add_user(
            user(n, name, num),
            parse_token_hash(&hash_token(&format!("{name}-token"))).unwrap(),
        )
        .unwrap();
    }
    d.add_admin(parse_token_hash(&hash_token("admin-token")).unwrap())
        .unwrap();
    Switch::new(
        d,
        SwitchSettings {
            ring_timeout_ms: RING_MS,
            max_participants: 4,
            max_live_calls: 0,
        },
    )
}

/// Connects device `id` as `name`.
fn online(sw: &mut Switch, id: DeviceId, name: &str) {
    sw.connect(0, id, &format!("{name}-token"), None, None)
        .unwrap();
}

fn drain(sw: &mut Switch) -> Vec<Effect> {
    std::iter::from_fn(|| sw.poll_effect()).collect()
}

/// Messages sent to `device` in `effects`.
fn to(effects: &[Effect], device: DeviceId) -> Vec<ServerMessage> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { device: d, message } if *d == device => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn records(effects: &[Effect]) -> Vec<crate::wire::CallRecord> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Record(r) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0xca11_0000 + n)
}

fn dial(
    sw: &mut Switch,
    now: u64,
    dev: DeviceId,
    call: u128,
    targets: &[&str],
) -> Result<Uuid, SwitchError> {
    let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
    sw.dial(now, dev, id(call), &targets)
}

#[test]
fn hello_with_bad_token_or_act_as_is_refused() {
    let mut sw = switch();
    assert_eq!(
        sw.connect(0, 1, "nope", None, None),
        Err(SwitchError::Unauthorized)
    );
    assert_eq!(
        sw.connect(0, 1, "alice-token", None, Some("bob")),
        Err(SwitchError::Forbidden(
            "only the admin token may act as another user".into()
        ))
    );
    let admin = sw.connect(0, 2, "admin-token", None, None).unwrap();
    assert_eq!(admin.role, Role::Admin);
    let as_bob = sw
        .connect(0, 3, "admin-token", None, Some("+15550102"))
        .unwrap();
    assert_eq!(as_bob.user.unwrap().name, "bob");
    assert_eq!(
        sw.connect(0, 3, "bob-token", None, None),
        Err(SwitchError::AlreadyAuthenticated)
    );
    assert_eq!(
        dial(&mut sw, 0, 2, 1, &["bob"]).unwrap_err().code(),
        crate::wire::ErrorCode::Forbidden
    );
}

#[test]
fn fork_first_answer_wins_and_others_stop_ringing() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    online(&mut sw, 3, "bob");
    dial(&mut sw, 10, 1, 1, &["bob"]).unwrap();
    let fx = drain(&mut sw);
    assert!(matches!(to(&fx, 2)[0], ServerMessage::Incoming { .. }));
    assert!(matches!(to(&fx, 3)[0], ServerMessage::Incoming { .. }));
    assert_eq!(
        to(&fx, 1)
            .iter()
            .filter(|m| matches!(m, ServerMessage::Ringing { .. }))
            .count(),
        2
    );
    assert_eq!(sw.calls()[0].state, crate::wire::CallState::Ringing);

    sw.answer(20, 3, id(1)).unwrap();
    let fx = drain(&mut sw);
    assert_eq!(
        to(&fx, 2),
        vec![ServerMessage::RingStopped {
            call_id: id(1),
            reason: RingStopReason::AnsweredElsewhere
        }]
    );
    assert!(to(&fx, 1)
        .iter()
        .any(|m| matches!(m, ServerMessage::Answered { device: 3, .. })));
    let media: Vec<_> = fx
        .iter()
        .filter(|e| matches!(e, Effect::Media { .. }))
        .collect();
    assert_eq!(media.len(), 1);
    let Effect::Media { legs, .. } = media[0] else {
        unreachable!()
    };
    assert_eq!(
        legs.iter().map(|l| l.device).collect::<Vec<_>>(),
        vec![1, 3]
    );
    // Each side learns its channel and its peer's.
    let ServerMessage::Media {
        channel: a, peers, ..
    } = to(&fx, 1).last().unwrap().clone()
    else {
        panic!()
    };
    assert_eq!(peers.len(), 1);
    assert_ne!(a, peers[0].channel);
    assert_eq!(sw.calls()[0].state, crate::wire::CallState::Active);
    // The losing device can no longer answer.
    assert_eq!(sw.answer(21, 2, id(1)), Err(SwitchError::NotRinging(id(1))));

    sw.hangup(5_020, 1, id(1)).unwrap();
    let fx = drain(&mut sw);
    let recs = records(&fx);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].end_reason, EndReason::Hangup);
    assert_eq!(recs[0].duration_ms, 5_000);
    assert_eq!(
        to(&fx, 3),
        vec![ServerMessage::Ended {
            call_id: id(1),
            reason: EndReason::Hangup
        }]
    );
    // Record before the messages, media torn down.
    assert!(matches!(fx[0], Effect::Media { ref legs, .. } if legs.is_empty()));
    assert!(sw.calls().is_empty());
}

#[test]
fn decline_from_every_device_ends_the_call() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    online(&mut sw, 3, "bob");
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    drain(&mut sw);
    sw.decline(1, 2, id(1)).unwrap();
    assert!(
        records(&drain(&mut sw)).is_empty(),
        "one device still rings"
    );
    sw.decline(2, 3, id(1)).unwrap();
    let fx = drain(&mut sw);
    assert_eq!(records(&fx)[0].end_reason, EndReason::Declined);
    assert_eq!(
        to(&fx, 1),
        vec![
            ServerMessage::Declined {
                call_id: id(1),
                user: sw.directory().resolve("bob").unwrap().party_ref()
            },
            ServerMessage::Ended {
                call_id: id(1),
                reason: EndReason::Declined
            },
        ]
    );
    assert_eq!(
        sw.decline(3, 3, id(1)),
        Err(SwitchError::UnknownCall(id(1)))
    );
}

#[test]
fn ring_timeout_ends_with_no_answer() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    dial(&mut sw, 100, 1, 1, &["bob"]).unwrap();
    drain(&mut sw);
    assert_eq!(sw.poll_timeout(), Some(100 + RING_MS));
    sw.handle_timeout(100 + RING_MS - 1);
    assert!(drain(&mut sw).is_empty());
    sw.handle_timeout(100 + RING_MS);
    let fx = drain(&mut sw);
    assert_eq!(records(&fx)[0].end_reason, EndReason::NoAnswer);
    assert_eq!(
        to(&fx, 2),
        vec![ServerMessage::Ended {
            call_id: id(1),
            reason: EndReason::NoAnswer
        }]
    );
    assert_eq!(sw.poll_timeout(), None);
}

#[test]
fn busy_and_unavailable_callees() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    online(&mut sw, 3, "carol");
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    sw.answer(1, 2, id(1)).unwrap();
    drain(&mut sw);
    dial(&mut sw, 2, 3, 2, &["bob"]).unwrap();
    let fx = drain(&mut sw);
    assert!(matches!(to(&fx, 3)[0], ServerMessage::Busy { .. }));
    assert_eq!(records(&fx)[0].end_reason, EndReason::Busy);
    assert!(to(&fx, 2).is_empty(), "a busy callee is not disturbed");

    sw.disconnect(3, 2);
    let fx = drain(&mut sw);
    assert_eq!(records(&fx)[0].end_reason, EndReason::Disconnected);
    dial(&mut sw, 4, 3, 3, &["bob"]).unwrap();
    assert_eq!(
        records(&drain(&mut sw))[0].end_reason,
        EndReason::Unavailable
    );
}

#[test]
fn caller_cancel_while_ringing() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    drain(&mut sw);
    sw.hangup(5, 1, id(1)).unwrap();
    let fx = drain(&mut sw);
    assert_eq!(records(&fx)[0].end_reason, EndReason::Cancelled);
    assert_eq!(
        to(&fx, 2),
        vec![ServerMessage::Ended {
            call_id: id(1),
            reason: EndReason::Cancelled
        }]
    );
}

#[test]
fn bad_requests_get_typed_errors() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    assert_eq!(
        dial(&mut sw, 0, 1, 1, &["zed"]),
        Err(SwitchError::UnknownUser("zed".into()))
    );
    assert_eq!(
        dial(&mut sw, 0, 1, 1, &["alice"]),
        Err(SwitchError::CannotCallSelf)
    );
    assert_eq!(dial(&mut sw, 0, 1, 1, &[]), Err(SwitchError::NoTargets));
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    assert_eq!(
        dial(&mut sw, 0, 2, 1, &["alice"]),
        Err(SwitchError::DuplicateCallId(id(1)))
    );
    assert_eq!(sw.answer(0, 1, id(1)), Err(SwitchError::NotRinging(id(1))));
    assert_eq!(sw.answer(0, 2, id(9)), Err(SwitchError::UnknownCall(id(9))));
    assert_eq!(
        sw.set_hold(0, 2, id(1), true),
        Err(SwitchError::NotInCall(id(1)))
    );
    assert_eq!(
        sw.dtmf(0, 1, id(1), "12x"),
        Err(SwitchError::InvalidDtmf("12x".into()))
    );
    sw.hangup(1, 1, id(1)).unwrap();
    // Ended ids are never reused.
    assert_eq!(
        dial(&mut sw, 2, 1, 1, &["bob"]),
        Err(SwitchError::DuplicateCallId(id(1)))
    );
}

#[test]
fn hold_unhold_and_dtmf() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    sw.answer(1, 2, id(1)).unwrap();
    drain(&mut sw);
    sw.set_hold(2, 1, id(1), true).unwrap();
    let fx = drain(&mut sw);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Media { legs, .. } if legs.is_empty())));
    assert!(to(&fx, 2)
        .iter()
        .any(|m| matches!(m, ServerMessage::Held { .. })));
    assert_eq!(sw.calls()[0].state, crate::wire::CallState::Held);
    assert_eq!(
        sw.set_hold(3, 1, id(1), true),
        Err(SwitchError::InvalidState(
            "the call is already on hold".into()
        ))
    );
    sw.set_hold(4, 1, id(1), false).unwrap();
    let fx = drain(&mut sw);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Media { legs, .. } if legs.len() == 2)));
    sw.dtmf(5, 1, id(1), "12#").unwrap();
    let fx = drain(&mut sw);
    assert!(matches!(&to(&fx, 2)[0], ServerMessage::Dtmf { digits, .. } if digits == "12#"));
    sw.hangup(6, 2, id(1)).unwrap();
    let rec = records(&drain(&mut sw)).remove(0);
    let kinds: Vec<String> = rec
        .events
        .iter()
        .map(|e| {
            serde_json::to_value(&e.kind).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        ["created", "ringing", "answered", "joined", "held", "resumed", "dtmf", "left", "ended"]
    );
}

#[test]
fn group_call_mesh_and_departures() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    online(&mut sw, 3, "carol");
    dial(&mut sw, 0, 1, 1, &["bob", "carol"]).unwrap();
    sw.answer(1, 2, id(1)).unwrap();
    sw.answer(2, 3, id(1)).unwrap();
    let fx = drain(&mut sw);
    let last_legs = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Media { legs, .. } => Some(legs.len()),
            _ => None,
        })
        .next_back();
    assert_eq!(last_legs, Some(3));
    // Alice leaves: bob and carol go on.
    sw.hangup(3, 1, id(1)).unwrap();
    let fx = drain(&mut sw);
    assert!(records(&fx).is_empty());
    assert!(to(&fx, 2)
        .iter()
        .any(|m| matches!(m, ServerMessage::Left { .. })));
    assert_eq!(sw.calls()[0].state, crate::wire::CallState::Active);
    sw.disconnect(4, 3);
    let rec = records(&drain(&mut sw)).remove(0);
    assert_eq!(rec.end_reason, EndReason::Disconnected);
    assert_eq!(rec.kind, crate::wire::CallKind::Group);
}

#[test]
fn invite_adds_a_party_to_a_running_call() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    online(&mut sw, 3, "carol");
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    sw.answer(1, 2, id(1)).unwrap();
    drain(&mut sw);
    assert_eq!(
        sw.invite(2, 1, id(1), &["bob".into()]),
        Err(SwitchError::InvalidState(
            "`bob` is already in the call".into()
        ))
    );
    sw.invite(2, 2, id(1), &["carol".into()]).unwrap();
    let fx = drain(&mut sw);
    assert!(matches!(
        to(&fx, 3)[0],
        ServerMessage::Incoming {
            kind: crate::wire::CallKind::Group,
            ..
        }
    ));
    sw.answer(3, 3, id(1)).unwrap();
    let fx = drain(&mut sw);
    let ServerMessage::Media { peers, .. } = to(&fx, 3).last().unwrap().clone() else {
        panic!()
    };
    assert_eq!(peers.len(), 2);
    assert_eq!(
        sw.calls()[0]
            .parties
            .iter()
            .filter(|p| p.status == PartyStatus::Joined)
            .count(),
        3
    );
}

#[test]
fn participant_limit_and_duplicate_targets() {
    let mut sw = switch();
    for (dev, name) in [(1, "alice"), (2, "bob"), (3, "carol"), (4, "dave")] {
        online(&mut sw, dev, name);
    }
    dial(&mut sw, 0, 1, 1, &["bob", "carol", "bob"]).unwrap();
    assert_eq!(sw.calls()[0].parties.len(), 3, "duplicate targets collapse");
    assert_eq!(sw.invite(1, 1, id(1), &["dave".into()]), Ok(()));
    let mut small = Switch::new(
        sw.directory().clone(),
        SwitchSettings {
            ring_timeout_ms: RING_MS,
            max_participants: 2,
            max_live_calls: 0,
        },
    );
    online(&mut small, 1, "alice");
    assert_eq!(
        dial(&mut small, 0, 1, 1, &["bob", "carol"]),
        Err(SwitchError::TooManyParticipants(2))
    );
}

#[test]
fn shutdown_ends_and_records_every_call() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    online(&mut sw, 3, "carol");
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    sw.answer(1, 2, id(1)).unwrap();
    online(&mut sw, 4, "dave");
    dial(&mut sw, 2, 3, 2, &["dave"]).unwrap();
    drain(&mut sw);
    sw.shutdown(9);
    let fx = drain(&mut sw);
    let recs = records(&fx);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r.end_reason == EndReason::Shutdown));
    assert!(sw.calls().is_empty());
    assert_eq!(sw.counts().calls_ended, 2);
}

#[test]
fn admin_hangup_and_presence() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    let users = sw.users();
    let bob = users.iter().find(|u| u.user.name == "bob").unwrap();
    assert_eq!(bob.devices[0].calls, vec![id(1)]);
    sw.end_call(1, id(1), EndReason::Admin).unwrap();
    assert_eq!(records(&drain(&mut sw))[0].end_reason, EndReason::Admin);
    assert_eq!(
        sw.end_call(1, id(1), EndReason::Admin),
        Err(SwitchError::UnknownCall(id(1)))
    );
    assert!(sw
        .users()
        .iter()
        .all(|u| u.devices.iter().all(|d| d.calls.is_empty())));
}

#[test]
fn admission_control_refuses_new_calls_at_the_limit() {
    let mut sw = Switch::new(
        switch().directory().clone(),
        SwitchSettings {
            ring_timeout_ms: RING_MS,
            max_participants: 4,
            max_live_calls: 1,
        },
    );
    for (dev, name) in [(1, "alice"), (2, "bob"), (3, "carol"), (4, "dave")] {
        online(&mut sw, dev, name);
    }
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    assert_eq!(
        dial(&mut sw, 0, 3, 2, &["dave"]),
        Err(SwitchError::Overloaded(1))
    );
    assert_eq!(
        SwitchError::Overloaded(1).code(),
        crate::wire::ErrorCode::Overloaded
    );
    sw.hangup(1, 1, id(1)).unwrap();
    dial(&mut sw, 2, 3, 3, &["dave"]).unwrap();
}

#[test]
fn blind_transfer_rings_the_target_and_releases_the_transferrer() {
    let mut sw = switch();
    for (dev, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
        online(&mut sw, dev, name);
    }
    dial(&mut sw, 0, 1, 1, &["bob"]).unwrap();
    sw.answer(1, 2, id(1)).unwrap();
    drain(&mut sw);
    // Bob hands alice over to carol.
    sw.transfer(2, id(1), Uuid::from_u128(2), "carol").unwrap();
    let fx = drain(&mut sw);
    assert!(matches!(to(&fx, 3)[0], ServerMessage::Incoming { .. }));
    assert!(to(&fx, 2).iter().any(|m| matches!(
        m,
        ServerMessage::Left {
            reason: LeaveReason::Transferred,
            ..
        }
    )));
    assert!(
        records(&fx).is_empty(),
        "the call goes on while carol rings"
    );
    sw.answer(3, 3, id(1)).unwrap();
    assert_eq!(sw.calls()[0].state, crate::wire::CallState::Active);
    assert_eq!(
        sw.transfer(4, id(1), Uuid::from_u128(2), "carol"),
        Err(SwitchError::InvalidState(
            "the transferring user is not joined to the call".into()
        ))
    );
}

#[test]
fn pickup_moves_a_users_leg_to_another_of_their_devices() {
    let mut sw = switch();
    online(&mut sw, 1, "alice");
    online(&mut sw, 2, "bob");
    online(&mut sw, 3, "bob");
    dial(&mut sw, 10, 1, 1, &["bob"]).unwrap();
    sw.answer(20, 2, id(1)).unwrap();
    drain(&mut sw);
    // Not in the call, or already there: refused, nothing changes.
    online(&mut sw, 4, "carol");
    assert!(matches!(
        sw.pickup(25, 4, id(1)),
        Err(SwitchError::NotInCall(_))
    ));
    assert!(matches!(
        sw.pickup(25, 2, id(1)),
        Err(SwitchError::InvalidState(_))
    ));
    assert!(matches!(
        sw.pickup(25, 3, id(9)),
        Err(SwitchError::UnknownCall(_))
    ));
    assert!(drain(&mut sw).is_empty());

    sw.pickup(30, 3, id(1)).unwrap();
    let fx = drain(&mut sw);
    // The device that lost the leg is told; the audio now runs 1 <-> 3.
    assert!(to(&fx, 2).iter().any(|m| matches!(
        m,
        ServerMessage::Left {
            reason: LeaveReason::PickedUp,
            ..
        }
    )));
    let Some(Effect::Media { legs, .. }) = fx.iter().find(|e| matches!(e, Effect::Media { .. }))
    else {
        panic!("no media effect in {fx:?}")
    };
    let mut devices: Vec<_> = legs.iter().map(|l| l.device).collect();
    devices.sort();
    assert_eq!(devices, vec![1, 3]);
    assert!(to(&fx, 1)
        .iter()
        .any(|m| matches!(m, ServerMessage::Media { peers, .. } if peers.len() == 1)));
    // Device 2 has no part in the call any more; device 3 hangs it up.
    assert!(sw.hangup(40, 2, id(1)).is_err());
    sw.hangup(40, 3, id(1)).unwrap();
    let fx = drain(&mut sw);
    let record = &records(&fx)[0];
    assert_eq!(record.end_reason, crate::wire::EndReason::Hangup);
    assert!(record
        .events
        .iter()
        .any(|e| matches!(e.kind, crate::wire::CallEventKind::Joined { device: 3, .. })));
}
