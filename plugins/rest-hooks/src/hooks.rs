//! The hooks: what the plugin sends to the backend for each, and how the
//! backend's answer becomes a verdict.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{json, Map, Value};

use crate::host::{
    Call, ConnectVerdict, DialVerdict, Event, Host, Level, PartyStatus, User, Verdict,
};
use crate::settings::{ClientConfig, MethodConfig, OnError, RestPolicy, Settings};

/// kv key of a user's `restClientConfig`.
pub fn cfg_key(user_id: &str) -> String {
    format!("cfg/{user_id}")
}

/// kv key mapping a login name to its user id (written at `connect`), so
/// that a callee the backend named by login finds its user's config.
pub fn login_key(name: &str) -> String {
    format!("login/{name}")
}

/// Longest reason passed to the switch (a backend's `reason` is cut).
const MAX_REASON: usize = 256;
/// Longest target a redirect may name (the switch refuses longer ones).
const MAX_TARGET: usize = 1024;
/// Calls remembered between `on-dial` and their last event.
const MAX_TRACKED: usize = 10_000;
/// Calls this plugin denied, whose `ended` event is not reported.
const MAX_DENIED: usize = 1_000;

/// What the plugin remembers between hooks (lost on reload; nothing in it
/// is needed for a decision).
#[derive(Debug, Default)]
pub struct State {
    calls: BTreeMap<String, Track>,
    denied: VecDeque<String>,
}

/// A call whose events are being reported.
#[derive(Debug, Default)]
struct Track {
    /// The caller's `sessionId`, when the call went through `on-dial`.
    session_id: Option<String>,
    /// `NEW` was sent.
    announced: bool,
    /// Users whose `RING` was sent (a user rings on each of its devices).
    rung: BTreeSet<String>,
}

impl State {
    fn track(&mut self, call_id: &str) -> &mut Track {
        if self.calls.len() >= MAX_TRACKED && !self.calls.contains_key(call_id) {
            // Calls whose end was never seen (events dropped by the host).
            if let Some(oldest) = self.calls.keys().next().cloned() {
                self.calls.remove(&oldest);
            }
        }
        self.calls.entry(call_id.to_string()).or_default()
    }

    fn remember_denied(&mut self, call_id: &str) {
        if self.denied.len() >= MAX_DENIED {
            self.denied.pop_front();
        }
        self.denied.push_back(call_id.to_string());
    }
}

/// The `sessionId` of a user's connection: `<user id>/<device label>`, or
/// the user id alone when the label is unknown.
pub fn session_id(user: &User) -> String {
    match &user.device {
        Some(label) => format!("{}/{label}", user.id),
        None => user.id.clone(),
    }
}

/// How the backend answered one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 200 with a JSON object.
    Ok(Map<String, Value>),
    /// 403: the backend forbids it; its `reason`, if it gave one.
    Forbidden(Option<String>),
    /// Anything else: the error, for the log and for `FAIL` reasons.
    Error(String),
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn base(s: &Settings, session: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("nodeId".into(), json!(s.node_id));
    body.insert("appKey".into(), json!(s.app_key));
    body.insert("sessionId".into(), json!(session));
    body
}

fn extend(body: &mut Map<String, Value>, fields: Value) {
    if let Value::Object(fields) = fields {
        body.extend(fields);
    }
}

fn exclude(body: &mut Map<String, Value>, fields: &[String]) {
    for field in fields {
        body.remove(field);
    }
}

fn post(
    host: &dyn Host,
    s: &Settings,
    method: &str,
    body: &Map<String, Value>,
) -> Result<crate::host::Response, String> {
    let url = format!("{}/{method}", s.url);
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    host.post_json(&url, bytes, s.timeout_ms)
}

/// POSTs a direct invocation (or `connect`, or `OnCallEvent`).
pub fn invoke(
    host: &dyn Host,
    s: &Settings,
    method: &str,
    mut body: Map<String, Value>,
    mc: &MethodConfig,
) -> Outcome {
    exclude(&mut body, &mc.exclude);
    let response = match post(host, s, method, &body) {
        Ok(response) => response,
        Err(e) => return Outcome::Error(e),
    };
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    match response.status {
        200 => match parsed {
            Some(Value::Object(map)) => Outcome::Ok(map),
            _ => Outcome::Error(format!(
                "the 200 answer is not a JSON object ({})",
                snippet(&response.body)
            )),
        },
        403 => Outcome::Forbidden(
            parsed
                .as_ref()
                .and_then(|v| v.get("reason"))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| cut(r, MAX_REASON)),
        ),
        status => Outcome::Error(format!("HTTP {status} ({})", snippet(&response.body))),
    }
}

fn snippet(body: &[u8]) -> String {
    if body.is_empty() {
        return "empty body".into();
    }
    format!("body {:?}", cut(&String::from_utf8_lossy(body), 80))
}

/// Logs an interaction error and says whether to go on.
fn go_on(host: &dyn Host, method: &str, on_error: OnError, error: &str) -> bool {
    let then = match on_error {
        OnError::Log => "continuing",
        OnError::Fail => "stopping",
    };
    host.log(
        Level::Warn,
        &format!(
            "REST `{method}` failed: {error}; restOnError {}: {then}",
            on_error.name()
        ),
    );
    on_error == OnError::Log
}

fn fail_reason(method: &str, error: &str) -> String {
    cut(
        &format!("REST backend error: {method}: {error}"),
        MAX_REASON,
    )
}

/// The stored `restClientConfig` of a user (defaults when there is none).
pub fn client_config(host: &dyn Host, user_id: &str) -> ClientConfig {
    match host.kv_get(&cfg_key(user_id)) {
        None => ClientConfig::default(),
        Some(bytes) => ClientConfig::parse(&bytes).unwrap_or_else(|| {
            host.log(
                Level::Warn,
                &format!("stored restClientConfig of {user_id} does not parse; using defaults"),
            );
            ClientConfig::default()
        }),
    }
}

/// Whether a target string is a user id (a hyphenated UUID).
fn is_uuid(target: &str) -> bool {
    target.len() == 36
        && target.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The config of a callee named by a target string (its login name, or
/// its user id).
fn target_config(
    host: &dyn Host,
    target: &str,
    id: Option<&str>,
) -> (ClientConfig, Option<String>) {
    let id = id
        .map(String::from)
        .or_else(|| is_uuid(target).then(|| target.to_ascii_lowercase()))
        .or_else(|| {
            host.kv_get(&login_key(target))
                .and_then(|bytes| String::from_utf8(bytes).ok())
        });
    match id {
        Some(id) => (client_config(host, &id), Some(id)),
        None => (ClientConfig::default(), None),
    }
}

/// Sends an event (notification), through the outbox: when older events
/// are waiting there it is queued behind them (order is kept); otherwise it
/// is POSTed now (`event_attempts` times at most, at once) and queued if
/// that fails. Only the status counts: any 200 is a delivery.
pub fn notify(
    host: &dyn Host,
    s: &Settings,
    cfg: &ClientConfig,
    method: &str,
    mut body: Map<String, Value>,
) {
    let mc = cfg.method(method, s.rest_on_error);
    if mc.policy == RestPolicy::Disable {
        return;
    }
    exclude(&mut body, &mc.exclude);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut outbox = Outbox::load(host);
    if !outbox.is_empty() {
        outbox.push(host, s, method, &bytes);
        return;
    }
    if let Err(e) = send_event(host, s, method, &bytes) {
        host.log(
            Level::Warn,
            &format!("REST event `{method}` failed: {e}; kept in the outbox for a retry"),
        );
        outbox.push(host, s, method, &bytes);
        let backoff = outbox.backoff(host);
        host.kv_set(
            OUTBOX_RETRY_AT,
            (host.monotonic_ms() + backoff).to_string().as_bytes(),
        );
    }
}

/// POSTs one event, `event_attempts` times at most; `Ok` on a 200.
fn send_event(host: &dyn Host, s: &Settings, method: &str, body: &[u8]) -> Result<(), String> {
    let url = format!("{}/{method}", s.url);
    let mut last = String::new();
    for _ in 0..s.event_attempts.max(1) {
        match host.post_json(&url, body.to_vec(), s.timeout_ms) {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => last = format!("HTTP {} ({})", r.status, snippet(&r.body)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// kv key counting events dropped from a full outbox.
pub const EVENTS_DROPPED: &str = "stats/events-dropped";
/// kv key of the sequence number the next queued event gets.
pub const OUTBOX_NEXT: &str = "outbox-next";
/// kv key of the sequence number of the oldest queued event.
pub const OUTBOX_HEAD: &str = "outbox-head";
/// kv key of the `clock.monotonic-ms` before which no flush is tried.
pub const OUTBOX_RETRY_AT: &str = "outbox-retry-at";
/// kv key of the current backoff (ms).
pub const OUTBOX_BACKOFF: &str = "outbox-backoff";
/// First backoff after a failure.
pub const BACKOFF_MIN_MS: u64 = 100;
/// Longest backoff.
pub const BACKOFF_MAX_MS: u64 = 5_000;
/// Most queued events sent by one hook call (bounds its time).
pub const FLUSH_MAX: u32 = 20;

/// kv key of the queued event with sequence number `seq`.
pub fn outbox_key(seq: u64) -> String {
    format!("outbox/{seq:020}")
}

fn kv_u64(host: &dyn Host, key: &str) -> Option<u64> {
    host.kv_get(key)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.trim().parse::<u64>().ok())
}

/// The persistent queue of events that could not be delivered yet: entries
/// `outbox/<seq>` from `outbox-head` (oldest) to `outbox-next` (excluded),
/// each `<method>\n<JSON body>`.
struct Outbox {
    head: u64,
    next: u64,
}

impl Outbox {
    fn load(host: &dyn Host) -> Outbox {
        let next = kv_u64(host, OUTBOX_NEXT).unwrap_or(0);
        let head = kv_u64(host, OUTBOX_HEAD).unwrap_or(0).min(next);
        Outbox { head, next }
    }

    fn is_empty(&self) -> bool {
        self.head >= self.next
    }

    fn len(&self) -> u64 {
        self.next - self.head
    }

    /// The current backoff (ms).
    fn backoff(&self, host: &dyn Host) -> u64 {
        kv_u64(host, OUTBOX_BACKOFF)
            .unwrap_or(BACKOFF_MIN_MS)
            .clamp(BACKOFF_MIN_MS, BACKOFF_MAX_MS)
    }

    /// Removes the oldest entry.
    fn pop(&mut self, host: &dyn Host) {
        host.kv_delete(&outbox_key(self.head));
        self.head += 1;
        host.kv_set(OUTBOX_HEAD, self.head.to_string().as_bytes());
    }

    /// Appends an event, dropping the oldest when the outbox is full.
    fn push(&mut self, host: &dyn Host, s: &Settings, method: &str, body: &[u8]) {
        while self.len() >= u64::from(s.outbox_max) {
            let dropped = host
                .kv_get(&outbox_key(self.head))
                .map(|e| {
                    let text = String::from_utf8_lossy(&e).into_owned();
                    text.split('\n').next().unwrap_or_default().to_string()
                })
                .unwrap_or_default();
            self.pop(host);
            let count = kv_u64(host, EVENTS_DROPPED).unwrap_or(0) + 1;
            host.kv_set(EVENTS_DROPPED, count.to_string().as_bytes());
            host.log(
                Level::Error,
                &format!(
                    "REST event outbox full ({} events): the oldest, `{dropped}`, is dropped ({count} dropped so far)",
                    s.outbox_max
                ),
            );
        }
        let mut entry = method.as_bytes().to_vec();
        entry.push(b'\n');
        entry.extend_from_slice(body);
        host.kv_set(&outbox_key(self.next), &entry);
        self.next += 1;
        host.kv_set(OUTBOX_NEXT, self.next.to_string().as_bytes());
    }
}

/// Sends what waits in the outbox, oldest first, when the backoff allows:
/// at most [`FLUSH_MAX`] events, stopping at the first failure (which
/// doubles the backoff, up to [`BACKOFF_MAX_MS`]). Called at the start of
/// every hook; a failure here never changes a hook's decision.
pub fn flush(host: &dyn Host, s: &Settings) {
    let mut outbox = Outbox::load(host);
    if outbox.is_empty() {
        return;
    }
    let now = host.monotonic_ms();
    if let Some(at) = kv_u64(host, OUTBOX_RETRY_AT) {
        // A time far ahead is from before a restart (the clock starts at 0
        // with the switch): it does not hold.
        if now < at && at - now <= BACKOFF_MAX_MS {
            return;
        }
    }
    let mut sent = 0;
    while !outbox.is_empty() && sent < FLUSH_MAX {
        let entry = host.kv_get(&outbox_key(outbox.head)).unwrap_or_default();
        let Some(split) = entry.iter().position(|b| *b == b'\n') else {
            host.log(
                Level::Error,
                &format!(
                    "REST event outbox entry {} is unreadable; dropped",
                    outbox.head
                ),
            );
            outbox.pop(host);
            continue;
        };
        let method = String::from_utf8_lossy(&entry[..split]).into_owned();
        match send_event(host, s, &method, &entry[split + 1..]) {
            Ok(()) => {
                outbox.pop(host);
                sent += 1;
                if host.kv_get(OUTBOX_BACKOFF).is_some() {
                    host.kv_delete(OUTBOX_BACKOFF);
                }
            }
            Err(e) => {
                let backoff = (outbox.backoff(host) * 2).min(BACKOFF_MAX_MS);
                host.kv_set(OUTBOX_BACKOFF, backoff.to_string().as_bytes());
                host.kv_set(OUTBOX_RETRY_AT, (now + backoff).to_string().as_bytes());
                host.log(
                    Level::Warn,
                    &format!(
                        "REST event `{method}` failed again: {e}; {} event(s) wait in the outbox, next try in {backoff} ms",
                        outbox.len()
                    ),
                );
                return;
            }
        }
    }
    if outbox.is_empty() {
        host.log(Level::Info, "REST event outbox flushed");
        if host.kv_get(OUTBOX_RETRY_AT).is_some() {
            host.kv_delete(OUTBOX_RETRY_AT);
        }
    }
}

fn connection_status(
    host: &dyn Host,
    s: &Settings,
    client: &User,
    session: &str,
    status: &str,
    info: Option<&str>,
) {
    let cfg = client_config(host, &client.id);
    let mut body = base(s, session);
    extend(
        &mut body,
        json!({"login": client.name, "userId": client.id, "status": status}),
    );
    if let Some(info) = info {
        body.insert("info".into(), json!(info));
    }
    notify(host, s, &cfg, "ConnectionStatusEvent", body);
}

/// Stores (or clears) a user's `restClientConfig` from a `connect` answer,
/// writing only what changed (every kv write rewrites the store).
fn store_config(host: &dyn Host, user_id: &str, answer: &Map<String, Value>) {
    let key = cfg_key(user_id);
    match answer.get("restClientConfig") {
        Some(Value::Object(map)) => {
            let cfg = ClientConfig(map.clone());
            for problem in cfg.problems() {
                host.log(
                    Level::Warn,
                    &format!("restClientConfig of {user_id}: {problem} (the default applies)"),
                );
            }
            let bytes = cfg.to_bytes();
            if host.kv_get(&key).as_deref() != Some(bytes.as_slice()) {
                host.kv_set(&key, &bytes);
            }
        }
        Some(other) => host.log(
            Level::Warn,
            &format!("restClientConfig of {user_id} is not an object ({other}); ignored"),
        ),
        None => {
            if host.kv_get(&key).is_some() {
                host.kv_delete(&key);
            }
        }
    }
}

fn remember_login(host: &dyn Host, user: &User) {
    let key = login_key(&user.name);
    if host.kv_get(&key).as_deref() != Some(user.id.as_bytes()) {
        host.kv_set(&key, user.id.as_bytes());
    }
}

/// `on-connect` → `connect`.
pub fn on_connect(host: &dyn Host, s: &Settings, client: &User) -> ConnectVerdict {
    flush(host, s);
    let mc = client_config(host, &client.id).method("connect", s.rest_on_error);
    let session = session_id(client);
    remember_login(host, client);
    if mc.policy == RestPolicy::Disable {
        connection_status(host, s, client, &session, "ESTABLISHED", None);
        return ConnectVerdict::Admit(None);
    }
    let mut body = base(s, &session);
    extend(
        &mut body,
        json!({
            "login": client.name,
            "userId": client.id,
            "numbers": client.numbers,
            "clientVersion": "callswitch",
        }),
    );
    if let Some(label) = &client.device {
        body.insert("deviceLabel".into(), json!(label));
    }
    match invoke(host, s, "connect", body, &mc) {
        Outcome::Ok(answer) => {
            store_config(host, &client.id, &answer);
            let label = answer
                .get("deviceLabel")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|l| !l.is_empty() && mc.may_overwrite("deviceLabel"))
                .filter(|l| client.device.as_deref() != Some(*l))
                .map(|l| cut(l, MAX_REASON));
            let session = match &label {
                Some(l) => session_id(&User {
                    device: Some(l.clone()),
                    ..client.clone()
                }),
                None => session,
            };
            connection_status(host, s, client, &session, "ESTABLISHED", None);
            ConnectVerdict::Admit(label)
        }
        Outcome::Forbidden(reason) => {
            let reason = reason.unwrap_or_else(|| "rejected by the REST backend".into());
            connection_status(host, s, client, &session, "FAILED", Some(&reason));
            ConnectVerdict::Refuse(reason)
        }
        Outcome::Error(e) => {
            if go_on(host, "connect", mc.on_error, &e) {
                connection_status(host, s, client, &session, "ESTABLISHED", None);
                ConnectVerdict::Admit(None)
            } else {
                let reason = fail_reason("connect", &e);
                connection_status(host, s, client, &session, "FAILED", Some(&reason));
                ConnectVerdict::Refuse(reason)
            }
        }
    }
}

/// The verdict of a direct invocation that allows or forbids.
fn decide(host: &dyn Host, method: &str, mc: &MethodConfig, outcome: &Outcome) -> Verdict {
    match outcome {
        Outcome::Ok(_) => Verdict::Allow,
        Outcome::Forbidden(reason) => Verdict::Deny(
            reason
                .clone()
                .unwrap_or_else(|| "forbidden by the REST backend".into()),
        ),
        Outcome::Error(e) => {
            if go_on(host, method, mc.on_error, e) {
                Verdict::Allow
            } else {
                Verdict::Deny(fail_reason(method, e))
            }
        }
    }
}

fn call_fields(call_id: &str, incoming: bool, caller: &str, callee: &str) -> Value {
    json!({
        "callId": call_id,
        "incoming": incoming,
        "caller": caller,
        "callee": callee,
        "hasAudio": true,
        "hasVideo": false,
    })
}

/// `on-dial` → `call`, then `OnCallEvent` for each callee.
pub fn on_dial(
    host: &dyn Host,
    s: &Settings,
    state: &mut State,
    call: &Call,
    caller: &User,
    targets: &[User],
) -> DialVerdict {
    flush(host, s);
    let Some(first) = targets.first() else {
        return DialVerdict::Allow;
    };
    // (target string, user id when known)
    let mut callees: Vec<(String, Option<String>)> = targets
        .iter()
        .map(|t| (t.name.clone(), Some(t.id.clone())))
        .collect();
    let mut redirected = false;
    let session = session_id(caller);

    let mc = client_config(host, &caller.id).method("call", s.rest_on_error);
    if mc.policy != RestPolicy::Disable {
        let mut body = base(s, &session);
        extend(
            &mut body,
            call_fields(&call.id, false, &caller.name, &first.name),
        );
        body.insert("status".into(), json!("PENDING"));
        if targets.len() > 1 {
            body.insert(
                "callees".into(),
                json!(targets.iter().map(|t| &t.name).collect::<Vec<_>>()),
            );
        }
        let outcome = invoke(host, s, "call", body, &mc);
        if let Outcome::Ok(answer) = &outcome {
            if mc.may_overwrite("callee") {
                match answer.get("callee").and_then(Value::as_str).map(str::trim) {
                    Some(new) if new.is_empty() || new.len() > MAX_TARGET => host.log(
                        Level::Warn,
                        &format!("`call` answer overwrites callee with an unusable target ({} bytes); ignored", new.len()),
                    ),
                    Some(new) if new != first.name && new != first.id => {
                        host.log(
                            Level::Info,
                            &format!("call {}: the backend redirects {} to {new}", call.id, first.name),
                        );
                        callees[0] = (new.to_string(), None);
                        let mut seen = BTreeSet::new();
                        callees.retain(|c| seen.insert(c.0.clone()));
                        redirected = true;
                    }
                    _ => {}
                }
            }
        }
        if let Verdict::Deny(reason) = decide(host, "call", &mc, &outcome) {
            state.remember_denied(&call.id);
            return DialVerdict::Deny(reason);
        }
    }

    // Incoming invocations: the callees' backends (the same backend, each
    // callee's own restClientConfig) may refuse them.
    let mut allowed = Vec::new();
    let mut refusal = None;
    for (target, id) in callees {
        let (cfg, id) = target_config(host, &target, id.as_deref());
        let mc = cfg.method("OnCallEvent", s.rest_on_error);
        if mc.policy == RestPolicy::Disable {
            allowed.push(target);
            continue;
        }
        let mut body = base(s, id.as_deref().unwrap_or(&target));
        extend(
            &mut body,
            call_fields(&call.id, true, &caller.name, &target),
        );
        body.insert("status".into(), json!("PENDING"));
        let refused = match invoke(host, s, "OnCallEvent", body, &mc) {
            Outcome::Ok(_) => None,
            Outcome::Forbidden(reason) => Some(match reason {
                Some(r) => format!("forbidden: {r}"),
                None => "forbidden".to_string(),
            }),
            Outcome::Error(e) => {
                if go_on(host, "OnCallEvent", mc.on_error, &e) {
                    None
                } else {
                    Some(format!("forbidden ({})", fail_reason("OnCallEvent", &e)))
                }
            }
        };
        match refused {
            None => allowed.push(target),
            Some(reason) => {
                host.log(
                    Level::Info,
                    &format!(
                        "call {}: incoming call to {target} refused: {reason}",
                        call.id
                    ),
                );
                refusal.get_or_insert(reason);
            }
        }
    }
    if allowed.is_empty() {
        state.remember_denied(&call.id);
        return DialVerdict::Deny(refusal.unwrap_or_else(|| "forbidden".into()));
    }
    state.track(&call.id).session_id = Some(session);
    if redirected || refusal.is_some() {
        DialVerdict::Redirect(allowed)
    } else {
        DialVerdict::Allow
    }
}

/// `on-answer` → `answer`.
pub fn on_answer(host: &dyn Host, s: &Settings, call: &Call, answerer: &User) -> Verdict {
    flush(host, s);
    let mc = client_config(host, &answerer.id).method("answer", s.rest_on_error);
    if mc.policy == RestPolicy::Disable {
        return Verdict::Allow;
    }
    let mut body = base(s, &session_id(answerer));
    extend(
        &mut body,
        call_fields(&call.id, true, &call.caller.name, &answerer.name),
    );
    let outcome = invoke(host, s, "answer", body, &mc);
    decide(host, "answer", &mc, &outcome)
}

/// An in-call operation put to `on-action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Hold,
    Unhold,
    Dtmf(String),
    Hangup,
}

impl Action {
    /// The WCS method name of the invocation.
    pub fn method(&self) -> &'static str {
        match self {
            Action::Hold => "hold",
            Action::Unhold => "unhold",
            Action::Dtmf(_) => "sendDTMF",
            Action::Hangup => "hangup",
        }
    }
}

/// `on-action` → `hold`, `unhold`, `sendDTMF` or `hangup` (the actor's
/// config and session): a 403 forbids it, other errors follow restOnError.
pub fn on_action(
    host: &dyn Host,
    s: &Settings,
    call: &Call,
    actor: &User,
    action: &Action,
) -> Verdict {
    flush(host, s);
    let method = action.method();
    let mc = client_config(host, &actor.id).method(method, s.rest_on_error);
    if mc.policy == RestPolicy::Disable {
        return Verdict::Allow;
    }
    let mut body = base(s, &session_id(actor));
    extend(
        &mut body,
        json!({
            "callId": call.id,
            "caller": call.caller.name,
            "login": actor.name,
        }),
    );
    if let Action::Dtmf(digits) = action {
        extend(&mut body, json!({ "dtmf": digits }));
    }
    let outcome = invoke(host, s, method, body, &mc);
    decide(host, method, &mc, &outcome)
}

/// `on-transfer` → `transfer` (the transferred party's config and session).
pub fn on_transfer(host: &dyn Host, s: &Settings, call: &Call, from: &User, to: &User) -> Verdict {
    flush(host, s);
    let mc = client_config(host, &from.id).method("transfer", s.rest_on_error);
    if mc.policy == RestPolicy::Disable {
        return Verdict::Allow;
    }
    let mut body = base(s, &session_id(from));
    extend(
        &mut body,
        json!({
            "callId": call.id,
            "caller": call.caller.name,
            "from": from.name,
            "target": to.name,
        }),
    );
    let outcome = invoke(host, s, "transfer", body, &mc);
    decide(host, "transfer", &mc, &outcome)
}

/// `on-message` → `sendMessage`, then `MessageStatusEvent` SENT when allowed.
pub fn on_message(
    host: &dyn Host,
    s: &Settings,
    sender: &User,
    recipient: &User,
    text: &str,
) -> Verdict {
    flush(host, s);
    let cfg = client_config(host, &sender.id);
    let mc = cfg.method("sendMessage", s.rest_on_error);
    let session = session_id(sender);
    let mut fields = base(s, &session);
    extend(
        &mut fields,
        json!({
            "from": sender.name,
            "to": recipient.name,
            "body": text,
            "contentType": "application/json",
        }),
    );
    let verdict = if mc.policy == RestPolicy::Disable {
        Verdict::Allow
    } else {
        let outcome = invoke(host, s, "sendMessage", fields.clone(), &mc);
        decide(host, "sendMessage", &mc, &outcome)
    };
    if verdict == Verdict::Allow {
        fields.insert("status".into(), json!("SENT"));
        notify(host, s, &cfg, "MessageStatusEvent", fields);
    }
    verdict
}

/// The first callee of a call (the party after the caller).
fn first_callee(call: &Call) -> String {
    call.parties
        .iter()
        .map(|(u, _)| u)
        .find(|u| u.id != call.caller.id)
        .map(|u| u.name.clone())
        .unwrap_or_default()
}

/// `on-event` → `CallStatusEvent` (preceded by `NEW` for a call's first).
pub fn on_event(host: &dyn Host, s: &Settings, state: &mut State, call: &Call, event: &Event) {
    flush(host, s);
    if let Some(at) = state.denied.iter().position(|id| *id == call.id) {
        // The backend refused this call itself: it never existed for it.
        if matches!(event, Event::Ended(_)) {
            state.denied.remove(at);
        }
        return;
    }
    // (status, the party concerned, info)
    let (status, who, info): (&str, Option<&User>, Option<String>) = match event {
        Event::Ringing(u) => ("RING", Some(u), None),
        Event::Answered(u) => ("ESTABLISHED", Some(u), None),
        Event::Held(u) => ("HOLD", Some(u), None),
        Event::Resumed(u) => ("ESTABLISHED", Some(u), None),
        Event::Busy(u) => ("BUSY", Some(u), None),
        Event::Declined(u) => ("FAILED", Some(u), Some("declined".into())),
        Event::NoAnswer(u) => {
            let unavailable = call
                .parties
                .iter()
                .any(|(p, st)| p.id == u.id && *st == PartyStatus::Unavailable);
            let info = if unavailable {
                "unavailable"
            } else {
                "no_answer"
            };
            ("FAILED", Some(u), Some(info.into()))
        }
        Event::Ended(reason) => ("FINISH", None, Some(reason.clone())),
        Event::Joined(_) | Event::Left(_) | Event::Dtmf(_) => ("", None, None),
    };
    let track = state.track(&call.id);
    let session = track
        .session_id
        .clone()
        .unwrap_or_else(|| call.caller.id.clone());
    let announce = !track.announced;
    track.announced = true;
    let ring_again = match (event, who) {
        (Event::Ringing(_), Some(u)) => !track.rung.insert(u.id.clone()),
        _ => false,
    };
    if matches!(event, Event::Ended(_)) {
        state.calls.remove(&call.id);
    }
    let cfg = client_config(host, &call.caller.id);
    let callee_of_call = first_callee(call);
    let body = |status: &str, callee: &str, info: Option<&str>| {
        let mut body = base(s, &session);
        extend(
            &mut body,
            call_fields(&call.id, false, &call.caller.name, callee),
        );
        body.insert("status".into(), json!(status));
        if let Some(info) = info {
            body.insert("info".into(), json!(info));
        }
        body
    };
    if announce {
        notify(
            host,
            s,
            &cfg,
            "CallStatusEvent",
            body("NEW", &callee_of_call, None),
        );
    }
    if status.is_empty() || ring_again {
        return;
    }
    // The party concerned, unless it is the caller (holding, say).
    let callee = match who {
        Some(u) if u.id != call.caller.id => u.name.clone(),
        _ => callee_of_call,
    };
    notify(
        host,
        s,
        &cfg,
        "CallStatusEvent",
        body(status, &callee, info.as_deref()),
    );
}
