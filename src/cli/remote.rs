//! How the CLI reaches a switch: flags first, then what `serve` left in the
//! data directory (bound address, certificate, local admin token), so on
//! the switch's own machine no flag is needed.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::Args;

use crate::client::{Client, ClientOptions, Events, Welcome};
use crate::server::identity::{ADDR_FILE, ADMIN_TOKEN_FILE, CERT_FILE};
use crate::wire::cert_fingerprint;

#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Switch address (default: <data-dir>/server.addr, else 127.0.0.1:4433).
    #[arg(long, env = "CALLSWITCH_SERVER")]
    pub server: Option<SocketAddr>,
    /// SHA-256 fingerprint of the switch certificate (default: from <data-dir>/cert.der).
    #[arg(long, env = "CALLSWITCH_CERT_FINGERPRINT")]
    pub cert_fingerprint: Option<String>,
    /// Bearer token (default: the local admin token in <data-dir>/admin.token).
    #[arg(long, env = "CALLSWITCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The switch's data directory on this machine.
    #[arg(long, default_value = "./callswitch-data")]
    pub data_dir: PathBuf,
}

impl Remote {
    /// Client options for this remote, acting as `act_as` when given.
    pub fn options(
        &self,
        act_as: Option<String>,
        device: Option<String>,
    ) -> anyhow::Result<ClientOptions> {
        let server = match self.server {
            Some(s) => s,
            None => match std::fs::read_to_string(self.data_dir.join(ADDR_FILE)) {
                Ok(text) => text.trim().parse().with_context(|| {
                    format!("bad address in {}", self.data_dir.join(ADDR_FILE).display())
                })?,
                Err(_) => "127.0.0.1:4433".parse().expect("addr"),
            },
        };
        let fingerprint = match &self.cert_fingerprint {
            Some(f) => f.clone(),
            None => {
                let path = self.data_dir.join(CERT_FILE);
                let der = std::fs::read(&path).map_err(|e| {
                    anyhow!(
                        "no certificate at {} ({e}): pass --cert-fingerprint, or --data-dir of the running switch",
                        path.display()
                    )
                })?;
                cert_fingerprint(&der)
            }
        };
        let token = match &self.token {
            Some(t) => t.clone(),
            None => {
                let path = self.data_dir.join(ADMIN_TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .map_err(|e| {
                        anyhow!("no admin token at {} ({e}): pass --token", path.display())
                    })?
                    .trim()
                    .to_string()
            }
        };
        let mut opts = ClientOptions::new(server, fingerprint, token);
        opts.act_as = act_as;
        opts.device = device;
        Ok(opts)
    }

    pub async fn connect(
        &self,
        act_as: Option<String>,
        device: Option<String>,
    ) -> anyhow::Result<(Client, Events, Welcome)> {
        let opts = self.options(act_as, device)?;
        let server = opts.server;
        Client::connect(opts)
            .await
            .with_context(|| format!("connecting to the switch at {server}"))
    }
}
