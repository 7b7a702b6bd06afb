//! Builds the shipped plugins (the `plugins/` workspace) for wasm32-wasip2
//! so that the switch can embed them (`path = "builtin:NAME"` in the
//! config) and the tests can load the real components. Adds the
//! wasm32-wasip2 target to the toolchain when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace members built and embedded (their `.wasm` files are
/// named with `_` for `-`).
const MEMBERS: &[&str] = &[
    "allowlist",
    "max-calls",
    "business-hours",
    "faulty",
    "adapter-probe",
    "call-log-rest",
    "phone-rest",
    "web-terminal",
    "rest-hooks",
    "voice-proxy",
];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    generate_grpc_client(&root);
    for dir in ["plugins", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    for member in MEMBERS {
        println!(
            "cargo:rerun-if-changed={}",
            root.join("plugins").join(member).join("src").display()
        );
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // One wasm target dir shared by every profile of the host crate:
    // <target>/<profile>/build/<pkg>/out -> <target>/wasm-plugins
    let target_dir = out
        .ancestors()
        .nth(4)
        .map(|t| t.join("wasm-plugins"))
        .unwrap_or_else(|| out.join("wasm-plugins"));
    ensure_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(root.join("plugins/Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    for member in MEMBERS {
        cmd.args(["-p", member]);
    }
    // The outer build's settings are for the host, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_PROFILE_") || key.starts_with("CARGO_CFG_") {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("running cargo for the wasm plugins");
    assert!(
        status.success(),
        "building the plugins for wasm32-wasip2 failed"
    );
    let built = target_dir.join("wasm32-wasip2/release");
    for member in MEMBERS {
        let name = member.replace('-', "_");
        let from = built.join(format!("{name}.wasm"));
        copy(&from, &out.join(format!("{name}.wasm")));
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
}

/// `rustup target add wasm32-wasip2` when the target is not installed.
fn ensure_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
        .unwrap_or(false);
    if !installed {
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "wasm32-wasip2 is missing and `rustup target add wasm32-wasip2` failed"
        );
    }
}

/// Generates the WebTerminalService gRPC client (for the tests) from the
/// protos in `proto/`, with a pure-Rust proto compiler (no `protoc`).
fn generate_grpc_client(root: &Path) {
    let proto_dir = root.join("proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    let files = protox::compile(
        ["wgtwo/webterminal/v0/webterminal.proto"],
        [proto_dir.as_path()],
    )
    .unwrap_or_else(|e| panic!("compiling proto/: {e}"));
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(files)
        .unwrap_or_else(|e| panic!("generating the gRPC client: {e}"));
}
