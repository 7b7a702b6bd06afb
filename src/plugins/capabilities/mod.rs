//! One file per host interface of the WIT package: what a plugin can do
//! once the operator grants it that capability. Ungranted interfaces are
//! refused at load (see `grants.rs`), so these impls can assume the grant.

mod calls;
mod calls_control;
mod clock;
mod config;
mod devices;
mod http_client;
mod kv;
mod log;
mod notify;
mod streams;

use super::bindings::callswitch::plugin::types;
use super::state::PluginState;

impl types::Host for PluginState {}
impl super::bindings::adapter::callswitch::plugin::ingress_types::Host for PluginState {}
