//! What the plugin remembers between calls into it: the terminals (one per
//! gRPC stream, each with the switch device opened for it), their legs in
//! calls, the SDP carried between terminals, and the gRPC calls accepted
//! but not yet opened as streams.
//!
//! It lives in one `State` value (a global of the component, see `lib.rs`);
//! the host calls the plugin one call at a time, so nothing here is shared.
//! Call ids are the switch's lower-case UUIDs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::host::User;

/// Which rpc a terminal registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `Pipe`: one call at a time, `call_id` ignored.
    Pipe,
    /// `MultiPipe`: many calls, `call_id` mandatory.
    Multi,
}

impl Mode {
    fn kind(self) -> &'static str {
        match self {
            Mode::Pipe => "pipe",
            Mode::Multi => "multipipe",
        }
    }
}

/// Which end of a call a terminal's leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The terminal sent the Offer that placed the call.
    Caller,
    /// The call rang on the terminal (it was sent an Offer).
    Callee,
}

/// How far a leg got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Placed and not answered yet, or ringing on the terminal.
    Ringing,
    /// Answered: the terminal is in the call.
    Joined,
}

/// A terminal's part in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub role: Role,
    pub phase: Phase,
    /// The other party's number, as the terminal knows it.
    pub remote: String,
    /// `Ringing` was sent to the (calling) terminal.
    pub ringing_sent: bool,
}

impl Leg {
    pub fn new(role: Role, remote: &str) -> Leg {
        Leg {
            role,
            phase: Phase::Ringing,
            remote: remote.to_owned(),
            ringing_sent: false,
        }
    }
}

/// How many ended calls a terminal remembers as its own, so that the
/// switch's snapshot trailing an end never reports them as calls "on
/// another device".
const PAST_CALLS: usize = 64;

/// A registered terminal: one gRPC stream (`Pipe` or `MultiPipe`) and the
/// ringing switch device opened for it.
#[derive(Debug, Clone)]
pub struct Terminal {
    pub mode: Mode,
    pub device: u64,
    pub user: User,
    /// The terminal's number: the user's first.
    pub msisdn: String,
    /// The terminal's calls by call id (at most one on `Pipe`).
    pub legs: BTreeMap<String, Leg>,
    /// The calls the user is in on other devices, as last reported with
    /// `InCall` (and not yet with `Idle`).
    pub elsewhere: BTreeSet<String>,
    /// Calls the terminal was in and has left (newest last).
    pub past: VecDeque<String>,
    /// Calls moved to the user's other devices with `ToPhone`: the switch
    /// rings this device for them too, which the plugin declines.
    pub moved: VecDeque<String>,
    /// When the recent Offers arrived (`clock.monotonic-ms`), for the rate
    /// limit.
    pub offers: VecDeque<u64>,
}

impl Terminal {
    pub fn new(mode: Mode, device: u64, user: User) -> Terminal {
        let msisdn = user.msisdn();
        Terminal {
            mode,
            device,
            user,
            msisdn,
            legs: BTreeMap::new(),
            elsewhere: BTreeSet::new(),
            past: VecDeque::new(),
            moved: VecDeque::new(),
            offers: VecDeque::new(),
        }
    }

    /// The call a `Pipe` terminal's messages are about: its only leg.
    pub fn current_call(&self) -> Option<String> {
        self.legs.keys().next().cloned()
    }

    /// Counts an Offer at `now_ms` against `limit` Offers per second;
    /// false (and not counted) when it is one too many. `0` is no limit.
    pub fn allow_offer(&mut self, now_ms: u64, limit: usize) -> bool {
        if limit == 0 {
            return true;
        }
        while self
            .offers
            .front()
            .is_some_and(|&at| now_ms.saturating_sub(at) >= 1_000)
        {
            self.offers.pop_front();
        }
        if self.offers.len() >= limit {
            return false;
        }
        self.offers.push_back(now_ms);
        true
    }

    /// Whether `call_id` is one of the terminal's calls, now or before.
    pub fn had_call(&self, call_id: &str) -> bool {
        self.legs.contains_key(call_id) || self.past.iter().any(|id| id == call_id)
    }

    fn remember(list: &mut VecDeque<String>, call_id: &str) {
        if list.len() >= PAST_CALLS {
            list.pop_front();
        }
        list.push_back(call_id.to_owned());
    }

    /// Marks `call_id` as moved to the user's other devices.
    pub fn mark_moved(&mut self, call_id: &str) {
        Terminal::remember(&mut self.moved, call_id);
    }

    pub fn was_moved(&self, call_id: &str) -> bool {
        self.moved.iter().any(|id| id == call_id)
    }
}

/// The SDP of one call, carried between the plugin's terminals: the
/// caller terminal's offer (for the callee's `Offer`) and the callee
/// terminal's answer (for the caller's `Answer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSdp {
    pub offer: Option<String>,
    pub answer: Option<String>,
}

/// A gRPC call accepted (`upgrade`) and waiting for its `on-stream-open`.
/// The context string names only the entry (`pipe:3`): the token stays in
/// the plugin's memory rather than in a string the host might show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub mode: Mode,
    pub token: String,
}

/// How many accepted calls may wait for their stream; the oldest are
/// dropped past this.
const MAX_PENDING: usize = 64;

#[derive(Debug, Default)]
pub struct State {
    /// Terminals by stream id.
    pub terminals: BTreeMap<u64, Terminal>,
    /// The stream of each terminal's device.
    pub by_device: BTreeMap<u64, u64>,
    /// SDP by call id, while a terminal of the plugin is in the call.
    pub sdp: BTreeMap<String, CallSdp>,
    /// Offers allowed per terminal per second (`None`: not read yet).
    pub offer_limit: Option<usize>,
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
        let context = format!("{}:{}", pending.mode.kind(), self.next_pending);
        self.pending.insert(self.next_pending, pending);
        context
    }

    /// The pending call `context` names, removed.
    pub fn take_pending(&mut self, context: &str) -> Option<Pending> {
        let (kind, number) = context.split_once(':')?;
        let key = number.parse().ok()?;
        if self.pending.get(&key)?.mode.kind() != kind {
            return None;
        }
        self.pending.remove(&key)
    }

    /// The streams of the other terminals with a leg in `call_id`.
    pub fn peers(&self, call_id: &str, except: u64) -> Vec<u64> {
        self.terminals
            .iter()
            .filter(|(&stream, term)| stream != except && term.legs.contains_key(call_id))
            .map(|(&stream, _)| stream)
            .collect()
    }

    /// How many terminals user `user_id` has registered.
    pub fn terminals_of(&self, user_id: &str) -> usize {
        self.terminals
            .values()
            .filter(|term| term.user.id == user_id)
            .count()
    }

    /// Forgets the leg of terminal `stream` in `call_id`; `remember` keeps
    /// the call among the terminal's own past calls (not reported as a
    /// call elsewhere). Drops the call's SDP once no terminal is in it.
    pub fn forget_leg(&mut self, stream: u64, call_id: &str, remember: bool) -> Option<Leg> {
        let term = self.terminals.get_mut(&stream)?;
        let leg = term.legs.remove(call_id);
        if remember {
            Terminal::remember(&mut term.past, call_id);
        }
        self.drop_unused_sdp(call_id);
        leg
    }

    /// Removes terminal `stream` (its device is the caller's business).
    pub fn remove_terminal(&mut self, stream: u64) -> Option<Terminal> {
        let term = self.terminals.remove(&stream)?;
        self.by_device.remove(&term.device);
        for call_id in term.legs.keys() {
            self.drop_unused_sdp(call_id);
        }
        Some(term)
    }

    fn drop_unused_sdp(&mut self, call_id: &str) {
        if !self
            .terminals
            .values()
            .any(|term| term.legs.contains_key(call_id))
        {
            self.sdp.remove(call_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal(id: &str) -> Terminal {
        Terminal::new(
            Mode::Multi,
            1,
            User {
                id: id.into(),
                name: id.into(),
                numbers: vec!["+15550100".into(), "+15550199".into()],
            },
        )
    }

    #[test]
    fn pending_calls_are_taken_once_by_their_context() {
        let mut state = State::default();
        let pipe = state.add_pending(Pending {
            mode: Mode::Pipe,
            token: "secret".into(),
        });
        let multi = state.add_pending(Pending {
            mode: Mode::Multi,
            token: "other".into(),
        });
        assert_eq!(pipe, "pipe:1");
        assert_eq!(multi, "multipipe:2");
        assert!(!pipe.contains("secret"));
        assert_eq!(state.take_pending("multipipe:1"), None);
        assert_eq!(state.take_pending(&pipe).unwrap().token, "secret");
        assert_eq!(state.take_pending(&pipe), None);
        assert_eq!(state.take_pending("garbage"), None);
        assert_eq!(state.take_pending(&multi).unwrap().mode, Mode::Multi);
    }

    #[test]
    fn pending_calls_are_bounded() {
        let mut state = State::default();
        let first = state.add_pending(Pending {
            mode: Mode::Pipe,
            token: "t".into(),
        });
        for _ in 0..MAX_PENDING {
            state.add_pending(Pending {
                mode: Mode::Pipe,
                token: "t".into(),
            });
        }
        assert_eq!(state.pending.len(), MAX_PENDING);
        assert_eq!(state.take_pending(&first), None);
    }

    #[test]
    fn the_msisdn_is_the_first_number() {
        assert_eq!(terminal("a").msisdn, "+15550100");
        let bare = Terminal::new(Mode::Pipe, 1, User::default());
        assert_eq!(bare.msisdn, "");
    }

    #[test]
    fn offers_are_limited_per_second() {
        let mut term = terminal("a");
        for i in 0..3 {
            assert!(term.allow_offer(1_000 + i, 3));
        }
        assert!(!term.allow_offer(1_500, 3));
        // Refused offers do not count: one second after the first, one
        // slot is free again.
        assert!(term.allow_offer(2_000, 3));
        assert!(!term.allow_offer(2_000, 3));
        assert!(term.allow_offer(2_002, 3));
        // No limit.
        for _ in 0..100 {
            assert!(term.allow_offer(5_000, 0));
        }
    }

    #[test]
    fn sdp_lives_while_a_terminal_is_in_the_call() {
        let mut state = State::default();
        let mut a = terminal("a");
        a.legs.insert("c".into(), Leg::new(Role::Caller, "+2"));
        let mut b = terminal("b");
        b.legs.insert("c".into(), Leg::new(Role::Callee, "+1"));
        state.terminals.insert(1, a);
        state.terminals.insert(2, b);
        state.sdp.insert("c".into(), CallSdp::default());
        assert_eq!(state.peers("c", 1), vec![2]);
        assert!(state.forget_leg(1, "c", true).is_some());
        assert!(state.sdp.contains_key("c"));
        assert!(state.terminals[&1].had_call("c"));
        assert!(state.remove_terminal(2).is_some());
        assert!(!state.sdp.contains_key("c"));
        assert!(state.peers("c", 1).is_empty());
    }

    #[test]
    fn past_calls_are_bounded() {
        let mut term = terminal("a");
        for i in 0..PAST_CALLS + 5 {
            Terminal::remember(&mut term.past, &i.to_string());
        }
        assert_eq!(term.past.len(), PAST_CALLS);
        assert!(!term.had_call("0"));
        assert!(term.had_call(&(PAST_CALLS + 4).to_string()));
    }
}
