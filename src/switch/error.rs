//! Every way the core refuses an input, each mapped to its wire error code.

use thiserror::Error;
use uuid::Uuid;

use crate::wire::ErrorCode;

/// A rejected command.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SwitchError {
    #[error("invalid or missing token")]
    Unauthorized,
    #[error("this connection is already authenticated")]
    AlreadyAuthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("no user matches `{0}`")]
    UnknownUser(String),
    #[error("a call needs at least one target")]
    NoTargets,
    #[error("you cannot call yourself")]
    CannotCallSelf,
    #[error("call id {0} is already in use")]
    DuplicateCallId(Uuid),
    #[error("no live call {0}")]
    UnknownCall(Uuid),
    #[error("call {0} is not ringing on this device")]
    NotRinging(Uuid),
    #[error("this device is not in call {0}")]
    NotInCall(Uuid),
    #[error("{0}")]
    InvalidState(String),
    #[error("invalid DTMF digits `{0}`: use 1 to 64 of 0-9 * # A-D")]
    InvalidDtmf(String),
    #[error("a call may have at most {0} participants")]
    TooManyParticipants(usize),
    #[error("the switch is at capacity ({0} live calls): try again later")]
    Overloaded(usize),
    #[error("`{0}` has no device online")]
    Unavailable(String),
}

impl SwitchError {
    /// The protocol's code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SwitchError::Unauthorized => ErrorCode::Unauthorized,
            SwitchError::AlreadyAuthenticated => ErrorCode::AlreadyAuthenticated,
            SwitchError::Forbidden(_) => ErrorCode::Forbidden,
            SwitchError::UnknownUser(_) => ErrorCode::UnknownUser,
            SwitchError::NoTargets => ErrorCode::BadRequest,
            SwitchError::CannotCallSelf => ErrorCode::CannotCallSelf,
            SwitchError::DuplicateCallId(_) => ErrorCode::DuplicateCallId,
            SwitchError::UnknownCall(_) => ErrorCode::UnknownCall,
            SwitchError::NotRinging(_) => ErrorCode::NotRinging,
            SwitchError::NotInCall(_) => ErrorCode::NotInCall,
            SwitchError::InvalidState(_) => ErrorCode::InvalidState,
            SwitchError::InvalidDtmf(_) => ErrorCode::InvalidDtmf,
            SwitchError::TooManyParticipants(_) => ErrorCode::TooManyParticipants,
            SwitchError::Overloaded(_) => ErrorCode::Overloaded,
            SwitchError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}
