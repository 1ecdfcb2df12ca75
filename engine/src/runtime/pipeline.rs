//! The three pipeline threads: sequencer (stamp, journal push, match), journal writer (group
//! commit, durable mark) and housekeeping (snapshot files, gauges).

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use petrel_core::codec::{self, MAX_COMMAND_BYTES};
use petrel_core::{Engine, Event, EventSink, RejectReason};
use petrel_journal::{AppendError, JournalConfig, JournalError, JournalWriter};

use super::stats::{new_histogram, Ring};
use super::{
    os, Doorbell, GatewayPort, IdleStrategy, Idler, InboundCommand, OutboundEvent, RuntimeError, Shared,
};
use crate::config::{Config, SnapshotConfig, ThreadConfig};
use crate::sequencer::{Clock, SystemClock};

/// Most commands the sequencer takes per loop before it publishes its counters and looks at
/// snapshots: bounds how stale the stats get under sustained load.
const SEQUENCER_BATCH_COMMANDS: u32 = 256;
/// Most records the journal thread takes from its ring per group commit (beyond that, the
/// write buffer's size bounds a commit anyway).
const JOURNAL_BATCH_RECORDS: u32 = 65_536;
/// How long the sequencer waits for a gateway that stopped draining the outbound ring once
/// shutdown has begun, before dropping (and counting) events so that shutdown completes.
const SHUTDOWN_OUTBOUND_WAIT: Duration = Duration::from_secs(2);

const SEQUENCER: usize = 0;
const JOURNAL: usize = 1;
const HOUSEKEEPING: usize = 2;

/// One command on its way to the journal: fixed size, copied by value, never allocated.
#[derive(Clone, Copy)]
struct JournalSlot {
    sequence: u64,
    timestamp_ns: u64,
    len: u8,
    bytes: [u8; MAX_COMMAND_BYTES],
}
const _: () = assert!(MAX_COMMAND_BYTES <= u8::MAX as usize);

/// A snapshot encoded by the sequencer, waiting for the journal to reach `sequence`.
struct SnapshotJob {
    sequence: u64,
    bytes: Vec<u8>,
}

pub(super) struct Start<'a> {
    pub config: &'a Config,
    pub engine: Engine,
    pub writer: JournalWriter,
    pub shared: Arc<Shared>,
    pub port: GatewayPort,
    pub admin: Arc<ArrayQueue<InboundCommand>>,
    pub journal_ring_capacity: usize,
}

#[derive(Default)]
pub(super) struct Handles {
    pub sequencer: Option<JoinHandle<Engine>>,
    pub journal: Option<JoinHandle<Result<JournalWriter, JournalError>>>,
    pub housekeeping: Option<JoinHandle<()>>,
}

/// Starts the threads. Each applies its OS settings first and reports the outcome; a thread
/// whose settings fail returns at once, and the caller stops the others.
pub(super) fn spawn(start: Start) -> (Handles, Result<(), RuntimeError>) {
    let Start { config, engine, writer, shared, port, admin, journal_ring_capacity } = start;
    let journal_ring = Arc::new(ArrayQueue::<JournalSlot>::new(journal_ring_capacity));
    // Capacity 1 each way: one snapshot in flight, its buffer handed back for reuse.
    let (job_tx, job_rx) = crossbeam::channel::bounded::<SnapshotJob>(1);
    let (buffer_tx, buffer_rx) = crossbeam::channel::bounded::<Vec<u8>>(1);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), RuntimeError>>();
    let realtime = config.runtime.realtime_priority;
    let mut handles = Handles::default();

    let sequencer = Sequencer {
        last_timestamp_ns: engine.last_timestamp_ns(),
        next_sequence: engine.last_sequence() + 1,
        commands_since_snapshot: 0,
        engine,
        clock: SystemClock,
        shared: Arc::clone(&shared),
        port: port.clone(),
        admin,
        journal_ring: Arc::clone(&journal_ring),
        idle: config.runtime.sequencer.idle,
        counters: Counters::default(),
        service_ns: new_histogram(),
        snapshot_every: config.snapshots.every_commands,
        snapshot_buffer: Some(Vec::new()),
        job_tx,
        buffer_rx,
    };
    let thread_config = config.runtime.sequencer.clone();
    let ready = ready_tx.clone();
    let spawned = std::thread::Builder::new().name("petrel-sequencer".into()).spawn(move || {
        let prepared = os::prepare_current_thread("sequencer", &thread_config, realtime);
        let ok = prepared.is_ok();
        let _ = ready.send(prepared);
        // Closes this thread's side: `spawn` waits until every thread has reported.
        drop(ready);
        if ok {
            sequencer.run()
        } else {
            sequencer.engine
        }
    });
    let mut result = record_spawn(&mut handles.sequencer, spawned, "sequencer");

    let journal = JournalThread {
        writer,
        ring: Arc::clone(&journal_ring),
        shared: Arc::clone(&shared),
        port: port.clone(),
        idle: config.runtime.journal.idle,
        commit_ns: new_histogram(),
    };
    let thread_config = config.runtime.journal.clone();
    let ready = ready_tx.clone();
    let spawned = std::thread::Builder::new().name("petrel-journal".into()).spawn(move || {
        let prepared = os::prepare_current_thread("journal", &thread_config, realtime);
        let ok = prepared.is_ok();
        let _ = ready.send(prepared);
        // Closes this thread's side: `spawn` waits until every thread has reported.
        drop(ready);
        if ok {
            journal.run()
        } else {
            Ok(journal.writer)
        }
    });
    result = result.and(record_spawn(&mut handles.journal, spawned, "journal"));

    let housekeeping = Housekeeping {
        shared,
        port,
        journal_ring,
        thread: config.runtime.housekeeping.clone(),
        snapshots: config.snapshots.clone(),
        journal_config: config.journal.clone(),
        job_rx,
        buffer_tx,
    };
    let ready = ready_tx;
    let spawned = std::thread::Builder::new().name("petrel-housekeeping".into()).spawn(move || {
        // Housekeeping is control plane: pinned if configured, never real-time.
        let prepared = os::prepare_current_thread("housekeeping", &housekeeping.thread, None);
        let ok = prepared.is_ok();
        let _ = ready.send(prepared);
        // Closes this thread's side: `spawn` waits until every thread has reported.
        drop(ready);
        if ok {
            housekeeping.run();
        }
    });
    result = result.and(record_spawn(&mut handles.housekeeping, spawned, "housekeeping"));

    // Every spawned thread sends exactly once; the channel closes when all senders are gone.
    for prepared in ready_rx.iter() {
        if result.is_ok() {
            result = prepared;
        }
    }
    (handles, result)
}

fn record_spawn<T>(
    slot: &mut Option<JoinHandle<T>>,
    spawned: std::io::Result<JoinHandle<T>>,
    thread: &'static str,
) -> Result<(), RuntimeError> {
    match spawned {
        Ok(handle) => {
            *slot = Some(handle);
            Ok(())
        }
        Err(source) => Err(RuntimeError::Spawn { thread, source }),
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

// ---- sequencer ---------------------------------------------------------------------------

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

struct Sequencer {
    engine: Engine,
    clock: SystemClock,
    last_timestamp_ns: u64,
    next_sequence: u64,
    shared: Arc<Shared>,
    port: GatewayPort,
    admin: Arc<ArrayQueue<InboundCommand>>,
    journal_ring: Arc<ArrayQueue<JournalSlot>>,
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
    fn run(mut self) -> Engine {
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
        // Never decreasing: a clock stepped back by NTP repeats the last timestamp.
        let timestamp_ns = self.clock.now_ns().max(self.last_timestamp_ns);
        self.last_timestamp_ns = timestamp_ns;
        let sequence = self.next_sequence;
        let mut slot = JournalSlot { sequence, timestamp_ns, len: 0, bytes: [0; MAX_COMMAND_BYTES] };
        slot.len = codec::encode(&inbound.command, &mut slot.bytes) as u8;
        // Journal first: the engine never holds a command the journal will not get.
        let shared = &*self.shared;
        let bell = &shared.journal_bell;
        if push_waiting(&self.journal_ring, slot, Ring::Journal, shared, self.idle, bell, || shared.failed())
            .is_err()
        {
            return false;
        }
        // Per command, not per batch: the journal starts its next commit as early as it can.
        // While it is awake this is one fence and one load.
        bell.ring();
        self.next_sequence += 1;
        let mut sink = OutboundSink {
            ring: &self.port.outbound,
            consumer: &self.port.gateway_bell,
            shared,
            idle: self.idle,
            counters: &mut self.counters,
            held: None,
            sequence,
            timestamp_ns,
            conn: inbound.conn,
        };
        self.engine.apply(&inbound.command, sequence, timestamp_ns, &mut sink);
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
        stats.last_sequence.store(self.next_sequence - 1, Ordering::Relaxed);
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

// ---- journal writer ----------------------------------------------------------------------

struct JournalThread {
    writer: JournalWriter,
    ring: Arc<ArrayQueue<JournalSlot>>,
    shared: Arc<Shared>,
    port: GatewayPort,
    idle: IdleStrategy,
    commit_ns: Histogram<u64>,
}

impl JournalThread {
    fn run(mut self) -> Result<JournalWriter, JournalError> {
        let mut idler = Idler::new(self.idle);
        let shared = Arc::clone(&self.shared);
        let beat = &shared.beats[JOURNAL];
        loop {
            // Loaded before draining: every push the sequencer made happened before it set this.
            let sequencer_done = shared.sequencer_done.load(Ordering::Acquire);
            let mut records = 0u32;
            while records < JOURNAL_BATCH_RECORDS {
                let Some(slot) = self.ring.pop() else { break };
                if let Err(e) = self.append(&slot) {
                    return Err(self.fail(e));
                }
                records += 1;
            }
            if self.writer.buffered_records() > 0 {
                if let Err(e) = self.commit() {
                    return Err(self.fail(e));
                }
            } else if sequencer_done {
                break;
            }
            beat.beat(records == 0);
            let (ring, shared) = (&self.ring, &self.shared);
            idler.idle_or_sleep(records > 0, &shared.journal_bell, || {
                !ring.is_empty() || shared.sequencer_done.load(Ordering::Acquire)
            });
        }
        Ok(self.writer)
    }

    #[inline]
    fn append(&mut self, slot: &JournalSlot) -> Result<(), JournalError> {
        let payload = &slot.bytes[..slot.len as usize];
        match self.writer.append(slot.sequence, slot.timestamp_ns, payload) {
            Ok(()) => Ok(()),
            Err(AppendError::BufferFull { .. }) => {
                self.commit()?;
                self.writer
                    .append(slot.sequence, slot.timestamp_ns, payload)
                    .expect("an empty write buffer holds one command (checked by the configuration)");
                Ok(())
            }
            Err(e @ AppendError::PayloadTooLarge { .. }) => {
                panic!("journal.max_record_payload_bytes is validated to hold any command: {e}")
            }
        }
    }

    /// One group commit; publishes the new durable mark (Release: the gateway that sees it
    /// may release every event up to it).
    fn commit(&mut self) -> Result<(), JournalError> {
        let started = Instant::now();
        let committed = self.writer.commit()?;
        self.commit_ns.saturating_record(started.elapsed().as_nanos() as u64);
        self.port.durable_sequence.store(committed.durable_sequence, Ordering::Release);
        self.port.gateway_bell.ring();
        let stats = &self.shared.stats;
        stats.durable_sequence.store(committed.durable_sequence, Ordering::Relaxed);
        stats.journal_bytes_total.fetch_add(committed.bytes_written, Ordering::Relaxed);
        stats.journal_batches_total.fetch_add(1, Ordering::Relaxed);
        stats.journal_batch_records.store(committed.records, Ordering::Relaxed);
        if let Ok(mut shared) = stats.journal_commit_ns.try_lock() {
            shared.add(&self.commit_ns).expect("histograms share their bounds");
            self.commit_ns.reset();
        }
        Ok(())
    }

    fn fail(&self, error: JournalError) -> JournalError {
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

// ---- housekeeping ------------------------------------------------------------------------

struct Housekeeping {
    shared: Arc<Shared>,
    port: GatewayPort,
    journal_ring: Arc<ArrayQueue<JournalSlot>>,
    thread: ThreadConfig,
    snapshots: SnapshotConfig,
    journal_config: JournalConfig,
    job_rx: Receiver<SnapshotJob>,
    buffer_tx: Sender<Vec<u8>>,
}

impl Housekeeping {
    fn run(self) {
        let mut idler = Idler::new(self.thread.idle);
        let beat = &self.shared.beats[HOUSEKEEPING];
        let mut pending: Option<SnapshotJob> = None;
        loop {
            let journal_done = self.shared.journal_done.load(Ordering::Acquire);
            let stats = &self.shared.stats;
            stats.inbound_depth.store(self.port.inbound.len() as u64, Ordering::Relaxed);
            stats.outbound_depth.store(self.port.outbound.len() as u64, Ordering::Relaxed);
            stats.journal_ring_depth.store(self.journal_ring.len() as u64, Ordering::Relaxed);
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
        let written = petrel_journal::write_snapshot(&self.snapshots.dir, job.sequence, &job.bytes)
            .and_then(|path| {
                petrel_journal::prune_snapshots(&self.snapshots.dir, self.snapshots.keep as usize)?;
                Ok(path)
            })
            .map_err(|e| e.to_string())
            .and_then(|path| {
                petrel_journal::apply_retention(&self.journal_config, job.sequence)
                    .map_err(|e| e.to_string())?;
                Ok(path)
            });
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
