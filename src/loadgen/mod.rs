//! The load generator behind `callswitch load`: simulated QUIC clients in
//! 1:1 calls against a switch it starts as a child process (so /proc gives
//! the switch's own CPU time and memory), sending audio-shaped datagrams
//! (160-byte payloads, 50 per second per direction), and the same load
//! through a plain UDP relay as the baseline. A set-up mode measures calls
//! per second (dial, ring, answer, hang up). Loopback only; every run is
//! bounded in calls and time.

mod overload;
mod procstat;
mod udp;

pub use overload::{run_overload, OverloadFigures};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use thiserror::Error;

pub use udp::run_relay as run_udp_relay;

use crate::client::{Client, ClientOptions};
use crate::config::DEFAULT_CONFIG;
use crate::wire::{cert_fingerprint, MediaFrame, ServerMessage};

/// Payload bytes of one audio frame (20 ms of G.711).
pub const PAYLOAD: usize = 160;
/// Frames per second per direction of a leg.
pub const RATE: u64 = 50;
/// Most calls one run may place.
pub const MAX_CALLS: usize = 5000;
/// Longest measurement one run may take.
pub const MAX_DURATION: Duration = Duration::from_secs(300);

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{0}")]
    Setup(String),
    #[error("client: {0}")]
    Client(#[from] crate::client::ClientError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The `callswitch` binary to start the switch (and the UDP relay) from.
    pub switch_bin: PathBuf,
    /// Concurrent 1:1 calls.
    pub calls: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Pin the switch (and the UDP relay) to this CPU with `taskset`.
    pub switch_cpu: Option<usize>,
    /// Also run the plain UDP relay baseline.
    pub baseline: bool,
    /// Policy plugins loaded in the switch (copies of max-calls).
    pub plugins: usize,
    /// Print progress to stderr.
    pub progress: bool,
}

/// Figures of one relay run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RelayFigures {
    pub relay: String,
    pub calls: usize,
    pub offered_per_s: f64,
    pub relayed_per_s: f64,
    pub loss_pct: f64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_p999_us: u64,
    /// CPU time of the relay process per relayed datagram.
    pub cpu_us_per_datagram: f64,
    /// Share of one core the relay used.
    pub cpu_share_pct: f64,
    /// Share of one core the generator used.
    pub generator_cpu_share_pct: f64,
    /// Resident memory of the relay per call (growth over its idle size).
    pub rss_kib_per_call: f64,
}

/// Figures of a set-up run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SetupFigures {
    pub plugins: usize,
    pub callers: usize,
    pub setups: u64,
    pub setups_per_s: f64,
    pub failures: u64,
    pub switch_cpu_share_pct: f64,
}

/// A child process killed on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &Path, args: &[&str], cpu: Option<usize>) -> Result<ChildGuard, LoadError> {
    let mut cmd = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("RUST_LOG", "error");
    Ok(ChildGuard(cmd.spawn()?))
}

async fn wait_for_file(path: &Path) -> Result<String, LoadError> {
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.trim().is_empty() {
                return Ok(text.trim().to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(LoadError::Setup(format!(
        "{} never appeared",
        path.display()
    )))
}

/// A switch started for the run, with `users` load users `u0..`.
struct SwitchUnderLoad {
    _child: ChildGuard,
    pid: u32,
    addr: SocketAddr,
    fingerprint: String,
    _dir: tempfile::TempDir,
}

fn token(i: usize) -> String {
    format!("load-token-{i}")
}

/// Starts the switch with `users` load users and the admission limit
/// `max_live_calls` (0: none).
async fn start_switch(
    opts: &LoadOptions,
    users: usize,
    max_live_calls: usize,
) -> Result<SwitchUnderLoad, LoadError> {
    let dir = tempfile::tempdir()?;
    let mut config = DEFAULT_CONFIG
        .split("# ---- plugins ----")
        .next()
        .unwrap_or_default()
        .replace("listen = \"127.0.0.1:4433\"", "listen = \"127.0.0.1:0\"")
        .replace("fsync = true", "fsync = false")
        // No HTTP ingress: it would contend for :8080 with a running
        // switch, and the generator does not use it.
        .replace("\nenabled = true\n", "\nenabled = false\n")
        // The relay and set-up modes measure the switch past any admission
        // limit; the overload mode sets its own.
        .replace(
            "max_live_calls = 350",
            &format!("max_live_calls = {max_live_calls}"),
        );
    for i in 0..users {
        config.push_str(&format!(
            "\n[[user]]\nid = \"{}\"\nname = \"u{i}\"\ntoken_hash = \"{}\"\n",
            uuid::Uuid::from_u128(0x10ad_0000_0000 + i as u128),
            crate::switch::hash_token(&token(i))
        ));
    }
    for p in 0..opts.plugins {
        config.push_str(&format!(
            "\n[[plugin]]\nname = \"max-calls-{p}\"\npath = \"builtin:max-calls\"\nworld = \"policy\"\ngrants = [\"config\", \"calls\"]\nevents = false\n[plugin.config]\nper_user = 1000\ntotal = 100000\n"
        ));
    }
    let config_path = dir.path().join("load.toml");
    std::fs::write(&config_path, config)?;
    let data = dir.path().to_str().expect("utf-8 temp dir").to_string();
    let child = spawn(
        &opts.switch_bin,
        &[
            "serve",
            "--config",
            config_path.to_str().expect("utf-8"),
            "--data-dir",
            &data,
        ],
        opts.switch_cpu,
    )?;
    let pid = child.0.id();
    let addr = wait_for_file(&dir.path().join("server.addr")).await?;
    let der = std::fs::read(dir.path().join("cert.der"))?;
    Ok(SwitchUnderLoad {
        _child: child,
        pid,
        addr: addr
            .parse()
            .map_err(|_| LoadError::Setup(format!("bad address {addr}")))?,
        fingerprint: cert_fingerprint(&der),
        _dir: dir,
    })
}

/// Shared client-side UDP endpoints (many connections per socket).
fn endpoints(n: usize) -> Result<Vec<quinn::Endpoint>, LoadError> {
    (0..n)
        .map(|_| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
            let s2 = socket2::SockRef::from(&socket);
            let _ = s2.set_recv_buffer_size(4 << 20);
            let _ = s2.set_send_buffer_size(4 << 20);
            quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                None,
                socket,
                Arc::new(quinn::TokioRuntime),
            )
            .map_err(LoadError::Io)
        })
        .collect()
}

/// Connects the load users `users` (`u<i>` for each i), in order.
async fn connect_users(
    sw: &SwitchUnderLoad,
    users: std::ops::Range<usize>,
) -> Result<Vec<(Client, crate::client::Events)>, LoadError> {
    let eps = endpoints(8)?;
    let mut out = Vec::with_capacity(users.len());
    // Connect in batches: handshakes are CPU-heavy.
    for chunk in users.collect::<Vec<_>>().chunks(64) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let mut o = ClientOptions::new(sw.addr, sw.fingerprint.clone(), token(i));
            o.keep_alive = Duration::from_secs(5);
            tasks.push(tokio::spawn(Client::connect_on(
                eps[i % eps.len()].clone(),
                o,
            )));
        }
        for t in tasks {
            let (c, e, _) = t.await.map_err(|e| LoadError::Setup(e.to_string()))??;
            out.push((c, e));
        }
    }
    Ok(out)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Counters and latency samples of one measured window.
#[derive(Default)]
struct Window {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

impl Window {
    /// Forgets the previous window's counts, to measure another one with
    /// the same senders and receivers.
    fn reset(&self) {
        self.start_ns.store(0, Relaxed);
        self.end_ns.store(0, Relaxed);
        self.sent.store(0, Relaxed);
        self.received.store(0, Relaxed);
        self.latencies.lock().expect("latencies").clear();
    }

    fn in_window(&self, sent_ns: u64) -> bool {
        let start = self.start_ns.load(Relaxed);
        start != 0 && sent_ns >= start && sent_ns < self.end_ns.load(Relaxed)
    }
}

fn stamp(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// Runs the QUIC relay load and returns its figures.
pub async fn run_quic(opts: &LoadOptions) -> Result<RelayFigures, LoadError> {
    let calls = opts.calls.clamp(1, MAX_CALLS);
    let load = QuicLoad::start(opts, calls, 0, 0).await?;
    let mut figures = measure(opts, &load.window, load.base, load.sw.pid, "quic", calls).await;
    figures.rss_kib_per_call = load.rss_kib_per_call;
    load.stop().await;
    Ok(figures)
}

/// `calls` 1:1 calls through a switch, their audio flowing both ways, and
/// the window their figures are counted in.
struct QuicLoad {
    sw: SwitchUnderLoad,
    legs: Arc<Vec<(Client, u32)>>,
    window: Arc<Window>,
    base: Instant,
    stop: Arc<AtomicBool>,
    senders: Vec<tokio::task::JoinHandle<()>>,
    /// The switch's resident memory per call once the calls are up.
    rss_kib_per_call: f64,
}

impl QuicLoad {
    /// Starts a switch with `calls * 2 + spare_users` users and the
    /// admission limit `max_live_calls`, places the calls between users
    /// `u0..u(2*calls)` and starts their audio. Users from `u(2*calls)` on
    /// are left for the caller to connect.
    async fn start(
        opts: &LoadOptions,
        calls: usize,
        spare_users: usize,
        max_live_calls: usize,
    ) -> Result<QuicLoad, LoadError> {
        let sw = start_switch(opts, calls * 2 + spare_users, max_live_calls).await?;
        let rss_idle = procstat::rss_kib(sw.pid).unwrap_or(0);
        if opts.progress {
            eprintln!(
                "quic: switch pid {} on {}; connecting {} clients",
                sw.pid,
                sw.addr,
                calls * 2
            );
        }
        let mut clients = connect_users(&sw, 0..calls * 2).await?;
        // Place the calls: u(2i) calls u(2i+1).
        let mut legs = Vec::new();
        for i in 0..calls {
            let (callee, mut callee_events) = clients.pop().expect("callee");
            let (caller, mut caller_events) = clients.pop().expect("caller");
            // Popping from the end: the callee is u(2k+1), the caller u(2k).
            let callee_name = format!("u{}", clients.len() + 1);
            let call_id = caller.dial(&[callee_name.as_str()], None).await?;
            callee_events
                .wait_for("incoming", Duration::from_secs(20), |m| {
                    matches!(m, ServerMessage::Incoming { .. })
                })
                .await?;
            callee.answer(call_id).await?;
            let chan = |m: ServerMessage| match m {
                ServerMessage::Media { channel, .. } => channel,
                _ => 0,
            };
            let is_media = |m: &ServerMessage| matches!(m, ServerMessage::Media { peers, .. } if !peers.is_empty());
            let a = chan(
                caller_events
                    .wait_for("media", Duration::from_secs(20), is_media)
                    .await?,
            );
            let b = chan(
                callee_events
                    .wait_for("media", Duration::from_secs(20), is_media)
                    .await?,
            );
            legs.push((caller, a));
            legs.push((callee, b));
            if opts.progress && (i + 1) % 500 == 0 {
                eprintln!("quic: {} calls up", i + 1);
            }
        }
        let rss_loaded = procstat::rss_kib(sw.pid).unwrap_or(0);
        let base = Instant::now();
        let window = Arc::new(Window::default());
        let stop = Arc::new(AtomicBool::new(false));
        // Receivers: one task per leg.
        for (client, _) in &legs {
            let client = client.clone();
            let window = window.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    let Ok(d) = client.connection().read_datagram().await else {
                        return;
                    };
                    if d.len() < 12 + 8 {
                        continue;
                    }
                    let sent_ns = u64::from_le_bytes(d[12..20].try_into().expect("8 bytes"));
                    if window.in_window(sent_ns) {
                        window.received.fetch_add(1, Relaxed);
                        let lat = stamp(base).saturating_sub(sent_ns) / 1000;
                        window.latencies.lock().expect("latencies").push(lat);
                    }
                }
            });
        }
        // Senders: 20 shards, each ticking every 20 ms, offset by 1 ms, so the
        // load is spread over the period as independent phones would be.
        let shards = 20.min(legs.len());
        let legs = Arc::new(legs);
        let mut senders = Vec::new();
        for s in 0..shards {
            let legs = legs.clone();
            let window = window.clone();
            let stop = stop.clone();
            senders.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(s as u64)).await;
                let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut seq = 0u32;
                while !stop.load(Relaxed) {
                    tick.tick().await;
                    seq = seq.wrapping_add(1);
                    for (client, channel) in legs.iter().skip(s).step_by(shards) {
                        let now = stamp(base);
                        let mut payload = vec![0u8; PAYLOAD];
                        payload[..8].copy_from_slice(&now.to_le_bytes());
                        let frame = MediaFrame {
                            channel: *channel,
                            seq,
                            timestamp: seq.wrapping_mul(160),
                            payload: Bytes::from(payload),
                        };
                        if client.send_frame(&frame).is_ok() && window.in_window(now) {
                            window.sent.fetch_add(1, Relaxed);
                        }
                    }
                }
            }));
        }
        Ok(QuicLoad {
            sw,
            legs,
            window,
            base,
            stop,
            senders,
            rss_kib_per_call: rss_loaded.saturating_sub(rss_idle) as f64 / calls as f64,
        })
    }

    /// Stops the audio and closes the clients.
    async fn stop(self) {
        self.stop.store(true, Relaxed);
        for s in self.senders {
            let _ = s.await;
        }
        for (client, _) in self.legs.iter() {
            client.connection().close(0u32.into(), b"done");
        }
    }
}

/// Opens the window after the warm-up, closes it after the duration, and
/// turns the counts into figures.
async fn measure(
    opts: &LoadOptions,
    window: &Window,
    base: Instant,
    relay_pid: u32,
    relay: &str,
    calls: usize,
) -> RelayFigures {
    tokio::time::sleep(opts.warmup).await;
    let duration = opts.duration.min(MAX_DURATION);
    let cpu0 = procstat::cpu_time(relay_pid).unwrap_or_default();
    let gen0 = procstat::cpu_time(std::process::id()).unwrap_or_default();
    let start = stamp(base);
    window.start_ns.store(start, Relaxed);
    window
        .end_ns
        .store(start + duration.as_nanos() as u64, Relaxed);
    let mut waited = Duration::ZERO;
    while waited < duration {
        let step = Duration::from_secs(1).min(duration - waited);
        tokio::time::sleep(step).await;
        waited += step;
        if opts.progress {
            eprintln!(
                "{relay}: {:.0}/{:.0} s, {} sent",
                waited.as_secs_f64(),
                duration.as_secs_f64(),
                window.sent.load(Relaxed)
            );
        }
    }
    let cpu1 = procstat::cpu_time(relay_pid).unwrap_or_default();
    let gen1 = procstat::cpu_time(std::process::id()).unwrap_or_default();
    // Let frames sent at the end of the window arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = window.sent.load(Relaxed);
    let received = window.received.load(Relaxed);
    let mut lat = std::mem::take(&mut *window.latencies.lock().expect("latencies"));
    lat.sort_unstable();
    let secs = duration.as_secs_f64();
    let cpu = (cpu1 - cpu0).as_secs_f64();
    RelayFigures {
        relay: relay.into(),
        calls,
        offered_per_s: sent as f64 / secs,
        relayed_per_s: received as f64 / secs,
        loss_pct: if sent == 0 {
            0.0
        } else {
            100.0 * (sent.saturating_sub(received)) as f64 / sent as f64
        },
        latency_p50_us: percentile(&lat, 0.50),
        latency_p99_us: percentile(&lat, 0.99),
        latency_p999_us: percentile(&lat, 0.999),
        cpu_us_per_datagram: if received == 0 {
            0.0
        } else {
            cpu * 1e6 / received as f64
        },
        cpu_share_pct: 100.0 * cpu / secs,
        generator_cpu_share_pct: 100.0 * (gen1 - gen0).as_secs_f64() / secs,
        rss_kib_per_call: 0.0,
    }
}

/// Runs the same load through the plain UDP relay.
pub async fn run_udp(opts: &LoadOptions) -> Result<RelayFigures, LoadError> {
    let calls = opts.calls.clamp(1, MAX_CALLS);
    let dir = tempfile::tempdir()?;
    let addr_file = dir.path().join("udp.addr");
    let child = spawn(
        &opts.switch_bin,
        &[
            "udp-relay",
            "--listen",
            "127.0.0.1:0",
            "--addr-file",
            addr_file.to_str().expect("utf-8"),
        ],
        opts.switch_cpu,
    )?;
    let pid = child.0.id();
    let relay: SocketAddr = wait_for_file(&addr_file)
        .await?
        .parse()
        .map_err(|_| LoadError::Setup("bad relay address".into()))?;
    let rss_idle = procstat::rss_kib(pid).unwrap_or(0);
    let mut legs = Vec::new();
    for pair in 0..calls as u32 {
        for leg in 0..2u8 {
            let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
            s.set_nonblocking(true)?;
            let s = Arc::new(tokio::net::UdpSocket::from_std(s)?);
            s.connect(relay).await?;
            // Register the leg's address.
            let mut reg = pair.to_be_bytes().to_vec();
            reg.push(leg);
            s.send(&reg).await?;
            legs.push((s, pair, leg));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_loaded = procstat::rss_kib(pid).unwrap_or(0);
    let base = Instant::now();
    let window = Arc::new(Window::default());
    let stop = Arc::new(AtomicBool::new(false));
    for (socket, _, _) in &legs {
        let socket = socket.clone();
        let window = window.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while !stop.load(Relaxed) {
                let Ok(n) = socket.recv(&mut buf).await else {
                    return;
                };
                if n < 5 + 8 {
                    continue;
                }
                let sent_ns = u64::from_le_bytes(buf[5..13].try_into().expect("8 bytes"));
                if window.in_window(sent_ns) {
                    window.received.fetch_add(1, Relaxed);
                    let lat = stamp(base).saturating_sub(sent_ns) / 1000;
                    window.latencies.lock().expect("latencies").push(lat);
                }
            }
        });
    }
    let shards = 20.min(legs.len());
    let legs = Arc::new(legs);
    let mut senders = Vec::new();
    for s in 0..shards {
        let legs = legs.clone();
        let window = window.clone();
        let stop = stop.clone();
        senders.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(s as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !stop.load(Relaxed) {
                tick.tick().await;
                for (socket, pair, leg) in legs.iter().skip(s).step_by(shards) {
                    let now = stamp(base);
                    // Same size on the wire as a QUIC frame's header + payload.
                    let mut d = vec![0u8; 5 + PAYLOAD + 7];
                    d[..4].copy_from_slice(&pair.to_be_bytes());
                    d[4] = *leg;
                    d[5..13].copy_from_slice(&now.to_le_bytes());
                    if socket.send(&d).await.is_ok() && window.in_window(now) {
                        window.sent.fetch_add(1, Relaxed);
                    }
                }
            }
        }));
    }
    let mut figures = measure(opts, &window, base, pid, "udp", calls).await;
    stop.store(true, Relaxed);
    for s in senders {
        let _ = s.await;
    }
    figures.rss_kib_per_call = rss_loaded.saturating_sub(rss_idle) as f64 / calls as f64;
    drop(child);
    Ok(figures)
}

/// Measures call set-ups per second: `callers` callers each place calls to
/// their own callee, which answers at once; each call is hung up as soon as
/// it is answered.
pub async fn run_setup(opts: &LoadOptions, callers: usize) -> Result<SetupFigures, LoadError> {
    let callers = callers.clamp(1, MAX_CALLS);
    let sw = start_switch(opts, callers * 2, 0).await?;
    let mut clients = connect_users(&sw, 0..callers * 2).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in (0..callers).rev() {
        let (callee, mut callee_events) = clients.pop().expect("callee");
        let (caller, mut caller_events) = clients.pop().expect("caller");
        let callee_name = format!("u{}", 2 * i + 1);
        // The callee answers everything.
        tokio::spawn(async move {
            while let Some(m) = callee_events.next().await {
                if let ServerMessage::Incoming { call_id, .. } = m {
                    let _ = callee.answer(call_id).await;
                }
            }
        });
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Relaxed) {
                let ok = async {
                    let id = caller.dial(&[callee_name.as_str()], None).await.ok()?;
                    caller_events
                        .wait_for("answered", Duration::from_secs(10), |m| {
                            matches!(m, ServerMessage::Answered { call_id, .. } if *call_id == id)
                                || matches!(m, ServerMessage::Ended { call_id, .. } if *call_id == id)
                        })
                        .await
                        .ok()
                        .filter(|m| matches!(m, ServerMessage::Answered { .. }))?;
                    caller.hangup(id).await.ok()
                }
                .await;
                match ok {
                    Some(()) => done.fetch_add(1, Relaxed),
                    None => failed.fetch_add(1, Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(opts.warmup).await;
    let (d0, f0) = (done.load(Relaxed), failed.load(Relaxed));
    let cpu0 = procstat::cpu_time(sw.pid).unwrap_or_default();
    let duration = opts.duration.min(MAX_DURATION);
    tokio::time::sleep(duration).await;
    let (d1, f1) = (done.load(Relaxed), failed.load(Relaxed));
    let cpu1 = procstat::cpu_time(sw.pid).unwrap_or_default();
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let secs = duration.as_secs_f64();
    Ok(SetupFigures {
        plugins: opts.plugins,
        callers,
        setups: d1 - d0,
        setups_per_s: (d1 - d0) as f64 / secs,
        failures: f1 - f0,
        switch_cpu_share_pct: 100.0 * (cpu1 - cpu0).as_secs_f64() / secs,
    })
}

/// The relay table, with ratios to the UDP baseline when there is one.
pub fn relay_table(runs: &[RelayFigures]) -> String {
    let base = runs
        .iter()
        .find(|r| r.relay == "udp")
        .map(|r| r.cpu_us_per_datagram);
    let mut out = String::from(
        "relay  calls  offered/s  relayed/s  loss%   p50us  p99us  p99.9us  cpu_us/dgram  x_udp  relay_cpu%  gen_cpu%  rss_KiB/call\n",
    );
    for r in runs {
        let ratio = match base {
            Some(b) if b > 0.0 => format!("{:.2}", r.cpu_us_per_datagram / b),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:<5}  {:>5}  {:>9.0}  {:>9.0}  {:>5.2}  {:>6}  {:>5}  {:>7}  {:>12.2}  {:>5}  {:>10.1}  {:>8.1}  {:>12.1}\n",
            r.relay,
            r.calls,
            r.offered_per_s,
            r.relayed_per_s,
            r.loss_pct,
            r.latency_p50_us,
            r.latency_p99_us,
            r.latency_p999_us,
            r.cpu_us_per_datagram,
            ratio,
            r.cpu_share_pct,
            r.generator_cpu_share_pct,
            r.rss_kib_per_call
        ));
    }
    out
}
