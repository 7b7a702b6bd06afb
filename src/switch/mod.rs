//! The sans-IO core: users and devices, calls and their state machine, the
//! event log and routing (fork, busy, group). No tokio, no sockets, no
//! wasmtime: inputs are `&mut self` methods taking `now`, outputs are
//! [`Effect`]s and [`Switch::poll_timeout`].

mod call;
mod core;
mod directory;
mod effect;
mod error;

pub use self::core::{valid_dtmf, CoreCounts, Session, Switch, SwitchSettings};
pub use directory::{
    hash_token, parse_token_hash, Directory, DirectoryError, Identity, TokenDigest, TokenDigestCfg,
    User,
};
pub use effect::{DeviceId, Effect, MediaLeg};
pub use error::SwitchError;

#[cfg(test)]
mod tests;
