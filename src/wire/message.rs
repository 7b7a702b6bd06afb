//! Control messages. Every client message is a request carrying a `req` id
//! that the switch echoes in its reply (`welcome`, `ok`, `error`, or a typed
//! result); server messages without `req` are events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{
    CallKind, CallRecord, CallSummary, EndReason, ErrorCode, LeaveReason, PartyRef, PluginInfo,
    RingStopReason, Role, StatsSnapshot, UserPresence,
};

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Authenticate. Must be the first message on a connection.
    Hello {
        version: u32,
        token: String,
        /// Label of this device, shown to admins ("laptop", "desk phone").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// With the admin token only: act as this user (name, UUID or number).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        act_as: Option<String>,
    },
    /// Place a call to one user (direct) or several (group).
    Dial {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<Uuid>,
        targets: Vec<String>,
    },
    /// Take a call ringing on this device.
    Answer { call_id: Uuid },
    /// Refuse a call ringing on this device.
    Decline { call_id: Uuid },
    /// Leave a call (or cancel it while ringing).
    Hangup { call_id: Uuid },
    /// Stop exchanging audio in a call without leaving it.
    Hold { call_id: Uuid },
    /// Resume audio after `hold`.
    Unhold { call_id: Uuid },
    /// Take over, on this device, a call the user is joined to on another
    /// of their devices: the audio moves here, the other device is told
    /// `left` with reason `picked_up`.
    Pickup { call_id: Uuid },
    /// Send DTMF digits (`0-9*#A-D`) to the other parties.
    Dtmf { call_id: Uuid, digits: String },
    /// Add users to a running call; it becomes a group call.
    Invite { call_id: Uuid, targets: Vec<String> },
    /// Send an application message (any JSON) to every device of a user.
    Message { to: String, body: serde_json::Value },
    /// Liveness check; answered with `ok`.
    Ping,
    /// Admin: live calls.
    ListCalls,
    /// Admin: the record of an ended call.
    CallLog { call_id: Uuid },
    /// Admin: end a live call for everyone.
    AdminHangup { call_id: Uuid },
    /// Admin: users and their online devices.
    ListUsers,
    /// Admin: counters.
    Stats,
    /// Admin: loaded plugins.
    ListPlugins,
    /// Admin: reload one plugin (or all, without `name`) from its file.
    ReloadPlugins {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl Request {
    /// Every `type` a client may send.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "dial",
        "answer",
        "decline",
        "hangup",
        "hold",
        "unhold",
        "pickup",
        "dtmf",
        "invite",
        "message",
        "ping",
        "list_calls",
        "call_log",
        "admin_hangup",
        "list_users",
        "stats",
        "list_plugins",
        "reload_plugins",
    ];

    /// True for the requests only an admin may make.
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Request::ListCalls
                | Request::CallLog { .. }
                | Request::AdminHangup { .. }
                | Request::ListUsers
                | Request::Stats
                | Request::ListPlugins
                | Request::ReloadPlugins { .. }
        )
    }
}

/// A request with its correlation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    pub req: u64,
    pub request: Request,
}

/// Why a client frame was refused, with the `req` when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub req: Option<u64>,
    pub code: ErrorCode,
    pub message: String,
}

impl ClientFrame {
    /// Encodes as a JSON object: the request's fields plus `req`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(&self.request).expect("requests serialise");
        if let Value::Object(map) = &mut value {
            map.insert("req".into(), Value::from(self.req));
        }
        serde_json::to_vec(&value).expect("values serialise")
    }

    /// Decodes a frame body, telling malformed JSON, unknown types and bad
    /// fields apart so the client learns exactly what was wrong.
    pub fn from_json(body: &[u8]) -> Result<Self, DecodeError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| DecodeError {
            req: None,
            code: ErrorCode::MalformedFrame,
            message: format!("frame is not valid JSON: {e}"),
        })?;
        let Value::Object(map) = &value else {
            return Err(DecodeError {
                req: None,
                code: ErrorCode::MalformedFrame,
                message: "frame is not a JSON object".into(),
            });
        };
        let req = map.get("req").and_then(Value::as_u64);
        let fail = |code, message: String| DecodeError { req, code, message };
        let Some(req) = req else {
            return Err(fail(
                ErrorCode::BadRequest,
                "missing or non-integer `req`".into(),
            ));
        };
        let Some(kind) = map.get("type").and_then(Value::as_str) else {
            return Err(fail(
                ErrorCode::BadRequest,
                "missing or non-string `type`".into(),
            ));
        };
        if !Request::TYPES.contains(&kind) {
            return Err(fail(
                ErrorCode::UnknownMessage,
                format!("unknown message type `{kind}`"),
            ));
        }
        let request = serde_json::from_value(value.clone())
            .map_err(|e| fail(ErrorCode::BadRequest, format!("bad `{kind}` message: {e}")))?;
        Ok(ClientFrame { req, request })
    }
}

/// A device's place in a call's audio: the channel it sends on and the
/// channels it will receive from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaPeer {
    pub channel: u32,
    pub user: PartyRef,
}

/// Everything the switch sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    // ---- replies ----
    /// `hello` accepted.
    Welcome {
        req: u64,
        role: Role,
        /// The user this connection acts for (absent for a plain admin).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<PartyRef>,
        device_id: u64,
        server: String,
    },
    /// A request succeeded; `call_id` names the call it concerned.
    Ok {
        req: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<Uuid>,
    },
    /// A request failed. `req` is absent when it could not be read.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        code: ErrorCode,
        message: String,
    },
    /// Reply to `list_calls`.
    Calls {
        req: u64,
        calls: Vec<CallSummary>,
    },
    /// Reply to `call_log`.
    CallLog {
        req: u64,
        record: Box<CallRecord>,
    },
    /// Reply to `list_users`.
    Users {
        req: u64,
        users: Vec<UserPresence>,
    },
    /// Reply to `stats`.
    Stats {
        req: u64,
        stats: StatsSnapshot,
    },
    /// Reply to `list_plugins` and `reload_plugins`.
    Plugins {
        req: u64,
        plugins: Vec<PluginInfo>,
    },

    // ---- events ----
    /// A call rings on this device.
    Incoming {
        call_id: Uuid,
        kind: CallKind,
        from: PartyRef,
        parties: Vec<PartyRef>,
    },
    /// An invitee's device is ringing (to the caller and joined parties).
    Ringing {
        call_id: Uuid,
        user: PartyRef,
        device: u64,
    },
    /// An invitee answered (to the other joined parties).
    Answered {
        call_id: Uuid,
        user: PartyRef,
        device: u64,
    },
    /// This device stopped ringing while the call goes on.
    RingStopped {
        call_id: Uuid,
        reason: RingStopReason,
    },
    /// A party left a call that goes on.
    Left {
        call_id: Uuid,
        user: PartyRef,
        reason: LeaveReason,
    },
    /// This device's audio in the call: send on `channel`; frames from
    /// `peers` arrive. Sent again whenever the set changes; no peers means
    /// no audio flows (ringing, hold).
    Media {
        call_id: Uuid,
        channel: u32,
        peers: Vec<MediaPeer>,
    },
    Held {
        call_id: Uuid,
        user: PartyRef,
    },
    Resumed {
        call_id: Uuid,
        user: PartyRef,
    },
    Dtmf {
        call_id: Uuid,
        user: PartyRef,
        digits: String,
    },
    /// An invitee is in another call.
    Busy {
        call_id: Uuid,
        user: PartyRef,
    },
    /// Every device of an invitee declined.
    Declined {
        call_id: Uuid,
        user: PartyRef,
    },
    /// An invitee did not answer in time.
    NoAnswer {
        call_id: Uuid,
        user: PartyRef,
    },
    /// An invitee has no device online.
    Unavailable {
        call_id: Uuid,
        user: PartyRef,
    },
    /// The call is over for everyone; its record is already written.
    Ended {
        call_id: Uuid,
        reason: EndReason,
    },
    /// An application message from a user. Sent to every device of the
    /// recipient, and as a copy to the sender's other devices.
    Message {
        from: PartyRef,
        to: PartyRef,
        body: serde_json::Value,
    },
    /// A JSON notification from a plugin (the `notify` capability).
    Notification {
        plugin: String,
        body: serde_json::Value,
    },
}

impl ServerMessage {
    /// The `req` of a reply; `None` for events.
    pub fn req(&self) -> Option<u64> {
        match self {
            ServerMessage::Welcome { req, .. }
            | ServerMessage::Ok { req, .. }
            | ServerMessage::Calls { req, .. }
            | ServerMessage::CallLog { req, .. }
            | ServerMessage::Users { req, .. }
            | ServerMessage::Stats { req, .. }
            | ServerMessage::Plugins { req, .. } => Some(*req),
            ServerMessage::Error { req, .. } => *req,
            _ => None,
        }
    }

    /// The call an event concerns.
    pub fn call_id(&self) -> Option<Uuid> {
        match self {
            ServerMessage::Incoming { call_id, .. }
            | ServerMessage::Ringing { call_id, .. }
            | ServerMessage::Answered { call_id, .. }
            | ServerMessage::RingStopped { call_id, .. }
            | ServerMessage::Left { call_id, .. }
            | ServerMessage::Media { call_id, .. }
            | ServerMessage::Held { call_id, .. }
            | ServerMessage::Resumed { call_id, .. }
            | ServerMessage::Dtmf { call_id, .. }
            | ServerMessage::Busy { call_id, .. }
            | ServerMessage::Declined { call_id, .. }
            | ServerMessage::NoAnswer { call_id, .. }
            | ServerMessage::Unavailable { call_id, .. }
            | ServerMessage::Ended { call_id, .. } => Some(*call_id),
            ServerMessage::Ok { call_id, .. } => *call_id,
            _ => None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("server messages serialise")
    }

    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frame_round_trip() {
        let frame = ClientFrame {
            req: 9,
            request: Request::Dial {
                call_id: None,
                targets: vec!["bob".into()],
            },
        };
        let json = frame.to_json();
        let text = std::str::from_utf8(&json).unwrap();
        assert!(text.contains(r#""type":"dial""#), "{text}");
        assert!(text.contains(r#""req":9"#), "{text}");
        assert_eq!(ClientFrame::from_json(&json).unwrap(), frame);
    }

    #[test]
    fn every_listed_type_is_a_request() {
        for kind in Request::TYPES {
            let err = ClientFrame::from_json(format!(r#"{{"type":"{kind}","req":1}}"#).as_bytes());
            if let Err(e) = err {
                assert_eq!(e.code, ErrorCode::BadRequest, "{kind}: {}", e.message);
            }
        }
    }

    #[test]
    fn decode_errors_are_specific() {
        let e = ClientFrame::from_json(b"{nope").unwrap_err();
        assert_eq!((e.code, e.req), (ErrorCode::MalformedFrame, None));
        let e = ClientFrame::from_json(b"[1]").unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedFrame);
        let e = ClientFrame::from_json(br#"{"type":"teleport","req":4}"#).unwrap_err();
        assert_eq!((e.code, e.req), (ErrorCode::UnknownMessage, Some(4)));
        let e = ClientFrame::from_json(br#"{"type":"answer","req":5}"#).unwrap_err();
        assert_eq!((e.code, e.req), (ErrorCode::BadRequest, Some(5)));
        assert!(e.message.contains("call_id"), "{}", e.message);
        let e = ClientFrame::from_json(br#"{"type":"ping"}"#).unwrap_err();
        assert_eq!((e.code, e.req), (ErrorCode::BadRequest, None));
    }
}
