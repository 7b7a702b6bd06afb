//! The Self SDK voice messages (`chat.voice.*`) as JSON objects: reading
//! and checking one a client sent, re-addressing it to the other side, and
//! the plugin's error frame.
//!
//! A message is a JSON object routed on `typ`, with the negotiation's `cid`
//! and the fields of its kind (`call_id`, `peer_info`, `data`), plus the
//! envelope claims the SDKs add (`jti`, `iss`, `sub`, `aud`, `iat`, `exp`).
//! The plugin checks only what it acts on (`typ`, `cid`, and `data` of a
//! `start`, to which it adds); every other field is passed on as sent.

use serde_json::{json, Map, Value};

use crate::host::User;

/// Every voice message's `typ` starts with this.
pub const TYP_PREFIX: &str = "chat.voice.";

/// The longest `cid` accepted, in bytes (it is a key of the plugin's store).
pub const MAX_CID_BYTES: usize = 128;

/// The kinds of voice message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Setup,
    Start,
    Accept,
    Busy,
    Stop,
    Summary,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Setup,
        Kind::Start,
        Kind::Accept,
        Kind::Busy,
        Kind::Stop,
        Kind::Summary,
    ];

    /// The `typ` of the kind, e.g. `chat.voice.start`.
    pub fn typ(self) -> &'static str {
        match self {
            Kind::Setup => "chat.voice.setup",
            Kind::Start => "chat.voice.start",
            Kind::Accept => "chat.voice.accept",
            Kind::Busy => "chat.voice.busy",
            Kind::Stop => "chat.voice.stop",
            Kind::Summary => "chat.voice.summary",
        }
    }

    pub fn from_typ(typ: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.typ() == typ)
    }
}

/// A voice message a client sent, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceMessage {
    pub kind: Kind,
    pub cid: String,
    /// The whole object, as sent.
    pub body: Map<String, Value>,
}

/// Why a client's message is refused: the reason, and its `cid` when it
/// had a usable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub cid: Option<String>,
    pub reason: String,
}

fn reject(cid: Option<&str>, reason: impl Into<String>) -> Rejection {
    Rejection {
        cid: cid.map(str::to_owned),
        reason: reason.into(),
    }
}

/// `text` cut to `max` characters, for echoing client input in a reason.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// Reads and checks a text frame a client sent.
pub fn parse(text: &str) -> Result<VoiceMessage, Rejection> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| reject(None, format!("the message is not JSON: {error}")))?;
    let Value::Object(body) = value else {
        return Err(reject(None, "the message is not a JSON object"));
    };
    let cid = match body.get("cid") {
        Some(Value::String(cid)) if !cid.is_empty() && cid.len() <= MAX_CID_BYTES => {
            Some(cid.as_str())
        }
        _ => None,
    };
    let typ = match body.get("typ") {
        Some(Value::String(typ)) => typ,
        Some(_) => return Err(reject(cid, "`typ` is not a string")),
        None => return Err(reject(cid, "the message has no `typ`")),
    };
    let Some(kind) = Kind::from_typ(typ) else {
        return Err(reject(cid, format!("unknown typ `{}`", cut(typ, 64))));
    };
    let cid = match body.get("cid") {
        Some(Value::String(given)) => match cid {
            Some(cid) => cid.to_owned(),
            None if given.is_empty() => return Err(reject(None, "`cid` is empty")),
            None => {
                return Err(reject(
                    None,
                    format!("`cid` is longer than {MAX_CID_BYTES} bytes"),
                ))
            }
        },
        Some(_) => return Err(reject(None, "`cid` is not a string")),
        None => return Err(reject(None, "the message has no `cid`")),
    };
    if kind == Kind::Start
        && !matches!(
            body.get("data"),
            None | Some(Value::Null | Value::Object(_))
        )
    {
        return Err(reject(Some(&cid), "`data` is not an object"));
    }
    Ok(VoiceMessage { kind, cid, body })
}

/// The message as forwarded from `from` to `to`: `iss` is the sender,
/// `sub` and `aud` the recipient; everything else as sent.
pub fn readdress(body: &Map<String, Value>, from: &User, to: &User) -> Map<String, Value> {
    let mut body = body.clone();
    body.insert("iss".into(), Value::String(from.id.clone()));
    body.insert("sub".into(), Value::String(to.id.clone()));
    body.insert("aud".into(), Value::String(to.id.clone()));
    body
}

/// Adds the proxy's `operator_name` to the message's `data` (made an
/// object if it was absent or null; `parse` refused any other `data`).
pub fn add_operator_name(body: &mut Map<String, Value>, name: &str) {
    let data = body
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Value::Object(data) = data {
        data.insert("operator_name".into(), Value::String(name.to_owned()));
    }
}

/// The frame telling a client its message was refused:
/// `{"typ":"error","cid":<cid or null>,"error":"<reason>"}`.
pub fn error_frame(cid: Option<&str>, reason: &str) -> String {
    json!({ "typ": "error", "cid": cid, "error": reason }).to_string()
}

/// Whether a `message` event's body is a voice message (its `typ` is a
/// string starting with `chat.voice.`): those are written to the sockets.
pub fn is_voice_body(body: &Value) -> bool {
    body.get("typ")
        .and_then(Value::as_str)
        .is_some_and(|typ| typ.starts_with(TYP_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(text: &str) -> Rejection {
        parse(text).expect_err(text)
    }

    #[test]
    fn every_kind_parses() {
        for kind in Kind::ALL {
            let text = json!({"typ": kind.typ(), "cid": "c1", "call_id": "x"}).to_string();
            let message = parse(&text).unwrap();
            assert_eq!(message.kind, kind);
            assert_eq!(message.cid, "c1");
            assert_eq!(message.body["call_id"], "x");
        }
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        let r = rejected("{not json");
        assert_eq!(r.cid, None);
        assert!(r.reason.starts_with("the message is not JSON"), "{r:?}");
        assert_eq!(rejected("[1,2]").reason, "the message is not a JSON object");
        assert_eq!(rejected("\"x\"").reason, "the message is not a JSON object");
        let r = rejected(r#"{"cid":"c1"}"#);
        assert_eq!(r.cid.as_deref(), Some("c1"));
        assert_eq!(r.reason, "the message has no `typ`");
        assert_eq!(
            rejected(r#"{"typ":7,"cid":"c1"}"#).reason,
            "`typ` is not a string"
        );
        let r = rejected(r#"{"typ":"chat.voice.ring","cid":"c1"}"#);
        assert_eq!(r.reason, "unknown typ `chat.voice.ring`");
        assert_eq!(r.cid.as_deref(), Some("c1"));
        assert_eq!(
            rejected(r#"{"typ":"chat.voice.stop"}"#).reason,
            "the message has no `cid`"
        );
        let r = rejected(r#"{"typ":"chat.voice.stop","cid":5}"#);
        assert_eq!((r.cid, r.reason.as_str()), (None, "`cid` is not a string"));
        assert_eq!(
            rejected(r#"{"typ":"chat.voice.stop","cid":""}"#).reason,
            "`cid` is empty"
        );
        let long = "x".repeat(MAX_CID_BYTES + 1);
        let r = rejected(&json!({"typ": "chat.voice.stop", "cid": long}).to_string());
        assert_eq!(r.cid, None);
        assert!(r.reason.contains("longer than"), "{r:?}");
        assert_eq!(
            rejected(r#"{"typ":"chat.voice.start","cid":"c1","data":"x"}"#).reason,
            "`data` is not an object"
        );
        // Only `start` has `data` added to.
        assert!(parse(r#"{"typ":"chat.voice.accept","cid":"c1","data":"x"}"#).is_ok());
        assert!(parse(r#"{"typ":"chat.voice.start","cid":"c1","data":null}"#).is_ok());
    }

    #[test]
    fn a_long_unknown_typ_is_cut_in_the_reason() {
        let typ = "t".repeat(1000);
        let r = rejected(&json!({"typ": typ, "cid": "c"}).to_string());
        assert!(r.reason.len() < 100, "{}", r.reason);
    }

    #[test]
    fn readdressing_sets_the_claims_and_keeps_the_rest() {
        let alice = User {
            id: "a-id".into(),
            name: "alice".into(),
        };
        let bob = User {
            id: "b-id".into(),
            name: "bob".into(),
        };
        let message = parse(
            r#"{"typ":"chat.voice.start","cid":"c1","call_id":"k","peer_info":"p",
                "jti":"j","iss":"someone","sub":"proxy","aud":"proxy","iat":"t","exp":"e"}"#,
        )
        .unwrap();
        let mut out = readdress(&message.body, &alice, &bob);
        add_operator_name(&mut out, "Bob from support");
        assert_eq!(
            Value::Object(out),
            json!({"typ":"chat.voice.start","cid":"c1","call_id":"k","peer_info":"p",
                   "jti":"j","iss":"a-id","sub":"b-id","aud":"b-id","iat":"t","exp":"e",
                   "data":{"operator_name":"Bob from support"}})
        );
        let mut with_data = Map::new();
        with_data.insert("data".into(), json!({"name": "alice"}));
        add_operator_name(&mut with_data, "Bob");
        assert_eq!(
            with_data["data"],
            json!({"name": "alice", "operator_name": "Bob"})
        );
    }

    #[test]
    fn error_frames_and_voice_bodies() {
        assert_eq!(
            error_frame(Some("c1"), "unknown cid"),
            r#"{"cid":"c1","error":"unknown cid","typ":"error"}"#
        );
        assert_eq!(
            serde_json::from_str::<Value>(&error_frame(None, "x")).unwrap(),
            json!({"typ": "error", "cid": null, "error": "x"})
        );
        assert!(is_voice_body(&json!({"typ": "chat.voice.stop"})));
        assert!(!is_voice_body(&json!({"typ": "chat.text"})));
        assert!(!is_voice_body(&json!({"typ": 1})));
        assert!(!is_voice_body(&json!("chat.voice.stop")));
    }
}
