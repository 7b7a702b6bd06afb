//! `clock`: wall time and a monotonic clock; the only clocks a plugin has.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::plugins::bindings::callswitch::plugin::clock::Host;
use crate::plugins::state::PluginState;

impl Host for PluginState {
    async fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    async fn monotonic_ms(&mut self) -> u64 {
        self.host.started.elapsed().as_millis() as u64
    }
}
