//! `rest-hooks`: a policy plugin that puts the switch's decisions and call
//! events to an operator's backend over HTTP, the way Flashphoner's Web
//! Call Server (WCS 5.2) "REST hooks" do: every hook POSTs
//! `<url>/<method>` with a JSON body and expects 200 with JSON.
//!
//! Grants: `log`, `kv`, `clock`, `config`, `http-client` (with the backend's
//! `host:port` in the plugin's `http_hosts`).
//!
//! | hook          | method(s)                                  | a 403 means            |
//! |---------------|--------------------------------------------|------------------------|
//! | `on-connect`  | `connect`, then `ConnectionStatusEvent`    | refuse the connection  |
//! | `on-dial`     | `call`, then `OnCallEvent` per callee      | deny the call          |
//! | `on-answer`   | `answer`                                   | deny the answer        |
//! | `on-transfer` | `transfer`                                 | deny the transfer      |
//! | `on-message`  | `sendMessage`, then `MessageStatusEvent`   | deny the message       |
//! | `on-event`    | `CallStatusEvent` (NEW, RING, ESTABLISHED, HOLD, BUSY, FAILED, FINISH) | (notification) |
//!
//! Settings (`[plugin.config]`): `url` (required), `app_key` and `node_id`
//! (default `callswitch`), `timeout_ms` (default 15000), `rest_on_error`
//! (`LOG` or `FAIL`, default `LOG`: the `restOnError` of methods a user's
//! `restClientConfig` does not set), `event_attempts` (default 1),
//! `outbox_max` (default 1000: events that failed wait in a kv outbox and
//! are retried, in order, at the start of later hooks, with backoff). A
//! missing or malformed setting makes every hook trap, so the operator's
//! `on_error` applies.
//!
//! Map of the crate:
//! - `lib.rs` (this file): the component's export glue over the bindings;
//! - `host.rs`: the `Host` trait and plain data, the switch as the rest of
//!   the crate sees it;
//! - `settings.rs`: the plugin's settings and `restClientConfig`;
//! - `hooks.rs`: what each hook sends and how answers become verdicts;
//! - `tests.rs` (tests only): the hooks against a fake switch and backend.
//!
//! Only `lib.rs` touches the bindings, and only when built for wasm.

pub mod hooks;
pub mod host;
pub mod settings;

#[cfg(test)]
mod tests;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;

    use crate::hooks::{self, State};
    use crate::host::{self, Call, Event, Host, Level, Response, User};
    use crate::settings::Settings;

    /// The generated bindings.
    #[allow(clippy::too_many_arguments)]
    mod bindings {
        wit_bindgen::generate!({ path: "../../wit", world: "policy-actions" });
    }

    use bindings::callswitch::plugin::http_client::{self, HttpRequest};
    use bindings::callswitch::plugin::types::{CallAction, CallInfo, Identity, PartyStatus};
    use bindings::callswitch::plugin::{clock, config, kv, log};
    use bindings::{CallEvent, ConnectVerdict, DialVerdict, Verdict};

    thread_local! {
        /// The settings, read at the first hook call.
        static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
        /// What the plugin remembers between hooks. The host calls hooks
        /// one at a time and never calls back into the plugin.
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    fn settings() -> Settings {
        SETTINGS.with(|cell| {
            cell.borrow_mut()
                .get_or_insert_with(|| match Settings::parse(config::get) {
                    Ok(settings) => settings,
                    Err(e) => {
                        log::log(log::Level::Error, &format!("rest-hooks: bad setting: {e}"));
                        panic!("rest-hooks: {e}");
                    }
                })
                .clone()
        })
    }

    fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
        STATE.with(|state| f(&mut state.borrow_mut()))
    }

    /// The host functions, over the wit imports.
    struct WitHost;

    impl Host for WitHost {
        fn log(&self, level: Level, message: &str) {
            let level = match level {
                Level::Debug => log::Level::Debug,
                Level::Info => log::Level::Info,
                Level::Warn => log::Level::Warn,
                Level::Error => log::Level::Error,
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

        fn monotonic_ms(&self) -> u64 {
            clock::monotonic_ms()
        }

        fn post_json(&self, url: &str, body: Vec<u8>, timeout_ms: u32) -> Result<Response, String> {
            http_client::send(&HttpRequest {
                method: "POST".into(),
                url: url.into(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("accept".into(), "application/json".into()),
                ],
                body,
                timeout_ms: Some(timeout_ms),
            })
            .map(|r| Response {
                status: r.status,
                body: r.body,
            })
        }
    }

    fn user(identity: Identity) -> User {
        User {
            id: identity.id,
            name: identity.name,
            numbers: identity.numbers,
            device: identity.device,
        }
    }

    fn call(info: CallInfo) -> Call {
        Call {
            id: info.id,
            caller: user(info.caller),
            parties: info
                .parties
                .into_iter()
                .map(|p| {
                    let status = match p.status {
                        PartyStatus::Ringing => host::PartyStatus::Ringing,
                        PartyStatus::Joined => host::PartyStatus::Joined,
                        PartyStatus::Left => host::PartyStatus::Left,
                        PartyStatus::Declined => host::PartyStatus::Declined,
                        PartyStatus::Busy => host::PartyStatus::Busy,
                        PartyStatus::NoAnswer => host::PartyStatus::NoAnswer,
                        PartyStatus::Unavailable => host::PartyStatus::Unavailable,
                    };
                    (user(p.user), status)
                })
                .collect(),
        }
    }

    fn event(event: CallEvent) -> Event {
        match event {
            CallEvent::Ringing(r) => Event::Ringing(user(r.user)),
            CallEvent::Answered(u) => Event::Answered(user(u)),
            CallEvent::Joined(u) => Event::Joined(user(u)),
            CallEvent::Left(u) => Event::Left(user(u)),
            CallEvent::Held(u) => Event::Held(user(u)),
            CallEvent::Resumed(u) => Event::Resumed(user(u)),
            CallEvent::Busy(u) => Event::Busy(user(u)),
            CallEvent::Declined(u) => Event::Declined(user(u)),
            CallEvent::NoAnswer(u) => Event::NoAnswer(user(u)),
            CallEvent::Dtmf(d) => Event::Dtmf(user(d.user)),
            CallEvent::Ended(reason) => Event::Ended(reason),
        }
    }

    fn verdict(v: host::Verdict) -> Verdict {
        match v {
            host::Verdict::Allow => Verdict::Allow,
            host::Verdict::Deny(reason) => Verdict::Deny(reason),
        }
    }

    struct Component;

    impl bindings::Guest for Component {
        fn on_connect(client: Identity) -> ConnectVerdict {
            match hooks::on_connect(&WitHost, &settings(), &user(client)) {
                host::ConnectVerdict::Admit(label) => ConnectVerdict::Admit(label),
                host::ConnectVerdict::Refuse(reason) => ConnectVerdict::Refuse(reason),
            }
        }

        fn on_dial(info: CallInfo, caller: Identity, targets: Vec<Identity>) -> DialVerdict {
            let s = settings();
            let targets: Vec<User> = targets.into_iter().map(user).collect();
            let v = with_state(|state| {
                hooks::on_dial(&WitHost, &s, state, &call(info), &user(caller), &targets)
            });
            match v {
                host::DialVerdict::Allow => DialVerdict::Allow,
                host::DialVerdict::Deny(reason) => DialVerdict::Deny(reason),
                host::DialVerdict::Redirect(targets) => DialVerdict::Redirect(targets),
            }
        }

        fn on_answer(info: CallInfo, answerer: Identity) -> Verdict {
            verdict(hooks::on_answer(
                &WitHost,
                &settings(),
                &call(info),
                &user(answerer),
            ))
        }

        fn on_transfer(info: CallInfo, from: Identity, to: Identity) -> Verdict {
            verdict(hooks::on_transfer(
                &WitHost,
                &settings(),
                &call(info),
                &user(from),
                &user(to),
            ))
        }

        fn on_message(sender: Identity, recipient: Identity, body: String) -> Verdict {
            verdict(hooks::on_message(
                &WitHost,
                &settings(),
                &user(sender),
                &user(recipient),
                &body,
            ))
        }

        fn on_event(info: CallInfo, e: CallEvent) {
            let s = settings();
            with_state(|state| hooks::on_event(&WitHost, &s, state, &call(info), &event(e)));
        }
    }

    impl bindings::exports::callswitch::plugin::actions::Guest for Component {
        fn on_action(info: CallInfo, actor: Identity, action: CallAction) -> Verdict {
            let action = match action {
                CallAction::Hold => hooks::Action::Hold,
                CallAction::Unhold => hooks::Action::Unhold,
                CallAction::Dtmf(digits) => hooks::Action::Dtmf(digits),
                CallAction::Hangup => hooks::Action::Hangup,
            };
            verdict(hooks::on_action(
                &WitHost,
                &settings(),
                &call(info),
                &user(actor),
                &action,
            ))
        }
    }

    bindings::export!(Component with_types_in bindings);
}
