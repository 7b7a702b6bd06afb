//! The `callswitch` command: `serve` runs the switch; `dial` and `listen`
//! are a terminal phone; `calls`, `call-log`, `hangup`, `users` and `stats`
//! administer a running switch; `hash-token` makes config token digests.
//! This is the binary's edge, so errors are `anyhow`.

mod admin;
mod audio;
mod phone;
mod remote;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use remote::Remote;

/// A programmable call switch.
#[derive(Debug, Parser)]
#[command(name = "callswitch", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the switch (embedded default config unless --config).
    Serve {
        /// TOML config file (see examples/switch.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (certificate, admin token, records); overrides the config.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Place a call and exchange audio.
    Dial(phone::DialArgs),
    /// Wait for calls on a user's behalf.
    Listen(phone::ListenArgs),
    /// List live calls.
    Calls {
        #[command(flatten)]
        remote: Remote,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show the record of an ended call.
    CallLog {
        call_id: uuid::Uuid,
        #[command(flatten)]
        remote: Remote,
    },
    /// End a live call for everyone.
    Hangup {
        call_id: uuid::Uuid,
        #[command(flatten)]
        remote: Remote,
    },
    /// List users and the devices they are online on.
    Users {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        json: bool,
    },
    /// Show counters: connections, calls, frames relayed and dropped.
    Stats {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        json: bool,
    },
    /// List loaded plugins, or reload them.
    Plugins {
        #[command(subcommand)]
        action: Option<PluginAction>,
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        json: bool,
    },
    /// Print the config digest of a token (reads stdin when TOKEN is absent).
    HashToken { token: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// Reload one plugin (or all) from its file; the old version keeps
    /// serving if the new one fails to load.
    Reload { name: Option<String> },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, data_dir } => serve::serve(config, data_dir).await,
        Command::Dial(args) => phone::dial(args).await,
        Command::Listen(args) => phone::listen(args).await,
        Command::Calls { remote, json } => admin::calls(remote, json).await,
        Command::CallLog { call_id, remote } => admin::call_log(remote, call_id).await,
        Command::Hangup { call_id, remote } => admin::hangup(remote, call_id).await,
        Command::Users { remote, json } => admin::users(remote, json).await,
        Command::Stats { remote, json } => admin::stats(remote, json).await,
        Command::Plugins {
            action,
            remote,
            json,
        } => admin::plugins(remote, action, json).await,
        Command::HashToken { token } => {
            let token = match token {
                Some(t) => t,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            anyhow::ensure!(!token.is_empty(), "the token is empty");
            println!("{}", crate::switch::hash_token(&token));
            Ok(())
        }
    }
}
