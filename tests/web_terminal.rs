//! The `web-terminal` adapter end to end: a tonic client generated from
//! `proto/` (the WebTerminalService as Working Group Two publishes it)
//! registers terminals on a real switch, calls another terminal and a QUIC
//! client, is called, hears InCall / Idle, and meets the service's errors.
//! The plugin is the one the binary ships (`builtin:web-terminal`).

mod common;

use callswitch::wire::ServerMessage;
use common::grpc::wgtwo::common::v0::PhoneNumber;
use common::grpc::wgtwo::webterminal::v0::web_terminal_message::Message;
use common::grpc::wgtwo::webterminal::v0::web_terminal_service_client::WebTerminalServiceClient;
use common::grpc::wgtwo::webterminal::v0::{
    action, error, Action, Answer, Bye, Offer, Ringing, ToPhone, WebTerminalMessage,
};
use common::{expect, Knobs, TestSwitch, WAIT};
use prost::Message as _;
use tokio::sync::mpsc;
use tonic::transport::Endpoint;
use tonic::Code;

const SERVICE: &str = "/wgtwo.webterminal.v0.WebTerminalService/";
const ALICE_NUMBER: &str = "+15550100";
const BOB_NUMBER: &str = "+15550101";

fn knobs() -> Knobs {
    Knobs {
        extra: r#"
[[plugin]]
name = "web-terminal"
path = "builtin:web-terminal"
world = "adapter"
routes = ["/wgtwo.webterminal.v0.WebTerminalService/"]
grants = ["log", "clock", "calls", "config", "streams", "devices"]
[plugin.config]
max_offers_per_second = 3
"#
        .into(),
        ..Knobs::default()
    }
}

/// One registered terminal: the client's half of a `Pipe` / `MultiPipe`.
struct Terminal {
    tx: Option<mpsc::Sender<WebTerminalMessage>>,
    rx: tonic::Streaming<WebTerminalMessage>,
}

impl Terminal {
    async fn open(sw: &TestSwitch, token: &str, multi: bool) -> Result<Terminal, tonic::Status> {
        let channel = if sw.knobs.tls {
            // gRPC over TLS, trusting the switch's pinned certificate.
            let addr = sw.http();
            let fingerprint = sw.handle().fingerprint.clone();
            Endpoint::from_static("http://callswitch")
                .connect_with_connector(tower::service_fn(move |_| {
                    let fingerprint = fingerprint.clone();
                    async move {
                        let tls = common::http::tls_stream(addr, &fingerprint, &[b"h2"]).await;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                    }
                }))
                .await
                .expect("HTTP/2 over TLS to the ingress")
        } else {
            Endpoint::from_shared(format!("http://{}", sw.http()))
                .unwrap()
                .connect()
                .await
                .expect("HTTP/2 connection to the ingress")
        };
        let mut client = WebTerminalServiceClient::new(channel);
        let (tx, rx) = mpsc::channel(16);
        let outgoing = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|message| (message, rx))
        });
        let mut request = tonic::Request::new(outgoing);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let response = tokio::time::timeout(WAIT, async {
            if multi {
                client.multi_pipe(request).await
            } else {
                client.pipe(request).await
            }
        })
        .await
        .expect("gRPC answer in time")?;
        Ok(Terminal {
            tx: Some(tx),
            rx: response.into_inner(),
        })
    }

    async fn send(&self, message: WebTerminalMessage) {
        self.tx
            .as_ref()
            .expect("open")
            .send(message)
            .await
            .expect("request stream open");
    }

    /// The next message from the core.
    async fn next(&mut self) -> WebTerminalMessage {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("a message in time")
            .expect("the call goes on")
            .expect("a message, not the end")
    }

    /// Ends the client's side of the call.
    fn close(&mut self) {
        self.tx = None;
    }
}

fn msg(message: Message, call_id: &str) -> WebTerminalMessage {
    WebTerminalMessage {
        message: Some(message),
        call_id: call_id.into(),
    }
}

fn offer(sdp: &str, e164: &str, call_id: &str) -> WebTerminalMessage {
    msg(
        Message::Offer(Offer {
            sdp: sdp.into(),
            msisdn: Some(PhoneNumber { e164: e164.into() }),
        }),
        call_id,
    )
}

fn answer(sdp: &str, call_id: &str) -> WebTerminalMessage {
    msg(Message::Answer(Answer { sdp: sdp.into() }), call_id)
}

fn bye(call_id: &str) -> WebTerminalMessage {
    msg(Message::Bye(Bye {}), call_id)
}

fn error_code(message: &WebTerminalMessage) -> Option<error::Code> {
    match &message.message {
        Some(Message::Error(e)) => error::Code::try_from(e.err).ok(),
        _ => None,
    }
}

fn is_idle(message: &WebTerminalMessage) -> bool {
    matches!(message.message, Some(Message::Idle(_)))
}

fn in_call_number(message: &WebTerminalMessage) -> Option<String> {
    match &message.message {
        Some(Message::InCall(c)) => c.msisdn.as_ref().map(|n| n.e164.clone()),
        _ => None,
    }
}

fn is_bye(message: &WebTerminalMessage) -> bool {
    matches!(message.message, Some(Message::Bye(_)))
}

#[tokio::test]
async fn calls_without_a_token_or_method_are_refused() {
    let sw = TestSwitch::start_with(knobs()).await;
    let refused = Terminal::open(&sw, "nobody-token", false)
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    let answer = common::http::http2(
        sw.http(),
        "POST",
        &format!("{SERVICE}Nope"),
        &[
            ("content-type", "application/grpc"),
            ("authorization", "Bearer alice-demo-token"),
        ],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["grpc-status"], "12");
}

#[tokio::test]
async fn two_terminals_call_each_other_with_their_sdp() {
    let sw = TestSwitch::start_with(knobs()).await;
    let mut alice = Terminal::open(&sw, "alice-demo-token", true).await.unwrap();
    assert!(is_idle(&alice.next().await));
    let mut bob = Terminal::open(&sw, "bob-demo-token", false).await.unwrap();
    assert!(is_idle(&bob.next().await));

    let call_id = uuid::Uuid::new_v4().to_string();
    alice.send(offer("offer-a", BOB_NUMBER, &call_id)).await;
    let incoming = bob.next().await;
    assert_eq!(incoming.call_id, call_id);
    assert_eq!(
        incoming.message,
        Some(Message::Offer(Offer {
            sdp: "offer-a".into(),
            msisdn: Some(PhoneNumber {
                e164: ALICE_NUMBER.into()
            }),
        }))
    );
    assert_eq!(
        alice.next().await,
        msg(Message::Ringing(Ringing {}), &call_id)
    );

    bob.send(msg(Message::Ringing(Ringing {}), "")).await;
    bob.send(answer("answer-b", "")).await;
    assert_eq!(alice.next().await, answer("answer-b", &call_id));

    // An SDP update each way.
    alice.send(offer("offer-a2", BOB_NUMBER, &call_id)).await;
    let update = bob.next().await;
    assert!(matches!(&update.message, Some(Message::Offer(o)) if o.sdp == "offer-a2"));
    bob.send(answer("answer-b2", "")).await;
    assert_eq!(alice.next().await, answer("answer-b2", &call_id));

    alice.send(bye(&call_id)).await;
    assert_eq!(bob.next().await, bye(&call_id));
    // Bob is out of the call.
    bob.send(bye("")).await;
    assert_eq!(error_code(&bob.next().await), Some(error::Code::NotIncall));
}

#[tokio::test]
async fn a_terminal_calls_and_is_called_by_a_quic_client() {
    let sw = TestSwitch::start_with(knobs()).await;
    let (bob, mut bob_events) = sw.connect("bob").await;
    let mut alice = Terminal::open(&sw, "alice-demo-token", false)
        .await
        .unwrap();
    assert!(is_idle(&alice.next().await));

    // Outgoing: Ringing, then the placeholder Answer.
    alice.send(offer("offer-a", BOB_NUMBER, "")).await;
    let call_id = match expect(&mut bob_events, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await
    {
        ServerMessage::Incoming { call_id, from, .. } => {
            assert_eq!(from.name, "alice");
            call_id
        }
        _ => unreachable!(),
    };
    assert!(matches!(
        alice.next().await.message,
        Some(Message::Ringing(_))
    ));
    bob.answer(call_id).await.unwrap();
    let answered = alice.next().await;
    assert_eq!(answered.call_id, call_id.to_string());
    assert!(matches!(&answered.message, Some(Message::Answer(a)) if a.sdp.contains("a=inactive")));
    bob.hangup(call_id).await.unwrap();
    assert_eq!(alice.next().await, bye(&call_id.to_string()));

    // Incoming: the caller's number and the placeholder offer.
    let call_id = bob.dial(&[ALICE_NUMBER], None).await.unwrap();
    let incoming = alice.next().await;
    assert_eq!(incoming.call_id, call_id.to_string());
    match &incoming.message {
        Some(Message::Offer(o)) => {
            assert_eq!(o.msisdn.as_ref().unwrap().e164, BOB_NUMBER);
            assert!(o.sdp.starts_with("v=0"));
        }
        other => panic!("not an offer: {other:?}"),
    }
    alice.send(answer("answer-a", "")).await;
    expect(
        &mut bob_events,
        "answered",
        |m| matches!(m, ServerMessage::Answered { call_id: c, .. } if *c == call_id),
    )
    .await;
    // The terminal goes away mid-call: the call ends for Bob.
    alice.close();
    expect(
        &mut bob_events,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id: c, .. } if *c == call_id),
    )
    .await;
}

#[tokio::test]
async fn in_call_and_idle_follow_the_numbers_other_devices() {
    let sw = TestSwitch::start_with(knobs()).await;
    let (alice_phone, mut alice_events) = sw.connect("alice").await;
    let (bob, _bob_events) = sw.connect("bob").await;
    let mut terminal = Terminal::open(&sw, "alice-demo-token", false)
        .await
        .unwrap();
    assert!(is_idle(&terminal.next().await));

    // Bob calls Alice: it rings on the terminal and the phone; the phone
    // answers, so the terminal hears Bye, then InCall.
    let call_id = bob.dial(&["alice"], None).await.unwrap();
    assert!(matches!(
        terminal.next().await.message,
        Some(Message::Offer(_))
    ));
    expect(&mut alice_events, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    alice_phone.answer(call_id).await.unwrap();
    assert_eq!(terminal.next().await, bye(&call_id.to_string()));
    assert_eq!(
        in_call_number(&terminal.next().await).as_deref(),
        Some(ALICE_NUMBER)
    );

    // Take-over: an Offer while Alice is in the call on her phone moves the
    // call to the terminal (the switch's `pickup`); Bob is no terminal, so
    // the adapter's placeholder SDP answers. The phone is told it left.
    terminal.send(offer("sdp", BOB_NUMBER, "")).await;
    let mut reply = terminal.next().await;
    for _ in 0..3 {
        if matches!(reply.message, Some(Message::Answer(_))) {
            break;
        }
        reply = terminal.next().await;
    }
    assert!(
        matches!(reply.message, Some(Message::Answer(_))),
        "{reply:?}"
    );
    expect(&mut alice_events, "left picked_up", |m| {
        matches!(
            m,
            ServerMessage::Left {
                reason: callswitch::wire::LeaveReason::PickedUp,
                ..
            }
        )
    })
    .await;
    let admin = sw.admin().await;
    let live = admin.list_calls().await.unwrap();
    assert_eq!(live.len(), 1, "the call goes on: {live:?}");

    // ToPhone: the switch cannot ring the user's other device into a call
    // the user is already in, so the terminal is told to try again.
    terminal
        .send(msg(
            Message::Action(Action {
                message: Some(action::Message::ToPhone(ToPhone {})),
            }),
            "",
        ))
        .await;
    // (Skipping the Idle the take-over caused: the call is no longer on
    // another device of the number.)
    let mut reply = terminal.next().await;
    if is_idle(&reply) {
        reply = terminal.next().await;
    }
    assert_eq!(error_code(&reply), Some(error::Code::TryAgain), "{reply:?}");

    // Bye from the terminal that took the call over ends it for Bob.
    terminal.send(bye("")).await;
    let mut bob_events = _bob_events;
    expect(
        &mut bob_events,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id: c, .. } if *c == call_id),
    )
    .await;
}

#[tokio::test]
async fn multipipe_errors_and_the_rate_limit() {
    let sw = TestSwitch::start_with(knobs()).await;
    let mut alice = Terminal::open(&sw, "alice-demo-token", true).await.unwrap();
    assert!(is_idle(&alice.next().await));

    alice.send(bye("")).await;
    let reply = alice.next().await;
    assert_eq!(error_code(&reply), Some(error::Code::InvalidCallId));
    alice.send(answer("x", "not-a-uuid")).await;
    let reply = alice.next().await;
    assert_eq!(error_code(&reply), Some(error::Code::InvalidCallId));
    assert_eq!(reply.call_id, "not-a-uuid");
    let unknown = uuid::Uuid::new_v4().to_string();
    alice.send(bye(&unknown)).await;
    assert_eq!(
        error_code(&alice.next().await),
        Some(error::Code::InvalidCallId)
    );

    // Three Offers a second (the test's setting): the fourth is refused.
    // (Each is to a number nobody has: the switch rejects it, Bye.)
    for _ in 0..4 {
        alice
            .send(offer(
                "s",
                "+19995550000",
                &uuid::Uuid::new_v4().to_string(),
            ))
            .await;
    }
    let mut codes = Vec::new();
    for _ in 0..4 {
        let reply = alice.next().await;
        codes.push(if is_bye(&reply) {
            None
        } else {
            error_code(&reply)
        });
    }
    assert_eq!(codes, [None, None, None, Some(error::Code::RateLimitHit)]);
}

/// One gRPC message as the wire carries it: flag, length, bytes.
fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

#[tokio::test]
async fn garbage_ends_the_grpc_call_and_the_terminals_call() {
    let sw = TestSwitch::start_with(knobs()).await;
    let (_alice, mut alice_events) = sw.connect("alice").await;
    // An Offer to Alice, then bytes that are no protobuf message.
    let mut body = framed(&offer("s", ALICE_NUMBER, "").encode_to_vec());
    body.extend(framed(&[0xff, 0xff, 0xff, 0xff]));
    let tcp = tokio::net::TcpStream::connect(sw.http()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method("POST")
        .uri(format!("http://{}{SERVICE}Pipe", sw.http()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", "Bearer bob-demo-token")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = tokio::time::timeout(WAIT, send.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    use http_body_util::BodyExt;
    let collected = tokio::time::timeout(WAIT, response.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "3");
    // The call the terminal placed rang Alice, and ended with its device.
    let call_id = match expect(&mut alice_events, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await
    {
        ServerMessage::Incoming { call_id, .. } => call_id,
        _ => unreachable!(),
    };
    expect(
        &mut alice_events,
        "ended",
        |m| matches!(m, ServerMessage::Ended { call_id: c, .. } if *c == call_id),
    )
    .await;
}

#[tokio::test]
async fn a_terminal_registers_and_calls_over_tls() {
    let mut k = knobs();
    k.tls = true;
    let sw = TestSwitch::start_with(k).await;
    let (bob, mut bob_events) = sw.connect("bob").await;
    let mut terminal = Terminal::open(&sw, "alice-demo-token", false)
        .await
        .unwrap();
    assert!(is_idle(&terminal.next().await));
    terminal.send(offer("v=0 alice", BOB_NUMBER, "")).await;
    let incoming = expect(&mut bob_events, "incoming from the terminal", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    let ServerMessage::Incoming { call_id, from, .. } = incoming else {
        unreachable!()
    };
    assert_eq!(from.name, "alice");
    bob.answer(call_id).await.unwrap();
    let mut reply = terminal.next().await;
    while matches!(reply.message, Some(Message::Ringing(_))) {
        reply = terminal.next().await;
    }
    assert!(
        matches!(reply.message, Some(Message::Answer(_))),
        "{reply:?}"
    );
}

#[tokio::test]
async fn messages_out_of_order_are_refused_and_the_terminal_goes_on() {
    let sw = TestSwitch::start_with(knobs()).await;
    let (bob, mut bob_events) = sw.connect("bob").await;
    let mut terminal = Terminal::open(&sw, "alice-demo-token", false)
        .await
        .unwrap();
    assert!(is_idle(&terminal.next().await));
    // Answer, Bye and Ringing with no call: NOT_INCALL for those that need
    // one (Ringing needs no answer and gets none).
    terminal.send(answer("v=0", "")).await;
    assert_eq!(
        error_code(&terminal.next().await),
        Some(error::Code::NotIncall)
    );
    terminal.send(bye("")).await;
    assert_eq!(
        error_code(&terminal.next().await),
        Some(error::Code::NotIncall)
    );
    // The terminal still works: it places a call that Bob gets.
    terminal.send(offer("v=0", BOB_NUMBER, "")).await;
    expect(&mut bob_events, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    drop(bob);
}
