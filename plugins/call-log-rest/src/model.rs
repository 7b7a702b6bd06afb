//! The JSON shapes: the `createCall` request (parsed and validated
//! strictly, so every 400 names the field at fault), the call log as the
//! plugin stores it in `kv`, the CallLog / CallLogContact / call event
//! objects it answers with, and the error body (Spring Boot's default).

use serde::{Deserialize, Serialize};

use crate::body::{self, Body, ContactItem, ContactList, Fields, Shallow, MAX_CONTACTS};

/// `callReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallReason {
    #[serde(rename = "STANDARD")]
    Standard,
    #[serde(rename = "SERVICE_REQUEST")]
    ServiceRequest,
}

/// `callType`: `MESH` is a 1:1 call, `SFU` a multi-party one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallType {
    #[serde(rename = "MESH")]
    Mesh,
    #[serde(rename = "SFU")]
    Sfu,
}

/// `callStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallStatus {
    Planned,
    Started,
    Ended,
}

/// An invited contact as the request gave it (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactIn {
    pub display_name: Option<String>,
    pub domain: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub user_db_id: Option<i64>,
    pub user_id: Option<String>,
}

/// A validated `POST /rtc/createCall` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateCall {
    pub call_title: String,
    pub call_reason: CallReason,
    pub call_type: CallType,
    pub invited_contacts: Vec<ContactIn>,
    pub join_anonymous_allowed: bool,
    pub inform_others_directly: bool,
    pub planned_date_time: Option<String>,
    pub creator_user: Option<i64>,
}

/// Member `key` of `obj`, `None` when absent or `null`.
fn present<'a>(obj: &'a Fields, key: &str) -> Option<&'a Shallow> {
    obj.get(key).filter(|v| **v != Shallow::Null)
}

fn opt_string(obj: &Fields, key: &str, at: &str) -> Result<Option<String>, String> {
    match present(obj, key) {
        None => Ok(None),
        Some(Shallow::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!(
            "`{at}{key}` must be a string, not {}",
            v.type_name()
        )),
    }
}

fn opt_bool(obj: &Fields, key: &str) -> Result<Option<bool>, String> {
    match present(obj, key) {
        None => Ok(None),
        Some(Shallow::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!("`{key}` must be a boolean, not {}", v.type_name())),
    }
}

fn opt_int(obj: &Fields, key: &str, at: &str) -> Result<Option<i64>, String> {
    match present(obj, key) {
        None => Ok(None),
        Some(Shallow::Number(n, text)) => n
            .map(Some)
            .ok_or_else(|| format!("`{at}{key}` must be an integer, not {text}")),
        Some(v) => Err(format!(
            "`{at}{key}` must be an integer, not {}",
            v.type_name()
        )),
    }
}

/// An enum field: `None` when absent or `null`, else one of `values`.
fn opt_enum<T: Copy>(obj: &Fields, key: &str, values: &[(&str, T)]) -> Result<Option<T>, String> {
    let Some(text) = opt_string(obj, key, "")? else {
        return Ok(None);
    };
    values
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, v)| Some(*v))
        .ok_or_else(|| {
            let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
            format!("`{key}` must be one of {}, not `{text}`", names.join(", "))
        })
}

fn parse_contact(item: &ContactItem, index: usize) -> Result<ContactIn, String> {
    let at = format!("invitedContacts[{index}].");
    let obj = match item {
        ContactItem::Object(obj) => obj,
        ContactItem::Other(v) => {
            return Err(format!(
                "`invitedContacts[{index}]` must be an object, not {}",
                v.type_name()
            ))
        }
    };
    // `id` is the server's; a client may echo one back, but it must be an
    // integer if given.
    opt_int(obj, "id", &at)?;
    Ok(ContactIn {
        display_name: opt_string(obj, "displayName", &at)?,
        domain: opt_string(obj, "domain", &at)?,
        email: opt_string(obj, "email", &at)?,
        phone_number: opt_string(obj, "phoneNumber", &at)?,
        user_db_id: opt_int(obj, "userDbId", &at)?,
        user_id: opt_string(obj, "userId", &at)?,
    })
}

/// Parses and validates a `createCall` body. The error is the message of
/// a 400 answer. Unknown members are ignored (as Spring Boot does), and
/// skipped without being built (see `body`).
pub fn parse_create_call(body: &[u8]) -> Result<CreateCall, String> {
    let parsed = body::parse(body).map_err(|e| format!("JSON parse error: {e}"))?;
    let (obj, contacts) = match parsed {
        Body::Object { fields, contacts } => (fields, contacts),
        Body::Other(v) => {
            return Err(format!(
                "the request body must be a JSON object, not {}",
                v.type_name()
            ))
        }
    };
    let call_type = opt_enum(
        &obj,
        "callType",
        &[("MESH", CallType::Mesh), ("SFU", CallType::Sfu)],
    )?
    .ok_or("required field `callType` is missing")?;
    let call_reason = opt_enum(
        &obj,
        "callReason",
        &[
            ("STANDARD", CallReason::Standard),
            ("SERVICE_REQUEST", CallReason::ServiceRequest),
        ],
    )?
    .unwrap_or(CallReason::Standard);
    let contacts = match contacts {
        None => return Err("required field `invitedContacts` is missing".into()),
        Some(ContactList::Items(items)) => items,
        Some(ContactList::TooMany(n)) => {
            return Err(format!(
                "`invitedContacts` holds {n} contacts; at most {MAX_CONTACTS} are accepted"
            ))
        }
        Some(ContactList::Other(v)) => {
            return Err(format!(
                "`invitedContacts` must be an array, not {}",
                v.type_name()
            ))
        }
    };
    if contacts.is_empty() {
        return Err("`invitedContacts` must name at least one contact".into());
    }
    let invited_contacts = contacts
        .iter()
        .enumerate()
        .map(|(i, c)| parse_contact(c, i))
        .collect::<Result<Vec<_>, _>>()?;
    match present(&obj, "invitedTeams") {
        None | Some(Shallow::Array(0)) => {}
        Some(Shallow::Array(_)) => return Err("`invitedTeams`: teams are not supported".into()),
        Some(v) => {
            return Err(format!(
                "`invitedTeams` must be an array, not {}",
                v.type_name()
            ))
        }
    }
    if call_type == CallType::Mesh && invited_contacts.len() != 1 {
        return Err(format!(
            "`callType` MESH is a 1:1 call: `invitedContacts` must hold exactly one contact, not {}",
            invited_contacts.len()
        ));
    }
    Ok(CreateCall {
        call_title: opt_string(&obj, "callTitle", "")?.unwrap_or_default(),
        call_reason,
        call_type,
        invited_contacts,
        join_anonymous_allowed: opt_bool(&obj, "joinAnonymousAllowed")?.unwrap_or(false),
        inform_others_directly: opt_bool(&obj, "informOthersDirectly")?.unwrap_or(false),
        planned_date_time: opt_string(&obj, "plannedDateTime", "")?,
        creator_user: opt_int(&obj, "creatorUser", "")?,
    })
}

/// A contact of a stored call log: the switch user it names and what the
/// request gave for it (the creator's and the broker's are filled from
/// their identity).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredContact {
    /// Switch user id (UUID).
    pub user_id: String,
    /// Switch user name: the contact's `userId` in answers.
    pub name: String,
    pub display_name: String,
    pub domain: String,
    pub email: String,
    pub phone_number: Option<String>,
    /// The user's E.164 numbers (to find its `db_ids` entry).
    #[serde(default)]
    pub numbers: Vec<String>,
}

/// The broker of a call created on someone's behalf (`creatorUser`): the
/// API user, whose device dials the invitees, rings the creator once an
/// invitee answered, and leaves once the creator answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broker {
    pub contact: StoredContact,
    /// The `invite` of the creator was sent.
    pub creator_invited: bool,
    /// The broker left the call (the creator answered, or could not be
    /// reached).
    pub done: bool,
}

/// A call log as kept in `kv` under `log/<callId>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLog {
    pub id: u64,
    pub call_id: String,
    pub title: String,
    pub reason: CallReason,
    pub call_type: CallType,
    pub anonymous_join_allow: bool,
    pub planned_date_time: Option<String>,
    pub created_at_ms: u64,
    pub creator: StoredContact,
    pub invited: Vec<StoredContact>,
    pub broker: Option<Broker>,
    /// The device that dialled (the creator's leg, or the broker's).
    pub device: Option<u64>,
    /// What the plugin knows without asking the switch: `Planned` (never
    /// dialled) or `Started` (dialled). Answers derive the status from the
    /// switch; this only decides what a call the switch does not know
    /// (any more) is: `Planned` stays planned, `Started` counts as ended.
    pub status: CallStatus,
}

/// A CallLogContact in answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactJson {
    pub id: u64,
    pub display_name: String,
    pub domain: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub user_db_id: i64,
    pub user_id: String,
}

/// The contact of a call event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventContactJson {
    pub id: u64,
    pub user_id: String,
    pub user_db_id: i64,
}

/// One of `callEvents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventJson {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub contact: EventContactJson,
}

/// The CallLog object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLogJson {
    pub id: u64,
    pub call_id: String,
    pub call_title: String,
    pub call_reason: CallReason,
    pub call_type: CallType,
    pub anonymous_join_allow: bool,
    pub planned_date_time: Option<String>,
    pub call_status: CallStatus,
    pub creator_contact: ContactJson,
    pub invited_contacts: Vec<ContactJson>,
    pub call_events: Vec<EventJson>,
}

/// The reason phrase of an HTTP status.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// Spring Boot's default error body: `timestamp`, `status`, `error` (the
/// reason phrase), `message`, `path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub timestamp: String,
    pub status: u16,
    pub error: &'static str,
    pub message: String,
    pub path: String,
}

impl ErrorBody {
    pub fn new(status: u16, message: impl Into<String>, path: &str, now_ms: u64) -> ErrorBody {
        ErrorBody {
            timestamp: iso_timestamp(now_ms),
            status,
            error: reason_phrase(status),
            message: message.into(),
            path: path.to_string(),
        }
    }
}

/// `ms` since the Unix epoch as Jackson writes a timestamp in Spring
/// Boot's error body: `2023-11-14T22:13:20.000+00:00`.
pub fn iso_timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        parse_create_call(body.as_bytes()).unwrap_err()
    }

    const SEED_BODY: &str = r#"{"callType":"SFU","invitedContacts":[{"userId":"tester","userDbId":8,"email":"t@example.com","domain":"ubimax","displayName":"Tester","phoneNumber":null}],"invitedTeams":[],"joinAnonymousAllowed":false,"callTitle":"New Call","plannedDateTime":null,"callReason":"STANDARD"}"#;

    #[test]
    fn parses_the_vendor_example() {
        let c = parse_create_call(SEED_BODY.as_bytes()).unwrap();
        assert_eq!(c.call_type, CallType::Sfu);
        assert_eq!(c.call_reason, CallReason::Standard);
        assert_eq!(c.call_title, "New Call");
        assert!(!c.inform_others_directly);
        assert_eq!(c.creator_user, None);
        assert_eq!(c.planned_date_time, None);
        assert_eq!(
            c.invited_contacts,
            vec![ContactIn {
                display_name: Some("Tester".into()),
                domain: Some("ubimax".into()),
                email: Some("t@example.com".into()),
                phone_number: None,
                user_db_id: Some(8),
                user_id: Some("tester".into()),
            }]
        );
    }

    #[test]
    fn defaults_and_optional_fields() {
        let c = parse_create_call(
            br#"{"callType":"MESH","invitedContacts":[{}],"informOthersDirectly":true,"creatorUser":12,"plannedDateTime":"2030-01-01T10:00:00Z","callReason":"SERVICE_REQUEST"}"#,
        )
        .unwrap();
        assert_eq!(c.call_type, CallType::Mesh);
        assert_eq!(c.call_reason, CallReason::ServiceRequest);
        assert_eq!(c.call_title, "");
        assert!(c.inform_others_directly);
        assert!(!c.join_anonymous_allowed);
        assert_eq!(c.creator_user, Some(12));
        assert_eq!(c.planned_date_time.as_deref(), Some("2030-01-01T10:00:00Z"));
    }

    #[test]
    fn rejects_bad_bodies_naming_the_field() {
        assert!(err("{").starts_with("JSON parse error"));
        assert!(err("[]").contains("JSON object"));
        assert!(err(r#"{"invitedContacts":[{}]}"#).contains("`callType`"));
        assert!(err(r#"{"callType":"P2P","invitedContacts":[{}]}"#)
            .contains("`callType` must be one of MESH, SFU"));
        assert!(err(r#"{"callType":"mesh","invitedContacts":[{}]}"#).contains("`callType`"));
        assert!(err(r#"{"callType":"SFU"}"#).contains("`invitedContacts` is missing"));
        assert!(err(r#"{"callType":"SFU","invitedContacts":{}}"#)
            .contains("`invitedContacts` must be an array"));
        assert!(err(r#"{"callType":"SFU","invitedContacts":[]}"#).contains("at least one"));
        assert!(err(r#"{"callType":"SFU","invitedContacts":[1]}"#)
            .contains("`invitedContacts[0]` must be an object"));
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{},{"userDbId":"8"}]}"#)
                .contains("`invitedContacts[1].userDbId` must be an integer, not a string")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{"userDbId":8.5}]}"#)
                .contains("`invitedContacts[0].userDbId` must be an integer")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{"userId":7}]}"#)
                .contains("`invitedContacts[0].userId` must be a string")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"invitedTeams":[{"id":1}]}"#)
                .contains("teams are not supported")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"invitedTeams":"x"}"#)
                .contains("`invitedTeams` must be an array")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"callReason":"URGENT"}"#)
                .contains("`callReason` must be one of STANDARD, SERVICE_REQUEST")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"callTitle":5}"#)
                .contains("`callTitle` must be a string")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"joinAnonymousAllowed":"yes"}"#)
                .contains("`joinAnonymousAllowed` must be a boolean")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"informOthersDirectly":1}"#)
                .contains("`informOthersDirectly` must be a boolean")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"creatorUser":"12"}"#)
                .contains("`creatorUser` must be an integer")
        );
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"plannedDateTime":false}"#)
                .contains("`plannedDateTime` must be a string")
        );
        assert!(err(r#"{"callType":"MESH","invitedContacts":[{},{}]}"#)
            .contains("exactly one contact, not 2"));
    }

    #[test]
    fn packed_bodies_cost_no_more_than_their_fields() {
        // Unknown members are skipped, however many elements they hold.
        let zeros = vec!["0"; 300_000].join(",");
        let body = format!(
            r#"{{"callType":"SFU","padding":[{zeros}],"invitedContacts":[{{"userId":"bob","x":[{zeros}]}}]}}"#
        );
        let c = parse_create_call(body.as_bytes()).unwrap();
        assert_eq!(c.invited_contacts[0].user_id.as_deref(), Some("bob"));
        // Known ones are refused by kind, not read.
        let body =
            format!(r#"{{"callType":"SFU","invitedContacts":[{{}}],"invitedTeams":[{zeros}]}}"#);
        assert!(err(&body).contains("teams are not supported"));
        let body =
            format!(r#"{{"callType":"SFU","invitedContacts":[{{}}],"callTitle":[{zeros}]}}"#);
        assert!(err(&body).contains("`callTitle` must be a string, not an array"));
        let many = vec!["{}"; 200_000].join(",");
        let body = format!(r#"{{"callType":"SFU","invitedContacts":[{many}]}}"#);
        assert!(err(&body).contains("`invitedContacts` holds 200000 contacts; at most 1000"));
        assert!(
            err(r#"{"callType":"SFU","invitedContacts":[{}],"creatorUser":1e3}"#)
                .contains("`creatorUser` must be an integer, not 1000.0")
        );
    }

    #[test]
    fn error_body_is_spring_shaped() {
        let body = ErrorBody::new(
            400,
            "`callType` is missing",
            "/rtc/createCall",
            1_700_000_000_123,
        );
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "timestamp": "2023-11-14T22:13:20.123+00:00",
                "status": 400,
                "error": "Bad Request",
                "message": "`callType` is missing",
                "path": "/rtc/createCall"
            })
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(iso_timestamp(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(
            iso_timestamp(951_782_400_000),
            "2000-02-29T00:00:00.000+00:00"
        );
        assert_eq!(
            iso_timestamp(4_102_444_799_999),
            "2099-12-31T23:59:59.999+00:00"
        );
    }
}
