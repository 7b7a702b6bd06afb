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
pub type CallAction = callswitch::plugin::types::CallAction;
pub type CallKind = callswitch::plugin::types::CallKind;
pub type CallState = callswitch::plugin::types::CallState;
pub type DtmfEvent = callswitch::plugin::types::DtmfEvent;
pub type Party = callswitch::plugin::types::Party;
pub type PartyStatus = callswitch::plugin::types::PartyStatus;
pub type RingingEvent = callswitch::plugin::types::RingingEvent;

/// Host bindings of the `adapter` world. The interfaces it shares with the
/// `policy` world map to the policy bindings, so each capability has one
/// implementation.
pub mod adapter {
    wasmtime::component::bindgen!({
        world: "adapter",
        path: "wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "callswitch:plugin/types": super::callswitch::plugin::types,
            "callswitch:plugin/log": super::callswitch::plugin::log,
            "callswitch:plugin/kv": super::callswitch::plugin::kv,
            "callswitch:plugin/clock": super::callswitch::plugin::clock,
            "callswitch:plugin/calls": super::callswitch::plugin::calls,
            "callswitch:plugin/config": super::callswitch::plugin::config,
            "callswitch:plugin/http-client": super::callswitch::plugin::http_client,
        },
    });

    pub type HttpResponse = callswitch::plugin::ingress_types::HttpResponse;
    pub type Header = callswitch::plugin::ingress_types::Header;
    pub type DeviceInfo = callswitch::plugin::ingress_types::DeviceInfo;
    pub type SwitchError = callswitch::plugin::ingress_types::SwitchError;
}
