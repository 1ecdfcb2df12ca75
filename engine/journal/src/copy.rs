//! Copying a journal's records to another directory without its writer's lock, while the writer
//! may be appending: the journal part of a backup.
//!
//! Segments are copied byte for byte (header page and records), each record checked as it is
//! read, up to a sequence (`through`) or, without one, up to the end of the records found. The
//! copy of the last segment is zero past its last record up to the segment's size, as the writer
//! leaves a segment (the zeroes are a hole, not written): `Journal::open` takes the copy as it
//! is, with no torn tail to cut.
//!
//! Why the copy is a consistent prefix although the writer appends meanwhile: the segments are
//! listed once, first. Every listed segment but the newest was complete before the next one was
//! created, so damage in one of them is refused (`Corrupt`), as recovery would refuse it. In the
//! newest, the first position that is not a valid record is where the writer was (a commit
//! being written reads as a partial record, or zeroes), and the copy ends before it; a record
//! is complete once its checksum holds. Records written after the listing are not copied. A
//! segment that retention deletes between the listing and its copy (only the oldest are ever
//! deleted) is skipped while nothing has been copied yet: the copy then starts at a later one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::error::JournalError;
use crate::format::{parse_record, InvalidRecord, Parsed, SegmentHeader, RECORD_HEADER_BYTES};
use crate::scan::{list_segments, read_header, ChunkReader, JournalLocation};

/// Bytes buffered before each write to the copy.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// What [`copy_records`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopiedJournal {
    /// The segment files written, oldest first.
    pub files: Vec<PathBuf>,
    pub first_sequence: Option<u64>,
    pub last_sequence: Option<u64>,
    pub records: u64,
}

/// Copies the records of the journal at `from` with sequences up to `through` (every record
/// found, without it) into segments of the journal at `to`, whose directory is created. Takes
/// no lock and changes nothing at `from`. Stops early, without error, where the newest segment's
/// records end: the caller compares `last_sequence` with what it expected.
pub fn copy_records(
    from: &JournalLocation,
    to: &JournalLocation,
    through: Option<u64>,
) -> Result<CopiedJournal, JournalError> {
    std::fs::create_dir_all(&to.dir).map_err(JournalError::io("create directory", &to.dir))?;
    let segments = list_segments(from)?.segments;
    let mut copied = CopiedJournal::default();
    for (i, segment) in segments.iter().enumerate() {
        if through.is_some_and(|through| segment.first_sequence > through) {
            break;
        }
        let mut reader = match ChunkReader::open(&segment.path) {
            Err(JournalError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && copied.files.is_empty() =>
            {
                continue
            }
            opened => opened?,
        };
        let header = read_header(from, &mut reader, segment.first_sequence)?;
        let expected = copied.last_sequence.map_or(header.first_sequence, |last| last + 1);
        if header.first_sequence != expected {
            return Err(from.corrupt(
                &segment.path,
                16,
                format!(
                    "segment starts at sequence {} but the previous segment ends at sequence {} \
                     (records are missing)",
                    header.first_sequence,
                    expected - 1
                ),
            ));
        }
        let target = to.segment_path(header.first_sequence);
        let is_last = i + 1 == segments.len();
        let ended = copy_segment(from, &mut reader, &header, &target, through, is_last, &mut copied)?;
        copied.files.push(target);
        if ended {
            break;
        }
    }
    File::open(&to.dir).and_then(|d| d.sync_all()).map_err(JournalError::io("fsync directory", &to.dir))?;
    Ok(copied)
}

/// Copies one segment's header and records into `target`; true when the copy ends with it
/// (`through` reached, or the end of the newest segment's records).
fn copy_segment(
    from: &JournalLocation,
    reader: &mut ChunkReader,
    header: &SegmentHeader,
    target: &std::path::Path,
    through: Option<u64>,
    is_last: bool,
    copied: &mut CopiedJournal,
) -> Result<bool, JournalError> {
    let file = File::create(target).map_err(JournalError::io("create", target))?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    out.write_all(&header.encode()).map_err(JournalError::io("write", target))?;
    let mut next_sequence = header.first_sequence;
    let ended = loop {
        reader.fill(RECORD_HEADER_BYTES)?;
        let offset = reader.offset();
        let raw = match parse_record(reader.data(), reader.at_eof()) {
            Parsed::NeedBytes(n) => {
                reader.fill(n)?;
                continue;
            }
            Parsed::Valid(raw) => raw,
            // The newest segment: where the writer was. Older ones end in zeroes when the next
            // commit did not fit; anything else in them is damage.
            Parsed::Invalid(_) if is_last => break true,
            Parsed::Invalid(InvalidRecord::Zero | InvalidRecord::ShortHeader) => break false,
            Parsed::Invalid(why) => {
                return Err(from.corrupt(
                    &reader.path,
                    offset,
                    format!("damaged record ({why}) and a later segment exists"),
                ))
            }
        };
        let sequence = raw.record.sequence;
        if sequence != next_sequence {
            return Err(from.corrupt(
                &reader.path,
                offset,
                format!("sequence gap: expected sequence {next_sequence}, found {sequence}"),
            ));
        }
        if through.is_some_and(|through| sequence > through) {
            break true;
        }
        let bytes = raw.total_bytes;
        out.write_all(&reader.data()[..bytes]).map_err(JournalError::io("write", target))?;
        reader.consume(bytes);
        copied.first_sequence.get_or_insert(sequence);
        copied.last_sequence = Some(sequence);
        copied.records += 1;
        next_sequence += 1;
    };
    let file = out.into_inner().map_err(|e| JournalError::io("write", target)(e.into_error()))?;
    file.set_len(header.segment_bytes).map_err(JournalError::io("extend", target))?;
    file.sync_all().map_err(JournalError::io("fsync", target))?;
    Ok(ended)
}
