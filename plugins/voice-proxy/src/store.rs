//! The voice sessions, kept in the plugin's `kv` store so that they survive
//! a reload of the plugin (and a restart of the switch): one entry per
//! `cid` with who the customer and the operator are, the switch call that
//! mirrors the negotiation and where it stands.
//!
//! Keys:
//! - `cid/<cid>`: a [`Session`] as JSON;
//! - `call/<call id>`: the `cid` whose mirrored call this is (to find the
//!   session of a switch event);
//! - `seq`: the last session sequence number given (decimal), which orders
//!   sessions for pruning (the plugin has no clock).
//!
//! Ended sessions are kept (a `summary` or a late `stop` still finds its
//! parties) until the store holds [`MAX_SESSIONS`]; then the oldest
//! sessions without a live call are dropped.

use serde::{Deserialize, Serialize};

use crate::host::{Host, Level, User};

const CID_PREFIX: &str = "cid/";
const CALL_PREFIX: &str = "call/";
const SEQ_KEY: &str = "seq";

/// How many sessions the store keeps before dropping the oldest ones that
/// have no live call.
pub const MAX_SESSIONS: usize = 256;

/// Where the mirrored call of a session stands, as far as the plugin knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `setup` was forwarded; no call yet.
    Setup,
    /// `start` placed the call; the operator's devices ring.
    Ringing,
    /// The operator accepted: the call is answered.
    Active,
    /// The call is over (`busy`, `stop`, or the switch ended it).
    Ended,
}

/// Which side of a session a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Side {
    #[default]
    Customer,
    Operator,
}

/// One negotiation, by `cid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub customer: User,
    pub operator: User,
    /// The switch call mirroring the negotiation, once `start` placed one.
    pub call_id: Option<String>,
    pub phase: Phase,
    /// Orders sessions from the oldest.
    pub seq: u64,
    /// Who sent the `start` of the current call: the other side accepts
    /// or answers busy. (The seed's proxy has the operator start after the
    /// customer's `setup`; a customer may start too.)
    #[serde(default)]
    pub starter: Side,
}

impl Session {
    /// The side `user_id` is on; `None` for a stranger to the session.
    pub fn side_of(&self, user_id: &str) -> Option<Side> {
        if user_id == self.customer.id {
            Some(Side::Customer)
        } else if user_id == self.operator.id {
            Some(Side::Operator)
        } else {
            None
        }
    }

    /// The user on `side`.
    pub fn user(&self, side: Side) -> &User {
        match side {
            Side::Customer => &self.customer,
            Side::Operator => &self.operator,
        }
    }

    /// The user on the other side from `side`.
    pub fn other(&self, side: Side) -> &User {
        match side {
            Side::Customer => &self.operator,
            Side::Operator => &self.customer,
        }
    }

    /// The session's call, when the plugin believes it rings or is
    /// answered and the switch still lists it among its live calls (after a
    /// reload the plugin missed the call's end).
    pub fn live_call<'a>(&'a self, live: &[String]) -> Option<&'a str> {
        let call_id = self.call_id.as_deref()?;
        let believed = matches!(self.phase, Phase::Ringing | Phase::Active);
        (believed && live.iter().any(|id| id == call_id)).then_some(call_id)
    }
}

/// The session of `cid`; `None` if there is none (or its entry does not
/// parse, which is logged).
pub fn load<H: Host>(host: &H, cid: &str) -> Option<Session> {
    let bytes = host.kv_get(&format!("{CID_PREFIX}{cid}"))?;
    match serde_json::from_slice(&bytes) {
        Ok(session) => Some(session),
        Err(error) => {
            host.log(
                Level::Warn,
                &format!("session {cid:?}: stored entry unreadable ({error}); ignored"),
            );
            None
        }
    }
}

/// Stores `session` under `cid`, and indexes its call.
pub fn save<H: Host>(host: &H, cid: &str, session: &Session) {
    let bytes = serde_json::to_vec(session).unwrap_or_default();
    host.kv_set(&format!("{CID_PREFIX}{cid}"), &bytes);
    if let Some(call_id) = &session.call_id {
        let key = format!("{CALL_PREFIX}{call_id}");
        if host.kv_get(&key).as_deref() != Some(cid.as_bytes()) {
            host.kv_set(&key, cid.as_bytes());
        }
    }
}

/// Sets the phase of `cid`'s session to `phase` if it is `from`'s; true if
/// it changed.
pub fn set_phase<H: Host>(host: &H, cid: &str, from: &[Phase], phase: Phase) -> bool {
    let Some(mut session) = load(host, cid) else {
        return false;
    };
    if session.phase == phase || !from.contains(&session.phase) {
        return false;
    }
    session.phase = phase;
    save(host, cid, &session);
    true
}

/// Removes `cid`'s session and its call index.
pub fn delete<H: Host>(host: &H, cid: &str) {
    if let Some(session) = load(host, cid) {
        if let Some(call_id) = session.call_id {
            host.kv_delete(&format!("{CALL_PREFIX}{call_id}"));
        }
    }
    host.kv_delete(&format!("{CID_PREFIX}{cid}"));
}

/// The `cid` whose session's call is `call_id`.
pub fn cid_of_call<H: Host>(host: &H, call_id: &str) -> Option<String> {
    let bytes = host.kv_get(&format!("{CALL_PREFIX}{call_id}"))?;
    String::from_utf8(bytes).ok()
}

/// Forgets that `call_id` belongs to a session (its session moved on to
/// another call).
pub fn forget_call<H: Host>(host: &H, call_id: &str) {
    host.kv_delete(&format!("{CALL_PREFIX}{call_id}"));
}

/// The next session sequence number.
pub fn next_seq<H: Host>(host: &H) -> u64 {
    let last = host
        .kv_get(SEQ_KEY)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0);
    let next = last + 1;
    host.kv_set(SEQ_KEY, next.to_string().as_bytes());
    next
}

/// Makes room for a new session: while the store holds [`MAX_SESSIONS`]
/// or more, drops the oldest sessions that have no live call.
pub fn prune<H: Host>(host: &H, live: &[String]) {
    let keys = host.kv_keys(CID_PREFIX);
    if keys.len() < MAX_SESSIONS {
        return;
    }
    let mut idle: Vec<(u64, String)> = keys
        .iter()
        .filter_map(|key| {
            let cid = key.strip_prefix(CID_PREFIX)?;
            match load(host, cid) {
                Some(session) if session.live_call(live).is_some() => None,
                Some(session) => Some((session.seq, cid.to_owned())),
                // Unreadable: the first to go.
                None => Some((0, cid.to_owned())),
            }
        })
        .collect();
    idle.sort();
    let excess = keys.len() + 1 - MAX_SESSIONS;
    for (_, cid) in idle.into_iter().take(excess) {
        delete(host, &cid);
        host.log(Level::Debug, &format!("session {cid:?}: pruned"));
    }
}
