//! The HTTP API under `/rtc/`: routing (404 / 405), bearer authentication
//! (401), `POST /rtc/createCall` and `GET /rtc/getCallLogById`. Every error
//! is answered with Spring Boot's error body (`model::ErrorBody`).

use serde::Serialize;
use serde_json::Value;

use crate::host::{Host, Level, SwitchError, User};
use crate::ids::{self, DbIds};
use crate::model::{
    self, Broker, CallStatus, ContactIn, CreateCall, ErrorBody, StoredContact, StoredLog,
};
use crate::store;

/// The device label of the plugin's devices (what `callswitch users`
/// shows).
pub const DEVICE_LABEL: &str = "call-log-rest";

const CREATE_CALL: &str = "/rtc/createCall";
const GET_CALL_LOG: &str = "/rtc/getCallLogById";

/// How many fresh callIds a dial tries when the switch answers
/// `duplicate_call_id`.
const DIAL_ATTEMPTS: u64 = 3;

/// An HTTP request, as the host gives it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Names in lower case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A failed request: status and message, rendered as an [`ErrorBody`].
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub message: String,
    /// Extra headers (`allow`, `www-authenticate`).
    pub headers: Vec<(String, String)>,
}

impl Failure {
    fn new(status: u16, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(400, message)
    }
}

fn json_response(status: u16, body: &impl Serialize, extra: Vec<(String, String)>) -> Response {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(extra);
    Response {
        status,
        headers,
        body: serde_json::to_vec(body).expect("answers serialise"),
    }
}

/// Handles one request routed to the plugin.
pub fn handle(host: &dyn Host, req: &Request) -> Response {
    let result = match req.path {
        CREATE_CALL => allow_method(req, "POST").and_then(|()| create_call(host, req)),
        GET_CALL_LOG => allow_method(req, "GET").and_then(|()| get_call_log(host, req)),
        _ => Err(Failure::new(
            404,
            format!("no endpoint {} {}", req.method, req.path),
        )),
    };
    match result {
        Ok(log) => json_response(200, &log, Vec::new()),
        Err(f) => {
            let body = ErrorBody::new(f.status, f.message, req.path, host.now_ms());
            json_response(f.status, &body, f.headers)
        }
    }
}

fn allow_method(req: &Request, method: &str) -> Result<(), Failure> {
    if req.method == method {
        return Ok(());
    }
    Err(Failure {
        status: 405,
        message: format!("Request method '{}' is not supported", req.method),
        headers: vec![("allow".into(), method.into())],
    })
}

/// The bearer token of the `authorization` header.
pub fn bearer(headers: &[(String, String)]) -> Option<&str> {
    let value = headers
        .iter()
        .find(|(name, _)| name == "authorization")
        .map(|(_, v)| v.trim())?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The API user: whom the bearer token authenticates.
fn authenticate<'a>(host: &dyn Host, req: &Request<'a>) -> Result<(User, &'a str), Failure> {
    let unauthorized = |message: String| Failure {
        status: 401,
        message,
        headers: vec![("www-authenticate".into(), "Bearer".into())],
    };
    let token = bearer(req.headers).ok_or_else(|| {
        unauthorized("full authentication is required: send `Authorization: Bearer <token>`".into())
    })?;
    match host.authenticate(token) {
        Ok(user) => Ok((user, token)),
        Err(e) => Err(unauthorized(format!("invalid bearer token: {}", e.message))),
    }
}

/// Decodes `%XX` escapes and `+` (a space, in a query).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of query parameter `name`.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .find(|(k, _)| percent_decode(k) == name)
        .map(|(_, v)| percent_decode(v))
}

fn get_call_log(host: &dyn Host, req: &Request) -> Result<model::CallLogJson, Failure> {
    authenticate(host, req)?;
    let raw = query_param(req.query, "callId").ok_or_else(|| {
        Failure::bad_request(
            "Required request parameter 'callId' for method parameter type UUID is not present",
        )
    })?;
    if raw.trim().is_empty() {
        return Err(Failure::bad_request(
            "Required request parameter 'callId' for method parameter type UUID is present but converted to null",
        ));
    }
    let call_id = ids::parse_uuid(raw.trim()).ok_or_else(|| {
        Failure::bad_request(format!(
            "Method parameter 'callId': Failed to convert value of type 'java.lang.String' to required type 'java.util.UUID'; Invalid UUID string: {raw}"
        ))
    })?;
    let log = store::load_log(host, &call_id)
        .or_else(|| store::switch_log(host, &call_id))
        .ok_or_else(|| Failure::new(404, format!("no call log with callId {call_id}")))?;
    Ok(store::view(host, &log, false))
}

/// Whether `text` is an E.164 number: `+` and 1 to 15 digits.
fn is_e164(text: &str) -> bool {
    text.strip_prefix('+')
        .is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The switch user an invited contact names: by `userId`, else
/// `phoneNumber`, else `userDbId` (through `db_ids`); each given field is
/// tried in that order until one names a user. The error (a 400 message)
/// names the contact by index and says why each field failed.
pub fn resolve_contact(
    host: &dyn Host,
    db: &DbIds,
    contact: &ContactIn,
    index: usize,
) -> Result<User, String> {
    let mut why = Vec::new();
    if let Some(user_id) = contact
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match host.find_user(user_id) {
            Some(user) => return Ok(user),
            None => why.push(format!("userId `{user_id}` names no user of the switch")),
        }
    }
    if let Some(phone) = contact
        .phone_number
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !is_e164(phone) {
            why.push(format!("phoneNumber `{phone}` is not an E.164 number"));
        } else if let Some(user) = host.find_user(phone) {
            return Ok(user);
        } else {
            why.push(format!("phoneNumber `{phone}` names no user of the switch"));
        }
    }
    if let Some(db_id) = contact.user_db_id.filter(|id| *id != 0) {
        match db.target(db_id) {
            None => why.push(format!("userDbId {db_id} is not in the `db_ids` setting")),
            Some(target) => match host.find_user(target) {
                Some(user) => return Ok(user),
                None => why.push(format!(
                    "userDbId {db_id} stands for `{target}`, which names no user of the switch"
                )),
            },
        }
    }
    if why.is_empty() {
        Err(format!(
            "`invitedContacts[{index}]` names no switch user: give `userId`, `phoneNumber` or `userDbId`"
        ))
    } else {
        Err(format!(
            "`invitedContacts[{index}]` names no switch user: {}",
            why.join("; ")
        ))
    }
}

/// The answer to a refused device request, as an HTTP failure.
fn switch_failure(what: &str, e: &SwitchError) -> Failure {
    let status = match e.code.as_str() {
        "unauthorized" => 401,
        "denied" | "forbidden" => 403,
        "unknown_user" | "cannot_call_self" | "too_many_participants" | "bad_request" => 400,
        "overloaded" => 503,
        "timeout" => 504,
        _ => 502,
    };
    Failure::new(
        status,
        format!("{what}: the switch answered {}: {}", e.code, e.message),
    )
}

/// A fresh callId that no call log uses. `salt` distinguishes attempts.
fn fresh_call_id(host: &dyn Host, user: &User, salt: u64) -> String {
    let user_hash = user.id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let next = store::peek_id(host);
    let mut n = 0;
    loop {
        let id = ids::uuid_v4(&[host.now_ms(), host.monotonic_ms(), next, user_hash, salt, n]);
        if !store::log_exists(host, &id) {
            return id;
        }
        n += 1;
    }
}

/// Opens the dialling device and dials `targets` with a fresh callId.
/// Returns the device and the callId the switch used.
fn dial(
    host: &dyn Host,
    token: &str,
    api_user: &User,
    targets: &[String],
) -> Result<(u64, String), Failure> {
    let device = host
        .open_device(token, DEVICE_LABEL)
        .map_err(|e| switch_failure("cannot open a device for the API user", &e))?;
    let mut last = None;
    for attempt in 0..DIAL_ATTEMPTS {
        let call_id = fresh_call_id(host, api_user, attempt + 1);
        let request = serde_json::json!({"type": "dial", "call_id": call_id, "targets": targets});
        match host.request(device, &request.to_string()) {
            Ok(reply) => {
                let used = serde_json::from_str::<Value>(&reply)
                    .ok()
                    .and_then(|v| v.get("call_id")?.as_str().and_then(ids::parse_uuid))
                    .unwrap_or(call_id);
                return Ok((device, used));
            }
            Err(e) if e.code == "duplicate_call_id" => last = Some(e),
            Err(e) => {
                host.close_device(device);
                return Err(switch_failure("cannot place the call", &e));
            }
        }
    }
    host.close_device(device);
    Err(switch_failure(
        "cannot place the call",
        &last.expect("every attempt failed"),
    ))
}

fn create_call(host: &dyn Host, req: &Request) -> Result<model::CallLogJson, Failure> {
    let (api_user, token) = authenticate(host, req)?;
    let call = model::parse_create_call(req.body).map_err(Failure::bad_request)?;
    let db = store::db_ids(host);
    let creator = match call.creator_user {
        None => api_user.clone(),
        Some(db_id) => {
            let target = db.target(db_id).ok_or_else(|| {
                Failure::bad_request(format!(
                    "`creatorUser` {db_id} is not in the `db_ids` setting"
                ))
            })?;
            host.find_user(target).ok_or_else(|| {
                Failure::bad_request(format!(
                    "`creatorUser` {db_id} stands for `{target}`, which names no user of the switch"
                ))
            })?
        }
    };
    // The API user is a broker when it creates the call for someone else.
    let brokered = creator.id != api_user.id;
    let invitees = resolve_invitees(host, &db, &call, &creator)?;
    let targets: Vec<String> = invitees
        .iter()
        .filter(|u| u.id != api_user.id)
        .map(|u| u.id.clone())
        .collect();
    let (device, call_id) = if call.inform_others_directly {
        if targets.is_empty() {
            return Err(Failure::bad_request(format!(
                "`invitedContacts` must name someone besides the broker `{}`",
                api_user.name
            )));
        }
        let (device, call_id) = dial(host, token, &api_user, &targets)?;
        (Some(device), call_id)
    } else {
        (None, fresh_call_id(host, &api_user, 0))
    };
    let log = StoredLog {
        id: store::take_id(host),
        call_id,
        title: call.call_title.clone(),
        reason: call.call_reason,
        call_type: call.call_type,
        anonymous_join_allow: call.join_anonymous_allowed,
        planned_date_time: call.planned_date_time.clone(),
        created_at_ms: host.now_ms(),
        creator: store::identity_contact(&creator),
        invited: call
            .invited_contacts
            .iter()
            .zip(&invitees)
            .map(|(c, u)| invited_contact(c, u))
            .collect(),
        broker: brokered.then(|| Broker {
            contact: store::identity_contact(&api_user),
            creator_invited: false,
            done: false,
        }),
        device,
        status: if device.is_some() {
            CallStatus::Started
        } else {
            CallStatus::Planned
        },
    };
    store::save_log(host, &log);
    if let Some(device) = device {
        store::bind_device(host, device, &log.call_id);
    }
    host.log(
        Level::Info,
        &format!(
            "call log {} ({}) created by {}{}",
            log.id,
            log.call_id,
            api_user.name,
            match device {
                Some(d) => format!(", dialled from device {d}"),
                None => ", planned".to_string(),
            }
        ),
    );
    Ok(store::view(host, &log, device.is_some()))
}

/// Resolves every invited contact; refuses the creator and duplicates.
fn resolve_invitees(
    host: &dyn Host,
    db: &DbIds,
    call: &CreateCall,
    creator: &User,
) -> Result<Vec<User>, Failure> {
    let mut users: Vec<User> = Vec::with_capacity(call.invited_contacts.len());
    for (i, contact) in call.invited_contacts.iter().enumerate() {
        let user = resolve_contact(host, db, contact, i).map_err(Failure::bad_request)?;
        if user.id == creator.id {
            return Err(Failure::bad_request(format!(
                "`invitedContacts[{i}]` names the creator `{}`, who cannot be invited to their own call",
                user.name
            )));
        }
        if let Some(j) = users.iter().position(|u| u.id == user.id) {
            return Err(Failure::bad_request(format!(
                "`invitedContacts[{i}]` names `{}`, as `invitedContacts[{j}]` does",
                user.name
            )));
        }
        users.push(user);
    }
    Ok(users)
}

/// An invited contact as stored: the request's fields, the user's name.
fn invited_contact(contact: &ContactIn, user: &User) -> StoredContact {
    StoredContact {
        user_id: user.id.clone(),
        name: user.name.clone(),
        display_name: contact.display_name.clone().unwrap_or_default(),
        domain: contact.domain.clone().unwrap_or_default(),
        email: contact.email.clone().unwrap_or_default(),
        phone_number: contact.phone_number.clone(),
        numbers: user.numbers.clone(),
    }
}

#[cfg(test)]
mod tests;
