//! WebSocket streams: the upgrade handshake (RFC 6455 over HTTP/1.1) and
//! one task per stream that reads messages into the adapter, relays the
//! binary messages of an attached stream as audio, and writes what the
//! adapter and the relay queue for the peer.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role};
use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info_span, Instrument};

use super::port::{AdapterLinks, StreamKind, StreamOut};
use crate::plugins::bindings::adapter::StreamMessage;
use crate::plugins::port::StreamPayload;
use crate::wire::MEDIA_HEADER_LEN;

/// Largest audio payload relayed from a stream: what fits a QUIC datagram
/// of the smallest MTU QUIC allows (1,200 bytes) with the media header.
pub const MAX_MEDIA_PAYLOAD: usize = 1188;

/// Messages the adapter may queue on one stream before it counts as not
/// reading.
const STREAM_QUEUE: usize = 256;
/// Audio frames queued towards one stream; more are dropped (late audio
/// is worse than lost audio).
const MEDIA_QUEUE: usize = 64;

/// True when the request asks for a WebSocket upgrade we can perform.
pub fn is_upgrade(req: &hyper::Request<hyper::body::Incoming>) -> bool {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    req.method() == hyper::Method::GET
        && req.version() == hyper::Version::HTTP_11
        && header("upgrade")
            .split(',')
            .any(|t| t.trim() == "websocket")
        && header("connection")
            .split(',')
            .any(|t| t.trim() == "upgrade")
        && header("sec-websocket-version") == "13"
        && req.headers().contains_key("sec-websocket-key")
}

/// Runs a stream once the connection is upgraded, until either side
/// closes it.
pub async fn run_stream(
    links: Arc<AdapterLinks>,
    upgrade: OnUpgrade,
    context: String,
    max_message: usize,
) {
    let upgraded = match upgrade.await {
        Ok(u) => u,
        Err(e) => {
            debug!(error = %e, "WebSocket upgrade failed");
            return;
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<StreamOut>(STREAM_QUEUE);
    let (media_tx, mut media_rx) = mpsc::channel::<Bytes>(MEDIA_QUEUE);
    let id = links.add_stream(StreamKind::WebSocket, out_tx, media_tx);
    let span = info_span!("stream", adapter = %links.name, stream = id);

    let writer = tokio::spawn(
        async move {
            // The media queue closes when the stream is forgotten, which
            // may be just before the adapter's last messages and its close
            // frame: those must still go out, in order.
            let mut media_open = true;
            loop {
                let message = tokio::select! {
                    biased;
                    out = out_rx.recv() => match out {
                        Some(StreamOut::Message(StreamPayload::Text(t))) => Message::text(t),
                        Some(StreamOut::Message(StreamPayload::Binary(b))) => Message::binary(b),
                        Some(StreamOut::Close { code, reason }) => {
                            let _ = sink
                                .send(Message::Close(Some(CloseFrame {
                                    code: CloseCode::from(code),
                                    reason: reason.into(),
                                })))
                                .await;
                            let _ = sink.close().await;
                            return;
                        }
                        None => return,
                    },
                    frame = media_rx.recv(), if media_open => match frame {
                        // The peer gets the payload; the header is the
                        // switch's routing, not the adapter's API.
                        Some(datagram) => Message::binary(datagram.slice(MEDIA_HEADER_LEN..)),
                        None => {
                            media_open = false;
                            continue;
                        }
                    },
                };
                if sink.send(message).await.is_err() {
                    return;
                }
            }
        }
        .instrument(span.clone()),
    );

    async {
        let Some(adapter) = links.adapter() else {
            return;
        };
        debug!("stream open");
        if adapter.on_stream_open(id, &context).await.is_err() {
            return;
        }
        debug!("adapter took the stream");
        let opened = Instant::now();
        let mut seq: u32 = 0;
        while let Some(read) = source.next().await {
            let message = match read {
                Ok(m) => m,
                Err(e) => {
                    debug!(error = %e, "stream failed");
                    break;
                }
            };
            match message {
                Message::Text(text) => {
                    let text = StreamMessage::Text(text.as_str().to_string());
                    let _ = adapter.on_stream_message(id, &text).await;
                }
                Message::Binary(data) => {
                    if let Some(a) = links.attachment(id) {
                        // Media never passes through the plugin.
                        let Some(channel) = a.device.channel(a.call_id) else {
                            links.counters.media_dropped.fetch_add(1, Relaxed);
                            continue;
                        };
                        if data.len() > MAX_MEDIA_PAYLOAD {
                            links.counters.media_dropped.fetch_add(1, Relaxed);
                            continue;
                        }
                        seq = seq.wrapping_add(1);
                        let mut frame = BytesMut::with_capacity(MEDIA_HEADER_LEN + data.len());
                        frame.put_u32(channel);
                        frame.put_u32(seq);
                        frame.put_u32(opened.elapsed().as_millis() as u32);
                        frame.put_slice(&data);
                        a.device.media.relay(frame.freeze(), &links.stats());
                    } else {
                        let binary = StreamMessage::Binary(data.to_vec());
                        let _ = adapter.on_stream_message(id, &binary).await;
                    }
                }
                Message::Close(_) => break,
                // tungstenite answers pings itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
            if !links.has_stream(id) {
                // The adapter closed the stream.
                break;
            }
        }
        if links.remove_stream(id) {
            let _ = adapter.on_stream_close(id).await;
        }
    }
    .instrument(span)
    .await;
    links.remove_stream(id);
    let _ = writer.await;
}
