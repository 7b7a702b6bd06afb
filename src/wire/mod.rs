//! The QUIC control protocol: length-prefixed JSON frames on one bidirectional
//! stream, the messages they carry, and the header of audio datagrams.
//!
//! Pure encode/decode: nothing here touches a socket. docs/PROTOCOL.md is the
//! prose version of this module.

mod datagram;
mod error_code;
mod fingerprint;
mod frame;
mod message;
mod model;

pub use datagram::{MediaFrame, MediaHeaderError, MEDIA_HEADER_LEN};
pub use error_code::ErrorCode;
pub use fingerprint::{cert_fingerprint, normalize_fingerprint};
pub use frame::{
    decode_frame_len, decode_frame_len_max, encode_frame, encode_frame_max, FrameError,
    FRAME_HEADER_LEN, MAX_FRAME_LEN, MAX_SERVER_FRAME_LEN,
};
pub use message::*;
pub use model::*;

/// ALPN protocol identifier negotiated on every connection.
pub const ALPN: &[u8] = b"callswitch/1";

/// Version of the control protocol a client states in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;
