//! The policy chain: plugins run in configured order; the first refusal
//! wins; redirects replace the targets seen by later plugins and ring-also
//! adds to them; every verdict (and the plugin that gave it) is noted for
//! the call's event log. A failing plugin gets its `on_error` policy.

use uuid::Uuid;

use super::bindings::{ConnectVerdict, DialVerdict, Identity, Verdict};
use super::convert;
use super::policy::{HookFailure, PolicyPlugin};
use crate::config::OnError;
use crate::switch::{Directory, User};
use crate::wire::{CallSummary, PolicyNote};

/// Longest target string a plugin may return.
const MAX_TARGET: usize = 1024;

/// What the chain decided about a dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialDecision {
    /// Place the call to these targets.
    Proceed { targets: Vec<String> },
    /// Refuse it; the caller sees `reason`.
    Deny { plugin: String, reason: String },
    /// Answer busy.
    Busy { plugin: String, reason: String },
}

/// A refusal by one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub plugin: String,
    pub reason: String,
}

fn note(plugin: &PolicyPlugin, hook: &str, verdict: &str, detail: Option<String>) -> PolicyNote {
    PolicyNote {
        plugin: plugin.name.clone(),
        hook: hook.into(),
        verdict: verdict.into(),
        detail,
    }
}

/// What a failure means under the plugin's `on_error`: a refusal, or a
/// note that it was skipped.
fn on_failure(
    plugin: &PolicyPlugin,
    hook: &str,
    failure: &HookFailure,
    notes: &mut Vec<PolicyNote>,
) -> Option<Refusal> {
    match plugin.on_error {
        OnError::Deny => {
            notes.push(note(
                plugin,
                hook,
                "failed-closed",
                Some(failure.to_string()),
            ));
            Some(Refusal {
                plugin: plugin.name.clone(),
                reason: format!(
                    "policy `{}` failed ({failure}); refusing (on_error = deny)",
                    plugin.name
                ),
            })
        }
        OnError::Allow => {
            notes.push(note(plugin, hook, "failed-open", Some(failure.to_string())));
            None
        }
    }
}

/// Checks plugin-chosen targets: a non-empty list of known users.
fn valid_targets(dir: &Directory, targets: &[String]) -> Result<(), String> {
    if targets.is_empty() {
        return Err("an empty target list".into());
    }
    for t in targets {
        if t.is_empty() || t.len() > MAX_TARGET {
            return Err(format!("a target of {} bytes", t.len()));
        }
        if dir.resolve(t).is_none() {
            return Err(format!(
                "the unknown target `{}`",
                t.chars().take(64).collect::<String>()
            ));
        }
    }
    Ok(())
}

/// Runs `on-dial` (or `vet-dial`) through the chain.
#[allow(clippy::too_many_arguments)]
pub async fn decide_dial(
    chain: &[std::sync::Arc<PolicyPlugin>],
    dir: &Directory,
    call_id: Uuid,
    caller: &User,
    device: Option<String>,
    targets: Vec<String>,
    now_ms: u64,
    notes: &mut Vec<PolicyNote>,
) -> DialDecision {
    let mut targets = targets;
    let caller_id = convert::identity(caller, device);
    for plugin in chain {
        let identities: Vec<Identity> = targets
            .iter()
            .filter_map(|t| dir.resolve(t))
            .map(|u| convert::identity(u, None))
            .collect();
        // A plugin that exports `vet-dial` gets that, without the call-info.
        let (hook, verdict) = if plugin.vetting {
            let verdict = plugin.vet_dial(call_id, &caller_id, &identities).await;
            ("vet-dial", verdict)
        } else {
            let call = convert::proposed_call(dir, call_id, caller, targets.len() > 1, now_ms);
            let verdict = plugin
                .on_dial(call_id, &call, &caller_id, &identities)
                .await;
            ("on-dial", verdict)
        };
        let verdict = match verdict {
            Ok(DialVerdict::Redirect(list)) | Ok(DialVerdict::RingAlso(list))
                if valid_targets(dir, &list).is_err() =>
            {
                let why = valid_targets(dir, &list).unwrap_err();
                plugin.count_invalid(hook, Some(call_id), &why);
                Err(HookFailure::Invalid(why))
            }
            other => other,
        };
        match verdict {
            Ok(DialVerdict::Allow) => notes.push(note(plugin, hook, "allow", None)),
            Ok(DialVerdict::Deny(reason)) => {
                notes.push(note(plugin, hook, "deny", Some(reason.clone())));
                return DialDecision::Deny {
                    plugin: plugin.name.clone(),
                    reason,
                };
            }
            Ok(DialVerdict::Busy(reason)) => {
                notes.push(note(plugin, hook, "busy", Some(reason.clone())));
                return DialDecision::Busy {
                    plugin: plugin.name.clone(),
                    reason,
                };
            }
            Ok(DialVerdict::Redirect(list)) => {
                notes.push(note(plugin, hook, "redirect", Some(list.join(","))));
                targets = list;
            }
            Ok(DialVerdict::RingAlso(list)) => {
                notes.push(note(plugin, hook, "ring-also", Some(list.join(","))));
                for t in list {
                    if !targets.contains(&t) {
                        targets.push(t);
                    }
                }
            }
            Err(failure) => {
                if let Some(r) = on_failure(plugin, hook, &failure, notes) {
                    return DialDecision::Deny {
                        plugin: r.plugin,
                        reason: r.reason,
                    };
                }
            }
        }
    }
    DialDecision::Proceed { targets }
}

/// Runs `on-connect` through the chain; the last display name given wins.
pub async fn decide_connect(
    chain: &[std::sync::Arc<PolicyPlugin>],
    client: &Identity,
) -> Result<Option<String>, Refusal> {
    let mut display = None;
    let mut notes = Vec::new();
    for plugin in chain {
        match plugin.on_connect(client).await {
            Ok(ConnectVerdict::Admit(name)) => display = name.or(display),
            Ok(ConnectVerdict::Refuse(reason)) => {
                return Err(Refusal {
                    plugin: plugin.name.clone(),
                    reason,
                })
            }
            Err(failure) => {
                if let Some(r) = on_failure(plugin, "on-connect", &failure, &mut notes) {
                    return Err(r);
                }
            }
        }
    }
    Ok(display)
}

/// Applies one plugin's allow/deny verdict: notes it, and returns the
/// refusal that stops the chain (a deny, or a failure under `on_error = deny`).
fn judge(
    plugin: &PolicyPlugin,
    hook: &str,
    result: Result<Verdict, HookFailure>,
    notes: &mut Vec<PolicyNote>,
) -> Option<Refusal> {
    match result {
        Ok(Verdict::Allow) => {
            notes.push(note(plugin, hook, "allow", None));
            None
        }
        Ok(Verdict::Deny(reason)) => {
            notes.push(note(plugin, hook, "deny", Some(reason.clone())));
            Some(Refusal {
                plugin: plugin.name.clone(),
                reason,
            })
        }
        Err(failure) => on_failure(plugin, hook, &failure, notes),
    }
}

/// Runs `on-answer` through the chain.
pub async fn decide_answer(
    chain: &[std::sync::Arc<PolicyPlugin>],
    dir: &Directory,
    call: &CallSummary,
    answerer: &User,
    device: Option<String>,
    notes: &mut Vec<PolicyNote>,
) -> Result<(), Refusal> {
    let info = convert::call_info(dir, call);
    let who = convert::identity(answerer, device);
    for plugin in chain {
        let result = plugin.on_answer(call.call_id, &info, &who).await;
        if let Some(r) = judge(plugin, "on-answer", result, notes) {
            return Err(r);
        }
    }
    Ok(())
}

/// Runs `on-action` through the policies that export it.
pub async fn decide_action(
    chain: &[std::sync::Arc<PolicyPlugin>],
    dir: &Directory,
    call: &CallSummary,
    actor: &User,
    device: Option<String>,
    action: &crate::plugins::bindings::CallAction,
    notes: &mut Vec<PolicyNote>,
) -> Result<(), Refusal> {
    let info = convert::call_info(dir, call);
    let who = convert::identity(actor, device);
    for plugin in chain.iter().filter(|p| p.actions) {
        let result = plugin.on_action(call.call_id, &info, &who, action).await;
        if let Some(r) = judge(plugin, "on-action", result, notes) {
            return Err(r);
        }
    }
    Ok(())
}

/// Runs `on-transfer` through the chain.
pub async fn decide_transfer(
    chain: &[std::sync::Arc<PolicyPlugin>],
    dir: &Directory,
    call: &CallSummary,
    from: &User,
    to: &User,
    notes: &mut Vec<PolicyNote>,
) -> Result<(), Refusal> {
    let info = convert::call_info(dir, call);
    let (from, to) = (convert::identity(from, None), convert::identity(to, None));
    for plugin in chain {
        let result = plugin.on_transfer(call.call_id, &info, &from, &to).await;
        if let Some(r) = judge(plugin, "on-transfer", result, notes) {
            return Err(r);
        }
    }
    Ok(())
}

/// Runs `on-message` through the chain. Messages have no record, so the
/// verdicts are not kept.
pub async fn decide_message(
    chain: &[std::sync::Arc<PolicyPlugin>],
    sender: &Identity,
    recipient: &Identity,
    body: &str,
) -> Result<(), Refusal> {
    let mut notes = Vec::new();
    for plugin in chain {
        let result = plugin.on_message(sender, recipient, body).await;
        if let Some(r) = judge(plugin, "on-message", result, &mut notes) {
            return Err(r);
        }
    }
    Ok(())
}
