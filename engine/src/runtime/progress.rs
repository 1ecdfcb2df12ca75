//! The liveness of each pipeline thread (heartbeats and idle flags), for the watchdog.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam::utils::CachePadded;

/// The pipeline threads the runtime owns, for `ProgressSnapshot`.
pub const THREADS: [&str; 3] = ["sequencer", "journal", "housekeeping"];
/// Each thread's index in [`THREADS`] and in the runtime's heartbeats.
pub(super) const SEQUENCER: usize = 0;
pub(super) const JOURNAL: usize = 1;
pub(super) const HOUSEKEEPING: usize = 2;

/// One thread's liveness, written by that thread on every loop.
#[derive(Debug, Default)]
pub(crate) struct Beat {
    heartbeat: CachePadded<AtomicU64>,
    idle: AtomicBool,
}

impl Beat {
    /// One loop done; `idle`: the loop found nothing to do and nothing is queued for it.
    #[inline]
    pub(crate) fn beat(&self, idle: bool) {
        self.heartbeat.fetch_add(1, Ordering::Relaxed);
        // Only on change: this line is read by the watchdog, keep it quiet.
        if self.idle.load(Ordering::Relaxed) != idle {
            self.idle.store(idle, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self) -> ThreadProgress {
        ThreadProgress {
            heartbeat: self.heartbeat.load(Ordering::Relaxed),
            idle: self.idle.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadProgress {
    /// Loops done; moves while the thread is alive (also while it sleeps between polls).
    pub heartbeat: u64,
    /// The last loop found no work and nothing queued for the thread.
    pub idle: bool,
}

/// The liveness of every pipeline thread at one moment, for the watchdog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// Indexed like [`THREADS`].
    pub threads: [ThreadProgress; THREADS.len()],
    /// Why the pipeline stopped (a journal failure), if it did: restart and recover.
    pub failure: Option<String>,
}

impl ProgressSnapshot {
    /// The first thread that made no loop since `earlier` and was not idle: stuck in a system
    /// call or a loop (the watchdog should stop the engine). `None`: all made progress.
    pub fn stalled_since(&self, earlier: &ProgressSnapshot) -> Option<&'static str> {
        THREADS
            .iter()
            .zip(self.threads.iter().zip(earlier.threads.iter()))
            .find_map(|(name, (now, then))| (now.heartbeat == then.heartbeat && !now.idle).then_some(*name))
    }
}
