//! The example plugin in examples/policy-minimal (the one docs/PLUGINS.md
//! walks through), built from source and loaded into a real switch: it
//! keeps the ten-minute guide true.

mod common;

use std::path::PathBuf;
use std::process::Command;

use callswitch::wire::{EndReason, ErrorCode};
use common::*;

/// Builds the example for wasm32-wasip2 (the target is already installed:
/// build.rs added it for the shipped plugins) and returns the component.
fn build_example() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target/wasm-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("examples/policy-minimal/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("running cargo");
    assert!(status.success(), "building examples/policy-minimal failed");
    target_dir.join("wasm32-wasip2/release/policy_minimal.wasm")
}

#[tokio::test]
async fn premium_rate_numbers_are_refused() {
    let wasm = build_example();
    let extra = format!(
        "[[user]]\nid = \"5f1c5a1e-0000-4000-8000-000000001900\"\nname = \"hotline\"\nnumbers = [\"+19005550199\"]\ntoken_hash = \"{hash}\"\n\n[[plugin]]\nname = \"no-premium\"\npath = \"{path}\"\nworld = \"policy\"\n",
        hash = callswitch::switch::hash_token("hotline-token"),
        path = wasm.display(),
    );
    let sw = TestSwitch::start_with(Knobs {
        extra,
        ..Knobs::default()
    })
    .await;
    let (alice, _ae) = sw.connect("alice").await;
    let call_id = uuid::Uuid::new_v4();
    let err = alice
        .dial(&["+19005550199"], Some(call_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(
        err.to_string().contains("no-premium") && err.to_string().contains("premium-rate"),
        "{err}"
    );
    let record = sw.admin().await.call_log(call_id).await.unwrap();
    assert_eq!(record.end_reason, EndReason::Denied);
    let (_bob, _be) = sw.connect("bob").await;
    alice
        .dial(&["bob"], None)
        .await
        .expect("other calls go through");
}
