//! The switch's state machine: devices come and go, calls are dialled,
//! ring, are answered, held, joined and ended. Every input is a `&mut self`
//! method taking `now`; outputs are queued `Effect`s and the time of the next
//! timeout. No clock, no I/O, no async: see the crate docs for the run loop.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use uuid::Uuid;

use super::call::{Call, Leg, Party};
use super::directory::{Directory, Identity, User};
use super::effect::{DeviceId, Effect, MediaLeg};
use super::error::SwitchError;
use crate::wire::{
    CallEventKind, CallKind, CallState, CallSummary, DevicePresence, EndReason, LeaveReason,
    MediaPeer, Millis, PartyRef, PartyStatus, PolicyNote, RingStopReason, Role, ServerMessage,
    UserPresence,
};

/// Tunables of the core.
#[derive(Debug, Clone)]
pub struct SwitchSettings {
    /// How long invitees ring before `no_answer`.
    pub ring_timeout_ms: u64,
    /// Most parties (caller included) one call may have.
    pub max_participants: usize,
    /// Most live calls; beyond it new calls are refused as overloaded so
    /// the calls in progress keep their quality. 0: no limit.
    pub max_live_calls: usize,
}

impl Default for SwitchSettings {
    fn default() -> Self {
        SwitchSettings {
            ring_timeout_ms: 60_000,
            max_participants: 16,
            max_live_calls: 0,
        }
    }
}

/// An authenticated connection.
#[derive(Debug, Clone)]
struct Device {
    role: Role,
    user: Option<Uuid>,
    label: String,
    connected_at: Millis,
    /// Live calls this device rings for or is joined to.
    calls: HashSet<Uuid>,
    /// Whether the user's incoming calls ring here. An adapter's leg that
    /// exists for one outgoing call does not.
    rings: bool,
    /// Authenticated with the admin token acting as a user (`--as`).
    admin_acting: bool,
}

/// What `connect` grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub role: Role,
    pub user: Option<PartyRef>,
}

/// Counters the core keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreCounts {
    pub devices_online: u64,
    pub calls_live: u64,
    pub calls_ringing: u64,
    pub calls_active: u64,
    pub calls_held: u64,
    pub calls_started: u64,
    pub calls_ended: u64,
}

/// The call switch core.
#[derive(Debug)]
pub struct Switch {
    settings: SwitchSettings,
    directory: Directory,
    devices: HashMap<DeviceId, Device>,
    user_devices: HashMap<Uuid, Vec<DeviceId>>,
    calls: HashMap<Uuid, Call>,
    /// Ids of calls ended in this run, so an id is never reused.
    ended: HashSet<Uuid>,
    /// Ring deadlines: (deadline, call, user). Stale entries are skipped.
    ring_timers: BTreeSet<(Millis, Uuid, Uuid)>,
    next_channel: u32,
    calls_started: u64,
    calls_ended: u64,
    effects: VecDeque<Effect>,
}

/// How a party came to stop being joined, deciding the end reason.
#[derive(Debug, Clone, Copy)]
enum Departure {
    Left { reason: LeaveReason, caller: bool },
    Invitee,
}

impl Switch {
    pub fn new(directory: Directory, settings: SwitchSettings) -> Self {
        Switch {
            settings,
            directory,
            devices: HashMap::new(),
            user_devices: HashMap::new(),
            calls: HashMap::new(),
            ended: HashSet::new(),
            ring_timers: BTreeSet::new(),
            next_channel: 1,
            calls_started: 0,
            calls_ended: 0,
            effects: VecDeque::new(),
        }
    }

    /// Marks call ids as used (the ids of calls recorded before a restart).
    pub fn remember_ended(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        self.ended.extend(ids);
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    // ------------------------------------------------------------ outputs

    /// The next effect to execute.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.ring_timers.first().map(|(t, _, _)| *t)
    }

    // ------------------------------------------------------------ devices

    /// Authenticates a new connection as `device`.
    pub fn connect(
        &mut self,
        now: Millis,
        device: DeviceId,
        token: &str,
        label: Option<String>,
        act_as: Option<&str>,
    ) -> Result<Session, SwitchError> {
        if self.devices.contains_key(&device) {
            return Err(SwitchError::AlreadyAuthenticated);
        }
        let user = self.authenticate(token, act_as)?;
        let admin_acting =
            act_as.is_some() && matches!(self.directory.authenticate(token), Some(Identity::Admin));
        let role = if user.is_some() {
            Role::User
        } else {
            Role::Admin
        };
        self.devices.insert(
            device,
            Device {
                role,
                user,
                label: label.unwrap_or_else(|| format!("device-{device}")),
                connected_at: now,
                calls: HashSet::new(),
                rings: true,
                admin_acting,
            },
        );
        if let Some(id) = user {
            self.user_devices.entry(id).or_default().push(device);
        }
        Ok(Session {
            role,
            user: user.map(|id| self.party_ref(id)),
        })
    }

    /// A connection closed or went silent: it leaves all its calls.
    pub fn disconnect(&mut self, now: Millis, device: DeviceId) {
        let Some(dev) = self.devices.remove(&device) else {
            return;
        };
        if let Some(user) = dev.user {
            if let Some(list) = self.user_devices.get_mut(&user) {
                list.retain(|d| *d != device);
                if list.is_empty() {
                    self.user_devices.remove(&user);
                }
            }
        }
        let mut calls: Vec<Uuid> = dev.calls.into_iter().collect();
        calls.sort();
        for call_id in calls {
            let Some(user) = dev.user else { continue };
            let Some(call) = self.calls.get_mut(&call_id) else {
                continue;
            };
            let Some(idx) = call.party_of(user) else {
                continue;
            };
            let party = &mut call.parties[idx];
            if party.leg.as_ref().is_some_and(|l| l.device == device) {
                self.leave(now, call_id, idx, LeaveReason::Disconnected);
            } else if party.status == PartyStatus::Ringing {
                party.ringing.retain(|d| *d != device);
                if party.ringing.is_empty() {
                    party.status = PartyStatus::Unavailable;
                    party.ring_deadline = None;
                    let user = party.user.clone();
                    call.log(now, CallEventKind::Unavailable { user: user.clone() });
                    self.tell_joined(call_id, None, |call_id| ServerMessage::Unavailable {
                        call_id,
                        user: user.clone(),
                    });
                    self.settle(now, call_id, Departure::Invitee);
                }
            }
        }
    }

    // ------------------------------------------------------------ calls

    /// Places a call from `device` to `targets` (names, UUIDs or numbers).
    pub fn dial(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
        targets: &[String],
    ) -> Result<Uuid, SwitchError> {
        self.dial_with_notes(now, device, call_id, targets, Vec::new())
    }

    /// Checks a dial without acting on it: who calls whom, or why not.
    /// Policy runs between this check and `dial_with_notes`.
    pub fn check_dial(
        &self,
        device: DeviceId,
        call_id: Uuid,
        targets: &[String],
    ) -> Result<(Uuid, Vec<Uuid>), SwitchError> {
        let caller = self.user_of(device)?;
        if targets.is_empty() {
            return Err(SwitchError::NoTargets);
        }
        if self.calls.contains_key(&call_id) || self.ended.contains(&call_id) {
            return Err(SwitchError::DuplicateCallId(call_id));
        }
        let limit = self.settings.max_live_calls;
        if limit > 0 && self.calls.len() >= limit {
            return Err(SwitchError::Overloaded(limit));
        }
        let invitees = self.resolve_targets(caller, targets, &[caller])?;
        if invitees.len() + 1 > self.settings.max_participants {
            return Err(SwitchError::TooManyParticipants(
                self.settings.max_participants,
            ));
        }
        Ok((caller, invitees))
    }

    /// Places a call, logging the policy verdicts that allowed (or
    /// redirected) it.
    pub fn dial_with_notes(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
        targets: &[String],
        notes: Vec<PolicyNote>,
    ) -> Result<Uuid, SwitchError> {
        let (caller, invitees) = self.check_dial(device, call_id, targets)?;
        let leg = self.new_leg(device);
        self.create_call(
            now,
            device,
            call_id,
            caller,
            Some(leg),
            invitees.len(),
            notes,
        );
        self.device_mut(device).calls.insert(call_id);
        for user in invitees {
            self.invite_party(now, call_id, user);
        }
        self.settle(now, call_id, Departure::Invitee);
        Ok(call_id)
    }

    /// Records a dial that policy refused: the call is created and ended at
    /// once with `reason`, so it has a record like any other. With
    /// `EndReason::Busy` the caller is told `ended` (the request itself
    /// succeeds); with `Denied` the runtime answers the request with an error.
    pub fn refuse_dial(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
        targets: &[String],
        reason: EndReason,
        notes: Vec<PolicyNote>,
    ) -> Result<Uuid, SwitchError> {
        let (caller, invitees) = self.check_dial(device, call_id, targets)?;
        self.create_call(now, device, call_id, caller, None, invitees.len(), notes);
        self.end(now, call_id, reason);
        if reason == EndReason::Busy {
            self.send(device, ServerMessage::Ended { call_id, reason });
        }
        Ok(call_id)
    }

    /// Registers a new call with its caller (joined on `leg`, or already
    /// gone when the call is refused before it starts) and its first events.
    #[allow(clippy::too_many_arguments)]
    fn create_call(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
        caller: Uuid,
        leg: Option<Leg>,
        invitees: usize,
        notes: Vec<PolicyNote>,
    ) {
        let caller_ref = self.party_ref(caller);
        let mut caller_party = Party::new(caller_ref.clone(), PartyStatus::Joined);
        caller_party.joined_at = Some(now);
        if leg.is_none() {
            caller_party.status = PartyStatus::Left;
            caller_party.left_at = Some(now);
        }
        caller_party.leg = leg;
        let mut call = Call {
            id: call_id,
            kind: if invitees == 1 {
                CallKind::Direct
            } else {
                CallKind::Group
            },
            parties: vec![caller_party],
            created_at: now,
            answered_at: None,
            events: Vec::new(),
            media_legs: Vec::new(),
        };
        call.log(
            now,
            CallEventKind::Created {
                by: caller_ref,
                device,
            },
        );
        for n in notes {
            call.log(now, CallEventKind::Policy(n));
        }
        self.calls.insert(call_id, call);
        self.calls_started += 1;
    }

    /// Logs policy verdicts on a live call.
    pub fn log_notes(&mut self, now: Millis, call_id: Uuid, notes: Vec<PolicyNote>) {
        if let Some(call) = self.calls.get_mut(&call_id) {
            for n in notes {
                call.log(now, CallEventKind::Policy(n));
            }
        }
    }

    /// Checks that `device` may answer `call_id`, without answering.
    pub fn check_answer(&self, device: DeviceId, call_id: Uuid) -> Result<Uuid, SwitchError> {
        let user = self.user_of(device)?;
        self.ringing_party(device, user, call_id)?;
        Ok(user)
    }

    /// Adds a party to a running call on behalf of the switch (a plugin),
    /// not of a device.
    pub fn add_party(
        &mut self,
        now: Millis,
        call_id: Uuid,
        target: &str,
    ) -> Result<(), SwitchError> {
        let call = self
            .calls
            .get(&call_id)
            .ok_or(SwitchError::UnknownCall(call_id))?;
        let present: Vec<Uuid> = call
            .parties
            .iter()
            .filter(|p| matches!(p.status, PartyStatus::Joined | PartyStatus::Ringing))
            .map(|p| p.user.id)
            .collect();
        let user = self.resolve(target)?.id;
        if present.contains(&user) {
            return Err(SwitchError::InvalidState(format!(
                "`{target}` is already in the call"
            )));
        }
        if present.len() + 1 > self.settings.max_participants {
            return Err(SwitchError::TooManyParticipants(
                self.settings.max_participants,
            ));
        }
        self.calls.get_mut(&call_id).expect("checked").kind = CallKind::Group;
        self.invite_party(now, call_id, user);
        Ok(())
    }

    /// Blind transfer: `to_target` is invited and `from_user` leaves. The
    /// call goes on while the new party rings.
    pub fn transfer(
        &mut self,
        now: Millis,
        call_id: Uuid,
        from_user: Uuid,
        to_target: &str,
    ) -> Result<(), SwitchError> {
        let call = self
            .calls
            .get(&call_id)
            .ok_or(SwitchError::UnknownCall(call_id))?;
        let idx = call
            .party_of(from_user)
            .filter(|i| call.parties[*i].status == PartyStatus::Joined)
            .ok_or_else(|| {
                SwitchError::InvalidState("the transferring user is not joined to the call".into())
            })?;
        let was_direct = call.kind == CallKind::Direct;
        self.add_party(now, call_id, to_target)?;
        if was_direct
            && self.calls[&call_id].count(PartyStatus::Joined)
                + self.calls[&call_id].count(PartyStatus::Ringing)
                <= 2
        {
            self.calls.get_mut(&call_id).expect("live").kind = CallKind::Direct;
        }
        let device = self.calls[&call_id].parties[idx]
            .leg
            .as_ref()
            .map(|l| l.device);
        let user = self.calls[&call_id].parties[idx].user.clone();
        self.leave(now, call_id, idx, LeaveReason::Transferred);
        // The transferred party's own device learns it is out of the call.
        if let Some(device) = device {
            self.send(
                device,
                ServerMessage::Left {
                    call_id,
                    user,
                    reason: LeaveReason::Transferred,
                },
            );
        }
        Ok(())
    }

    /// The devices a user is online on, newest last.
    /// Whether `device` holds its user's leg in the live call `call_id`.
    pub fn is_joined(&self, device: DeviceId, call_id: Uuid) -> bool {
        self.calls.get(&call_id).is_some_and(|c| {
            c.parties
                .iter()
                .any(|p| p.leg.as_ref().is_some_and(|l| l.device == device))
        })
    }

    /// Whether `device` is the admin acting as a user: its calls are the
    /// operator's own and skip the policy chain.
    pub fn is_admin_acting(&self, device: DeviceId) -> bool {
        self.devices.get(&device).is_some_and(|d| d.admin_acting)
    }

    /// Stops (or resumes) ringing `device` for its user's incoming calls.
    pub fn set_rings(&mut self, device: DeviceId, rings: bool) {
        if let Some(d) = self.devices.get_mut(&device) {
            d.rings = rings;
        }
    }

    pub fn devices_of(&self, user: Uuid) -> Vec<DeviceId> {
        self.user_devices.get(&user).cloned().unwrap_or_default()
    }

    /// The user a device acts for.
    pub fn device_user(&self, device: DeviceId) -> Option<Uuid> {
        self.devices.get(&device).and_then(|d| d.user)
    }

    /// The label of a device.
    pub fn device_label(&self, device: DeviceId) -> Option<&str> {
        self.devices.get(&device).map(|d| d.label.as_str())
    }

    /// A live call's event log.
    pub fn call_events(&self, call_id: Uuid) -> Option<&[crate::wire::CallEvent]> {
        self.calls.get(&call_id).map(|c| c.events.as_slice())
    }

    /// Checks a token (and `act_as`) without connecting anything.
    pub fn authenticate(
        &self,
        token: &str,
        act_as: Option<&str>,
    ) -> Result<Option<Uuid>, SwitchError> {
        let identity = self
            .directory
            .authenticate(token)
            .ok_or(SwitchError::Unauthorized)?;
        match (identity, act_as) {
            (Identity::Admin, None) => Ok(None),
            (Identity::Admin, Some(target)) => Ok(Some(self.resolve(target)?.id)),
            (Identity::User(id), None) => Ok(Some(id)),
            (Identity::User(id), Some(target)) => {
                if self.resolve(target)?.id != id {
                    return Err(SwitchError::Forbidden(
                        "only the admin token may act as another user".into(),
                    ));
                }
                Ok(Some(id))
            }
        }
    }

    /// Checks a message: who sends it to whom (online), or why not.
    pub fn check_message(&self, device: DeviceId, to: &str) -> Result<(Uuid, Uuid), SwitchError> {
        let sender = self.user_of(device)?;
        let recipient = self.resolve(to)?.id;
        if !self.user_devices.contains_key(&recipient) {
            return Err(SwitchError::Unavailable(to.chars().take(128).collect()));
        }
        Ok((sender, recipient))
    }

    /// Delivers an application message to every device of the recipient and
    /// a copy to the sender's other devices.
    pub fn message(
        &mut self,
        device: DeviceId,
        to: &str,
        body: serde_json::Value,
    ) -> Result<(), SwitchError> {
        let (sender, recipient) = self.check_message(device, to)?;
        let message = ServerMessage::Message {
            from: self.party_ref(sender),
            to: self.party_ref(recipient),
            body,
        };
        let mut devices = self.devices_of(recipient);
        devices.extend(self.devices_of(sender));
        devices.sort_unstable();
        devices.dedup();
        devices.retain(|d| *d != device);
        for d in devices {
            self.send(d, message.clone());
        }
        Ok(())
    }

    /// Adds users to a running call; it becomes a group call.
    pub fn invite(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
        targets: &[String],
    ) -> Result<(), SwitchError> {
        let user = self.user_of(device)?;
        let call = self.joined_call(device, user, call_id)?;
        let present: Vec<Uuid> = call
            .parties
            .iter()
            .filter(|p| matches!(p.status, PartyStatus::Joined | PartyStatus::Ringing))
            .map(|p| p.user.id)
            .collect();
        let current = present.len();
        if targets.is_empty() {
            return Err(SwitchError::NoTargets);
        }
        let invitees = self.resolve_targets(user, targets, &present)?;
        if current + invitees.len() > self.settings.max_participants {
            return Err(SwitchError::TooManyParticipants(
                self.settings.max_participants,
            ));
        }
        self.calls.get_mut(&call_id).expect("checked").kind = CallKind::Group;
        for invitee in invitees {
            self.invite_party(now, call_id, invitee);
        }
        Ok(())
    }

    /// Takes a call ringing on `device`.
    pub fn answer(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
    ) -> Result<(), SwitchError> {
        let user = self.user_of(device)?;
        let idx = self.ringing_party(device, user, call_id)?;
        let leg = self.new_leg(device);
        let call = self.calls.get_mut(&call_id).expect("checked");
        let party = &mut call.parties[idx];
        let others: Vec<DeviceId> = party.ringing.drain(..).filter(|d| *d != device).collect();
        party.status = PartyStatus::Joined;
        party.leg = Some(leg);
        party.joined_at = Some(now);
        party.ring_deadline = None;
        let user_ref = party.user.clone();
        call.answered_at.get_or_insert(now);
        call.log(
            now,
            CallEventKind::Answered {
                user: user_ref.clone(),
                device,
            },
        );
        call.log(
            now,
            CallEventKind::Joined {
                user: user_ref.clone(),
                device,
            },
        );
        for other in others {
            self.forget_call(other, call_id);
            self.send(
                other,
                ServerMessage::RingStopped {
                    call_id,
                    reason: RingStopReason::AnsweredElsewhere,
                },
            );
        }
        self.tell_joined(call_id, Some(device), |call_id| ServerMessage::Answered {
            call_id,
            user: user_ref.clone(),
            device,
        });
        self.settle(now, call_id, Departure::Invitee);
        Ok(())
    }

    /// Refuses a call ringing on `device`. When no device of the user is
    /// left ringing the user has declined.
    pub fn decline(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
    ) -> Result<(), SwitchError> {
        let user = self.user_of(device)?;
        let idx = self.ringing_party(device, user, call_id)?;
        self.forget_call(device, call_id);
        let call = self.calls.get_mut(&call_id).expect("checked");
        let party = &mut call.parties[idx];
        party.ringing.retain(|d| *d != device);
        let user_ref = party.user.clone();
        let all_declined = party.ringing.is_empty();
        if all_declined {
            party.status = PartyStatus::Declined;
            party.ring_deadline = None;
        }
        call.log(
            now,
            CallEventKind::Declined {
                user: user_ref.clone(),
                device,
            },
        );
        if all_declined {
            self.tell_joined(call_id, None, |call_id| ServerMessage::Declined {
                call_id,
                user: user_ref.clone(),
            });
            self.settle(now, call_id, Departure::Invitee);
        }
        Ok(())
    }

    /// Leaves a call; a device still ringing declines instead.
    pub fn hangup(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
    ) -> Result<(), SwitchError> {
        let user = self.user_of(device)?;
        if self.ringing_party(device, user, call_id).is_ok() {
            return self.decline(now, device, call_id);
        }
        self.joined_call(device, user, call_id)?;
        let idx = self.calls[&call_id].party_of(user).expect("joined");
        self.leave(now, call_id, idx, LeaveReason::Hangup);
        Ok(())
    }

    /// Moves the user's leg of a call to `device` from the other device of
    /// theirs that holds it (a call pulled from a desk phone to a laptop).
    /// The call goes on; the other parties get the new channel through
    /// `media`, the device that lost the leg gets `left` (`picked_up`).
    pub fn pickup(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
    ) -> Result<(), SwitchError> {
        let user = self.user_of(device)?;
        let call = self
            .calls
            .get(&call_id)
            .ok_or(SwitchError::UnknownCall(call_id))?;
        let idx = call
            .party_of(user)
            .filter(|i| call.parties[*i].leg.is_some())
            .ok_or(SwitchError::NotInCall(call_id))?;
        let old = call.parties[idx].leg.clone().expect("joined");
        if old.device == device {
            return Err(SwitchError::InvalidState(
                "the call is already on this device".into(),
            ));
        }
        let mut leg = self.new_leg(device);
        leg.held = old.held;
        let call = self.calls.get_mut(&call_id).expect("checked");
        let party = &mut call.parties[idx];
        party.leg = Some(leg);
        let user_ref = party.user.clone();
        call.log(
            now,
            CallEventKind::Joined {
                user: user_ref.clone(),
                device,
            },
        );
        self.forget_call(old.device, call_id);
        self.device_mut(device).calls.insert(call_id);
        self.send(
            old.device,
            ServerMessage::Left {
                call_id,
                user: user_ref,
                reason: LeaveReason::PickedUp,
            },
        );
        self.publish_media(call_id);
        Ok(())
    }

    /// Puts this device's leg on hold (or takes it off with `held = false`).
    pub fn set_hold(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
        held: bool,
    ) -> Result<(), SwitchError> {
        let user = self.user_of(device)?;
        self.joined_call(device, user, call_id)?;
        let call = self.calls.get_mut(&call_id).expect("checked");
        let idx = call.party_of(user).expect("joined");
        let leg = call.parties[idx].leg.as_mut().expect("joined");
        if leg.held == held {
            return Err(SwitchError::InvalidState(if held {
                "the call is already on hold".into()
            } else {
                "the call is not on hold".into()
            }));
        }
        leg.held = held;
        let user_ref = call.parties[idx].user.clone();
        call.log(
            now,
            if held {
                CallEventKind::Held {
                    user: user_ref.clone(),
                }
            } else {
                CallEventKind::Resumed {
                    user: user_ref.clone(),
                }
            },
        );
        self.tell_joined(call_id, Some(device), |call_id| {
            if held {
                ServerMessage::Held {
                    call_id,
                    user: user_ref.clone(),
                }
            } else {
                ServerMessage::Resumed {
                    call_id,
                    user: user_ref.clone(),
                }
            }
        });
        self.publish_media(call_id);
        Ok(())
    }

    /// Sends DTMF digits to the other joined parties.
    pub fn dtmf(
        &mut self,
        now: Millis,
        device: DeviceId,
        call_id: Uuid,
        digits: &str,
    ) -> Result<(), SwitchError> {
        let user = self.user_of(device)?;
        if !valid_dtmf(digits) {
            return Err(SwitchError::InvalidDtmf(digits.chars().take(64).collect()));
        }
        self.joined_call(device, user, call_id)?;
        let call = self.calls.get_mut(&call_id).expect("checked");
        let user_ref = self.directory.user(&user).expect("known").party_ref();
        call.log(
            now,
            CallEventKind::Dtmf {
                user: user_ref.clone(),
                digits: digits.to_string(),
            },
        );
        self.tell_joined(call_id, Some(device), |call_id| ServerMessage::Dtmf {
            call_id,
            user: user_ref.clone(),
            digits: digits.to_string(),
        });
        Ok(())
    }

    /// Ends a live call for everyone (admin).
    pub fn end_call(
        &mut self,
        now: Millis,
        call_id: Uuid,
        reason: EndReason,
    ) -> Result<(), SwitchError> {
        if !self.calls.contains_key(&call_id) {
            return Err(SwitchError::UnknownCall(call_id));
        }
        self.end(now, call_id, reason);
        Ok(())
    }

    /// Ends every call (graceful shutdown).
    pub fn shutdown(&mut self, now: Millis) {
        let mut ids: Vec<Uuid> = self.calls.keys().copied().collect();
        ids.sort();
        for id in ids {
            self.end(now, id, EndReason::Shutdown);
        }
    }

    /// Fires the ring timeouts due at `now`.
    pub fn handle_timeout(&mut self, now: Millis) {
        while let Some(&(deadline, call_id, user)) = self.ring_timers.first() {
            if deadline > now {
                break;
            }
            self.ring_timers.pop_first();
            let Some(call) = self.calls.get_mut(&call_id) else {
                continue;
            };
            let Some(idx) = call.party_of(user) else {
                continue;
            };
            let party = &mut call.parties[idx];
            if party.status != PartyStatus::Ringing || party.ring_deadline != Some(deadline) {
                continue;
            }
            party.status = PartyStatus::NoAnswer;
            party.ring_deadline = None;
            let devices: Vec<DeviceId> = party.ringing.drain(..).collect();
            let user_ref = party.user.clone();
            call.log(
                now,
                CallEventKind::NoAnswer {
                    user: user_ref.clone(),
                },
            );
            for d in &devices {
                self.forget_call(*d, call_id);
            }
            self.tell_joined(call_id, None, |call_id| ServerMessage::NoAnswer {
                call_id,
                user: user_ref.clone(),
            });
            let ended = self.settle(now, call_id, Departure::Invitee);
            for d in devices {
                let message = match ended {
                    Some(reason) => ServerMessage::Ended { call_id, reason },
                    None => ServerMessage::RingStopped {
                        call_id,
                        reason: RingStopReason::NoAnswer,
                    },
                };
                self.send(d, message);
            }
        }
    }

    // ------------------------------------------------------------ reads

    /// Live calls, oldest first.
    pub fn calls(&self) -> Vec<CallSummary> {
        let mut all: Vec<CallSummary> = self.calls.values().map(Call::summary).collect();
        all.sort_by_key(|c| (c.created_at_ms, c.call_id));
        all
    }

    pub fn call(&self, call_id: Uuid) -> Option<CallSummary> {
        self.calls.get(&call_id).map(Call::summary)
    }

    /// Every configured user with their online devices.
    pub fn users(&self) -> Vec<UserPresence> {
        self.directory
            .users()
            .into_iter()
            .map(|u| {
                let mut devices: Vec<DevicePresence> = self
                    .user_devices
                    .get(&u.id)
                    .into_iter()
                    .flatten()
                    .map(|id| {
                        let d = &self.devices[id];
                        let mut calls: Vec<Uuid> = d.calls.iter().copied().collect();
                        calls.sort();
                        DevicePresence {
                            device_id: *id,
                            label: d.label.clone(),
                            connected_at_ms: d.connected_at,
                            calls,
                        }
                    })
                    .collect();
                devices.sort_by_key(|d| d.device_id);
                UserPresence {
                    user: u.party_ref(),
                    numbers: u.numbers.clone(),
                    devices,
                }
            })
            .collect()
    }

    pub fn counts(&self) -> CoreCounts {
        let mut c = CoreCounts {
            devices_online: self
                .devices
                .values()
                .filter(|d| d.role == Role::User)
                .count() as u64,
            calls_live: self.calls.len() as u64,
            calls_started: self.calls_started,
            calls_ended: self.calls_ended,
            ..CoreCounts::default()
        };
        for call in self.calls.values() {
            match call.state() {
                CallState::Ringing => c.calls_ringing += 1,
                CallState::Active => c.calls_active += 1,
                CallState::Held => c.calls_held += 1,
                CallState::Ended => {}
            }
        }
        c
    }

    /// The role of an authenticated device.
    pub fn role(&self, device: DeviceId) -> Option<Role> {
        self.devices.get(&device).map(|d| d.role)
    }

    // ------------------------------------------------------------ internals

    fn resolve(&self, target: &str) -> Result<&User, SwitchError> {
        self.directory
            .resolve(target)
            .ok_or_else(|| SwitchError::UnknownUser(target.chars().take(128).collect()))
    }

    /// Resolves targets to distinct users, refusing the caller and users
    /// already `present` in the call.
    fn resolve_targets(
        &self,
        caller: Uuid,
        targets: &[String],
        present: &[Uuid],
    ) -> Result<Vec<Uuid>, SwitchError> {
        let mut out = Vec::new();
        for t in targets {
            let id = self.resolve(t)?.id;
            if id == caller {
                return Err(SwitchError::CannotCallSelf);
            }
            if present.contains(&id) {
                return Err(SwitchError::InvalidState(format!(
                    "`{t}` is already in the call"
                )));
            }
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn party_ref(&self, user: Uuid) -> PartyRef {
        self.directory.user(&user).expect("known user").party_ref()
    }

    fn user_of(&self, device: DeviceId) -> Result<Uuid, SwitchError> {
        let dev = self
            .devices
            .get(&device)
            .ok_or(SwitchError::Forbidden("say hello first".into()))?;
        dev.user.ok_or_else(|| {
            SwitchError::Forbidden("an admin connection cannot take part in calls".into())
        })
    }

    fn device_mut(&mut self, device: DeviceId) -> &mut Device {
        self.devices.get_mut(&device).expect("known device")
    }

    fn forget_call(&mut self, device: DeviceId, call_id: Uuid) {
        if let Some(d) = self.devices.get_mut(&device) {
            d.calls.remove(&call_id);
        }
    }

    fn new_leg(&mut self, device: DeviceId) -> Leg {
        let channel = self.next_channel;
        // Channel 0 is never assigned, so a zeroed header never routes.
        self.next_channel = self.next_channel.checked_add(1).unwrap_or(1);
        Leg {
            device,
            channel,
            held: false,
            announced_peers: Vec::new(),
        }
    }

    /// The call `device` is joined to, or why not.
    fn joined_call(
        &self,
        device: DeviceId,
        user: Uuid,
        call_id: Uuid,
    ) -> Result<&Call, SwitchError> {
        let call = self
            .calls
            .get(&call_id)
            .ok_or(SwitchError::UnknownCall(call_id))?;
        let joined = call
            .party_of(user)
            .and_then(|i| call.parties[i].leg.as_ref())
            .is_some_and(|l| l.device == device);
        if joined {
            Ok(call)
        } else {
            Err(SwitchError::NotInCall(call_id))
        }
    }

    /// The index of `user`'s party if the call rings on `device`.
    fn ringing_party(
        &self,
        device: DeviceId,
        user: Uuid,
        call_id: Uuid,
    ) -> Result<usize, SwitchError> {
        let call = self
            .calls
            .get(&call_id)
            .ok_or(SwitchError::UnknownCall(call_id))?;
        call.party_of(user)
            .filter(|i| {
                let p = &call.parties[*i];
                p.status == PartyStatus::Ringing && p.ringing.contains(&device)
            })
            .ok_or(SwitchError::NotRinging(call_id))
    }

    /// True when the user takes part in a live call.
    fn is_busy(&self, user: Uuid) -> bool {
        self.user_devices.get(&user).into_iter().flatten().any(|d| {
            self.devices[d].calls.iter().any(|c| {
                self.calls[c]
                    .party_of(user)
                    .is_some_and(|i| self.calls[c].parties[i].status == PartyStatus::Joined)
            })
        })
    }

    fn invite_party(&mut self, now: Millis, call_id: Uuid, user: Uuid) {
        let user_ref = self.party_ref(user);
        let mut devices: Vec<DeviceId> = self.user_devices.get(&user).cloned().unwrap_or_default();
        devices.retain(|d| self.devices.get(d).is_some_and(|d| d.rings));
        let status = if self.is_busy(user) {
            PartyStatus::Busy
        } else if devices.is_empty() {
            PartyStatus::Unavailable
        } else {
            PartyStatus::Ringing
        };
        let call = self.calls.get_mut(&call_id).expect("live call");
        // A user invited again (after leaving, declining...) takes a fresh
        // party slot: one entry per user keeps lookups unambiguous.
        call.parties.retain(|p| p.user.id != user);
        let mut party = Party::new(user_ref.clone(), status);
        match status {
            PartyStatus::Busy => {
                call.log(
                    now,
                    CallEventKind::Busy {
                        user: user_ref.clone(),
                    },
                );
                call.parties.push(party);
                self.tell_joined(call_id, None, |call_id| ServerMessage::Busy {
                    call_id,
                    user: user_ref.clone(),
                });
            }
            PartyStatus::Unavailable => {
                call.log(
                    now,
                    CallEventKind::Unavailable {
                        user: user_ref.clone(),
                    },
                );
                call.parties.push(party);
                self.tell_joined(call_id, None, |call_id| ServerMessage::Unavailable {
                    call_id,
                    user: user_ref.clone(),
                });
            }
            _ => {
                let deadline = now + self.settings.ring_timeout_ms;
                party.ring_deadline = Some(deadline);
                party.ringing = devices.clone();
                for d in &devices {
                    call.log(
                        now,
                        CallEventKind::Ringing {
                            user: user_ref.clone(),
                            device: *d,
                        },
                    );
                }
                call.parties.push(party);
                let incoming = ServerMessage::Incoming {
                    call_id,
                    kind: call.kind,
                    from: call.caller().clone(),
                    parties: call
                        .parties
                        .iter()
                        .filter(|p| matches!(p.status, PartyStatus::Joined | PartyStatus::Ringing))
                        .map(|p| p.user.clone())
                        .collect(),
                };
                self.ring_timers.insert((deadline, call_id, user));
                for d in &devices {
                    self.device_mut(*d).calls.insert(call_id);
                    self.send(*d, incoming.clone());
                    let device = *d;
                    self.tell_joined(call_id, None, |call_id| ServerMessage::Ringing {
                        call_id,
                        user: user_ref.clone(),
                        device,
                    });
                }
            }
        }
    }

    fn leave(&mut self, now: Millis, call_id: Uuid, idx: usize, reason: LeaveReason) {
        let call = self.calls.get_mut(&call_id).expect("live call");
        let party = &mut call.parties[idx];
        let Some(leg) = party.leg.take() else { return };
        party.status = PartyStatus::Left;
        party.left_at = Some(now);
        let user_ref = party.user.clone();
        call.log(
            now,
            CallEventKind::Left {
                user: user_ref.clone(),
                reason,
            },
        );
        self.forget_call(leg.device, call_id);
        let ended = self.settle(
            now,
            call_id,
            Departure::Left {
                reason,
                caller: idx == 0,
            },
        );
        if ended.is_none() {
            self.tell_joined(call_id, None, |call_id| ServerMessage::Left {
                call_id,
                user: user_ref.clone(),
                reason,
            });
        }
    }

    /// Ends the call if too few parties remain, otherwise republishes its
    /// media. Returns the end reason when it ended.
    fn settle(&mut self, now: Millis, call_id: Uuid, departure: Departure) -> Option<EndReason> {
        let call = self.calls.get(&call_id)?;
        let joined = call.count(PartyStatus::Joined);
        let ringing = call.count(PartyStatus::Ringing);
        if joined >= 2 || (joined == 1 && ringing > 0) {
            self.publish_media(call_id);
            return None;
        }
        let reason = match departure {
            Departure::Left { reason, caller } => match reason {
                LeaveReason::Hangup if call.answered_at.is_none() && caller => EndReason::Cancelled,
                LeaveReason::Hangup | LeaveReason::Transferred | LeaveReason::PickedUp => {
                    EndReason::Hangup
                }
                LeaveReason::Disconnected => EndReason::Disconnected,
                LeaveReason::Admin => EndReason::Admin,
                LeaveReason::Shutdown => EndReason::Shutdown,
            },
            Departure::Invitee if call.answered_at.is_some() => EndReason::Hangup,
            Departure::Invitee => {
                let outcome = |s| call.parties[1..].iter().any(|p| p.status == s);
                if outcome(PartyStatus::NoAnswer) {
                    EndReason::NoAnswer
                } else if outcome(PartyStatus::Declined) {
                    EndReason::Declined
                } else if outcome(PartyStatus::Busy) {
                    EndReason::Busy
                } else {
                    EndReason::Unavailable
                }
            }
        };
        self.end(now, call_id, reason);
        Some(reason)
    }

    fn end(&mut self, now: Millis, call_id: Uuid, reason: EndReason) {
        let Some(mut call) = self.calls.remove(&call_id) else {
            return;
        };
        let leave_reason = match reason {
            EndReason::Admin => Some(LeaveReason::Admin),
            EndReason::Shutdown => Some(LeaveReason::Shutdown),
            _ => None,
        };
        let mut notify = Vec::new();
        for party in &mut call.parties {
            if let Some(leg) = party.leg.take() {
                notify.push(leg.device);
                party.status = PartyStatus::Left;
                party.left_at = Some(now);
                if let Some(r) = leave_reason {
                    call.events.push(crate::wire::CallEvent {
                        at_ms: now,
                        kind: CallEventKind::Left {
                            user: party.user.clone(),
                            reason: r,
                        },
                    });
                }
            }
            if party.status == PartyStatus::Ringing {
                notify.append(&mut party.ringing);
                party.status = PartyStatus::NoAnswer;
                party.ring_deadline = None;
            }
        }
        call.log(now, CallEventKind::Ended { reason });
        if !call.media_legs.is_empty() {
            self.effects.push_back(Effect::Media {
                call_id,
                legs: Vec::new(),
            });
        }
        self.effects
            .push_back(Effect::Record(Box::new(call.into_record(now, reason))));
        for device in notify {
            self.forget_call(device, call_id);
            self.send(device, ServerMessage::Ended { call_id, reason });
        }
        self.ended.insert(call_id);
        self.calls_ended += 1;
    }

    /// Hands the runtime the call's live legs and tells each joined device
    /// its channel and peers, when they changed.
    fn publish_media(&mut self, call_id: Uuid) {
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        let mut live = call.live_legs();
        if live.len() < 2 {
            live.clear();
        }
        if live != call.media_legs {
            call.media_legs = live.clone();
            self.effects.push_back(Effect::Media {
                call_id,
                legs: live.clone(),
            });
        }
        let peers_of = |call: &Call, me: &MediaLeg| -> Vec<MediaPeer> {
            call.parties
                .iter()
                .filter_map(|p| p.leg.as_ref().map(|l| (p, l)))
                .filter(|(_, l)| {
                    l.channel != me.channel && live.iter().any(|x| x.channel == l.channel)
                })
                .map(|(p, l)| MediaPeer {
                    channel: l.channel,
                    user: p.user.clone(),
                })
                .collect()
        };
        let mut sends = Vec::new();
        let snapshot = call.clone();
        for party in &mut call.parties {
            let Some(leg) = party.leg.as_mut() else {
                continue;
            };
            let me = MediaLeg {
                device: leg.device,
                channel: leg.channel,
            };
            let peers = if live.contains(&me) {
                peers_of(&snapshot, &me)
            } else {
                Vec::new()
            };
            let channels: Vec<u32> = peers.iter().map(|p| p.channel).collect();
            if channels != leg.announced_peers {
                leg.announced_peers = channels;
                sends.push((
                    leg.device,
                    ServerMessage::Media {
                        call_id,
                        channel: leg.channel,
                        peers,
                    },
                ));
            }
        }
        for (device, message) in sends {
            self.send(device, message);
        }
    }

    fn send(&mut self, device: DeviceId, message: ServerMessage) {
        self.effects.push_back(Effect::Send { device, message });
    }

    /// Sends a message to every joined device of a call but `except`.
    fn tell_joined(
        &mut self,
        call_id: Uuid,
        except: Option<DeviceId>,
        message: impl Fn(Uuid) -> ServerMessage,
    ) {
        let Some(call) = self.calls.get(&call_id) else {
            return;
        };
        for device in call.joined_devices(except) {
            self.send(device, message(call_id));
        }
    }
}

/// DTMF digits the switch carries: 1 to 64 of `0-9*#A-D`.
pub fn valid_dtmf(digits: &str) -> bool {
    !digits.is_empty()
        && digits.len() <= 64
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
}
