//! The switch as the plugin sees it: the `Host` trait, one method per host
//! function the plugin uses, and the plain data it passes.
//!
//! Everything else in the crate talks to the switch only through this trait,
//! so the proxy compiles and runs natively against a fake switch in the unit
//! tests. `lib.rs` implements it over the wit bindings.

use serde::{Deserialize, Serialize};

/// How important a log line is (the `log` interface's levels that we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// A switch user: lower-case UUID and login name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
}

/// The switch's refusal (`switch-error`): a protocol error code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchError {
    pub code: String,
    pub message: String,
}

/// The host functions the plugin calls (grants `log`, `kv`, `calls`,
/// `config`, `streams`, `devices`).
pub trait Host {
    /// `log.log`.
    fn log(&self, level: Level, message: &str);

    /// `kv.get`.
    fn kv_get(&self, key: &str) -> Option<Vec<u8>>;
    /// `kv.set`.
    fn kv_set(&self, key: &str, value: &[u8]);
    /// `kv.delete`.
    fn kv_delete(&self, key: &str);
    /// `kv.keys`: the keys starting with `prefix`, sorted.
    fn kv_keys(&self, prefix: &str) -> Vec<String>;

    /// `config.get`.
    fn config(&self, key: &str) -> Option<String>;

    /// `calls.find-user`.
    fn find_user(&self, target: &str) -> Option<User>;
    /// `calls.online-devices`: the labels of the user's online devices.
    fn online_devices(&self, user: &str) -> Vec<String>;
    /// `calls.list-calls`, ids only.
    fn live_call_ids(&self) -> Vec<String>;

    /// `devices.authenticate`.
    fn authenticate(&self, token: &str) -> Result<User, SwitchError>;
    /// `devices.open`: the new device's id and its user.
    fn open_device(
        &self,
        token: &str,
        label: &str,
        rings: bool,
    ) -> Result<(u64, User), SwitchError>;
    /// `devices.request`: the switch's JSON reply.
    fn request(&self, device: u64, request: &str) -> Result<String, SwitchError>;
    /// `devices.close`.
    fn close_device(&self, device: u64);

    /// `streams.send` of a text message.
    fn send_text(&self, stream: u64, text: &str) -> Result<(), String>;
    /// `streams.close`.
    fn close_stream(&self, stream: u64, code: u16, reason: &str);
}
