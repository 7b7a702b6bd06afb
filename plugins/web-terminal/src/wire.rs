//! The switch's side of the wire: the JSON events the switch sends to the
//! plugin's devices, the requests the plugin sends as a device, call-id
//! checks, and the placeholder SDP the plugin answers with for parties
//! that are not web terminals.

use serde_json::{json, Value};

/// A user as the switch's events name one (`PartyRef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartyRef {
    pub id: String,
    pub name: String,
}

fn party(value: &Value) -> PartyRef {
    PartyRef {
        id: value["id"].as_str().unwrap_or_default().to_owned(),
        name: value["name"].as_str().unwrap_or_default().to_owned(),
    }
}

/// The events of docs/PROTOCOL.md §6 that the plugin acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchEvent {
    /// A call rings on the device.
    Incoming { call_id: String, from: PartyRef },
    /// A device of the invitee started ringing (the device is joined).
    Ringing { call_id: String },
    /// An invitee answered (the device is joined).
    Answered { call_id: String, user: PartyRef },
    /// The call stopped ringing on the device: `answered_elsewhere` or
    /// `no_answer`.
    RingStopped { call_id: String, reason: String },
    /// An invitee's outcome: `busy`, `declined`, `no_answer` or
    /// `unavailable`.
    Outcome {
        call_id: String,
        kind: String,
        user: PartyRef,
    },
    /// The device's leg left the call (`reason` `transferred`).
    Left {
        call_id: String,
        user: PartyRef,
        reason: String,
    },
    /// The call is over.
    Ended { call_id: String, reason: String },
    /// The switch closed the device (it shuts down).
    Closed { reason: String },
    /// Anything else (`media`, `held`, `dtmf`, `message`...).
    Other,
}

impl SwitchEvent {
    pub fn parse(json: &str) -> SwitchEvent {
        let Ok(value) = serde_json::from_str::<Value>(json) else {
            return SwitchEvent::Other;
        };
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        let call_id = text("call_id");
        match value["type"].as_str().unwrap_or_default() {
            "incoming" => SwitchEvent::Incoming {
                call_id,
                from: party(&value["from"]),
            },
            "ringing" => SwitchEvent::Ringing { call_id },
            "answered" => SwitchEvent::Answered {
                call_id,
                user: party(&value["user"]),
            },
            "ring_stopped" => SwitchEvent::RingStopped {
                call_id,
                reason: text("reason"),
            },
            kind @ ("busy" | "declined" | "no_answer" | "unavailable") => SwitchEvent::Outcome {
                call_id,
                kind: kind.to_owned(),
                user: party(&value["user"]),
            },
            "left" => SwitchEvent::Left {
                call_id,
                user: party(&value["user"]),
                reason: text("reason"),
            },
            "ended" => SwitchEvent::Ended {
                call_id,
                reason: text("reason"),
            },
            "closed" => SwitchEvent::Closed {
                reason: text("reason"),
            },
            _ => SwitchEvent::Other,
        }
    }
}

/// `dial` with the callee as the only target; `call_id` when the terminal
/// chose it (MultiPipe), else the switch picks one.
pub fn dial_request(target: &str, call_id: Option<&str>) -> String {
    match call_id {
        Some(id) => json!({"type": "dial", "call_id": id, "targets": [target]}),
        None => json!({"type": "dial", "targets": [target]}),
    }
    .to_string()
}

/// `answer`, `decline` or `hangup` of `call_id`.
pub fn call_request(kind: &str, call_id: &str) -> String {
    json!({"type": kind, "call_id": call_id}).to_string()
}

/// `invite` of `targets` into `call_id`.
pub fn invite_request(call_id: &str, target: &str) -> String {
    json!({"type": "invite", "call_id": call_id, "targets": [target]}).to_string()
}

/// The `call_id` of the switch's `ok` reply to a request.
pub fn reply_call_id(reply: &str) -> Option<String> {
    let value: Value = serde_json::from_str(reply).ok()?;
    value["call_id"].as_str().map(str::to_owned)
}

/// The canonical (lower-case, hyphenated) form of a UUID, or `None` if `s`
/// is not one.
pub fn normalize_uuid(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    for (i, b) in bytes.iter().enumerate() {
        let hyphen = matches!(i, 8 | 13 | 18 | 23);
        if hyphen != (*b == b'-') || (!hyphen && !b.is_ascii_hexdigit()) {
            return None;
        }
    }
    Some(s.to_ascii_lowercase())
}

/// The SDP the plugin offers or answers for a party that is not a web
/// terminal (a QUIC client, a phone-rest user...). The switch carries no
/// RTP, so it describes an audio stream that is inactive on a null
/// address: the call is signalled end to end, but no media flows between a
/// web terminal and such a party.
pub const PLACEHOLDER_SDP: &str = "v=0\r\n\
o=callswitch 0 0 IN IP4 0.0.0.0\r\n\
s=callswitch (signalling only, no media)\r\n\
c=IN IP4 0.0.0.0\r\n\
t=0 0\r\n\
m=audio 9 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=inactive\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse() {
        assert_eq!(
            SwitchEvent::parse(
                r#"{"type":"incoming","call_id":"c","kind":"direct","from":{"id":"a","name":"alice"},"parties":[]}"#
            ),
            SwitchEvent::Incoming {
                call_id: "c".into(),
                from: PartyRef {
                    id: "a".into(),
                    name: "alice".into()
                }
            }
        );
        assert_eq!(
            SwitchEvent::parse(
                r#"{"type":"ring_stopped","call_id":"c","reason":"answered_elsewhere"}"#
            ),
            SwitchEvent::RingStopped {
                call_id: "c".into(),
                reason: "answered_elsewhere".into()
            }
        );
        assert!(matches!(
            SwitchEvent::parse(r#"{"type":"no_answer","call_id":"c","user":{"id":"b","name":"bob"}}"#),
            SwitchEvent::Outcome { kind, .. } if kind == "no_answer"
        ));
        assert_eq!(
            SwitchEvent::parse(r#"{"type":"closed","reason":"shutdown"}"#),
            SwitchEvent::Closed {
                reason: "shutdown".into()
            }
        );
        assert_eq!(
            SwitchEvent::parse(r#"{"type":"media","call_id":"c","channel":1,"peers":[]}"#),
            SwitchEvent::Other
        );
        assert_eq!(SwitchEvent::parse("not json"), SwitchEvent::Other);
    }

    #[test]
    fn requests_are_protocol_json() {
        let dial: Value = serde_json::from_str(&dial_request("+15550101", Some("x"))).unwrap();
        assert_eq!(
            dial,
            json!({"type":"dial","call_id":"x","targets":["+15550101"]})
        );
        let dial: Value = serde_json::from_str(&dial_request("+15550101", None)).unwrap();
        assert_eq!(dial, json!({"type":"dial","targets":["+15550101"]}));
        let hangup: Value = serde_json::from_str(&call_request("hangup", "x")).unwrap();
        assert_eq!(hangup, json!({"type":"hangup","call_id":"x"}));
        assert_eq!(
            reply_call_id(r#"{"type":"ok","call_id":"abc"}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(reply_call_id(r#"{"type":"ok"}"#), None);
    }

    #[test]
    fn uuids_are_checked_and_lower_cased() {
        assert_eq!(
            normalize_uuid("6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F").as_deref(),
            Some("6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5f")
        );
        assert!(normalize_uuid("").is_none());
        assert!(normalize_uuid("6f0d3c2e8a7b-4c1d-9e2f-0a1b2c3d4e5f0").is_none());
        assert!(normalize_uuid("6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5g").is_none());
    }
}
