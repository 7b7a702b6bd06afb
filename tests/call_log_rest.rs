//! The `call-log-rest` adapter (TeamViewer Frontline's `POST
//! /rtc/createCall` and `GET /rtc/getCallLogById`, docs in
//! PROTOCOLS.md §5), driven through the real compiled plugin as the
//! embedded default config mounts it at `/rtc/` (`db_ids =
//! "8=alice,9=bob,12=carol"`): real HTTP/1.1 and HTTP/2 requests against a
//! real switch, whose invitees are real QUIC clients that ring, answer,
//! decline and hang up. Covers the 1:1 (MESH) and group (SFU) calls, a
//! planned call that rings nobody, the broker case (`creatorUser`), logs
//! surviving a restart, every refused request with its status and error
//! body, and bodies packed with array elements (which once ran the plugin
//! out of memory, ending every call it had placed).

mod common;

use std::time::Duration;

use callswitch::client::{Client, Events};
use callswitch::wire::{PartyStatus, ServerMessage};
use common::http::{http1, http2, Answer};
use common::{expect, expect_quiet, Knobs, TestSwitch, WAIT};
use serde_json::{json, Value};
use uuid::Uuid;

const ALICE: &str = "alice-demo-token";
const CREATE: &str = "/rtc/createCall";

/// How long a "nobody rings" check listens.
const QUIET_MS: u64 = 500;

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

/// `POST /rtc/createCall` over HTTP/1.1 with `token` (if any) and a raw body.
async fn post_raw(sw: &TestSwitch, token: Option<&str>, body: &[u8]) -> Answer {
    let bearer = token.map(auth);
    let mut headers = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b.as_str()));
    }
    http1(sw.http(), "POST", CREATE, &headers, body).await
}

/// `POST /rtc/createCall` as alice.
async fn post(sw: &TestSwitch, body: &Value) -> Answer {
    post_raw(sw, Some(ALICE), body.to_string().as_bytes()).await
}

/// Creates a call as alice; asserts it was accepted and returns the CallLog.
async fn create(sw: &TestSwitch, body: &Value) -> Value {
    let a = post(sw, body).await;
    let shown: String = body.to_string().chars().take(300).collect();
    assert_eq!(a.status, 200, "createCall {shown}: {}", a.text());
    content_type_is_json(&a);
    a.json()
}

fn content_type_is_json(a: &Answer) {
    let ct = a
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(ct.starts_with("application/json"), "content-type `{ct}`");
}

/// `GET /rtc/getCallLogById` with this raw query, as alice.
async fn get_query(sw: &TestSwitch, query: &str) -> Answer {
    let bearer = auth(ALICE);
    http1(
        sw.http(),
        "GET",
        &format!("/rtc/getCallLogById{query}"),
        &[("authorization", bearer.as_str())],
        b"",
    )
    .await
}

/// The CallLog of `call_id`; asserts it is found.
async fn get_log(sw: &TestSwitch, call_id: &str) -> Value {
    let a = get_query(sw, &format!("?callId={call_id}")).await;
    assert_eq!(a.status, 200, "getCallLogById {call_id}: {}", a.text());
    content_type_is_json(&a);
    a.json()
}

/// Polls the CallLog of `call_id` until `pred` holds (bounded by `WAIT`).
async fn wait_log(
    sw: &TestSwitch,
    call_id: &str,
    what: &str,
    mut pred: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = get_log(sw, call_id).await;
        if pred(&log) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the log is {log:#}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the log has exactly these `(type, userId)` events and
/// this status.
async fn wait_events(sw: &TestSwitch, call_id: &str, status: &str, want: &[(&str, &str)]) -> Value {
    let want = pairs(want);
    let what = format!("{status} with events {want:?}");
    wait_log(sw, call_id, &what, |log| {
        log["callStatus"] == status && events(log) == want
    })
    .await
}

/// The `(type, contact.userId)` pairs of a CallLog's `callEvents`.
fn events(log: &Value) -> Vec<(String, String)> {
    log["callEvents"]
        .as_array()
        .unwrap_or_else(|| panic!("no callEvents in {log}"))
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("?").to_string(),
                e["contact"]["userId"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Every contact of a CallLog (the creator, then the invited), by userId.
fn contacts(log: &Value) -> Vec<&Value> {
    let mut all = vec![&log["creatorContact"]];
    all.extend(log["invitedContacts"].as_array().unwrap().iter());
    all
}

/// The structural invariants of any CallLog: ids, the callId, events
/// whose ids increase and whose contacts are contacts of the log (same
/// `id`, `userId` and `userDbId`).
fn check_shape(log: &Value) {
    assert!(log["id"].as_u64().is_some_and(|id| id > 0), "{log}");
    let call_id = log["callId"].as_str().unwrap();
    assert!(Uuid::parse_str(call_id).is_ok(), "callId {call_id}");
    assert!(log["anonymousJoinAllow"].is_boolean(), "{log}");
    let contacts = contacts(log);
    for c in &contacts {
        assert!(c["id"].as_u64().is_some(), "contact {c}");
        assert!(c["userId"].is_string(), "contact {c}");
        assert!(c["userDbId"].as_i64().is_some(), "contact {c}");
    }
    let mut last = 0;
    for e in log["callEvents"].as_array().unwrap() {
        let id = e["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("event id in {e}"));
        assert!(id > last, "event ids increase: {log}");
        last = id;
        let c = &e["contact"];
        let listed = contacts.iter().find(|k| k["id"] == c["id"]);
        let listed = listed.unwrap_or_else(|| panic!("event contact {c} is not listed in {log}"));
        assert_eq!(listed["userId"], c["userId"], "{log}");
        assert_eq!(listed["userDbId"], c["userDbId"], "{log}");
    }
}

fn mesh_for(contact: Value, inform: bool) -> Value {
    json!({
        "callTitle": "Test Call",
        "callReason": "STANDARD",
        "callType": "MESH",
        "invitedContacts": [contact],
        "invitedTeams": [],
        "joinAnonymousAllowed": true,
        "informOthersDirectly": inform,
        "plannedDateTime": null,
    })
}

/// A body every error test starts from: valid, and dialling bob.
fn valid_body() -> Value {
    mesh_for(json!({"userId": "bob"}), true)
}

/// Waits for the `incoming` of `call_id` on a QUIC client; returns its caller.
async fn incoming(events: &mut Events, call_id: &str) -> String {
    let id = Uuid::parse_str(call_id).unwrap();
    match expect(
        events,
        "incoming",
        |m| matches!(m, ServerMessage::Incoming { call_id, .. } if *call_id == id),
    )
    .await
    {
        ServerMessage::Incoming { from, .. } => from.name,
        _ => unreachable!(),
    }
}

fn uuid(log: &Value) -> Uuid {
    Uuid::parse_str(log["callId"].as_str().unwrap()).unwrap()
}

/// Polls until `user` has no device labelled `label` online.
async fn wait_device_gone(admin: &Client, user: &str, label: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let users = admin.list_users().await.unwrap();
        let online = users
            .iter()
            .filter(|u| u.user.name == user)
            .flat_map(|u| u.devices.iter())
            .any(|d| d.label == label);
        if !online {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user}'s `{label}` device is still online: {users:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts an error body of the API's shape (`{"status","error",
/// "message"}`): this status, its reason phrase and a message containing
/// each of `names`.
fn assert_error_body(a: &Answer, status: u16, error: &str, names: &[&str]) -> Value {
    assert_eq!(a.status, status, "{}", a.text());
    content_type_is_json(a);
    let v = a.json();
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["error"], error, "{v}");
    let message = v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {v}"));
    for n in names {
        assert!(message.contains(n), "message does not name `{n}`: {v}");
    }
    v
}

/// Asserts the plugin's own error body: [`assert_error_body`], and the
/// request's path.
fn assert_error(a: &Answer, status: u16, error: &str, names: &[&str]) -> Value {
    let v = assert_error_body(a, status, error, names);
    assert!(
        v["path"].as_str().is_some_and(|p| p.starts_with("/rtc/")),
        "{v}"
    );
    v
}

/// After a refused request: no call was placed, and a valid request is
/// still served (a planned call, created and read back).
async fn still_serves(sw: &TestSwitch) {
    let admin = sw.admin().await;
    assert!(
        admin.list_calls().await.unwrap().is_empty(),
        "a refused request placed a call"
    );
    let log = create(sw, &mesh_for(json!({"userId": "bob"}), false)).await;
    assert_eq!(log["callStatus"], "Planned", "{log}");
    let again = get_log(sw, log["callId"].as_str().unwrap()).await;
    assert_eq!(again, log);
}

/// A `createCall` body (alice, informing) that must be refused 400 with a
/// message naming each of `names`.
async fn refused(sw: &TestSwitch, body: &[u8], names: &[&str]) {
    let a = post_raw(sw, Some(ALICE), body).await;
    let v = assert_error(&a, 400, "Bad Request", names);
    assert_eq!(v["path"], CREATE, "{v}");
}

// ---- calls ----------------------------------------------------------------

#[tokio::test]
async fn mesh_call_is_logged_from_ringing_to_ended_and_survives_a_restart() {
    let mut sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let admin = sw.admin().await;

    let body = json!({
        "callTitle": "Test Call",
        "callReason": "SERVICE_REQUEST",
        "callType": "MESH",
        "invitedContacts": [{
            "displayName": "Bob B.", "domain": "ubimax", "email": "bob@example.com",
            "phoneNumber": null, "userId": "bob"
        }],
        "invitedTeams": [],
        "joinAnonymousAllowed": true,
        "informOthersDirectly": true,
        "plannedDateTime": null,
    });
    let created = create(&sw, &body).await;
    check_shape(&created);
    let call_id = created["callId"].as_str().unwrap().to_string();
    assert_eq!(created["callStatus"], "Started", "{created:#}");
    assert_eq!(created["callTitle"], "Test Call");
    assert_eq!(created["callReason"], "SERVICE_REQUEST");
    assert_eq!(created["callType"], "MESH");
    assert_eq!(created["anonymousJoinAllow"], true);
    assert_eq!(created["creatorContact"]["userId"], "alice");
    assert_eq!(created["creatorContact"]["userDbId"], 8);
    let invited = created["invitedContacts"].as_array().unwrap();
    assert_eq!(invited.len(), 1, "{created:#}");
    assert_eq!(invited[0]["userId"], "bob");
    assert_eq!(invited[0]["userDbId"], 9);
    assert_eq!(invited[0]["displayName"], "Bob B.");
    assert_eq!(invited[0]["email"], "bob@example.com");
    assert_eq!(invited[0]["domain"], "ubimax");
    assert_eq!(
        events(&created)[..2],
        pairs(&[("Created", "alice"), ("Join", "alice")])[..],
        "{created:#}"
    );

    // Bob's QUIC client rings for the call the API created, from alice.
    assert_eq!(incoming(&mut be, &call_id).await, "alice");
    // While it rings, the log is Started with alice's events only.
    let ringing = wait_events(
        &sw,
        &call_id,
        "Started",
        &[("Created", "alice"), ("Join", "alice")],
    )
    .await;
    assert_eq!(ringing["id"], created["id"]);

    bob.answer(uuid(&created)).await.unwrap();
    let started = wait_events(
        &sw,
        &call_id,
        "Started",
        &[("Created", "alice"), ("Join", "alice"), ("Join", "bob")],
    )
    .await;
    check_shape(&started);
    // The events' contacts are the log's: bob's Join names contact bob (db id 9).
    let join_bob = &started["callEvents"][2]["contact"];
    assert_eq!(join_bob["userDbId"], 9, "{started:#}");
    assert_eq!(join_bob["id"], started["invitedContacts"][0]["id"]);
    // Alice's leg is the plugin's device, joined in the call.
    let calls = admin.list_calls().await.unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].call_id, uuid(&created));
    assert_eq!(calls[0].caller.name, "alice");

    bob.hangup(uuid(&created)).await.unwrap();
    let ended = wait_events(
        &sw,
        &call_id,
        "Ended",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Join", "bob"),
            ("Leave", "bob"),
            ("Ended", "alice"),
        ],
    )
    .await;
    check_shape(&ended);
    // The first events kept their ids.
    assert_eq!(ended["callEvents"][0]["id"], started["callEvents"][0]["id"]);
    assert_eq!(ended["callEvents"][2]["id"], started["callEvents"][2]["id"]);
    // The device the plugin dialled from is closed once the call ended.
    wait_device_gone(&admin, "alice", "call-log-rest").await;
    drop(admin);
    drop(bob);

    sw.restart().await;
    let after = get_log(&sw, &call_id).await;
    assert_eq!(after, ended, "the log changed over a restart");
    // A new call after the restart gets a new id and callId.
    let next = create(&sw, &mesh_for(json!({"userId": "bob"}), false)).await;
    assert!(
        next["id"].as_u64().unwrap() > ended["id"].as_u64().unwrap(),
        "{next}"
    );
    assert_ne!(next["callId"], ended["callId"]);
}

#[tokio::test]
async fn sfu_group_call_rings_everyone_and_follows_joins_and_leaves() {
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    // Bob by phone number, carol by db id only.
    let body = json!({
        "callTitle": "Group",
        "callType": "SFU",
        "invitedContacts": [{"phoneNumber": "+15550101"}, {"userDbId": 12}],
        "informOthersDirectly": true,
    });
    let created = create(&sw, &body).await;
    check_shape(&created);
    let call_id = created["callId"].as_str().unwrap().to_string();
    let id = uuid(&created);
    assert_eq!(created["callType"], "SFU");
    assert_eq!(created["callReason"], "STANDARD", "the default reason");
    let invited: Vec<(&Value, &Value)> = created["invitedContacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (&c["userId"], &c["userDbId"]))
        .collect();
    assert_eq!(
        invited,
        vec![(&json!("bob"), &json!(9)), (&json!("carol"), &json!(12))],
        "{created:#}"
    );

    // Both ring, as a group call.
    for events in [&mut be, &mut ce] {
        let m = expect(
            events,
            "incoming",
            |m| matches!(m, ServerMessage::Incoming { call_id, .. } if *call_id == id),
        )
        .await;
        let ServerMessage::Incoming { kind, from, .. } = m else {
            unreachable!()
        };
        assert_eq!(from.name, "alice");
        assert_eq!(kind, callswitch::wire::CallKind::Group);
    }

    bob.answer(id).await.unwrap();
    wait_events(
        &sw,
        &call_id,
        "Started",
        &[("Created", "alice"), ("Join", "alice"), ("Join", "bob")],
    )
    .await;
    carol.answer(id).await.unwrap();
    wait_events(
        &sw,
        &call_id,
        "Started",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Join", "bob"),
            ("Join", "carol"),
        ],
    )
    .await;
    // Bob leaves; the call goes on (alice's leg and carol).
    bob.hangup(id).await.unwrap();
    let after_leave = wait_events(
        &sw,
        &call_id,
        "Started",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Join", "bob"),
            ("Join", "carol"),
            ("Leave", "bob"),
        ],
    )
    .await;
    check_shape(&after_leave);
    // Carol leaves too: only the API's leg is left, the call ends.
    carol.hangup(id).await.unwrap();
    let ended = wait_events(
        &sw,
        &call_id,
        "Ended",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Join", "bob"),
            ("Join", "carol"),
            ("Leave", "bob"),
            ("Leave", "carol"),
            ("Ended", "alice"),
        ],
    )
    .await;
    check_shape(&ended);
    wait_device_gone(&sw.admin().await, "alice", "call-log-rest").await;
}

#[tokio::test]
async fn sfu_group_call_logs_a_decline_and_ends_when_the_last_invitee_leaves() {
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    let body = json!({
        "callType": "SFU",
        "invitedContacts": [{"userDbId": 12}, {"phoneNumber": "+15550101", "displayName": "Bob"}],
        "informOthersDirectly": true,
    });
    let created = create(&sw, &body).await;
    let call_id = created["callId"].as_str().unwrap().to_string();
    let id = uuid(&created);
    incoming(&mut be, &call_id).await;
    incoming(&mut ce, &call_id).await;

    carol.decline(id).await.unwrap();
    wait_events(
        &sw,
        &call_id,
        "Started",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Declined", "carol"),
        ],
    )
    .await;
    bob.answer(id).await.unwrap();
    wait_events(
        &sw,
        &call_id,
        "Started",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Declined", "carol"),
            ("Join", "bob"),
        ],
    )
    .await;
    bob.hangup(id).await.unwrap();
    let ended = wait_events(
        &sw,
        &call_id,
        "Ended",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Declined", "carol"),
            ("Join", "bob"),
            ("Leave", "bob"),
            ("Ended", "alice"),
        ],
    )
    .await;
    check_shape(&ended);
    // The declined contact is carol (db id 12), listed first as invited.
    assert_eq!(
        ended["callEvents"][2]["contact"]["userDbId"], 12,
        "{ended:#}"
    );
    assert_eq!(ended["invitedContacts"][0]["userId"], "carol");
    assert_eq!(ended["invitedContacts"][1]["displayName"], "Bob");
}

#[tokio::test]
async fn a_planned_call_rings_nobody_and_survives_a_restart() {
    let mut sw = TestSwitch::start().await;
    let (_bob, mut be) = sw.connect("bob").await;
    let mut body = mesh_for(json!({"userId": "bob", "userDbId": 9}), false);
    body["plannedDateTime"] = json!("2030-01-01T10:00:00Z");
    let created = create(&sw, &body).await;
    check_shape(&created);
    let call_id = created["callId"].as_str().unwrap().to_string();
    assert_eq!(created["callStatus"], "Planned", "{created:#}");
    assert_eq!(created["plannedDateTime"], "2030-01-01T10:00:00Z");
    assert_eq!(
        events(&created),
        pairs(&[("Created", "alice")]),
        "{created:#}"
    );
    expect_quiet(&mut be, QUIET_MS).await;
    let admin = sw.admin().await;
    assert!(admin.list_calls().await.unwrap().is_empty());
    assert_eq!(get_log(&sw, &call_id).await, created);

    // `informOthersDirectly` absent is not informing either.
    let mut quiet = mesh_for(json!({"userId": "bob"}), false);
    quiet
        .as_object_mut()
        .unwrap()
        .remove("informOthersDirectly");
    let second = create(&sw, &quiet).await;
    assert_eq!(second["callStatus"], "Planned", "{second:#}");
    assert_ne!(second["id"], created["id"]);
    expect_quiet(&mut be, QUIET_MS).await;
    drop(admin);

    sw.restart().await;
    assert_eq!(get_log(&sw, &call_id).await, created);
    let again = get_log(&sw, second["callId"].as_str().unwrap()).await;
    assert_eq!(again, second);
}

#[tokio::test]
async fn broker_rings_the_creator_only_after_the_expert_answered() {
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    let admin = sw.admin().await;
    let body = json!({
        "callTitle": "Brokered",
        "callReason": "STANDARD",
        "callType": "SFU",
        "invitedContacts": [{"userId": "bob", "userDbId": 9, "displayName": "Expert"}],
        "invitedTeams": [],
        "joinAnonymousAllowed": false,
        "informOthersDirectly": true,
        "creatorUser": 12,
    });
    let created = create(&sw, &body).await;
    check_shape(&created);
    let call_id = created["callId"].as_str().unwrap().to_string();
    let id = uuid(&created);
    assert_eq!(created["creatorContact"]["userId"], "carol", "{created:#}");
    assert_eq!(created["creatorContact"]["userDbId"], 12);
    assert_eq!(created["callStatus"], "Started");
    assert_eq!(created["callEvents"][0]["type"], "Created");
    assert_eq!(created["callEvents"][0]["contact"]["userId"], "carol");

    // The expert rings first; the creator (the smartglasses user) does not.
    assert_eq!(incoming(&mut be, &call_id).await, "alice");
    expect_quiet(&mut ce, QUIET_MS).await;

    bob.answer(id).await.unwrap();
    // Now carol rings, for the same call.
    incoming(&mut ce, &call_id).await;
    carol.answer(id).await.unwrap();

    // The broker's (alice's) leg leaves once carol answered.
    let joined = wait_events(
        &sw,
        &call_id,
        "Started",
        &[
            ("Created", "carol"),
            ("Join", "alice"),
            ("Join", "bob"),
            ("Join", "carol"),
            ("Leave", "alice"),
        ],
    )
    .await;
    check_shape(&joined);
    assert_eq!(joined["creatorContact"]["userId"], "carol");
    assert_eq!(joined["creatorContact"]["userDbId"], 12);
    // The call goes on between bob and carol.
    let calls = admin.list_calls().await.unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let joined_now: Vec<&str> = calls[0]
        .parties
        .iter()
        .filter(|p| p.status == PartyStatus::Joined)
        .map(|p| p.user.name.as_str())
        .collect();
    assert_eq!(joined_now, vec!["bob", "carol"], "{calls:?}");
    wait_device_gone(&admin, "alice", "call-log-rest").await;

    carol.hangup(id).await.unwrap();
    let ended = wait_log(&sw, &call_id, "Ended", |l| l["callStatus"] == "Ended").await;
    check_shape(&ended);
    assert_eq!(
        events(&ended).last(),
        Some(&("Ended".to_string(), "carol".to_string())),
        "{ended:#}"
    );
    assert!(
        events(&ended).contains(&("Leave".to_string(), "carol".to_string())),
        "{ended:#}"
    );
}

#[tokio::test]
async fn an_offline_invitee_is_logged_and_the_call_ends() {
    let sw = TestSwitch::start().await;
    // Carol has no device online.
    let created = create(&sw, &mesh_for(json!({"userDbId": 12}), true)).await;
    check_shape(&created);
    let call_id = created["callId"].as_str().unwrap().to_string();
    let ended = wait_events(
        &sw,
        &call_id,
        "Ended",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("NoAnswer", "carol"),
            ("Ended", "alice"),
        ],
    )
    .await;
    check_shape(&ended);
    wait_device_gone(&sw.admin().await, "alice", "call-log-rest").await;
}

#[tokio::test]
async fn broker_call_whose_expert_declines_never_rings_the_creator() {
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let (_carol, mut ce) = sw.connect("carol").await;
    let body = json!({
        "callType": "MESH",
        "invitedContacts": [{"userId": "bob"}],
        "informOthersDirectly": true,
        "creatorUser": 12,
    });
    let created = create(&sw, &body).await;
    let call_id = created["callId"].as_str().unwrap().to_string();
    incoming(&mut be, &call_id).await;
    bob.decline(uuid(&created)).await.unwrap();
    let ended = wait_events(
        &sw,
        &call_id,
        "Ended",
        &[
            ("Created", "carol"),
            ("Join", "alice"),
            ("Declined", "bob"),
            ("Ended", "carol"),
        ],
    )
    .await;
    check_shape(&ended);
    wait_device_gone(&sw.admin().await, "alice", "call-log-rest").await;
    expect_quiet(&mut ce, QUIET_MS).await;
}

#[tokio::test]
async fn the_vendors_example_body_is_accepted() {
    let sw = TestSwitch::start().await;
    // The seed's fetch() body, verbatim: `tester` is no switch user, so
    // the contact is found by its userDbId (8 = alice); bob is the API user.
    let seed = r#"{"callType":"SFU","invitedContacts":[{"userId":"tester","userDbId":8,"email":"tester@example.com","domain":"ubimax","displayName":"Tester","phoneNumber":null}],"invitedTeams":[],"joinAnonymousAllowed":false,"callTitle":"New Call","plannedDateTime":null,"callReason":"STANDARD"}"#;
    let a = post_raw(&sw, Some("bob-demo-token"), seed.as_bytes()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let log = a.json();
    check_shape(&log);
    assert_eq!(log["callStatus"], "Planned", "{log:#}");
    assert_eq!(log["callTitle"], "New Call");
    assert_eq!(log["anonymousJoinAllow"], false);
    assert_eq!(log["creatorContact"]["userId"], "bob");
    assert_eq!(log["creatorContact"]["userDbId"], 9);
    let c = &log["invitedContacts"][0];
    assert_eq!(c["userId"], "alice", "{log:#}");
    assert_eq!(c["userDbId"], 8);
    assert_eq!(c["displayName"], "Tester");
    assert_eq!(c["email"], "tester@example.com");
    assert_eq!(c["domain"], "ubimax");
    assert_eq!(c["phoneNumber"], Value::Null);
    assert_eq!(log["callEvents"][0]["type"], "Created");
    assert_eq!(log["callEvents"][0]["contact"]["userId"], "bob");
    assert_eq!(log["callEvents"][0]["contact"]["userDbId"], 9);
}

#[tokio::test]
async fn broker_as_the_vendor_documents_it_with_the_connector_invited() {
    // The seed's recipe: creatorUser is the smartglasses user (carol),
    // invitedContacts hold the expert (bob) and the connector (alice, the
    // API user) itself.
    let sw = TestSwitch::start().await;
    let (_alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let (carol, mut ce) = sw.connect("carol").await;
    let body = json!({
        "callType": "SFU",
        "invitedContacts": [
            {"userId": "bob", "userDbId": 9, "displayName": "Expert"},
            {"userDbId": 8, "displayName": "Connector"}
        ],
        "invitedTeams": [],
        "informOthersDirectly": true,
        "creatorUser": 12,
    });
    let created = create(&sw, &body).await;
    check_shape(&created);
    let call_id = created["callId"].as_str().unwrap().to_string();
    let id = uuid(&created);
    assert_eq!(created["creatorContact"]["userId"], "carol");
    let invited: Vec<&Value> = created["invitedContacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["userId"])
        .collect();
    assert_eq!(invited, vec!["bob", "alice"], "{created:#}");

    assert_eq!(incoming(&mut be, &call_id).await, "alice");
    // Neither the creator nor the connector's own devices ring.
    expect_quiet(&mut ce, QUIET_MS).await;
    expect_quiet(&mut ae, 0).await;

    bob.answer(id).await.unwrap();
    incoming(&mut ce, &call_id).await;
    carol.answer(id).await.unwrap();
    let joined = wait_events(
        &sw,
        &call_id,
        "Started",
        &[
            ("Created", "carol"),
            ("Join", "alice"),
            ("Join", "bob"),
            ("Join", "carol"),
            ("Leave", "alice"),
        ],
    )
    .await;
    check_shape(&joined);
    // The connector is listed once, as the invited contact it was.
    assert_eq!(
        joined["invitedContacts"].as_array().unwrap().len(),
        2,
        "{joined:#}"
    );
    assert_eq!(joined["callEvents"][1]["contact"]["userDbId"], 8);
    assert_eq!(
        joined["callEvents"][1]["contact"]["id"],
        joined["invitedContacts"][1]["id"]
    );
    wait_device_gone(&sw.admin().await, "alice", "call-log-rest").await;
    expect_quiet(&mut ae, 0).await;
}

#[tokio::test]
async fn an_unanswered_invitee_times_out_into_the_log() {
    let sw = TestSwitch::start_with(Knobs {
        ring_timeout_secs: 1,
        ..Knobs::default()
    })
    .await;
    let (_bob, mut be) = sw.connect("bob").await;
    let created = create(&sw, &valid_body()).await;
    let call_id = created["callId"].as_str().unwrap().to_string();
    incoming(&mut be, &call_id).await;
    let id = uuid(&created);
    expect(
        &mut be,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id, .. } if *call_id == id),
    )
    .await;
    let ended = wait_events(
        &sw,
        &call_id,
        "Ended",
        &[
            ("Created", "alice"),
            ("Join", "alice"),
            ("NoAnswer", "bob"),
            ("Ended", "alice"),
        ],
    )
    .await;
    check_shape(&ended);
    wait_device_gone(&sw.admin().await, "alice", "call-log-rest").await;
}

#[tokio::test]
async fn a_call_live_at_a_restart_is_ended_after_it() {
    let mut sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let created = create(&sw, &valid_body()).await;
    let call_id = created["callId"].as_str().unwrap().to_string();
    incoming(&mut be, &call_id).await;
    bob.answer(uuid(&created)).await.unwrap();
    wait_events(
        &sw,
        &call_id,
        "Started",
        &[("Created", "alice"), ("Join", "alice"), ("Join", "bob")],
    )
    .await;
    // The switch shuts down with the call up (bob still connected).
    sw.restart().await;
    drop(bob);
    let log = get_log(&sw, &call_id).await;
    check_shape(&log);
    assert_eq!(log["callStatus"], "Ended", "{log:#}");
    let ev = events(&log);
    assert_eq!(
        ev.first(),
        Some(&("Created".into(), "alice".into())),
        "{log:#}"
    );
    assert_eq!(
        ev.last(),
        Some(&("Ended".into(), "alice".into())),
        "{log:#}"
    );
    assert!(ev.contains(&("Join".into(), "bob".into())), "{log:#}");
}

#[tokio::test]
async fn create_and_read_over_http2() {
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let bearer = auth(ALICE);
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let a = http2(
        sw.http(),
        "POST",
        CREATE,
        &headers,
        valid_body().to_string().as_bytes(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let created = a.json();
    let call_id = created["callId"].as_str().unwrap().to_string();
    incoming(&mut be, &call_id).await;
    bob.answer(uuid(&created)).await.unwrap();
    let path = format!("/rtc/getCallLogById?callId={call_id}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let g = http2(sw.http(), "GET", &path, &headers[..1], b"").await;
        assert_eq!(g.status, 200, "{}", g.text());
        let log = g.json();
        if events(&log) == pairs(&[("Created", "alice"), ("Join", "alice"), ("Join", "bob")]) {
            assert_eq!(log["callStatus"], "Started");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{log:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Errors come the same way over HTTP/2.
    let e = http2(sw.http(), "POST", CREATE, &headers[1..], b"{}").await;
    assert_error(&e, 401, "Unauthorized", &["Bearer"]);
    let e = http2(
        sw.http(),
        "GET",
        "/rtc/getCallLogById?callId=nope",
        &headers[..1],
        b"",
    )
    .await;
    assert_error(&e, 400, "Bad Request", &["callId"]);
}

// ---- refused requests -------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_400() {
    let sw = TestSwitch::start().await;
    refused(&sw, b"{\"callType\": \"MESH\", ", &["JSON"]).await;
    refused(&sw, b"", &["JSON"]).await;
    refused(&sw, b"[1, 2]", &["JSON object"]).await;
    still_serves(&sw).await;
}

#[tokio::test]
async fn wrong_types_are_400_naming_the_field() {
    let sw = TestSwitch::start().await;
    for (key, value, name) in [
        ("callType", json!(1), "`callType`"),
        ("callTitle", json!(5), "`callTitle`"),
        (
            "invitedContacts",
            json!({"userId": "bob"}),
            "`invitedContacts`",
        ),
        ("invitedContacts", json!(["bob"]), "`invitedContacts[0]`"),
        (
            "invitedContacts",
            json!([{"userDbId": "9"}]),
            "`invitedContacts[0].userDbId`",
        ),
        (
            "invitedContacts",
            json!([{"userId": 9}]),
            "`invitedContacts[0].userId`",
        ),
        (
            "joinAnonymousAllowed",
            json!("yes"),
            "`joinAnonymousAllowed`",
        ),
        ("informOthersDirectly", json!(1), "`informOthersDirectly`"),
        ("creatorUser", json!("12"), "`creatorUser`"),
        ("plannedDateTime", json!(false), "`plannedDateTime`"),
        ("invitedTeams", json!("none"), "`invitedTeams`"),
    ] {
        let mut body = valid_body();
        body[key] = value;
        refused(&sw, body.to_string().as_bytes(), &[name]).await;
    }
    still_serves(&sw).await;
}

#[tokio::test]
async fn missing_call_type_is_400() {
    let sw = TestSwitch::start().await;
    let mut body = valid_body();
    body.as_object_mut().unwrap().remove("callType");
    refused(&sw, body.to_string().as_bytes(), &["`callType`"]).await;
    body["callType"] = Value::Null;
    refused(&sw, body.to_string().as_bytes(), &["`callType`"]).await;
    still_serves(&sw).await;
}

#[tokio::test]
async fn missing_invited_contacts_is_400() {
    let sw = TestSwitch::start().await;
    let mut body = valid_body();
    body.as_object_mut().unwrap().remove("invitedContacts");
    refused(&sw, body.to_string().as_bytes(), &["`invitedContacts`"]).await;
    body["invitedContacts"] = json!([]);
    refused(&sw, body.to_string().as_bytes(), &["`invitedContacts`"]).await;
    still_serves(&sw).await;
}

#[tokio::test]
async fn unknown_call_type_is_400() {
    let sw = TestSwitch::start().await;
    for t in ["P2P", "mesh", ""] {
        let mut body = valid_body();
        body["callType"] = json!(t);
        refused(
            &sw,
            body.to_string().as_bytes(),
            &["`callType`", "MESH", "SFU"],
        )
        .await;
    }
    still_serves(&sw).await;
}

#[tokio::test]
async fn unknown_call_reason_is_400() {
    let sw = TestSwitch::start().await;
    let mut body = valid_body();
    body["callReason"] = json!("URGENT");
    refused(
        &sw,
        body.to_string().as_bytes(),
        &["`callReason`", "STANDARD", "SERVICE_REQUEST"],
    )
    .await;
    still_serves(&sw).await;
}

#[tokio::test]
async fn mesh_with_two_contacts_is_400() {
    let sw = TestSwitch::start().await;
    let (_bob, mut be) = sw.connect("bob").await;
    let mut body = valid_body();
    body["invitedContacts"] = json!([{"userId": "bob"}, {"userId": "carol"}]);
    refused(
        &sw,
        body.to_string().as_bytes(),
        &["MESH", "`invitedContacts`"],
    )
    .await;
    still_serves(&sw).await;
    expect_quiet(&mut be, QUIET_MS).await;
}

#[tokio::test]
async fn invited_teams_are_400() {
    let sw = TestSwitch::start().await;
    let mut body = valid_body();
    body["invitedTeams"] = json!([{"id": 1, "name": "Experts"}]);
    refused(&sw, body.to_string().as_bytes(), &["`invitedTeams`"]).await;
    still_serves(&sw).await;
}

#[tokio::test]
async fn a_contact_naming_nobody_is_400() {
    let sw = TestSwitch::start().await;
    for (contact, names) in [
        (
            json!({"userId": "nobody"}),
            vec!["`invitedContacts[0]`", "nobody"],
        ),
        (json!({"userDbId": 77}), vec!["`invitedContacts[0]`", "77"]),
        (
            json!({"phoneNumber": "+19999999"}),
            vec!["`invitedContacts[0]`", "+19999999"],
        ),
        (
            json!({"phoneNumber": "not a number"}),
            vec!["`invitedContacts[0]`", "phoneNumber"],
        ),
        (
            json!({"displayName": "Nobody"}),
            vec!["`invitedContacts[0]`"],
        ),
    ] {
        let body = mesh_for(contact, true);
        refused(&sw, body.to_string().as_bytes(), &names).await;
    }
    // The second contact of a group call, named by index.
    let body = json!({
        "callType": "SFU",
        "invitedContacts": [{"userId": "bob"}, {"userId": "zed"}],
        "informOthersDirectly": true,
    });
    refused(
        &sw,
        body.to_string().as_bytes(),
        &["`invitedContacts[1]`", "zed"],
    )
    .await;
    still_serves(&sw).await;
}

#[tokio::test]
async fn an_unknown_creator_user_is_400() {
    let sw = TestSwitch::start().await;
    let mut body = valid_body();
    body["creatorUser"] = json!(4242);
    refused(&sw, body.to_string().as_bytes(), &["`creatorUser`", "4242"]).await;
    still_serves(&sw).await;
}

#[tokio::test]
async fn no_or_an_invalid_bearer_token_is_401() {
    let sw = TestSwitch::start().await;
    let body = valid_body().to_string();
    let get = format!("/rtc/getCallLogById?callId={}", Uuid::new_v4());
    let bad_auth = [
        None,
        Some("Bearer"),
        Some("Bearer wrong-token"),
        Some("Basic YWxpY2U6eA=="),
        Some("bob-demo-token"),
    ];
    for header in bad_auth {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(h) = header {
            headers.push(("authorization", h));
        }
        let a = http1(sw.http(), "POST", CREATE, &headers, body.as_bytes()).await;
        let v = assert_error(&a, 401, "Unauthorized", &[]);
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("bearer"),
            "{v}"
        );
        assert_eq!(
            a.headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{header:?}"
        );
        let g = http1(sw.http(), "GET", &get, &headers, b"").await;
        assert_error(&g, 401, "Unauthorized", &[]);
    }
    // The admin token is no API user either.
    let admin = auth(&sw.handle().admin_token.clone());
    let a = http1(
        sw.http(),
        "POST",
        CREATE,
        &[("authorization", admin.as_str())],
        body.as_bytes(),
    )
    .await;
    assert_error(&a, 401, "Unauthorized", &[]);
    still_serves(&sw).await;
}

#[tokio::test]
async fn get_call_log_without_a_call_id_is_400() {
    let sw = TestSwitch::start().await;
    for query in ["", "?", "?other=1", "?callId=", "?callid=x"] {
        let a = get_query(&sw, query).await;
        assert_error(&a, 400, "Bad Request", &["callId"]);
    }
    still_serves(&sw).await;
}

#[tokio::test]
async fn get_call_log_with_a_non_uuid_is_400() {
    let sw = TestSwitch::start().await;
    for bad in [
        "42",
        "not-a-uuid",
        "e76e1d8a82674bd4ba5c00ab76743e74",
        "e76e1d8a-8267-4bd4-ba5c-00ab76743e7g",
    ] {
        let a = get_query(&sw, &format!("?callId={bad}")).await;
        assert_error(&a, 400, "Bad Request", &["callId", bad]);
    }
    still_serves(&sw).await;
}

#[tokio::test]
async fn get_call_log_of_an_unknown_call_is_404_and_of_a_switch_call_its_account() {
    let sw = TestSwitch::start().await;
    let unknown = Uuid::new_v4().to_string();
    let a = get_query(&sw, &format!("?callId={unknown}")).await;
    assert_error(&a, 404, "Not Found", &[&unknown]);
    // A call the API did not create (here, between QUIC clients) is read
    // from the switch's own account: id 0, the caller as creator.
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let direct = common::connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    let a = get_query(&sw, &format!("?callId={direct}")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["id"], 0, "{v}");
    assert_eq!(v["callStatus"], "Started", "{v}");
    assert_eq!(v["creatorContact"]["userId"], "alice", "{v}");
    assert_eq!(v["invitedContacts"][0]["userId"], "bob", "{v}");
    let types: Vec<&str> = v["callEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Created", "Join", "Join"], "{v}");
    alice.hangup(direct).await.unwrap();
    let ended = wait_log(&sw, &direct.to_string(), "ended", |v| {
        v["callStatus"] == "Ended"
    })
    .await;
    assert!(
        ended["callEvents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "Ended"),
        "{ended}"
    );
    // A created call is found by its callId in upper case too.
    let log = create(&sw, &mesh_for(json!({"userId": "carol"}), false)).await;
    let upper = log["callId"].as_str().unwrap().to_uppercase();
    let a = get_query(&sw, &format!("?callId={upper}")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json(), log);
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let sw = TestSwitch::start().await;
    let bearer = auth(ALICE);
    for path in [
        "/rtc/nothing",
        "/rtc/",
        "/rtc/createCall/extra",
        "/rtc/getcalllogbyid",
    ] {
        let a = http1(
            sw.http(),
            "GET",
            path,
            &[("authorization", bearer.as_str())],
            b"",
        )
        .await;
        let v = assert_error(&a, 404, "Not Found", &[]);
        assert_eq!(v["path"], path, "{v}");
    }
    still_serves(&sw).await;
}

#[tokio::test]
async fn a_wrong_method_is_405() {
    let sw = TestSwitch::start().await;
    let bearer = auth(ALICE);
    let h = [("authorization", bearer.as_str())];
    for (method, path, allow) in [
        ("GET", CREATE, "POST"),
        ("PUT", CREATE, "POST"),
        ("DELETE", CREATE, "POST"),
        ("POST", "/rtc/getCallLogById", "GET"),
    ] {
        let a = http1(
            sw.http(),
            method,
            path,
            &h,
            valid_body().to_string().as_bytes(),
        )
        .await;
        assert_error(&a, 405, "Method Not Allowed", &[method]);
        assert_eq!(
            a.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
    still_serves(&sw).await;
}

#[tokio::test]
async fn an_oversized_body_is_413_from_the_host() {
    let sw = TestSwitch::start().await;
    // A valid createCall padded with a title past the 1 MiB cap.
    let mut body = valid_body();
    body["callTitle"] = json!("x".repeat((1 << 20) + 1));
    let a = post(&sw, &body).await;
    // The host refuses it before the plugin sees it, in the API's shape.
    assert_error_body(&a, 413, "Payload Too Large", &["larger than 1048576 bytes"]);
    // Just under the cap is read and served.
    let mut fits = mesh_for(json!({"userId": "bob"}), false);
    fits["callTitle"] = json!("");
    let room = (1 << 20) - fits.to_string().len();
    fits["callTitle"] = json!("y".repeat(room));
    assert_eq!(fits.to_string().len(), 1 << 20);
    let log = create(&sw, &fits).await;
    assert_eq!(log["callTitle"].as_str().unwrap().len(), room);
    let back = get_log(&sw, log["callId"].as_str().unwrap()).await;
    assert_eq!(back, log);
    still_serves(&sw).await;
}

#[tokio::test]
async fn bodies_packed_with_elements_are_served_and_live_calls_survive() {
    // Under the 1 MiB cap, a body can hold half a million array elements:
    // the plugin must answer it (it is no reason to fail) and the calls
    // it placed must go on.
    let sw = TestSwitch::start().await;
    let (bob, mut be) = sw.connect("bob").await;
    let live = create(&sw, &valid_body()).await;
    let live_id = live["callId"].as_str().unwrap().to_string();
    incoming(&mut be, &live_id).await;
    bob.answer(uuid(&live)).await.unwrap();
    // Bob hears the API's leg.
    common::expect_media(&mut be, uuid(&live)).await;
    let joined = [("Created", "alice"), ("Join", "alice"), ("Join", "bob")];
    wait_events(&sw, &live_id, "Started", &joined).await;

    let many = |n: usize| Value::Array(vec![json!(0); n]);
    let planned = || mesh_for(json!({"userId": "carol"}), false);
    let under_cap = |body: &Value| {
        let len = body.to_string().len();
        assert!(len > 800_000 && len < 1 << 20, "{len} bytes");
    };

    // An unknown field is ignored, however large.
    let mut body = planned();
    body["padding"] = many(450_000);
    under_cap(&body);
    let log = create(&sw, &body).await;
    assert_eq!(log["callStatus"], "Planned", "{log}");

    // Packed known fields are refused, naming the field.
    let mut body = planned();
    body["callType"] = json!("SFU");
    body["invitedContacts"] = Value::Array(vec![json!({}); 300_000]);
    under_cap(&body);
    refused(&sw, body.to_string().as_bytes(), &["`invitedContacts`"]).await;

    let mut body = planned();
    body["invitedTeams"] = many(450_000);
    under_cap(&body);
    refused(&sw, body.to_string().as_bytes(), &["`invitedTeams`"]).await;

    let mut body = planned();
    body["invitedContacts"][0]["displayName"] = many(450_000);
    under_cap(&body);
    refused(
        &sw,
        body.to_string().as_bytes(),
        &["`invitedContacts[0].displayName`"],
    )
    .await;

    let mut body = planned();
    body["callTitle"] = json!({"parts": many(450_000)});
    under_cap(&body);
    refused(&sw, body.to_string().as_bytes(), &["`callTitle`"]).await;

    // Bob's call is untouched: still live, with the API's leg in it.
    expect_quiet(&mut be, QUIET_MS).await;
    wait_events(&sw, &live_id, "Started", &joined).await;
    let calls = sw.admin().await.list_calls().await.unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].call_id, uuid(&live));
}
