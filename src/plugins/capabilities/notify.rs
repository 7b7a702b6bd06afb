//! `notify`: a JSON notification to every device of a user.

use uuid::Uuid;

use crate::plugins::bindings::callswitch::plugin::notify::Host;
use crate::plugins::state::{PluginCommand, PluginState};

/// Largest notification body.
const MAX_NOTIFICATION: usize = 64 * 1024;

impl Host for PluginState {
    async fn send(&mut self, user: String, json: String) -> Result<(), String> {
        let user = Uuid::parse_str(&user).map_err(|_| format!("`{user}` is not a user UUID"))?;
        if json.len() > MAX_NOTIFICATION {
            return Err(format!(
                "notification of {} bytes exceeds {MAX_NOTIFICATION}",
                json.len()
            ));
        }
        let body: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("notification is not JSON: {e}"))?;
        let plugin = self.plugin.to_string();
        self.command(|reply| PluginCommand::Notify {
            plugin,
            user,
            body,
            reply,
        })
        .await
    }
}
