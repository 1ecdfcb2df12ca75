//! The sequencer: the one place where commands get their sequence number and timestamp, are
//! journaled and applied to the engine. This single-threaded version is the reference for
//! what the pinned pipeline does with threads and rings, and what tests and tools use.
//!
//! Invariants:
//! - Sequences are contiguous from the journal's next sequence; timestamps never decrease
//!   (a clock stepped back by NTP gives the previous timestamp again, so rate windows and
//!   time priority never see time run backwards).
//! - Every command is appended to the journal before it is applied, and its events may be
//!   released to clients only once [`Sequencer::durable_sequence`] has reached it
//!   (journal-before-ack). The engine runs ahead of the disk by at most one commit batch.
//! - After a failed commit the sequencer refuses all work: the engine holds commands whose
//!   durability is unknown, and only a restart (recovery) knows what is on disk.
//! - Snapshots are taken only right after a commit, of state whose commands are all durable.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use petrel_core::codec::{self, MAX_COMMAND_BYTES};
use petrel_core::{Command, Engine, EventSink};
use petrel_journal::{AppendError, CommitStats, JournalConfig, JournalError, JournalWriter, SnapshotError};

use crate::config::SnapshotConfig;

/// Where timestamps come from. The sequencer is the only reader of a clock in the engine.
pub trait Clock {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&mut self) -> u64;
}

/// `CLOCK_REALTIME`, through `SystemTime` (a vDSO call: no system call).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&mut self) -> u64 {
        // A clock before 1970 is a broken host; 0 keeps the sequencer going (timestamps then
        // hold at the last value, see `Sequencer::submit`).
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }
}

/// A clock for tests: returns the values of a closure.
pub struct FnClock<F: FnMut() -> u64>(pub F);

impl<F: FnMut() -> u64> Clock for FnClock<F> {
    fn now_ns(&mut self) -> u64 {
        (self.0)()
    }
}

impl<F: FnMut() -> u64> std::fmt::Debug for FnClock<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnClock")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SequencerError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("the sequencer stopped after an earlier journal failure; restart the engine to recover")]
    Stopped,
}

/// Outcome of [`Sequencer::commit`].
#[derive(Debug)]
pub struct Committed {
    pub stats: CommitStats,
    pub snapshot: SnapshotOutcome,
}

/// Whether a snapshot was written after a commit. A failed snapshot does not undo the commit
/// (the journal alone recovers everything); it is logged and tried again after the next commit.
#[derive(Debug)]
pub enum SnapshotOutcome {
    NotDue,
    Written(PathBuf),
    Failed(SequencerError),
}

/// Numbers, timestamps, journals and applies commands (see the module documentation).
pub struct Sequencer<C: Clock = SystemClock> {
    engine: Engine,
    writer: JournalWriter,
    clock: C,
    last_timestamp_ns: u64,
    snapshots: Option<(SnapshotConfig, JournalConfig)>,
    last_snapshot_sequence: u64,
    stopped: bool,
}

impl<C: Clock> std::fmt::Debug for Sequencer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("next_sequence", &self.writer.next_sequence())
            .field("durable_sequence", &self.writer.durable_sequence())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> Sequencer<C> {
    /// Takes over a recovered engine and the journal writer positioned after its last record.
    pub fn new(engine: Engine, writer: JournalWriter, clock: C) -> Sequencer<C> {
        assert_eq!(
            writer.next_sequence(),
            engine.last_sequence() + 1,
            "the engine must hold exactly the journal's records (use recovery::recover)"
        );
        assert_eq!(writer.buffered_records(), 0, "a fresh writer has nothing buffered");
        Sequencer {
            last_timestamp_ns: engine.last_timestamp_ns(),
            last_snapshot_sequence: engine.last_sequence(),
            engine,
            writer,
            clock,
            snapshots: None,
            stopped: false,
        }
    }

    /// Writes a snapshot after the first commit that ends `snapshots.every_commands` or more
    /// commands after the previous one, then prunes old snapshots and applies the journal's
    /// retention policy.
    pub fn with_snapshots(mut self, snapshots: SnapshotConfig, journal: JournalConfig) -> Sequencer<C> {
        self.snapshots = Some((snapshots, journal));
        self
    }

    /// Sequences one command: timestamps it, appends it to the journal buffer (committing the
    /// buffer first when it is full), applies it to the engine and returns its sequence. Its
    /// events go to `sink` now but may be released only once `durable_sequence()` reaches it.
    pub fn submit(&mut self, command: &Command, sink: &mut impl EventSink) -> Result<u64, SequencerError> {
        if self.stopped {
            return Err(SequencerError::Stopped);
        }
        let timestamp_ns = self.clock.now_ns().max(self.last_timestamp_ns);
        let mut payload = [0u8; MAX_COMMAND_BYTES];
        let len = codec::encode(command, &mut payload);
        let sequence = self.writer.next_sequence();
        match self.writer.append(sequence, timestamp_ns, &payload[..len]) {
            Ok(()) => {}
            Err(AppendError::BufferFull { .. }) => {
                self.commit_buffer()?;
                self.writer
                    .append(sequence, timestamp_ns, &payload[..len])
                    .expect("an empty write buffer holds one command (checked by the configuration)");
            }
            Err(e @ AppendError::PayloadTooLarge { .. }) => {
                panic!("journal.max_record_payload_bytes is validated to hold any command: {e}")
            }
        }
        self.last_timestamp_ns = timestamp_ns;
        self.engine.apply(command, sequence, timestamp_ns, sink);
        Ok(sequence)
    }

    /// Makes every submitted command durable (one write, one `fdatasync` in fsync mode); their
    /// events may be released when this returns. Writes a snapshot if one is due.
    pub fn commit(&mut self) -> Result<Committed, SequencerError> {
        if self.stopped {
            return Err(SequencerError::Stopped);
        }
        let stats = self.commit_buffer()?;
        let snapshot = match &self.snapshots {
            Some((snapshots, journal))
                if self.engine.last_sequence() - self.last_snapshot_sequence >= snapshots.every_commands =>
            {
                debug_assert_eq!(self.writer.durable_sequence(), self.engine.last_sequence());
                let written = crate::recovery::write_snapshot(&self.engine, snapshots)
                    .map_err(SequencerError::from)
                    .and_then(|path| {
                        petrel_journal::apply_retention(journal, self.engine.last_sequence())?;
                        Ok(path)
                    });
                match written {
                    Ok(path) => {
                        self.last_snapshot_sequence = self.engine.last_sequence();
                        tracing::info!(path = %path.display(), sequence = self.last_snapshot_sequence, "wrote snapshot");
                        SnapshotOutcome::Written(path)
                    }
                    Err(e) => {
                        tracing::error!(
                            "snapshot after sequence {} failed, will retry: {e}",
                            self.engine.last_sequence()
                        );
                        SnapshotOutcome::Failed(e)
                    }
                }
            }
            _ => SnapshotOutcome::NotDue,
        };
        Ok(Committed { stats, snapshot })
    }

    fn commit_buffer(&mut self) -> Result<CommitStats, SequencerError> {
        match self.writer.commit() {
            Ok(stats) => Ok(stats),
            Err(e) => {
                self.stopped = true;
                Err(e.into())
            }
        }
    }

    /// Every command up to this sequence is durable; 0 when none is.
    pub fn durable_sequence(&self) -> u64 {
        self.writer.durable_sequence()
    }

    /// The sequence the next command gets.
    pub fn next_sequence(&self) -> u64 {
        self.writer.next_sequence()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Commits what is buffered and hands back the engine and the writer.
    pub fn finish(mut self) -> Result<(Engine, JournalWriter), SequencerError> {
        self.commit()?;
        Ok((self.engine, self.writer))
    }
}
