//! `callswitch serve`: load the config, start the switch, wait for Ctrl-C
//! (or SIGTERM), then shut down gracefully.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::Config;

pub async fn serve(config_path: Option<PathBuf>, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_path.as_deref())?;
    let data_dir = data_dir.unwrap_or_else(|| config.server.data_dir.clone());
    let handle = crate::server::start(&config, &data_dir)
        .await
        .context("starting the switch")?;
    println!(
        "callswitch listening on {} (QUIC, ALPN callswitch/1)",
        handle.addr
    );
    println!("certificate fingerprint (SHA-256): {}", handle.fingerprint);
    println!("data directory: {}", data_dir.display());
    if config_path.is_none() {
        println!("config: embedded default (demo users alice, bob, carol)");
    }
    wait_for_signal().await;
    println!("shutting down: ending and recording calls");
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
