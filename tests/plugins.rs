//! Policy plugins: the real compiled components shipped in `plugins/`,
//! loaded into a real switch and driven by real QUIC clients. Covers each
//! shipped policy, the chain, the sandbox surviving every fault `faulty`
//! can produce, capability grants, hot reload and the admin listing.

mod common;

use std::time::Duration;

use callswitch::plugins::builtin::BUILTINS;
use callswitch::wire::{CallEventKind, EndReason, ErrorCode, ServerMessage};
use common::*;

fn plugin(name: &str, path: &str, grants: &str, extra: &str) -> String {
    format!("\n[[plugin]]\nname = \"{name}\"\npath = \"{path}\"\nworld = \"policy\"\ngrants = [{grants}]\n{extra}\n")
}

fn faulty(mode: &str, hook: &str, on_error: &str, extra: &str) -> String {
    plugin(
        "faulty",
        "builtin:faulty",
        "\"config\"",
        &format!("on_error = \"{on_error}\"\n{extra}\n[plugin.config]\nmode = \"{mode}\"\nhook = \"{hook}\"\n"),
    )
}

async fn with_plugins(extra: String) -> TestSwitch {
    TestSwitch::start_with(Knobs {
        extra,
        ..Knobs::default()
    })
    .await
}

fn note(plugin: &str, hook: &str, verdict: &str) -> (String, String, String) {
    (plugin.into(), hook.into(), verdict.into())
}

fn builtin_bytes(name: &str) -> &'static [u8] {
    BUILTINS.iter().find(|(n, _)| *n == name).unwrap().1
}

/// The policy notes in a call's record: (plugin, hook, verdict).
async fn policy_notes(sw: &TestSwitch, call_id: uuid::Uuid) -> Vec<(String, String, String)> {
    let admin = sw.admin().await;
    // The call may still be ending (its clients just left): wait for the record.
    let mut record = admin.call_log(call_id).await;
    for _ in 0..100 {
        if record.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        record = admin.call_log(call_id).await;
    }
    let record = record.expect("the call's record");
    record
        .events
        .into_iter()
        .filter_map(|e| match e.kind {
            CallEventKind::Policy(n) => Some((n.plugin, n.hook, n.verdict)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn allowlist_decides_who_may_call_whom() {
    let sw = with_plugins(plugin(
        "allowlist",
        "builtin:allowlist",
        "\"config\"",
        "[plugin.config]\nrules = \"alice -> bob; carol -> +1555*\"\ndefault = \"deny\"\n",
    ))
    .await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, _ce) = sw.connect("carol").await;
    // Allowed: alice -> bob.
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    alice.hangup(call_id).await.unwrap();
    // Denied: bob -> alice, with the plugin's reason.
    let denied = uuid::Uuid::new_v4();
    let err = bob.dial(&["alice"], Some(denied)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(
        err.to_string().contains("bob") && err.to_string().contains("allowlist"),
        "{err}"
    );
    // Number patterns: carol may call anyone on +1555...
    let ok = carol.dial(&["alice"], None).await.unwrap();
    expect(
        &mut ae,
        "incoming from carol",
        |m| matches!(m, ServerMessage::Incoming { call_id, .. } if *call_id == ok),
    )
    .await;
    // The refused call is recorded with the verdict and who gave it.
    let record = sw.admin().await.call_log(denied).await.unwrap();
    assert_eq!(record.end_reason, EndReason::Denied);
    assert_eq!(
        policy_notes(&sw, denied).await,
        [note("allowlist", "vet-dial", "deny")]
    );
    assert_eq!(
        policy_notes(&sw, call_id).await,
        [
            note("allowlist", "vet-dial", "allow"),
            note("allowlist", "on-answer", "allow")
        ]
    );
}

#[tokio::test]
async fn max_calls_answers_busy_beyond_the_limit() {
    let sw = with_plugins(plugin(
        "max-calls",
        "builtin:max-calls",
        "\"config\", \"calls\"",
        "[plugin.config]\nper_user = 1\ntotal = 10\n",
    ))
    .await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (_carol, mut ce) = sw.connect("carol").await;
    connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    // Alice already has one live call: the second gets busy.
    let second = alice.dial(&["carol"], None).await.unwrap();
    let m = expect(
        &mut ae,
        "ended busy",
        |m| matches!(m, ServerMessage::Ended { call_id, .. } if *call_id == second),
    )
    .await;
    assert_eq!(
        m,
        ServerMessage::Ended {
            call_id: second,
            reason: EndReason::Busy
        }
    );
    expect_quiet(&mut ce, 200).await;
    assert_eq!(
        policy_notes(&sw, second).await,
        [note("max-calls", "vet-dial", "busy")]
    );
}

#[tokio::test]
async fn max_calls_total_counts_the_live_calls_of_the_whole_switch() {
    // `total` is read with `calls.count-calls(none)`: one live call fills
    // the switch, and once it ends the next call rings.
    let sw = with_plugins(plugin(
        "max-calls",
        "builtin:max-calls",
        "\"config\", \"calls\"",
        "[plugin.config]\nper_user = 0\ntotal = 1\n",
    ))
    .await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    let first = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    // Carol is in no call, but the switch is full.
    let second = carol.dial(&["alice"], None).await.unwrap();
    expect(
        &mut ce,
        "ended busy",
        |m| matches!(m, ServerMessage::Ended { call_id, reason: EndReason::Busy } if *call_id == second),
    )
    .await;
    let record = sw.admin().await;
    let mut detail = None;
    for _ in 0..100 {
        if let Ok(r) = record.call_log(second).await {
            detail = r.events.into_iter().find_map(|e| match e.kind {
                CallEventKind::Policy(n) if n.verdict == "busy" => n.detail,
                _ => None,
            });
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let detail = detail.expect("a busy note with its reason");
    assert!(
        detail.contains("carrying 1 calls (limit 1 in total)"),
        "{detail}"
    );
    // The first call ends: the count drops and carol's next call rings.
    alice.hangup(first).await.unwrap();
    expect(
        &mut be,
        "first call ended",
        |m| matches!(m, ServerMessage::Ended { call_id, .. } if *call_id == first),
    )
    .await;
    let third = carol.dial(&["bob"], None).await.unwrap();
    expect(
        &mut be,
        "incoming from carol",
        |m| matches!(m, ServerMessage::Incoming { call_id, .. } if *call_id == third),
    )
    .await;
}

#[tokio::test]
async fn business_hours_redirects_when_closed_and_the_chain_composes() {
    // Always closed: calls go to carol. The allowlist after it sees the
    // redirected target and allows alice -> carol only.
    let mut extra = plugin(
        "hours",
        "builtin:business-hours",
        "\"config\", \"clock\"",
        "[plugin.config]\nopen = \"00:00\"\nclose = \"00:00\"\ndays = \"*\"\nredirect_to = \"carol\"\n",
    );
    extra.push_str(&plugin(
        "allowlist",
        "builtin:allowlist",
        "\"config\"",
        "[plugin.config]\nrules = \"alice -> carol\"\n",
    ));
    let sw = with_plugins(extra).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let (_carol, mut ce) = sw.connect("carol").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    expect(
        &mut ce,
        "carol rings instead",
        |m| matches!(m, ServerMessage::Incoming { call_id: c, .. } if *c == call_id),
    )
    .await;
    expect_quiet(&mut be, 200).await;
    alice.hangup(call_id).await.unwrap();
    let notes = policy_notes(&sw, call_id).await;
    assert_eq!(
        notes,
        [
            note("hours", "on-dial", "redirect"),
            note("allowlist", "vet-dial", "allow")
        ]
    );
}

#[tokio::test]
async fn business_hours_lets_calls_through_when_open() {
    let sw = with_plugins(plugin(
        "hours",
        "builtin:business-hours",
        "\"config\", \"clock\"",
        "[plugin.config]\nopen = \"00:00\"\nclose = \"24:00\"\ndays = \"*\"\nredirect_to = \"carol\"\n",
    ))
    .await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    expect(
        &mut be,
        "bob rings",
        |m| matches!(m, ServerMessage::Incoming { call_id: c, .. } if *c == call_id),
    )
    .await;
}

/// Dials alice -> bob through a faulty plugin and returns the outcome,
/// then checks the switch still serves a second call.
async fn dial_through_fault(
    sw: &TestSwitch,
) -> Result<uuid::Uuid, callswitch::client::ClientError> {
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, _be) = sw.connect("bob").await;
    let result = alice.dial(&["bob"], None).await;
    // Everyone else is still served.
    let (carol, _) = sw.connect("carol").await;
    carol.ping().await.expect("the switch still serves");
    result
}

#[tokio::test]
async fn a_plugin_that_exports_vet_dial_is_asked_that_instead_of_on_dial() {
    // faulty denies in `vet-dial` alone: the switch must call that export.
    let sw = with_plugins(faulty("deny", "vet-dial", "allow", "")).await;
    let err = dial_through_fault(&sw).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("faulty says no"), "{err}");
    let info = sw.admin().await.list_plugins().await.unwrap();
    assert!(info[0].hooks.contains(&"vet-dial".to_string()), "{info:?}");
    assert!(!info[0].hooks.contains(&"on-dial".to_string()), "{info:?}");

    // A plugin without it (business-hours, always open) is still asked
    // `on-dial`.
    let sw = with_plugins(plugin(
        "hours",
        "builtin:business-hours",
        "\"config\", \"clock\"",
        "[plugin.config]\nopen = \"00:00\"\nclose = \"24:00\"\ndays = \"*\"\n",
    ))
    .await;
    let call_id = dial_through_fault(&sw).await.unwrap();
    assert_eq!(
        policy_notes(&sw, call_id).await,
        [note("hours", "on-dial", "allow")]
    );
    let info = sw.admin().await.list_plugins().await.unwrap();
    assert!(info[0].hooks.contains(&"on-dial".to_string()), "{info:?}");
}

#[tokio::test]
async fn a_trapping_plugin_fails_closed_or_open_as_configured() {
    let sw = with_plugins(faulty("trap", "on-dial", "deny", "")).await;
    let err = dial_through_fault(&sw).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("trapped"), "{err}");
    let info = sw.admin().await.list_plugins().await.unwrap();
    assert_eq!(info[0].failures, 1, "{info:?}");

    let sw = with_plugins(faulty("trap", "on-dial", "allow", "")).await;
    let call_id = dial_through_fault(&sw)
        .await
        .expect("fail open lets the call through");
    let admin = sw.admin().await;
    // (The call ended when the test's clients left; its record tells.)
    assert_eq!(
        policy_notes(&sw, call_id).await,
        [note("faulty", "vet-dial", "failed-open")]
    );
    // A failed instance is replaced by a fresh one for the next call.
    let (alice, _) = sw.connect("alice").await;
    let _ = alice.dial(&["carol"], None).await;
    let info = admin.list_plugins().await.unwrap();
    assert_eq!(info[0].failures, 2);
    assert!(info[0].instantiations >= 3, "{info:?}");
}

#[tokio::test]
async fn an_endless_loop_is_cut_at_the_deadline() {
    let sw = with_plugins(faulty("loop", "on-dial", "deny", "deadline_ms = 30")).await;
    let err = dial_through_fault(&sw).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("deadline"), "{err}");
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_cap() {
    let sw = with_plugins(faulty("oom", "on-dial", "allow", "memory_mb = 8")).await;
    dial_through_fault(&sw).await.expect("fail open");
    let sw = with_plugins(faulty("oom", "on-dial", "deny", "memory_mb = 8")).await;
    let err = dial_through_fault(&sw).await.unwrap_err();
    assert!(
        err.to_string().contains("memory") || err.to_string().contains("trapped"),
        "{err}"
    );
}

#[tokio::test]
async fn an_invalid_verdict_is_rejected() {
    let sw = with_plugins(faulty("invalid", "on-dial", "deny", "")).await;
    let err = dial_through_fault(&sw).await.unwrap_err();
    assert!(err.to_string().contains("invalid answer"), "{err}");
}

#[tokio::test]
async fn on_connect_can_refuse_a_client() {
    let sw = with_plugins(faulty("deny", "on-connect", "deny", "")).await;
    let err = callswitch::client::Client::connect(sw.options("alice-demo-token"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("faulty says no"), "{err}");
    // The admin connection is not subject to on-connect.
    sw.admin().await.stats().await.unwrap();
}

#[tokio::test]
async fn on_answer_can_refuse_and_the_call_keeps_ringing() {
    let sw = with_plugins(faulty("deny", "on-answer", "deny", "")).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    expect(&mut be, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    let err = bob.answer(call_id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    let calls = sw.admin().await.list_calls().await.unwrap();
    assert_eq!(calls[0].state, callswitch::wire::CallState::Ringing);
}

#[tokio::test]
async fn an_ungranted_import_fails_to_load_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let knobs = Knobs {
        extra: plugin("max-calls", "builtin:max-calls", "\"config\"", ""),
        ..Knobs::default()
    };
    let err = start_in(&dir, &knobs).await.err().expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("max-calls") && text.contains("callswitch:plugin/calls"),
        "{text}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_component_fails_to_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"not wasm").unwrap();
    let knobs = Knobs {
        extra: plugin("junk", "junk.wasm", "", ""),
        ..Knobs::default()
    };
    let text = start_in(&dir, &knobs)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        text.contains("junk") && text.contains("not a valid component"),
        "{text}"
    );
}

#[tokio::test]
async fn hot_reload_swaps_atomically_and_keeps_calls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.wasm");
    std::fs::write(&path, builtin_bytes("allowlist")).unwrap();
    let knobs = Knobs {
        extra: plugin(
            "policy",
            "policy.wasm",
            "\"config\"",
            "[plugin.config]\nrules = \"* -> *\"\nmode = \"deny\"\nhook = \"on-dial\"\n",
        ),
        ..Knobs::default()
    };
    let handle = start_in(&dir, &knobs).await.unwrap();
    let sw = TestSwitch {
        handle: Some(handle),
        dir,
        knobs,
    };
    let admin = sw.admin().await;
    let before = admin.list_plugins().await.unwrap().remove(0);
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let live = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;

    // A broken new version: refused, the old one keeps serving.
    std::fs::write(&path, b"garbage").unwrap();
    let err = admin.reload_plugins(Some("policy")).await.unwrap_err();
    assert!(err.to_string().contains("not a valid component"), "{err}");
    assert_eq!(admin.list_plugins().await.unwrap()[0].hash, before.hash);

    // A new version (faulty, configured to deny): swapped in.
    std::fs::write(&path, builtin_bytes("faulty")).unwrap();
    let after = admin
        .reload_plugins(Some("policy"))
        .await
        .unwrap()
        .remove(0);
    assert_ne!(after.hash, before.hash);
    let (carol, _) = sw.connect("carol").await;
    let err = carol.dial(&["alice"], None).await.unwrap_err();
    assert!(err.to_string().contains("faulty says no"), "{err}");
    // The call in progress was not dropped.
    assert!(admin
        .list_calls()
        .await
        .unwrap()
        .iter()
        .any(|c| c.call_id == live));
    alice.dtmf(live, "1").await.unwrap();
    assert_eq!(
        admin.reload_plugins(Some("nope")).await.unwrap_err().code(),
        Some(ErrorCode::BadRequest)
    );
}

#[tokio::test]
async fn a_watched_file_reloads_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watched.wasm");
    std::fs::write(&path, builtin_bytes("allowlist")).unwrap();
    let knobs = Knobs {
        extra: plugin(
            "watched",
            "watched.wasm",
            "\"config\"",
            "watch = true\n[plugin.config]\nrules = \"* -> *\"\nmode = \"deny\"\n",
        ),
        ..Knobs::default()
    };
    let handle = start_in(&dir, &knobs).await.unwrap();
    let sw = TestSwitch {
        handle: Some(handle),
        dir,
        knobs,
    };
    let admin = sw.admin().await;
    let before = admin.list_plugins().await.unwrap().remove(0).hash;
    std::fs::write(&path, builtin_bytes("faulty")).unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if admin.list_plugins().await.unwrap()[0].hash != before {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the watcher reloaded the changed file");
}

#[tokio::test]
async fn plugins_listing_shows_hash_imports_and_counters() {
    let sw = with_plugins(plugin(
        "max-calls",
        "builtin:max-calls",
        "\"config\", \"calls\"",
        "[plugin.config]\nper_user = 5\n",
    ))
    .await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let info = sw.admin().await.list_plugins().await.unwrap();
    assert_eq!(info.len(), 1);
    let p = &info[0];
    assert_eq!((p.name.as_str(), p.world.as_str()), ("max-calls", "policy"));
    assert_eq!(p.hash.len(), 64);
    assert_eq!(p.imports, ["calls", "config"]);
    assert!(p.calls >= 2, "on-dial and on-answer at least: {p:?}");
    assert_eq!(p.failures, 0);
}

#[tokio::test]
async fn events_false_spares_a_plugin_the_event_stream() {
    let with = |events: bool| {
        plugin(
            "max-calls",
            "builtin:max-calls",
            "\"config\", \"calls\"",
            &format!("events = {events}\n[plugin.config]\nper_user = 5\n"),
        )
    };
    let mut counts = Vec::new();
    for events in [true, false] {
        let sw = with_plugins(with(events)).await;
        let (alice, mut ae) = sw.connect("alice").await;
        let (bob, mut be) = sw.connect("bob").await;
        let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
        alice.hangup(call_id).await.unwrap();
        let admin = sw.admin().await;
        // Events are delivered after the fact: let the queue drain.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let info = admin.list_plugins().await.unwrap().remove(0);
        assert_eq!(info.hooks.contains(&"on-event".to_string()), events);
        counts.push(info.calls);
    }
    // on-connect x2, on-dial, on-answer without events; more with them.
    assert_eq!(counts[1], 4, "{counts:?}");
    assert!(counts[0] > counts[1], "{counts:?}");
}

#[tokio::test]
async fn calls_the_admin_places_for_a_user_skip_policy() {
    let sw = with_plugins(plugin(
        "allowlist",
        "builtin:allowlist",
        "\"config\"",
        "[plugin.config]\nrules = \"alice -> carol\"\ndefault = \"deny\"\n",
    ))
    .await;
    let (_bob, mut be) = sw.connect("bob").await;
    let (alice, _ae) = sw.connect("alice").await;
    // Alice herself may not call bob...
    assert!(alice.dial(&["bob"], None).await.is_err());
    // ...but the operator, acting as alice through the admin API, may.
    let mut opts = sw.options(&sw.handle().admin_token.clone());
    opts.act_as = Some("alice".into());
    let (admin_as_alice, _, _) = callswitch::client::Client::connect(opts).await.unwrap();
    let call_id = admin_as_alice.dial(&["bob"], None).await.unwrap();
    expect(
        &mut be,
        "incoming placed by the admin",
        |m| matches!(m, ServerMessage::Incoming { call_id: c, .. } if *c == call_id),
    )
    .await;
}
