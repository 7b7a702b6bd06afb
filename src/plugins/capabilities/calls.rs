//! `calls`: read live calls and users from the snapshot the driver keeps.

use uuid::Uuid;

use crate::plugins::bindings::callswitch::plugin::calls::Host;
use crate::plugins::bindings::{CallInfo, Identity};
use crate::plugins::convert;
use crate::plugins::state::PluginState;
use crate::wire::CallSummary;

/// Whether `user` is the caller or a party of `call` (with any status).
fn has_party(call: &CallSummary, user: Uuid) -> bool {
    call.parties.iter().any(|p| p.user.id == user)
}

impl Host for PluginState {
    async fn list_calls(&mut self) -> Vec<CallInfo> {
        let calls = self.host.calls.read().expect("calls view");
        let mut all: Vec<_> = calls.values().collect();
        all.sort_by_key(|c| (c.created_at_ms, c.call_id));
        all.into_iter()
            .map(|c| convert::call_info(&self.host.directory, c))
            .collect()
    }

    async fn calls_of(&mut self, user: String) -> Vec<CallInfo> {
        let Ok(user) = Uuid::parse_str(&user) else {
            return Vec::new();
        };
        let calls = self.host.calls.read().expect("calls view");
        let mut mine: Vec<_> = calls.values().filter(|c| has_party(c, user)).collect();
        mine.sort_by_key(|c| (c.created_at_ms, c.call_id));
        mine.into_iter()
            .map(|c| convert::call_info(&self.host.directory, c))
            .collect()
    }

    async fn count_calls(&mut self, user: Option<String>) -> u32 {
        let calls = self.host.calls.read().expect("calls view");
        let count = match user {
            None => calls.len(),
            Some(user) => match Uuid::parse_str(&user) {
                Ok(user) => calls.values().filter(|c| has_party(c, user)).count(),
                Err(_) => 0,
            },
        };
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    async fn find_user(&mut self, target: String) -> Option<Identity> {
        self.host
            .directory
            .resolve(&target)
            .map(|u| convert::identity(u, None))
    }

    async fn online_devices(&mut self, user: String) -> Vec<String> {
        let Ok(user) = Uuid::parse_str(&user) else {
            return Vec::new();
        };
        self.host
            .online
            .read()
            .expect("online view")
            .get(&user)
            .cloned()
            .unwrap_or_default()
    }
}
