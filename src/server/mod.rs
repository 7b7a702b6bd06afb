//! The runtime: binds the QUIC endpoint, runs the network loop that owns
//! every connection and relays media, runs the control driver that owns
//! the sans-IO core, and shuts down gracefully (every call ended and
//! recorded first).

mod connection;
mod driver;
mod endpoint;
pub mod identity;
mod link;
mod outbox;
mod quic_loop;
mod relay;
mod send_batch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use driver::Outbound;
pub use link::{LinkedDevice, SwitchGone, SwitchLink};
pub use relay::{DeviceMedia, RelayStats, StreamSlot};

use crate::cdr::{CdrError, CdrStore};
use crate::config::Config;
use crate::plugins::{HostContext, PluginError, PluginHost};
use crate::switch::{parse_token_hash, Switch};

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("data directory: {0}")]
    DataDir(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("config: {0}")]
    Config(String),
    #[error(transparent)]
    Records(#[from] CdrError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Ingress(#[from] crate::ingress::IngressError),
}

/// A running switch.
pub struct ServerHandle {
    /// The bound QUIC address.
    pub addr: SocketAddr,
    /// SHA-256 fingerprint of the certificate clients pin.
    pub fingerprint: String,
    /// The local admin token (also in `<data_dir>/admin.token`).
    pub admin_token: String,
    pub data_dir: PathBuf,
    /// The bound HTTP ingress address (adapters and `/metrics`), unless
    /// the ingress is disabled.
    pub http_addr: Option<SocketAddr>,
    ingress: Option<crate::ingress::IngressHandle>,
    network: quic_loop::LoopHandle,
    driver_tx: mpsc::Sender<Input>,
    driver: JoinHandle<()>,
}

use driver::{Driver, Input};

/// Starts the switch: prepares the data directory, binds, and spawns the
/// accept loop and the driver on the current tokio runtime.
pub async fn start(config: &Config, data_dir: &Path) -> Result<ServerHandle, ServerError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| ServerError::DataDir(format!("creating {}: {e}", data_dir.display())))?;
    let identity = identity::load_or_create_identity(data_dir)?;
    let admin_token = identity::load_or_create_admin_token(data_dir)?;
    let mut directory = config.directory.clone();
    directory
        .add_admin(parse_token_hash(&crate::switch::hash_token(&admin_token)).expect("own hash"))
        .map_err(|e| ServerError::Config(e.to_string()))?;
    let cdr = CdrStore::open(data_dir, config.records.fsync)?;
    if cdr.repaired_bytes > 0 {
        warn!(
            bytes = cdr.repaired_bytes,
            "cut a torn record off the end of the record file"
        );
    }
    let server_config = endpoint::server_config(
        &identity,
        Duration::from_millis(config.server.idle_timeout_ms),
    )?;
    let socket = endpoint::bind_socket(config.server.listen, config.server.socket_buffer_bytes)?;
    let addr = socket
        .local_addr()
        .map_err(|e| ServerError::Bind(config.server.listen, e))?;
    std::fs::write(data_dir.join(identity::ADDR_FILE), addr.to_string())
        .map_err(|e| ServerError::DataDir(format!("writing server.addr: {e}")))?;

    let stats = Arc::new(RelayStats::default());
    let (plugins, commands) = if config.plugins.is_empty() {
        (None, None)
    } else {
        let context = Arc::new(HostContext::new(config.directory.clone()));
        let (tx, rx) = mpsc::channel(1024);
        let _ = context.commands.set(tx);
        let host = PluginHost::load(&config.plugins, &config.base_dir, data_dir, context).await?;
        let host = Arc::new(host);
        host.spawn_watcher();
        for p in host.list() {
            info!(plugin = %p.name, hash = %&p.hash[..12], imports = ?p.imports, "plugin loaded");
        }
        (Some(host), Some(rx))
    };

    let mut switch = Switch::new(directory, config.switch_settings());
    switch.remember_ended(CdrStore::call_ids(data_dir)?);
    let (driver_tx, driver_rx) = mpsc::channel(4096);
    let plugins_for_ingress = plugins.clone();
    let driver = Driver::new(
        switch,
        cdr,
        data_dir.to_path_buf(),
        stats.clone(),
        plugins,
        driver_tx.clone(),
    );
    let driver = tokio::spawn(driver.run(driver_rx, commands));
    let next_device = Arc::new(AtomicU64::new(1));
    let link = SwitchLink::new(
        driver_tx.clone(),
        next_device.clone(),
        stats.clone(),
        data_dir.to_path_buf(),
    );
    let network = quic_loop::spawn(socket, server_config, driver_tx.clone(), stats, next_device)
        .map_err(|e| ServerError::Bind(addr, e))?;
    let ingress = if config.ingress.enabled {
        Some(
            crate::ingress::start(
                &config.ingress,
                data_dir,
                link,
                plugins_for_ingress,
                config.directory.clone(),
                config
                    .ingress
                    .tls
                    .then(|| endpoint::https_config(&identity))
                    .transpose()?,
            )
            .await?,
        )
    } else {
        None
    };
    info!(%addr, fingerprint = %identity.fingerprint, data_dir = %data_dir.display(), "callswitch listening");
    Ok(ServerHandle {
        addr,
        fingerprint: identity.fingerprint,
        admin_token,
        data_dir: data_dir.to_path_buf(),
        http_addr: ingress.as_ref().map(|i| i.addr),
        ingress,
        network,
        driver_tx,
        driver,
    })
}

impl ServerHandle {
    /// Ends and records every call, tells every client, closes the endpoint.
    pub async fn shutdown(mut self) {
        self.network.stop_accepting();
        drop(self.ingress.take());
        let (done, wait) = oneshot::channel();
        if self.driver_tx.send(Input::Shutdown { done }).await.is_ok() {
            let _ = wait.await;
        }
        let _ = self.driver.await;
        // Clients get a moment to read their last messages and leave.
        self.network.shutdown().await;
        info!("callswitch stopped");
    }
}
