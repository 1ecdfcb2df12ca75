//! The journal writer thread: drains the journal ring into the journal's write buffer and makes
//! each drained batch durable with one group commit (one `pwrite`, one `fdatasync`), then
//! publishes the durable watermark that releases events and rings the gateway.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use petrel_journal::{CommitStats, JournalError, JournalWriter};

use super::idle::{IdleStrategy, Idler};
use super::progress::JOURNAL;
use super::shared::Shared;
use super::stamp::Stamped;
use crate::port::{new_histogram, GatewayPort, ThreadHistogram};

/// Most records the journal thread takes from its ring per group commit (beyond that, the
/// write buffer's size bounds a commit anyway).
const JOURNAL_BATCH_RECORDS: u32 = 65_536;

pub(super) struct JournalThread {
    writer: JournalWriter,
    ring: Arc<ArrayQueue<Stamped>>,
    shared: Arc<Shared>,
    idle: IdleStrategy,
    commits: Commits,
}

impl JournalThread {
    pub(super) fn new(
        writer: JournalWriter,
        ring: Arc<ArrayQueue<Stamped>>,
        shared: Arc<Shared>,
        port: GatewayPort,
        idle: IdleStrategy,
    ) -> JournalThread {
        JournalThread { writer, ring, commits: Commits::new(port, Arc::clone(&shared)), shared, idle }
    }

    /// The writer, for a thread that never ran (its OS settings failed).
    pub(super) fn into_writer(self) -> Result<JournalWriter, JournalError> {
        Ok(self.writer)
    }

    pub(super) fn run(mut self) -> Result<JournalWriter, JournalError> {
        let mut idler = Idler::new(self.idle);
        let shared = Arc::clone(&self.shared);
        let beat = &shared.beats[JOURNAL];
        loop {
            // Loaded before draining: every push the sequencer made happened before it set this.
            let sequencer_done = shared.sequencer_done.load(Ordering::Acquire);
            let mut records = 0u32;
            while records < JOURNAL_BATCH_RECORDS {
                let Some(slot) = self.ring.pop() else { break };
                match self.writer.append_or_commit(slot.sequence, slot.timestamp_ns, slot.payload()) {
                    Ok(None) => {}
                    // The write buffer filled mid-drain: that commit made its records durable.
                    Ok(Some(committed)) => self.commits.publish(committed),
                    Err(e) => return Err(self.commits.fail(e)),
                }
                records += 1;
            }
            if self.writer.buffered_records() > 0 {
                match self.commits.commit(&mut self.writer) {
                    Ok(committed) => self.commits.publish(committed),
                    Err(e) => return Err(self.commits.fail(e)),
                }
            } else if sequencer_done {
                break;
            } else {
                self.commits.idle();
            }
            beat.beat(records == 0);
            let (ring, shared) = (&self.ring, &self.shared);
            idler.idle_or_sleep(records > 0, &shared.journal_bell, || {
                !ring.is_empty() || shared.sequencer_done.load(Ordering::Acquire)
            });
        }
        self.commits.finish();
        Ok(self.writer)
    }
}

/// Test-only: `PETREL_FAILPOINT_JOURNAL_FAIL_AT=N` (an input sequence) makes the group commit
/// that holds command N fail as a failed write would, before anything of it reaches the disk
/// (a commit forced in the middle of a batch by a full write buffer is not checked): how the
/// tests prove that a journal failure loses nothing acknowledged on either data path. One
/// compare per commit when unset.
pub const JOURNAL_FAIL_AT: &str = "PETREL_FAILPOINT_JOURNAL_FAIL_AT";

/// The failpoint's sequence (`u64::MAX` when unset).
pub(super) fn journal_fail_at() -> Result<u64, super::RuntimeError> {
    match std::env::var(JOURNAL_FAIL_AT) {
        Err(_) => Ok(u64::MAX),
        Ok(value) => {
            value.trim().parse().map_err(|_| super::RuntimeError::Failpoint { name: JOURNAL_FAIL_AT, value })
        }
    }
}

/// What follows a group commit, on either data path: the durable mark published (which releases
/// events), the gateway rung, the commit counted and timed; or, after a failed one, the failure
/// recorded for the watchdog and the operator.
pub(super) struct Commits {
    port: GatewayPort,
    shared: Arc<Shared>,
    commit_ns: ThreadHistogram,
    fail_at: u64,
}

impl Commits {
    pub(super) fn new(port: GatewayPort, shared: Arc<Shared>) -> Commits {
        let fail_at = shared.journal_fail_at;
        Commits { port, shared, commit_ns: ThreadHistogram::new(new_histogram()), fail_at }
    }

    /// One group commit of what `writer` buffered (the test failpoint checked first).
    /// Each write, before its sync, is announced to the replication thread (which may ship
    /// it at once: the standby's commit then overlaps this one).
    pub(super) fn commit(&self, writer: &mut JournalWriter) -> Result<CommitStats, JournalError> {
        let first = writer.next_sequence() - writer.buffered_records();
        if writer.buffered_records() > 0 && (first..writer.next_sequence()).contains(&self.fail_at) {
            return Err(JournalError::Io {
                action: "write",
                path: writer.current_segment().to_owned(),
                source: std::io::Error::other(format!("test failpoint {JOURNAL_FAIL_AT}={}", self.fail_at)),
            });
        }
        let gate = &self.port.gate;
        writer.commit_notifying(&mut |written| {
            gate.written.store(written, Ordering::Release);
            gate.shipper.ring();
        })
    }

    /// After one group commit: publishes the new durable mark (Release: the gateway that sees
    /// it may release every event up to it) and rings the gateway.
    pub(super) fn publish(&mut self, committed: CommitStats) {
        self.commit_ns.record(committed.duration_ns);
        self.port.gate.local.store(committed.durable_sequence, Ordering::Release);
        self.port.gate.publish(&self.port.durable_sequence);
        self.port.gate.shipper.ring();
        self.port.gateway_bell.ring();
        let stats = &self.shared.stats;
        stats.durable_sequence.store(committed.durable_sequence, Ordering::Relaxed);
        stats.journal_bytes_total.fetch_add(committed.bytes_written, Ordering::Relaxed);
        stats.journal_batches_total.fetch_add(1, Ordering::Relaxed);
        stats.journal_batch_records.store(committed.records, Ordering::Relaxed);
        self.commit_ns.merge_if_due(&stats.journal_commit_ns);
    }

    /// On a loop without a commit: hands the commit times waiting to readers, when due.
    pub(super) fn idle(&mut self) {
        self.commit_ns.merge_if_due(&self.shared.stats.journal_commit_ns);
    }

    /// When the journal stops: every commit time to readers.
    pub(super) fn finish(&mut self) {
        self.commit_ns.merge_now(&self.shared.stats.journal_commit_ns);
    }

    /// After a failed commit: nothing more can become durable. Records why, for `progress`.
    pub(super) fn fail(&self, error: JournalError) -> JournalError {
        let durable = self.port.durable_sequence.load(Ordering::Relaxed);
        tracing::error!(
            durable_sequence = durable,
            "journal writer failed, the engine stops sequencing: {error}"
        );
        *self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(format!("journal writer failed after durable sequence {durable}: {error}"));
        self.shared.stats.journal_failed.store(true, Ordering::Release);
        error
    }
}
