//! What the plugin remembers in memory between calls into it: the voice
//! sockets and their devices, the devices taking part in each mirrored
//! call, the upgrades accepted but not yet opened, and the settings.
//!
//! It lives in one `State` value (a global of the component, see `lib.rs`)
//! and is lost on a reload, when the host also closes every socket and
//! device; what must survive (the sessions) is in `kv` (`store.rs`).

use std::collections::BTreeMap;

use crate::host::{Host, User};
use crate::settings::Settings;

/// A voice socket (`/voice/socket`) and the device opened for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub device: u64,
    pub user: User,
}

/// The plugin's devices in one mirrored call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Legs {
    /// The customer's device that dialled (the call's caller).
    pub caller: Option<u64>,
    /// The operator's device that answered.
    pub answerer: Option<u64>,
}

/// How many accepted upgrades may wait for their stream. The host opens a
/// stream right after the upgrade, so only a failed upgrade leaves an entry
/// behind; the oldest are dropped past this.
const MAX_PENDING: usize = 64;

#[derive(Debug, Default)]
pub struct State {
    /// Sockets by stream id.
    pub sockets: BTreeMap<u64, Socket>,
    /// The stream of each socket device.
    pub by_device: BTreeMap<u64, u64>,
    /// The plugin's devices in each mirrored call, by call id.
    pub legs: BTreeMap<String, Legs>,
    /// Tokens of accepted upgrades, by the number in their context.
    pending: BTreeMap<u64, String>,
    next_pending: u64,
    settings: Option<Settings>,
}

impl State {
    /// The settings, read on first use.
    pub fn settings<H: Host>(&mut self, host: &H) -> &Settings {
        self.settings.get_or_insert_with(|| Settings::read(host))
    }

    /// Keeps the token of an accepted upgrade; returns the context string
    /// to upgrade with (`socket:<n>`: the token itself stays here).
    pub fn add_pending(&mut self, token: &str) -> String {
        while self.pending.len() >= MAX_PENDING {
            self.pending.pop_first();
        }
        self.next_pending += 1;
        self.pending.insert(self.next_pending, token.to_owned());
        format!("socket:{}", self.next_pending)
    }

    /// The token of the upgrade `context` names, removed.
    pub fn take_pending(&mut self, context: &str) -> Option<String> {
        let number = context.strip_prefix("socket:")?.parse().ok()?;
        self.pending.remove(&number)
    }

    /// Forgets socket `stream`; returns it.
    pub fn remove_socket(&mut self, stream: u64) -> Option<Socket> {
        let socket = self.sockets.remove(&stream)?;
        self.by_device.remove(&socket.device);
        for legs in self.legs.values_mut() {
            if legs.caller == Some(socket.device) {
                legs.caller = None;
            }
            if legs.answerer == Some(socket.device) {
                legs.answerer = None;
            }
        }
        self.legs
            .retain(|_, legs| legs.caller.is_some() || legs.answerer.is_some());
        Some(socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_upgrades_are_taken_once_and_bounded() {
        let mut state = State::default();
        let first = state.add_pending("secret");
        assert_eq!(first, "socket:1");
        assert_eq!(state.take_pending(&first).as_deref(), Some("secret"));
        assert_eq!(state.take_pending(&first), None);
        assert_eq!(state.take_pending("garbage"), None);
        let oldest = state.add_pending("t");
        for _ in 0..MAX_PENDING {
            state.add_pending("t");
        }
        assert_eq!(state.pending.len(), MAX_PENDING);
        assert_eq!(state.take_pending(&oldest), None);
    }

    #[test]
    fn removing_a_socket_forgets_its_legs() {
        let mut state = State::default();
        let user = User {
            id: "u".into(),
            name: "u".into(),
        };
        state.sockets.insert(1, Socket { device: 10, user });
        state.by_device.insert(10, 1);
        state.legs.insert(
            "call".into(),
            Legs {
                caller: Some(10),
                answerer: None,
            },
        );
        state.legs.insert(
            "other".into(),
            Legs {
                caller: Some(20),
                answerer: Some(10),
            },
        );
        assert!(state.remove_socket(1).is_some());
        assert!(state.by_device.is_empty());
        assert!(!state.legs.contains_key("call"));
        assert_eq!(state.legs["other"].answerer, None);
        assert!(state.remove_socket(1).is_none());
    }
}
