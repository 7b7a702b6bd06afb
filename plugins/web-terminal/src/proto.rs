//! The protobuf messages of `wgtwo.webterminal.v0` (and the one of
//! `wgtwo.common.v0` it uses), written by hand as `prost` derives that
//! match `proto/wgtwo/webterminal/v0/webterminal.proto` at the repository
//! root field number for field number, plus constructors for the messages
//! the core sends.

/// `wgtwo.common.v0.PhoneNumber`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PhoneNumber {
    /// E.164, e.g. `+4791234567`.
    #[prost(string, tag = "1")]
    pub e164: String,
}

/// `WebTerminalMessage`: every message of both directions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WebTerminalMessage {
    /// The `message` oneof.
    #[prost(oneof = "Body", tags = "1, 2, 3, 4, 5, 6, 7, 9")]
    pub message: Option<Body>,
    /// Ignored on `Pipe`; a UUID on `MultiPipe`.
    #[prost(string, tag = "10")]
    pub call_id: String,
}

/// The `message` oneof of `WebTerminalMessage`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    #[prost(message, tag = "1")]
    Offer(Offer),
    #[prost(message, tag = "2")]
    Answer(Answer),
    #[prost(message, tag = "3")]
    Ringing(Ringing),
    #[prost(message, tag = "4")]
    Bye(Bye),
    #[prost(message, tag = "5")]
    Idle(Idle),
    #[prost(message, tag = "6")]
    InCall(InCall),
    #[prost(message, tag = "7")]
    Error(Error),
    #[prost(message, tag = "9")]
    Action(Action),
}

/// `Offer`: a call (or an SDP update of an ongoing one).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Offer {
    #[prost(string, tag = "1")]
    pub sdp: String,
    /// The callee (terminal to core) or the caller (core to terminal).
    #[prost(message, optional, tag = "2")]
    pub msisdn: Option<PhoneNumber>,
}

/// `Answer`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Answer {
    #[prost(string, tag = "1")]
    pub sdp: String,
}

/// `Ringing` (empty).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Ringing {}

/// `Bye` (empty).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Bye {}

/// `Idle` (empty).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Idle {}

/// `InCall`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct InCall {
    #[prost(message, optional, tag = "1")]
    pub msisdn: Option<PhoneNumber>,
}

/// `Error`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Error {
    #[prost(enumeration = "Code", tag = "1")]
    pub err: i32,
}

/// `Error.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    Unknown = 0,
    NotIncall = 1,
    TryAgain = 2,
    InvalidCallId = 3,
    RateLimitHit = 4,
}

/// `Action`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Action {
    /// The `message` oneof.
    #[prost(oneof = "ActionBody", tags = "1")]
    pub message: Option<ActionBody>,
}

/// The `message` oneof of `Action`.
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum ActionBody {
    #[prost(message, tag = "1")]
    ToPhone(ToPhone),
}

/// `ToPhone` (empty).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ToPhone {}

fn number(e164: &str) -> Option<PhoneNumber> {
    Some(PhoneNumber { e164: e164.into() })
}

impl WebTerminalMessage {
    fn with(body: Body, call_id: &str) -> WebTerminalMessage {
        WebTerminalMessage {
            message: Some(body),
            call_id: call_id.into(),
        }
    }

    pub fn offer(sdp: &str, msisdn: &str, call_id: &str) -> WebTerminalMessage {
        Self::with(
            Body::Offer(Offer {
                sdp: sdp.into(),
                msisdn: number(msisdn),
            }),
            call_id,
        )
    }

    pub fn answer(sdp: &str, call_id: &str) -> WebTerminalMessage {
        Self::with(Body::Answer(Answer { sdp: sdp.into() }), call_id)
    }

    pub fn ringing(call_id: &str) -> WebTerminalMessage {
        Self::with(Body::Ringing(Ringing {}), call_id)
    }

    pub fn bye(call_id: &str) -> WebTerminalMessage {
        Self::with(Body::Bye(Bye {}), call_id)
    }

    pub fn idle(call_id: &str) -> WebTerminalMessage {
        Self::with(Body::Idle(Idle {}), call_id)
    }

    pub fn in_call(msisdn: &str, call_id: &str) -> WebTerminalMessage {
        Self::with(
            Body::InCall(InCall {
                msisdn: number(msisdn),
            }),
            call_id,
        )
    }

    pub fn error(code: Code, call_id: &str) -> WebTerminalMessage {
        Self::with(Body::Error(Error { err: code as i32 }), call_id)
    }

    /// The protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }

    /// Reads a message the client sent.
    pub fn decode(bytes: &[u8]) -> Result<WebTerminalMessage, prost::DecodeError> {
        prost::Message::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_numbers_match_the_proto() {
        // Offer{sdp "v", msisdn{e164 "+1"}} call_id "c":
        // field 1 (len) { 1: "v", 2: { 1: "+1" } }, field 10: "c".
        let bytes = WebTerminalMessage::offer("v", "+1", "c").encode();
        assert_eq!(
            bytes,
            [0x0a, 0x09, 0x0a, 0x01, b'v', 0x12, 0x04, 0x0a, 0x02, b'+', b'1', 0x52, 0x01, b'c']
        );
        // Empty messages of each tag: Answer 2, Ringing 3, Bye 4, Idle 5,
        // InCall 6, Error 7.
        assert_eq!(WebTerminalMessage::ringing("").encode(), [0x1a, 0x00]);
        assert_eq!(WebTerminalMessage::bye("").encode(), [0x22, 0x00]);
        assert_eq!(WebTerminalMessage::idle("").encode(), [0x2a, 0x00]);
        assert_eq!(
            WebTerminalMessage::in_call("+1", "").encode(),
            [0x32, 0x06, 0x0a, 0x04, 0x0a, 0x02, b'+', b'1']
        );
        assert_eq!(
            WebTerminalMessage::error(Code::RateLimitHit, "").encode(),
            [0x3a, 0x02, 0x08, 0x04]
        );
        assert_eq!(WebTerminalMessage::answer("", "").encode(), [0x12, 0x00]);
    }

    #[test]
    fn an_action_to_phone_is_field_9_holding_field_1() {
        let decoded =
            WebTerminalMessage::decode(&[0x4a, 0x02, 0x0a, 0x00, 0x52, 0x01, b'x']).unwrap();
        assert_eq!(
            decoded,
            WebTerminalMessage {
                message: Some(Body::Action(Action {
                    message: Some(ActionBody::ToPhone(ToPhone {}))
                })),
                call_id: "x".into(),
            }
        );
    }

    #[test]
    fn garbage_does_not_decode() {
        // A field with wire type 7 does not exist.
        assert!(WebTerminalMessage::decode(&[0xff, 0xff, 0xff]).is_err());
        // A length running past the end.
        assert!(WebTerminalMessage::decode(&[0x0a, 0x10, 0x01]).is_err());
        // Empty bytes are the empty message.
        assert_eq!(
            WebTerminalMessage::decode(&[]).unwrap(),
            WebTerminalMessage::default()
        );
    }
}
