//! `calls-control`: act on calls on behalf of users. Each request goes to
//! the switch's driver, which applies it like a client's request and
//! answers; calls placed this way are not themselves vetted by `on-dial`,
//! and a transfer is vetted by the `on-transfer` of every plugin but the one
//! that asked for it (which is busy asking, and agrees).

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::plugins::bindings::callswitch::plugin::calls_control::Host;
use crate::plugins::state::{PluginCommand, PluginState};

impl PluginState {
    /// Sends a command to the driver and waits for its answer. Takes the
    /// sender out first: the store's state is not `Sync`, so it must not be
    /// borrowed across the wait.
    pub(super) fn command<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> PluginCommand,
    ) -> impl std::future::Future<Output = Result<T, String>> + Send + 'static {
        let tx = self.host.commands.get().cloned();
        let (reply, rx) = oneshot::channel();
        let command = make(reply);
        async move {
            let Some(tx) = tx else {
                return Err("the switch is not running".into());
            };
            send_and_wait(tx, command, rx).await
        }
    }
}

async fn send_and_wait<T>(
    tx: tokio::sync::mpsc::Sender<PluginCommand>,
    command: PluginCommand,
    rx: oneshot::Receiver<Result<T, String>>,
) -> Result<T, String> {
    tx.send(command)
        .await
        .map_err(|_| "the switch is shutting down".to_string())?;
    // Epoch deadlines do not run while the guest waits in the host: bound
    // the wait here so a stuck request cannot hold the plugin forever.
    match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("the switch dropped the request".to_string()),
        Err(_) => Err(format!(
            "no answer from the switch within {COMMAND_TIMEOUT:?}"
        )),
    }
}

/// Longest a plugin waits for the switch to carry out a command.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn uuid(text: &str, what: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|_| format!("`{text}` is not a {what} UUID"))
}

impl Host for PluginState {
    async fn dial(&mut self, as_user: String, targets: Vec<String>) -> Result<String, String> {
        let as_user = uuid(&as_user, "user")?;
        let plugin = self.plugin.to_string();
        self.command(|reply| PluginCommand::Dial {
            plugin,
            as_user,
            targets,
            reply,
        })
        .await
        .map(|id| id.to_string())
    }

    async fn hangup(&mut self, call_id: String) -> Result<(), String> {
        let call_id = uuid(&call_id, "call")?;
        let plugin = self.plugin.to_string();
        self.command(|reply| PluginCommand::Hangup {
            plugin,
            call_id,
            reply,
        })
        .await
    }

    async fn add_party(&mut self, call_id: String, target: String) -> Result<(), String> {
        let call_id = uuid(&call_id, "call")?;
        let plugin = self.plugin.to_string();
        self.command(|reply| PluginCommand::AddParty {
            plugin,
            call_id,
            target,
            reply,
        })
        .await
    }

    async fn transfer(
        &mut self,
        call_id: String,
        from_user: String,
        to_target: String,
    ) -> Result<(), String> {
        let call_id = uuid(&call_id, "call")?;
        let from_user = uuid(&from_user, "user")?;
        let plugin = self.plugin.to_string();
        self.command(|reply| PluginCommand::Transfer {
            plugin,
            call_id,
            from_user,
            to_target,
            reply,
        })
        .await
    }
}
