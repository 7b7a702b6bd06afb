//! The switch's services as the plugin uses them: the [`Host`] trait.
//!
//! Every handler takes a `&dyn Host` instead of calling the WIT imports
//! directly, so the logic runs natively in unit tests against a fake switch.
//! `lib.rs` implements the trait with the generated bindings (wasm32 only).
//! Only what the plugin calls is here: `log`, `kv`, `clock`, `calls`
//! (`find-user`), `config` and `devices`; never `streams`.

/// A user of the switch, as `calls.find-user` and `devices.authenticate`
/// give it (without a device label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Lower-case hyphenated UUID.
    pub id: String,
    /// Login name, e.g. `alice`.
    pub name: String,
    /// E.164 numbers; may be empty.
    pub numbers: Vec<String>,
}

/// The switch's `error` reply to a device request (`code`, `message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchError {
    pub code: String,
    pub message: String,
}

/// Log levels of the `log` interface that the plugin uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// What the plugin needs from the switch.
pub trait Host {
    /// `devices.authenticate`.
    fn authenticate(&self, token: &str) -> Result<User, SwitchError>;
    /// `calls.find-user`.
    fn find_user(&self, target: &str) -> Option<User>;
    /// `devices.open(token, label, rings = false)`: the device id.
    fn open_device(&self, token: &str, label: &str) -> Result<u64, SwitchError>;
    /// `devices.request`: the switch's JSON reply.
    fn request(&self, device: u64, request: &str) -> Result<String, SwitchError>;
    /// `devices.close`.
    fn close_device(&self, device: u64);
    /// `devices.call-record`.
    fn call_record(&self, call_id: &str) -> Option<String>;
    /// `devices.live-events`.
    fn live_events(&self, call_id: &str) -> Option<String>;
    /// `kv.get`.
    fn kv_get(&self, key: &str) -> Option<Vec<u8>>;
    /// `kv.set`.
    fn kv_set(&self, key: &str, value: &[u8]);
    /// `kv.delete`.
    fn kv_delete(&self, key: &str);
    /// `clock.now-ms`.
    fn now_ms(&self) -> u64;
    /// `clock.monotonic-ms`.
    fn monotonic_ms(&self) -> u64;
    /// `config.get`.
    fn config(&self, key: &str) -> Option<String>;
    /// `log.log`.
    fn log(&self, level: Level, message: &str);
}
