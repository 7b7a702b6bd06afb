//! The plugins shipped inside the binary (built by build.rs from
//! `plugins/`), addressed in the config as `path = "builtin:NAME"`.

/// Prefix of a built-in plugin path.
pub const PREFIX: &str = "builtin:";

/// Name and component bytes of every shipped plugin.
pub const BUILTINS: &[(&str, &[u8])] = &[
    (
        "allowlist",
        include_bytes!(concat!(env!("OUT_DIR"), "/allowlist.wasm")),
    ),
    (
        "max-calls",
        include_bytes!(concat!(env!("OUT_DIR"), "/max_calls.wasm")),
    ),
    (
        "business-hours",
        include_bytes!(concat!(env!("OUT_DIR"), "/business_hours.wasm")),
    ),
    (
        "faulty",
        include_bytes!(concat!(env!("OUT_DIR"), "/faulty.wasm")),
    ),
    (
        "adapter-probe",
        include_bytes!(concat!(env!("OUT_DIR"), "/adapter_probe.wasm")),
    ),
    (
        "call-log-rest",
        include_bytes!(concat!(env!("OUT_DIR"), "/call_log_rest.wasm")),
    ),
    (
        "phone-rest",
        include_bytes!(concat!(env!("OUT_DIR"), "/phone_rest.wasm")),
    ),
    (
        "web-terminal",
        include_bytes!(concat!(env!("OUT_DIR"), "/web_terminal.wasm")),
    ),
    (
        "rest-hooks",
        include_bytes!(concat!(env!("OUT_DIR"), "/rest_hooks.wasm")),
    ),
    (
        "voice-proxy",
        include_bytes!(concat!(env!("OUT_DIR"), "/voice_proxy.wasm")),
    ),
];

/// The bytes of `builtin:NAME`; `None` when `path` is not a builtin path.
pub fn bytes(path: &str) -> Option<Result<&'static [u8], String>> {
    let name = path.strip_prefix(PREFIX)?;
    Some(
        BUILTINS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                let names: Vec<&str> = BUILTINS.iter().map(|(n, _)| *n).collect();
                format!(
                    "no built-in plugin `{name}` (built-ins: {})",
                    names.join(", ")
                )
            }),
    )
}
