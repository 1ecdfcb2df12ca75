//! What can stop the runtime from starting, running or shutting down cleanly. Each error names
//! the setting or the thread at fault.

use petrel_journal::{JournalError, SnapshotError};

/// The admin ring was full: the control plane should retry shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the admin command ring is full ({capacity} commands waiting for the sequencer); try again")]
pub struct Full {
    pub capacity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "runtime.{thread}.cores: core {core} does not exist or is not allowed for this process \
         (usable cores: {usable})"
    )]
    CoreUnavailable { thread: &'static str, core: u32, usable: String },
    #[error("cannot pin the {thread} thread to cores {cores:?}: {source}")]
    Affinity {
        thread: &'static str,
        cores: Vec<u32>,
        #[source]
        source: nix::Error,
    },
    #[error(
        "runtime.realtime_priority: cannot give the {thread} thread SCHED_FIFO priority {priority}: {detail}"
    )]
    RealtimePriority { thread: &'static str, priority: u8, detail: String },
    #[error("runtime.mlockall: cannot lock memory: {detail}")]
    MlockAll { detail: String },
    #[error("{ring} ring capacity {capacity} is outside 1..={max}")]
    RingCapacity { ring: &'static str, capacity: usize, max: usize },
    #[error("cannot create the gateway's wake-up eventfd: {0}")]
    Doorbell(#[source] std::io::Error),
    #[error("cannot start the {thread} thread: {source}")]
    Spawn {
        thread: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal writer failed; nothing after sequence {durable_sequence} is durable. Restart the engine to recover: {source}")]
    Journal {
        durable_sequence: u64,
        #[source]
        source: JournalError,
    },
    #[error("cannot write the shutdown snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("cannot apply journal retention after the shutdown snapshot: {0}")]
    Retention(#[source] JournalError),
    #[error("the {thread} thread panicked")]
    Panicked { thread: &'static str },
    #[error("{name}={value:?}: a test failpoint takes an input sequence number")]
    Failpoint { name: &'static str, value: String },
}
