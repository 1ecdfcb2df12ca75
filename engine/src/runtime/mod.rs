//! The engine runtime: the pinned pipeline of threads joined by bounded rings (LMAX shape).
//! `pipeline.rs` wires it in one place (every thread and ring, stages numbered); one file per
//! thread, each owning its state:
//! - `sequencer.rs`: the sequencer/matcher thread and its outbound sink;
//! - `journal_writer.rs`: the journal writer thread (group commit, durable watermark);
//! - `housekeeping.rs`: the housekeeping thread (snapshot files, retention, ring gauges).
//!
//! Beside them: `stamp.rs`, the sequencing rule (sequence, timestamp, journal before apply),
//! also run by `reference.rs`, the single-threaded sequencer tests use to write journals;
//! `shared.rs` (the flags and counters the threads share), `idle.rs` (idle strategies), `os.rs`
//! (pinning, SCHED_FIFO, mlockall), `progress.rs` (heartbeats for the watchdog), `error.rs`.
//! This file: [`Runtime`] (start, admin commands, progress, shutdown) and ring capacities.
//! What crosses to the gateway is in `crate::port`.
//!
//! Invariants:
//! - The sequencer thread is the one place a command gets its sequence and timestamp (the only
//!   clock read on the data plane); sequences continue the recovered journal without a gap.
//! - A command is pushed to the journal ring before the engine applies it, so the journal never
//!   misses a command whose events exist. Its events are released by the gateway only once the
//!   journal writer has published a `durable_sequence` at or past it ([`DurableOutbound`]).
//! - Every ring is bounded ([`RingCapacities`]). A full journal or outbound ring makes the
//!   sequencer wait (and counts it); a full inbound ring refuses the gateway's push, so the
//!   gateway stops reading its sockets (and counts it). Nothing grows.
//! - A snapshot is encoded by the sequencer at a command boundary and written by housekeeping
//!   only once the journal is durable up to its sequence: never ahead of the journal.
//! - After a journal failure nothing more becomes durable: the sequencer stops taking
//!   commands and [`Runtime::progress`] reports the failure; only a restart recovers.
//! - No allocation per command on the data plane (tests/pipeline_no_alloc.rs).

mod apply;
mod error;
mod housekeeping;
mod idle;
mod journal_writer;
pub mod os;
mod pipeline;
mod progress;
pub mod reference;
mod run_to_completion;
mod sequencer;
mod shared;
mod stamp;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam::queue::ArrayQueue;
use petrel_core::{Command, Engine, StateHash};
use petrel_journal::{JournalError, JournalWriter};

use crate::config::{Config, DataPath};
use crate::port::{Doorbell, Ring, RuntimeStats};
use crate::recovery::Recovered;
use crate::snapshot::SnapshotWriteError;
use shared::Shared;

pub use error::{Full, RuntimeError};
pub use idle::{IdleStrategy, Idler};
pub use progress::{ProgressSnapshot, ThreadProgress, THREADS};

use crate::port::{GatewayPort, InboundCommand, ReleaseGate, ADMIN_CONN};

/// Largest ring capacity accepted, slots: bounds the memory a misconfigured ring could take.
pub const MAX_RING_CAPACITY: usize = 1 << 22;

/// Slots of each ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingCapacities {
    pub inbound: usize,
    pub admin: usize,
    /// Should hold a whole group commit's worth of commands, so the sequencer keeps matching
    /// while the journal thread is in `fdatasync`.
    pub journal: usize,
    /// Events, not commands: an execution makes several.
    pub outbound: usize,
}

impl Default for RingCapacities {
    fn default() -> RingCapacities {
        RingCapacities { inbound: 16_384, admin: 64, journal: 65_536, outbound: 65_536 }
    }
}

impl RingCapacities {
    fn validate(&self) -> Result<(), RuntimeError> {
        let rings = [
            (Ring::Inbound, self.inbound),
            (Ring::Admin, self.admin),
            (Ring::Journal, self.journal),
            (Ring::Outbound, self.outbound),
        ];
        match rings.into_iter().find(|(_, c)| *c == 0 || *c > MAX_RING_CAPACITY) {
            Some((ring, capacity)) => {
                Err(RuntimeError::RingCapacity { ring: ring.as_str(), capacity, max: MAX_RING_CAPACITY })
            }
            None => Ok(()),
        }
    }
}

/// What [`Runtime::shutdown`] did.
#[derive(Debug)]
pub struct ShutdownReport {
    /// Commands sequenced since start.
    pub commands: u64,
    pub last_sequence: u64,
    pub durable_sequence: u64,
    /// The engine's state after the last command (equals that of a recovery from the journal).
    pub state_hash: StateHash,
    /// The snapshot written at shutdown, if asked for and anything changed since the last one.
    pub snapshot: Option<PathBuf>,
    /// Commands still in the inbound ring when the sequencer stopped (pushed after shutdown
    /// began; never sequenced, so never acknowledged).
    pub unprocessed_inbound: usize,
    /// Events dropped because the gateway stopped draining the outbound ring during shutdown.
    pub outbound_dropped: u64,
}

/// Owns the sequencer, journal and housekeeping threads.
#[derive(Debug)]
pub struct Runtime {
    shared: Arc<Shared>,
    port: GatewayPort,
    admin: Arc<ArrayQueue<InboundCommand>>,
    sequencer: Option<JoinHandle<Engine>>,
    journal: Option<JoinHandle<Result<JournalWriter, JournalError>>>,
    housekeeping: Option<JoinHandle<()>>,
    /// Run to completion: where the gateway's thread hands the engine and journal back.
    core: Option<crossbeam::channel::Receiver<run_to_completion::HandBack>>,
    snapshots: crate::config::SnapshotConfig,
    journal_config: petrel_journal::JournalConfig,
}

impl Runtime {
    /// Starts the pipeline on a recovered engine with the default ring capacities.
    pub fn start(config: &Config, recovered: Recovered) -> Result<(Runtime, GatewayPort), RuntimeError> {
        Runtime::start_with(config, recovered, RingCapacities::default())
    }

    /// Starts the pipeline: locks memory if configured, checks the cores, starts the threads
    /// (each pins itself and takes its priority before reporting ready). Returns once every
    /// thread is running, or the first thread's error after stopping the others.
    pub fn start_with(
        config: &Config,
        recovered: Recovered,
        rings: RingCapacities,
    ) -> Result<(Runtime, GatewayPort), RuntimeError> {
        rings.validate()?;
        os::check_cores(config)?;
        if config.runtime.mlockall {
            os::lock_memory()?;
        }
        let Recovered { engine, writer, report } = recovered;
        assert_eq!(
            writer.next_sequence(),
            engine.last_sequence() + 1,
            "the engine holds exactly the journal"
        );
        assert_eq!(writer.buffered_records(), 0, "a recovered writer has nothing buffered");

        let stats = Arc::new(RuntimeStats::new());
        stats.replay_records_done.store(report.replayed_records, Ordering::Relaxed);
        stats.replay_records_total.store(report.replayed_records, Ordering::Relaxed);
        stats.last_sequence.store(engine.last_sequence(), Ordering::Relaxed);
        stats.durable_sequence.store(writer.durable_sequence(), Ordering::Relaxed);
        stats.last_snapshot_sequence.store(report.snapshot.as_ref().map_or(0, |s| s.0), Ordering::Relaxed);
        let shared = Arc::new(Shared {
            stats: Arc::clone(&stats),
            stop: AtomicBool::new(false),
            sequencer_done: AtomicBool::new(false),
            journal_done: AtomicBool::new(false),
            failure: Mutex::new(None),
            beats: Default::default(),
            journal_bell: Doorbell::for_thread(),
            journal_fail_at: journal_writer::journal_fail_at()?,
        });
        let gateway_bell = Arc::new(Doorbell::eventfd().map_err(RuntimeError::Doorbell)?);
        let sequencer_bell = match config.runtime.mode {
            DataPath::Pipeline => Arc::new(Doorbell::for_thread()),
            // The gateway's thread sequences: what would wake a sequencer wakes it.
            DataPath::RunToCompletion => Arc::clone(&gateway_bell),
        };
        let port = GatewayPort {
            inbound: Arc::new(ArrayQueue::new(rings.inbound)),
            outbound: Arc::new(ArrayQueue::new(rings.outbound)),
            durable_sequence: Arc::new(AtomicU64::new(writer.durable_sequence())),
            stats,
            sequencer_bell,
            gateway_bell,
            core: Default::default(),
            gate: Arc::new(ReleaseGate {
                local: AtomicU64::new(writer.durable_sequence()),
                written: AtomicU64::new(writer.durable_sequence()),
                ..ReleaseGate::default()
            }),
        };
        let admin = Arc::new(ArrayQueue::new(rings.admin));
        let mut runtime = Runtime {
            shared: Arc::clone(&shared),
            port: port.clone(),
            admin: Arc::clone(&admin),
            sequencer: None,
            journal: None,
            housekeeping: None,
            core: None,
            snapshots: config.snapshots.clone(),
            journal_config: config.journal.clone(),
        };
        let threads = pipeline::spawn(pipeline::Start {
            config,
            engine,
            writer,
            shared,
            port: port.clone(),
            admin,
            journal_ring_capacity: rings.journal,
        });
        let (handles, result) = threads;
        runtime.sequencer = handles.sequencer;
        runtime.journal = handles.journal;
        runtime.housekeeping = handles.housekeeping;
        runtime.core = handles.core;
        match result {
            Ok(()) => Ok((runtime, port)),
            // Dropping the runtime stops and joins whatever did start.
            Err(e) => Err(e),
        }
    }

    pub fn stats(&self) -> Arc<RuntimeStats> {
        Arc::clone(&self.port.stats)
    }

    /// Per-thread heartbeats and idle flags, and the failure that stopped the pipeline if any.
    pub fn progress(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            threads: std::array::from_fn(|i| self.shared.beats[i].read()),
            failure: self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Queues a control-plane command (kill switch, risk limits); it is sequenced and journaled
    /// like any other, ahead of waiting gateway commands. Its events carry [`ADMIN_CONN`].
    pub fn submit_admin(&self, command: Command) -> Result<(), Full> {
        self.admin.push(InboundCommand::new(ADMIN_CONN, command)).map_err(|_| {
            self.port.stats.count_ring_full(Ring::Admin);
            Full { capacity: self.admin.capacity() }
        })?;
        self.port.sequencer_bell.ring();
        Ok(())
    }

    /// Stops intake, lets the sequencer finish what is queued, makes everything durable (final
    /// commit), waits for a snapshot in progress, writes a final snapshot when `snapshot` is set
    /// and the state moved since the last one, and joins the threads. The gateway should stop
    /// pushing first and keep draining the outbound ring until this returns.
    pub fn shutdown(mut self, snapshot: bool) -> Result<ShutdownReport, RuntimeError> {
        let (engine, writer) = self.stop_and_join();
        let engine = engine?;
        let writer = writer?;
        let stats = &self.port.stats;
        let mut report = ShutdownReport {
            commands: stats.commands_total.load(Ordering::Relaxed),
            last_sequence: engine.last_sequence(),
            durable_sequence: writer.durable_sequence(),
            state_hash: engine.state_hash(),
            snapshot: None,
            unprocessed_inbound: self.port.inbound.len(),
            outbound_dropped: stats.outbound_dropped_at_shutdown.load(Ordering::Relaxed),
        };
        assert_eq!(report.durable_sequence, report.last_sequence, "the final commit covers every command");
        let last_snapshot = stats.last_snapshot_sequence.load(Ordering::Relaxed);
        if snapshot && engine.last_sequence() > last_snapshot {
            let path = crate::snapshot::write_snapshot(&engine, &self.snapshots, &self.journal_config)
                .map_err(|e| match e {
                    SnapshotWriteError::Snapshot(e) => RuntimeError::Snapshot(e),
                    SnapshotWriteError::Retention(e) => RuntimeError::Retention(e),
                })?;
            stats.last_snapshot_sequence.store(engine.last_sequence(), Ordering::Relaxed);
            stats.snapshots_written_total.fetch_add(1, Ordering::Relaxed);
            tracing::info!(path = %path.display(), sequence = engine.last_sequence(), "wrote shutdown snapshot");
            report.snapshot = Some(path);
        }
        drop(writer); // releases the journal lock
        Ok(report)
    }

    /// Signals every stage in order and joins it. Idempotent (also run by `Drop`).
    fn stop_and_join(&mut self) -> (Result<Engine, RuntimeError>, Result<JournalWriter, RuntimeError>) {
        self.shared.stop.store(true, Ordering::Release);
        self.port.sequencer_bell.wake();
        let (engine, writer) = match self.core.take() {
            Some(handback) => self.collect_core(&handback),
            None => self.join_pipeline(),
        };
        self.shared.journal_done.store(true, Ordering::Release);
        let housekeeping = join(self.housekeeping.take(), "housekeeping");
        let engine = engine.and_then(|e| housekeeping.map(|()| e));
        (engine, writer)
    }

    fn join_pipeline(&mut self) -> (Result<Engine, RuntimeError>, Result<JournalWriter, RuntimeError>) {
        let engine = join(self.sequencer.take(), "sequencer");
        self.shared.sequencer_done.store(true, Ordering::Release);
        self.shared.journal_bell.wake();
        let writer = match join(self.journal.take(), "journal") {
            Ok(Ok(writer)) => Ok(writer),
            Ok(Err(source)) => Err(self.journal_error(source)),
            Err(e) => Err(e),
        };
        (engine, writer)
    }

    /// Run to completion: the gateway's thread sees the stop flag at its next step, sequences
    /// what is queued, commits and hands the engine and journal back. A core no gateway took
    /// (it failed to start) is finished here.
    fn collect_core(
        &mut self,
        handback: &crossbeam::channel::Receiver<run_to_completion::HandBack>,
    ) -> (Result<Engine, RuntimeError>, Result<JournalWriter, RuntimeError>) {
        drop(self.port.core.take());
        let gone = || {
            (
                Err(RuntimeError::Panicked { thread: "gateway" }),
                Err(RuntimeError::Panicked { thread: "gateway" }),
            )
        };
        loop {
            match handback.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(back) => {
                    self.shared.sequencer_done.store(true, Ordering::Release);
                    let writer = back.writer.map_err(|source| self.journal_error(source));
                    return (Ok(back.engine), writer);
                }
                // A parked gateway sleeps in its poll: wake it again until it has seen the flag.
                Err(crossbeam::channel::RecvTimeoutError::Timeout) => self.port.gateway_bell.wake(),
                Err(crossbeam::channel::RecvTimeoutError::Disconnected) => return gone(),
            }
        }
    }

    fn journal_error(&self, source: JournalError) -> RuntimeError {
        RuntimeError::Journal { durable_sequence: self.port.durable_sequence.load(Ordering::Acquire), source }
    }
}

fn join<T>(handle: Option<JoinHandle<T>>, thread: &'static str) -> Result<T, RuntimeError> {
    match handle {
        Some(handle) => handle.join().map_err(|_| RuntimeError::Panicked { thread }),
        None => Err(RuntimeError::Panicked { thread }),
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let running = self.sequencer.is_some() || self.journal.is_some() || self.housekeeping.is_some();
        if running || self.core.is_some() {
            let _ = self.stop_and_join();
        }
    }
}
