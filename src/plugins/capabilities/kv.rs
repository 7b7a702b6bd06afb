//! `kv`: a plugin-scoped key-value space the host keeps across reloads and,
//! on disk, across restarts (see `kv_store.rs`).

use crate::plugins::bindings::callswitch::plugin::kv::Host;
use crate::plugins::state::PluginState;

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.get(&key)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) {
        self.kv.set(key, value);
    }

    async fn delete(&mut self, key: String) {
        self.kv.delete(&key);
    }

    async fn keys(&mut self, prefix: String) -> Vec<String> {
        self.kv.keys(&prefix)
    }
}
