//! The switch as the plugin sees it: the `Host` trait, one method per host
//! function the plugin uses, and the plain data the hooks pass.
//!
//! Everything else in the crate talks to the switch only through this
//! trait, so the hooks compile and run natively against a fake switch and a
//! fake backend in the unit tests. `lib.rs` implements it over the wit
//! bindings (grants `log`, `kv`, `clock`, `http-client`; `config` is read once by
//! `lib.rs` into [`crate::settings::Settings`]).

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// A user as a hook sees it (`identity`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub id: String,
    pub name: String,
    pub numbers: Vec<String>,
    /// The device label, set only for the user acting in a hook.
    pub device: Option<String>,
}

/// Where a party stands in a call (`party-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyStatus {
    Ringing,
    Joined,
    Left,
    Declined,
    Busy,
    NoAnswer,
    Unavailable,
}

/// A call snapshot (`call-info`), reduced to what the plugin uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Call {
    pub id: String,
    pub caller: User,
    /// The caller first, then the callees.
    pub parties: Vec<(User, PartyStatus)>,
}

/// Something that happened in a call (`call-event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Ringing(User),
    Answered(User),
    Joined(User),
    Left(User),
    Held(User),
    Resumed(User),
    Busy(User),
    Declined(User),
    NoAnswer(User),
    Dtmf(User),
    Ended(String),
}

/// An HTTP response: any status (a 403 is a response, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `connect-verdict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectVerdict {
    Admit(Option<String>),
    Refuse(String),
}

/// `dial-verdict` (the plugin never answers `busy` or `ring-also`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialVerdict {
    Allow,
    Deny(String),
    Redirect(Vec<String>),
}

/// `verdict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(String),
}

/// The host functions the plugin calls.
pub trait Host {
    /// `log.log`.
    fn log(&self, level: Level, message: &str);
    /// `kv.get`.
    fn kv_get(&self, key: &str) -> Option<Vec<u8>>;
    /// `kv.set`.
    fn kv_set(&self, key: &str, value: &[u8]);
    /// `kv.delete`.
    fn kv_delete(&self, key: &str);
    /// `clock.monotonic-ms`: milliseconds since the switch started.
    fn monotonic_ms(&self) -> u64;
    /// `http-client.send` of a `POST` with a JSON body; `Err` is the host's
    /// short reason (destination not allowed, connection failed, timeout,
    /// malformed or oversized response).
    fn post_json(&self, url: &str, body: Vec<u8>, timeout_ms: u32) -> Result<Response, String>;
}
