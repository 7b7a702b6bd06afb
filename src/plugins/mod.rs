//! The wasmtime host for plugins: the engine and its limits, loading and
//! reloading components against the WIT contract in `wit/`, the policy
//! chain, and one file per host interface (capability) in `capabilities/`.
//!
//! Plugins decide; the host moves bytes. Hooks run outside the switch's
//! driver (in their own tasks), so a slow plugin delays only the request
//! it is deciding.

mod adapter;
pub mod bindings;
pub mod builtin;
mod capabilities;
pub mod chain;
mod convert;
mod engine;
mod grants;
mod host;
mod kv_store;
mod policy;
pub mod port;
mod state;

pub use adapter::AdapterPlugin;
pub use chain::{DialDecision, Refusal};
pub use host::{Chain, PluginHost};
pub use policy::{HookFailure, PolicyPlugin};
pub use state::{HostContext, PluginCommand};

/// A plugin that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin engine: {0}")]
    Engine(String),
    #[error("plugin cache: {0}")]
    Cache(String),
    #[error("plugin `{plugin}` cannot be loaded: {why}")]
    Load { plugin: String, why: String },
    #[error("no plugin named `{0}`")]
    Unknown(String),
}

/// An identity for a user id (for hooks run outside the driver).
pub fn identity_of(
    dir: &crate::switch::Directory,
    user: uuid::Uuid,
    device: Option<String>,
) -> bindings::Identity {
    match dir.user(&user) {
        Some(u) => convert::identity(u, device),
        None => bindings::Identity {
            id: user.to_string(),
            name: String::new(),
            numbers: Vec::new(),
            device,
        },
    }
}

pub use convert::{call_event as convert_event, call_info as convert_call};
