//! Reading segments: listing them, validating every record, and deciding what a damaged end of
//! the journal is (see "Recovery rules" in FORMAT.md).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::format::{
    le_u64, parse_record, HeaderProblem, InvalidRecord, Parsed, Record, SegmentHeader, FORMAT_VERSION,
    RECORD_ALIGN_BYTES, RECORD_BYTES_LIMIT, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, SEGMENT_SUFFIX,
    TEMP_SUFFIX,
};

/// Read buffer of every reader: large reads keep replay at memory speed; it must hold two of the
/// largest records so a record never has to be split.
const READ_CHUNK_BYTES: usize =
    if 4 << 20 > 2 * RECORD_BYTES_LIMIT { 4 << 20 } else { 2 * RECORD_BYTES_LIMIT };

/// Where a journal lives; carried for error messages that tell the operator what to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalLocation {
    pub dir: PathBuf,
    pub file_prefix: String,
}

impl JournalLocation {
    pub fn new(dir: impl Into<PathBuf>, file_prefix: impl Into<String>) -> JournalLocation {
        JournalLocation { dir: dir.into(), file_prefix: file_prefix.into() }
    }

    pub(crate) fn corrupt(&self, file: &Path, offset: u64, reason: impl Into<String>) -> JournalError {
        JournalError::Corrupt {
            dir: self.dir.clone(),
            prefix: self.file_prefix.clone(),
            file: file.to_owned(),
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn segment_path(&self, first_sequence: u64) -> PathBuf {
        self.dir.join(crate::format::segment_file_name(&self.file_prefix, first_sequence))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SegmentFile {
    pub path: PathBuf,
    pub first_sequence: u64,
}

pub(crate) struct Listing {
    pub segments: Vec<SegmentFile>,
    /// Segments being created when a previous process died; never hold acknowledged records.
    pub temp_files: Vec<PathBuf>,
}

/// Segment files of this prefix, ordered by first sequence. Other files are ignored, so two
/// journals (input and output) can share a directory.
pub(crate) fn list_segments(location: &JournalLocation) -> Result<Listing, JournalError> {
    let dir = &location.dir;
    let entries = std::fs::read_dir(dir).map_err(JournalError::io("list directory", dir))?;
    let stem_prefix = format!("{}-", location.file_prefix);
    let mut listing = Listing { segments: Vec::new(), temp_files: Vec::new() };
    for entry in entries {
        let entry = entry.map_err(JournalError::io("list directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(&stem_prefix) else {
            continue;
        };
        let (rest, is_temp) = match rest.strip_suffix(TEMP_SUFFIX) {
            Some(rest) => (rest, true),
            None => (rest, false),
        };
        let Some(digits) = rest.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        let path = entry.path();
        let sequence = (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
            .flatten();
        match (sequence, is_temp) {
            (_, true) => listing.temp_files.push(path),
            (Some(first_sequence), false) => listing.segments.push(SegmentFile { path, first_sequence }),
            (None, false) => return Err(JournalError::UnexpectedFile { path }),
        }
    }
    listing.segments.sort_by_key(|s| s.first_sequence);
    listing.temp_files.sort();
    Ok(listing)
}

/// The prefixes of the journals that have segments in `dir`, sorted; an absent directory has
/// none. Several journals share a directory (the gateway's output journals, one per account).
pub fn journal_prefixes(dir: &Path) -> Result<Vec<String>, JournalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(JournalError::io("list directory", dir)(e)),
    };
    let mut prefixes = std::collections::BTreeSet::new();
    for entry in entries {
        let name = entry.map_err(JournalError::io("list directory", dir))?.file_name();
        let Some((prefix, digits)) =
            name.to_str().and_then(|n| n.strip_suffix(SEGMENT_SUFFIX)).and_then(|n| n.rsplit_once('-'))
        else {
            continue;
        };
        if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
            prefixes.insert(prefix.to_owned());
        }
    }
    Ok(prefixes.into_iter().collect())
}

/// Sequential reader over one file with a fixed buffer; `pread`, so no shared file position.
pub(crate) struct ChunkReader {
    file: File,
    pub path: PathBuf,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// File offset of `buf[end]`.
    file_pos: u64,
    pub file_len: u64,
}

impl ChunkReader {
    pub fn open(path: &Path) -> Result<ChunkReader, JournalError> {
        let file = File::open(path).map_err(JournalError::io("open", path))?;
        let file_len = file.metadata().map_err(JournalError::io("stat", path))?.len();
        Ok(ChunkReader {
            file,
            path: path.to_owned(),
            buf: vec![0u8; READ_CHUNK_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            file_pos: 0,
            file_len,
        })
    }

    /// File offset of the first byte of `data()`.
    pub fn offset(&self) -> u64 {
        self.file_pos - (self.end - self.start) as u64
    }

    /// True when `data()` runs to the end of the file.
    pub fn at_eof(&self) -> bool {
        self.file_pos >= self.file_len
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.end - self.start, "consumed past the buffered data");
        self.start += n;
    }

    pub fn seek(&mut self, offset: u64) {
        self.start = 0;
        self.end = 0;
        self.file_pos = offset;
    }

    /// Makes `data()` at least `want` bytes long, unless the file ends first.
    pub fn fill(&mut self, want: usize) -> Result<(), JournalError> {
        assert!(want <= self.buf.len(), "read of {want} bytes exceeds the reader's buffer");
        if self.end - self.start >= want || self.at_eof() {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < want && !self.at_eof() {
            let room = (self.buf.len() - self.end).min((self.file_len - self.file_pos) as usize);
            let n = self
                .file
                .read_at(&mut self.buf[self.end..self.end + room], self.file_pos)
                .map_err(JournalError::io("read", &self.path))?;
            if n == 0 {
                // The file shrank under us: treat what we have as its end.
                self.file_len = self.file_pos;
                break;
            }
            self.end += n;
            self.file_pos += n as u64;
        }
        Ok(())
    }
}

/// Reads and checks a segment's header page.
pub(crate) fn read_header(
    location: &JournalLocation,
    reader: &mut ChunkReader,
    name_sequence: u64,
) -> Result<SegmentHeader, JournalError> {
    let path = reader.path.clone();
    if reader.file_len < SEGMENT_HEADER_BYTES {
        return Err(location.corrupt(
            &path,
            0,
            format!(
                "file is {} bytes, shorter than the {SEGMENT_HEADER_BYTES}-byte segment header",
                reader.file_len
            ),
        ));
    }
    reader.seek(0);
    reader.fill(SEGMENT_HEADER_BYTES as usize)?;
    let header = SegmentHeader::decode(&reader.data()[..SEGMENT_HEADER_BYTES as usize])
        .map_err(|problem| header_error(location, &path, problem))?;
    reader.consume(SEGMENT_HEADER_BYTES as usize);
    if header.first_sequence != name_sequence {
        return Err(location.corrupt(
            &path,
            16,
            format!(
                "segment header says first sequence {} but the file name says {name_sequence}",
                header.first_sequence
            ),
        ));
    }
    Ok(header)
}

/// Why a segment header was refused: a newer format, or damage.
pub(crate) fn header_error(location: &JournalLocation, path: &Path, problem: HeaderProblem) -> JournalError {
    match problem {
        HeaderProblem::Version(found) if found > FORMAT_VERSION => {
            JournalError::NewerFormat { file: path.to_owned(), found }
        }
        problem => location.corrupt(path, 0, problem.to_string()),
    }
}

/// A damaged end of the newest segment that no later commit depends on: what a crash during
/// the last commit leaves behind. Reported, and (by the writer only) cut off.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TornTail {
    pub file: PathBuf,
    /// Offset of the first byte that is not part of a valid record; everything from here on
    /// was, or would be, discarded.
    pub offset: u64,
    pub reason: String,
    /// Checksum-valid records of that same last commit found after the damage. They were never
    /// acknowledged (their commit did not finish), and replaying them would leave a gap.
    pub discarded_records: u64,
    /// Bytes from `offset` to the end of the last non-zero byte.
    pub damaged_bytes: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct SegmentScan {
    pub header: SegmentHeader,
    pub file_len: u64,
    /// Offset just past the last valid record.
    pub data_end: u64,
    pub records: u64,
    pub first_timestamp_ns: Option<u64>,
    pub last_timestamp_ns: Option<u64>,
    pub tail: Option<TornTail>,
}

impl SegmentScan {
    /// Sequence the next record after this segment must carry.
    pub fn next_sequence(&self) -> u64 {
        self.header.first_sequence + self.records
    }
}

/// Validates one segment record by record, calling `on_record` for each valid record with its
/// file offset. `expected_first` is the sequence the previous segment says comes next.
pub(crate) fn scan_segment(
    location: &JournalLocation,
    segment: &SegmentFile,
    expected_first: Option<u64>,
    is_last: bool,
    on_record: &mut dyn FnMut(Record<'_>, u64) -> Result<(), JournalError>,
) -> Result<SegmentScan, JournalError> {
    let mut reader = ChunkReader::open(&segment.path)?;
    let path = segment.path.clone();
    let header = read_header(location, &mut reader, segment.first_sequence)?;
    if let Some(expected) = expected_first {
        if header.first_sequence != expected {
            return Err(location.corrupt(
                &path,
                16,
                format!(
                    "segment starts at sequence {} but the previous segment ends at sequence {} \
                     (records are missing)",
                    header.first_sequence,
                    expected - 1
                ),
            ));
        }
    }
    if !is_last && reader.file_len != header.segment_bytes {
        return Err(location.corrupt(
            &path,
            reader.file_len.min(header.segment_bytes),
            format!(
                "segment file is {} bytes but its header says {} (a later segment exists, so \
                 this one was complete)",
                reader.file_len, header.segment_bytes
            ),
        ));
    }

    let mut next_sequence = header.first_sequence;
    let mut scan = SegmentScan {
        header,
        file_len: reader.file_len,
        data_end: SEGMENT_HEADER_BYTES,
        records: 0,
        first_timestamp_ns: None,
        last_timestamp_ns: None,
        tail: None,
    };
    let invalid = loop {
        reader.fill(RECORD_HEADER_BYTES)?;
        let offset = reader.offset();
        let step = match parse_record(reader.data(), reader.at_eof()) {
            Parsed::NeedBytes(n) => {
                reader.fill(n)?;
                continue;
            }
            Parsed::Invalid(why) => break why,
            Parsed::Valid(raw) => {
                let record = raw.record;
                if record.sequence != next_sequence {
                    return Err(location.corrupt(
                        &path,
                        offset,
                        format!("sequence gap: expected sequence {next_sequence}, found {}", record.sequence),
                    ));
                }
                on_record(record, offset)?;
                scan.first_timestamp_ns.get_or_insert(record.timestamp_ns);
                scan.last_timestamp_ns = Some(record.timestamp_ns);
                raw.total_bytes
            }
        };
        reader.consume(step);
        next_sequence += 1;
        scan.records += 1;
        scan.data_end = reader.offset();
    };
    scan.tail = classify_tail(location, &mut reader, &scan, invalid, next_sequence, is_last)?;
    Ok(scan)
}

/// Looks at everything after the last valid record. Zeroes to the preallocated size are the
/// normal end. Anything else is a torn tail if it is in the newest segment and no record of a
/// later commit follows it; otherwise the journal is refused.
fn classify_tail(
    location: &JournalLocation,
    reader: &mut ChunkReader,
    scan: &SegmentScan,
    invalid: InvalidRecord,
    next_sequence: u64,
    is_last: bool,
) -> Result<Option<TornTail>, JournalError> {
    let damage_offset = scan.data_end;
    let last_good_sequence = next_sequence - 1;
    let mut first_nonzero: Option<u64> = None;
    let mut nonzero_end = damage_offset;
    let mut discarded_records = 0u64;
    loop {
        reader.fill(RECORD_HEADER_BYTES + RECORD_ALIGN_BYTES)?;
        let data = reader.data();
        if data.len() < RECORD_ALIGN_BYTES {
            // An unaligned file end (truncation or appended garbage).
            if let Some(at) = data.iter().position(|&b| b != 0) {
                first_nonzero.get_or_insert(reader.offset() + at as u64);
                let last = data.iter().rposition(|&b| b != 0).expect("a non-zero byte exists");
                nonzero_end = reader.offset() + last as u64 + 1;
            }
            let n = data.len();
            reader.consume(n);
            break;
        }
        // A valid record has a non-zero sequence in its second word, so a zero word followed
        // by a zero word cannot start one: skip such runs in bulk.
        let zero_words = data.chunks_exact(RECORD_ALIGN_BYTES).take_while(|w| le_u64(w, 0) == 0).count();
        if zero_words >= 2 {
            reader.consume((zero_words - 1) * RECORD_ALIGN_BYTES);
            continue;
        }
        let offset = reader.offset();
        if zero_words == 0 {
            let word = le_u64(data, 0);
            first_nonzero.get_or_insert(offset + u64::from(word.trailing_zeros() / 8));
            nonzero_end = nonzero_end.max(offset + 8 - u64::from(word.leading_zeros() / 8));
        }
        let step = if offset == damage_offset {
            RECORD_ALIGN_BYTES
        } else {
            match parse_record(data, reader.at_eof()) {
                Parsed::NeedBytes(n) => {
                    reader.fill(n)?;
                    continue;
                }
                Parsed::Invalid(_) => RECORD_ALIGN_BYTES,
                Parsed::Valid(raw) => {
                    let sequence = raw.record.sequence;
                    if !is_last
                        || sequence <= last_good_sequence
                        || raw.batch_first_sequence() > next_sequence
                    {
                        let why = if !is_last {
                            "and a later segment exists".to_owned()
                        } else if sequence <= last_good_sequence {
                            format!("and an out-of-place record with sequence {sequence} follows at offset {offset}")
                        } else {
                            format!(
                                "and a record of a later commit (sequence {sequence}) follows at offset {offset}, \
                                 so the damaged record was acknowledged"
                            )
                        };
                        return Err(location.corrupt(
                            &reader.path,
                            damage_offset,
                            format!("damaged record ({invalid}) {why}"),
                        ));
                    }
                    discarded_records += 1;
                    nonzero_end = nonzero_end.max(offset + raw.total_bytes as u64);
                    raw.total_bytes
                }
            }
        };
        reader.consume(step);
    }

    let length_ok = reader.file_len == scan.header.segment_bytes;
    let Some(first_nonzero) = first_nonzero else {
        if length_ok {
            return Ok(None);
        }
        // Only the newest segment gets here (older ones were length-checked): a shortened file
        // may have lost whole records at its end, so this is reported, never taken as normal.
        return Ok(Some(TornTail {
            file: reader.path.clone(),
            offset: damage_offset.min(reader.file_len),
            reason: format!(
                "segment file is {} bytes but was preallocated to {} bytes",
                reader.file_len, scan.header.segment_bytes
            ),
            discarded_records,
            damaged_bytes: 0,
        }));
    };
    if !is_last {
        return Err(location.corrupt(
            &reader.path,
            first_nonzero,
            if first_nonzero == damage_offset {
                format!("damaged record ({invalid}) and a later segment exists")
            } else {
                "non-zero bytes after the last record, and a later segment exists".to_owned()
            },
        ));
    }
    let reason = if first_nonzero == damage_offset {
        format!("incomplete or damaged record ({invalid})")
    } else {
        format!("non-zero bytes at offset {first_nonzero} after the last record")
    };
    Ok(Some(TornTail {
        file: reader.path.clone(),
        offset: damage_offset,
        reason,
        discarded_records,
        damaged_bytes: nonzero_end - damage_offset,
    }))
}
