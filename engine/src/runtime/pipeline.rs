//! The pipeline's topology, wired in one place: every thread and every ring between them.
//!
//! ```text
//!  1. gateway thread ─── inbound ring (InboundCommand) ──┐    (engine/src/gateway, port.rs)
//!     control plane ──── admin ring (InboundCommand) ────┤    (Runtime::submit_admin)
//!                                                        ▼
//!  2. sequencer/matcher thread (sequencer.rs): admin first; stamp (stamp.rs), then
//!        ├── journal ring (Stamped) ─────────────────────────────▶ 3.
//!        └── apply, events ── outbound ring (OutboundEvent) ─────▶ 5.
//!        snapshot channel (SnapshotJob, 1 slot) ─▶ 4.; buffer channel (1 slot) ◀─ 4.
//!  3. journal writer thread (journal_writer.rs): group commit, then publishes
//!        durable_sequence ───────────────────────────────────────▶ 4. and 5.
//!  4. housekeeping thread (housekeeping.rs): writes a snapshot once durable_sequence reached
//!        it (snapshot.rs), prunes, applies retention; samples the ring depths
//!  5. gateway thread: releases each event once durable_sequence >= its sequence
//!        (port::DurableOutbound), encodes, records, sends
//! ```
//!
//! Doorbells (port/doorbell.rs) wake a parked consumer after its producer published:
//! `sequencer_bell` (1. → 2.), `journal_bell` (2. → 3.), `gateway_bell` (3. → 5., an eventfd,
//! also rung by 2. when a commit overtook its events). Every ring is bounded
//! ([`super::RingCapacities`]); `Runtime::stop_and_join` stops the threads in the order 2., 3., 4.
//!
//! Run to completion (`runtime.mode = "run-to-completion"`) starts neither 2. nor 3.: their work
//! is one core (`run_to_completion.rs`) that the gateway thread takes from the port and runs
//! between its network polls, on the same rings; `sequencer_bell` is then the gateway's own
//! doorbell (admin commands wake it). Housekeeping (4.) runs as in the pipeline.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam::queue::ArrayQueue;
use petrel_core::Engine;
use petrel_journal::{JournalError, JournalWriter};

use super::apply::{Applier, SnapshotChannels};
use super::error::RuntimeError;
use super::housekeeping::{Housekeeping, SnapshotJob};
use super::journal_writer::JournalThread;
use super::os;
use super::run_to_completion::{HandBack, RunToCompletion};
use super::sequencer::{Sequencer, SequencerWiring};
use super::shared::Shared;
use super::stamp::Stamped;
use crate::config::{Config, DataPath, ThreadConfig};
use crate::port::{GatewayPort, InboundCommand};

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
    /// Run to completion: where the gateway's thread hands the engine and journal back.
    pub core: Option<crossbeam::channel::Receiver<HandBack>>,
}

/// Starts the threads. Each applies its OS settings first and reports the outcome; a thread
/// whose settings fail returns at once, and the caller stops the others.
pub(super) fn spawn(start: Start) -> (Handles, Result<(), RuntimeError>) {
    let Start { config, engine, writer, shared, port, admin, journal_ring_capacity } = start;
    // Capacity 1 each way: one snapshot in flight, its buffer handed back for reuse.
    let (job_tx, job_rx) = crossbeam::channel::bounded::<SnapshotJob>(1);
    let (buffer_tx, buffer_rx) = crossbeam::channel::bounded::<Vec<u8>>(1);
    let snapshots = SnapshotChannels { jobs: job_tx, buffers: buffer_rx };
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), RuntimeError>>();
    let threads = &config.runtime;
    let mut handles = Handles::default();

    // 2. and 3.: threads of their own, or one core for the gateway's thread.
    let (mut result, journal_ring) = match threads.mode {
        DataPath::Pipeline => {
            let journal_ring = Arc::new(ArrayQueue::<Stamped>::new(journal_ring_capacity));
            let wiring = SequencerWiring {
                shared: Arc::clone(&shared),
                port: port.clone(),
                admin,
                journal_ring: Arc::clone(&journal_ring),
                snapshots,
            };
            let result = spawn_pipeline(config, engine, writer, wiring, &ready_tx, &mut handles);
            (result, Some(journal_ring))
        }
        DataPath::RunToCompletion => {
            let (handback_tx, handback_rx) = crossbeam::channel::bounded::<HandBack>(1);
            let applier = Applier::new(config, engine, Arc::clone(&shared), snapshots);
            let core =
                RunToCompletion::new(applier, writer, port.clone(), admin, Arc::clone(&shared), handback_tx);
            port.core.put(Box::new(core));
            handles.core = Some(handback_rx);
            (Ok(()), None)
        }
    };

    // 4. Housekeeping: control plane, pinned if configured, never real-time.
    let housekeeping = Housekeeping::new(config, shared, port, journal_ring, job_rx, buffer_tx);
    let spawned = start_thread(
        "housekeeping",
        &threads.housekeeping,
        None,
        &ready_tx,
        housekeeping,
        Housekeeping::run,
        drop,
    );
    result = result.and(spawned.map(|h| handles.housekeeping = Some(h)));

    // Every spawned thread sends exactly once; the channel closes when all senders are gone.
    drop(ready_tx);
    for prepared in ready_rx.iter() {
        if result.is_ok() {
            result = prepared;
        }
    }
    (handles, result)
}

/// 2. The sequencer/matcher and 3. the journal writer, each on its thread.
fn spawn_pipeline(
    config: &Config,
    engine: petrel_core::Engine,
    writer: JournalWriter,
    wiring: SequencerWiring,
    ready_tx: &mpsc::Sender<Result<(), RuntimeError>>,
    handles: &mut Handles,
) -> Result<(), RuntimeError> {
    let threads = &config.runtime;
    let realtime = threads.realtime_priority;
    let (journal_ring, shared, port) =
        (Arc::clone(&wiring.journal_ring), Arc::clone(&wiring.shared), wiring.port.clone());
    let sequencer = Sequencer::new(config, engine, wiring);
    let spawned = start_thread(
        "sequencer",
        &threads.sequencer,
        realtime,
        ready_tx,
        sequencer,
        Sequencer::run,
        Sequencer::into_engine,
    );
    let result = spawned.map(|h| handles.sequencer = Some(h));
    let journal = JournalThread::new(writer, journal_ring, shared, port, threads.journal.idle);
    let spawned = start_thread(
        "journal",
        &threads.journal,
        realtime,
        ready_tx,
        journal,
        JournalThread::run,
        JournalThread::into_writer,
    );
    result.and(spawned.map(|h| handles.journal = Some(h)))
}

/// Spawns `petrel-{thread}`, which applies its OS settings, reports them on `ready`, then
/// runs `run(state)`, or hands its state back through `unstarted` when its settings failed.
fn start_thread<S: Send + 'static, T: Send + 'static>(
    thread: &'static str,
    settings: &ThreadConfig,
    realtime: Option<u8>,
    ready: &mpsc::Sender<Result<(), RuntimeError>>,
    state: S,
    run: fn(S) -> T,
    unstarted: fn(S) -> T,
) -> Result<JoinHandle<T>, RuntimeError> {
    let settings = settings.clone();
    let ready = ready.clone();
    std::thread::Builder::new()
        .name(format!("petrel-{thread}"))
        .spawn(move || {
            let prepared = os::prepare_current_thread(thread, &settings, realtime);
            let ok = prepared.is_ok();
            let _ = ready.send(prepared);
            // Closes this thread's side: `spawn` waits until every thread has reported.
            drop(ready);
            if ok {
                run(state)
            } else {
                unstarted(state)
            }
        })
        .map_err(|source| RuntimeError::Spawn { thread, source })
}
