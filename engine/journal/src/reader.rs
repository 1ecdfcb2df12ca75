//! Replay: streams records back in order through one fixed read buffer, from segments a scan
//! validated (`Recovery::replay_from`) or from segments only listed (`open_read_only_from`).

use std::path::PathBuf;

use crate::error::JournalError;
use crate::format::{
    le_u32, parse_record, record_total_bytes, InvalidRecord, Parsed, Record, RECORD_HEADER_BYTES,
};
use crate::scan::{read_header, ChunkReader, JournalLocation};
use crate::writer::SegmentSummary;

/// One segment as a reader sees it.
#[derive(Clone, Debug)]
pub(crate) struct ReadSegment {
    pub path: PathBuf,
    pub first_sequence: u64,
    /// Offset just past the last record, when a scan established it. `None`: nothing was
    /// scanned, so the records end at the first all-zero record header (or the file's end),
    /// and each record is checked only as it is read.
    pub data_end: Option<u64>,
}

/// Yields records with `sequence >= from_sequence`, in order, through one fixed read buffer.
/// Every record read (those skipped before `from_sequence` in the first segment included) is
/// checked against its checksum and its expected sequence; damage is `Corrupt`, never skipped.
pub struct JournalReader {
    location: JournalLocation,
    segments: Vec<ReadSegment>,
    next_segment: usize,
    current: Option<(ChunkReader, Option<u64>)>,
    from_sequence: u64,
    next_sequence: u64,
    /// Bytes of the record last returned, consumed on the next call (the record borrows them).
    pending_consume: usize,
    /// Timestamp and payload length of the record about to be returned.
    found: (u64, usize),
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalReader")
            .field("location", &self.location)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

impl JournalReader {
    /// A reader over segments a scan validated (`Recovery::replay_from`): their ends are known,
    /// so a `from_sequence` past the end is refused here.
    pub(crate) fn new(
        location: JournalLocation,
        segments: &[SegmentSummary],
        from_sequence: u64,
    ) -> Result<JournalReader, JournalError> {
        let next = segments.last().map_or(1, |s| s.first_sequence + s.record_count);
        if from_sequence > next {
            return Err(JournalError::SequenceBeyondEnd { requested: from_sequence, last: next - 1 });
        }
        let segments = segments
            .iter()
            .map(|s| ReadSegment {
                path: s.path.clone(),
                first_sequence: s.first_sequence,
                data_end: Some(s.data_end_offset),
            })
            .collect();
        JournalReader::starting_at(location, segments, from_sequence)
    }

    /// A reader over segments listed by name only: nothing is read before `next_record`, and
    /// a `from_sequence` past the end is reported when the reader reaches the end.
    pub(crate) fn unscanned(
        location: JournalLocation,
        segments: Vec<ReadSegment>,
        from_sequence: u64,
    ) -> Result<JournalReader, JournalError> {
        if segments.is_empty() && from_sequence > 1 {
            return Err(JournalError::SequenceBeyondEnd { requested: from_sequence, last: 0 });
        }
        JournalReader::starting_at(location, segments, from_sequence)
    }

    fn starting_at(
        location: JournalLocation,
        segments: Vec<ReadSegment>,
        from_sequence: u64,
    ) -> Result<JournalReader, JournalError> {
        let first = segments.first().map_or(1, |s| s.first_sequence);
        if from_sequence < first {
            return Err(JournalError::SequenceNotRetained {
                requested: from_sequence,
                first_available: first,
            });
        }
        // The newest segment whose first sequence is <= from_sequence holds it (or it is next).
        let start = segments.partition_point(|s| s.first_sequence <= from_sequence).saturating_sub(1);
        Ok(JournalReader {
            location,
            next_segment: start,
            next_sequence: segments.get(start).map_or(from_sequence, |s| s.first_sequence),
            segments,
            current: None,
            from_sequence,
            pending_consume: 0,
            found: (0, 0),
        })
    }

    /// The next record, or `None` after the last one.
    #[allow(clippy::should_implement_trait)] // a lending iterator: the record borrows the buffer
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        loop {
            if self.current.is_none() && !self.open_next_segment()? {
                return self.end();
            }
            let (reader, data_end) = self.current.as_mut().expect("a segment is open");
            reader.consume(self.pending_consume);
            self.pending_consume = 0;
            let scanned = data_end.is_some();
            if reader.offset() >= data_end.unwrap_or(reader.file_len) {
                self.current = None;
                continue;
            }
            reader.fill(RECORD_HEADER_BYTES)?;
            let payload_len =
                if reader.data().len() >= RECORD_HEADER_BYTES { le_u32(reader.data(), 4) } else { 0 };
            reader
                .fill(record_total_bytes((payload_len as usize).min(crate::format::PAYLOAD_BYTES_LIMIT)))?;
            let offset = reader.offset();
            let (sequence, total) = match parse_record(reader.data(), true) {
                Parsed::Valid(raw) => {
                    self.found = (raw.record.timestamp_ns, raw.record.payload.len());
                    (raw.record.sequence, raw.total_bytes)
                }
                // Unscanned, zeroes where a record would start (or, in a segment filled to
                // within a header of its size, up to its end) are the normal end of a segment.
                Parsed::Invalid(InvalidRecord::Zero) if !scanned => {
                    self.current = None;
                    continue;
                }
                Parsed::Invalid(InvalidRecord::ShortHeader)
                    if !scanned && reader.data().iter().all(|&b| b == 0) =>
                {
                    self.current = None;
                    continue;
                }
                Parsed::Invalid(why) => {
                    let reason = damage_reason(scanned, why);
                    return Err(self.location.corrupt(&reader.path, offset, reason));
                }
                Parsed::NeedBytes(_) => {
                    unreachable!("parse_record with at_eof never asks for more")
                }
            };
            if sequence != self.next_sequence {
                return Err(self.location.corrupt(
                    &reader.path,
                    offset,
                    format!(
                        "{}expected sequence {}, found {sequence}",
                        if scanned { "record changed since recovery: " } else { "" },
                        self.next_sequence
                    ),
                ));
            }
            self.next_sequence += 1;
            if sequence < self.from_sequence {
                reader.consume(total);
                continue;
            }
            self.pending_consume = total;
            break;
        }
        // Rebuilt from the checked bytes: returning the borrow from inside the loop is not
        // expressible in today's borrow checker, and parsing twice would cost a second CRC.
        let (reader, _) = self.current.as_ref().expect("a record was found");
        let (timestamp_ns, payload_len) = self.found;
        Ok(Some(Record {
            sequence: self.next_sequence - 1,
            timestamp_ns,
            payload: &reader.data()[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + payload_len],
        }))
    }

    /// Opens the next segment and checks that it continues the sequence; `false` after the last.
    fn open_next_segment(&mut self) -> Result<bool, JournalError> {
        let Some(segment) = self.segments.get(self.next_segment) else {
            return Ok(false);
        };
        let mut reader = ChunkReader::open(&segment.path)?;
        let header = read_header(&self.location, &mut reader, segment.first_sequence)?;
        if header.first_sequence != self.next_sequence {
            return Err(self.location.corrupt(
                &reader.path,
                16,
                format!(
                    "segment starts at sequence {} but the previous segment ends at sequence {} \
                     (records are missing)",
                    header.first_sequence,
                    self.next_sequence - 1
                ),
            ));
        }
        self.current = Some((reader, segment.data_end));
        self.next_segment += 1;
        self.pending_consume = 0;
        Ok(true)
    }

    /// After the last record: an unscanned reader asked to start past the end says so now.
    fn end(&self) -> Result<Option<Record<'_>>, JournalError> {
        if self.from_sequence > self.next_sequence {
            return Err(JournalError::SequenceBeyondEnd {
                requested: self.from_sequence,
                last: self.next_sequence - 1,
            });
        }
        Ok(None)
    }
}

fn damage_reason(scanned: bool, why: InvalidRecord) -> String {
    if scanned {
        format!("record changed since recovery: {why}")
    } else {
        // Nothing told this reader where the records end: a torn tail that the writer's next
        // open would cut looks the same as damage here.
        format!(
            "damaged record ({why}); if the journal's writer crashed and has not reopened it since, \
             this may be the torn tail of its last commit, which its next open cuts off"
        )
    }
}
