//! `log`: plugin messages into the switch's tracing, tagged with the plugin.

use crate::plugins::bindings::callswitch::plugin::log::{Host, Level};
use crate::plugins::state::PluginState;

/// Longest message kept; the rest is cut so a plugin cannot flood the log.
const MAX_MESSAGE: usize = 4096;

impl Host for PluginState {
    async fn log(&mut self, level: Level, message: String) {
        let message: String = message.chars().take(MAX_MESSAGE).collect();
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}
