//! The `callswitch` binary: parses the command line, sets up logging
//! (`RUST_LOG`, default `info` for serve) and runs the subcommand.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = callswitch::cli::Cli::parse();
    let default_level = match cli.command {
        callswitch::cli::Command::Serve { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    callswitch::cli::run(cli).await
}
