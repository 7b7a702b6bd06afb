//! Framing of the control stream: a 4-byte big-endian length, then that many
//! bytes of UTF-8 JSON. The cap keeps a hostile peer from making us buffer
//! without bound.

use thiserror::Error;

/// Bytes of the length prefix.
pub const FRAME_HEADER_LEN: usize = 4;
/// Largest accepted frame body (64 KiB). Larger frames close the connection:
/// the stream cannot be resynchronised without reading them.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// A framing failure.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {max} byte limit", max = MAX_FRAME_LEN)]
    TooLarge(usize),
    #[error("empty frame")]
    Empty,
}

/// Checks a length prefix and returns the body length it announces.
pub fn decode_frame_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Prefixes a body with its length.
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
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
            Err(FrameError::TooLarge(MAX_FRAME_LEN + 1))
        );
        assert!(encode_frame(&vec![0; MAX_FRAME_LEN + 1]).is_err());
    }
}
