//! `streams`: an adapter's WebSocket streams, which the ingress owns.

use crate::plugins::bindings::adapter::callswitch::plugin::streams::Host;
use crate::plugins::bindings::adapter::StreamMessage;
use crate::plugins::port::StreamPayload;
use crate::plugins::state::PluginState;

impl Host for PluginState {
    async fn send(&mut self, stream_id: u64, message: StreamMessage) -> Result<(), String> {
        let port = self.port.as_ref().ok_or("this plugin is not an adapter")?;
        let payload = match message {
            StreamMessage::Text(t) => StreamPayload::Text(t),
            StreamMessage::Binary(b) => StreamPayload::Binary(b),
        };
        port.stream_send(stream_id, payload)
    }

    async fn close(&mut self, stream_id: u64, code: u16, reason: String) {
        if let Some(port) = &self.port {
            port.stream_close(stream_id, code, &reason);
        }
    }

    async fn attach_media(
        &mut self,
        stream_id: u64,
        device: u64,
        call_id: String,
    ) -> Result<(), String> {
        let port = self.port.as_ref().ok_or("this plugin is not an adapter")?;
        port.attach_media(stream_id, device, &call_id)
    }
}
