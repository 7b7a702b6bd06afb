//! `kv`: a plugin-scoped key-value space the host keeps across reloads (in
//! memory: it does not survive a restart of the switch).

use crate::plugins::bindings::callswitch::plugin::kv::Host;
use crate::plugins::state::PluginState;

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.lock().expect("kv lock").get(&key).cloned()
    }

    async fn set(&mut self, key: String, value: Vec<u8>) {
        self.kv.lock().expect("kv lock").insert(key, value);
    }

    async fn delete(&mut self, key: String) {
        self.kv.lock().expect("kv lock").remove(&key);
    }

    async fn keys(&mut self, prefix: String) -> Vec<String> {
        self.kv
            .lock()
            .expect("kv lock")
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }
}
