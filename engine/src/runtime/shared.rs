//! The state the pipeline threads and the `Runtime` handle share: the stop flags that order
//! shutdown, the failure that stopped the pipeline, heartbeats, counters and the journal
//! writer's doorbell.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::progress::{Beat, THREADS};
use crate::port::{Doorbell, RuntimeStats};

/// State shared by the pipeline threads and the handle.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) stats: Arc<RuntimeStats>,
    /// Intake closed: the sequencer drains what is queued and exits.
    pub(super) stop: AtomicBool,
    /// The sequencer has exited: the journal thread drains its ring, commits and exits.
    pub(super) sequencer_done: AtomicBool,
    /// The journal thread has exited: housekeeping finishes its snapshot job and exits.
    pub(super) journal_done: AtomicBool,
    pub(super) failure: Mutex<Option<String>>,
    pub(super) beats: [Beat; THREADS.len()],
    /// Rung by the sequencer after each command it pushed to the journal ring.
    pub(super) journal_bell: Doorbell,
    /// Test failpoint: the group commit holding this sequence fails (`u64::MAX`: never).
    pub(super) journal_fail_at: u64,
}

impl Shared {
    /// The journal writer failed: nothing more can become durable.
    pub(super) fn failed(&self) -> bool {
        self.stats.journal_failed.load(Ordering::Acquire)
    }
}
