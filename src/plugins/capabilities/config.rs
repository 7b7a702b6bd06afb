//! `config`: the plugin's own `[plugin.config]` table, values as strings.

use crate::plugins::bindings::callswitch::plugin::config::Host;
use crate::plugins::state::PluginState;

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }

    async fn keys(&mut self) -> Vec<String> {
        self.settings.keys().cloned().collect()
    }
}
