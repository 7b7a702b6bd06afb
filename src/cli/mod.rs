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
    /// Measure the switch under load (loopback only; bounded).
    Load(LoadArgs),
    /// The plain UDP relay the load generator uses as its baseline.
    #[command(hide = true)]
    UdpRelay {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        addr_file: PathBuf,
    },
    /// Print the config digest of a token (reads stdin when TOKEN is absent).
    HashToken { token: Option<String> },
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// `relay`: audio between call pairs; `setup`: call set-ups per second;
    /// `overload`: `--calls` calls at the switch's admission limit, measured
    /// alone and then while `--callers` clients keep dialling (and are
    /// refused).
    #[arg(long, default_value = "relay")]
    pub mode: String,
    /// Concurrent 1:1 calls (relay mode), at most 5000.
    #[arg(long, default_value_t = 100)]
    pub calls: usize,
    /// Dials per second of all `--callers` together (overload mode; 0:
    /// each dials again as soon as it is answered).
    #[arg(long, default_value_t = 0)]
    pub dial_rate: u32,
    /// Concurrent callers (setup mode), or dialers (overload mode).
    #[arg(long, default_value_t = 20)]
    pub callers: usize,
    /// Warm-up before measuring.
    #[arg(long, default_value = "2s", value_parser = phone::parse_duration)]
    pub warmup: std::time::Duration,
    /// Measurement window (at most 300 s).
    #[arg(long, default_value = "10s", value_parser = phone::parse_duration)]
    pub duration: std::time::Duration,
    /// Pin the switch (and the UDP baseline relay) to this CPU.
    #[arg(long)]
    pub switch_cpu: Option<usize>,
    /// Skip the plain UDP relay baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Policy plugins to load in the switch (copies of max-calls).
    #[arg(long, default_value_t = 0)]
    pub plugins: usize,
    /// The `callswitch` binary to run as the switch (default: this one),
    /// e.g. another build to compare with in the same script, or a wrapper
    /// that runs it under a profiler.
    #[arg(long)]
    pub switch_bin: Option<std::path::PathBuf>,
    #[arg(long)]
    pub json: bool,
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
        Command::Load(args) => load(args).await,
        Command::UdpRelay { listen, addr_file } => {
            Ok(crate::loadgen::run_udp_relay(listen, &addr_file)?)
        }
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

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    use crate::loadgen::{relay_table, run_overload, run_quic, run_setup, run_udp, LoadOptions};
    let opts = LoadOptions {
        switch_bin: match args.switch_bin {
            Some(bin) => bin,
            None => std::env::current_exe()?,
        },
        calls: args.calls,
        warmup: args.warmup,
        duration: args.duration,
        switch_cpu: args.switch_cpu,
        baseline: !args.no_baseline,
        plugins: args.plugins,
        progress: true,
    };
    match args.mode.as_str() {
        "relay" => {
            let mut runs = Vec::new();
            if opts.baseline {
                runs.push(run_udp(&opts).await?);
            }
            runs.push(run_quic(&opts).await?);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print!("{}", relay_table(&runs));
            }
        }
        "setup" => {
            let f = run_setup(&opts, args.callers).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                println!(
                    "plugins {}  callers {}  set-ups {}  per second {:.0}  failures {}  switch cpu {:.0}%",
                    f.plugins, f.callers, f.setups, f.setups_per_s, f.failures, f.switch_cpu_share_pct
                );
            }
        }
        "overload" => {
            let f = run_overload(&opts, args.callers, args.dial_rate).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                print!("{}", relay_table(&[f.quiet.clone(), f.pressed.clone()]));
                println!(
                    "dialers {}  dial rate {}  refused {} ({:.0}/s)  admitted {}  other errors {}",
                    f.dialers, f.dial_rate, f.refused, f.refused_per_s, f.admitted, f.other_errors
                );
            }
        }
        other => anyhow::bail!("unknown mode `{other}`: use relay, setup or overload"),
    }
    Ok(())
}
