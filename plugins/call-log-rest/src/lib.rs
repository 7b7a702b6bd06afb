//! `call-log-rest`: an adapter plugin serving the TeamViewer Frontline RTC
//! call-log API (`POST /rtc/createCall`, `GET /rtc/getCallLogById`) on the
//! switch's HTTP ingress.
//!
//! Grants: `log`, `kv`, `clock`, `calls`, `config`, `devices` (no
//! `streams`: the plugin never upgrades a request). Setting: `db_ids`, the
//! vendor's integer user ids as switch users (`"8=alice,9=bob"`).
//!
//! This file owns the map and the export glue only:
//!
//! | module      | owns                                                        |
//! |-------------|-------------------------------------------------------------|
//! | `host`      | the [`host::Host`] trait: the switch services used         |
//! | `body`      | reading the request body shallowly (bounded memory)         |
//! | `model`     | the JSON shapes: request, stored log, CallLog, errors       |
//! | `ids`       | callId generation / checking, the `db_ids` setting          |
//! | `routes`    | HTTP routing, auth, `createCall`, `getCallLogById`          |
//! | `store`     | call logs in `kv`, and the CallLog view of one              |
//! | `events`    | switch call events → `callEvents`                           |
//! | `broker`    | `on-device-event`: the broker case, closing ended devices   |
//! | `testing`   | (tests only) a fake switch implementing `Host`              |
//!
//! The WIT bindings exist only on wasm32; everything else is plain Rust
//! that the unit tests run natively against a fake switch.

// Natively (outside tests) nothing calls the logic: the glue is wasm32-only.
#![cfg_attr(all(not(target_arch = "wasm32"), not(test)), allow(dead_code))]

mod body;
mod broker;
mod events;
mod host;
mod ids;
mod model;
mod routes;
mod store;
#[cfg(test)]
mod testing;

#[cfg(target_arch = "wasm32")]
// The generated bindings have functions with many parameters.
#[allow(clippy::too_many_arguments)]
mod wasm {
    wit_bindgen::generate!({ path: "../../wit", world: "adapter" });

    use callswitch::plugin::ingress_types::{Header, HttpResponse};
    use callswitch::plugin::types::Identity;
    use callswitch::plugin::{calls, clock, config, devices, kv, log};

    use crate::host::{Host, Level, SwitchError, User};

    /// The switch, through the generated imports.
    struct Switch;

    fn user(identity: Identity) -> User {
        User {
            id: identity.id,
            name: identity.name,
            numbers: identity.numbers,
        }
    }

    fn switch_error(e: devices::SwitchError) -> SwitchError {
        SwitchError {
            code: e.code,
            message: e.message,
        }
    }

    impl Host for Switch {
        fn authenticate(&self, token: &str) -> Result<User, SwitchError> {
            devices::authenticate(token).map(user).map_err(switch_error)
        }
        fn find_user(&self, target: &str) -> Option<User> {
            calls::find_user(target).map(user)
        }
        fn open_device(&self, token: &str, label: &str) -> Result<u64, SwitchError> {
            devices::open(token, label, false)
                .map(|d| d.device)
                .map_err(switch_error)
        }
        fn request(&self, device: u64, request: &str) -> Result<String, SwitchError> {
            devices::request(device, request).map_err(switch_error)
        }
        fn close_device(&self, device: u64) {
            devices::close(device);
        }
        fn call_record(&self, call_id: &str) -> Option<String> {
            devices::call_record(call_id)
        }
        fn live_events(&self, call_id: &str) -> Option<String> {
            devices::live_events(call_id)
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
        fn now_ms(&self) -> u64 {
            clock::now_ms()
        }
        fn monotonic_ms(&self) -> u64 {
            clock::monotonic_ms()
        }
        fn config(&self, key: &str) -> Option<String> {
            config::get(key)
        }
        fn log(&self, level: Level, message: &str) {
            let level = match level {
                Level::Debug => log::Level::Debug,
                Level::Info => log::Level::Info,
                Level::Warn => log::Level::Warn,
            };
            log::log(level, message);
        }
    }

    struct Plugin;

    impl Guest for Plugin {
        fn handle_http(request: HttpRequest) -> HttpReply {
            let headers: Vec<(String, String)> = request
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect();
            let response = crate::routes::handle(
                &Switch,
                &crate::routes::Request {
                    method: &request.method,
                    path: &request.path,
                    query: &request.query,
                    headers: &headers,
                    body: &request.body,
                },
            );
            HttpReply::Respond(HttpResponse {
                status: response.status,
                headers: response
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                body: response.body,
            })
        }

        // The plugin never answers `upgrade`, so it has no streams.
        fn on_stream_open(_stream_id: u64, _context: String) {}
        fn on_stream_message(_stream_id: u64, _message: StreamMessage) {}
        fn on_stream_close(_stream_id: u64) {}

        fn on_device_event(device: u64, event: String) {
            crate::broker::on_device_event(&Switch, device, &event);
        }
    }

    export!(Plugin);
}
