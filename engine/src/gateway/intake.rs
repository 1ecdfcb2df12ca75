//! Closing the gateway's intake at shutdown, with an acknowledgement.
//!
//! The daemon must not stop the runtime while the gateway may still push a command, or that
//! command would sit in the inbound ring unsequenced. So closing is a handshake: the daemon
//! clears the flag and rings the gateway's doorbell; the gateway sees it at the top of its
//! loop (never in the middle of submitting a command) and acknowledges; from then on it
//! submits nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender};

use crate::port::Doorbell;

/// The daemon's side: close the intake and wait until the gateway has stopped submitting.
#[derive(Debug)]
pub struct IntakeHandle {
    open: Arc<AtomicBool>,
    acknowledged: Receiver<()>,
}

impl IntakeHandle {
    /// Closes the intake and waits for the gateway's acknowledgement. Returns at once when the
    /// gateway thread has ended (its side of the channel is gone): it submits nothing then.
    pub fn close_and_wait(&self, gateway_bell: &Doorbell) {
        self.open.store(false, Ordering::SeqCst);
        // A parked gateway sleeps in its poll: wake it to see the closed intake now.
        gateway_bell.wake();
        let _ = self.acknowledged.recv();
    }
}

/// The gateway's side.
pub(super) struct Intake {
    open: Arc<AtomicBool>,
    acknowledge: Option<Sender<()>>,
}

impl Intake {
    pub(super) fn new() -> (Intake, IntakeHandle) {
        let open = Arc::new(AtomicBool::new(true));
        let (acknowledge, acknowledged) = crossbeam::channel::bounded(1);
        (
            Intake { open: Arc::clone(&open), acknowledge: Some(acknowledge) },
            IntakeHandle { open, acknowledged },
        )
    }

    pub(super) fn is_closed(&self) -> bool {
        self.acknowledge.is_none()
    }

    /// Called at the top of each loop, between commands: true the first time the daemon's
    /// close is seen (the gateway then acknowledges it).
    pub(super) fn observe_close(&mut self) -> bool {
        if self.acknowledge.is_none() || self.open.load(Ordering::Acquire) {
            return false;
        }
        if let Some(acknowledge) = self.acknowledge.take() {
            let _ = acknowledge.send(());
        }
        true
    }
}
