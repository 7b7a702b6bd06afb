//! The overload mode (`callswitch load --mode overload`): the switch carries
//! as many calls as its admission limit allows, and the calls' audio is
//! measured twice, first alone and then while other clients keep dialling
//! as fast as the switch answers them. Every new call must be refused as
//! `overloaded` and the calls in progress must keep their loss and latency:
//! the second window's figures against the first, in the same run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{connect_users, measure, LoadError, LoadOptions, QuicLoad, RelayFigures, MAX_CALLS};
use crate::wire::ErrorCode;

/// Figures of an overload run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OverloadFigures {
    /// Calls in progress, which is also the switch's `max_live_calls`.
    pub calls: usize,
    /// Clients dialling during the pressed window.
    pub dialers: usize,
    /// Dials per second they aimed at in all (0: each as fast as it is
    /// answered).
    pub dial_rate: u32,
    /// The calls' audio with nobody dialling.
    pub quiet: RelayFigures,
    /// The same calls' audio while the dialers were refused.
    pub pressed: RelayFigures,
    /// Dials refused as `overloaded` while pressing.
    pub refused: u64,
    pub refused_per_s: f64,
    /// Dials the switch accepted beyond its limit (each is hung up).
    pub admitted: u64,
    /// Dials that failed some other way.
    pub other_errors: u64,
}

/// Runs `opts.calls` calls at the admission limit, measures them, then
/// measures them again while `dialers` clients keep dialling: `dial_rate`
/// dials per second in all, or each as fast as it is answered (0).
pub async fn run_overload(
    opts: &LoadOptions,
    dialers: usize,
    dial_rate: u32,
) -> Result<OverloadFigures, LoadError> {
    let calls = opts.calls.clamp(1, MAX_CALLS);
    let dialers = dialers.clamp(1, MAX_CALLS);
    let load = QuicLoad::start(opts, calls, dialers, calls).await?;
    let pid = load.sw.pid;
    let mut quiet = measure(opts, &load.window, load.base, pid, "quiet", calls).await;
    quiet.rss_kib_per_call = load.rss_kib_per_call;

    let clients = connect_users(&load.sw, calls * 2..calls * 2 + dialers).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(DialCounts::default());
    let mut tasks = Vec::new();
    // Each dialer's share of the rate, as the time between its dials.
    let period =
        (dial_rate > 0).then(|| Duration::from_secs_f64(dialers as f64 / dial_rate as f64));
    for (i, (client, events)) in clients.into_iter().enumerate() {
        let (stop, counts) = (stop.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let _events = events;
            let mut tick = period.map(|p| {
                // Spread the dialers over the period.
                let start = tokio::time::Instant::now() + p.mul_f64(i as f64 / dialers as f64);
                let mut t = tokio::time::interval_at(start, p);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            // Dial someone in a call; the limit is checked first.
            while !stop.load(Relaxed) {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                match client.dial(&["u0"], None).await {
                    Ok(id) => {
                        counts.admitted.fetch_add(1, Relaxed);
                        let _ = client.hangup(id).await;
                    }
                    Err(e) if e.code() == Some(ErrorCode::Overloaded) => {
                        counts.refused.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        counts.other.fetch_add(1, Relaxed);
                        if e.code().is_none() {
                            // The connection is gone: stop this dialer.
                            return;
                        }
                    }
                }
            }
        }));
    }
    let pressing = Instant::now();
    load.window.reset();
    let pressed = measure(opts, &load.window, load.base, pid, "pressed", calls).await;
    stop.store(true, Relaxed);
    let pressed_for = pressing.elapsed();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    load.stop().await;
    let refused = counts.refused.load(Relaxed);
    Ok(OverloadFigures {
        calls,
        dialers,
        dial_rate,
        quiet,
        pressed,
        refused,
        refused_per_s: refused as f64 / pressed_for.as_secs_f64(),
        admitted: counts.admitted.load(Relaxed),
        other_errors: counts.other.load(Relaxed),
    })
}

#[derive(Default)]
struct DialCounts {
    refused: AtomicU64,
    admitted: AtomicU64,
    other: AtomicU64,
}
