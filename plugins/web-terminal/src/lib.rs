//! `web-terminal`: an adapter plugin that serves the Working Group Two
//! `WebTerminalService` gRPC API (`wgtwo.webterminal.v0`, mounted at
//! `/wgtwo.webterminal.v0.WebTerminalService/`), so that a client generated
//! from its proto registers terminals that make and receive the switch's
//! calls like any other device of their user.
//!
//! Grants: `log`, `clock`, `calls`, `config`, `streams`, `devices`.
//! Setting: `max_offers_per_second` (default 10; `0` for no limit).
//!
//! Map of the crate:
//! - `lib.rs` (this file): the component's export glue, which turns the wit
//!   bindings into the plain types below and keeps the plugin's state;
//! - `host.rs`: the `Host` trait, the switch as the rest of the crate sees it;
//! - `proto.rs`: the protobuf messages (`prost` derives matching
//!   `proto/wgtwo/webterminal/v0/webterminal.proto`);
//! - `grpc.rs`: requests, the service's paths, bearer tokens, gRPC status
//!   codes and trailers-only refusals;
//! - `terminal.rs`: streams opening and closing, and the terminals' messages;
//! - `events.rs`: the switch's events on the terminals' devices;
//! - `presence.rs`: `InCall` / `Idle` for calls on the user's other devices;
//! - `state.rs`: what the plugin remembers (terminals, legs, SDP);
//! - `wire.rs`: the switch's JSON events and requests, UUIDs, placeholder SDP;
//! - `flow_tests.rs` (tests only): whole flows against a fake switch.
//!
//! Only `lib.rs` touches the bindings, and only when built for wasm: the
//! rest compiles natively, so `cargo test` runs it against a fake switch.

pub mod events;
pub mod grpc;
pub mod host;
pub mod presence;
pub mod proto;
pub mod state;
pub mod terminal;
pub mod wire;

#[cfg(test)]
mod flow_tests;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;

    use crate::grpc::{Reply, Request};
    use crate::host::{Host, Level, LiveCall, PartyState, SwitchError, User};
    use crate::state::State;
    use crate::{events, grpc, presence, terminal};

    /// The generated bindings; their glue functions take as many arguments
    /// as the flattened wit signatures have.
    #[allow(clippy::too_many_arguments)]
    mod bindings {
        wit_bindgen::generate!({ path: "../../wit", world: "adapter" });
    }

    use bindings::callswitch::plugin::ingress_types::{
        Header, HttpReply, HttpRequest, HttpResponse, StreamMessage,
    };
    use bindings::callswitch::plugin::types::{Identity, PartyStatus};
    use bindings::callswitch::plugin::{
        calls, clock, config, devices, ingress_types, log, streams,
    };

    thread_local! {
        /// The plugin's memory. The host calls the plugin one call at a
        /// time and host functions never call back into it, so the state is
        /// borrowed for the whole of each call.
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    /// Runs `f` on the state, then brings the terminals' `InCall` / `Idle`
    /// up to date (see `presence`).
    fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
        STATE.with(|state| {
            let mut state = state.borrow_mut();
            let out = f(&mut state);
            presence::refresh(&WitHost, &mut state);
            out
        })
    }

    fn user(identity: Identity) -> User {
        User {
            id: identity.id,
            name: identity.name,
            numbers: identity.numbers,
        }
    }

    fn switch_error(error: ingress_types::SwitchError) -> SwitchError {
        SwitchError {
            code: error.code,
            message: error.message,
        }
    }

    /// The host functions, over the wit imports.
    struct WitHost;

    impl Host for WitHost {
        fn log(&self, level: Level, message: &str) {
            let level = match level {
                Level::Debug => log::Level::Debug,
                Level::Info => log::Level::Info,
                Level::Warn => log::Level::Warn,
            };
            log::log(level, message);
        }

        fn monotonic_ms(&self) -> u64 {
            clock::monotonic_ms()
        }

        fn config(&self, key: &str) -> Option<String> {
            config::get(key)
        }

        fn calls_of(&self, user: &str) -> Vec<LiveCall> {
            calls::calls_of(user)
                .into_iter()
                .map(|call| LiveCall {
                    id: call.id,
                    parties: call
                        .parties
                        .into_iter()
                        .map(|party| {
                            let state = match party.status {
                                PartyStatus::Ringing => PartyState::Ringing,
                                PartyStatus::Joined => PartyState::Joined,
                                _ => PartyState::Out,
                            };
                            (party.user.id, state)
                        })
                        .collect(),
                })
                .collect()
        }

        fn find_user(&self, target: &str) -> Option<User> {
            calls::find_user(target).map(user)
        }

        fn online_devices(&self, user: &str) -> Vec<String> {
            calls::online_devices(user)
        }

        fn authenticate(&self, token: &str) -> Result<User, SwitchError> {
            devices::authenticate(token).map(user).map_err(switch_error)
        }

        fn open_device(
            &self,
            token: &str,
            label: &str,
            rings: bool,
        ) -> Result<(u64, User), SwitchError> {
            devices::open(token, label, rings)
                .map(|info| (info.device, user(info.user)))
                .map_err(switch_error)
        }

        fn request(&self, device: u64, request: &str) -> Result<String, SwitchError> {
            devices::request(device, request).map_err(switch_error)
        }

        fn close_device(&self, device: u64) {
            devices::close(device);
        }

        fn send(&self, stream: u64, message: Vec<u8>) -> Result<(), String> {
            streams::send(stream, &StreamMessage::Binary(message))
        }

        fn close_stream(&self, stream: u64, code: u16, reason: &str) {
            streams::close(stream, code, reason);
        }
    }

    struct Component;

    impl bindings::Guest for Component {
        fn handle_http(request: HttpRequest) -> HttpReply {
            let request = Request {
                method: request.method,
                path: request.path,
                headers: request
                    .headers
                    .into_iter()
                    .map(|header| (header.name, header.value))
                    .collect(),
                grpc: request.grpc,
            };
            match with_state(|state| grpc::handle_http(&WitHost, state, &request)) {
                Reply::Respond(response) => HttpReply::Respond(HttpResponse {
                    status: response.status,
                    headers: response
                        .headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect(),
                    body: response.body,
                }),
                Reply::Upgrade(context) => HttpReply::Upgrade(context),
            }
        }

        fn on_stream_open(stream_id: u64, context: String) {
            with_state(|state| terminal::on_stream_open(&WitHost, state, stream_id, &context));
        }

        fn on_stream_message(stream_id: u64, message: StreamMessage) {
            match message {
                StreamMessage::Binary(bytes) => with_state(|state| {
                    terminal::on_stream_message(&WitHost, state, stream_id, &bytes)
                }),
                // The host sends only binary messages on a gRPC stream.
                StreamMessage::Text(_) => {}
            }
        }

        fn on_stream_close(stream_id: u64) {
            with_state(|state| terminal::on_stream_close(&WitHost, state, stream_id));
        }

        fn on_device_event(device: u64, event: String) {
            with_state(|state| events::on_device_event(&WitHost, state, device, &event));
        }
    }

    bindings::export!(Component with_types_in bindings);
}
