//! Counters and gauges of the pipeline, read by the admin endpoint and the watchdog. All plain
//! atomics written with `Relaxed` stores by the one thread that owns each value, so reading
//! them never slows the data plane; the two histograms sit behind mutexes that the data-plane
//! thread only `try_lock`s to merge its private histogram, never waits on.
//!
//! They sit with the port because the port carries them: the gateway counts its refused
//! pushes here, the runtime's threads everything else, and the daemon reads them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;
use petrel_core::RejectReason;

/// The rings of the pipeline, for `RuntimeStats::ring_full_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ring {
    /// Gateway -> sequencer: full means the gateway must stop reading its sockets.
    Inbound,
    /// Control plane -> sequencer (kill switch, risk limits).
    Admin,
    /// Sequencer -> journal writer: full means the disk is behind; the sequencer waits.
    Journal,
    /// Sequencer -> gateway: full means the gateway is behind; the sequencer waits.
    Outbound,
}

impl Ring {
    pub const ALL: [Ring; 4] = [Ring::Inbound, Ring::Admin, Ring::Journal, Ring::Outbound];

    /// A stable name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Ring::Inbound => "inbound",
            Ring::Admin => "admin",
            Ring::Journal => "journal",
            Ring::Outbound => "outbound",
        }
    }
}

/// Histogram range: 1 ns to 60 s at 3 significant digits (about 0.1% error), fixed so that
/// recording never allocates. Values beyond saturate to the maximum.
const HISTOGRAM_MAX_NS: u64 = 60_000_000_000;
const HISTOGRAM_SIGFIG: u8 = 3;

pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, HISTOGRAM_SIGFIG).expect("constant bounds are valid")
}

/// How often a data-plane thread merges its own latency samples into the histogram readers
/// take. A merge walks and clears the whole histogram (hundreds of kilobytes at these bounds:
/// tens of microseconds), far too much per command or per commit on an order's path, and even
/// every 10 ms it showed in the engine's p99 (docs/PERFORMANCE.md); readers scrape every few
/// seconds.
pub const HISTOGRAM_MERGE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// A thread's own latency histogram: recorded without sharing, merged into the shared one at
/// most every [`HISTOGRAM_MERGE_INTERVAL`] (the thread calls [`merge_if_due`] on every loop,
/// idle ones included, so samples reach readers within about that interval).
///
/// [`merge_if_due`]: ThreadHistogram::merge_if_due
pub(crate) struct ThreadHistogram {
    local: Histogram<u64>,
    recorded: u64,
    merged_at: std::time::Instant,
}

impl ThreadHistogram {
    pub(crate) fn new(local: Histogram<u64>) -> ThreadHistogram {
        ThreadHistogram { local, recorded: 0, merged_at: std::time::Instant::now() }
    }

    #[inline]
    pub(crate) fn record(&mut self, value_ns: u64) {
        self.local.saturating_record(value_ns.max(1));
        self.recorded += 1;
    }

    /// Merges the samples into `shared` when some wait and the interval has passed, never
    /// waiting for a reader (a busy one: next time). Whether it merged.
    pub(crate) fn merge_if_due(&mut self, shared: &Mutex<Histogram<u64>>) -> bool {
        if self.recorded == 0 || self.merged_at.elapsed() < HISTOGRAM_MERGE_INTERVAL {
            return false;
        }
        let Ok(mut shared) = shared.try_lock() else { return false };
        shared.add(&self.local).expect("histograms share their bounds");
        self.local.reset();
        self.recorded = 0;
        self.merged_at = std::time::Instant::now();
        true
    }

    /// Merges whatever waits, waiting for a reader if need be: when the thread stops.
    pub(crate) fn merge_now(&mut self, shared: &Mutex<Histogram<u64>>) {
        if self.recorded == 0 {
            return;
        }
        let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.add(&self.local).expect("histograms share their bounds");
        self.local.reset();
        self.recorded = 0;
    }
}

/// Everything the runtime counts (see the module documentation).
#[derive(Debug)]
pub struct RuntimeStats {
    /// Commands sequenced (admin commands included) since start.
    pub commands_total: AtomicU64,
    pub rejects_total: AtomicU64,
    /// Rejects by reason, indexed like `RejectReason::ALL`.
    pub rejects_by_reason: [AtomicU64; RejectReason::ALL.len()],
    pub executions_total: AtomicU64,
    /// `Cancelled` events (user cancels, IOC remainders, STP, mass cancels...).
    pub cancels_total: AtomicU64,
    /// Times a producer found a ring full and had to wait (or, for inbound and admin, was
    /// refused), indexed like `Ring::ALL`.
    pub ring_full_total: [AtomicU64; Ring::ALL.len()],
    /// Gauges sampled by the housekeeping thread.
    pub inbound_depth: AtomicU64,
    pub outbound_depth: AtomicU64,
    pub journal_ring_depth: AtomicU64,
    pub journal_bytes_total: AtomicU64,
    pub journal_batches_total: AtomicU64,
    /// Records in the most recent group commit.
    pub journal_batch_records: AtomicU64,
    /// Duration of each group commit (write + fdatasync), ns.
    pub journal_commit_ns: Mutex<Histogram<u64>>,
    /// Time the sequencer spent on one command (stamp, journal push, match, event pushes), ns.
    pub matcher_service_ns: Mutex<Histogram<u64>>,
    /// Last sequence given to a command.
    pub last_sequence: AtomicU64,
    /// Every command up to this sequence is durable.
    pub durable_sequence: AtomicU64,
    pub snapshots_written_total: AtomicU64,
    pub snapshot_failures_total: AtomicU64,
    pub last_snapshot_sequence: AtomicU64,
    /// Journal records replayed by the recovery before start, and how many there were.
    pub replay_records_done: AtomicU64,
    pub replay_records_total: AtomicU64,
    /// Events the sequencer could not hand to a gateway that stopped draining during shutdown.
    pub outbound_dropped_at_shutdown: AtomicU64,
    /// Set once the journal thread failed: no command will become durable any more.
    pub journal_failed: AtomicBool,
    /// With a standby: the state hash after the newest sequence that is a multiple of
    /// `snapshots.every_commands`, computed by the thread that applied it before that
    /// command can be durable. The replication thread sends it right after that record, and the
    /// standby compares it with its own at the same point.
    pub checkpoint: Mutex<Option<(u64, petrel_core::StateHash)>>,
}

impl RuntimeStats {
    pub fn new() -> RuntimeStats {
        for (i, reason) in RejectReason::ALL.iter().enumerate() {
            debug_assert_eq!(*reason as usize, i, "RejectReason::ALL is in declaration order");
        }
        RuntimeStats {
            commands_total: AtomicU64::new(0),
            rejects_total: AtomicU64::new(0),
            rejects_by_reason: std::array::from_fn(|_| AtomicU64::new(0)),
            executions_total: AtomicU64::new(0),
            cancels_total: AtomicU64::new(0),
            ring_full_total: std::array::from_fn(|_| AtomicU64::new(0)),
            inbound_depth: AtomicU64::new(0),
            outbound_depth: AtomicU64::new(0),
            journal_ring_depth: AtomicU64::new(0),
            journal_bytes_total: AtomicU64::new(0),
            journal_batches_total: AtomicU64::new(0),
            journal_batch_records: AtomicU64::new(0),
            journal_commit_ns: Mutex::new(new_histogram()),
            matcher_service_ns: Mutex::new(new_histogram()),
            last_sequence: AtomicU64::new(0),
            durable_sequence: AtomicU64::new(0),
            snapshots_written_total: AtomicU64::new(0),
            snapshot_failures_total: AtomicU64::new(0),
            last_snapshot_sequence: AtomicU64::new(0),
            replay_records_done: AtomicU64::new(0),
            replay_records_total: AtomicU64::new(0),
            outbound_dropped_at_shutdown: AtomicU64::new(0),
            journal_failed: AtomicBool::new(false),
            checkpoint: Mutex::new(None),
        }
    }

    pub fn ring_full(&self, ring: Ring) -> u64 {
        self.ring_full_total[ring as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn count_ring_full(&self, ring: Ring) {
        self.ring_full_total[ring as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejects(&self, reason: RejectReason) -> u64 {
        self.rejects_by_reason[reason as usize].load(Ordering::Relaxed)
    }
}

impl Default for RuntimeStats {
    fn default() -> RuntimeStats {
        RuntimeStats::new()
    }
}
