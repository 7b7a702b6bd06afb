//! Shared harness for the integration tests: a real switch on a loopback
//! port with its own data directory, and real QUIC clients.
#![allow(dead_code)]

pub mod grpc;
pub mod http;

use std::time::Duration;

use callswitch::client::{Client, ClientOptions, Events};
use callswitch::config::{Config, DEFAULT_CONFIG};
use callswitch::server::{self, ServerHandle};
use callswitch::wire::ServerMessage;
use tempfile::TempDir;

pub const WAIT: Duration = Duration::from_secs(10);

/// Knobs the tests turn on top of the embedded default config.
#[derive(Clone)]
pub struct Knobs {
    pub ring_timeout_secs: u64,
    pub idle_timeout_ms: u64,
    pub max_participants: usize,
    /// TOML appended to the config (e.g. `[[plugin]]` tables).
    pub extra: String,
    /// Serve the ingress over TLS.
    pub tls: bool,
    /// `[ingress] max_queued_events`.
    pub max_queued_events: usize,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            ring_timeout_secs: 60,
            idle_timeout_ms: 30_000,
            max_participants: 16,
            extra: String::new(),
            tls: false,
            max_queued_events: 4096,
        }
    }
}

/// The default config on a free port with the given knobs.
/// A test that lists its own `[[plugin]]` tables replaces the default
/// chain, as an operator's config would.
pub fn config_text(k: &Knobs) -> String {
    let base = if k.extra.contains("[[plugin]]") {
        DEFAULT_CONFIG.split("# ---- plugins ----").next().unwrap()
    } else {
        DEFAULT_CONFIG
    };
    let mut text = base
        .replace("listen = \"127.0.0.1:4433\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "ring_timeout_secs = 60",
            &format!("ring_timeout_secs = {}", k.ring_timeout_secs),
        )
        .replace(
            "idle_timeout_ms = 30000",
            &format!("idle_timeout_ms = {}", k.idle_timeout_ms),
        )
        .replace(
            "max_participants = 16",
            &format!("max_participants = {}", k.max_participants),
        )
        .replace("\ntls = false\n", &format!("\ntls = {}\n", k.tls))
        .replace(
            "max_queued_events = 4096",
            &format!("max_queued_events = {}", k.max_queued_events),
        )
        // The bundled adapters get a generous deadline here: these tests
        // check what they answer, not how fast (benchmarks do that), and
        // the deadline is wall-clock time, which passes while a loaded
        // 2-core CI machine keeps the plugin's thread waiting for a CPU.
        // Deadlines themselves are tested with looping plugins.
        .replace(
            "world = \"adapter\"\n",
            "world = \"adapter\"\ndeadline_ms = 10000\n",
        );
    text.push('\n');
    text.push_str(&k.extra);
    text
}

pub struct TestSwitch {
    pub handle: Option<ServerHandle>,
    pub dir: TempDir,
    pub knobs: Knobs,
}

impl TestSwitch {
    pub async fn start() -> Self {
        Self::start_with(Knobs::default()).await
    }

    pub async fn start_with(knobs: Knobs) -> Self {
        // `RUST_LOG=debug cargo test ...` shows the switch's log.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let handle = start_in(&dir, &knobs).await.expect("switch starts");
        TestSwitch {
            handle: Some(handle),
            dir,
            knobs,
        }
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    /// The HTTP ingress address.
    pub fn http(&self) -> std::net::SocketAddr {
        self.handle().http_addr.expect("ingress enabled")
    }

    pub fn options(&self, token: &str) -> ClientOptions {
        let mut opts =
            ClientOptions::new(self.handle().addr, self.handle().fingerprint.clone(), token);
        opts.keep_alive = Duration::from_millis(self.knobs.idle_timeout_ms / 3);
        opts
    }

    /// A device of a demo user (token `<name>-demo-token`).
    pub async fn connect(&self, name: &str) -> (Client, Events) {
        let mut opts = self.options(&format!("{name}-demo-token"));
        opts.device = Some(format!("{name}-test"));
        let (c, e, w) = Client::connect(opts).await.expect("connect");
        assert_eq!(w.user.unwrap().name, name);
        (c, e)
    }

    /// An admin connection with the local admin token.
    pub async fn admin(&self) -> Client {
        let (c, _, _) = Client::connect(self.options(&self.handle().admin_token.clone()))
            .await
            .expect("admin connect");
        c
    }

    /// Graceful shutdown, then start again on the same data directory.
    pub async fn restart(&mut self) {
        self.handle.take().unwrap().shutdown().await;
        self.handle = Some(
            start_in(&self.dir, &self.knobs)
                .await
                .expect("switch restarts"),
        );
    }

    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

pub async fn start_in(dir: &TempDir, knobs: &Knobs) -> Result<ServerHandle, server::ServerError> {
    let mut config = Config::parse(&config_text(knobs)).expect("test config");
    config.base_dir = dir.path().to_path_buf();
    server::start(&config, dir.path()).await
}

/// Waits for an event matching `pred`, skipping others.
pub async fn expect(
    events: &mut Events,
    what: &str,
    pred: impl FnMut(&ServerMessage) -> bool,
) -> ServerMessage {
    events
        .wait_for(what, WAIT, pred)
        .await
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
}

/// Waits for the `media` event with peers, returning (my channel, peer channels).
pub async fn expect_media(events: &mut Events, call_id: uuid::Uuid) -> (u32, Vec<u32>) {
    match expect(events, "media with peers", |m| {
        matches!(m, ServerMessage::Media { call_id: c, peers, .. } if *c == call_id && !peers.is_empty())
    })
    .await
    {
        ServerMessage::Media { channel, peers, .. } => (channel, peers.iter().map(|p| p.channel).collect()),
        _ => unreachable!(),
    }
}

/// Asserts no event arrives within `ms` milliseconds (other than `ignore`).
pub async fn expect_quiet(events: &mut Events, ms: u64) {
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(ms), events.next()).await {
        panic!("unexpected event {m:?}");
    }
}

/// Places a call from `a` to `b` and has `b` answer; returns the call id.
pub async fn connected_call(
    a: &Client,
    a_events: &mut Events,
    b: &Client,
    b_events: &mut Events,
    callee: &str,
) -> uuid::Uuid {
    let call_id = a.dial(&[callee], None).await.unwrap();
    expect(b_events, "incoming", |m| {
        matches!(m, ServerMessage::Incoming { .. })
    })
    .await;
    b.answer(call_id).await.unwrap();
    expect(a_events, "answered", |m| {
        matches!(m, ServerMessage::Answered { .. })
    })
    .await;
    call_id
}
