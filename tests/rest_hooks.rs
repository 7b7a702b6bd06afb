//! The `rest-hooks` policy (Flashphoner WCS REST hooks) end to end: the
//! plugin built from `plugins/rest-hooks`, loaded into a real switch, puts
//! connections, calls, answers and messages to a real HTTP backend that
//! this test runs on 127.0.0.1 (hyper), which records every request and
//! answers as each test programs it: 200, 403, slowly, garbage, or not at
//! all.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use callswitch::client::Client;
use callswitch::wire::{ErrorCode, ServerMessage};
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// The plugin's request timeout in these tests (`timeout_ms`).
const TIMEOUT_MS: u64 = 500;

/// How the backend answers one method.
#[derive(Clone, Debug)]
enum Reply {
    /// 200 with the request's body (what WCS asks backends to do).
    Echo,
    /// This status with this JSON.
    Json(u16, Value),
    /// This status with this text (not JSON).
    Text(u16, &'static str),
    /// Echo, after this long.
    Slow(Duration),
}

/// One request the backend got: the method (the path after `/rest/`) and
/// the JSON body.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    body: Value,
    /// The status the backend answered.
    status: u16,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Req>>,
    replies: Mutex<BTreeMap<String, Reply>>,
}

/// The operator's backend: a hyper HTTP/1.1 server on 127.0.0.1.
struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Backend {
    async fn start() -> Backend {
        Backend::serve(None).await
    }

    /// The backend over HTTPS with a self-signed certificate for
    /// 127.0.0.1, written as PEM to `cert_pem`.
    async fn start_tls(cert_pem: &std::path::Path) -> Backend {
        use tokio_rustls::rustls;
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        std::fs::write(cert_pem, cert.cert.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        Backend::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, state.clone()));
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(tls) => {
                            // A client that does not trust the certificate
                            // gives up in the handshake.
                            if let Ok(stream) = tls.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        Backend {
            addr,
            shared,
            server,
        }
    }

    /// Answers `method` this way from now on.
    fn reply(&self, method: &str, reply: Reply) {
        self.shared
            .replies
            .lock()
            .unwrap()
            .insert(method.into(), reply);
    }

    fn requests(&self) -> Vec<Req> {
        self.shared.requests.lock().unwrap().clone()
    }

    fn bodies(&self, method: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .map(|r| r.body)
            .collect()
    }

    /// Waits until the requests satisfy `done` (events arrive after the fact).
    async fn until(&self, what: &str, done: impl Fn(&[Req]) -> bool) -> Vec<Req> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the backend never got {what}; it got {requests:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops listening: later connections are refused.
    async fn shut(self) -> Arc<Shared> {
        self.server.abort();
        let _ = self.server.await;
        self.shared
    }
}

async fn handle(
    req: hyper::Request<Incoming>,
    state: Arc<Shared>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = path.strip_prefix("/rest/").unwrap_or(&path).to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = state
        .replies
        .lock()
        .unwrap()
        .get(&method)
        .cloned()
        .unwrap_or(Reply::Echo);
    let status = match &reply {
        Reply::Json(status, _) | Reply::Text(status, _) => *status,
        Reply::Echo | Reply::Slow(_) => 200,
    };
    state.requests.lock().unwrap().push(Req {
        method: method.clone(),
        body: json,
        status,
    });
    let (status, bytes) = match reply {
        Reply::Echo => (200, body),
        Reply::Json(status, value) => (status, Bytes::from(value.to_string())),
        Reply::Text(status, text) => (status, Bytes::from_static(text.as_bytes())),
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (200, body)
        }
    };
    Ok(hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(bytes))
        .unwrap())
}

/// The `[[plugin]]` table: requests go to `url_port`, `http_hosts` allows
/// `allowed_port`; `config` adds settings to `[plugin.config]`.
fn table(url_port: u16, allowed_port: u16, config: &str) -> String {
    format!(
        r#"
[[plugin]]
name = "rest-hooks"
path = "builtin:rest-hooks"
world = "policy"
grants = ["log", "kv", "clock", "config", "http-client"]
http_hosts = ["127.0.0.1:{allowed_port}"]
deadline_ms = 1000
on_error = "allow"
[plugin.config]
url = "http://127.0.0.1:{url_port}/rest"
timeout_ms = {TIMEOUT_MS}
{config}
"#,
    )
}

async fn switch_for(backend: &Backend) -> TestSwitch {
    let port = backend.addr.port();
    switch_with(table(port, port, "")).await
}

async fn switch_with(extra: String) -> TestSwitch {
    TestSwitch::start_with(Knobs {
        extra,
        ..Knobs::default()
    })
    .await
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn rings(events: &mut callswitch::client::Events, call_id: uuid::Uuid, who: &str) {
    expect(
        events,
        who,
        |m| matches!(m, ServerMessage::Incoming { call_id: c, .. } if *c == call_id),
    )
    .await;
}

/// A `restClientConfig` that every `connect` answer carries.
fn connect_with_config(backend: &Backend, config: Value) {
    backend.reply(
        "connect",
        Reply::Json(200, json!({ "restClientConfig": config })),
    );
}

fn statuses_of(requests: &[Req], call_id: uuid::Uuid) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method == "CallStatusEvent" && r.body["callId"] == call_id.to_string())
        .map(|r| r.body["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test]
async fn the_backend_admits_a_call_that_rings_and_connects() {
    let backend = Backend::start().await;
    let sw = switch_for(&backend).await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;

    let connects = backend.bodies("connect");
    assert_eq!(connects.len(), 2, "{connects:#?}");
    let c = &connects[0];
    assert_eq!(c["login"], "alice");
    assert_eq!(c["appKey"], "callswitch");
    assert_eq!(c["nodeId"], "callswitch");
    assert_eq!(c["clientVersion"], "callswitch");
    assert_eq!(c["deviceLabel"], "alice-test");
    assert!(c["sessionId"].as_str().unwrap().ends_with("/alice-test"));
    let established = backend.bodies("ConnectionStatusEvent");
    assert_eq!(established.len(), 2);
    assert!(established.iter().all(|e| e["status"] == "ESTABLISHED"));

    let call = &backend.bodies("call")[0];
    assert_eq!(call["callId"], call_id.to_string());
    assert_eq!(call["caller"], "alice");
    assert_eq!(call["callee"], "bob");
    assert_eq!(call["hasAudio"], true);
    assert_eq!(call["hasVideo"], false);
    let incoming = &backend.bodies("OnCallEvent")[0];
    assert_eq!(incoming["callId"], call_id.to_string());
    assert_eq!(incoming["incoming"], true);
    assert_eq!(incoming["status"], "PENDING");
    assert_eq!(incoming["callee"], "bob");
    let answer = &backend.bodies("answer")[0];
    assert_eq!(answer["callId"], call_id.to_string());
    assert_eq!(answer["callee"], "bob");
    // Direct invocations come in the order of the call.
    let order: Vec<String> = backend
        .requests()
        .into_iter()
        .map(|r| r.method)
        .filter(|m| ["call", "OnCallEvent", "answer"].contains(&m.as_str()))
        .collect();
    assert_eq!(order, ["call", "OnCallEvent", "answer"]);
}

#[tokio::test]
async fn a_calls_status_events_reach_the_backend_in_order() {
    let backend = Backend::start().await;
    let sw = switch_for(&backend).await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    alice.hold(call_id).await.unwrap();
    alice.unhold(call_id).await.unwrap();
    alice.hangup(call_id).await.unwrap();
    let requests = backend
        .until("FINISH", |r| {
            statuses_of(r, call_id).contains(&"FINISH".into())
        })
        .await;
    assert_eq!(
        statuses_of(&requests, call_id),
        [
            "NEW",
            "RING",
            "ESTABLISHED",
            "HOLD",
            "ESTABLISHED",
            "FINISH"
        ]
    );
    let finish = requests
        .iter()
        .rfind(|r| r.method == "CallStatusEvent")
        .unwrap();
    assert_eq!(finish.body["info"], "hangup");
    assert_eq!(finish.body["caller"], "alice");
    assert_eq!(finish.body["callee"], "bob");

    // A declined call: FAILED with the reason, then FINISH.
    let declined = alice.dial(&["bob"], None).await.unwrap();
    rings(&mut be, declined, "bob rings again").await;
    bob.decline(declined).await.unwrap();
    let requests = backend
        .until("FINISH of the declined call", |r| {
            statuses_of(r, declined).contains(&"FINISH".into())
        })
        .await;
    assert_eq!(
        statuses_of(&requests, declined),
        ["NEW", "RING", "FAILED", "FINISH"]
    );
    let failed = requests
        .iter()
        .find(|r| r.body["status"] == "FAILED" && r.body["callId"] == declined.to_string())
        .unwrap();
    assert_eq!(failed.body["info"], "declined");
}

/// `CallStatusEvent`s the backend answered 200, as (call id, status).
fn delivered_statuses(requests: &[Req]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|r| r.method == "CallStatusEvent" && r.status == 200)
        .map(|r| {
            (
                r.body["callId"].as_str().unwrap_or("?").to_string(),
                r.body["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn events_the_backend_failed_are_delivered_later_in_order() {
    let backend = Backend::start().await;
    let sw = switch_for(&backend).await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    // The backend fails every event of the first call...
    backend.reply(
        "CallStatusEvent",
        Reply::Json(500, json!({"error": "down"})),
    );
    let first = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    alice.hangup(first).await.unwrap();
    backend
        .until("a failed CallStatusEvent", |r| {
            !statuses_of(r, first).is_empty()
        })
        .await;
    // ... which is not held up: the call went on regardless. Then it
    // recovers; once the backoff (at most 5 s) has passed, the next hooks
    // (the second call's) send the outbox first, oldest first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    backend.reply("CallStatusEvent", Reply::Echo);
    tokio::time::sleep(Duration::from_millis(5_300)).await;
    let second = connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    alice.hangup(second).await.unwrap();
    let (first, second) = (first.to_string(), second.to_string());
    let requests = backend
        .until("the second call's FINISH", |r| {
            delivered_statuses(r).contains(&(second.clone(), "FINISH".into()))
        })
        .await;
    let expected: Vec<(String, String)> = [&first, &second]
        .into_iter()
        .flat_map(|id| {
            ["NEW", "RING", "ESTABLISHED", "FINISH"]
                .into_iter()
                .map(move |s| (id.clone(), s.to_string()))
        })
        .collect();
    assert_eq!(delivered_statuses(&requests), expected);
}

#[tokio::test]
async fn connect_403_refuses_the_client_with_the_reason() {
    let backend = Backend::start().await;
    backend.reply(
        "connect",
        Reply::Json(403, json!({"reason": "account suspended"})),
    );
    let sw = switch_for(&backend).await;
    let err = Client::connect(sw.options("alice-demo-token"))
        .await
        .err()
        .expect("hello refused");
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(
        err.to_string().contains("account suspended") && err.to_string().contains("rest-hooks"),
        "{err}"
    );
    let failed = backend
        .until("ConnectionStatusEvent", |r| {
            r.iter().any(|r| r.method == "ConnectionStatusEvent")
        })
        .await;
    let event = failed
        .iter()
        .find(|r| r.method == "ConnectionStatusEvent")
        .unwrap();
    assert_eq!(event.body["status"], "FAILED");
    assert_eq!(event.body["info"], "account suspended");
    // Plain admin connections are not put to the backend.
    sw.admin().await.stats().await.unwrap();
}

#[tokio::test]
async fn call_403_refuses_the_dial_with_the_reason() {
    let backend = Backend::start().await;
    backend.reply(
        "call",
        Reply::Json(403, json!({"reason": "no credit left"})),
    );
    let sw = switch_for(&backend).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let err = alice.dial(&["bob"], None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("no credit left"), "{err}");
    expect_quiet(&mut be, 300).await;
    assert!(backend.bodies("OnCallEvent").is_empty());
}

#[tokio::test]
async fn an_incoming_403_refuses_the_call_before_the_callee_rings() {
    let backend = Backend::start().await;
    backend.reply("OnCallEvent", Reply::Json(403, json!({})));
    let sw = switch_for(&backend).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let err = alice.dial(&["bob"], None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("forbidden"), "{err}");
    expect_quiet(&mut be, 300).await;
    assert_eq!(
        backend.bodies("call").len(),
        1,
        "the call itself was allowed"
    );
    assert_eq!(backend.bodies("OnCallEvent")[0]["callee"], "bob");
}

#[tokio::test]
async fn overwrite_of_the_callee_rings_someone_else() {
    let backend = Backend::start().await;
    connect_with_config(
        &backend,
        json!({"call": {"restPolicy": "OVERWRITE", "restOverwrite": "callee"}}),
    );
    backend.reply("call", Reply::Json(200, json!({"callee": "carol"})));
    let sw = switch_for(&backend).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let (_carol, mut ce) = sw.connect("carol").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    rings(&mut ce, call_id, "carol rings instead of bob").await;
    expect_quiet(&mut be, 300).await;
    let incoming = backend.bodies("OnCallEvent");
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0]["callee"], "carol");
}

#[tokio::test]
async fn a_slow_backend_is_logged_past_with_log_and_refuses_with_fail() {
    let backend = Backend::start().await;
    backend.reply("call", Reply::Slow(Duration::from_millis(TIMEOUT_MS * 3)));
    let sw = switch_for(&backend).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    // LOG (the default): the call goes on after the timeout.
    let started = tokio::time::Instant::now();
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(TIMEOUT_MS));
    rings(&mut be, call_id, "bob rings").await;
    alice.hangup(call_id).await.unwrap();
    // FAIL, from carol's restClientConfig: refused, naming the timeout.
    connect_with_config(&backend, json!({"call": {"restOnError": "FAIL"}}));
    let (carol, _ce) = sw.connect("carol").await;
    let err = carol.dial(&["bob"], None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(
        err.to_string().contains("REST backend error: call")
            && err.to_string().contains(&format!("{TIMEOUT_MS} ms")),
        "{err}"
    );
    // The plugin's waits did not count against its 1000 ms deadline.
    let info = sw.admin().await.list_plugins().await.unwrap();
    assert_eq!(info[0].failures, 0, "{info:?}");
}

#[tokio::test]
async fn garbage_from_the_backend_is_an_error_that_log_lets_through() {
    let backend = Backend::start().await;
    backend.reply("connect", Reply::Text(200, "<html>surprise</html>"));
    backend.reply("call", Reply::Text(200, "not json"));
    let sw = switch_for(&backend).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    rings(&mut be, call_id, "bob rings").await;
    // A 500 is an error too.
    backend.reply("call", Reply::Text(500, "internal error"));
    let second = alice.dial(&["bob"], None).await.unwrap();
    rings(&mut be, second, "bob rings again").await;
}

#[tokio::test]
async fn a_backend_that_is_down_is_logged_past_with_log() {
    let port = closed_port();
    let sw = switch_with(table(port, port, "")).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    rings(&mut be, call_id, "bob rings").await;
    // Lost events are counted, not fatal.
    alice.hangup(call_id).await.unwrap();
    let info = sw.admin().await.list_plugins().await.unwrap();
    assert_eq!(info[0].failures, 0, "{info:?}");
}

#[tokio::test]
async fn a_backend_that_is_down_refuses_with_fail() {
    // The plugin's own default: FAIL for users the backend never configured.
    let port = closed_port();
    let sw = switch_with(table(port, port, "rest_on_error = \"FAIL\"")).await;
    let err = Client::connect(sw.options("alice-demo-token"))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(
        err.to_string().contains("REST backend error: connect"),
        "{err}"
    );

    // FAIL from the backend's restClientConfig, then the backend goes down.
    let backend = Backend::start().await;
    connect_with_config(&backend, json!({"call": {"restOnError": "FAIL"}}));
    let sw = switch_for(&backend).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    backend.shut().await;
    let err = alice.dial(&["bob"], None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(
        err.to_string().contains("REST backend error: call"),
        "{err}"
    );
    expect_quiet(&mut be, 300).await;
    // Without a stored FAIL, bob's connection is logged past (LOG).
    let (_bob2, _) = sw.connect("bob").await;
}

#[tokio::test]
async fn a_destination_outside_http_hosts_is_refused_by_the_host() {
    let backend = Backend::start().await;
    let other = closed_port();
    // LOG: every request is refused by the host, and the switch goes on.
    let sw = switch_with(table(backend.addr.port(), other, "")).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    rings(&mut be, call_id, "bob rings").await;
    // FAIL: the host's refusal is the reason.
    let sw = switch_with(table(
        backend.addr.port(),
        other,
        "rest_on_error = \"FAIL\"",
    ))
    .await;
    let err = Client::connect(sw.options("alice-demo-token"))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("http_hosts"), "{err}");
    // Nothing was sent to the backend, by either switch.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(backend.requests().is_empty(), "{:#?}", backend.requests());
}

#[tokio::test]
async fn messages_are_put_to_the_backend_and_reported_sent() {
    let backend = Backend::start().await;
    let sw = switch_for(&backend).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    alice.message("bob", json!({"text": "hi"})).await.unwrap();
    expect(&mut be, "the message", |m| {
        matches!(m, ServerMessage::Message { .. })
    })
    .await;
    let sent = &backend.bodies("sendMessage")[0];
    assert_eq!(sent["from"], "alice");
    assert_eq!(sent["to"], "bob");
    assert_eq!(sent["body"], r#"{"text":"hi"}"#);
    assert_eq!(backend.bodies("MessageStatusEvent")[0]["status"], "SENT");
    backend.reply("sendMessage", Reply::Json(403, json!({"reason": "spam"})));
    let err = alice
        .message("bob", json!({"text": "buy"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("spam"), "{err}");
    expect_quiet(&mut be, 300).await;
    assert_eq!(backend.bodies("MessageStatusEvent").len(), 1);
}

#[tokio::test]
async fn answer_403_keeps_the_call_ringing() {
    let backend = Backend::start().await;
    backend.reply("answer", Reply::Json(403, json!({"reason": "not now"})));
    let sw = switch_for(&backend).await;
    let (alice, _ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    rings(&mut be, call_id, "bob rings").await;
    let err = bob.answer(call_id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("not now"), "{err}");
}

#[tokio::test]
async fn a_call_the_admin_places_as_a_user_is_not_declined() {
    let backend = Backend::start().await;
    backend.reply(
        "call",
        Reply::Json(403, json!({"reason": "calls are closed"})),
    );
    let sw = switch_for(&backend).await;
    let (_bob, mut be) = sw.connect("bob").await;
    let (alice, _ae) = sw.connect("alice").await;
    // Alice herself is refused...
    let err = alice.dial(&["bob"], None).await.unwrap_err();
    assert!(err.to_string().contains("calls are closed"), "{err}");
    let calls_asked = backend.bodies("call").len();
    // ...the operator acting as alice (`callswitch dial --as alice`) is not.
    let mut opts = sw.options(&sw.handle().admin_token.clone());
    opts.act_as = Some("alice".into());
    let (admin_as_alice, _, _) = Client::connect(opts).await.unwrap();
    let call_id = admin_as_alice.dial(&["bob"], None).await.unwrap();
    rings(&mut be, call_id, "bob rings for the admin's call").await;
    assert_eq!(
        backend.bodies("call").len(),
        calls_asked,
        "not put to the backend"
    );
    // Its events are still reported.
    admin_as_alice.hangup(call_id).await.unwrap();
    let requests = backend
        .until("FINISH", |r| {
            statuses_of(r, call_id).contains(&"FINISH".into())
        })
        .await;
    let statuses = statuses_of(&requests, call_id);
    assert_eq!(statuses[..2], ["NEW", "RING"], "{statuses:?}");
    assert_eq!(statuses.last().unwrap(), "FINISH", "{statuses:?}");
}

#[tokio::test]
async fn hold_dtmf_and_hangup_are_put_to_the_backend_and_a_403_forbids_them() {
    let backend = Backend::start().await;
    backend.reply(
        "hold",
        Reply::Json(403, json!({"reason": "no music on hold"})),
    );
    backend.reply(
        "hangup",
        Reply::Json(403, json!({"reason": "stay a while"})),
    );
    let sw = switch_for(&backend).await;
    let (alice, mut ae) = sw.connect("alice").await;
    let (bob, mut be) = sw.connect("bob").await;
    let call_id = common::connected_call(&alice, &mut ae, &bob, &mut be, "bob").await;
    // hold: forbidden with the backend's reason; the call is not held.
    let err = alice.hold(call_id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("no music on hold"), "{err}");
    // sendDTMF: allowed (200), with the digits in the body.
    alice.dtmf(call_id, "12#").await.unwrap();
    let dtmf = backend.bodies("sendDTMF");
    assert_eq!(dtmf.len(), 1, "{dtmf:?}");
    assert_eq!(dtmf[0]["dtmf"], "12#");
    assert_eq!(dtmf[0]["callId"], call_id.to_string());
    // hangup: forbidden too; the call goes on.
    let err = bob.hangup(call_id).await.unwrap_err();
    assert!(err.to_string().contains("stay a while"), "{err}");
    let live = sw.admin().await.list_calls().await.unwrap();
    assert_eq!(live.len(), 1);
    // The admin can still end it: its API is not put to hooks.
    sw.admin().await.admin_hangup(call_id).await.unwrap();
}

#[tokio::test]
async fn an_https_backend_is_reached_with_the_ca_of_http_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("backend.pem");
    let backend = Backend::start_tls(&cert).await;
    let port = backend.addr.port();
    let https = |config: &str| {
        table(port, port, config).replace(
            &format!("url = \"http://127.0.0.1:{port}/rest\""),
            &format!("url = \"https://127.0.0.1:{port}/rest\""),
        )
    };
    let fail = "rest_on_error = \"FAIL\"";
    // Trusted through http_ca_file: the backend admits alice and vets her call.
    let sw = switch_with(https(fail).replace(
        "deadline_ms = 1000",
        &format!(
            "deadline_ms = 1000\nhttp_ca_file = {:?}",
            cert.display().to_string()
        ),
    ))
    .await;
    let (alice, _ae) = sw.connect("alice").await;
    let (_bob, mut be) = sw.connect("bob").await;
    let call_id = alice.dial(&["bob"], None).await.unwrap();
    rings(&mut be, call_id, "bob rings").await;
    let requests = backend
        .until("connect and call over TLS", |r| {
            r.iter().any(|r| r.method == "call") && r.iter().any(|r| r.method == "connect")
        })
        .await;
    let call = requests.iter().find(|r| r.method == "call").unwrap();
    assert_eq!(call.body["callee"], "bob", "{:?}", call.body);

    // Not trusted (no http_ca_file): the TLS handshake fails, and with
    // FAIL that failure is the client's refusal.
    // (The first switch's call events may still be arriving.)
    let connects = || backend.bodies("connect").len();
    let before = connects();
    let sw = switch_with(https(fail)).await;
    let err = Client::connect(sw.options("alice-demo-token"))
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("TLS") && text.contains("certificate"),
        "{text}"
    );
    assert_eq!(connects(), before, "the connect never reached the backend");
}

#[tokio::test]
async fn an_http_ca_file_without_a_certificate_fails_to_load_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("not-a-ca.pem");
    std::fs::write(&junk, "no certificate here\n").unwrap();
    let knobs = Knobs {
        extra: table(9, 9, "").replace(
            "deadline_ms = 1000",
            &format!(
                "deadline_ms = 1000\nhttp_ca_file = {:?}",
                junk.display().to_string()
            ),
        ),
        ..Knobs::default()
    };
    let err = start_in(&dir, &knobs).await.err().expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("rest-hooks")
            && text.contains("http_ca_file")
            && text.contains("not-a-ca.pem"),
        "{text}"
    );
}
