//! Applying commands, the part both data paths share: the engine with its stamper, the counters
//! the metrics read, the service-time histogram and the snapshot hand-off to housekeeping. Run
//! by the sequencer thread in the pipeline (`sequencer.rs`) and by the gateway's thread when it
//! runs to completion (`run_to_completion.rs`); they differ only in where a stamped command is
//! journaled and where its events go ([`PushEvent`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};
use petrel_core::{Engine, Event, EventSink, RejectReason};

use super::housekeeping::SnapshotJob;
use super::shared::Shared;
use super::stamp::{Stamped, Stamper};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::port::{new_histogram, InboundCommand, OutboundEvent, ThreadHistogram};

/// Where a command's events go: the outbound ring, each data path with its own way of waiting
/// when the ring is full.
pub(super) trait PushEvent {
    fn push(&mut self, event: OutboundEvent);
}

/// Counts kept between publications (one store per batch instead of one shared
/// read-modify-write per event).
#[derive(Default)]
struct Counters {
    commands: u64,
    rejects: u64,
    rejects_by_reason: [u64; RejectReason::ALL.len()],
    executions: u64,
    cancels: u64,
}

/// The snapshot hand-off to housekeeping: one job in flight, its buffer handed back for reuse.
pub(super) struct SnapshotChannels {
    pub jobs: Sender<SnapshotJob>,
    pub buffers: Receiver<Vec<u8>>,
}

pub(super) struct Applier {
    engine: Engine,
    stamper: Stamper<SystemClock>,
    shared: Arc<Shared>,
    counters: Counters,
    service_ns: ThreadHistogram,
    snapshot_every: u64,
    commands_since_snapshot: u64,
    /// The reusable snapshot buffer; `None` while housekeeping holds it.
    snapshot_buffer: Option<Vec<u8>>,
    snapshots: SnapshotChannels,
    /// With a standby: the state hash is taken after each sequence that is a multiple of this
    /// (`snapshots.every_commands`), into a buffer kept for it (it grows to the state's size
    /// once, then is reused).
    checkpoint_every: Option<u64>,
    checkpoint_buffer: Vec<u8>,
}

impl Applier {
    pub(super) fn new(
        config: &Config,
        engine: Engine,
        shared: Arc<Shared>,
        snapshots: SnapshotChannels,
    ) -> Applier {
        Applier {
            stamper: Stamper::continuing(&engine, SystemClock),
            engine,
            shared,
            counters: Counters::default(),
            service_ns: ThreadHistogram::new(new_histogram()),
            snapshot_every: config.snapshots.every_commands,
            commands_since_snapshot: 0,
            snapshot_buffer: Some(Vec::new()),
            snapshots,
            checkpoint_every: config.replication.as_ref().map(|_| config.snapshots.every_commands.max(1)),
            checkpoint_buffer: Vec::new(),
        }
    }

    pub(super) fn into_engine(self) -> Engine {
        self.engine
    }

    /// Stamps one command, hands it to `journal` and, once the journal took it, applies it with
    /// its events going to `outbound` (the last one flagged `last_of_command`). Returns its
    /// sequence, or `journal`'s error with nothing applied.
    #[inline]
    pub(super) fn apply<E>(
        &mut self,
        inbound: InboundCommand,
        journal: impl FnOnce(&Stamped) -> Result<(), E>,
        outbound: &mut impl PushEvent,
    ) -> Result<u64, E> {
        let started = Instant::now();
        let counters = &mut self.counters;
        // The sink is built from the stamped command, so its events carry the command's sequence.
        let (sequence, sink) =
            self.stamper.sequence(&inbound.command, &inbound.echo, &mut self.engine, journal, |stamped| {
                OutboundSink {
                    outbound,
                    counters,
                    held: None,
                    sequence: stamped.sequence,
                    timestamp_ns: stamped.timestamp_ns,
                    conn: inbound.conn,
                }
            })?;
        sink.finish();
        self.counters.commands += 1;
        self.commands_since_snapshot += 1;
        if self.checkpoint_every.is_some_and(|every| sequence % every == 0) {
            self.checkpoint(sequence);
        }
        self.service_ns.record(started.elapsed().as_nanos() as u64);
        Ok(sequence)
    }

    /// The state hash after `sequence`, for the standby to compare with its own. Costs an
    /// encoding of the whole state (as a snapshot does), once every `checkpoint_every`
    /// commands, and only with a standby.
    #[cold]
    fn checkpoint(&mut self, sequence: u64) {
        self.checkpoint_buffer.clear();
        self.engine.encode_state(&mut self.checkpoint_buffer);
        let hash = petrel_core::StateHash::of_encoded(&self.checkpoint_buffer);
        *self.shared.stats.checkpoint.lock().unwrap_or_else(|p| p.into_inner()) = Some((sequence, hash));
    }

    /// Publishes the counters for the metrics, and the service times when due (never waiting
    /// for a reader). Called after work and on idle loops alike.
    pub(super) fn publish(&mut self) {
        let stats = &self.shared.stats;
        let c = &self.counters;
        stats.commands_total.store(c.commands, Ordering::Relaxed);
        stats.rejects_total.store(c.rejects, Ordering::Relaxed);
        for (total, count) in stats.rejects_by_reason.iter().zip(c.rejects_by_reason) {
            total.store(count, Ordering::Relaxed);
        }
        stats.executions_total.store(c.executions, Ordering::Relaxed);
        stats.cancels_total.store(c.cancels, Ordering::Relaxed);
        stats.last_sequence.store(self.stamper.next_sequence() - 1, Ordering::Relaxed);
        self.service_ns.merge_if_due(&stats.matcher_service_ns);
    }

    /// The last publication, when the thread stops: every sample included.
    pub(super) fn publish_final(&mut self) {
        self.publish();
        self.service_ns.merge_now(&self.shared.stats.matcher_service_ns);
    }

    /// At a command boundary, when due and no snapshot is in flight: encodes the state into the
    /// reused buffer and hands it to housekeeping, which writes it once it is durable.
    pub(super) fn maybe_snapshot(&mut self) {
        if let Ok(buffer) = self.snapshots.buffers.try_recv() {
            self.snapshot_buffer = Some(buffer);
        }
        if self.commands_since_snapshot < self.snapshot_every {
            return;
        }
        let Some(mut bytes) = self.snapshot_buffer.take() else { return };
        bytes.clear();
        self.engine.encode_state(&mut bytes);
        let job = SnapshotJob { sequence: self.engine.last_sequence(), bytes };
        match self.snapshots.jobs.try_send(job) {
            Ok(()) => self.commands_since_snapshot = 0,
            // Housekeeping is gone (shutdown): keep the buffer, the shutdown snapshot covers it.
            Err(e) => self.snapshot_buffer = Some(e.into_inner().bytes),
        }
    }
}

/// The event sink of one command: pushes each event on, holding the latest one back so the
/// command's last event can be flagged `last_of_command`.
struct OutboundSink<'a, P: PushEvent> {
    outbound: &'a mut P,
    counters: &'a mut Counters,
    held: Option<OutboundEvent>,
    sequence: u64,
    timestamp_ns: u64,
    conn: u32,
}

impl<P: PushEvent> OutboundSink<'_, P> {
    fn finish(mut self) {
        if let Some(mut last) = self.held.take() {
            last.last_of_command = true;
            self.outbound.push(last);
        }
    }
}

impl<P: PushEvent> EventSink for OutboundSink<'_, P> {
    #[inline]
    fn emit(&mut self, event: Event) {
        match event {
            Event::Rejected(r) => {
                self.counters.rejects += 1;
                self.counters.rejects_by_reason[r.reason as usize] += 1;
            }
            Event::Executed(_) => self.counters.executions += 1,
            Event::Cancelled(_) => self.counters.cancels += 1,
            _ => {}
        }
        let next = OutboundEvent {
            sequence: self.sequence,
            timestamp_ns: self.timestamp_ns,
            conn: self.conn,
            event,
            last_of_command: false,
        };
        if let Some(previous) = self.held.replace(next) {
            self.outbound.push(previous);
        }
    }
}
