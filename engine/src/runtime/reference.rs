//! The single-threaded sequencer: stamps, journals (group commit when the caller commits) and
//! applies commands on the caller's thread, and writes snapshots after commits. No production
//! path runs it: the daemon runs the threaded pipeline (`pipeline.rs`). Tests use it to produce
//! real journals and snapshots without threads: the SIGKILL crash test's child process
//! (tests/crash.rs), the recovery tests (tests/recovery.rs), the journal CLI tests
//! (tests/journal_cli.rs) and the output regeneration tests (tests/output_regeneration.rs).
//! It is not what the pipeline is checked against (tests/pipeline_e2e.rs compares the
//! pipeline's events with a plain `Engine` fed the same commands).
//!
//! It shares the pipeline's rules rather than copying them: commands are numbered and stamped
//! by `stamp::Stamper` (contiguous sequences, timestamps that never decrease, journal before
//! apply), appended with `JournalWriter::append_or_commit`, and snapshots are written by
//! [`crate::snapshot`].
//!
//! Invariants:
//! - A command's events may be released to clients only once [`Sequencer::durable_sequence`]
//!   has reached it (journal-before-ack). The engine runs ahead of the disk by at most one
//!   commit batch.
//! - After a failed commit the sequencer refuses all work: the engine holds commands whose
//!   durability is unknown, and only a restart (recovery) knows what is on disk.
//! - Snapshots are taken only right after a commit, of state whose commands are all durable.

use std::path::PathBuf;

use petrel_core::{Command, Engine, EventSink};
use petrel_journal::{CommitStats, JournalConfig, JournalError, JournalWriter, SnapshotError};

use super::stamp::{Lent, Stamped, Stamper};
use crate::clock::{Clock, SystemClock};
use crate::config::SnapshotConfig;
use crate::input_record::CommandEcho;
use crate::snapshot::SnapshotWriteError;

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
    stamper: Stamper<C>,
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
            stamper: Stamper::continuing(&engine, clock),
            last_snapshot_sequence: engine.last_sequence(),
            engine,
            writer,
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

    /// Sequences one command: stamps it, appends it to the journal buffer (committing the
    /// buffer first when it is full), applies it to the engine and returns its sequence. Its
    /// events go to `sink` now but may be released only once `durable_sequence()` reaches it.
    pub fn submit(&mut self, command: &Command, sink: &mut impl EventSink) -> Result<u64, SequencerError> {
        if self.stopped {
            return Err(SequencerError::Stopped);
        }
        let (writer, stopped) = (&mut self.writer, &mut self.stopped);
        let journal = |stamped: &Stamped| {
            match writer.append_or_commit(stamped.sequence, stamped.timestamp_ns, stamped.payload()) {
                Ok(_) => Ok(()),
                Err(e) => {
                    // A commit failed (or the configuration let a command outgrow the journal's
                    // payload limit): what is durable is unknown until a restart.
                    *stopped = true;
                    Err(SequencerError::from(e))
                }
            }
        };
        let (sequence, _) =
            self.stamper.sequence(command, &CommandEcho::NONE, &mut self.engine, journal, |_| Lent(sink))?;
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
                let written =
                    crate::snapshot::write_snapshot(&self.engine, snapshots, journal).map_err(|e| match e {
                        SnapshotWriteError::Snapshot(e) => SequencerError::Snapshot(e),
                        SnapshotWriteError::Retention(e) => SequencerError::Journal(e),
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
