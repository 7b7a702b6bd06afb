//! Framing of the control stream: a 4-byte big-endian length, then that many
//! bytes of UTF-8 JSON. The cap keeps a hostile peer from making us buffer
//! without bound.

use thiserror::Error;

/// Bytes of the length prefix.
pub const FRAME_HEADER_LEN: usize = 4;
/// Largest frame body a client may send (64 KiB). Larger frames close the
/// connection: the stream cannot be resynchronised without reading them.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Largest frame body the switch sends (16 MiB): replies such as `calls` or
/// `call_log` grow with the switch's load, and clients trust the switch.
pub const MAX_SERVER_FRAME_LEN: usize = 16 * 1024 * 1024;

/// A framing failure.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max} byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
}

/// Checks a length prefix against `max` and returns the body length.
pub fn decode_frame_len_max(
    header: [u8; FRAME_HEADER_LEN],
    max: usize,
) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Checks a client frame's length prefix (at most [`MAX_FRAME_LEN`]).
pub fn decode_frame_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, FrameError> {
    decode_frame_len_max(header, MAX_FRAME_LEN)
}

/// Prefixes a client frame's body with its length.
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    encode_frame_max(body, MAX_FRAME_LEN)
}

/// Prefixes a body of at most `max` bytes with its length.
pub fn encode_frame_max(body: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    if body.len() > max {
        return Err(FrameError::TooLarge {
            len: body.len(),
            max,
        });
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let f = encode_frame(b"{}").unwrap();
        assert_eq!(decode_frame_len(f[..4].try_into().unwrap()), Ok(2));
        assert_eq!(decode_frame_len([0, 0, 0, 0]), Err(FrameError::Empty));
        let big = (MAX_FRAME_LEN as u32 + 1).to_be_bytes();
        assert_eq!(
            decode_frame_len(big),
            Err(FrameError::TooLarge {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            })
        );
        assert!(decode_frame_len_max(big, MAX_SERVER_FRAME_LEN).is_ok());
        assert!(encode_frame(&vec![0; MAX_FRAME_LEN + 1]).is_err());
    }
}
