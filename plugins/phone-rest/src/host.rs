//! The switch as the plugin sees it: the `Host` trait, one method per host
//! function the plugin uses, and the plain data it passes.
//!
//! Everything else in the crate talks to the switch only through this trait,
//! so the routes and event handling compile and run natively against a fake
//! switch in the unit tests. `lib.rs` implements it over the wit bindings.

/// How important a log line is (the `log` interface's levels that we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// A switch user: lower-case UUID and login name.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// One WebSocket message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

/// Where a party stands in a live call, reduced to what the busy check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engagement {
    /// Ringing or joined: the user is taken by this call.
    Engaged,
    /// Left, declined, busy, no answer or unavailable: the call no longer
    /// holds the user even though it goes on.
    Done,
}

/// A live call from the `calls` snapshot: its id and its parties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub id: String,
    pub parties: Vec<(String, Engagement)>,
}

/// The host functions the plugin calls (grants `log`, `clock`, `calls`,
/// `streams`, `devices`).
pub trait Host {
    /// `log.log`.
    fn log(&self, level: Level, message: &str);
    /// `clock.now-ms`: wall-clock milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// `clock.monotonic-ms`.
    fn monotonic_ms(&self) -> u64;

    /// `calls.list-calls`, ids only.
    fn live_call_ids(&self) -> Vec<String>;
    /// `calls.calls-of`.
    fn calls_of(&self, user: &str) -> Vec<LiveCall>;
    /// `calls.find-user`.
    fn find_user(&self, target: &str) -> Option<User>;
    /// `calls.online-devices`: the labels of the user's online devices.
    fn online_devices(&self, user: &str) -> Vec<String>;

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

    /// `streams.send`.
    fn send(&self, stream: u64, message: Message) -> Result<(), String>;
    /// `streams.close`.
    fn close_stream(&self, stream: u64, code: u16, reason: &str);
    /// `streams.attach-media`.
    fn attach_media(&self, stream: u64, device: u64, call_id: &str) -> Result<(), String>;
}
