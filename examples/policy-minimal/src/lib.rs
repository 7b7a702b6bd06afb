//! A minimal callswitch policy plugin: refuses calls to premium-rate
//! numbers (`+1900...`) and allows everything else. It uses no host
//! interface, so it needs no grants.
//!
//! Build: `cargo build --release --target wasm32-wasip2`, which produces the
//! component `target/wasm32-wasip2/release/policy_minimal.wasm`.

wit_bindgen::generate!({ path: "../../wit", world: "policy" });

struct Policy;

impl Guest for Policy {
    fn on_dial(_call: CallInfo, _caller: Identity, targets: Vec<Identity>) -> DialVerdict {
        match targets
            .iter()
            .find(|t| t.numbers.iter().any(|n| n.starts_with("+1900")))
        {
            Some(t) => DialVerdict::Deny(format!(
                "calls to premium-rate numbers are not allowed ({})",
                t.name
            )),
            None => DialVerdict::Allow,
        }
    }

    fn on_connect(_client: Identity) -> ConnectVerdict {
        ConnectVerdict::Admit(None)
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

export!(Policy);
