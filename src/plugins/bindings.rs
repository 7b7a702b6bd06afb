//! Host bindings generated from `wit/` (the `policy` world): the `Policy`
//! export wrapper, `PolicyPre` for cheap instantiation, and one `Host`
//! trait per imported interface, implemented in `capabilities/`.

wasmtime::component::bindgen!({
    world: "policy",
    path: "wit",
    imports: { default: async },
    exports: { default: async },
});

// The world's `use types.{...}` already brings the hook types to this level.
pub use callswitch::plugin::types::{
    CallKind, CallState, DtmfEvent, Party, PartyStatus, RingingEvent,
};
