//! Mapping the switch's own account of a call (the events of its record,
//! or of the live call so far: docs/PROTOCOL.md §10) to the vendor's
//! `callEvents`, so the call log follows the real call whichever protocol
//! its parties use.
//!
//! | switch event                 | callEvent                                    |
//! |------------------------------|----------------------------------------------|
//! | `created`                    | `Created` (the creator), then `Join` (the dialler) |
//! | `answered` / `joined`        | `Join` (one per answer: `answered` is followed by `joined`) |
//! | `left`                       | `Leave`                                      |
//! | `declined`                   | `Declined` (once per user and invitation, not per device) |
//! | `busy`                       | `Busy`                                       |
//! | `no_answer` / `unavailable`  | `NoAnswer`                                   |
//! | `ended`                      | `Ended` (the creator)                        |
//! | anything else                | skipped                                      |

use std::collections::BTreeSet;

use serde_json::Value;

use crate::model::StoredContact;

/// A mapped event: its type and the index of its contact in the call
/// log's contact list (0 is the creator).
pub type Mapped = (&'static str, usize);

/// The events of a record (`call-record`'s JSON), or `None` when it does
/// not parse.
pub fn record_events(record: &str) -> Option<Vec<Value>> {
    let value: Value = serde_json::from_str(record).ok()?;
    match value.get("events") {
        Some(Value::Array(events)) => Some(events.clone()),
        _ => None,
    }
}

/// The events of a live call (`live-events`' JSON array), or `None` when
/// it does not parse.
pub fn live_events(json: &str) -> Option<Vec<Value>> {
    match serde_json::from_str(json).ok()? {
        Value::Array(events) => Some(events),
        _ => None,
    }
}

/// The user (`{"id","name"}`) an event names: its `user`, or `by` for
/// `created`.
fn user_of(event: &Value) -> Option<(&str, &str)> {
    let user = event.get("user").or_else(|| event.get("by"))?;
    let id = user.get("id")?.as_str()?;
    let name = user.get("name").and_then(Value::as_str).unwrap_or("");
    Some((id, name))
}

fn kind_of(event: &Value) -> &str {
    event.get("event").and_then(Value::as_str).unwrap_or("")
}

/// Maps switch events to callEvents. A user found in no contact is
/// appended to `contacts`, as `new_contact(id, name)` makes it.
pub fn map_events(
    events: &[Value],
    contacts: &mut Vec<StoredContact>,
    new_contact: &dyn Fn(&str, &str) -> StoredContact,
) -> Vec<Mapped> {
    let mut index_of = |id: &str, name: &str| -> usize {
        match contacts.iter().position(|c| c.user_id == id) {
            Some(i) => i,
            None => {
                contacts.push(new_contact(id, name));
                contacts.len() - 1
            }
        }
    };
    let mut out = Vec::new();
    // Users whose decline is reported already, until they ring again.
    let mut declined: BTreeSet<String> = BTreeSet::new();
    for (i, event) in events.iter().enumerate() {
        let kind = kind_of(event);
        if kind == "created" {
            out.push(("Created", 0));
            if let Some((id, name)) = user_of(event) {
                out.push(("Join", index_of(id, name)));
            }
            continue;
        }
        if kind == "ended" {
            out.push(("Ended", 0));
            continue;
        }
        let Some((id, name)) = user_of(event) else {
            continue;
        };
        let mapped = match kind {
            "answered" => {
                let joined_next = events
                    .get(i + 1)
                    .is_some_and(|n| kind_of(n) == "joined" && user_of(n).map(|u| u.0) == Some(id));
                (!joined_next).then_some("Join")
            }
            "joined" => Some("Join"),
            "left" => Some("Leave"),
            "declined" => declined.insert(id.to_string()).then_some("Declined"),
            "ringing" => {
                declined.remove(id);
                None
            }
            "busy" => Some("Busy"),
            "no_answer" | "unavailable" => Some("NoAnswer"),
            _ => None,
        };
        if let Some(kind) = mapped {
            out.push((kind, index_of(id, name)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact(id: &str, name: &str) -> StoredContact {
        StoredContact {
            user_id: id.into(),
            name: name.into(),
            display_name: String::new(),
            domain: String::new(),
            email: String::new(),
            phone_number: None,
            numbers: Vec::new(),
        }
    }

    fn user(id: &str, name: &str) -> Value {
        json!({"id": id, "name": name})
    }

    fn ev(kind: &str, who: Option<(&str, &str)>) -> Value {
        let mut e = json!({"at_ms": 1, "event": kind});
        if let Some((id, name)) = who {
            let key = if kind == "created" { "by" } else { "user" };
            e[key] = user(id, name);
        }
        e
    }

    const A: (&str, &str) = ("a", "alice");
    const B: (&str, &str) = ("b", "bob");
    const C: (&str, &str) = ("c", "carol");

    #[test]
    fn a_one_to_one_call() {
        let events = vec![
            ev("created", Some(A)),
            ev("policy", None),
            ev("ringing", Some(B)),
            ev("answered", Some(B)),
            ev("joined", Some(B)),
            ev("dtmf", Some(B)),
            ev("held", Some(A)),
            ev("resumed", Some(A)),
            ev("left", Some(A)),
            ev("ended", None),
        ];
        let mut contacts = vec![contact("a", "alice"), contact("b", "bob")];
        let mapped = map_events(&events, &mut contacts, &|id, n| contact(id, n));
        assert_eq!(
            mapped,
            vec![
                ("Created", 0),
                ("Join", 0),
                ("Join", 1),
                ("Leave", 0),
                ("Ended", 0)
            ]
        );
        assert_eq!(contacts.len(), 2);
    }

    #[test]
    fn outcomes_and_strangers() {
        let events = vec![
            ev("created", Some(A)),
            ev("ringing", Some(B)),
            ev("ringing", Some(B)),
            ev("declined", Some(B)),
            ev("declined", Some(B)),
            ev("busy", Some(C)),
            ev("unavailable", Some(("d", "dave"))),
            ev("no_answer", Some(B)),
            ev("ringing", Some(B)),
            ev("declined", Some(B)),
            ev("answered", Some(("e", "erin"))),
            ev("ended", None),
        ];
        let mut contacts = vec![
            contact("a", "alice"),
            contact("b", "bob"),
            contact("c", "carol"),
        ];
        let mapped = map_events(&events, &mut contacts, &|id, n| contact(id, n));
        assert_eq!(
            mapped,
            vec![
                ("Created", 0),
                ("Join", 0),
                ("Declined", 1),
                ("Busy", 2),
                ("NoAnswer", 3),
                ("NoAnswer", 1),
                ("Declined", 1),
                ("Join", 4),
                ("Ended", 0),
            ]
        );
        assert_eq!(contacts[3].name, "dave");
        assert_eq!(contacts[4].name, "erin");
    }

    #[test]
    fn the_dialler_of_a_broker_call_joins() {
        // Created is the creator's (contact 0); the broker (contact 2) dialled.
        let events = vec![
            ev("created", Some(C)),
            ev("answered", Some(B)),
            ev("joined", Some(B)),
        ];
        let mut contacts = vec![
            contact("a", "alice"),
            contact("b", "bob"),
            contact("c", "carol"),
        ];
        let mapped = map_events(&events, &mut contacts, &|id, n| contact(id, n));
        assert_eq!(mapped, vec![("Created", 0), ("Join", 2), ("Join", 1)]);
    }

    #[test]
    fn parsing_records_and_live_events() {
        let record = json!({"call_id": "x", "events": [{"event": "created"}, {"event": "ended"}]});
        assert_eq!(record_events(&record.to_string()).unwrap().len(), 2);
        assert_eq!(record_events("{}"), None);
        assert_eq!(record_events("nope"), None);
        assert_eq!(live_events(r#"[{"event":"created"}]"#).unwrap().len(), 1);
        assert_eq!(live_events("{}"), None);
    }
}
