//! `voice-proxy`: an adapter plugin that proxies the Self SDK voice
//! negotiation messages (`chat.voice.setup/start/accept/busy/stop/summary`)
//! between a customer and an operator who do not address each other
//! directly, over the switch's application messages, and mirrors each
//! negotiation as a switch call (start = ringing, accept = active,
//! busy = declined, stop = ended) so that it shows in `callswitch calls`,
//! in call records and in the call-log API.
//!
//! Clients hold a WebSocket at `GET /voice/socket` (mounted at `/voice/`)
//! with `Authorization: Bearer <token>` and exchange the messages as JSON
//! text frames. docs/VOICE-PROXY.md is the operator's guide.
//!
//! Grants: `log`, `kv`, `calls`, `config`, `streams`, `devices`.
//! Settings: `operators` (user names, comma separated), `operator_name`.
//!
//! Map of the crate:
//! - `lib.rs` (this file): the component's export glue, which turns the wit
//!   bindings into the plain types below and keeps the plugin's state;
//! - `host.rs`: the `Host` trait, the switch as the rest of the crate sees it;
//! - `http.rs`: requests, replies, bearer tokens, the JSON error body;
//! - `sockets.rs`: the socket route, sockets opening and closing, the
//!   switch's events (delivery of `message` events to the sockets);
//! - `proxy.rs`: the voice messages a socket sends, the mirrored call;
//! - `voice.rs`: the voice messages' JSON, re-addressing, the error frame;
//! - `store.rs`: the sessions (`cid` -> customer, operator, call) in `kv`;
//! - `state.rs`: what the plugin remembers in memory (sockets, call legs);
//! - `settings.rs`: the `[plugin.config]` settings;
//! - `flow_tests.rs` (tests only): whole flows against a fake switch.
//!
//! Only `lib.rs` touches the bindings, and only when built for wasm: the
//! rest compiles natively, so `cargo test` runs it against a fake switch.

pub mod host;
pub mod http;
pub mod proxy;
pub mod settings;
pub mod sockets;
pub mod state;
pub mod store;
pub mod voice;

#[cfg(test)]
mod flow_tests;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;

    use crate::host::{Host, Level, SwitchError, User};
    use crate::http::{Reply, Request};
    use crate::state::State;
    use crate::{proxy, sockets};

    /// The generated bindings; their glue functions take as many arguments
    /// as the flattened wit signatures have.
    #[allow(clippy::too_many_arguments)]
    mod bindings {
        wit_bindgen::generate!({ path: "../../wit", world: "adapter" });
    }

    use bindings::callswitch::plugin::ingress_types::{
        Header, HttpReply, HttpRequest, HttpResponse, StreamMessage,
    };
    use bindings::callswitch::plugin::types::Identity;
    use bindings::callswitch::plugin::{calls, config, devices, ingress_types, kv, log, streams};

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

        fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
            kv::get(key)
        }

        fn kv_set(&self, key: &str, value: &[u8]) {
            kv::set(key, value);
        }

        fn kv_delete(&self, key: &str) {
            kv::delete(key);
        }

        fn kv_keys(&self, prefix: &str) -> Vec<String> {
            kv::keys(prefix)
        }

        fn config(&self, key: &str) -> Option<String> {
            config::get(key)
        }

        fn find_user(&self, target: &str) -> Option<User> {
            calls::find_user(target).map(user)
        }

        fn online_devices(&self, user: &str) -> Vec<String> {
            calls::online_devices(user)
        }

        fn live_call_ids(&self) -> Vec<String> {
            calls::list_calls()
                .into_iter()
                .map(|call| call.id)
                .collect()
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

        fn send_text(&self, stream: u64, text: &str) -> Result<(), String> {
            streams::send(stream, &StreamMessage::Text(text.to_owned()))
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
                websocket: request.websocket,
            };
            let mut reply = Reply::error(500, "unanswered");
            with_state(|state| reply = sockets::handle_http(&WitHost, state, &request));
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
            with_state(|state| sockets::on_stream_open(&WitHost, state, stream_id, &context));
        }

        /// Text frames are voice messages; binary frames are ignored.
        fn on_stream_message(stream_id: u64, message: StreamMessage) {
            if let StreamMessage::Text(text) = message {
                with_state(|state| proxy::on_text(&WitHost, state, stream_id, &text));
            }
        }

        fn on_stream_close(stream_id: u64) {
            with_state(|state| sockets::on_stream_close(&WitHost, state, stream_id));
        }

        fn on_device_event(device: u64, event: String) {
            with_state(|state| sockets::on_device_event(&WitHost, state, device, &event));
        }
    }

    bindings::export!(Component with_types_in bindings);
}
