//! One task per QUIC connection: accepts the control stream, reads and
//! checks frames, forwards requests to the driver, and writes what the
//! driver queues on its outbox. Datagrams go to the relay in a task of
//! their own so media never waits behind signalling.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use quinn::{RecvStream, SendStream};
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, Instrument};

use super::driver::{Input, Outbound, OUTBOX_DEPTH};
use super::relay::{run_datagrams, DeviceMedia, MediaSink, RelayStats};
use crate::switch::DeviceId;
use crate::wire::{
    decode_frame_len, encode_frame_max, ClientFrame, ErrorCode, FrameError, ServerMessage,
    FRAME_HEADER_LEN, MAX_SERVER_FRAME_LEN,
};

/// How long a new connection may take to open its control stream.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the peer to read the last messages.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves one incoming connection until it closes.
pub async fn serve_connection(
    incoming: quinn::Incoming,
    device: DeviceId,
    driver: mpsc::Sender<Input>,
    stats: Arc<RelayStats>,
) {
    let remote = incoming.remote_address();
    let span = info_span!("conn", device, %remote);
    async move {
        let conn = match incoming.await {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "handshake failed");
                return;
            }
        };
        stats.connections.fetch_add(1, Relaxed);
        info!("connected");
        let media = Arc::new(DeviceMedia::default());
        let datagrams = tokio::spawn(run_datagrams(conn.clone(), media.clone(), stats.clone()));
        let opened = tokio::time::timeout(STREAM_TIMEOUT, conn.accept_bi()).await;
        if let Ok(Ok((send, recv))) = opened {
            let (outbox, outbox_rx) = mpsc::channel(OUTBOX_DEPTH);
            let open = Input::Open {
                device,
                sink: MediaSink::Quic(conn.clone()),
                outbox: outbox.clone(),
                media,
                rings: true,
            };
            if driver.send(open).await.is_ok() {
                let writer = tokio::spawn(write_loop(conn.clone(), send, outbox_rx));
                read_loop(device, recv, &driver, &outbox).await;
                let _ = driver.send(Input::Closed { device }).await;
                drop(outbox);
                let _ = writer.await;
            }
        } else {
            conn.close(4u32.into(), b"no control stream opened");
        }
        conn.close(0u32.into(), b"bye");
        let _ = datagrams.await;
        stats.connections.fetch_sub(1, Relaxed);
        info!(reason = ?conn.close_reason(), "disconnected");
    }
    .instrument(span)
    .await
}

/// Reads frames until the stream ends, the connection fails, or framing is
/// lost. Bad frames get an error reply; requests go to the driver.
async fn read_loop(
    device: DeviceId,
    mut recv: RecvStream,
    driver: &mpsc::Sender<Input>,
    outbox: &mpsc::Sender<Outbound>,
) {
    let reply = |req, code, message: String| {
        Outbound::Message(Box::new(ServerMessage::Error { req, code, message }))
    };
    loop {
        let mut header = [0u8; FRAME_HEADER_LEN];
        if recv.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = match decode_frame_len(header) {
            Ok(len) => len,
            Err(e) => {
                let code = match e {
                    FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
                    FrameError::Empty => ErrorCode::MalformedFrame,
                };
                // Framing is lost: report and close.
                let _ = outbox.send(reply(None, code, e.to_string())).await;
                let _ = outbox
                    .send(Outbound::Close {
                        code: 2,
                        reason: e.to_string(),
                    })
                    .await;
                return;
            }
        };
        let mut body = vec![0u8; len];
        if recv.read_exact(&mut body).await.is_err() {
            return;
        }
        match ClientFrame::from_json(&body) {
            Ok(ClientFrame { req, request }) => {
                if driver
                    .send(Input::Request {
                        device,
                        req,
                        request,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                debug!(code = %e.code, message = %e.message, "bad frame");
                if outbox.send(reply(e.req, e.code, e.message)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes queued messages; on `Close`, finishes the stream, waits briefly
/// for the peer to read it, and closes the connection.
async fn write_loop(
    conn: quinn::Connection,
    mut send: SendStream,
    mut outbox: mpsc::Receiver<Outbound>,
) {
    while let Some(out) = outbox.recv().await {
        match out {
            Outbound::Message(message) => {
                let frame = match encode_frame_max(&message.to_json(), MAX_SERVER_FRAME_LEN) {
                    Ok(frame) => frame,
                    Err(e) => {
                        // Tell the client instead of silently dropping the reply.
                        let error = ServerMessage::Error {
                            req: message.req(),
                            code: ErrorCode::Internal,
                            message: format!("reply too large: {e}"),
                        };
                        encode_frame_max(&error.to_json(), MAX_SERVER_FRAME_LEN)
                            .expect("small error")
                    }
                };
                if send.write_all(&frame).await.is_err() {
                    return;
                }
            }
            Outbound::Close { code, reason } => {
                let _ = send.finish();
                let _ = tokio::time::timeout(FLUSH_TIMEOUT, send.stopped()).await;
                conn.close(code.into(), reason.as_bytes());
                return;
            }
        }
    }
    let _ = send.finish();
}
