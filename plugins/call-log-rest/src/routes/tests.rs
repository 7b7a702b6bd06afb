//! End-to-end tests of the HTTP API and the broker logic against the fake
//! switch of `testing`.

use serde_json::{json, Value};

use super::*;
use crate::broker::on_device_event;
use crate::testing::{FakeSwitch, ALICE, BOB, CAROL, DAVE};

fn call(
    sw: &FakeSwitch,
    method: &str,
    path: &str,
    query: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value, Vec<(String, String)>) {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(t) = token {
        headers.push(("authorization".to_string(), format!("Bearer {t}")));
    }
    let r = handle(
        sw,
        &Request {
            method,
            path,
            query,
            headers: &headers,
            body: body.as_bytes(),
        },
    );
    assert!(r
        .headers
        .iter()
        .any(|(n, v)| n == "content-type" && v == "application/json"));
    let json = serde_json::from_slice(&r.body).expect("answers are JSON");
    (r.status, json, r.headers)
}

fn create(sw: &FakeSwitch, token: &str, body: Value) -> (u16, Value) {
    let (status, json, _) = call(
        sw,
        "POST",
        "/rtc/createCall",
        "",
        Some(token),
        &body.to_string(),
    );
    (status, json)
}

fn get(sw: &FakeSwitch, query: &str) -> (u16, Value) {
    let (status, json, _) = call(
        sw,
        "GET",
        "/rtc/getCallLogById",
        query,
        Some("alice-demo-token"),
        "",
    );
    (status, json)
}

/// Asserts a Spring-shaped error with this status whose message contains `text`.
fn assert_error(status: u16, json: &Value, want: u16, text: &str) {
    assert_eq!(status, want, "{json}");
    assert_eq!(json["status"], want);
    assert_eq!(json["error"], reason_phrase_of(want));
    assert!(json["message"].as_str().unwrap().contains(text), "{json}");
    assert!(json["timestamp"].is_string());
}

fn reason_phrase_of(status: u16) -> &'static str {
    crate::model::reason_phrase(status)
}

fn ev(kind: &str, id: &str, name: &str) -> Value {
    let key = if kind == "created" { "by" } else { "user" };
    json!({"at_ms": 1, "event": kind, key: {"id": id, "name": name}, "device": 1})
}

fn ended() -> Value {
    json!({"at_ms": 2, "event": "ended", "reason": "hangup"})
}

/// The `(type, contact userId)` pairs of a CallLog's events.
fn event_list(log: &Value) -> Vec<(String, String)> {
    log["callEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["contact"]["userId"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn bob_body(inform: bool) -> Value {
    json!({
        "callTitle": "Test Call",
        "callReason": "STANDARD",
        "callType": "MESH",
        "invitedContacts": [{"displayName": "Tester", "domain": "ubimax", "email": "t@example.com", "phoneNumber": "", "userDbId": 8, "userId": "bob"}],
        "invitedTeams": [],
        "joinAnonymousAllowed": true,
        "informOthersDirectly": inform,
        "plannedDateTime": "2030-01-01T10:00:00Z",
    })
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let sw = FakeSwitch::new();
    let (status, json, _) = call(&sw, "GET", "/rtc/nothing", "", Some("alice-demo-token"), "");
    assert_error(status, &json, 404, "/rtc/nothing");
    assert_eq!(json["path"], "/rtc/nothing");
    let (status, json, headers) = call(
        &sw,
        "GET",
        "/rtc/createCall",
        "",
        Some("alice-demo-token"),
        "",
    );
    assert_error(status, &json, 405, "'GET' is not supported");
    assert!(headers.contains(&("allow".to_string(), "POST".to_string())));
    let (status, json, headers) = call(&sw, "POST", "/rtc/getCallLogById", "", None, "");
    assert_error(status, &json, 405, "'POST'");
    assert!(headers.contains(&("allow".to_string(), "GET".to_string())));
}

#[test]
fn authentication() {
    let sw = FakeSwitch::new();
    let (status, json, headers) = call(&sw, "POST", "/rtc/createCall", "", None, "{}");
    assert_error(status, &json, 401, "Bearer");
    assert!(headers.contains(&("www-authenticate".to_string(), "Bearer".to_string())));
    let (status, json, _) = call(&sw, "POST", "/rtc/createCall", "", Some("wrong"), "{}");
    assert_error(status, &json, 401, "invalid bearer token");
    let (status, json, _) = call(
        &sw,
        "GET",
        "/rtc/getCallLogById",
        "callId=x",
        Some("wrong"),
        "",
    );
    assert_error(status, &json, 401, "invalid bearer token");
    assert_eq!(
        bearer(&[("authorization".into(), "bearer  tok ".into())]),
        Some("tok")
    );
    assert_eq!(
        bearer(&[("authorization".into(), "Basic dG9r".into())]),
        None
    );
    assert_eq!(bearer(&[("authorization".into(), "Bearer ".into())]), None);
}

#[test]
fn planned_call_echoes_the_request() {
    let sw = FakeSwitch::new();
    let (status, log) = create(&sw, "alice-demo-token", bob_body(false));
    assert_eq!(status, 200, "{log}");
    let call_id = log["callId"].as_str().unwrap().to_string();
    assert_eq!(
        crate::ids::parse_uuid(&call_id).as_deref(),
        Some(call_id.as_str())
    );
    assert_eq!(&call_id[14..15], "4");
    assert_eq!(
        log,
        json!({
            "id": 1,
            "callId": call_id,
            "callTitle": "Test Call",
            "callReason": "STANDARD",
            "callType": "MESH",
            "anonymousJoinAllow": true,
            "plannedDateTime": "2030-01-01T10:00:00Z",
            "callStatus": "Planned",
            "creatorContact": {"id": 1, "displayName": "alice", "domain": "", "email": "", "phoneNumber": "+15550100", "userDbId": 8, "userId": "alice"},
            "invitedContacts": [{"id": 2, "displayName": "Tester", "domain": "ubimax", "email": "t@example.com", "phoneNumber": "", "userDbId": 9, "userId": "bob"}],
            "callEvents": [{"id": 1001, "type": "Created", "contact": {"id": 1, "userId": "alice", "userDbId": 8}}],
        })
    );
    // Nobody was rung; the log is in kv and read back the same.
    assert!(sw.sent().is_empty());
    assert!(sw.open_devices.borrow().is_empty());
    assert!(sw.kv.borrow().contains_key(&format!("log/{call_id}")));
    let (status, again) = get(&sw, &format!("callId={}", call_id.to_uppercase()));
    assert_eq!(status, 200);
    assert_eq!(again, log);
    // Ids increase.
    let (_, second) = create(&sw, "alice-demo-token", bob_body(false));
    assert_eq!(second["id"], 2);
    assert_ne!(second["callId"], log["callId"]);
    assert_eq!(second["callEvents"][0]["id"], 2001);
}

#[test]
fn informing_dials_and_follows_the_switch() {
    let sw = FakeSwitch::new();
    let mut body = bob_body(true);
    body["callType"] = json!("SFU");
    body["invitedContacts"] =
        json!([{"userId": "bob"}, {"phoneNumber": "+15550103", "displayName": "Carol"}]);
    let (status, log) = create(&sw, "alice-demo-token", body);
    assert_eq!(status, 200, "{log}");
    let call_id = log["callId"].as_str().unwrap().to_string();
    let sent = sw.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 100);
    assert_eq!(
        sent[0].1,
        json!({"type": "dial", "call_id": call_id, "targets": [BOB, CAROL]})
    );
    assert!(sw.open_devices.borrow().contains(&100));
    assert_eq!(log["callStatus"], "Started");
    assert_eq!(
        event_list(&log),
        pairs(&[("Created", "alice"), ("Join", "alice")])
    );

    sw.set_live(
        &call_id,
        vec![
            ev("created", ALICE, "alice"),
            ev("ringing", BOB, "bob"),
            ev("ringing", CAROL, "carol"),
        ],
    );
    let (_, log) = get(&sw, &format!("callId={call_id}"));
    assert_eq!(log["callStatus"], "Started");
    assert_eq!(
        event_list(&log),
        pairs(&[("Created", "alice"), ("Join", "alice")])
    );
    assert_eq!(log["invitedContacts"][1]["phoneNumber"], "+15550103");
    assert_eq!(log["invitedContacts"][1]["displayName"], "Carol");
    assert_eq!(log["invitedContacts"][1]["userDbId"], 12);

    sw.set_live(
        &call_id,
        vec![
            ev("created", ALICE, "alice"),
            ev("ringing", BOB, "bob"),
            ev("ringing", CAROL, "carol"),
            ev("answered", BOB, "bob"),
            ev("joined", BOB, "bob"),
            ev("declined", CAROL, "carol"),
        ],
    );
    let (_, log) = get(&sw, &format!("callId={call_id}"));
    assert_eq!(
        event_list(&log),
        pairs(&[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Join", "bob"),
            ("Declined", "carol")
        ])
    );
    let ids: Vec<u64> = log["callEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1001, 1002, 1003, 1004]);

    // Someone transferred in is appended as a contact; then the call ends.
    sw.set_record(
        &call_id,
        vec![
            ev("created", ALICE, "alice"),
            ev("answered", BOB, "bob"),
            ev("joined", BOB, "bob"),
            ev("declined", CAROL, "carol"),
            ev("answered", DAVE, "dave"),
            ev("joined", DAVE, "dave"),
            ev("left", BOB, "bob"),
            ended(),
        ],
    );
    let (_, log) = get(&sw, &format!("callId={call_id}"));
    assert_eq!(log["callStatus"], "Ended");
    assert_eq!(
        event_list(&log),
        pairs(&[
            ("Created", "alice"),
            ("Join", "alice"),
            ("Join", "bob"),
            ("Declined", "carol"),
            ("Join", "dave"),
            ("Leave", "bob"),
            ("Ended", "alice"),
        ])
    );
    assert_eq!(log["invitedContacts"][2]["userId"], "dave");
    assert_eq!(log["invitedContacts"][2]["id"], 4);
    assert_eq!(log["invitedContacts"][2]["userDbId"], 0);
    assert_eq!(
        log["callEvents"][4]["contact"],
        json!({"id": 4, "userId": "dave", "userDbId": 0})
    );

    // The call ended: the device is closed and forgotten.
    on_device_event(
        &sw,
        100,
        &json!({"type": "ended", "call_id": call_id, "reason": "hangup"}).to_string(),
    );
    assert!(sw.open_devices.borrow().is_empty());
    assert!(!sw.kv.borrow().contains_key("dev/100"));
}

#[test]
fn contacts_resolve_by_user_id_then_phone_then_db_id() {
    let sw = FakeSwitch::new();
    let host: &dyn Host = &sw;
    let db = crate::store::db_ids(host);
    let c = |v: Value| -> ContactIn {
        let body = json!({"callType": "SFU", "invitedContacts": [v]});
        crate::model::parse_create_call(body.to_string().as_bytes())
            .unwrap()
            .invited_contacts
            .remove(0)
    };
    let name = |v: Value| resolve_contact(host, &db, &c(v), 0).map(|u| u.name);
    assert_eq!(
        name(json!({"userId": "bob", "userDbId": 12})).unwrap(),
        "bob"
    );
    assert_eq!(name(json!({"userId": BOB})).unwrap(), "bob");
    assert_eq!(
        name(json!({"userId": "tester", "phoneNumber": "+15550102"})).unwrap(),
        "carol"
    );
    assert_eq!(
        name(json!({"userId": "tester", "phoneNumber": "", "userDbId": 9})).unwrap(),
        "bob"
    );
    assert_eq!(
        name(json!({"phoneNumber": null, "userDbId": 12})).unwrap(),
        "carol"
    );
    let e = name(json!({"userId": "tester", "phoneNumber": "0049", "userDbId": 77})).unwrap_err();
    assert!(
        e.starts_with("`invitedContacts[0]` names no switch user"),
        "{e}"
    );
    assert!(
        e.contains("userId `tester`")
            && e.contains("phoneNumber `0049` is not an E.164")
            && e.contains("userDbId 77 is not in"),
        "{e}"
    );
    let e = name(json!({"displayName": "x", "userDbId": 0})).unwrap_err();
    assert!(
        e.contains("give `userId`, `phoneNumber` or `userDbId`"),
        "{e}"
    );
}

#[test]
fn create_call_validation() {
    let sw = FakeSwitch::new();
    let t = "alice-demo-token";
    let (s, j, _) = call(&sw, "POST", "/rtc/createCall", "", Some(t), "{not json");
    assert_error(s, &j, 400, "JSON parse error");
    let (s, j) = create(&sw, t, json!({"invitedContacts": [{"userId": "bob"}]}));
    assert_error(s, &j, 400, "`callType`");
    let (s, j) = create(
        &sw,
        t,
        json!({"callType": "SFU", "invitedContacts": [{"userId": "bob"}], "invitedTeams": [{"name": "ops"}]}),
    );
    assert_error(s, &j, 400, "teams are not supported");
    let (s, j) = create(
        &sw,
        t,
        json!({"callType": "MESH", "invitedContacts": [{"userId": "bob"}, {"userId": "carol"}]}),
    );
    assert_error(s, &j, 400, "exactly one contact");
    let (s, j) = create(
        &sw,
        t,
        json!({"callType": "SFU", "invitedContacts": [{"userId": "bob"}, {"userId": "nobody"}]}),
    );
    assert_error(
        s,
        &j,
        400,
        "`invitedContacts[1]` names no switch user: userId `nobody`",
    );
    let (s, j) = create(
        &sw,
        t,
        json!({"callType": "SFU", "invitedContacts": [{"userId": "alice"}]}),
    );
    assert_error(s, &j, 400, "`invitedContacts[0]` names the creator `alice`");
    let (s, j) = create(
        &sw,
        t,
        json!({"callType": "SFU", "invitedContacts": [{"userId": "bob"}, {"userDbId": 9}]}),
    );
    assert_error(
        s,
        &j,
        400,
        "`invitedContacts[1]` names `bob`, as `invitedContacts[0]` does",
    );
    let (s, j) = create(
        &sw,
        t,
        json!({"callType": "SFU", "invitedContacts": [{"userId": "bob"}], "creatorUser": 99}),
    );
    assert_error(
        s,
        &j,
        400,
        "`creatorUser` 99 is not in the `db_ids` setting",
    );
    sw.config
        .borrow_mut()
        .insert("db_ids".into(), "8=alice,99=ghost".into());
    let (s, j) = create(
        &sw,
        t,
        json!({"callType": "SFU", "invitedContacts": [{"userId": "bob"}], "creatorUser": 99}),
    );
    assert_error(s, &j, 400, "`creatorUser` 99 stands for `ghost`");
    // Nothing was created or rung.
    assert!(sw.kv.borrow().is_empty());
    assert!(sw.sent().is_empty());
}

#[test]
fn get_call_log_parameters() {
    let sw = FakeSwitch::new();
    let (s, j) = get(&sw, "");
    assert_error(
        s,
        &j,
        400,
        "'callId' for method parameter type UUID is not present",
    );
    let (s, j) = get(&sw, "callId=");
    assert_error(s, &j, 400, "'callId'");
    let (s, j) = get(&sw, "callId=12345");
    assert_error(s, &j, 400, "Invalid UUID string: 12345");
    let (s, j) = get(&sw, "other=1&callId=e76e1d8a-8267-4bd4-ba5c-00ab76743e74");
    assert_error(s, &j, 404, "e76e1d8a-8267-4bd4-ba5c-00ab76743e74");
    assert_eq!(
        query_param("a=1&call%49d=x%2Dy+z", "callId").as_deref(),
        Some("x-y z")
    );
    assert_eq!(percent_decode("%4"), "%4");
    assert_eq!(percent_decode("100%"), "100%");
}

#[test]
fn dial_failures_create_nothing() {
    let sw = FakeSwitch::new();
    sw.replies.borrow_mut().push_back(Err(FakeSwitch::error(
        "overloaded",
        "the switch is at capacity (350 live calls): try again later",
    )));
    let (s, j) = create(&sw, "alice-demo-token", bob_body(true));
    assert_error(s, &j, 503, "overloaded");
    assert!(
        sw.open_devices.borrow().is_empty(),
        "the device is closed again"
    );
    assert!(sw.kv.borrow().is_empty(), "no id used, no log stored");

    sw.replies.borrow_mut().push_back(Err(FakeSwitch::error(
        "denied",
        "no calls now (policy `hours`)",
    )));
    let (s, j) = create(&sw, "alice-demo-token", bob_body(true));
    assert_error(s, &j, 403, "policy `hours`");

    *sw.open_error.borrow_mut() = Some(FakeSwitch::error("denied", "not today (policy `gate`)"));
    let (s, j) = create(&sw, "alice-demo-token", bob_body(true));
    assert_error(s, &j, 403, "cannot open a device");
    assert!(sw.kv.borrow().is_empty());
}

#[test]
fn duplicate_call_ids_are_retried() {
    let sw = FakeSwitch::new();
    sw.replies
        .borrow_mut()
        .push_back(Err(FakeSwitch::error("duplicate_call_id", "used")));
    let (s, log) = create(&sw, "alice-demo-token", bob_body(true));
    assert_eq!(s, 200, "{log}");
    let sent = sw.sent();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0].1["call_id"], sent[1].1["call_id"]);
    assert_eq!(log["callId"], sent[1].1["call_id"]);
}

/// The seed's broker flow: dave (the connector, API user) creates a call
/// for alice (creatorUser 8, the smartglasses user) with bob (the expert).
#[test]
fn broker_rings_the_creator_after_an_invitee_answered() {
    let sw = FakeSwitch::new();
    let body = json!({
        "callTitle": "Support", "callReason": "SERVICE_REQUEST", "callType": "SFU",
        "invitedContacts": [{"userId": "bob", "displayName": "Expert"}],
        "invitedTeams": [], "joinAnonymousAllowed": false, "informOthersDirectly": true,
        "creatorUser": 8,
    });
    let (s, log) = create(&sw, "dave-demo-token", body);
    assert_eq!(s, 200, "{log}");
    let call_id = log["callId"].as_str().unwrap().to_string();
    assert_eq!(log["creatorContact"]["userId"], "alice");
    // Only the expert is dialled, from the broker's device.
    assert_eq!(
        sw.sent(),
        vec![(
            100,
            json!({"type": "dial", "call_id": call_id, "targets": [BOB]})
        )]
    );

    // Unrelated events and other calls' events change nothing.
    on_device_event(&sw, 100, &json!({"type": "ringing", "call_id": call_id, "user": {"id": BOB, "name": "bob"}, "device": 2}).to_string());
    on_device_event(&sw, 100, &json!({"type": "answered", "call_id": "other", "user": {"id": BOB, "name": "bob"}, "device": 2}).to_string());
    on_device_event(&sw, 100, "not json");
    assert_eq!(sw.sent().len(), 1);

    // The expert answers: the creator is invited, once.
    let bob_answered = json!({"type": "answered", "call_id": call_id, "user": {"id": BOB, "name": "bob"}, "device": 2}).to_string();
    on_device_event(&sw, 100, &bob_answered);
    on_device_event(&sw, 100, &bob_answered);
    assert_eq!(
        sw.sent()[1],
        (
            100,
            json!({"type": "invite", "call_id": call_id, "targets": [ALICE]})
        )
    );
    assert_eq!(sw.sent().len(), 2);

    // The creator answers: the broker hangs up and closes its device.
    on_device_event(&sw, 100, &json!({"type": "answered", "call_id": call_id, "user": {"id": ALICE, "name": "alice"}, "device": 1}).to_string());
    assert_eq!(
        sw.sent()[2],
        (100, json!({"type": "hangup", "call_id": call_id}))
    );
    assert!(sw.open_devices.borrow().is_empty());
    assert!(!sw.kv.borrow().contains_key("dev/100"));

    sw.set_live(
        &call_id,
        vec![
            ev("created", DAVE, "dave"),
            ev("ringing", BOB, "bob"),
            ev("answered", BOB, "bob"),
            ev("joined", BOB, "bob"),
            ev("ringing", ALICE, "alice"),
            ev("answered", ALICE, "alice"),
            ev("joined", ALICE, "alice"),
            ev("left", DAVE, "dave"),
        ],
    );
    let (_, log) = get(&sw, &format!("callId={call_id}"));
    assert_eq!(log["callStatus"], "Started");
    assert_eq!(log["callReason"], "SERVICE_REQUEST");
    assert_eq!(
        event_list(&log),
        pairs(&[
            ("Created", "alice"),
            ("Join", "dave"),
            ("Join", "bob"),
            ("Join", "alice"),
            ("Leave", "dave")
        ])
    );
    // The broker's contact comes after the invitees.
    let invited: Vec<&str> = log["invitedContacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["userId"].as_str().unwrap())
        .collect();
    assert_eq!(invited, vec!["bob", "dave"]);
    assert_eq!(log["invitedContacts"][1]["id"], 3);
    assert_eq!(log["callEvents"][1]["contact"]["id"], 3);
}

#[test]
fn broker_listed_as_invitee_is_not_dialled() {
    let sw = FakeSwitch::new();
    let body = json!({
        "callType": "SFU", "informOthersDirectly": true, "creatorUser": 8,
        "invitedContacts": [{"userId": "bob"}, {"userId": "dave", "displayName": "Connector"}],
    });
    let (s, log) = create(&sw, "dave-demo-token", body);
    assert_eq!(s, 200, "{log}");
    assert_eq!(sw.sent()[0].1["targets"], json!([BOB]));
    let invited: Vec<&str> = log["invitedContacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["userId"].as_str().unwrap())
        .collect();
    assert_eq!(invited, vec!["bob", "dave"]);

    // With the broker as the only invitee there is nobody to dial.
    let body = json!({"callType": "MESH", "informOthersDirectly": true, "creatorUser": 8, "invitedContacts": [{"userId": "dave"}]});
    let (s, j) = create(&sw, "dave-demo-token", body);
    assert_error(s, &j, 400, "someone besides the broker `dave`");
}

#[test]
fn broker_leaves_when_the_creator_cannot_be_reached() {
    let sw = FakeSwitch::new();
    let body = json!({"callType": "MESH", "informOthersDirectly": true, "creatorUser": 8, "invitedContacts": [{"userId": "bob"}]});
    let (_, log) = create(&sw, "dave-demo-token", body);
    let call_id = log["callId"].as_str().unwrap().to_string();
    // A busy creator before being invited means nothing.
    let alice_busy =
        json!({"type": "busy", "call_id": call_id, "user": {"id": ALICE, "name": "alice"}})
            .to_string();
    on_device_event(&sw, 100, &alice_busy);
    assert_eq!(sw.sent().len(), 1);
    on_device_event(&sw, 100, &json!({"type": "answered", "call_id": call_id, "user": {"id": BOB, "name": "bob"}, "device": 2}).to_string());
    on_device_event(&sw, 100, &alice_busy);
    assert_eq!(
        sw.sent()[2].1,
        json!({"type": "hangup", "call_id": call_id})
    );
    assert!(sw.open_devices.borrow().is_empty());
}

#[test]
fn planned_broker_call_rings_nobody() {
    let sw = FakeSwitch::new();
    let body =
        json!({"callType": "MESH", "creatorUser": 12, "invitedContacts": [{"userId": "bob"}]});
    let (s, log) = create(&sw, "dave-demo-token", body);
    assert_eq!(s, 200, "{log}");
    assert_eq!(log["callStatus"], "Planned");
    assert_eq!(log["creatorContact"]["userId"], "carol");
    assert_eq!(log["creatorContact"]["userDbId"], 12);
    assert_eq!(log["creatorContact"]["phoneNumber"], "+15550102");
    assert_eq!(log["invitedContacts"].as_array().unwrap().len(), 1);
    assert_eq!(event_list(&log), pairs(&[("Created", "carol")]));
    assert!(sw.sent().is_empty());
}

#[test]
fn closed_devices_are_forgotten() {
    let sw = FakeSwitch::new();
    let (_, _log) = create(&sw, "alice-demo-token", bob_body(true));
    assert!(sw.kv.borrow().contains_key("dev/100"));
    on_device_event(
        &sw,
        100,
        r#"{"type":"closed","reason":"switch shutting down"}"#,
    );
    assert!(!sw.kv.borrow().contains_key("dev/100"));
}

#[test]
fn a_dialled_call_the_switch_does_not_know() {
    let sw = FakeSwitch::new();
    sw.dial_goes_live.set(false);
    // Right after the dial it is taken as started (the switch may lag)...
    let (s, log) = create(&sw, "alice-demo-token", bob_body(true));
    assert_eq!(s, 200, "{log}");
    assert_eq!(log["callStatus"], "Started");
    assert_eq!(
        event_list(&log),
        pairs(&[("Created", "alice"), ("Join", "alice")])
    );
    // ...later, neither live nor recorded, it is over.
    let (_, log) = get(&sw, &format!("callId={}", log["callId"].as_str().unwrap()));
    assert_eq!(log["callStatus"], "Ended");
    assert_eq!(
        event_list(&log),
        pairs(&[("Created", "alice"), ("Join", "alice"), ("Ended", "alice")])
    );
    // An unreadable record still gives an ended call.
    let call_id = log["callId"].as_str().unwrap().to_string();
    sw.records
        .borrow_mut()
        .insert(call_id.clone(), "garbage".into());
    let (_, log) = get(&sw, &format!("callId={call_id}"));
    assert_eq!(log["callStatus"], "Ended");
    assert!(sw
        .logs
        .borrow()
        .iter()
        .any(|l| l.contains("call record unreadable")));
}

#[test]
fn logs_survive_a_fresh_instance() {
    // The plugin keeps nothing in memory: a second switch value sharing
    // only the kv (as after a reload or a restart) reads the same log.
    let sw = FakeSwitch::new();
    let (_, log) = create(&sw, "alice-demo-token", bob_body(false));
    let fresh = FakeSwitch::new();
    *fresh.kv.borrow_mut() = sw.kv.borrow().clone();
    let (s, again) = get(
        &fresh,
        &format!("callId={}", log["callId"].as_str().unwrap()),
    );
    assert_eq!(s, 200);
    assert_eq!(again, log);
    let (_, next) = create(&fresh, "alice-demo-token", bob_body(false));
    assert_eq!(next["id"], 2);
}
