//! What the plugin remembers between calls into it: the notification
//! sockets and their devices, the calls it takes part in, the phone sockets
//! carrying their media, and the upgrades accepted but not yet opened.
//!
//! It lives in one `State` value (a global of the component, see `lib.rs`);
//! the host calls the plugin one call at a time, so nothing here is shared.
//! All ids are the switch's lower-case UUIDs and numeric device/stream ids.

use std::collections::{BTreeMap, BTreeSet};

use crate::host::User;
use crate::wire::CallerAddress;

/// A notification socket (`/notification/socket`) and the ringing device the
/// plugin opened for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySocket {
    pub device: u64,
    pub user: User,
}

/// Which end of a call a phone socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The caller's `/phone/socket/initiate/...` socket.
    Caller,
    /// The callee's `/phone/socket/answer/...` socket.
    Answerer,
}

/// A phone socket: the media of one side of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneSocket {
    pub call_id: String,
    pub side: Side,
}

/// A call between a caller and a callee as the API sees it: one per call id
/// (the switch's call id), whether it was placed through the API or by a
/// QUIC client ringing an API user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub caller: User,
    pub callee: User,
    /// The device the plugin dialled from for the caller; `None` when the
    /// caller dialled from their own (QUIC) client.
    pub leg_device: Option<u64>,
    /// The address the caller posted on the direct path.
    pub caller_address: Option<CallerAddress>,
    pub caller_stream: Option<u64>,
    pub answer_stream: Option<u64>,
    /// The callee's notification device that answered, once one did.
    pub answering_device: Option<u64>,
    /// The callee's notification devices the call rings on.
    pub ringing: BTreeSet<u64>,
    /// The notification sockets already told `phoneCallAnswered`.
    pub answered_sent: BTreeSet<u64>,
    /// Whether the call has started for the API: the start packet went out
    /// and the phone sockets carry its media.
    pub started: bool,
    /// The user who ended the call through `/phone/decline`, who is not
    /// told `phoneCallEnded`.
    pub ended_by: Option<String>,
    /// When the plugin learnt of the call (`clock.monotonic-ms`).
    pub known_since_ms: u64,
}

impl Call {
    pub fn new(caller: User, callee: User, known_since_ms: u64) -> Call {
        Call {
            caller,
            callee,
            leg_device: None,
            caller_address: None,
            caller_stream: None,
            answer_stream: None,
            answering_device: None,
            ringing: BTreeSet::new(),
            answered_sent: BTreeSet::new(),
            started: false,
            ended_by: None,
            known_since_ms,
        }
    }
}

/// An upgrade the plugin accepted, waiting for its `on-stream-open`.
///
/// The upgrade's context string names only the entry (`notify:3`): the
/// token stays in the plugin's memory rather than in a string the host
/// might show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A notification socket of the token's user.
    Notify { token: String },
    /// A server-mediated call to place once the caller's socket is open.
    Initiate {
        token: String,
        call_id: String,
        caller: User,
        callee: User,
    },
    /// The callee's phone socket for a call `device` answered.
    Answer { call_id: String, device: u64 },
}

impl Pending {
    fn kind(&self) -> &'static str {
        match self {
            Pending::Notify { .. } => "notify",
            Pending::Initiate { .. } => "initiate",
            Pending::Answer { .. } => "answer",
        }
    }
}

/// How many accepted upgrades may wait for their stream. The host opens a
/// stream right after the upgrade, so only a failed upgrade leaves an entry
/// behind; the oldest are dropped past this.
const MAX_PENDING: usize = 64;

#[derive(Debug, Default)]
pub struct State {
    /// Notification sockets by stream id.
    pub notify: BTreeMap<u64, NotifySocket>,
    /// The stream of each notification device.
    pub notify_by_device: BTreeMap<u64, u64>,
    /// The call of each leg device.
    pub legs: BTreeMap<u64, String>,
    /// Calls by call id.
    pub calls: BTreeMap<String, Call>,
    /// Phone sockets by stream id.
    pub phone_sockets: BTreeMap<u64, PhoneSocket>,
    pending: BTreeMap<u64, Pending>,
    next_pending: u64,
}

impl State {
    /// Keeps `pending` and returns the context string to upgrade with.
    pub fn add_pending(&mut self, pending: Pending) -> String {
        while self.pending.len() >= MAX_PENDING {
            self.pending.pop_first();
        }
        self.next_pending += 1;
        let context = format!("{}:{}", pending.kind(), self.next_pending);
        self.pending.insert(self.next_pending, pending);
        context
    }

    /// The pending upgrade `context` names, removed.
    pub fn take_pending(&mut self, context: &str) -> Option<Pending> {
        let (kind, number) = context.split_once(':')?;
        let key = number.parse().ok()?;
        if self.pending.get(&key)?.kind() != kind {
            return None;
        }
        self.pending.remove(&key)
    }

    /// The notification streams of user `user_id`, oldest first.
    pub fn notify_streams_of(&self, user_id: &str) -> Vec<u64> {
        self.notify
            .iter()
            .filter(|(_, socket)| socket.user.id == user_id)
            .map(|(&stream, _)| stream)
            .collect()
    }

    /// The notification devices of user `user_id`, oldest socket first.
    pub fn notify_devices_of(&self, user_id: &str) -> Vec<u64> {
        self.notify
            .values()
            .filter(|socket| socket.user.id == user_id)
            .map(|socket| socket.device)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            name: id.into(),
        }
    }

    #[test]
    fn pending_upgrades_are_taken_once_by_their_context() {
        let mut state = State::default();
        let notify = state.add_pending(Pending::Notify {
            token: "secret".into(),
        });
        let answer = state.add_pending(Pending::Answer {
            call_id: "c".into(),
            device: 7,
        });
        assert_eq!(notify, "notify:1");
        assert_eq!(answer, "answer:2");
        assert!(!notify.contains("secret"));
        // The kind must match the entry.
        assert_eq!(state.take_pending("answer:1"), None);
        assert_eq!(
            state.take_pending(&notify),
            Some(Pending::Notify {
                token: "secret".into()
            })
        );
        assert_eq!(state.take_pending(&notify), None);
        assert_eq!(state.take_pending("garbage"), None);
        assert!(state.take_pending(&answer).is_some());
    }

    #[test]
    fn pending_upgrades_are_bounded() {
        let mut state = State::default();
        let first = state.add_pending(Pending::Notify { token: "t".into() });
        for _ in 0..MAX_PENDING {
            state.add_pending(Pending::Notify { token: "t".into() });
        }
        assert_eq!(state.pending.len(), MAX_PENDING);
        assert_eq!(state.take_pending(&first), None);
    }

    #[test]
    fn sockets_are_found_by_user() {
        let mut state = State::default();
        for (stream, device, id) in [(1, 10, "a"), (2, 20, "b"), (3, 30, "a")] {
            state.notify.insert(
                stream,
                NotifySocket {
                    device,
                    user: user(id),
                },
            );
        }
        assert_eq!(state.notify_streams_of("a"), vec![1, 3]);
        assert_eq!(state.notify_devices_of("a"), vec![10, 30]);
        assert!(state.notify_streams_of("c").is_empty());
    }
}
