//! Capabilities: each host interface a plugin may import, granted per
//! plugin in the config. A component importing anything not granted (or
//! a WASI interface outside the closed sandbox) is refused at load, with
//! the import named.

use std::collections::BTreeSet;

use wasmtime::component::Component;
use wasmtime::Engine;

/// The package every callswitch interface lives in.
const PACKAGE: &str = "callswitch:plugin/";

/// WASI interfaces Rust's std imports even for a pure plugin. They are
/// linked against a context with nothing inherited: no environment, no
/// arguments, no preopened files, stdio discarded.
const SANDBOXED_WASI: &[&str] = &["wasi:io/", "wasi:cli/"];

/// Checks a component's imports against its grants; returns the
/// callswitch interfaces it imports.
pub fn check_imports(
    engine: &Engine,
    component: &Component,
    grants: &[String],
) -> Result<BTreeSet<String>, String> {
    let mut used = BTreeSet::new();
    for (name, _) in component.component_type().imports(engine) {
        if let Some(rest) = name.strip_prefix(PACKAGE) {
            let interface = rest.split('@').next().unwrap_or(rest);
            // Type-only interfaces carry no capability.
            if interface == "types" || interface == "ingress-types" {
                continue;
            }
            if !grants.iter().any(|g| g == interface) {
                return Err(format!(
                    "it imports `{name}`, but `{interface}` is not in its grants ({})",
                    if grants.is_empty() {
                        "none".to_string()
                    } else {
                        grants.join(", ")
                    }
                ));
            }
            used.insert(interface.to_string());
        } else if !SANDBOXED_WASI.iter().any(|p| name.starts_with(p)) {
            return Err(format!(
                "it imports `{name}`, which the sandbox does not provide (no files, network, clocks or randomness outside the granted interfaces)"
            ));
        }
    }
    Ok(used)
}
