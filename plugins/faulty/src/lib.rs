//! `faulty`: a policy plugin for tests that misbehaves on demand, to check
//! that the switch contains misbehaving plugins (deadline, memory cap,
//! invalid verdicts, `on_error`).
//!
//! Grants: `config`.
//!
//! Settings:
//! - `hook`: which hook misbehaves: `on-connect`, `on-dial` (the default),
//!   `vet-dial`, `on-answer`, `on-transfer`, `on-message`, `on-event`, or
//!   `any` for all.
//! - `mode`: what that hook does:
//!   - `ok` (the default): behaves, like every other hook;
//!   - `trap`: panics, which traps (`unreachable`) after printing a message
//!     to stderr;
//!   - `loop`: spins forever, until the switch interrupts it;
//!   - `oom`: allocates and fills 1 MiB blocks without bound, until an
//!     allocation fails at the memory cap, which aborts (traps);
//!   - `invalid`: in `on-dial` returns `redirect([])`, an empty redirect the
//!     switch must reject as invalid; other hooks behave as with `ok`;
//!   - `deny`: refuses / denies with the reason `faulty says no`
//!     (`on-event` cannot deny and just returns).
//!
//! Behaving hooks answer `admit(none)` / `allow`.
//!
//! It exports `vet-dial` (world `policy-vetting`), so the switch calls that
//! instead of `on-dial`: `vet-dial` does what `hook = "vet-dial"` says and
//! then what `on-dial` would, so a test configured for either sees it, and
//! one configured for `vet-dial` alone shows which export the switch calls.

use std::hint::black_box;
use std::sync::OnceLock;

wit_bindgen::generate!({ path: "../../wit", world: "policy-vetting" });

use callswitch::plugin::config;

const REASON: &str = "faulty says no";

/// What the configured hook does.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Trap,
    Loop,
    Oom,
    Invalid,
    Deny,
}

/// The mode `hook` runs in: the configured mode if `hook` is the configured
/// hook (or that is `any`), `Ok` otherwise. Trapping modes never return.
fn mode(hook: &str) -> Mode {
    static SETTINGS: OnceLock<(Mode, String)> = OnceLock::new();
    let (mode, target) = SETTINGS.get_or_init(|| {
        let mode = match config::get("mode").as_deref().map(str::trim) {
            None | Some("ok") => Mode::Ok,
            Some("trap") => Mode::Trap,
            Some("loop") => Mode::Loop,
            Some("oom") => Mode::Oom,
            Some("invalid") => Mode::Invalid,
            Some("deny") => Mode::Deny,
            Some(other) => panic!("faulty: unknown mode {other:?}"),
        };
        let hook = config::get("hook").map_or_else(|| "on-dial".into(), |h| h.trim().to_string());
        (mode, hook)
    });
    if target != hook && target != "any" {
        return Mode::Ok;
    }
    match mode {
        Mode::Trap => panic!("faulty: trapping in {hook} as configured"),
        Mode::Loop => spin(),
        Mode::Oom => exhaust_memory(),
        other => *other,
    }
}

/// Busy-loops forever; `black_box` keeps the loop from being optimised away.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocates and touches memory until allocation fails (and aborts).
fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xA5; 1 << 20]);
        black_box(&hoard);
    }
}

struct Plugin;

impl Guest for Plugin {
    fn on_connect(_client: Identity) -> ConnectVerdict {
        match mode("on-connect") {
            Mode::Deny => ConnectVerdict::Refuse(REASON.into()),
            _ => ConnectVerdict::Admit(None),
        }
    }

    fn on_dial(_call: CallInfo, _caller: Identity, _targets: Vec<Identity>) -> DialVerdict {
        dial_verdict(mode("on-dial"))
    }

    fn on_answer(_call: CallInfo, _answerer: Identity) -> Verdict {
        verdict(mode("on-answer"))
    }

    fn on_transfer(_call: CallInfo, _from: Identity, _to: Identity) -> Verdict {
        verdict(mode("on-transfer"))
    }

    fn on_message(_sender: Identity, _recipient: Identity, _body: String) -> Verdict {
        verdict(mode("on-message"))
    }

    fn on_event(_call: CallInfo, _event: CallEvent) {
        mode("on-event");
    }
}

impl exports::callswitch::plugin::vetting::Guest for Plugin {
    fn vet_dial(_call_id: String, _caller: Identity, _targets: Vec<Identity>) -> DialVerdict {
        match mode("vet-dial") {
            Mode::Ok => dial_verdict(mode("on-dial")),
            misbehaving => dial_verdict(misbehaving),
        }
    }
}

fn dial_verdict(mode: Mode) -> DialVerdict {
    match mode {
        Mode::Deny => DialVerdict::Deny(REASON.into()),
        Mode::Invalid => DialVerdict::Redirect(Vec::new()),
        _ => DialVerdict::Allow,
    }
}

fn verdict(mode: Mode) -> Verdict {
    match mode {
        Mode::Deny => Verdict::Deny(REASON.into()),
        _ => Verdict::Allow,
    }
}

export!(Plugin);
