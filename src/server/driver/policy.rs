//! The driver's side of the plugin host: runs policy hooks in tasks of
//! their own and turns their decisions back into driver inputs, executes
//! plugins' commands (`calls-control`, `notify`), keeps the plugins' view
//! of calls and devices current, and feeds `on-event` in order.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

use super::{Driver, Hello, Input, ServerMessage};
use crate::plugins::{chain, Chain, PluginCommand, PluginHost};
use crate::switch::DeviceId;
use crate::wire::{CallEventKind, CallRecord, CallState, CallSummary, EndReason};

/// Events waiting for `on-event`; beyond this they are dropped and counted.
const EVENT_QUEUE: usize = 10_000;

/// One call event for the plugins.
pub struct EventJob {
    call: CallSummary,
    event: CallEventKind,
}

/// Delivers events to every plugin's `on-event`, one at a time, in order.
pub fn spawn_event_delivery(host: Arc<PluginHost>) -> mpsc::Sender<EventJob> {
    let (tx, mut rx) = mpsc::channel::<EventJob>(EVENT_QUEUE);
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let dir = &host.context.directory;
            let Some(event) = crate::plugins::convert_event(dir, &job.event) else {
                continue;
            };
            let info = crate::plugins::convert_call(dir, &job.call);
            for plugin in host.chain().iter().filter(|p| p.events) {
                // Failures are logged and counted by the plugin itself; an
                // event cannot be vetoed, so nothing else follows.
                let _ = plugin.on_event(job.call.call_id, &info, &event).await;
            }
        }
    });
    tx
}

/// The next plugin command, or never when there is no plugin host.
pub async fn next_command(
    commands: &mut Option<mpsc::Receiver<PluginCommand>>,
) -> Option<PluginCommand> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn summary_of(record: &CallRecord) -> CallSummary {
    CallSummary {
        call_id: record.call_id,
        kind: record.kind,
        state: CallState::Ended,
        caller: record.caller.clone(),
        parties: record.parties.clone(),
        created_at_ms: record.created_at_ms,
        answered_at_ms: record.answered_at_ms,
    }
}

impl Driver {
    fn host(&self) -> &Arc<PluginHost> {
        self.plugins.as_ref().expect("plugins loaded")
    }

    pub(super) fn spawn_connect_decision(
        &self,
        chain: Chain,
        device: DeviceId,
        req: u64,
        user: Uuid,
        hello: Hello,
    ) {
        let host = self.host().clone();
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let dir = &host.context.directory;
            let who = crate::plugins::identity_of(dir, user, hello.label.clone());
            let outcome = chain::decide_connect(&chain, &who).await;
            let _ = inputs
                .send(Input::HelloDecided {
                    device,
                    req,
                    hello,
                    outcome,
                })
                .await;
        });
    }

    pub(super) fn spawn_dial_decision(
        &self,
        chain: Chain,
        device: DeviceId,
        req: u64,
        call_id: Uuid,
        caller: Uuid,
        targets: Vec<String>,
    ) {
        let host = self.host().clone();
        let inputs = self.inputs.clone();
        let label = self.switch.device_label(device).map(str::to_string);
        let now = self.clock.now();
        tokio::spawn(async move {
            let dir = &host.context.directory;
            let caller = dir.user(&caller).expect("checked caller").clone();
            let mut notes = Vec::new();
            let decision = chain::decide_dial(
                &chain,
                dir,
                call_id,
                &caller,
                label,
                targets.clone(),
                now,
                &mut notes,
            )
            .await;
            let _ = inputs
                .send(Input::DialDecided {
                    device,
                    req,
                    call_id,
                    targets,
                    decision,
                    notes,
                })
                .await;
        });
    }

    pub(super) fn spawn_answer_decision(
        &self,
        chain: Chain,
        device: DeviceId,
        req: u64,
        call_id: Uuid,
        user: Uuid,
    ) {
        let Some(call) = self.switch.call(call_id) else {
            return;
        };
        let host = self.host().clone();
        let inputs = self.inputs.clone();
        let label = self.switch.device_label(device).map(str::to_string);
        tokio::spawn(async move {
            let dir = &host.context.directory;
            let answerer = dir.user(&user).expect("checked answerer").clone();
            let mut notes = Vec::new();
            let outcome =
                chain::decide_answer(&chain, dir, &call, &answerer, label, &mut notes).await;
            let _ = inputs
                .send(Input::AnswerDecided {
                    device,
                    req,
                    call_id,
                    outcome,
                    notes,
                })
                .await;
        });
    }

    /// Asks the `on-action` policies about an in-call operation.
    pub(super) fn spawn_action_decision(
        &self,
        chain: Chain,
        device: DeviceId,
        req: u64,
        call_id: Uuid,
        user: Uuid,
        request: crate::wire::Request,
    ) {
        use crate::plugins::bindings::CallAction;
        use crate::wire::Request;
        let Some(call) = self.switch.call(call_id) else {
            return;
        };
        let action = match &request {
            Request::Hold { .. } => CallAction::Hold,
            Request::Unhold { .. } => CallAction::Unhold,
            Request::Dtmf { digits, .. } => CallAction::Dtmf(digits.clone()),
            _ => CallAction::Hangup,
        };
        let host = self.host().clone();
        let inputs = self.inputs.clone();
        let label = self.switch.device_label(device).map(str::to_string);
        tokio::spawn(async move {
            let dir = &host.context.directory;
            let actor = dir.user(&user).expect("a joined device's user").clone();
            let mut notes = Vec::new();
            let outcome =
                chain::decide_action(&chain, dir, &call, &actor, label, &action, &mut notes).await;
            let _ = inputs
                .send(Input::ActionDecided {
                    device,
                    req,
                    call_id,
                    request,
                    outcome,
                    notes,
                })
                .await;
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn spawn_message_decision(
        &self,
        chain: Chain,
        device: DeviceId,
        req: u64,
        sender: Uuid,
        recipient: Uuid,
        to: String,
        body: serde_json::Value,
    ) {
        let host = self.host().clone();
        let inputs = self.inputs.clone();
        let label = self.switch.device_label(device).map(str::to_string);
        tokio::spawn(async move {
            let dir = &host.context.directory;
            let from = crate::plugins::identity_of(dir, sender, label);
            let rcpt = crate::plugins::identity_of(dir, recipient, None);
            let outcome = chain::decide_message(&chain, &from, &rcpt, &body.to_string()).await;
            let _ = inputs
                .send(Input::MessageDecided {
                    device,
                    req,
                    to,
                    body,
                    outcome,
                })
                .await;
        });
    }

    pub(super) fn spawn_reload(&self, device: DeviceId, req: u64, name: Option<String>) {
        let Some(host) = self.plugins.clone() else {
            self.reply_now(
                device,
                super::error(
                    req,
                    crate::wire::ErrorCode::BadRequest,
                    "no plugins are configured".into(),
                ),
            );
            return;
        };
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let reply = match host.reload(name.as_deref()).await {
                Ok(plugins) => ServerMessage::Plugins { req, plugins },
                Err(e) => super::error(req, crate::wire::ErrorCode::BadRequest, e.to_string()),
            };
            let _ = inputs.send(Input::Reloaded { device, reply }).await;
        });
    }

    fn reply_now(&self, device: DeviceId, reply: ServerMessage) {
        if let Some(d) = self.devices.get(&device) {
            let _ = d.outbox.try_send(super::Outbound::Message(Box::new(reply)));
        }
    }

    /// Executes a plugin's `calls-control` or `notify` request.
    pub(super) fn plugin_command(&mut self, command: PluginCommand) {
        let now = self.clock.now();
        match command {
            PluginCommand::Dial {
                plugin,
                as_user,
                targets,
                reply,
            } => {
                // The call is placed from the user's newest device.
                let result = match self.switch.devices_of(as_user).last() {
                    None => Err(format!("user {as_user} is not online")),
                    Some(&device) => {
                        let call_id = Uuid::new_v4();
                        tracing::info!(%plugin, %call_id, device, "plugin places a call");
                        self.switch
                            .dial(now, device, call_id, &targets)
                            .map_err(|e| e.to_string())
                    }
                };
                self.flush(None);
                let _ = reply.send(result);
            }
            PluginCommand::Hangup {
                plugin,
                call_id,
                reply,
            } => {
                tracing::info!(%plugin, %call_id, "plugin ends a call");
                let result = self
                    .switch
                    .end_call(now, call_id, EndReason::Admin)
                    .map_err(|e| e.to_string());
                self.flush(None);
                let _ = reply.send(result);
            }
            PluginCommand::AddParty {
                plugin,
                call_id,
                target,
                reply,
            } => {
                tracing::info!(%plugin, %call_id, %target, "plugin adds a party");
                let result = self
                    .switch
                    .add_party(now, call_id, &target)
                    .map_err(|e| e.to_string());
                self.flush(None);
                let _ = reply.send(result);
            }
            PluginCommand::Transfer {
                plugin,
                call_id,
                from_user,
                to_target,
                reply,
            } => {
                let dir = self.switch.directory();
                let (Some(call), Some(from), Some(to)) = (
                    self.switch.call(call_id),
                    dir.user(&from_user).cloned(),
                    dir.resolve(&to_target).cloned(),
                ) else {
                    let _ = reply.send(Err("unknown call, user or target".into()));
                    return;
                };
                tracing::info!(%plugin, %call_id, to = %to.name, "plugin transfers a call");
                // The requesting plugin is inside its own hook (and agrees):
                // asking it again would wait on itself.
                let chain: Vec<_> = self
                    .host()
                    .chain()
                    .iter()
                    .filter(|p| p.name != plugin)
                    .cloned()
                    .collect();
                let host = self.host().clone();
                let inputs = self.inputs.clone();
                tokio::spawn(async move {
                    let mut notes = Vec::new();
                    let outcome = chain::decide_transfer(
                        &chain,
                        &host.context.directory,
                        &call,
                        &from,
                        &to,
                        &mut notes,
                    )
                    .await;
                    let _ = inputs
                        .send(Input::TransferDecided {
                            call_id,
                            from_user,
                            to_target,
                            outcome,
                            notes,
                            reply,
                        })
                        .await;
                });
            }
            PluginCommand::Notify {
                plugin,
                user,
                body,
                reply,
            } => {
                let devices = self.switch.devices_of(user);
                let result = if devices.is_empty() {
                    Err(format!("user {user} is not online"))
                } else {
                    for d in devices {
                        self.send(
                            d,
                            ServerMessage::Notification {
                                plugin: plugin.clone(),
                                body: body.clone(),
                            },
                        );
                    }
                    Ok(())
                };
                let _ = reply.send(result);
            }
        }
    }

    /// Brings the plugins' snapshot of calls up to date for the calls an
    /// input touched, and queues their new events for `on-event`.
    pub(super) fn update_plugin_view(
        &mut self,
        mut touched: Vec<Uuid>,
        records: &[Box<CallRecord>],
    ) {
        let host = self.host().clone();
        touched.sort();
        touched.dedup();
        let want_events = self.plugin_events.is_some();
        let mut jobs = Vec::new();
        {
            let mut calls = host.context.calls.write().expect("calls view");
            for id in &touched {
                match self.switch.call(*id) {
                    Some(summary) if !want_events => {
                        calls.insert(*id, summary);
                    }
                    Some(summary) => {
                        let seen = self.events_seen.entry(*id).or_insert(0);
                        let events = self.switch.call_events(*id).unwrap_or_default();
                        for e in &events[(*seen).min(events.len())..] {
                            jobs.push(EventJob {
                                call: summary.clone(),
                                event: e.kind.clone(),
                            });
                        }
                        *seen = events.len();
                        calls.insert(*id, summary);
                    }
                    None => {
                        calls.remove(id);
                    }
                }
            }
            for record in records {
                calls.remove(&record.call_id);
                if !want_events {
                    continue;
                }
                let seen = self.events_seen.remove(&record.call_id).unwrap_or(0);
                let summary = summary_of(record);
                for e in &record.events[seen.min(record.events.len())..] {
                    jobs.push(EventJob {
                        call: summary.clone(),
                        event: e.kind.clone(),
                    });
                }
            }
        }
        if let Some(tx) = &self.plugin_events {
            for job in jobs {
                if tx.try_send(job).is_err() {
                    self.stats.plugin_events_dropped.fetch_add(1, Relaxed);
                    warn!("plugin event queue full: an event was dropped");
                }
            }
        }
    }

    /// Recomputes which devices each user is online on, for `calls`.
    pub(super) fn refresh_online(&mut self) {
        let Some(host) = &self.plugins else { return };
        let mut online = host.context.online.write().expect("online view");
        online.clear();
        for u in self.switch.users() {
            if !u.devices.is_empty() {
                online.insert(
                    u.user.id,
                    u.devices.iter().map(|d| d.label.clone()).collect(),
                );
            }
        }
    }
}
