//! The adapter port: what an adapter plugin's `devices` and `streams`
//! capabilities need from the runtime that owns the sockets and the
//! switch's driver. The plugin host defines it; the ingress implements it
//! (one port per adapter), so the host never depends on the server.

use std::future::Future;
use std::pin::Pin;

use crate::switch::User;

/// A future a port method returns.
pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The switch's refusal: its error code (`unauthorized`, `busy`, ...) and
/// message, as a client would receive them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError {
    pub code: String,
    pub message: String,
}

impl PortError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        PortError {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// One WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPayload {
    Text(String),
    Binary(Vec<u8>),
}

/// One adapter's access to the switch and to its own streams.
pub trait AdapterPort: Send + Sync {
    /// The user a bearer token authenticates (admin tokens refused).
    fn authenticate(&self, token: &str) -> Result<User, PortError>;
    /// Opens a device for the token's user; returns its id and user.
    fn open_device<'a>(
        &'a self,
        token: &'a str,
        label: &'a str,
        rings: bool,
    ) -> PortFuture<'a, Result<(u64, User), PortError>>;
    /// Sends a client-protocol request (JSON without `req`) as the device
    /// and returns the reply's JSON.
    fn request(&self, device: u64, request: String) -> PortFuture<'_, Result<String, PortError>>;
    fn close_device(&self, device: u64);
    fn stream_send(&self, stream: u64, message: StreamPayload) -> Result<(), String>;
    fn stream_close(&self, stream: u64, code: u16, reason: &str);
    fn attach_media(&self, stream: u64, device: u64, call_id: &str) -> Result<(), String>;
    /// The JSON record of an ended call.
    fn call_record(&self, call_id: &str) -> PortFuture<'_, Option<String>>;
    /// The JSON events of a live call so far.
    fn live_events(&self, call_id: &str) -> PortFuture<'_, Option<String>>;
    /// The adapter's instance failed or was replaced: close every stream
    /// (with code 1011 and `reason`) and device it had.
    fn reset(&self, reason: &str);
}
