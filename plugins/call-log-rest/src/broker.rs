//! Events on the plugin's devices (`on-device-event`). The call log itself
//! is derived from the switch's account of the call (see `events`), so
//! device events serve only two purposes:
//!
//! - the broker case (`creatorUser` given, `informOthersDirectly: true`):
//!   when the first invitee answers on the broker's device, the creator is
//!   invited; when the creator answers, the broker hangs up and its device
//!   is closed. If the creator cannot be reached (busy, declined, no
//!   answer, unavailable) the broker hangs up too: its leg carries no
//!   media, so staying would leave the invitee talking to no one.
//! - closing a device whose call ended (`ended`), and forgetting a device
//!   the switch closed (`closed`).

use serde_json::{json, Value};

use crate::host::{Host, Level};
use crate::model::StoredLog;
use crate::store;

/// Handles one event of device `device` (the JSON of docs/PROTOCOL.md §6,
/// or `{"type":"closed","reason":...}`).
pub fn on_device_event(host: &dyn Host, device: u64, event: &str) {
    let Ok(event) = serde_json::from_str::<Value>(event) else {
        host.log(
            Level::Warn,
            &format!("device {device}: unreadable event {event}"),
        );
        return;
    };
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "closed" {
        store::unbind_device(host, device);
        return;
    }
    let Some(call_id) = store::device_call(host, device) else {
        return;
    };
    if event.get("call_id").and_then(Value::as_str) != Some(call_id.as_str()) {
        // Another call on this device (e.g. one a policy plugin placed).
        return;
    }
    if kind == "ended" {
        host.close_device(device);
        store::unbind_device(host, device);
        return;
    }
    let Some(mut log) = store::load_log(host, &call_id) else {
        return;
    };
    let user = event
        .get("user")
        .and_then(|u| u.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let creator = log.creator.user_id.clone();
    let Some(broker) = log.broker.as_mut().filter(|b| !b.done) else {
        return;
    };
    match kind {
        "answered" if user == creator => {
            broker.done = true;
            store::save_log(host, &log);
            leave(host, device, &log, "the creator answered");
        }
        "answered" if !broker.creator_invited => {
            let invite = json!({"type": "invite", "call_id": call_id, "targets": [creator]});
            match host.request(device, &invite.to_string()) {
                Ok(_) => {
                    broker.creator_invited = true;
                    store::save_log(host, &log);
                }
                Err(e) => host.log(
                    Level::Warn,
                    &format!(
                        "call {call_id}: cannot invite the creator {}: {}: {}",
                        log.creator.name, e.code, e.message
                    ),
                ),
            }
        }
        "busy" | "declined" | "no_answer" | "unavailable"
            if user == creator && broker.creator_invited =>
        {
            broker.done = true;
            store::save_log(host, &log);
            leave(host, device, &log, "the creator cannot be reached");
        }
        _ => {}
    }
}

/// The broker hangs up and closes its device.
fn leave(host: &dyn Host, device: u64, log: &StoredLog, why: &str) {
    let hangup = json!({"type": "hangup", "call_id": log.call_id});
    if let Err(e) = host.request(device, &hangup.to_string()) {
        host.log(
            Level::Warn,
            &format!(
                "call {}: broker hangup: {}: {}",
                log.call_id, e.code, e.message
            ),
        );
    }
    host.close_device(device);
    store::unbind_device(host, device);
    host.log(
        Level::Info,
        &format!("call log {} ({}): broker left: {why}", log.id, log.call_id),
    );
}
