//! The housekeeping thread (control plane, never real-time): writes the snapshots the sequencer
//! encodes, once the journal is durable up to them, then prunes snapshots and applies journal
//! retention; samples the ring depths.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender};
use crossbeam::queue::ArrayQueue;
use petrel_journal::JournalConfig;

use super::idle::Idler;
use super::progress::HOUSEKEEPING;
use super::shared::Shared;
use super::stamp::Stamped;
use crate::config::{Config, SnapshotConfig, ThreadConfig};
use crate::port::GatewayPort;

/// A snapshot encoded by the sequencer, waiting for the journal to reach `sequence`.
pub(super) struct SnapshotJob {
    pub sequence: u64,
    pub bytes: Vec<u8>,
}

pub(super) struct Housekeeping {
    shared: Arc<Shared>,
    port: GatewayPort,
    /// The pipeline's journal ring (none when running to completion), for its depth gauge.
    journal_ring: Option<Arc<ArrayQueue<Stamped>>>,
    thread: ThreadConfig,
    snapshots: SnapshotConfig,
    journal_config: JournalConfig,
    job_rx: Receiver<SnapshotJob>,
    buffer_tx: Sender<Vec<u8>>,
}

impl Housekeeping {
    pub(super) fn new(
        config: &Config,
        shared: Arc<Shared>,
        port: GatewayPort,
        journal_ring: Option<Arc<ArrayQueue<Stamped>>>,
        jobs: Receiver<SnapshotJob>,
        buffers: Sender<Vec<u8>>,
    ) -> Housekeeping {
        Housekeeping {
            shared,
            port,
            journal_ring,
            thread: config.runtime.housekeeping.clone(),
            snapshots: config.snapshots.clone(),
            journal_config: config.journal.clone(),
            job_rx: jobs,
            buffer_tx: buffers,
        }
    }

    pub(super) fn run(self) {
        let mut idler = Idler::new(self.thread.idle);
        let beat = &self.shared.beats[HOUSEKEEPING];
        let mut pending: Option<SnapshotJob> = None;
        loop {
            let journal_done = self.shared.journal_done.load(Ordering::Acquire);
            let stats = &self.shared.stats;
            stats.inbound_depth.store(self.port.inbound.len() as u64, Ordering::Relaxed);
            stats.outbound_depth.store(self.port.outbound.len() as u64, Ordering::Relaxed);
            let journal_depth = self.journal_ring.as_ref().map_or(0, |ring| ring.len());
            stats.journal_ring_depth.store(journal_depth as u64, Ordering::Relaxed);
            if pending.is_none() {
                pending = self.job_rx.try_recv().ok();
            }
            let mut did_work = false;
            if let Some(job) = pending.take() {
                if self.port.durable_sequence.load(Ordering::Acquire) >= job.sequence {
                    self.write_snapshot(&job);
                    // The sequencer may have stopped; then the buffer is simply freed.
                    let _ = self.buffer_tx.try_send(job.bytes);
                    did_work = true;
                } else if self.shared.failed() || journal_done {
                    // Never durable: writing it would put a snapshot ahead of the journal.
                    tracing::warn!(
                        sequence = job.sequence,
                        "snapshot dropped: its commands never became durable"
                    );
                } else {
                    pending = Some(job);
                }
            }
            if journal_done && pending.is_none() && self.job_rx.is_empty() {
                break;
            }
            beat.beat(!did_work && pending.is_none());
            idler.idle(did_work);
        }
    }

    fn write_snapshot(&self, job: &SnapshotJob) {
        let stats = &self.shared.stats;
        let written =
            crate::snapshot::write_encoded(&self.snapshots, &self.journal_config, job.sequence, &job.bytes);
        match written {
            Ok(path) => {
                stats.snapshots_written_total.fetch_add(1, Ordering::Relaxed);
                stats.last_snapshot_sequence.fetch_max(job.sequence, Ordering::Relaxed);
                tracing::info!(path = %path.display(), sequence = job.sequence, "wrote snapshot");
            }
            Err(e) => {
                // The journal alone recovers everything; the next snapshot tries again.
                stats.snapshot_failures_total.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    sequence = job.sequence,
                    "snapshot failed, will try again at the next one: {e}"
                );
            }
        }
    }
}
