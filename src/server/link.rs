//! The switch as seen by the ingress: opening devices that are not QUIC
//! connections (an adapter's users), sending their requests to the driver,
//! and reading counters and call events. It is the only way into the
//! driver from outside `server`, so the driver's inputs stay private.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::driver::{Input, Outbound, OUTBOX_DEPTH};
use super::outbox::Outbox;
use super::relay::{DeviceMedia, MediaSink, RelayStats, StreamSlot};
use crate::cdr::{CdrError, CdrStore};
use crate::switch::DeviceId;
use crate::wire::{CallEvent, CallRecord, Request, StatsSnapshot};

/// The switch is shutting down and takes no more input.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the switch is shutting down")]
pub struct SwitchGone;

/// A device the ingress opened: what the switch says to it arrives on
/// `outbox`; its audio goes out through `media` and comes in via `slot`.
pub struct LinkedDevice {
    pub id: DeviceId,
    pub outbox: mpsc::Receiver<Outbound>,
    pub media: Arc<DeviceMedia>,
    pub slot: Arc<StreamSlot>,
}

#[derive(Clone)]
pub struct SwitchLink {
    driver: mpsc::Sender<Input>,
    next_device: Arc<AtomicU64>,
    pub stats: Arc<RelayStats>,
    data_dir: PathBuf,
}

impl SwitchLink {
    pub(super) fn new(
        driver: mpsc::Sender<Input>,
        next_device: Arc<AtomicU64>,
        stats: Arc<RelayStats>,
        data_dir: PathBuf,
    ) -> Self {
        SwitchLink {
            driver,
            next_device,
            stats,
            data_dir,
        }
    }

    /// Registers a new device with the driver; it still has to say `hello`.
    pub async fn open_device(&self, rings: bool) -> Result<LinkedDevice, SwitchGone> {
        let id = self.next_device.fetch_add(1, Relaxed);
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX_DEPTH);
        let media = Arc::new(DeviceMedia::default());
        let slot = Arc::new(StreamSlot::default());
        self.driver
            .send(Input::Open {
                device: id,
                sink: MediaSink::Stream(slot.clone()),
                outbox: Outbox::Channel(outbox),
                media: media.clone(),
                rings,
            })
            .await
            .map_err(|_| SwitchGone)?;
        Ok(LinkedDevice {
            id,
            outbox: outbox_rx,
            media,
            slot,
        })
    }

    /// Hands a request to the driver; the reply comes on the device's outbox.
    pub async fn request(
        &self,
        device: DeviceId,
        req: u64,
        request: Request,
    ) -> Result<(), SwitchGone> {
        self.driver
            .send(Input::Request {
                device,
                req,
                request,
            })
            .await
            .map_err(|_| SwitchGone)
    }

    /// The device is gone: it leaves its calls, as a disconnecting client.
    pub async fn close_device(&self, device: DeviceId) {
        let _ = self.driver.send(Input::Closed { device }).await;
    }

    pub async fn stats(&self) -> Result<StatsSnapshot, SwitchGone> {
        let (reply, wait) = oneshot::channel();
        self.driver
            .send(Input::Stats { reply })
            .await
            .map_err(|_| SwitchGone)?;
        wait.await.map_err(|_| SwitchGone)
    }

    pub async fn live_events(&self, call_id: Uuid) -> Result<Option<Vec<CallEvent>>, SwitchGone> {
        let (reply, wait) = oneshot::channel();
        self.driver
            .send(Input::CallEvents { call_id, reply })
            .await
            .map_err(|_| SwitchGone)?;
        wait.await.map_err(|_| SwitchGone)
    }

    /// The record of an ended call, read from the record file (blocking).
    pub fn record(&self, call_id: Uuid) -> Result<Option<CallRecord>, CdrError> {
        CdrStore::find(&self.data_dir, call_id)
    }
}
