//! Rebuilding the engine at start: the newest snapshot, then the journal records after it.
//!
//! Invariants:
//! - The recovered engine equals, in state hash, an engine that applied every journal record
//!   from sequence 1 in order, with the sequence and timestamp each record carries.
//! - A record that does not decode stops recovery with an error naming its file and sequence;
//!   nothing is ever skipped (a skipped command would silently fork the state from the one the
//!   clients were told about).
//! - A torn tail (the unacknowledged end of a commit cut short by a crash) is cut by
//!   `Journal::open`, logged as a warning here and returned in the report; never silent.
//! - A snapshot is only written of state whose commands are all durable in the journal (see
//!   [`write_snapshot`]), so a snapshot never runs ahead of the journal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use petrel_core::codec::{self, CodecError};
use petrel_core::{CountingSink, Engine, EngineConfig};
use petrel_journal::{
    Journal, JournalError, JournalLocation, JournalWriter, Recovery, SnapshotError, TornTail,
};

use crate::config::{Config, SnapshotConfig};

/// How often, in records, the progress callback hears from a replay.
pub const PROGRESS_EVERY_RECORDS: u64 = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(
        "snapshot {} cannot be restored with this configuration: {source}. Was an instrument or \
         account removed or reordered? Entries may only be appended.",
        path.display()
    )]
    Restore {
        path: PathBuf,
        #[source]
        source: petrel_core::SnapshotError,
    },
    #[error(
        "snapshot {} is named for sequence {file_sequence} but holds the state after sequence \
         {state_sequence}; move it out of the snapshot directory",
        path.display()
    )]
    SnapshotSequence { path: PathBuf, file_sequence: u64, state_sequence: u64 },
    #[error(
        "journal record {sequence} in {} does not decode as a command: {source}. The engine will \
         not start past it. Inspect it with: petrel-engine journal dump --dir {} --prefix {prefix} \
         --from-seq {sequence}",
        file.display(),
        dir.display()
    )]
    Decode {
        dir: PathBuf,
        prefix: String,
        file: PathBuf,
        sequence: u64,
        #[source]
        source: CodecError,
    },
    #[error("invalid engine configuration: {0}")]
    EngineConfig(#[from] petrel_core::ConfigError),
}

/// Where each part of a recovery spent its time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryTiming {
    /// Opening (or verifying) the journal: every record's checksum is checked here.
    pub journal_scan: Duration,
    pub snapshot_load: Duration,
    pub replay: Duration,
}

/// What a recovery found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The snapshot the engine started from, if any: its sequence and file.
    pub snapshot: Option<(u64, PathBuf)>,
    /// Records in the journal (after cutting a torn tail).
    pub journal_records: u64,
    /// Records applied on top of the snapshot (or of an empty engine).
    pub replayed_records: u64,
    /// The last sequence applied (0: nothing).
    pub last_sequence: u64,
    /// The sequence the next command gets.
    pub next_sequence: u64,
    /// The torn tail cut off (by `recover`) or found (by the read-only replay).
    pub torn_tail: Option<TornTail>,
    /// Events the replay produced (they are not sent anywhere: clients saw them before).
    pub events: u64,
    pub executions: u64,
    pub timing: RecoveryTiming,
}

/// A recovered engine with the journal writer positioned after the last record.
#[derive(Debug)]
pub struct Recovered {
    pub engine: Engine,
    pub writer: JournalWriter,
    pub report: RecoveryReport,
}

/// Recovers the engine for `config`: opens the journal (taking its lock, cutting a torn tail),
/// loads the newest snapshot, replays the records after it. `progress(done, total)` is called
/// every [`PROGRESS_EVERY_RECORDS`] records and once at the end, for a status line such as
/// "replaying journal: 3.2M of 10M".
pub fn recover(config: &Config, progress: &mut dyn FnMut(u64, u64)) -> Result<Recovered, RecoveryError> {
    let started = Instant::now();
    let (writer, recovery) = Journal::open(&config.journal)?;
    let journal_scan = started.elapsed();
    if let Some(tail) = &recovery.truncation {
        tracing::warn!(
            file = %tail.file.display(),
            offset = tail.offset,
            discarded_records = tail.discarded_records,
            damaged_bytes = tail.damaged_bytes,
            "journal had a torn tail from an interrupted commit ({}); cut it off: those records were never acknowledged",
            tail.reason
        );
    }
    for temp in &recovery.removed_temp_files {
        tracing::info!(file = %temp.display(), "removed a half-created journal segment");
    }
    let (engine, mut report) = rebuild(&config.engine, &recovery, Some(&config.snapshots.dir), progress)?;
    report.torn_tail = recovery.truncation.clone();
    report.timing.journal_scan = journal_scan;
    assert_eq!(
        writer.next_sequence(),
        report.next_sequence,
        "the writer continues where the replayed journal ends"
    );
    tracing::info!(
        snapshot = ?report.snapshot.as_ref().map(|s| s.0),
        replayed = report.replayed_records,
        last_sequence = report.last_sequence,
        "recovered engine state"
    );
    Ok(Recovered { engine, writer, report })
}

/// Replays a journal into a fresh engine without changing any file (no lock, no cut tail): for
/// comparing replicas and checking backups. With `snapshot_dir`, starts from its newest
/// snapshot; without, from sequence 1 (the journal must then still hold it).
pub fn replay_read_only(
    engine_config: &EngineConfig,
    location: &JournalLocation,
    snapshot_dir: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Engine, RecoveryReport), RecoveryError> {
    let started = Instant::now();
    let verified = petrel_journal::verify(location)?;
    let journal_scan = started.elapsed();
    // `verify` checked exactly what `Journal::open` checks, without the lock or the repair; a
    // `Recovery` built from its findings replays the same records (a torn tail is beyond the
    // segments' `data_end_offset`, so it is never read).
    let recovery = Recovery {
        location: location.clone(),
        record_count: verified.record_count,
        first_sequence: verified.first_sequence,
        last_sequence: verified.last_sequence,
        segments: verified.segments,
        truncation: verified.torn_tail.clone(),
        removed_temp_files: Vec::new(),
        created: false,
    };
    let (engine, mut report) = rebuild(engine_config, &recovery, snapshot_dir, progress)?;
    report.torn_tail = verified.torn_tail;
    report.timing.journal_scan = journal_scan;
    Ok((engine, report))
}

fn rebuild(
    engine_config: &EngineConfig,
    recovery: &Recovery,
    snapshot_dir: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Engine, RecoveryReport), RecoveryError> {
    let started = Instant::now();
    let snapshot = match snapshot_dir {
        Some(dir) => petrel_journal::latest_snapshot(dir)?,
        None => None,
    };
    let (mut engine, snapshot_info) = match snapshot {
        None => (Engine::new(engine_config)?, None),
        Some(snapshot) => {
            let engine = Engine::restore(engine_config, &snapshot.bytes)
                .map_err(|source| RecoveryError::Restore { path: snapshot.path.clone(), source })?;
            if engine.last_sequence() != snapshot.sequence {
                return Err(RecoveryError::SnapshotSequence {
                    path: snapshot.path,
                    file_sequence: snapshot.sequence,
                    state_sequence: engine.last_sequence(),
                });
            }
            (engine, Some((snapshot.sequence, snapshot.path)))
        }
    };
    let snapshot_load = started.elapsed();

    let started = Instant::now();
    let from = engine.last_sequence() + 1;
    let last = recovery.last_sequence.unwrap_or(0);
    let total = last.saturating_sub(engine.last_sequence());
    let mut reader = recovery.replay_from(from)?;
    let mut sink = CountingSink::default();
    let mut done = 0u64;
    while let Some(record) = reader.next_record()? {
        let command = codec::decode(record.payload).map_err(|source| RecoveryError::Decode {
            dir: recovery.location.dir.clone(),
            prefix: recovery.location.file_prefix.clone(),
            file: segment_of(recovery, record.sequence),
            sequence: record.sequence,
            source,
        })?;
        engine.apply(&command, record.sequence, record.timestamp_ns, &mut sink);
        done += 1;
        if done % PROGRESS_EVERY_RECORDS == 0 {
            progress(done, total);
        }
    }
    progress(done, total);
    assert_eq!(done, total, "the reader yields every recovered record after the snapshot");
    let report = RecoveryReport {
        snapshot: snapshot_info,
        journal_records: recovery.record_count,
        replayed_records: done,
        last_sequence: engine.last_sequence(),
        next_sequence: engine.last_sequence() + 1,
        torn_tail: None,
        events: sink.events,
        executions: sink.executions,
        timing: RecoveryTiming { journal_scan: Duration::ZERO, snapshot_load, replay: started.elapsed() },
    };
    Ok((engine, report))
}

fn segment_of(recovery: &Recovery, sequence: u64) -> PathBuf {
    let i = recovery.segments.partition_point(|s| s.first_sequence <= sequence).saturating_sub(1);
    recovery.segments.get(i).map(|s| s.path.clone()).unwrap_or_default()
}

/// Writes a snapshot of `engine` and deletes snapshots beyond `config.keep`. The caller must
/// have committed every command the engine applied: a snapshot ahead of the durable journal
/// would make the next start refuse the journal as short. [`crate::sequencer::Sequencer`] does
/// this for its own engine.
pub fn write_snapshot(engine: &Engine, config: &SnapshotConfig) -> Result<PathBuf, SnapshotError> {
    let mut bytes = Vec::with_capacity(1 << 16);
    engine.encode_state(&mut bytes);
    let path = petrel_journal::write_snapshot(&config.dir, engine.last_sequence(), &bytes)?;
    petrel_journal::prune_snapshots(&config.dir, config.keep as usize)?;
    Ok(path)
}
