//! The switch as the plugin sees it: the `Host` trait, one method per host
//! function the plugin uses, and the plain data it passes.
//!
//! Everything else in the crate talks to the switch only through this trait,
//! so the gRPC handling and the call flows compile and run natively against
//! a fake switch in the unit tests. `lib.rs` implements it over the wit
//! bindings.

/// How important a log line is (the `log` interface's levels that we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// A switch user: lower-case UUID, login name and E.164 numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub id: String,
    pub name: String,
    pub numbers: Vec<String>,
}

impl User {
    /// The number a terminal of this user shows (its msisdn): the first
    /// configured one, or empty for a user without numbers.
    pub fn msisdn(&self) -> String {
        self.numbers.first().cloned().unwrap_or_default()
    }
}

/// The switch's refusal (`switch-error`): a protocol error code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchError {
    pub code: String,
    pub message: String,
}

/// Where a party stands in a live call, reduced to what the plugin needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyState {
    /// Being alerted.
    Ringing,
    /// In the call.
    Joined,
    /// Left, declined, busy, no answer or unavailable.
    Out,
}

/// A live call from the `calls` snapshot: its id and its parties (user id,
/// state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub id: String,
    pub parties: Vec<(String, PartyState)>,
}

impl LiveCall {
    /// Where `user` stands in the call (`None`: not a party).
    pub fn state_of(&self, user: &str) -> Option<PartyState> {
        self.parties
            .iter()
            .find(|(id, _)| id == user)
            .map(|(_, state)| *state)
    }
}

/// The host functions the plugin calls (grants `log`, `clock`, `calls`,
/// `config`, `streams`, `devices`).
pub trait Host {
    /// `log.log`.
    fn log(&self, level: Level, message: &str);
    /// `clock.monotonic-ms`.
    fn monotonic_ms(&self) -> u64;
    /// `config.get`.
    fn config(&self, key: &str) -> Option<String>;

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

    /// `streams.send` of a binary message (one gRPC message).
    fn send(&self, stream: u64, message: Vec<u8>) -> Result<(), String>;
    /// `streams.close`: ends the gRPC call with status `code`.
    fn close_stream(&self, stream: u64, code: u16, reason: &str);
}
