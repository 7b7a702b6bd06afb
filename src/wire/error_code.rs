//! The error codes a client can receive in an `error` message. Their string
//! forms are part of the protocol (docs/PROTOCOL.md) and never change meaning.

use serde::{Deserialize, Serialize};

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame could not be parsed as a JSON object with a `type`.
    MalformedFrame,
    /// A frame's announced length is above the limit; the connection closes.
    FrameTooLarge,
    /// The `type` is not one this switch knows.
    UnknownMessage,
    /// The message's fields are missing or of the wrong type.
    BadRequest,
    /// The client's protocol version is not supported.
    UnsupportedVersion,
    /// A request was sent before a successful `hello`.
    HelloRequired,
    /// A second `hello` on an authenticated connection.
    AlreadyAuthenticated,
    /// Missing or wrong token; the connection closes.
    Unauthorized,
    /// The authenticated identity may not make this request.
    Forbidden,
    /// A dial target matches no user.
    UnknownUser,
    /// The caller is among the targets.
    CannotCallSelf,
    /// The call id is already in use (live or ended in this run).
    DuplicateCallId,
    /// No live call has this id.
    UnknownCall,
    /// The call is not ringing on this device (answer/decline).
    NotRinging,
    /// This device is not a participant of the call.
    NotInCall,
    /// The request does not fit the call's current state (e.g. hold twice).
    InvalidState,
    /// DTMF digits outside `0-9*#A-D`.
    InvalidDtmf,
    /// The call would exceed the participant limit.
    TooManyParticipants,
    /// A policy plugin refused the request.
    Denied,
    /// The recipient of a message has no device online.
    Unavailable,
    /// The switch is at capacity and refuses new calls.
    Overloaded,
    /// The switch failed internally (e.g. a record could not be written).
    Internal,
}

impl ErrorCode {
    /// The wire name, e.g. `unknown_call`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedFrame => "malformed_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UnknownUser => "unknown_user",
            ErrorCode::CannotCallSelf => "cannot_call_self",
            ErrorCode::DuplicateCallId => "duplicate_call_id",
            ErrorCode::UnknownCall => "unknown_call",
            ErrorCode::NotRinging => "not_ringing",
            ErrorCode::NotInCall => "not_in_call",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::InvalidDtmf => "invalid_dtmf",
            ErrorCode::TooManyParticipants => "too_many_participants",
            ErrorCode::Denied => "denied",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in [
            ErrorCode::UnknownCall,
            ErrorCode::MalformedFrame,
            ErrorCode::Overloaded,
        ] {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json.as_str().unwrap(), code.as_str());
        }
    }
}
