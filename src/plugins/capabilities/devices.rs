//! `devices`: an adapter acting as its users' devices on the switch,
//! through the adapter port. Time spent waiting here is credited back to
//! the adapter's deadline.

use std::time::Instant;

use crate::plugins::bindings::adapter::callswitch::plugin::devices::Host;
use crate::plugins::bindings::adapter::{DeviceInfo, SwitchError};
use crate::plugins::bindings::Identity;
use crate::plugins::convert;
use crate::plugins::port::PortError;
use crate::plugins::state::PluginState;

fn switch_error(e: PortError) -> SwitchError {
    SwitchError {
        code: e.code,
        message: e.message,
    }
}

fn no_port() -> SwitchError {
    SwitchError {
        code: "internal".into(),
        message: "this plugin is not an adapter".into(),
    }
}

impl Host for PluginState {
    async fn authenticate(&mut self, token: String) -> Result<Identity, SwitchError> {
        let port = self.port.clone().ok_or_else(no_port)?;
        port.authenticate(&token)
            .map(|u| convert::identity(&u, None))
            .map_err(switch_error)
    }

    async fn open(
        &mut self,
        token: String,
        label: String,
        rings: bool,
    ) -> Result<DeviceInfo, SwitchError> {
        let port = self.port.clone().ok_or_else(no_port)?;
        let started = Instant::now();
        let opened = port.open_device(&token, &label, rings).await;
        self.waited += started.elapsed();
        let (device, user) = opened.map_err(switch_error)?;
        Ok(DeviceInfo {
            device,
            user: convert::identity(&user, Some(label)),
        })
    }

    async fn request(&mut self, device: u64, request: String) -> Result<String, SwitchError> {
        let port = self.port.clone().ok_or_else(no_port)?;
        let started = Instant::now();
        let reply = port.request(device, request).await;
        self.waited += started.elapsed();
        reply.map_err(switch_error)
    }

    async fn close(&mut self, device: u64) {
        if let Some(port) = &self.port {
            port.close_device(device);
        }
    }

    async fn call_record(&mut self, call_id: String) -> Option<String> {
        let port = self.port.clone()?;
        let started = Instant::now();
        let record = port.call_record(&call_id).await;
        self.waited += started.elapsed();
        record
    }

    async fn live_events(&mut self, call_id: String) -> Option<String> {
        let port = self.port.clone()?;
        let started = Instant::now();
        let events = port.live_events(&call_id).await;
        self.waited += started.elapsed();
        events
    }
}
