//! `allowlist`: a policy plugin that lets a call through only when a rule
//! allows its caller to call every one of its targets.
//!
//! Grants: `config`.
//!
//! Settings:
//! - `rules`: rules separated by `;` or newlines, each
//!   `CALLER_PATTERN -> CALLEE_PATTERN`, e.g. `alice -> *; +1555* -> +1555*`.
//!   A pattern matches a user when it matches the user's name, id or one of
//!   its E.164 numbers; `*` matches any run of characters and letters match
//!   regardless of case. A rule starting with `!` forbids instead of allowing
//!   (`!* -> +1900*`). For each target the first rule matching both caller
//!   and target decides. Empty rules and rules starting with `#` are ignored.
//! - `default`: `deny` (the default) or `allow`, the decision for a target
//!   that no rule matches.
//!
//! `on-dial` denies the call, naming the caller and the first callee that is
//! not allowed; every other hook allows. It also exports `vet-dial` (world
//! `policy-vetting`), the same decision without the `call-info`, which the
//! switch calls instead of `on-dial` at about half the cost
//! (docs/BENCHMARKS.md). A malformed setting makes the hook
//! trap, so the operator's `on_error` setting applies.

use std::sync::OnceLock;

wit_bindgen::generate!({ path: "../../wit", world: "policy-vetting" });

use callswitch::plugin::config;

/// One `CALLER -> CALLEE` rule.
struct Rule {
    allow: bool,
    caller: String,
    callee: String,
}

/// The parsed settings; fixed while the plugin is loaded.
struct Allowlist {
    rules: Vec<Rule>,
    default_allow: bool,
}

impl Allowlist {
    fn from_config() -> Self {
        let rules = config::get("rules")
            .unwrap_or_default()
            .split([';', '\n'])
            .map(str::trim)
            .filter(|r| !r.is_empty() && !r.starts_with('#'))
            .map(|r| {
                let (allow, r) = match r.strip_prefix('!') {
                    Some(rest) => (false, rest),
                    None => (true, r),
                };
                let (caller, callee) = r
                    .split_once("->")
                    .unwrap_or_else(|| panic!("allowlist: rule `{r}` has no `->`"));
                Rule {
                    allow,
                    caller: caller.trim().into(),
                    callee: callee.trim().into(),
                }
            })
            .collect();
        let default_allow = match config::get("default").as_deref().map(str::trim) {
            None | Some("deny") => false,
            Some("allow") => true,
            Some(other) => {
                panic!("allowlist: `default` must be \"allow\" or \"deny\", not {other:?}")
            }
        };
        Allowlist {
            rules,
            default_allow,
        }
    }

    fn get() -> &'static Allowlist {
        static SETTINGS: OnceLock<Allowlist> = OnceLock::new();
        SETTINGS.get_or_init(Allowlist::from_config)
    }

    /// Whether `caller` may call `callee`.
    fn allows(&self, caller: &Identity, callee: &Identity) -> bool {
        self.rules
            .iter()
            .find(|r| matches(&r.caller, caller) && matches(&r.callee, callee))
            .map_or(self.default_allow, |r| r.allow)
    }
}

/// Whether `pattern` matches the user's name, id or one of its numbers.
fn matches(pattern: &str, who: &Identity) -> bool {
    glob(pattern, &who.name)
        || glob(pattern, &who.id)
        || who.numbers.iter().any(|n| glob(pattern, n))
}

/// Case-insensitive wildcard match where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` seen and the text position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` swallow one more character and retry.
            star = Some((sp, st + 1));
            pi = sp + 1;
            ti = st + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

struct Plugin;

impl Guest for Plugin {
    fn on_connect(_client: Identity) -> ConnectVerdict {
        ConnectVerdict::Admit(None)
    }

    fn on_dial(_call: CallInfo, caller: Identity, targets: Vec<Identity>) -> DialVerdict {
        decide(&caller, &targets)
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
    fn vet_dial(_call_id: String, caller: Identity, targets: Vec<Identity>) -> DialVerdict {
        decide(&caller, &targets)
    }
}

/// Denies, naming the first target `caller` may not call.
fn decide(caller: &Identity, targets: &[Identity]) -> DialVerdict {
    let list = Allowlist::get();
    match targets.iter().find(|t| !list.allows(caller, t)) {
        Some(callee) => DialVerdict::Deny(format!(
            "allowlist: {} is not allowed to call {}",
            caller.name, callee.name
        )),
        None => DialVerdict::Allow,
    }
}

export!(Plugin);

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn wildcards() {
        assert!(glob("*", ""));
        assert!(glob("alice", "Alice"));
        assert!(!glob("alice", "alicia"));
        assert!(glob("+1555*", "+15550100"));
        assert!(!glob("+1555*", "+14150100"));
        assert!(glob("a*c*e", "alice"));
        assert!(glob("*ce", "alice"));
        assert!(!glob("*cx", "alice"));
    }
}
