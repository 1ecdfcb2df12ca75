//! Reading a journal without its writer's lock and without changing a file: for a writer's
//! own thread (the gateway replaying an output journal it writes), the operator's tools, and
//! replicas or backups. Two ways in, by how much is checked before the first record:
//! - [`open_read_only`] scans every record first, exactly as `Journal::open` would (a torn tail
//!   is found and reported, not cut): a `Recovery` whose record counts are known.
//! - [`open_read_only_from`] reads nothing up front: it lists segments by file name, starts at
//!   the one holding the sequence, and checks each record as it reads it. Its cost is that of
//!   the records read (those of the first segment before the sequence included), not of the
//!   whole journal.

use crate::error::JournalError;
use crate::inspect::verify;
use crate::reader::{JournalReader, ReadSegment};
use crate::scan::{list_segments, JournalLocation};
use crate::writer::Recovery;

/// The journal as `Journal::open` would recover it, with nothing changed: every record of every
/// segment is checked (the same refusals as `open`); `truncation` holds a torn tail that was
/// found and left in place (the writer's next open cuts it); no lock is taken.
pub fn open_read_only(location: &JournalLocation) -> Result<Recovery, JournalError> {
    let verified = verify(location)?;
    // A torn tail lies beyond its segment's `data_end_offset`, so a replay never reads it.
    Ok(Recovery {
        location: location.clone(),
        record_count: verified.record_count,
        first_sequence: verified.first_sequence,
        last_sequence: verified.last_sequence,
        segments: verified.segments,
        truncation: verified.torn_tail,
        removed_temp_files: Vec::new(),
        created: false,
    })
}

/// A reader of the records with `sequence >= from_sequence`, without scanning the journal
/// first. Segments are listed by file name; the reader starts at the newest one whose first
/// sequence is at or before `from_sequence` and checks every record it reads (checksum and
/// sequence) and every segment header it opens (and that each segment continues the previous
/// one). Damage is `JournalError::Corrupt` when reached, never skipped. The records end at the
/// first all-zero record header of the newest segment: what was committed when the reader got
/// there. A `from_sequence` before the first segment is refused here; one past the last record
/// is `SequenceBeyondEnd` from `next_record` once the reader reaches the end.
///
/// Nothing tells this reader where a crash cut the last commit short, so a torn tail that the
/// writer's next open would cut (reported by [`open_read_only`]) is `Corrupt` here. Meant for a
/// journal whose writer has opened it since its last crash, read on the writer's thread or
/// after the writer stopped: a commit being written by another thread may be read half done.
pub fn open_read_only_from(
    location: &JournalLocation,
    from_sequence: u64,
) -> Result<JournalReader, JournalError> {
    let listing = list_segments(location)?;
    let segments = listing
        .segments
        .into_iter()
        .map(|s| ReadSegment { path: s.path, first_sequence: s.first_sequence, data_end: None })
        .collect();
    JournalReader::unscanned(location.clone(), segments, from_sequence)
}
