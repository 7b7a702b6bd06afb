//! # callswitch
//!
//! A programmable call switch. A QUIC core registers users and their devices,
//! sets up and tracks calls (1:1 and group), relays their audio as QUIC
//! datagrams and records every call.
//!
//! ## Map of the crate
//!
//! | module | owns |
//! |---|---|
//! | [`wire`] | the control protocol: frames, messages, the datagram header (pure encode/decode) |
//! | [`switch`] | the sans-IO core: users, devices, calls, their state machine and event log |
//! | [`server`] | the runtime: one network loop driving quinn-proto for every QUIC connection, the control driver, the media relay, timers |
//! | [`cdr`] | call detail records: an append-only JSON-lines file |
//! | [`config`] | the TOML configuration and its embedded default |
//! | [`plugins`] | the wasmtime host: loading, sandboxing and chaining WebAssembly policy plugins |
//! | [`client`] | the Rust client library (CLI, tests, examples) |
//! | [`loadgen`] | the load generator and its plain-UDP baseline |
//! | [`cli`] | the `callswitch` command's subcommands |
//!
//! Dependencies point down: `cli -> server, client -> switch, cdr -> wire`.
//! `switch` knows nothing of tokio, quinn or files.
//!
//! ## The run loop
//!
//! The runtime feeds the core inputs (`connect`, `dial`, `answer`, ...,
//! `handle_timeout`) with the current time, then drains
//! [`switch::Switch::poll_effect`]: messages to send, media routes to
//! install, records to append; and sleeps until
//! [`switch::Switch::poll_timeout`]. See docs/ARCHITECTURE.md.

pub mod cdr;
pub mod cli;
pub mod client;
pub mod config;
pub mod ingress;
pub mod loadgen;
pub mod plugins;
pub mod server;
pub mod switch;
pub mod wire;
