//! Host bindings generated from `wit/` (the `policy` world): the `Policy`
//! export wrapper, `PolicyPre` for cheap instantiation, and one `Host`
//! trait per imported interface, implemented in `capabilities/`.

wasmtime::component::bindgen!({
    world: "policy",
    path: "wit",
    imports: { default: async },
    exports: { default: async },
});

// The world's `use types.{...}` already brings the hook types to this level;
// aliases (not `pub use`, which rustdoc cannot resolve inside generated
// modules) name the others.
pub type CallKind = callswitch::plugin::types::CallKind;
pub type CallState = callswitch::plugin::types::CallState;
pub type DtmfEvent = callswitch::plugin::types::DtmfEvent;
pub type Party = callswitch::plugin::types::Party;
pub type PartyStatus = callswitch::plugin::types::PartyStatus;
pub type RingingEvent = callswitch::plugin::types::RingingEvent;
