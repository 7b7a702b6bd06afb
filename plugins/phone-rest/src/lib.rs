//! `phone-rest`: an adapter plugin that serves the Swiftarr "KrakenTalk"
//! phone API (mounted at `/api/v3/`) on the switch, so that its clients
//! call, and are called by, the switch's users.
//!
//! Grants: `log`, `clock`, `calls`, `streams`, `devices`.
//!
//! Map of the crate:
//! - `lib.rs` (this file): the component's export glue, which turns the wit
//!   bindings into the plain types below and keeps the plugin's state;
//! - `host.rs`: the `Host` trait, the switch as the rest of the crate sees it;
//! - `routes.rs`: the HTTP routes and their handlers;
//! - `events.rs`: streams opening and closing, switch events, ending calls;
//! - `state.rs`: what the plugin remembers (sockets, devices, calls);
//! - `wire.rs`: the JSON of the API and of the switch, and UUID forms;
//! - `http.rs`: requests, replies, the error body, `authorization` headers;
//! - `time.rs`: the API's UTC timestamps;
//! - `flow_tests.rs` (tests only): whole flows against a fake switch.
//!
//! Only `lib.rs` touches the bindings, and only when built for wasm: the
//! rest compiles natively, so `cargo test` runs it against a fake switch.

pub mod events;
pub mod host;
pub mod http;
pub mod routes;
pub mod state;
pub mod time;
pub mod wire;

#[cfg(test)]
mod flow_tests;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;

    use crate::host::{Engagement, Host, Level, LiveCall, Message, SwitchError, User};
    use crate::http::{Reply, Request};
    use crate::state::State;
    use crate::{events, routes};

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
    use bindings::callswitch::plugin::{calls, clock, devices, ingress_types, log, streams};

    thread_local! {
        /// The plugin's memory. The host calls the plugin one call at a
        /// time and host functions never call back into it, so the state is
        /// borrowed for the whole of each call.
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    fn with_state(f: impl FnOnce(&mut State)) {
        STATE.with(|state| f(&mut state.borrow_mut()));
    }

    fn user(identity: Identity) -> User {
        User {
            id: identity.id,
            name: identity.name,
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

        fn now_ms(&self) -> u64 {
            clock::now_ms()
        }

        fn monotonic_ms(&self) -> u64 {
            clock::monotonic_ms()
        }

        fn live_call_ids(&self) -> Vec<String> {
            calls::list_calls()
                .into_iter()
                .map(|call| call.id)
                .collect()
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
                            let engagement = match party.status {
                                PartyStatus::Ringing | PartyStatus::Joined => Engagement::Engaged,
                                _ => Engagement::Done,
                            };
                            (party.user.id, engagement)
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

        fn send(&self, stream: u64, message: Message) -> Result<(), String> {
            let message = match message {
                Message::Text(text) => StreamMessage::Text(text),
                Message::Binary(bytes) => StreamMessage::Binary(bytes),
            };
            streams::send(stream, &message)
        }

        fn close_stream(&self, stream: u64, code: u16, reason: &str) {
            streams::close(stream, code, reason);
        }

        fn attach_media(&self, stream: u64, device: u64, call_id: &str) -> Result<(), String> {
            streams::attach_media(stream, device, call_id)
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
                body: request.body,
                websocket: request.websocket,
            };
            let mut reply = Reply::ok();
            with_state(|state| reply = routes::handle_http(&WitHost, state, &request));
            match reply {
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
            with_state(|state| events::on_stream_open(&WitHost, state, stream_id, &context));
        }

        /// Client messages carry nothing the API acts on: the notification
        /// socket is server-to-client, a phone socket's binary frames go to
        /// the switch as media without coming here once its call has
        /// started (before, they come here and are dropped, as the original
        /// server drops a caller's frames until the callee's socket
        /// exists), and text frames are ignored as the original server
        /// ignores them.
        fn on_stream_message(_stream_id: u64, _message: StreamMessage) {}

        fn on_stream_close(stream_id: u64) {
            with_state(|state| events::on_stream_close(&WitHost, state, stream_id));
        }

        fn on_device_event(device: u64, event: String) {
            with_state(|state| events::on_device_event(&WitHost, state, device, &event));
        }
    }

    bindings::export!(Component with_types_in bindings);
}
