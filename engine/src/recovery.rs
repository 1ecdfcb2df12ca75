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
//!   [`crate::snapshot`]), so a snapshot never runs ahead of the journal.
//! - Asked to collect the events of the commands after a sequence T ([`recover_collecting`]),
//!   recovery starts from the newest snapshot at or before T (or from an empty engine when the
//!   journal still begins at sequence 1) instead of the newest one: the replay is longer, the
//!   recovered state the same. The gateway turns those events into the OUCH messages a crash
//!   kept it from recording (see `gateway` module docs, "Regenerating lost outputs").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use petrel_core::{AccountId, CountingSink, Engine, EngineConfig, Event, EventSink};
use petrel_journal::{
    Journal, JournalError, JournalLocation, JournalWriter, Recovery, SnapshotError, TornTail,
};

use crate::config::Config;
use crate::input_record::{self, CommandEcho, RecordError};
use crate::port::OutboundEvent;

/// How often, in records, the progress callback hears from a replay.
pub const PROGRESS_EVERY_RECORDS: u64 = 1 << 16;

/// Most events [`recover_collecting`] keeps. The commands whose outputs a crash can lose are
/// those the gateway had not yet recorded: at most what its held queue and the outbound ring
/// carry (2 x 65,536 events by default), so this bound is only reached when the release mark
/// was lost and a long history would have to be regenerated; collection then stops (memory
/// stays bounded) and the gateway regenerates nothing.
pub const COLLECTED_EVENTS_MAX: usize = 1 << 20;

/// The `conn` of a collected event: the journal does not record which connection sent a
/// command. No gateway connection id reaches this value (they are below `max_sessions`).
pub const REPLAYED_CONN: u32 = u32::MAX - 1;

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
        "journal record {sequence} in {} does not decode as a command and its echo: {source}. The engine will \
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
        source: RecordError,
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
    /// Events the replay produced (counted; only those collected are kept, see below).
    pub events: u64,
    pub executions: u64,
    /// Events of the commands after `collected_after` kept for regeneration (book changes only
    /// with a market-data feed, which records them: no OUCH message carries one).
    pub collected_events: u64,
    /// Collection was asked for the commands after this sequence, and done.
    pub collected_after: Option<u64>,
    pub timing: RecoveryTiming,
}

/// What [`recover_collecting`] gathered for the gateway to regenerate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collection {
    /// Not asked for.
    NotAsked,
    /// Every event (book changes left out) of the commands after `after`, in sequence order,
    /// each command's last kept event flagged `last_of_command`; and the echo journaled with
    /// each of those commands that carries one (`crate::input_record`), in sequence order.
    Events { after: u64, events: Vec<OutboundEvent>, echoes: Vec<CollectedEcho> },
    /// The commands after `after` could not be replayed from a state at or before `after`:
    /// `reason` says why (retention removed the journal's beginning and no snapshot is old
    /// enough; an old snapshot is unreadable; too many events). The engine is recovered all the
    /// same, from the newest snapshot.
    Unavailable { after: u64, reason: String },
}

/// The echo journaled with a command whose events were collected: what the gateway needs
/// besides the events to write the command's answers as it first would have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CollectedEcho {
    pub sequence: u64,
    /// The account of the command (the one its echo answers).
    pub account: AccountId,
    pub echo: CommandEcho,
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
    recover_collecting(config, None, progress).map(|(recovered, _)| recovered)
}

/// [`recover`], also collecting the events of every command after `collect_after` (when
/// given) for the gateway to regenerate the outputs a crash lost. The recovered engine is the
/// same; only where the replay starts differs (see the module's invariants).
pub fn recover_collecting(
    config: &Config,
    collect_after: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Recovered, Collection), RecoveryError> {
    let started = Instant::now();
    let books = config.market_data.is_some();
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
    let (engine, mut report, collection) =
        rebuild(&config.engine, &recovery, Some(&config.snapshots.dir), collect_after, books, progress)?;
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
        collected_after = ?report.collected_after,
        collected_events = report.collected_events,
        "recovered engine state"
    );
    Ok((Recovered { engine, writer, report }, collection))
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
    let recovery = petrel_journal::open_read_only(location)?;
    let journal_scan = started.elapsed();
    let (engine, mut report, _) = rebuild(engine_config, &recovery, snapshot_dir, None, false, progress)?;
    // Found, not cut: `open_read_only` changes nothing, and a replay never reads a torn tail.
    report.torn_tail = recovery.truncation;
    report.timing.journal_scan = journal_scan;
    Ok((engine, report))
}

/// Where a replay starts: a snapshot, or an empty engine.
enum Base {
    Empty,
    Snapshot(petrel_journal::Snapshot),
}

/// The newest snapshot at or before `after` from which the journal can be replayed (its next
/// sequence still retained), else an empty engine when the journal begins at sequence 1.
fn base_at_or_before(recovery: &Recovery, snapshot_dir: Option<&Path>, after: u64) -> Result<Base, String> {
    let journal_first = recovery.segments.first().map_or(1, |s| s.first_sequence);
    let candidates = match snapshot_dir {
        Some(dir) => petrel_journal::list_snapshots(dir).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let usable = candidates
        .into_iter()
        .rev()
        .find(|(sequence, _)| *sequence <= after && sequence + 1 >= journal_first);
    match usable {
        Some((sequence, path)) => {
            petrel_journal::read_snapshot(&path, sequence).map(Base::Snapshot).map_err(|e| e.to_string())
        }
        None if journal_first <= 1 => Ok(Base::Empty),
        None => Err(format!(
            "no snapshot at or before sequence {after} and the journal begins at sequence \
             {journal_first} (retention deleted the records before it)"
        )),
    }
}

/// Counts every event like [`CountingSink`] and, while `collecting`, keeps the ones the
/// gateway may turn into messages, bounded by [`COLLECTED_EVENTS_MAX`].
struct CollectingSink {
    counting: CountingSink,
    events: Vec<OutboundEvent>,
    echoes: Vec<CollectedEcho>,
    collecting: bool,
    /// Keep book changes too (a market-data feed regenerates from them).
    books: bool,
    overflowed: bool,
    sequence: u64,
    timestamp_ns: u64,
}

impl CollectingSink {
    fn overflow(&mut self) {
        self.overflowed = true;
        self.collecting = false;
        self.events = Vec::new();
        self.echoes = Vec::new();
    }

    /// Keeps the echo of a command being collected (each command has at most one, so the
    /// echoes never outnumber the commands, bounded like the events).
    fn keep_echo(&mut self, account: AccountId, echo: CommandEcho) {
        if !self.collecting || echo.is_empty() {
            return;
        }
        if self.echoes.len() == COLLECTED_EVENTS_MAX {
            self.overflow();
            return;
        }
        self.echoes.push(CollectedEcho { sequence: self.sequence, account, echo });
    }
}

impl EventSink for CollectingSink {
    fn emit(&mut self, event: Event) {
        self.counting.emit(event);
        if !self.collecting || (!self.books && matches!(event, Event::Book(_))) {
            return;
        }
        if self.events.len() == COLLECTED_EVENTS_MAX {
            self.overflow();
            return;
        }
        self.events.push(OutboundEvent {
            sequence: self.sequence,
            timestamp_ns: self.timestamp_ns,
            conn: REPLAYED_CONN,
            event,
            last_of_command: false,
        });
    }
}

fn rebuild(
    engine_config: &EngineConfig,
    recovery: &Recovery,
    snapshot_dir: Option<&Path>,
    collect_after: Option<u64>,
    collect_books: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Engine, RecoveryReport, Collection), RecoveryError> {
    let started = Instant::now();
    let last = recovery.last_sequence.unwrap_or(0);
    let asked = collect_after;
    // Replaying from an older state only matters when some command is after `after`.
    let collect_after = collect_after.filter(|after| *after < last);
    let mut unavailable = None;
    let base = match collect_after.map(|after| (after, base_at_or_before(recovery, snapshot_dir, after))) {
        Some((_, Ok(base))) => Some(base),
        Some((after, Err(reason))) => {
            unavailable = Some(Collection::Unavailable { after, reason });
            None
        }
        None => None,
    };
    let base = match base {
        Some(base) => base,
        None => match snapshot_dir {
            Some(dir) => petrel_journal::latest_snapshot(dir)?.map_or(Base::Empty, Base::Snapshot),
            None => Base::Empty,
        },
    };
    let collect_after = if unavailable.is_some() { None } else { collect_after };
    let (mut engine, snapshot_info) = match base {
        Base::Empty => (Engine::new(engine_config)?, None),
        Base::Snapshot(snapshot) => {
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
    let total = last.saturating_sub(engine.last_sequence());
    let mut reader = recovery.replay_from(from)?;
    let mut sink = CollectingSink {
        counting: CountingSink::default(),
        events: Vec::new(),
        echoes: Vec::new(),
        collecting: false,
        books: collect_books,
        overflowed: false,
        sequence: 0,
        timestamp_ns: 0,
    };
    let mut done = 0u64;
    while let Some(record) = reader.next_record()? {
        let (command, echo) =
            input_record::decode(record.payload).map_err(|source| RecoveryError::Decode {
                dir: recovery.location.dir.clone(),
                prefix: recovery.location.file_prefix.clone(),
                file: segment_of(recovery, record.sequence),
                sequence: record.sequence,
                source,
            })?;
        sink.collecting = !sink.overflowed && collect_after.is_some_and(|after| record.sequence > after);
        sink.sequence = record.sequence;
        sink.timestamp_ns = record.timestamp_ns;
        sink.keep_echo(command.account(), echo);
        let kept_before = sink.events.len();
        engine.apply(&command, record.sequence, record.timestamp_ns, &mut sink);
        if sink.events.len() > kept_before {
            sink.events.last_mut().expect("an event was kept").last_of_command = true;
        }
        done += 1;
        if done % PROGRESS_EVERY_RECORDS == 0 {
            progress(done, total);
        }
    }
    progress(done, total);
    assert_eq!(done, total, "the reader yields every recovered record after the snapshot");
    let collection = match (collect_after, unavailable) {
        (_, Some(unavailable)) => unavailable,
        (Some(after), None) if sink.overflowed => Collection::Unavailable {
            after,
            reason: format!("the commands after it produced more than {COLLECTED_EVENTS_MAX} events"),
        },
        (Some(after), None) => Collection::Events {
            after,
            events: std::mem::take(&mut sink.events),
            echoes: std::mem::take(&mut sink.echoes),
        },
        (None, None) => match asked {
            Some(after) => Collection::Events { after, events: Vec::new(), echoes: Vec::new() },
            None => Collection::NotAsked,
        },
    };
    let (collected_after, collected_events) = match &collection {
        Collection::Events { after, events, .. } => (Some(*after), events.len() as u64),
        _ => (None, 0),
    };
    let report = RecoveryReport {
        snapshot: snapshot_info,
        journal_records: recovery.record_count,
        replayed_records: done,
        last_sequence: engine.last_sequence(),
        next_sequence: engine.last_sequence() + 1,
        torn_tail: None,
        events: sink.counting.events,
        executions: sink.counting.executions,
        collected_events,
        collected_after,
        timing: RecoveryTiming { journal_scan: Duration::ZERO, snapshot_load, replay: started.elapsed() },
    };
    Ok((engine, report, collection))
}

fn segment_of(recovery: &Recovery, sequence: u64) -> PathBuf {
    let i = recovery.segments.partition_point(|s| s.first_sequence <= sequence).saturating_sub(1);
    recovery.segments.get(i).map(|s| s.path.clone()).unwrap_or_default()
}
