//! `max-calls`: a policy plugin that answers `busy` when placing a call would
//! exceed a limit on live calls, per caller or on the whole switch.
//!
//! Grants: `config`, `calls`.
//!
//! Settings (non-negative integers; `0` disables that limit):
//! - `per_user` (default 2): how many live calls a user may be in (as caller
//!   or party) when placing another one;
//! - `total` (default 100): how many live calls the switch may carry.
//!
//! A call is live until it ends; the call being placed is not counted (the
//! switch's snapshot does not hold it yet). The limits are read with
//! `calls.count-calls`, which copies no call into the plugin, so a check
//! costs the same with 10 or 10,000 calls live.
//!
//! It exports `vet-dial` (world `policy-vetting`), the same decision
//! without the `call-info`, which the switch calls instead of `on-dial`.
//! Every other hook allows. A malformed setting makes the
//! hook trap, so the operator's `on_error` setting applies.

use std::sync::OnceLock;

wit_bindgen::generate!({ path: "../../wit", world: "policy-vetting" });

use callswitch::plugin::{calls, config};

/// The limits; fixed while the plugin is loaded.
struct Limits {
    per_user: usize,
    total: usize,
}

impl Limits {
    fn get() -> &'static Limits {
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        LIMITS.get_or_init(|| Limits {
            per_user: setting("per_user", 2),
            total: setting("total", 100),
        })
    }
}

/// Reads an integer setting, with `default` when it is not set.
fn setting(key: &str, default: usize) -> usize {
    config::get(key).map_or(default, |v| {
        v.trim().parse().unwrap_or_else(|_| {
            panic!("max-calls: `{key}` must be a non-negative integer, not {v:?}")
        })
    })
}

struct Plugin;

impl Guest for Plugin {
    fn on_connect(_client: Identity) -> ConnectVerdict {
        ConnectVerdict::Admit(None)
    }

    fn on_dial(_call: CallInfo, caller: Identity, _targets: Vec<Identity>) -> DialVerdict {
        decide(&caller)
    }

    fn on_answer(_call: CallInfo, _answerer: Identity) -> Verdict {
        Verdict::Allow
    }

    fn on_transfer(_call: CallInfo, _from: Identity, _to: Identity) -> Verdict {
        Verdict::Allow
    }

    fn on_message(_sender: Identity, _recipient: Identity, _body: String) -> Verdict {
        Verdict::Allow
    }

    fn on_event(_call: CallInfo, _event: CallEvent) {}
}

impl exports::callswitch::plugin::vetting::Guest for Plugin {
    fn vet_dial(_call_id: String, caller: Identity, _targets: Vec<Identity>) -> DialVerdict {
        decide(&caller)
    }
}

/// Busy when a limit is reached, counting the live calls without copying
/// them (`calls.count-calls`).
fn decide(caller: &Identity) -> DialVerdict {
    let limits = Limits::get();
    if limits.per_user > 0 {
        let mine = calls::count_calls(Some(&caller.id)) as usize;
        if mine >= limits.per_user {
            return DialVerdict::Busy(format!(
                "call limit reached: {} is already in {mine} calls (limit {} per user)",
                caller.name, limits.per_user
            ));
        }
    }
    if limits.total > 0 {
        let all = calls::count_calls(None) as usize;
        if all >= limits.total {
            return DialVerdict::Busy(format!(
                "call limit reached: the switch is carrying {all} calls (limit {} in total)",
                limits.total
            ));
        }
    }
    DialVerdict::Allow
}

export!(Plugin);
