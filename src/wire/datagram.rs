//! Audio datagrams: a 12-byte header (channel, sequence, timestamp; all
//! big-endian u32) followed by an opaque codec payload the switch never reads.
//!
//! The channel is assigned by the switch to one device's leg in one call
//! (see `media` messages); it is unique on the switch while the leg lives, so
//! it both routes the frame and tells receivers in a group call who spoke.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Length of the datagram header.
pub const MEDIA_HEADER_LEN: usize = 12;

/// A datagram too short to hold a header.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("datagram of {0} bytes is shorter than the {MEDIA_HEADER_LEN}-byte media header")]
pub struct MediaHeaderError(pub usize);

/// One audio frame as carried in a QUIC datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFrame {
    /// Leg the frame belongs to (assigned by the switch).
    pub channel: u32,
    /// Sender's sequence number; wraps.
    pub seq: u32,
    /// Sender's media timestamp (e.g. samples, or milliseconds); wraps.
    pub timestamp: u32,
    /// Codec payload, opaque to the switch.
    pub payload: Bytes,
}

impl MediaFrame {
    /// Reads only the channel, the one field the relay needs.
    pub fn peek_channel(datagram: &[u8]) -> Result<u32, MediaHeaderError> {
        if datagram.len() < MEDIA_HEADER_LEN {
            return Err(MediaHeaderError(datagram.len()));
        }
        Ok(u32::from_be_bytes([
            datagram[0],
            datagram[1],
            datagram[2],
            datagram[3],
        ]))
    }

    /// Parses a datagram; the payload shares the datagram's buffer.
    pub fn decode(datagram: Bytes) -> Result<Self, MediaHeaderError> {
        let channel = Self::peek_channel(&datagram)?;
        let word = |i: usize| {
            u32::from_be_bytes([
                datagram[i],
                datagram[i + 1],
                datagram[i + 2],
                datagram[i + 3],
            ])
        };
        Ok(MediaFrame {
            channel,
            seq: word(4),
            timestamp: word(8),
            payload: datagram.slice(MEDIA_HEADER_LEN..),
        })
    }

    /// Serialises header and payload into one datagram.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(MEDIA_HEADER_LEN + self.payload.len());
        buf.put_u32(self.channel);
        buf.put_u32(self.seq);
        buf.put_u32(self.timestamp);
        buf.put_slice(&self.payload);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = MediaFrame {
            channel: 7,
            seq: 0xdead_beef,
            timestamp: 160,
            payload: Bytes::from_static(b"pcm"),
        };
        let d = f.encode();
        assert_eq!(d.len(), MEDIA_HEADER_LEN + 3);
        assert_eq!(MediaFrame::decode(d).unwrap(), f);
    }

    #[test]
    fn short_datagram_is_rejected() {
        assert_eq!(
            MediaFrame::decode(Bytes::from_static(b"short")),
            Err(MediaHeaderError(5))
        );
        assert_eq!(MediaFrame::peek_channel(&[]), Err(MediaHeaderError(0)));
    }
}
