//! The JSON on both sides of the plugin: what the API's clients get
//! (notification frames, the phone socket's start packet, the login reply,
//! the caller's address they post), what the plugin sends the switch
//! (`dial`, `answer`, `decline`, `hangup`) and the switch events it reads.
//! Also the UUIDs that tie the two together: the switch writes them lower
//! case, the API upper case.

use serde::{Deserialize, Serialize};

/// `text` as a lower-case hyphenated UUID (the switch's form), if it is a
/// UUID in hyphenated form of either case (the only form Swift's
/// `UUID(uuidString:)` accepts).
pub fn parse_uuid(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    well_formed.then(|| text.to_ascii_lowercase())
}

/// A UUID as the API writes it: upper case.
pub fn api_uuid(id: &str) -> String {
    id.to_ascii_uppercase()
}

/// The caller's network address(es) for the direct path
/// (`PhoneSocketServerAddress`). Absent ones are omitted, never `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallerAddress {
    #[serde(rename = "ipV4Addr", skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(rename = "ipV6Addr", skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
}

/// Largest `initiate` body read.
pub const MAX_INITIATE_BODY: usize = 4096;

impl CallerAddress {
    /// The body of `POST /phone/initiate/...`: a JSON object with an
    /// `ipV4Addr` or `ipV6Addr` string (or both). Other fields, and those
    /// two when they are not strings, are ignored; the addresses are passed
    /// on to the callee as given.
    pub fn from_body(body: &[u8]) -> Option<CallerAddress> {
        // Two IP addresses fit in far less; a larger body is refused before
        // parsing, since a JSON tree can take many times its text's size
        // and the plugin's memory is capped.
        if body.len() > MAX_INITIATE_BODY {
            return None;
        }
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        let field = |name: &str| object.get(name)?.as_str().map(str::to_owned);
        let address = CallerAddress {
            ipv4: field("ipV4Addr"),
            ipv6: field("ipV6Addr"),
        };
        (address.ipv4.is_some() || address.ipv6.is_some()).then_some(address)
    }
}

/// `UserHeader`, reduced to what the switch knows of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserHeader {
    #[serde(rename = "userID")]
    pub user_id: String,
    pub username: String,
}

/// What a notification is about: a Swift enum, encoded as an object with one
/// key whose value is an empty object (`{"incomingPhoneCall":{}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NotificationKind {
    #[serde(rename = "incomingPhoneCall")]
    IncomingPhoneCall {},
    #[serde(rename = "phoneCallAnswered")]
    PhoneCallAnswered {},
    #[serde(rename = "phoneCallEnded")]
    PhoneCallEnded {},
}

/// One frame of the notification socket (`SocketNotificationData`), sent as
/// a TEXT message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    pub info: String,
    #[serde(rename = "contentID")]
    pub content_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<UserHeader>,
    #[serde(rename = "callerAddress", skip_serializing_if = "Option::is_none")]
    pub caller_address: Option<CallerAddress>,
}

impl Notification {
    /// `incomingPhoneCall` for call `call_id` from `caller_id`/`caller_name`.
    pub fn incoming(
        call_id: &str,
        caller_id: &str,
        caller_name: &str,
        caller_address: Option<CallerAddress>,
    ) -> Notification {
        Notification {
            kind: NotificationKind::IncomingPhoneCall {},
            info: caller_name.to_owned(),
            content_id: api_uuid(call_id),
            caller: Some(UserHeader {
                user_id: api_uuid(caller_id),
                username: caller_name.to_owned(),
            }),
            caller_address,
        }
    }

    /// `phoneCallAnswered` or `phoneCallEnded` for call `call_id`.
    pub fn status(kind: NotificationKind, call_id: &str) -> Notification {
        Notification {
            kind,
            info: String::new(),
            content_id: api_uuid(call_id),
            caller: None,
            caller_address: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The first frame on both phone sockets once the call is answered
/// (`PhoneSocketStartData`), sent as a BINARY message of JSON.
pub fn start_packet(now_ms: u64) -> Vec<u8> {
    #[derive(Serialize)]
    struct StartData {
        #[serde(rename = "phonecallStartTime")]
        start_time: String,
    }
    serde_json::to_vec(&StartData {
        start_time: crate::time::iso8601_utc(now_ms),
    })
    .unwrap_or_default()
}

/// The reply to a successful login (`TokenStringData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginReply {
    #[serde(rename = "userID")]
    pub user_id: String,
    #[serde(rename = "accessLevel")]
    pub access_level: &'static str,
    pub token: String,
}

/// A request of the switch's client protocol (without `req`), as
/// `devices.request` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SwitchRequest<'a> {
    Dial {
        call_id: &'a str,
        targets: [&'a str; 1],
    },
    Answer {
        call_id: &'a str,
    },
    Decline {
        call_id: &'a str,
    },
    Hangup {
        call_id: &'a str,
    },
}

impl SwitchRequest<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `PartyRef`: `{"id": "<uuid>", "name": "alice"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PartyRef {
    pub id: String,
    pub name: String,
}

/// The switch events the plugin acts on; every other event is `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchEvent {
    /// The device rings for call `call_id` placed by `from`.
    Incoming {
        call_id: String,
        from: PartyRef,
    },
    /// A party answered call `call_id` on device `device` (a device of the
    /// switch, the plugin's own or not).
    Answered {
        call_id: String,
        device: u64,
    },
    /// The device stopped ringing while the call goes on; `reason` is
    /// `answered_elsewhere` or `no_answer`.
    RingStopped {
        call_id: String,
        reason: String,
    },
    /// The call is over.
    Ended {
        call_id: String,
        reason: String,
    },
    /// The switch closed the device (it shuts down).
    Closed,
    Other,
}

impl SwitchEvent {
    /// Reads an event's JSON; anything unreadable or unknown is `Other`, as
    /// a client skips events it does not know.
    pub fn parse(json: &str) -> SwitchEvent {
        #[derive(Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Known {
            Incoming { call_id: String, from: PartyRef },
            Answered { call_id: String, device: u64 },
            RingStopped { call_id: String, reason: String },
            Ended { call_id: String, reason: String },
            Closed,
        }
        match serde_json::from_str::<Known>(json) {
            Ok(Known::Incoming { call_id, from }) => SwitchEvent::Incoming {
                call_id: call_id.to_ascii_lowercase(),
                from: PartyRef {
                    id: from.id.to_ascii_lowercase(),
                    name: from.name,
                },
            },
            Ok(Known::Answered { call_id, device }) => SwitchEvent::Answered {
                call_id: call_id.to_ascii_lowercase(),
                device,
            },
            Ok(Known::RingStopped { call_id, reason }) => SwitchEvent::RingStopped {
                call_id: call_id.to_ascii_lowercase(),
                reason,
            },
            Ok(Known::Ended { call_id, reason }) => SwitchEvent::Ended {
                call_id: call_id.to_ascii_lowercase(),
                reason,
            },
            Ok(Known::Closed) => SwitchEvent::Closed,
            Err(_) => SwitchEvent::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = "6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5f";
    const ALICE: &str = "5f1c5a1e-0000-4000-8000-00000000a11c";

    #[test]
    fn uuids_of_either_case_are_accepted_and_lowered() {
        assert_eq!(parse_uuid(CALL).as_deref(), Some(CALL));
        assert_eq!(
            parse_uuid("6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F").as_deref(),
            Some(CALL)
        );
        assert_eq!(
            parse_uuid("6F0D3C2E-8a7b-4C1D-9E2F-0A1B2C3D4E5F").as_deref(),
            Some(CALL)
        );
    }

    #[test]
    fn non_uuids_are_refused() {
        for bad in [
            "",
            "alice",
            "6f0d3c2e8a7b4c1d9e2f0a1b2c3d4e5f",
            "{6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5f}",
            "6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5g",
            "6f0d3c2e-8a7b-4c1d-9e2f0-a1b2c3d4e5f",
            "6f0d3c2e-8a7b-4c1d-9e2f-0a1b2c3d4e5f0",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn incoming_notification_shape() {
        let address = CallerAddress {
            ipv4: Some("10.0.0.5".into()),
            ipv6: None,
        };
        let json = Notification::incoming(CALL, ALICE, "alice", Some(address)).to_json();
        assert_eq!(
            json,
            r#"{"type":{"incomingPhoneCall":{}},"info":"alice","contentID":"6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F","caller":{"userID":"5F1C5A1E-0000-4000-8000-00000000A11C","username":"alice"},"callerAddress":{"ipV4Addr":"10.0.0.5"}}"#
        );
        let json = Notification::incoming(CALL, ALICE, "alice", None).to_json();
        assert!(!json.contains("callerAddress"), "{json}");
        assert!(!json.contains("null"), "{json}");
    }

    #[test]
    fn status_notification_shapes() {
        assert_eq!(
            Notification::status(NotificationKind::PhoneCallAnswered {}, CALL).to_json(),
            r#"{"type":{"phoneCallAnswered":{}},"info":"","contentID":"6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F"}"#
        );
        assert_eq!(
            Notification::status(NotificationKind::PhoneCallEnded {}, CALL).to_json(),
            r#"{"type":{"phoneCallEnded":{}},"info":"","contentID":"6F0D3C2E-8A7B-4C1D-9E2F-0A1B2C3D4E5F"}"#
        );
    }

    #[test]
    fn start_packet_shape() {
        assert_eq!(
            String::from_utf8(start_packet(1_795_361_322_123)).unwrap(),
            r#"{"phonecallStartTime":"2026-11-22T15:28:42.123Z"}"#
        );
    }

    #[test]
    fn login_reply_shape() {
        let reply = LoginReply {
            user_id: api_uuid(ALICE),
            access_level: "verified",
            token: "alice-demo-token".into(),
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"userID":"5F1C5A1E-0000-4000-8000-00000000A11C","accessLevel":"verified","token":"alice-demo-token"}"#
        );
    }

    #[test]
    fn caller_address_from_body() {
        assert_eq!(
            CallerAddress::from_body(br#"{"ipV4Addr":"10.0.0.5","ipV6Addr":"fe80::1"}"#),
            Some(CallerAddress {
                ipv4: Some("10.0.0.5".into()),
                ipv6: Some("fe80::1".into()),
            })
        );
        assert_eq!(
            CallerAddress::from_body(br#"{"ipV6Addr":"fe80::1","other":1}"#),
            Some(CallerAddress {
                ipv4: None,
                ipv6: Some("fe80::1".into()),
            })
        );
        for bad in [
            &b""[..],
            b"null",
            b"[]",
            b"{}",
            br#"{"ipV4Addr":4}"#,
            br#"{"ipv4addr":"10.0.0.5"}"#,
            b"{not json",
        ] {
            assert_eq!(CallerAddress::from_body(bad), None);
        }
    }

    #[test]
    fn switch_request_shapes() {
        assert_eq!(
            SwitchRequest::Dial {
                call_id: CALL,
                targets: [ALICE]
            }
            .to_json(),
            format!(r#"{{"type":"dial","call_id":"{CALL}","targets":["{ALICE}"]}}"#)
        );
        assert_eq!(
            SwitchRequest::Answer { call_id: CALL }.to_json(),
            format!(r#"{{"type":"answer","call_id":"{CALL}"}}"#)
        );
        assert_eq!(
            SwitchRequest::Decline { call_id: CALL }.to_json(),
            format!(r#"{{"type":"decline","call_id":"{CALL}"}}"#)
        );
        assert_eq!(
            SwitchRequest::Hangup { call_id: CALL }.to_json(),
            format!(r#"{{"type":"hangup","call_id":"{CALL}"}}"#)
        );
    }

    #[test]
    fn switch_events_are_parsed() {
        let incoming = format!(
            r#"{{"type":"incoming","call_id":"{CALL}","kind":"direct","from":{{"id":"{ALICE}","name":"alice"}},"parties":[]}}"#
        );
        assert_eq!(
            SwitchEvent::parse(&incoming),
            SwitchEvent::Incoming {
                call_id: CALL.into(),
                from: PartyRef {
                    id: ALICE.into(),
                    name: "alice".into()
                }
            }
        );
        assert_eq!(
            SwitchEvent::parse(&format!(
                r#"{{"type":"answered","call_id":"{CALL}","user":{{"id":"{ALICE}","name":"alice"}},"device":7}}"#
            )),
            SwitchEvent::Answered {
                call_id: CALL.into(),
                device: 7
            }
        );
        assert_eq!(
            SwitchEvent::parse(&format!(
                r#"{{"type":"ring_stopped","call_id":"{CALL}","reason":"answered_elsewhere"}}"#
            )),
            SwitchEvent::RingStopped {
                call_id: CALL.into(),
                reason: "answered_elsewhere".into()
            }
        );
        assert_eq!(
            SwitchEvent::parse(&format!(
                r#"{{"type":"ended","call_id":"{CALL}","reason":"hangup"}}"#
            )),
            SwitchEvent::Ended {
                call_id: CALL.into(),
                reason: "hangup".into()
            }
        );
        assert_eq!(
            SwitchEvent::parse(r#"{"type":"closed","reason":"switch shutting down"}"#),
            SwitchEvent::Closed
        );
        assert_eq!(
            SwitchEvent::parse(&format!(
                r#"{{"type":"media","call_id":"{CALL}","channel":1,"peers":[]}}"#
            )),
            SwitchEvent::Other
        );
        assert_eq!(SwitchEvent::parse("not json"), SwitchEvent::Other);
    }
}
