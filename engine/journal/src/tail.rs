//! Following a journal another thread is writing: what a primary ships to its standby.
//!
//! [`JournalReader`](crate::JournalReader) reads ahead through a buffer, so bytes it read while
//! a commit was being written can be half a record; it is meant for journals at rest. A
//! [`JournalTail`] is given a limit with every read, a sequence up to which the writer has
//! completely written its records (`JournalWriter::commit_notifying`, or the durable mark), and
//! never reads or parses past the last record at or below it:
//! each read starts with a fresh `pread` at the offset where the previous one stopped, so
//! nothing read before a commit finished is ever looked at again.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::JournalError;
use crate::format::{parse_record, Parsed, RECORD_BYTES_LIMIT, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use crate::scan::{list_segments, read_header, ChunkReader, JournalLocation};

/// How much one `pread` asks for.
const READ_BYTES: usize = 64 << 10;

/// One record as shipped: owned bytes in a caller's batch buffer, no allocation per record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailRecord {
    pub sequence: u64,
    pub timestamp_ns: u64,
    /// Where the payload lies in the batch buffer `read` filled.
    pub payload_at: usize,
    pub payload_len: usize,
}

/// Reads records `from_sequence` onward, up to a limit given with each read.
pub struct JournalTail {
    location: JournalLocation,
    /// The segment holding `next_sequence`, and the offset of that record in it.
    segment: Option<(File, std::path::PathBuf, u64)>,
    next_sequence: u64,
    buf: Box<[u8]>,
}

impl std::fmt::Debug for JournalTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalTail").field("next_sequence", &self.next_sequence).finish_non_exhaustive()
    }
}

impl JournalTail {
    /// Positions at `from_sequence` (which must be retained: `SequenceNotRetained` otherwise),
    /// reading the records before it in its segment to find its offset.
    pub fn open(location: &JournalLocation, from_sequence: u64) -> Result<JournalTail, JournalError> {
        let mut tail = JournalTail {
            location: location.clone(),
            segment: None,
            next_sequence: from_sequence,
            buf: vec![0u8; READ_BYTES.max(RECORD_BYTES_LIMIT)].into_boxed_slice(),
        };
        tail.open_segment_holding(from_sequence)?;
        Ok(tail)
    }

    /// The sequence the next read starts at.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Where the next record starts, if it is in the segment at `path`.
    pub(crate) fn offset_in(&self, path: &std::path::Path) -> Option<u64> {
        self.segment.as_ref().filter(|(_, p, _)| p == path).map(|(_, _, offset)| *offset)
    }

    /// Appends records with sequences up to `limit` (at most `max_bytes` of payload, at least
    /// one record when there is one) to `out`, their payloads to `payloads`. `limit` must be a
    /// durable mark of the journal's writer: every record up to it is completely written.
    pub fn read(
        &mut self,
        limit: u64,
        max_bytes: usize,
        out: &mut Vec<TailRecord>,
        payloads: &mut Vec<u8>,
    ) -> Result<(), JournalError> {
        let mut taken = 0usize;
        while self.next_sequence <= limit && (taken == 0 || taken < max_bytes) {
            if self.segment.is_none() {
                self.open_segment_holding(self.next_sequence)?;
            }
            let (file, path, offset) = self.segment.as_mut().expect("opened above");
            let n = read_at(file, path, &mut self.buf, *offset)?;
            let mut at = 0usize;
            let mut moved = false;
            while self.next_sequence <= limit && (taken == 0 || taken < max_bytes) {
                match parse_record(&self.buf[at..n], false) {
                    Parsed::Valid(raw) if raw.record.sequence == self.next_sequence => {
                        let record = raw.record;
                        out.push(TailRecord {
                            sequence: record.sequence,
                            timestamp_ns: record.timestamp_ns,
                            payload_at: payloads.len(),
                            payload_len: record.payload.len(),
                        });
                        payloads.extend_from_slice(record.payload);
                        taken += record.payload.len().max(1);
                        at += raw.total_bytes;
                        self.next_sequence += 1;
                        moved = true;
                    }
                    Parsed::NeedBytes(_) if at > 0 => break,
                    // A zero header (or the segment's end) at a sequence the writer made durable:
                    // the records go on in the next segment.
                    Parsed::Invalid(crate::format::InvalidRecord::Zero) | Parsed::NeedBytes(_)
                        if is_zero(&self.buf[at..n.min(at + RECORD_HEADER_BYTES)]) =>
                    {
                        self.segment = None;
                        break;
                    }
                    other => {
                        let offset = *offset + at as u64;
                        let why = match other {
                            Parsed::Valid(raw) => format!(
                                "expected sequence {}, found {} (the journal changed under the reader)",
                                self.next_sequence, raw.record.sequence
                            ),
                            Parsed::Invalid(why) => format!("damaged record below the durable mark ({why})"),
                            Parsed::NeedBytes(_) => "record larger than the read buffer".to_owned(),
                        };
                        return Err(self.location.corrupt(path, offset, why));
                    }
                }
            }
            if let Some((_, _, offset)) = self.segment.as_mut() {
                *offset += at as u64;
            }
            if !moved && self.segment.is_some() {
                // Nothing parsed and no segment change: the limit is ahead of what is written.
                break;
            }
        }
        Ok(())
    }

    /// Opens the segment whose records include `sequence` and finds its offset.
    fn open_segment_holding(&mut self, sequence: u64) -> Result<(), JournalError> {
        let listing = list_segments(&self.location)?;
        let index = listing.segments.partition_point(|s| s.first_sequence <= sequence);
        let Some(segment) = index.checked_sub(1).map(|i| &listing.segments[i]) else {
            let first_available = listing.segments.first().map_or(1, |s| s.first_sequence);
            return Err(JournalError::SequenceNotRetained { requested: sequence, first_available });
        };
        let header =
            read_header(&self.location, &mut ChunkReader::open(&segment.path)?, segment.first_sequence)?;
        let file = File::open(&segment.path).map_err(JournalError::io("open", &segment.path))?;
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut next = header.first_sequence;
        // Skip the records before `sequence` (each checked as it is read).
        while next < sequence {
            let n = read_at(&file, &segment.path, &mut self.buf, offset)?;
            let mut at = 0;
            while next < sequence {
                match parse_record(&self.buf[at..n], false) {
                    Parsed::Valid(raw) if raw.record.sequence == next => {
                        at += raw.total_bytes;
                        next += 1;
                    }
                    Parsed::NeedBytes(_) if at > 0 => break,
                    _ => {
                        return Err(self.location.corrupt(
                            &segment.path,
                            offset + at as u64,
                            format!("sequence {sequence} is not in the segment that should hold it"),
                        ))
                    }
                }
            }
            offset += at as u64;
        }
        self.segment = Some((file, segment.path.clone(), offset));
        Ok(())
    }
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

fn read_at(file: &File, path: &std::path::Path, buf: &mut [u8], offset: u64) -> Result<usize, JournalError> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(read) => n += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(JournalError::Io { action: "read", path: path.to_owned(), source: e }),
        }
    }
    Ok(n)
}
