//! The `callswitch` binary: parses the command line, sets up logging
//! (`RUST_LOG`, default `info` for serve) and runs the subcommand.

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    // One worker per CPU this process may run on: under `taskset` a worker
    // per machine CPU would make workers take turns on one core (measured:
    // +25% CPU per relayed datagram, docs/BENCHMARKS.md).
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
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
