//! The call logs: their persistence in `kv` and the CallLog view built from
//! a stored log and the switch's account of the call.
//!
//! Keys (the host keeps the plugin's `kv` across reloads and restarts):
//! - `next-id`: the next call log `id`, a decimal integer (from 1);
//! - `log/<callId>`: a [`StoredLog`] as JSON;
//! - `dev/<device>`: the callId of the call a device of this plugin was
//!   opened for, while the device is open (routes `on-device-event`).
//!
//! Nothing is kept in the instance's memory, so a reload or a fresh
//! instance loses nothing.

use serde_json::{json, Value};

use crate::events;
use crate::host::{Host, Level, User};
use crate::ids::DbIds;
use crate::model::{
    CallLogJson, CallReason, CallStatus, CallType, ContactJson, EventContactJson, EventJson,
    StoredContact, StoredLog,
};

const NEXT_ID: &str = "next-id";

fn log_key(call_id: &str) -> String {
    format!("log/{call_id}")
}

fn dev_key(device: u64) -> String {
    format!("dev/{device}")
}

/// The stored log of `call_id` (canonical lower-case form).
pub fn load_log(host: &dyn Host, call_id: &str) -> Option<StoredLog> {
    let bytes = host.kv_get(&log_key(call_id))?;
    match serde_json::from_slice(&bytes) {
        Ok(log) => Some(log),
        Err(e) => {
            host.log(
                Level::Warn,
                &format!("call log {call_id}: stored JSON unreadable: {e}"),
            );
            None
        }
    }
}

/// Whether a call log with this callId exists.
pub fn log_exists(host: &dyn Host, call_id: &str) -> bool {
    host.kv_get(&log_key(call_id)).is_some()
}

pub fn save_log(host: &dyn Host, log: &StoredLog) {
    let json = serde_json::to_vec(log).expect("a stored log serialises");
    host.kv_set(&log_key(&log.call_id), &json);
}

/// The id the next call log will get (not reserved).
pub fn peek_id(host: &dyn Host) -> u64 {
    host.kv_get(NEXT_ID)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1)
}

/// Reserves and returns the next call log id.
pub fn take_id(host: &dyn Host) -> u64 {
    let id = peek_id(host);
    host.kv_set(NEXT_ID, (id + 1).to_string().as_bytes());
    id
}

pub fn bind_device(host: &dyn Host, device: u64, call_id: &str) {
    host.kv_set(&dev_key(device), call_id.as_bytes());
}

/// The callId `device` was opened for, while it is open.
pub fn device_call(host: &dyn Host, device: u64) -> Option<String> {
    host.kv_get(&dev_key(device))
        .and_then(|b| String::from_utf8(b).ok())
}

pub fn unbind_device(host: &dyn Host, device: u64) {
    host.kv_delete(&dev_key(device));
}

/// The `db_ids` setting (read on every use: it is small).
pub fn db_ids(host: &dyn Host) -> DbIds {
    let Some(text) = host.config("db_ids") else {
        return DbIds::default();
    };
    let (ids, skipped) = DbIds::parse(&text);
    for s in skipped {
        host.log(Level::Debug, &format!("setting db_ids: skipped {s}"));
    }
    ids
}

/// A contact made from a switch identity: the creator, the broker, a user
/// met in the call's events. `displayName` is the user name.
/// A call log for a call this API did not create (placed by a QUIC client,
/// another adapter, the voice proxy...), from the switch's own account:
/// its record when it ended, else its live events. The creator is the
/// caller and the invitees the other parties; it has id 0 and no title.
/// `None` when the switch knows no such call.
pub fn switch_log(host: &dyn Host, call_id: &str) -> Option<StoredLog> {
    let (caller_id, others, created_at_ms, group) = match host.call_record(call_id) {
        Some(text) => {
            let record: Value = serde_json::from_str(&text).ok()?;
            let caller = record["caller"]["id"].as_str()?.to_string();
            let others: Vec<String> = record["parties"]
                .as_array()
                .map(|parties| {
                    parties
                        .iter()
                        .filter_map(|p| p["user"]["id"].as_str().map(str::to_string))
                        .filter(|id| *id != caller)
                        .collect()
                })
                .unwrap_or_default();
            let group = record["kind"] == "group";
            (
                caller,
                others,
                record["created_at_ms"].as_u64().unwrap_or(0),
                group,
            )
        }
        None => {
            let events: Vec<Value> = serde_json::from_str(&host.live_events(call_id)?).ok()?;
            let created = events.iter().find(|e| e["event"] == "created")?;
            let caller = created["by"]["id"].as_str()?.to_string();
            let mut others: Vec<String> = Vec::new();
            for e in &events {
                if let Some(id) = e["user"]["id"].as_str() {
                    if id != caller && !others.iter().any(|o| o == id) {
                        others.push(id.to_string());
                    }
                }
            }
            let group = others.len() > 1;
            (
                caller,
                others,
                created["at_ms"].as_u64().unwrap_or(0),
                group,
            )
        }
    };
    let contact = |id: &str| host.find_user(id).map(|u| identity_contact(&u));
    Some(StoredLog {
        id: 0,
        call_id: call_id.to_string(),
        title: String::new(),
        reason: CallReason::Standard,
        call_type: if group { CallType::Sfu } else { CallType::Mesh },
        anonymous_join_allow: false,
        planned_date_time: None,
        created_at_ms,
        creator: contact(&caller_id)?,
        invited: others.iter().filter_map(|id| contact(id)).collect(),
        broker: None,
        device: None,
        status: CallStatus::Started,
    })
}

pub fn identity_contact(user: &User) -> StoredContact {
    StoredContact {
        user_id: user.id.clone(),
        name: user.name.clone(),
        display_name: user.name.clone(),
        domain: String::new(),
        email: String::new(),
        phone_number: user.numbers.first().cloned(),
        numbers: user.numbers.clone(),
    }
}

/// The log's contact list: the creator, the invitees, then the broker when
/// it took part (it dialled) and is not an invitee itself.
pub fn contact_list(log: &StoredLog) -> Vec<StoredContact> {
    let mut contacts = Vec::with_capacity(log.invited.len() + 2);
    contacts.push(log.creator.clone());
    contacts.extend(log.invited.iter().cloned());
    if let Some(broker) = &log.broker {
        let listed = contacts.iter().any(|c| c.user_id == broker.contact.user_id);
        if log.status != CallStatus::Planned && !listed {
            contacts.push(broker.contact.clone());
        }
    }
    contacts
}

/// The user whose device dialled: the broker, or the creator.
fn dialler(log: &StoredLog) -> &StoredContact {
    log.broker.as_ref().map_or(&log.creator, |b| &b.contact)
}

/// Stand-in events for a dialled call whose events cannot be had.
fn fallback_events(log: &StoredLog, ended: bool) -> Vec<Value> {
    let d = dialler(log);
    let mut events = vec![json!({
        "at_ms": log.created_at_ms,
        "event": "created",
        "by": {"id": d.user_id, "name": d.name},
    })];
    if ended {
        events.push(json!({"at_ms": log.created_at_ms, "event": "ended", "reason": "unknown"}));
    }
    events
}

/// The call's status and its switch events: live → `Started`, recorded →
/// `Ended`, never dialled → `Planned` (no events). A dialled call the
/// switch knows nothing of counts as `Started` right after the dial
/// (`just_dialled`: the switch's view may lag its `ok`), as ended later
/// (its record is missing or unreadable).
pub fn account(host: &dyn Host, log: &StoredLog, just_dialled: bool) -> (CallStatus, Vec<Value>) {
    if log.status == CallStatus::Planned {
        return (CallStatus::Planned, Vec::new());
    }
    let warn = |what: &str| {
        host.log(
            Level::Warn,
            &format!(
                "call {}: {what}; reporting what the plugin knows",
                log.call_id
            ),
        )
    };
    if let Some(live) = host.live_events(&log.call_id) {
        let events = events::live_events(&live).unwrap_or_else(|| {
            warn("live events unreadable");
            fallback_events(log, false)
        });
        return (CallStatus::Started, events);
    }
    if let Some(record) = host.call_record(&log.call_id) {
        let events = events::record_events(&record).unwrap_or_else(|| {
            warn("call record unreadable");
            fallback_events(log, true)
        });
        return (CallStatus::Ended, events);
    }
    if just_dialled {
        return (CallStatus::Started, fallback_events(log, false));
    }
    warn("neither live nor recorded");
    (CallStatus::Ended, fallback_events(log, true))
}

/// The CallLog object of `log` as of now (`just_dialled`: see
/// [`account`]).
pub fn view(host: &dyn Host, log: &StoredLog, just_dialled: bool) -> CallLogJson {
    let mut contacts = contact_list(log);
    let (status, switch_events) = account(host, log, just_dialled);
    let mapped = if status == CallStatus::Planned {
        vec![("Created", 0)]
    } else {
        let met = |id: &str, name: &str| match host.find_user(id) {
            Some(user) => identity_contact(&user),
            None => identity_contact(&User {
                id: id.to_string(),
                name: name.to_string(),
                numbers: Vec::new(),
            }),
        };
        events::map_events(&switch_events, &mut contacts, &met)
    };
    let db = db_ids(host);
    let db_id = |c: &StoredContact| db.db_id_of(&c.user_id, &c.name, &c.numbers);
    let mut json_contacts = contacts.iter().enumerate().map(|(i, c)| ContactJson {
        id: i as u64 + 1,
        display_name: c.display_name.clone(),
        domain: c.domain.clone(),
        email: c.email.clone(),
        phone_number: c.phone_number.clone(),
        user_db_id: db_id(c),
        user_id: c.name.clone(),
    });
    let creator_contact = json_contacts.next().expect("the creator is listed");
    let invited_contacts: Vec<ContactJson> = json_contacts.collect();
    let call_events = mapped
        .iter()
        .enumerate()
        .map(|(n, (kind, i))| EventJson {
            id: log.id * 1000 + n as u64 + 1,
            kind,
            contact: EventContactJson {
                id: *i as u64 + 1,
                user_id: contacts[*i].name.clone(),
                user_db_id: db_id(&contacts[*i]),
            },
        })
        .collect();
    CallLogJson {
        id: log.id,
        call_id: log.call_id.clone(),
        call_title: log.title.clone(),
        call_reason: log.reason,
        call_type: log.call_type,
        anonymous_join_allow: log.anonymous_join_allow,
        planned_date_time: log.planned_date_time.clone(),
        call_status: status,
        creator_contact,
        invited_contacts,
        call_events,
    }
}
