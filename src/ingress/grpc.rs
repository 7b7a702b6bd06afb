//! gRPC calls served by an adapter as streams: the host reads the
//! request's length-prefixed messages as they arrive and hands each to the
//! adapter, writes the adapter's messages with the same framing, and ends
//! the call with `grpc-status` / `grpc-message` trailers. The protobuf
//! inside is the adapter's business, so the service's package and paths
//! are whatever the adapter's proto says.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::HeaderMap;
use tokio::sync::mpsc;
use tracing::{debug, info_span, Instrument};

use super::port::{AdapterLinks, StreamKind, StreamOut};
use crate::plugins::bindings::adapter::StreamMessage;
use crate::plugins::port::StreamPayload;

/// gRPC status codes the host itself uses.
pub const STATUS_OK: u16 = 0;
pub const STATUS_RESOURCE_EXHAUSTED: u16 = 8;
pub const STATUS_INTERNAL: u16 = 13;
pub const STATUS_UNIMPLEMENTED: u16 = 12;
pub const STATUS_UNAVAILABLE: u16 = 14;

/// Messages the adapter may queue on one call.
const STREAM_QUEUE: usize = 256;

/// True for a gRPC request: HTTP/2 `POST` with a gRPC content type.
pub fn is_grpc(parts: &hyper::http::request::Parts) -> bool {
    parts.version == hyper::Version::HTTP_2
        && parts.method == hyper::Method::POST
        && parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct == "application/grpc" || ct.starts_with("application/grpc+"))
}

/// A response body fed from a channel of frames (data, then trailers).
pub struct ChannelBody {
    rx: mpsc::Receiver<Frame<Bytes>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// Percent-encodes a `grpc-message` as the gRPC HTTP/2 spec asks.
fn encode_message(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn trailers(code: u16, message: &str) -> Frame<Bytes> {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&encode_message(message)) {
            map.insert("grpc-message", v);
        }
    }
    Frame::trailers(map)
}

/// One gRPC message: flag 0 (uncompressed), 4-byte length, payload.
fn framed(payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    b.put_u8(0);
    b.put_u32(payload.len() as u32);
    b.put_slice(payload);
    b.freeze()
}

/// Starts serving the call as stream `context`; returns the response body.
pub fn open(
    links: Arc<AdapterLinks>,
    body: Incoming,
    context: String,
    max_message: usize,
) -> ChannelBody {
    let (frames_tx, frames_rx) = mpsc::channel::<Frame<Bytes>>(STREAM_QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<StreamOut>(STREAM_QUEUE);
    // A gRPC call carries no audio: this queue only keeps the entry uniform.
    let (media_tx, _media_rx) = mpsc::channel::<Bytes>(1);
    let id = links.add_stream(StreamKind::Grpc, out_tx.clone(), media_tx);
    let span = info_span!("grpc", adapter = %links.name, stream = id);

    // Writer: the adapter's messages, then the trailers.
    tokio::spawn(
        async move {
            while let Some(out) = out_rx.recv().await {
                let frame = match out {
                    StreamOut::Message(StreamPayload::Binary(b)) => Frame::data(framed(&b)),
                    // Refused by `streams.send` already.
                    StreamOut::Message(StreamPayload::Text(_)) => continue,
                    StreamOut::Close { code, reason } => {
                        let _ = frames_tx.send(trailers(code, &reason)).await;
                        return;
                    }
                };
                if frames_tx.send(frame).await.is_err() {
                    return;
                }
            }
        }
        .instrument(span.clone()),
    );

    tokio::spawn(
        async move {
            let Some(adapter) = links.adapter() else {
                return;
            };
            if adapter.on_stream_open(id, &context).await.is_err() {
                // The failure reset closed the stream with a status.
                return;
            }
            let mut body = body;
            let mut buf = BytesMut::new();
            let ending = loop {
                let frame = match body.frame().await {
                    None => break None,
                    Some(Err(e)) => {
                        debug!(error = %e, "gRPC request stream failed");
                        break None;
                    }
                    Some(Ok(f)) => f,
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                let mut failed = None;
                while buf.len() >= 5 {
                    let compressed = buf[0];
                    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                    if compressed != 0 {
                        failed = Some((
                            STATUS_UNIMPLEMENTED,
                            "compressed messages are not supported".to_string(),
                        ));
                        break;
                    }
                    if len > max_message {
                        failed = Some((
                            STATUS_RESOURCE_EXHAUSTED,
                            format!("message of {len} bytes is larger than {max_message}"),
                        ));
                        break;
                    }
                    if buf.len() < 5 + len {
                        break;
                    }
                    buf.advance(5);
                    let payload = buf.split_to(len).to_vec();
                    let _ = adapter
                        .on_stream_message(id, &StreamMessage::Binary(payload))
                        .await;
                    if !links.has_stream(id) {
                        // The adapter ended the call.
                        return;
                    }
                }
                if failed.is_some() {
                    break failed;
                }
            };
            if let Some((code, reason)) = ending {
                if links.remove_stream(id) {
                    let _ = out_tx.send(StreamOut::Close { code, reason }).await;
                    let _ = adapter.on_stream_close(id).await;
                }
                return;
            }
            // The client ended its side (or went away): the call is over
            // for the adapter; end it with OK unless the adapter did.
            if links.remove_stream(id) {
                let _ = adapter.on_stream_close(id).await;
                let _ = out_tx
                    .send(StreamOut::Close {
                        code: STATUS_OK,
                        reason: String::new(),
                    })
                    .await;
            }
        }
        .instrument(span),
    );
    ChannelBody { rx: frames_rx }
}

/// A trailers-only error response's headers, for calls the host refuses.
pub fn error_headers(code: u16, message: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/grpc".to_string()),
        ("grpc-status", code.to_string()),
        ("grpc-message", encode_message(message)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(encode_message("bad id: 100%"), "bad id: 100%25");
        assert_eq!(encode_message("é"), "%C3%A9");
    }

    #[test]
    fn framing_has_flag_and_length() {
        assert_eq!(&framed(b"abc")[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
