//! Replay: streams recovered records back in order through one fixed read buffer.

use crate::error::JournalError;
use crate::format::{le_u32, parse_record, record_total_bytes, Parsed, Record, RECORD_HEADER_BYTES};
use crate::scan::{read_header, ChunkReader, JournalLocation};
use crate::writer::SegmentSummary;

/// Yields recovered records with `sequence >= from_sequence`. Records are re-checked against
/// their checksums as they are read; anything that changed since recovery is `Corrupt`.
pub struct JournalReader {
    location: JournalLocation,
    segments: Vec<SegmentSummary>,
    next_segment: usize,
    current: Option<(ChunkReader, u64)>,
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
    pub(crate) fn new(
        location: JournalLocation,
        segments: Vec<SegmentSummary>,
        from_sequence: u64,
    ) -> Result<JournalReader, JournalError> {
        let first = segments.first().map_or(1, |s| s.first_sequence);
        let next = segments.last().map_or(1, |s| s.first_sequence + s.record_count);
        if from_sequence < first {
            return Err(JournalError::SequenceNotRetained {
                requested: from_sequence,
                first_available: first,
            });
        }
        if from_sequence > next {
            return Err(JournalError::SequenceBeyondEnd { requested: from_sequence, last: next - 1 });
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

    /// The next record, or `None` after the last recovered one.
    #[allow(clippy::should_implement_trait)] // a lending iterator: the record borrows the buffer
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        loop {
            if self.current.is_none() {
                let Some(segment) = self.segments.get(self.next_segment) else {
                    return Ok(None);
                };
                let mut reader = ChunkReader::open(&segment.path)?;
                let header = read_header(&self.location, &mut reader, segment.first_sequence)?;
                assert_eq!(header.first_sequence, self.next_sequence, "recovered segments are contiguous");
                self.current = Some((reader, segment.data_end_offset));
                self.next_segment += 1;
                self.pending_consume = 0;
            }
            let (reader, data_end) = self.current.as_mut().expect("set above");
            reader.consume(self.pending_consume);
            self.pending_consume = 0;
            if reader.offset() >= *data_end {
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
                Parsed::Invalid(why) => {
                    return Err(self.location.corrupt(
                        &reader.path,
                        offset,
                        format!("record changed since recovery: {why}"),
                    ))
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
                        "record changed since recovery: expected sequence {}, found {sequence}",
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
}
