//! The Rust client library, the reference implementation of
//! docs/PROTOCOL.md: connect with a pinned certificate, say hello, make
//! requests and await their replies, receive events, send and receive audio
//! datagrams. Used by the CLI, the tests and the examples.

pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::rustls;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::wire::{
    decode_frame_len_max, encode_frame, normalize_fingerprint, CallRecord, CallSummary,
    ClientFrame, ErrorCode, MediaFrame, PartyRef, PluginInfo, Request, Role, ServerMessage,
    StatsSnapshot, UserPresence, ALPN, FRAME_HEADER_LEN, MAX_SERVER_FRAME_LEN, PROTOCOL_VERSION,
};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("bad certificate fingerprint `{0}`: expected 64 hex digits")]
    BadFingerprint(String),
    #[error("connecting: {0}")]
    Connect(String),
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("control stream: {0}")]
    Stream(String),
    #[error("{code}: {message}")]
    Server { code: ErrorCode, message: String },
    #[error("unexpected reply: {0:?}")]
    Unexpected(Box<ServerMessage>),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("sending audio: {0}")]
    Datagram(#[from] quinn::SendDatagramError),
}

impl ClientError {
    /// The server's error code, if the server refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// How to reach and authenticate to a switch.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub server: SocketAddr,
    /// SHA-256 of the switch's certificate (hex, colons allowed).
    pub fingerprint: String,
    pub token: String,
    /// Label of this device.
    pub device: Option<String>,
    /// With the admin token: act as this user.
    pub act_as: Option<String>,
    /// QUIC keep-alive interval (keeps the switch's idle timeout at bay).
    pub keep_alive: Duration,
}

impl ClientOptions {
    pub fn new(
        server: SocketAddr,
        fingerprint: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        ClientOptions {
            server,
            fingerprint: fingerprint.into(),
            token: token.into(),
            device: None,
            act_as: None,
            keep_alive: Duration::from_secs(5),
        }
    }
}

/// What `hello` established.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub role: Role,
    pub user: Option<PartyRef>,
    pub device_id: u64,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<ServerMessage>>>>;

/// A connected, authenticated client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    conn: quinn::Connection,
    writer: Arc<tokio::sync::Mutex<quinn::SendStream>>,
    pending: Pending,
    next_req: Arc<AtomicU64>,
    // Keeps the client's UDP socket alive as long as the client.
    _endpoint: quinn::Endpoint,
}

/// Events (server messages without a `req`) in arrival order.
pub struct Events {
    rx: mpsc::UnboundedReceiver<ServerMessage>,
}

impl Events {
    /// The next event; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<ServerMessage> {
        self.rx.recv().await
    }

    /// Skips events until one matches, within `timeout`.
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut matches: impl FnMut(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, ClientError> {
        tokio::time::timeout(timeout, async {
            while let Some(m) = self.rx.recv().await {
                if matches(&m) {
                    return Ok(m);
                }
            }
            Err(ClientError::Stream(format!(
                "connection closed while waiting for {what}"
            )))
        })
        .await
        .map_err(|_| ClientError::Timeout(what.to_string()))?
    }

    /// An event already received, without waiting.
    pub fn try_next(&mut self) -> Option<ServerMessage> {
        self.rx.try_recv().ok()
    }
}

impl Client {
    /// Connects, opens the control stream and says hello.
    pub async fn connect(opts: ClientOptions) -> Result<(Client, Events, Welcome), ClientError> {
        let (client, events) = Self::connect_unauthenticated(&opts).await?;
        client.hello(&opts).await.map(|w| (client, events, w))
    }

    /// Connects and opens the control stream without saying hello (for
    /// protocol tests and tools that send their own hello).
    pub async fn connect_unauthenticated(
        opts: &ClientOptions,
    ) -> Result<(Client, Events), ClientError> {
        let bind: SocketAddr = if opts.server.is_ipv4() {
            "0.0.0.0:0".parse().expect("addr")
        } else {
            "[::]:0".parse().expect("addr")
        };
        let endpoint =
            quinn::Endpoint::client(bind).map_err(|e| ClientError::Connect(e.to_string()))?;
        Self::open(endpoint, opts).await
    }

    /// Connects and says hello over an existing endpoint: many clients can
    /// share one UDP socket (the load generator does).
    pub async fn connect_on(
        endpoint: quinn::Endpoint,
        opts: ClientOptions,
    ) -> Result<(Client, Events, Welcome), ClientError> {
        let (client, events) = Self::open(endpoint, &opts).await?;
        client.hello(&opts).await.map(|w| (client, events, w))
    }

    async fn open(
        endpoint: quinn::Endpoint,
        opts: &ClientOptions,
    ) -> Result<(Client, Events), ClientError> {
        let config = client_config(opts)?;
        let conn = endpoint
            .connect_with(config, opts.server, "callswitch")
            .map_err(|e| ClientError::Connect(e.to_string()))?
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let (send, recv) = conn.open_bi().await?;
        let pending: Pending = Arc::default();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(read_loop(recv, pending.clone(), events_tx));
        Ok((
            Client {
                conn,
                writer: Arc::new(tokio::sync::Mutex::new(send)),
                pending,
                next_req: Arc::new(AtomicU64::new(1)),
                _endpoint: endpoint,
            },
            Events { rx: events_rx },
        ))
    }

    async fn hello(&self, opts: &ClientOptions) -> Result<Welcome, ClientError> {
        let reply = self
            .request(Request::Hello {
                version: PROTOCOL_VERSION,
                token: opts.token.clone(),
                device: opts.device.clone(),
                act_as: opts.act_as.clone(),
            })
            .await?;
        match reply {
            ServerMessage::Welcome {
                role,
                user,
                device_id,
                ..
            } => Ok(Welcome {
                role,
                user,
                device_id,
            }),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Sends a request and waits for its reply; an `error` reply becomes
    /// `ClientError::Server`.
    pub async fn request(&self, request: Request) -> Result<ServerMessage, ClientError> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(req, tx);
        let frame = ClientFrame { req, request };
        self.send_raw(&encode_frame(&frame.to_json()).expect("requests are small"))
            .await?;
        let reply = rx.await.map_err(|_| match self.conn.close_reason() {
            Some(reason) => ClientError::Connection(reason),
            None => ClientError::Stream("control stream closed before the reply".into()),
        })?;
        match reply {
            ServerMessage::Error { code, message, .. } => {
                Err(ClientError::Server { code, message })
            }
            other => Ok(other),
        }
    }

    /// Writes raw bytes on the control stream (protocol tests use this to
    /// send malformed frames).
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer
            .lock()
            .await
            .write_all(bytes)
            .await
            .map_err(|e| ClientError::Stream(e.to_string()))
    }

    async fn expect_ok(&self, request: Request) -> Result<(), ClientError> {
        match self.request(request).await? {
            ServerMessage::Ok { .. } => Ok(()),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Places a call; returns its id. Outcome arrives as events.
    pub async fn dial(&self, targets: &[&str], call_id: Option<Uuid>) -> Result<Uuid, ClientError> {
        let request = Request::Dial {
            call_id,
            targets: targets.iter().map(|t| t.to_string()).collect(),
        };
        match self.request(request).await? {
            ServerMessage::Ok {
                call_id: Some(id), ..
            } => Ok(id),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    pub async fn answer(&self, call_id: Uuid) -> Result<(), ClientError> {
        self.expect_ok(Request::Answer { call_id }).await
    }

    pub async fn decline(&self, call_id: Uuid) -> Result<(), ClientError> {
        self.expect_ok(Request::Decline { call_id }).await
    }

    pub async fn hangup(&self, call_id: Uuid) -> Result<(), ClientError> {
        self.expect_ok(Request::Hangup { call_id }).await
    }

    /// Takes over, on this device, a call the user is in on another device.
    pub async fn pickup(&self, call_id: Uuid) -> Result<(), ClientError> {
        self.expect_ok(Request::Pickup { call_id }).await
    }

    pub async fn hold(&self, call_id: Uuid) -> Result<(), ClientError> {
        self.expect_ok(Request::Hold { call_id }).await
    }

    pub async fn unhold(&self, call_id: Uuid) -> Result<(), ClientError> {
        self.expect_ok(Request::Unhold { call_id }).await
    }

    pub async fn dtmf(&self, call_id: Uuid, digits: &str) -> Result<(), ClientError> {
        self.expect_ok(Request::Dtmf {
            call_id,
            digits: digits.into(),
        })
        .await
    }

    pub async fn invite(&self, call_id: Uuid, targets: &[&str]) -> Result<(), ClientError> {
        self.expect_ok(Request::Invite {
            call_id,
            targets: targets.iter().map(|t| t.to_string()).collect(),
        })
        .await
    }

    /// Sends an application message to every device of `to`.
    pub async fn message(&self, to: &str, body: serde_json::Value) -> Result<(), ClientError> {
        self.expect_ok(Request::Message {
            to: to.into(),
            body,
        })
        .await
    }

    pub async fn ping(&self) -> Result<(), ClientError> {
        self.expect_ok(Request::Ping).await
    }

    /// Admin: live calls.
    pub async fn list_calls(&self) -> Result<Vec<CallSummary>, ClientError> {
        match self.request(Request::ListCalls).await? {
            ServerMessage::Calls { calls, .. } => Ok(calls),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Admin: the record of an ended call.
    pub async fn call_log(&self, call_id: Uuid) -> Result<CallRecord, ClientError> {
        match self.request(Request::CallLog { call_id }).await? {
            ServerMessage::CallLog { record, .. } => Ok(*record),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Admin: end a call for everyone.
    pub async fn admin_hangup(&self, call_id: Uuid) -> Result<(), ClientError> {
        self.expect_ok(Request::AdminHangup { call_id }).await
    }

    /// Admin: users and their devices.
    pub async fn list_users(&self) -> Result<Vec<UserPresence>, ClientError> {
        match self.request(Request::ListUsers).await? {
            ServerMessage::Users { users, .. } => Ok(users),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Admin: counters.
    pub async fn stats(&self) -> Result<StatsSnapshot, ClientError> {
        match self.request(Request::Stats).await? {
            ServerMessage::Stats { stats, .. } => Ok(stats),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Admin: loaded plugins.
    pub async fn list_plugins(&self) -> Result<Vec<PluginInfo>, ClientError> {
        match self.request(Request::ListPlugins).await? {
            ServerMessage::Plugins { plugins, .. } => Ok(plugins),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Admin: reload one plugin (or all) from its file.
    pub async fn reload_plugins(&self, name: Option<&str>) -> Result<Vec<PluginInfo>, ClientError> {
        let request = Request::ReloadPlugins {
            name: name.map(str::to_string),
        };
        match self.request(request).await? {
            ServerMessage::Plugins { plugins, .. } => Ok(plugins),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Sends one audio frame (best effort, like UDP).
    pub fn send_frame(&self, frame: &MediaFrame) -> Result<(), ClientError> {
        self.conn.send_datagram(frame.encode())?;
        Ok(())
    }

    /// Sends raw datagram bytes (protocol tests).
    pub fn send_datagram(&self, bytes: Bytes) -> Result<(), ClientError> {
        self.conn.send_datagram(bytes)?;
        Ok(())
    }

    /// Receives the next audio frame; frames too short for a header are skipped.
    pub async fn recv_frame(&self) -> Result<MediaFrame, ClientError> {
        loop {
            let d = self.conn.read_datagram().await?;
            if let Ok(frame) = MediaFrame::decode(d) {
                return Ok(frame);
            }
        }
    }

    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Finishes the control stream and closes the connection.
    pub async fn close(&self) {
        let _ = self.writer.lock().await.finish();
        self.conn.close(0u32.into(), b"bye");
    }
}

/// TLS with the pinned certificate, ALPN and keep-alives.
/// The QUIC client configuration `connect` uses: TLS 1.3 pinned to the
/// switch's certificate, the ALPN, keep-alives. Public for tools and tests
/// that drive a raw connection.
pub fn client_config(opts: &ClientOptions) -> Result<quinn::ClientConfig, ClientError> {
    let fingerprint = normalize_fingerprint(&opts.fingerprint)
        .ok_or_else(|| ClientError::BadFingerprint(opts.fingerprint.clone()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Connect(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(tls::PinnedCert::new(fingerprint, provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        QuicClientConfig::try_from(tls).map_err(|e| ClientError::Connect(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(opts.keep_alive))
        .datagram_receive_buffer_size(Some(256 * 1024));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Reads server frames: replies complete their request, the rest are events.
async fn read_loop(
    mut recv: quinn::RecvStream,
    pending: Pending,
    events: mpsc::UnboundedSender<ServerMessage>,
) {
    loop {
        let mut header = [0u8; FRAME_HEADER_LEN];
        if recv.read_exact(&mut header).await.is_err() {
            break;
        }
        let Ok(len) = decode_frame_len_max(header, MAX_SERVER_FRAME_LEN) else {
            break;
        };
        let mut body = vec![0u8; len];
        if recv.read_exact(&mut body).await.is_err() {
            break;
        }
        let Ok(message) = ServerMessage::from_json(&body) else {
            continue;
        };
        let waiter = message
            .req()
            .and_then(|req| pending.lock().expect("pending lock").remove(&req));
        match waiter {
            Some(tx) => {
                let _ = tx.send(message);
            }
            None => {
                let _ = events.send(message);
            }
        }
    }
    // Wake every waiter: their replies will never come.
    pending.lock().expect("pending lock").clear();
}
