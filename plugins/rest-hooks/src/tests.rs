//! The hooks against a fake switch (kv, log) and a fake backend that
//! records every POST and answers as told.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::hooks::{self, State, EVENTS_DROPPED, OUTBOX_NEXT};
use crate::host::{
    Call, ConnectVerdict, DialVerdict, Event, Host, Level, PartyStatus, Response, User, Verdict,
};
use crate::settings::{ClientConfig, OnError, RestPolicy, Settings};

const ALICE: &str = "5f1c5a1e-0000-4000-8000-00000000a11c";
const BOB: &str = "5f1c5a1e-0000-4000-8000-000000000b0b";
const CAROL: &str = "5f1c5a1e-0000-4000-8000-00000000ca01";
const CALL: &str = "6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5f";

type Answer = Result<Response, String>;

#[derive(Default)]
struct Fake {
    kv: RefCell<BTreeMap<String, Vec<u8>>>,
    kv_writes: RefCell<usize>,
    logs: RefCell<Vec<(Level, String)>>,
    /// (method, body) of every POST, in order.
    posts: RefCell<Vec<(String, Value)>>,
    /// Answers by method; the default is 200 with the body echoed.
    answers: RefCell<BTreeMap<String, Answer>>,
    timeouts: RefCell<Vec<u32>>,
    /// `clock.monotonic-ms`, moved by the tests.
    clock: Cell<u64>,
}

impl Fake {
    fn advance(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }

    /// Keys of the events waiting in the outbox.
    fn outbox(&self) -> Vec<String> {
        self.kv
            .borrow()
            .keys()
            .filter(|k| k.starts_with("outbox/"))
            .cloned()
            .collect()
    }

    fn answer(&self, method: &str, answer: Answer) {
        self.answers.borrow_mut().insert(method.into(), answer);
    }

    fn status(&self, method: &str, status: u16, body: &str) {
        self.answer(
            method,
            Ok(Response {
                status,
                body: body.as_bytes().to_vec(),
            }),
        );
    }

    fn methods(&self) -> Vec<String> {
        self.posts.borrow().iter().map(|(m, _)| m.clone()).collect()
    }

    fn bodies(&self, method: &str) -> Vec<Value> {
        self.posts
            .borrow()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn statuses(&self) -> Vec<String> {
        self.bodies("CallStatusEvent")
            .iter()
            .map(|b| b["status"].as_str().unwrap().to_string())
            .collect()
    }

    fn store_config(&self, user: &str, cfg: Value) {
        self.kv
            .borrow_mut()
            .insert(hooks::cfg_key(user), serde_json::to_vec(&cfg).unwrap());
    }

    fn warned(&self, text: &str) -> bool {
        self.logs
            .borrow()
            .iter()
            .any(|(l, m)| *l >= Level::Warn && m.contains(text))
    }
}

impl PartialOrd for Level {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        let rank = |l: &Level| match l {
            Level::Debug => 0,
            Level::Info => 1,
            Level::Warn => 2,
            Level::Error => 3,
        };
        rank(self).partial_cmp(&rank(other))
    }
}

impl Host for Fake {
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.borrow().get(key).cloned()
    }

    fn kv_set(&self, key: &str, value: &[u8]) {
        *self.kv_writes.borrow_mut() += 1;
        self.kv.borrow_mut().insert(key.into(), value.to_vec());
    }

    fn kv_delete(&self, key: &str) {
        *self.kv_writes.borrow_mut() += 1;
        self.kv.borrow_mut().remove(key);
    }

    fn monotonic_ms(&self) -> u64 {
        self.clock.get()
    }

    fn post_json(&self, url: &str, body: Vec<u8>, timeout_ms: u32) -> Result<Response, String> {
        let method = url
            .strip_prefix("http://backend:9000/rest/")
            .unwrap_or_else(|| panic!("unexpected URL {url}"))
            .to_string();
        let body: Value = serde_json::from_slice(&body).expect("a JSON body");
        self.posts.borrow_mut().push((method.clone(), body.clone()));
        self.timeouts.borrow_mut().push(timeout_ms);
        match self.answers.borrow().get(&method) {
            Some(answer) => answer.clone(),
            None => Ok(Response {
                status: 200,
                body: serde_json::to_vec(&body).unwrap(),
            }),
        }
    }
}

fn settings() -> Settings {
    Settings::parse(|key| match key {
        "url" => Some("http://backend:9000/rest/".into()),
        "timeout_ms" => Some("500".into()),
        _ => None,
    })
    .unwrap()
}

fn user(id: &str, name: &str, device: Option<&str>) -> User {
    User {
        id: id.into(),
        name: name.into(),
        numbers: vec![],
        device: device.map(String::from),
    }
}

fn alice() -> User {
    user(ALICE, "alice", Some("alice-desk"))
}

fn bob() -> User {
    user(BOB, "bob", None)
}

fn carol() -> User {
    user(CAROL, "carol", None)
}

fn call(parties: &[(User, PartyStatus)]) -> Call {
    let mut all = vec![(user(ALICE, "alice", None), PartyStatus::Joined)];
    all.extend(parties.iter().cloned());
    Call {
        id: CALL.into(),
        caller: user(ALICE, "alice", None),
        parties: all,
    }
}

fn dial(fake: &Fake, state: &mut State, targets: &[User]) -> DialVerdict {
    hooks::on_dial(fake, &settings(), state, &call(&[]), &alice(), targets)
}

// ---- settings ----

#[test]
fn settings_have_wcs_defaults_and_refuse_bad_values() {
    let s = Settings::parse(|k| (k == "url").then(|| "http://127.0.0.1:9000/rest".into())).unwrap();
    assert_eq!(s.url, "http://127.0.0.1:9000/rest");
    assert_eq!(s.app_key, "callswitch");
    assert_eq!(s.node_id, "callswitch");
    assert_eq!(s.timeout_ms, 15_000);
    assert_eq!(s.rest_on_error, OnError::Log);
    assert_eq!(s.event_attempts, 1);
    assert_eq!(s.outbox_max, 1000);
    assert!(Settings::parse(|_| None).unwrap_err().contains("`url`"));
    let bad = |key: &'static str, value: &'static str| {
        Settings::parse(move |k| match k {
            "url" => Some("http://h/rest".into()),
            k if k == key => Some(value.into()),
            _ => None,
        })
        .unwrap_err()
    };
    assert!(bad("timeout_ms", "0").contains("timeout_ms"));
    assert!(bad("timeout_ms", "soon").contains("timeout_ms"));
    assert!(bad("rest_on_error", "PANIC").contains("rest_on_error"));
    assert!(bad("app_key", " ").contains("app_key"));
    let url = |u: &'static str| Settings::parse(move |k| (k == "url").then(|| u.into()));
    assert_eq!(url("https://h/rest").unwrap().url, "https://h/rest");
    for wrong in ["ftp://h/rest", "https://", "h/rest"] {
        let e = url(wrong).unwrap_err();
        assert!(e.contains("http:// or https://"), "{wrong}: {e}");
    }
}

#[test]
fn rest_client_config_per_method_with_defaults() {
    let cfg = ClientConfig::parse(
        br#"{"call":{"restOnError":"fail","restPolicy":"OVERWRITE","restOverwrite":"callee, caller","restExclude":"hasVideo"},
            "answer":{"restPolicy":"DISABLE"},"sendMessage":{"restPolicy":"LOUD"}}"#,
    )
    .unwrap();
    let call = cfg.method("call", OnError::Log);
    assert_eq!(call.on_error, OnError::Fail);
    assert_eq!(call.policy, RestPolicy::Overwrite);
    assert_eq!(call.overwrite, ["callee", "caller"]);
    assert_eq!(call.exclude, ["hasVideo"]);
    assert!(call.may_overwrite("callee"));
    assert_eq!(
        cfg.method("answer", OnError::Log).policy,
        RestPolicy::Disable
    );
    let other = cfg.method("transfer", OnError::Fail);
    assert_eq!(
        (other.on_error, other.policy),
        (OnError::Fail, RestPolicy::Notify)
    );
    assert_eq!(
        cfg.method("sendMessage", OnError::Log).policy,
        RestPolicy::Notify
    );
    assert_eq!(cfg.problems().len(), 1, "{:?}", cfg.problems());
    assert!(ClientConfig::parse(b"[1]").is_none());
}

// ---- connect ----

#[test]
fn connect_admits_on_200_and_stores_the_rest_client_config() {
    let fake = Fake::default();
    fake.status(
        "connect",
        200,
        r#"{"restClientConfig":{"call":{"restOnError":"FAIL"}}}"#,
    );
    let v = hooks::on_connect(&fake, &settings(), &alice());
    assert_eq!(v, ConnectVerdict::Admit(None));
    assert_eq!(fake.methods(), ["connect", "ConnectionStatusEvent"]);
    let body = &fake.bodies("connect")[0];
    assert_eq!(body["nodeId"], "callswitch");
    assert_eq!(body["appKey"], "callswitch");
    assert_eq!(body["sessionId"], format!("{ALICE}/alice-desk"));
    assert_eq!(body["login"], "alice");
    assert_eq!(body["userId"], ALICE);
    assert_eq!(body["deviceLabel"], "alice-desk");
    assert_eq!(body["clientVersion"], "callswitch");
    assert_eq!(
        fake.bodies("ConnectionStatusEvent")[0]["status"],
        "ESTABLISHED"
    );
    assert_eq!(*fake.timeouts.borrow(), [500, 500]);
    let stored = hooks::client_config(&fake, ALICE);
    assert_eq!(stored.method("call", OnError::Log).on_error, OnError::Fail);
    assert_eq!(
        fake.kv.borrow()[&hooks::login_key("alice")],
        ALICE.as_bytes()
    );
    // The same answer again writes nothing; an answer without a config clears it.
    let writes = *fake.kv_writes.borrow();
    hooks::on_connect(&fake, &settings(), &alice());
    assert_eq!(*fake.kv_writes.borrow(), writes);
    fake.status("connect", 200, "{}");
    hooks::on_connect(&fake, &settings(), &alice());
    assert!(fake.kv_get(&hooks::cfg_key(ALICE)).is_none());
}

#[test]
fn connect_403_refuses_with_the_backends_reason() {
    let fake = Fake::default();
    fake.status("connect", 403, r#"{"reason":"account suspended"}"#);
    assert_eq!(
        hooks::on_connect(&fake, &settings(), &alice()),
        ConnectVerdict::Refuse("account suspended".into())
    );
    let event = &fake.bodies("ConnectionStatusEvent")[0];
    assert_eq!(event["status"], "FAILED");
    assert_eq!(event["info"], "account suspended");
    fake.status("connect", 403, "not json");
    assert_eq!(
        hooks::on_connect(&fake, &settings(), &alice()),
        ConnectVerdict::Refuse("rejected by the REST backend".into())
    );
}

#[test]
fn connect_errors_follow_rest_on_error() {
    let fake = Fake::default();
    fake.answer(
        "connect",
        Err("cannot connect to backend:9000: refused".into()),
    );
    // Default LOG: admitted, logged.
    assert_eq!(
        hooks::on_connect(&fake, &settings(), &alice()),
        ConnectVerdict::Admit(None)
    );
    assert!(fake.warned("restOnError LOG"));
    // 500 and garbage are errors too.
    fake.status("connect", 500, "oops");
    assert_eq!(
        hooks::on_connect(&fake, &settings(), &alice()),
        ConnectVerdict::Admit(None)
    );
    fake.status("connect", 200, "<html>");
    assert_eq!(
        hooks::on_connect(&fake, &settings(), &alice()),
        ConnectVerdict::Admit(None)
    );
    // FAIL from the stored config refuses.
    fake.store_config(ALICE, json!({"connect": {"restOnError": "FAIL"}}));
    match hooks::on_connect(&fake, &settings(), &alice()) {
        ConnectVerdict::Refuse(reason) => {
            assert!(
                reason.starts_with("REST backend error: connect: "),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fake.bodies("ConnectionStatusEvent").last().unwrap()["status"],
        "FAILED"
    );
    // ... and so does the plugin's own default for users without a config.
    let s = Settings {
        rest_on_error: OnError::Fail,
        ..settings()
    };
    assert!(matches!(
        hooks::on_connect(&fake, &s, &bob()),
        ConnectVerdict::Refuse(_)
    ));
}

#[test]
fn connect_overwrites_the_device_label_only_when_allowed() {
    let fake = Fake::default();
    fake.status("connect", 200, r#"{"deviceLabel":"softphone-7"}"#);
    assert_eq!(
        hooks::on_connect(&fake, &settings(), &alice()),
        ConnectVerdict::Admit(None)
    );
    fake.store_config(
        ALICE,
        json!({"connect": {"restPolicy": "OVERWRITE", "restOverwrite": "deviceLabel"}}),
    );
    fake.status(
        "connect",
        200,
        r#"{"deviceLabel":"softphone-7","restClientConfig":{"connect":{"restPolicy":"OVERWRITE","restOverwrite":"deviceLabel"}}}"#,
    );
    assert_eq!(
        hooks::on_connect(&fake, &settings(), &alice()),
        ConnectVerdict::Admit(Some("softphone-7".into()))
    );
    let last = fake.bodies("ConnectionStatusEvent").pop().unwrap();
    assert_eq!(last["sessionId"], format!("{ALICE}/softphone-7"));
}

#[test]
fn connect_disabled_sends_nothing_but_the_event() {
    let fake = Fake::default();
    fake.store_config(
        ALICE,
        json!({"connect": {"restPolicy": "DISABLE"}, "ConnectionStatusEvent": {"restPolicy": "DISABLE"}}),
    );
    assert_eq!(
        hooks::on_connect(&fake, &settings(), &alice()),
        ConnectVerdict::Admit(None)
    );
    assert!(fake.methods().is_empty(), "{:?}", fake.methods());
}

// ---- call and OnCallEvent ----

#[test]
fn a_call_is_put_to_the_backend_then_each_callee_incoming() {
    let fake = Fake::default();
    let mut state = State::default();
    assert_eq!(dial(&fake, &mut state, &[bob()]), DialVerdict::Allow);
    assert_eq!(fake.methods(), ["call", "OnCallEvent"]);
    let call = &fake.bodies("call")[0];
    assert_eq!(call["callId"], CALL);
    assert_eq!(call["caller"], "alice");
    assert_eq!(call["callee"], "bob");
    assert_eq!(call["hasAudio"], true);
    assert_eq!(call["hasVideo"], false);
    assert_eq!(call["incoming"], false);
    assert_eq!(call["sessionId"], format!("{ALICE}/alice-desk"));
    let incoming = &fake.bodies("OnCallEvent")[0];
    assert_eq!(incoming["incoming"], true);
    assert_eq!(incoming["status"], "PENDING");
    assert_eq!(incoming["callee"], "bob");
    assert_eq!(incoming["caller"], "alice");
    assert_eq!(incoming["sessionId"], BOB);
}

#[test]
fn a_call_403_is_denied_with_the_reason_and_reports_no_events() {
    let fake = Fake::default();
    let mut state = State::default();
    fake.status("call", 403, r#"{"reason":"no credit"}"#);
    assert_eq!(
        dial(&fake, &mut state, &[bob()]),
        DialVerdict::Deny("no credit".into())
    );
    assert_eq!(fake.methods(), ["call"], "the callee is not asked");
    fake.status("call", 403, "");
    assert_eq!(
        dial(&fake, &mut state, &[bob()]),
        DialVerdict::Deny("forbidden by the REST backend".into())
    );
    // Its `ended` is not reported: the backend refused the call itself.
    hooks::on_event(
        &fake,
        &settings(),
        &mut state,
        &call(&[]),
        &Event::Ended("denied".into()),
    );
    assert!(fake.bodies("CallStatusEvent").is_empty());
}

#[test]
fn call_errors_follow_rest_on_error() {
    let fake = Fake::default();
    let mut state = State::default();
    fake.answer(
        "call",
        Err("no response from backend:9000 within 500 ms".into()),
    );
    assert_eq!(dial(&fake, &mut state, &[bob()]), DialVerdict::Allow);
    assert!(fake.warned("REST `call` failed: no response"));
    fake.store_config(ALICE, json!({"call": {"restOnError": "FAIL"}}));
    match dial(&fake, &mut state, &[bob()]) {
        DialVerdict::Deny(reason) => assert_eq!(
            reason,
            "REST backend error: call: no response from backend:9000 within 500 ms"
        ),
        other => panic!("{other:?}"),
    }
    fake.status("call", 502, "bad gateway");
    assert!(
        matches!(dial(&fake, &mut state, &[bob()]), DialVerdict::Deny(r) if r.contains("HTTP 502"))
    );
}

#[test]
fn overwrite_of_the_callee_redirects_the_call() {
    let fake = Fake::default();
    let mut state = State::default();
    fake.status("call", 200, r#"{"callee":"carol"}"#);
    // NOTIFY (the default): the answer's fields are ignored.
    assert_eq!(dial(&fake, &mut state, &[bob()]), DialVerdict::Allow);
    // OVERWRITE of callee: carol instead of bob, and carol is the one asked.
    fake.store_config(
        ALICE,
        json!({"call": {"restPolicy": "OVERWRITE", "restOverwrite": "callee"}}),
    );
    fake.posts.borrow_mut().clear();
    fake.kv_set(&hooks::login_key("carol"), CAROL.as_bytes());
    fake.store_config(CAROL, json!({"OnCallEvent": {"restExclude": "hasVideo"}}));
    assert_eq!(
        dial(&fake, &mut state, &[bob()]),
        DialVerdict::Redirect(vec!["carol".into()])
    );
    let incoming = fake.bodies("OnCallEvent");
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0]["callee"], "carol");
    assert_eq!(incoming[0]["sessionId"], CAROL);
    assert!(
        incoming[0].get("hasVideo").is_none(),
        "carol's restExclude applies"
    );
    // A callee given by user id finds that user's config too.
    fake.status("call", 200, &format!(r#"{{"callee":"{CAROL}"}}"#));
    fake.kv.borrow_mut().remove(&hooks::login_key("carol"));
    assert_eq!(
        dial(&fake, &mut state, &[bob()]),
        DialVerdict::Redirect(vec![CAROL.into()])
    );
    assert!(fake.bodies("OnCallEvent")[1].get("hasVideo").is_none());
    fake.status("call", 200, r#"{"callee":"carol"}"#);
    // OVERWRITE listing other fields only: no redirect.
    fake.store_config(
        ALICE,
        json!({"call": {"restPolicy": "OVERWRITE", "restOverwrite": "caller"}}),
    );
    assert_eq!(dial(&fake, &mut state, &[bob()]), DialVerdict::Allow);
    // The same callee: nothing to redirect.
    fake.store_config(
        ALICE,
        json!({"call": {"restPolicy": "OVERWRITE", "restOverwrite": "callee"}}),
    );
    fake.status("call", 200, r#"{"callee":"bob"}"#);
    assert_eq!(dial(&fake, &mut state, &[bob()]), DialVerdict::Allow);
}

#[test]
fn incoming_refusals_deny_or_narrow_the_call() {
    let fake = Fake::default();
    let mut state = State::default();
    fake.status("OnCallEvent", 403, "{}");
    assert_eq!(
        dial(&fake, &mut state, &[bob()]),
        DialVerdict::Deny("forbidden".into())
    );
    // A group call: a forbidden callee is left out, the others ring.
    struct PerCallee(Fake);
    impl Host for PerCallee {
        fn log(&self, l: Level, m: &str) {
            self.0.log(l, m)
        }
        fn kv_get(&self, k: &str) -> Option<Vec<u8>> {
            self.0.kv_get(k)
        }
        fn kv_set(&self, k: &str, v: &[u8]) {
            self.0.kv_set(k, v)
        }
        fn kv_delete(&self, k: &str) {
            self.0.kv_delete(k)
        }
        fn monotonic_ms(&self) -> u64 {
            self.0.monotonic_ms()
        }
        fn post_json(&self, url: &str, body: Vec<u8>, t: u32) -> Result<Response, String> {
            let refused = url.ends_with("/OnCallEvent")
                && serde_json::from_slice::<Value>(&body).unwrap()["callee"] == "bob";
            let answer = self.0.post_json(url, body, t)?;
            Ok(if refused {
                Response {
                    status: 403,
                    body: br#"{"reason":"bob is on leave"}"#.to_vec(),
                }
            } else {
                answer
            })
        }
    }
    let host = PerCallee(Fake::default());
    let v = hooks::on_dial(
        &host,
        &settings(),
        &mut state,
        &call(&[]),
        &alice(),
        &[bob(), carol()],
    );
    assert_eq!(v, DialVerdict::Redirect(vec!["carol".into()]));
    assert_eq!(host.0.bodies("call")[0]["callees"], json!(["bob", "carol"]));
    let v = hooks::on_dial(
        &host,
        &settings(),
        &mut state,
        &call(&[]),
        &alice(),
        &[bob()],
    );
    assert_eq!(v, DialVerdict::Deny("forbidden: bob is on leave".into()));
}

#[test]
fn incoming_errors_follow_the_callees_rest_on_error() {
    let fake = Fake::default();
    let mut state = State::default();
    fake.status("OnCallEvent", 500, "");
    assert_eq!(dial(&fake, &mut state, &[bob()]), DialVerdict::Allow);
    fake.store_config(BOB, json!({"OnCallEvent": {"restOnError": "FAIL"}}));
    assert!(matches!(
        dial(&fake, &mut state, &[bob()]),
        DialVerdict::Deny(r) if r.starts_with("forbidden (REST backend error: OnCallEvent: HTTP 500")
    ));
}

#[test]
fn disabled_and_excluded_methods() {
    let fake = Fake::default();
    let mut state = State::default();
    fake.store_config(
        ALICE,
        json!({"call": {"restPolicy": "DISABLE"}, "answer": {"restExclude": "caller,hasAudio"}}),
    );
    fake.store_config(BOB, json!({"OnCallEvent": {"restPolicy": "DISABLE"}}));
    fake.status("call", 403, "");
    assert_eq!(dial(&fake, &mut state, &[bob()]), DialVerdict::Allow);
    assert!(fake.methods().is_empty());
    let answerer = user(ALICE, "alice", Some("desk"));
    assert_eq!(
        hooks::on_answer(&fake, &settings(), &call(&[]), &answerer),
        Verdict::Allow
    );
    let body = &fake.bodies("answer")[0];
    assert!(body.get("caller").is_none() && body.get("hasAudio").is_none());
    assert_eq!(body["callee"], "alice");
}

// ---- answer, transfer, message ----

#[test]
fn answer_transfer_and_message_may_be_forbidden() {
    let fake = Fake::default();
    let s = settings();
    let c = call(&[(bob(), PartyStatus::Ringing)]);
    let bob_desk = user(BOB, "bob", Some("desk"));
    fake.status("answer", 403, r#"{"reason":"not now"}"#);
    assert_eq!(
        hooks::on_answer(&fake, &s, &c, &bob_desk),
        Verdict::Deny("not now".into())
    );
    assert_eq!(fake.bodies("answer")[0]["caller"], "alice");
    fake.status("transfer", 403, "{}");
    assert_eq!(
        hooks::on_transfer(&fake, &s, &c, &bob(), &carol()),
        Verdict::Deny("forbidden by the REST backend".into())
    );
    let t = &fake.bodies("transfer")[0];
    assert_eq!(
        (t["from"].as_str(), t["target"].as_str()),
        (Some("bob"), Some("carol"))
    );
    fake.status("sendMessage", 403, r#"{"reason":"spam"}"#);
    assert_eq!(
        hooks::on_message(&fake, &s, &alice(), &bob(), r#"{"text":"hi"}"#),
        Verdict::Deny("spam".into())
    );
    assert!(fake.bodies("MessageStatusEvent").is_empty());
}

#[test]
fn an_allowed_message_is_reported_sent() {
    let fake = Fake::default();
    assert_eq!(
        hooks::on_message(&fake, &settings(), &alice(), &bob(), r#"{"text":"hi"}"#),
        Verdict::Allow
    );
    assert_eq!(fake.methods(), ["sendMessage", "MessageStatusEvent"]);
    let sent = &fake.bodies("sendMessage")[0];
    assert_eq!(sent["from"], "alice");
    assert_eq!(sent["to"], "bob");
    assert_eq!(sent["body"], r#"{"text":"hi"}"#);
    assert_eq!(fake.bodies("MessageStatusEvent")[0]["status"], "SENT");
    // FAIL denies on an error, LOG lets it through.
    fake.answer("sendMessage", Err("down".into()));
    assert_eq!(
        hooks::on_message(&fake, &settings(), &alice(), &bob(), "{}"),
        Verdict::Allow
    );
    fake.store_config(ALICE, json!({"sendMessage": {"restOnError": "FAIL"}}));
    assert_eq!(
        hooks::on_message(&fake, &settings(), &alice(), &bob(), "{}"),
        Verdict::Deny("REST backend error: sendMessage: down".into())
    );
}

// ---- events ----

fn event(fake: &Fake, state: &mut State, c: &Call, e: Event) {
    hooks::on_event(fake, &settings(), state, c, &e);
}

#[test]
fn a_calls_events_are_reported_in_order() {
    let fake = Fake::default();
    let mut state = State::default();
    assert_eq!(dial(&fake, &mut state, &[bob()]), DialVerdict::Allow);
    let ringing = call(&[(bob(), PartyStatus::Ringing)]);
    let joined = call(&[(bob(), PartyStatus::Joined)]);
    event(&fake, &mut state, &ringing, Event::Ringing(bob()));
    event(&fake, &mut state, &ringing, Event::Ringing(bob())); // a second device
    event(&fake, &mut state, &joined, Event::Answered(bob()));
    event(&fake, &mut state, &joined, Event::Joined(bob()));
    event(
        &fake,
        &mut state,
        &joined,
        Event::Held(user(ALICE, "alice", None)),
    );
    event(
        &fake,
        &mut state,
        &joined,
        Event::Resumed(user(ALICE, "alice", None)),
    );
    event(&fake, &mut state, &joined, Event::Dtmf(bob()));
    event(&fake, &mut state, &joined, Event::Left(bob()));
    event(&fake, &mut state, &joined, Event::Ended("hangup".into()));
    assert_eq!(
        fake.statuses(),
        [
            "NEW",
            "RING",
            "ESTABLISHED",
            "HOLD",
            "ESTABLISHED",
            "FINISH"
        ]
    );
    let events = fake.bodies("CallStatusEvent");
    for e in &events {
        assert_eq!(e["callId"], CALL);
        assert_eq!(e["caller"], "alice");
        assert_eq!(e["callee"], "bob");
        assert_eq!(e["sessionId"], format!("{ALICE}/alice-desk"));
    }
    assert_eq!(events.last().unwrap()["info"], "hangup");
    assert!(events[0].get("info").is_none());
}

#[test]
fn failures_carry_info() {
    let fake = Fake::default();
    let mut state = State::default();
    let c = call(&[(bob(), PartyStatus::Declined)]);
    event(&fake, &mut state, &c, Event::Declined(bob()));
    event(&fake, &mut state, &c, Event::Ended("declined".into()));
    let c = call(&[(bob(), PartyStatus::Unavailable)]);
    event(&fake, &mut state, &c, Event::NoAnswer(bob()));
    let c = call(&[(bob(), PartyStatus::NoAnswer)]);
    event(&fake, &mut state, &c, Event::NoAnswer(bob()));
    event(&fake, &mut state, &c, Event::Busy(bob()));
    let infos: Vec<(String, Value)> = fake
        .bodies("CallStatusEvent")
        .into_iter()
        .map(|b| (b["status"].as_str().unwrap().to_string(), b["info"].clone()))
        .collect();
    assert_eq!(
        infos,
        [
            ("NEW".into(), Value::Null),
            ("FAILED".into(), json!("declined")),
            ("FINISH".into(), json!("declined")),
            ("NEW".into(), Value::Null),
            ("FAILED".into(), json!("unavailable")),
            ("FAILED".into(), json!("no_answer")),
            ("BUSY".into(), Value::Null),
        ]
    );
    // Calls that never went through on-dial (placed by an admin or a
    // plugin) use the caller's id as the session.
    assert_eq!(fake.bodies("CallStatusEvent")[0]["sessionId"], ALICE);
}

fn statuses_with_ids(fake: &Fake) -> Vec<(String, String)> {
    fake.bodies("CallStatusEvent")
        .iter()
        .map(|b| {
            (
                b["callId"].as_str().unwrap().to_string(),
                b["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_failed_event_waits_in_the_outbox_and_later_ones_queue_behind_it() {
    let fake = Fake::default();
    let mut state = State::default();
    fake.status("CallStatusEvent", 503, "");
    let c = call(&[(bob(), PartyStatus::Ringing)]);
    event(&fake, &mut state, &c, Event::Ringing(bob()));
    // NEW failed once (no immediate retry); RING was queued behind it unsent.
    assert_eq!(fake.statuses(), ["NEW"]);
    assert_eq!(fake.outbox().len(), 2);
    assert!(fake.warned("`CallStatusEvent` failed: HTTP 503"));
    // The backend recovers, but the backoff (100 ms) has not passed: the
    // next hook sends nothing old, and its own event queues.
    fake.status("CallStatusEvent", 200, "");
    fake.advance(50);
    let joined = call(&[(bob(), PartyStatus::Joined)]);
    event(&fake, &mut state, &joined, Event::Answered(bob()));
    assert_eq!(fake.statuses(), ["NEW"]);
    assert_eq!(fake.outbox().len(), 3);
    // Past the backoff, any hook flushes oldest first, then its own event.
    fake.advance(60);
    event(&fake, &mut state, &joined, Event::Ended("hangup".into()));
    assert_eq!(
        fake.statuses(),
        ["NEW", "NEW", "RING", "ESTABLISHED", "FINISH"]
    );
    assert!(fake.outbox().is_empty());
    assert!(fake.kv.borrow().get(EVENTS_DROPPED).is_none());
    // Decisions are unaffected: a hook that flushes still answers.
    fake.status("CallStatusEvent", 500, "");
    let c2 = Call {
        id: "second".into(),
        ..call(&[(bob(), PartyStatus::Ringing)])
    };
    event(&fake, &mut state, &c2, Event::Ringing(bob()));
    fake.status("CallStatusEvent", 200, "");
    fake.advance(1_000);
    assert_eq!(
        hooks::on_answer(&fake, &settings(), &c2, &bob()),
        Verdict::Allow
    );
    let got = statuses_with_ids(&fake);
    assert_eq!(
        got[got.len() - 2..],
        [
            ("second".to_string(), "NEW".to_string()),
            ("second".to_string(), "RING".to_string())
        ]
    );
    assert!(fake.outbox().is_empty());
    // Disabled events are neither sent nor queued.
    fake.store_config(ALICE, json!({"CallStatusEvent": {"restPolicy": "DISABLE"}}));
    let before = fake.posts.borrow().len();
    event(&fake, &mut state, &c, Event::Ringing(bob()));
    assert_eq!(fake.posts.borrow().len(), before);
    assert!(fake.outbox().is_empty());
}

#[test]
fn the_backoff_doubles_up_to_its_cap_and_resets_on_success() {
    let fake = Fake::default();
    let s = settings();
    fake.status("ConnectionStatusEvent", 500, "");
    fake.status("connect", 200, "{}");
    hooks::on_connect(&fake, &s, &alice());
    let tries = || fake.bodies("ConnectionStatusEvent").len();
    assert_eq!(tries(), 1);
    // Each failed flush waits twice as long: 100 (first failure), then
    // 200, 400, ... up to 5000.
    let mut waits = Vec::new();
    for _ in 0..8 {
        let before = tries();
        let mut waited = 0;
        while tries() == before {
            fake.advance(10);
            waited += 10;
            hooks::on_answer(&fake, &s, &call(&[(bob(), PartyStatus::Joined)]), &bob());
            assert!(waited <= 6_000, "no retry after {waited} ms");
        }
        waits.push(waited);
    }
    assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    // One try per flush (a flush stops at the first failure); the one
    // event is still waiting.
    assert_eq!(fake.outbox().len(), 1);
    // Success empties the outbox in order and resets the backoff.
    fake.status("ConnectionStatusEvent", 200, "");
    fake.advance(5_000);
    hooks::on_answer(&fake, &s, &call(&[(bob(), PartyStatus::Joined)]), &bob());
    assert!(fake.outbox().is_empty());
    fake.status("ConnectionStatusEvent", 500, "");
    hooks::on_connect(&fake, &s, &alice());
    let before = tries();
    fake.advance(100);
    hooks::on_answer(&fake, &s, &call(&[(bob(), PartyStatus::Joined)]), &bob());
    assert_eq!(tries(), before + 1, "the backoff starts again at 100 ms");
}

#[test]
fn a_flush_sends_at_most_twenty_events_per_hook() {
    let fake = Fake::default();
    let s = settings();
    fake.status("MessageStatusEvent", 500, "");
    for _ in 0..30 {
        hooks::on_message(&fake, &s, &alice(), &bob(), "hi");
    }
    assert_eq!(fake.outbox().len(), 30);
    fake.status("MessageStatusEvent", 200, "");
    fake.advance(200);
    hooks::on_answer(&fake, &s, &call(&[(bob(), PartyStatus::Joined)]), &bob());
    assert_eq!(fake.outbox().len(), 10);
    hooks::on_answer(&fake, &s, &call(&[(bob(), PartyStatus::Joined)]), &bob());
    assert!(fake.outbox().is_empty());
    // The outbox is persistent: a fresh State (a reload) still flushes it;
    // nothing about it lives in memory.
    assert_eq!(fake.kv.borrow()[OUTBOX_NEXT], b"30");
}

#[test]
fn a_full_outbox_drops_its_oldest_event_and_counts_it() {
    let fake = Fake::default();
    let mut state = State::default();
    let s = Settings::parse(|key| match key {
        "url" => Some("http://backend:9000/rest/".into()),
        "outbox_max" => Some("3".into()),
        _ => None,
    })
    .unwrap();
    fake.status("CallStatusEvent", 503, "");
    let ringing = call(&[(bob(), PartyStatus::Ringing)]);
    let joined = call(&[(bob(), PartyStatus::Joined)]);
    hooks::on_event(&fake, &s, &mut state, &ringing, &Event::Ringing(bob()));
    hooks::on_event(&fake, &s, &mut state, &joined, &Event::Answered(bob()));
    // NEW, RING, ESTABLISHED fill it; HOLD drops NEW.
    hooks::on_event(&fake, &s, &mut state, &joined, &Event::Held(bob()));
    assert_eq!(fake.outbox().len(), 3);
    assert_eq!(fake.kv.borrow()[EVENTS_DROPPED], b"1");
    assert!(fake
        .logs
        .borrow()
        .iter()
        .any(|(l, m)| *l == Level::Error && m.contains("outbox full")));
    hooks::on_event(&fake, &s, &mut state, &joined, &Event::Ended("x".into()));
    assert_eq!(fake.kv.borrow()[EVENTS_DROPPED], b"2");
    // The newest state wins: what is left is delivered, in order.
    fake.status("CallStatusEvent", 200, "");
    fake.advance(10_000);
    hooks::on_answer(&fake, &s, &joined, &bob());
    let statuses = fake.statuses();
    assert_eq!(
        statuses[statuses.len() - 3..],
        ["ESTABLISHED", "HOLD", "FINISH"]
    );
    assert!(fake.outbox().is_empty());
}
