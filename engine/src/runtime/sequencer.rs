//! The sequencer/matcher thread: takes commands off the admin and inbound rings (admin first),
//! stamps each and pushes it to the journal ring before applying it ([`Stamper::sequence`]),
//! and pushes the command's events to the outbound ring. At command boundaries it encodes the
//! snapshots housekeeping writes. The one data-plane thread that reads a clock.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use petrel_core::{Engine, Event, EventSink, RejectReason};

use super::housekeeping::SnapshotJob;
use super::idle::{IdleStrategy, Idler};
use super::progress::SEQUENCER;
use super::shared::Shared;
use super::stamp::{Stamped, Stamper};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::port::{new_histogram, Doorbell, GatewayPort, InboundCommand, OutboundEvent, Ring};

/// Most commands the sequencer takes per loop before it publishes its counters and looks at
/// snapshots: bounds how stale the stats get under sustained load.
const SEQUENCER_BATCH_COMMANDS: u32 = 256;
/// How long the sequencer waits for a gateway that stopped draining the outbound ring once
/// shutdown has begun, before dropping (and counting) events so that shutdown completes.
const SHUTDOWN_OUTBOUND_WAIT: Duration = Duration::from_secs(2);

/// Counts kept by the sequencer between publications (one store per batch instead of one
/// shared read-modify-write per event).
#[derive(Default)]
struct Counters {
    commands: u64,
    rejects: u64,
    rejects_by_reason: [u64; RejectReason::ALL.len()],
    executions: u64,
    cancels: u64,
}

/// The rings and channels the sequencer thread is wired to (see `pipeline.rs`).
pub(super) struct SequencerWiring {
    pub shared: Arc<Shared>,
    pub port: GatewayPort,
    pub admin: Arc<ArrayQueue<InboundCommand>>,
    pub journal_ring: Arc<ArrayQueue<Stamped>>,
    pub snapshot_jobs: Sender<SnapshotJob>,
    pub snapshot_buffers: Receiver<Vec<u8>>,
}

pub(super) struct Sequencer {
    engine: Engine,
    stamper: Stamper<SystemClock>,
    shared: Arc<Shared>,
    port: GatewayPort,
    admin: Arc<ArrayQueue<InboundCommand>>,
    journal_ring: Arc<ArrayQueue<Stamped>>,
    idle: IdleStrategy,
    counters: Counters,
    service_ns: Histogram<u64>,
    snapshot_every: u64,
    commands_since_snapshot: u64,
    /// The reusable snapshot buffer; `None` while housekeeping holds it.
    snapshot_buffer: Option<Vec<u8>>,
    job_tx: Sender<SnapshotJob>,
    buffer_rx: Receiver<Vec<u8>>,
}

impl Sequencer {
    pub(super) fn new(config: &Config, engine: Engine, wiring: SequencerWiring) -> Sequencer {
        let SequencerWiring { shared, port, admin, journal_ring, snapshot_jobs, snapshot_buffers } = wiring;
        Sequencer {
            stamper: Stamper::continuing(&engine, SystemClock),
            engine,
            shared,
            port,
            admin,
            journal_ring,
            idle: config.runtime.sequencer.idle,
            counters: Counters::default(),
            service_ns: new_histogram(),
            snapshot_every: config.snapshots.every_commands,
            commands_since_snapshot: 0,
            snapshot_buffer: Some(Vec::new()),
            job_tx: snapshot_jobs,
            buffer_rx: snapshot_buffers,
        }
    }

    /// The engine, for a thread that never ran (its OS settings failed).
    pub(super) fn into_engine(self) -> Engine {
        self.engine
    }

    pub(super) fn run(mut self) -> Engine {
        let mut idler = Idler::new(self.idle);
        let beat = &Arc::clone(&self.shared).beats[SEQUENCER];
        'run: loop {
            // After a journal failure nothing can become durable: taking more commands would
            // only match orders that can never be acknowledged.
            if self.shared.failed() {
                break;
            }
            // Loaded before polling: everything pushed before shutdown began is seen below.
            let stopping = self.shared.stop.load(Ordering::Acquire);
            let mut done = 0u32;
            while done < SEQUENCER_BATCH_COMMANDS {
                let Some(command) = self.admin.pop().or_else(|| self.port.inbound.pop()) else { break };
                if !self.process(command) {
                    break 'run;
                }
                done += 1;
            }
            if done > 0 {
                self.publish();
            }
            self.maybe_snapshot();
            if done == 0 && stopping {
                break;
            }
            beat.beat(done == 0);
            let (admin, inbound, shared) = (&self.admin, &self.port.inbound, &self.shared);
            idler.idle_or_sleep(done > 0, &self.port.sequencer_bell, || {
                !admin.is_empty() || !inbound.is_empty() || shared.stop.load(Ordering::Acquire)
            });
        }
        self.publish();
        self.engine
    }

    /// Stamps, journals and applies one command. `false`: the journal failed meanwhile.
    #[inline]
    fn process(&mut self, inbound: InboundCommand) -> bool {
        let started = Instant::now();
        let shared = &*self.shared;
        let (journal_ring, idle, port) = (&*self.journal_ring, self.idle, &self.port);
        let bell = &shared.journal_bell;
        let journal = |stamped: &Stamped| {
            push_waiting(journal_ring, *stamped, Ring::Journal, shared, idle, bell, || shared.failed())
                .map_err(drop)?;
            // Per command, not per batch: the journal starts its next commit as early as it
            // can. While it is awake this is one fence and one load.
            bell.ring();
            Ok::<(), ()>(())
        };
        // The sink is built from the stamped command, so its events carry the command's sequence.
        let sequenced =
            self.stamper.sequence(&inbound.command, &mut self.engine, journal, |stamped| OutboundSink {
                ring: &port.outbound,
                consumer: &port.gateway_bell,
                shared,
                idle,
                counters: &mut self.counters,
                held: None,
                sequence: stamped.sequence,
                timestamp_ns: stamped.timestamp_ns,
                conn: inbound.conn,
            });
        let Ok((sequence, sink)) = sequenced else {
            return false;
        };
        sink.finish();
        // The journal may have committed this command before its events reached the ring, and
        // its doorbell then found nothing to release: ring for it. (The fence orders the pushes
        // above before the load, against the journal's store of the mark before its ring.)
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.port.durable_sequence.load(Ordering::Relaxed) >= sequence {
            self.port.gateway_bell.ring();
        }
        self.counters.commands += 1;
        self.commands_since_snapshot += 1;
        self.service_ns.saturating_record(started.elapsed().as_nanos() as u64);
        true
    }

    fn publish(&mut self) {
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
        // Never wait for a reader: merge next time instead.
        if let Ok(mut shared) = stats.matcher_service_ns.try_lock() {
            shared.add(&self.service_ns).expect("histograms share their bounds");
            self.service_ns.reset();
        }
    }

    /// At a command boundary, when due and no snapshot is in flight: encodes the state into the
    /// reused buffer and hands it to housekeeping, which writes it once it is durable.
    fn maybe_snapshot(&mut self) {
        if let Ok(buffer) = self.buffer_rx.try_recv() {
            self.snapshot_buffer = Some(buffer);
        }
        if self.commands_since_snapshot < self.snapshot_every {
            return;
        }
        let Some(mut bytes) = self.snapshot_buffer.take() else { return };
        bytes.clear();
        self.engine.encode_state(&mut bytes);
        let job = SnapshotJob { sequence: self.engine.last_sequence(), bytes };
        match self.job_tx.try_send(job) {
            Ok(()) => self.commands_since_snapshot = 0,
            // Housekeeping is gone (shutdown): keep the buffer, the shutdown snapshot covers it.
            Err(e) => self.snapshot_buffer = Some(e.into_inner().bytes),
        }
    }
}

/// Pushes into a bounded ring, waiting (per the thread's idle strategy) while it is full and
/// counting each wait once. Gives the value back if `abandon` says waiting is pointless.
#[inline]
fn push_waiting<T>(
    ring: &ArrayQueue<T>,
    value: T,
    which: Ring,
    shared: &Shared,
    idle: IdleStrategy,
    consumer: &Doorbell,
    mut abandon: impl FnMut() -> bool,
) -> Result<(), T> {
    let Err(mut value) = ring.push(value) else { return Ok(()) };
    shared.stats.count_ring_full(which);
    // A full ring with its consumer asleep would otherwise wait out the consumer's back-off.
    consumer.ring();
    let mut idler = Idler::new(idle);
    loop {
        if abandon() {
            return Err(value);
        }
        idler.idle(false);
        match ring.push(value) {
            Ok(()) => return Ok(()),
            Err(v) => value = v,
        }
    }
}

/// The sequencer's event sink: pushes each event to the outbound ring, holding the latest one
/// back so the command's last event can be flagged `last_of_command`.
struct OutboundSink<'a> {
    ring: &'a ArrayQueue<OutboundEvent>,
    consumer: &'a Doorbell,
    shared: &'a Shared,
    idle: IdleStrategy,
    counters: &'a mut Counters,
    held: Option<OutboundEvent>,
    sequence: u64,
    timestamp_ns: u64,
    conn: u32,
}

impl OutboundSink<'_> {
    fn push(&mut self, event: OutboundEvent) {
        let shared = self.shared;
        let mut deadline: Option<Instant> = None;
        let abandon = || {
            if shared.failed() {
                return true;
            }
            if !shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + SHUTDOWN_OUTBOUND_WAIT);
            Instant::now() >= deadline
        };
        if push_waiting(self.ring, event, Ring::Outbound, shared, self.idle, self.consumer, abandon).is_err()
        {
            shared.stats.outbound_dropped_at_shutdown.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn finish(mut self) {
        if let Some(mut last) = self.held.take() {
            last.last_of_command = true;
            self.push(last);
        }
    }
}

impl EventSink for OutboundSink<'_> {
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
            self.push(previous);
        }
    }
}
