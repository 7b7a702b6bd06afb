//! `GET /metrics`: the switch's counters in the Prometheus text format
//! (version 0.0.4), gathered at each scrape from the driver, the relay,
//! the plugin host and the ingress's own counters.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use std::collections::BTreeMap;

use crate::wire::{PluginInfo, StatsSnapshot};

/// The ingress's own counters.
#[derive(Debug, Default)]
pub struct IngressCounters {
    pub streams_open: AtomicU64,
    pub devices_open: AtomicU64,
    /// Binary messages of attached streams dropped (too long for a frame,
    /// or the leg had no channel yet).
    pub media_dropped: AtomicU64,
    /// Devices closed because their adapter's event queue was full.
    pub devices_cut_off: AtomicU64,
    /// Requests per adapter and status code.
    pub requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl IngressCounters {
    pub fn count_request(&self, adapter: &str, status: u16) {
        *self
            .requests
            .lock()
            .expect("request counters")
            .entry((adapter.to_string(), status))
            .or_default() += 1;
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders one scrape.
pub fn render(stats: &StatsSnapshot, plugins: &[PluginInfo], ingress: &IngressCounters) -> String {
    let mut out = String::new();
    let single = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    };
    single(
        &mut out,
        "callswitch_quic_connections",
        "gauge",
        "Open QUIC connections.",
        stats.connections,
    );
    single(
        &mut out,
        "callswitch_websocket_streams",
        "gauge",
        "Open WebSocket streams of adapters.",
        ingress.streams_open.load(Relaxed),
    );
    single(
        &mut out,
        "callswitch_adapter_devices",
        "gauge",
        "Devices adapters hold open on the switch.",
        ingress.devices_open.load(Relaxed),
    );
    single(
        &mut out,
        "callswitch_adapter_devices_cut_off_total",
        "counter",
        "Adapter devices closed because the adapter's event queue was full.",
        ingress.devices_cut_off.load(Relaxed),
    );
    single(
        &mut out,
        "callswitch_devices_online",
        "gauge",
        "Authenticated devices (QUIC and adapters).",
        stats.devices_online,
    );
    family(
        &mut out,
        "callswitch_calls",
        "gauge",
        "Live calls by state.",
    );
    for (state, n) in [
        ("ringing", stats.calls_ringing),
        ("active", stats.calls_active),
        ("held", stats.calls_held),
    ] {
        let _ = writeln!(out, "callswitch_calls{{state=\"{state}\"}} {n}");
    }
    single(
        &mut out,
        "callswitch_call_setups_total",
        "counter",
        "Calls placed since start.",
        stats.calls_started,
    );
    single(
        &mut out,
        "callswitch_calls_ended_total",
        "counter",
        "Calls ended (and recorded) since start.",
        stats.calls_ended,
    );
    single(
        &mut out,
        "callswitch_frames_relayed_total",
        "counter",
        "Audio frame copies relayed.",
        stats.frames_relayed,
    );
    family(
        &mut out,
        "callswitch_frames_dropped_total",
        "counter",
        "Audio frames dropped, by reason.",
    );
    for (reason, n) in [
        ("bad_header", stats.frames_dropped_bad_header),
        ("no_route", stats.frames_dropped_no_route),
        ("send", stats.frames_dropped_send),
        ("websocket", ingress.media_dropped.load(Relaxed)),
    ] {
        let _ = writeln!(
            out,
            "callswitch_frames_dropped_total{{reason=\"{reason}\"}} {n}"
        );
    }
    single(
        &mut out,
        "callswitch_records_failed_total",
        "counter",
        "Call records that could not be written.",
        stats.records_failed,
    );
    for (name, kind, help, get) in [
        (
            "callswitch_plugin_calls_total",
            "counter",
            "Calls into each plugin.",
            (|p: &PluginInfo| p.calls) as fn(&PluginInfo) -> u64,
        ),
        (
            "callswitch_plugin_failures_total",
            "counter",
            "Failed calls into each plugin (trap, deadline, memory, invalid answer).",
            |p: &PluginInfo| p.failures,
        ),
        (
            "callswitch_plugin_time_seconds_total",
            "counter",
            "Time spent in each plugin.",
            |p: &PluginInfo| p.time_us,
        ),
    ] {
        family(&mut out, name, kind, help);
        for p in plugins {
            let value = get(p);
            if name.ends_with("_seconds_total") {
                let _ = writeln!(
                    out,
                    "{name}{{plugin=\"{}\",world=\"{}\"}} {}",
                    label(&p.name),
                    p.world,
                    value as f64 / 1e6
                );
            } else {
                let _ = writeln!(
                    out,
                    "{name}{{plugin=\"{}\",world=\"{}\"}} {value}",
                    label(&p.name),
                    p.world
                );
            }
        }
    }
    family(
        &mut out,
        "callswitch_adapter_requests_total",
        "counter",
        "HTTP requests answered, by adapter and status code.",
    );
    for ((adapter, code), n) in ingress.requests.lock().expect("request counters").iter() {
        let _ = writeln!(
            out,
            "callswitch_adapter_requests_total{{adapter=\"{}\",code=\"{code}\"}} {n}",
            label(adapter)
        );
    }
    single(
        &mut out,
        "callswitch_uptime_seconds",
        "gauge",
        "Seconds since the switch started.",
        stats.uptime_ms / 1000,
    );
    out
}
