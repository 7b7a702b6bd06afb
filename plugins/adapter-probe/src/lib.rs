//! `adapter-probe`: an adapter that exercises every part of the adapter
//! world, for the switch's own tests (and as a small example of one).
//!
//! Routes (under whatever prefix it is mounted at, e.g. `/probe/`):
//! - `.../echo`: answers 200 with a JSON summary of the request (and the
//!   body echoed in `body`);
//! - `.../status/<n>`: answers with status `n` (an invalid one is a plugin
//!   error the host must turn into a 500);
//! - `.../trap`: panics; `.../loop`: never returns; `.../bad-upgrade`:
//!   asks for an upgrade of a plain request;
//! - `.../ws?token=<t>` (WebSocket): a switch device for the token's user,
//!   driven by text commands on the stream: `{"request":{...}}` sends a
//!   client-protocol request and answers `{"reply":...}` or
//!   `{"error":{"code","message"}}`; `{"attach":"<call-id>"}` makes the
//!   stream the device's media leg; `{"close":1000}` closes the stream;
//!   `"trap"` panics. Device events arrive as `{"event":...}`; unattached
//!   binary messages are echoed.
//!
//! - `.../spin/<ms>`: runs for `ms` milliseconds (by `clock`) before
//!   answering, holding the adapter busy meanwhile;
//!
//! Grants: log, clock, streams, devices.

// The generated bindings take one argument per field of a request.
#![allow(clippy::too_many_arguments)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{json, Value};

wit_bindgen::generate!({ path: "../../wit", world: "adapter" });

use callswitch::plugin::ingress_types::{Header, HttpResponse};
use callswitch::plugin::{clock, devices, streams};

thread_local! {
    /// Stream id -> device id, and back.
    static LINKS: RefCell<BTreeMap<u64, u64>> = const { RefCell::new(BTreeMap::new()) };
}

fn json_response(status: u16, body: Value) -> HttpReply {
    HttpReply::Respond(HttpResponse {
        status,
        headers: vec![Header {
            name: "content-type".into(),
            value: "application/json".into(),
        }],
        body: body.to_string().into_bytes(),
    })
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

fn send_text(stream: u64, value: Value) {
    let _ = streams::send(stream, &StreamMessage::Text(value.to_string()));
}

struct Probe;

impl Guest for Probe {
    fn handle_http(request: HttpRequest) -> HttpReply {
        let last = request.path.rsplit('/').next().unwrap_or_default();
        let parent = request
            .path
            .rsplit('/')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        match (parent.as_str(), last) {
            (_, "echo") => json_response(
                200,
                json!({
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": request.headers.iter().map(|h| vec![h.name.clone(), h.value.clone()]).collect::<Vec<_>>(),
                    "body": String::from_utf8_lossy(&request.body),
                    "websocket": request.websocket,
                }),
            ),
            ("status", n) => json_response(n.parse().unwrap_or(0), json!({"status": n})),
            ("spin", ms) => {
                let ms: u64 = ms.parse().unwrap_or(0);
                let until = clock::monotonic_ms() + ms;
                while clock::monotonic_ms() < until {
                    std::hint::spin_loop();
                }
                json_response(200, json!({"spun_ms": ms}))
            }
            (_, "trap") => panic!("probe asked to trap"),
            (_, "loop") =>
            {
                #[allow(clippy::empty_loop)]
                loop {}
            }
            (_, "bad-upgrade") => HttpReply::Upgrade("bad".into()),
            (_, "ws") if request.websocket => HttpReply::Upgrade(request.query),
            _ => json_response(404, json!({"error": "no such probe route"})),
        }
    }

    fn on_stream_open(stream_id: u64, context: String) {
        let Some(token) = query_param(&context, "token") else {
            send_text(stream_id, json!({"opened": null}));
            return;
        };
        match devices::open(&token, "probe", true) {
            Ok(info) => {
                LINKS.with(|l| l.borrow_mut().insert(stream_id, info.device));
                send_text(
                    stream_id,
                    json!({"opened": info.device, "user": info.user.name}),
                );
            }
            Err(e) => {
                send_text(
                    stream_id,
                    json!({"error": {"code": e.code, "message": e.message}}),
                );
                streams::close(stream_id, 4001, &e.message);
            }
        }
    }

    fn on_stream_message(stream_id: u64, message: StreamMessage) {
        let text = match message {
            StreamMessage::Binary(bytes) => {
                let _ = streams::send(stream_id, &StreamMessage::Binary(bytes));
                return;
            }
            StreamMessage::Text(t) => t,
        };
        if text == "\"trap\"" {
            panic!("probe stream asked to trap");
        }
        let device = LINKS.with(|l| l.borrow().get(&stream_id).copied());
        let Ok(command) = serde_json::from_str::<Value>(&text) else {
            send_text(
                stream_id,
                json!({"error": {"code": "probe", "message": "not JSON"}}),
            );
            return;
        };
        if let Some(request) = command.get("request") {
            let Some(device) = device else { return };
            match devices::request(device, &request.to_string()) {
                Ok(reply) => {
                    let reply: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
                    send_text(stream_id, json!({"reply": reply}));
                }
                Err(e) => send_text(
                    stream_id,
                    json!({"error": {"code": e.code, "message": e.message}}),
                ),
            }
        } else if let Some(call) = command.get("attach").and_then(Value::as_str) {
            let Some(device) = device else { return };
            match streams::attach_media(stream_id, device, call) {
                Ok(()) => send_text(stream_id, json!({"attached": call})),
                Err(e) => send_text(
                    stream_id,
                    json!({"error": {"code": "attach", "message": e}}),
                ),
            }
        } else if let Some(code) = command.get("close").and_then(Value::as_u64) {
            streams::close(stream_id, code as u16, "probe asked to close");
            if let Some(device) = LINKS.with(|l| l.borrow_mut().remove(&stream_id)) {
                devices::close(device);
            }
        }
    }

    fn on_stream_close(stream_id: u64) {
        if let Some(device) = LINKS.with(|l| l.borrow_mut().remove(&stream_id)) {
            devices::close(device);
        }
    }

    fn on_device_event(device: u64, event: String) {
        let stream = LINKS.with(|l| {
            l.borrow()
                .iter()
                .find(|(_, d)| **d == device)
                .map(|(s, _)| *s)
        });
        if let Some(stream) = stream {
            let event: Value = serde_json::from_str(&event).unwrap_or(Value::Null);
            send_text(stream, json!({"event": event}));
        }
    }
}

export!(Probe);
