//! Read-only operator tools behind `petrel-engine journal verify|stats|dump`. None of these
//! modifies a file: a torn tail is reported, not cut (only `Journal::open` repairs).

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::JournalError;
use crate::format::{
    le_u32, le_u64, parse_record, Parsed, SegmentHeader, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::scan::{list_segments, scan_segment, ChunkReader, JournalLocation, TornTail};
use crate::writer::SegmentSummary;

/// Everything `verify` learned; also the numbers `stats` prints (both need the full scan).
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub dir: PathBuf,
    pub file_prefix: String,
    pub segments: Vec<SegmentSummary>,
    pub record_count: u64,
    pub first_sequence: Option<u64>,
    pub last_sequence: Option<u64>,
    pub first_timestamp_ns: Option<u64>,
    pub last_timestamp_ns: Option<u64>,
    /// Bytes of records (headers, payloads, padding) in all segments.
    pub record_bytes: u64,
    /// Bytes the segment files occupy (preallocated).
    pub file_bytes: u64,
    /// A torn tail that the next `Journal::open` will cut off.
    pub torn_tail: Option<TornTail>,
    /// Leftovers of an interrupted segment creation, removed by the next open.
    pub temp_files: Vec<PathBuf>,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        writeln!(f, "journal {} (prefix {})", self.dir.display(), self.file_prefix)?;
        writeln!(f, "  segments:    {}", self.segments.len())?;
        writeln!(f, "  records:     {}", self.record_count)?;
        writeln!(f, "  sequences:   {} ..= {}", opt(self.first_sequence), opt(self.last_sequence))?;
        writeln!(
            f,
            "  timestamps:  {} ..= {} (ns)",
            opt(self.first_timestamp_ns),
            opt(self.last_timestamp_ns)
        )?;
        writeln!(f, "  bytes:       {} in records, {} in files", self.record_bytes, self.file_bytes)?;
        for s in &self.segments {
            writeln!(
                f,
                "  {}  first {}  records {}  data end {}",
                s.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
                s.first_sequence,
                s.record_count,
                s.data_end_offset
            )?;
        }
        match &self.torn_tail {
            None => writeln!(f, "  status:      OK"),
            Some(t) => writeln!(
                f,
                "  status:      OK up to the torn tail in {} at offset {}: {} ({} unacknowledged \
                 records, {} bytes); the next engine start cuts it off",
                t.file.display(),
                t.offset,
                t.reason,
                t.discarded_records,
                t.damaged_bytes
            ),
        }
    }
}

/// Checks every record of every segment without changing anything. Damage other than a torn
/// tail is `Err(JournalError::Corrupt)`, exactly as `Journal::open` would refuse it.
pub fn verify(location: &JournalLocation) -> Result<VerifyReport, JournalError> {
    scan_all(location, &mut |_, _, _| Ok(()))
}

fn scan_all(
    location: &JournalLocation,
    on_record: &mut dyn FnMut(&Path, crate::Record<'_>, u64) -> Result<(), JournalError>,
) -> Result<VerifyReport, JournalError> {
    let listing = list_segments(location)?;
    let mut report = VerifyReport {
        dir: location.dir.clone(),
        file_prefix: location.file_prefix.clone(),
        segments: Vec::with_capacity(listing.segments.len()),
        record_count: 0,
        first_sequence: None,
        last_sequence: None,
        first_timestamp_ns: None,
        last_timestamp_ns: None,
        record_bytes: 0,
        file_bytes: 0,
        torn_tail: None,
        temp_files: listing.temp_files,
    };
    let mut expected_first = None;
    let last_index = listing.segments.len().checked_sub(1);
    for (index, segment) in listing.segments.iter().enumerate() {
        let path = segment.path.clone();
        let scan = scan_segment(
            location,
            segment,
            expected_first,
            Some(index) == last_index,
            &mut |record, offset| on_record(&path, record, offset),
        )?;
        expected_first = Some(scan.next_sequence());
        report.record_count += scan.records;
        report.record_bytes += scan.data_end - SEGMENT_HEADER_BYTES;
        report.file_bytes += scan.file_len;
        if scan.records > 0 {
            report.first_sequence.get_or_insert(scan.header.first_sequence);
            report.last_sequence = Some(scan.next_sequence() - 1);
            report.first_timestamp_ns = report.first_timestamp_ns.or(scan.first_timestamp_ns);
            report.last_timestamp_ns = scan.last_timestamp_ns;
        }
        report.torn_tail = scan.tail.clone();
        report.segments.push(SegmentSummary {
            path: segment.path.clone(),
            first_sequence: scan.header.first_sequence,
            record_count: scan.records,
            data_end_offset: scan.data_end,
            file_bytes: scan.file_len,
            first_timestamp_ns: scan.first_timestamp_ns,
            last_timestamp_ns: scan.last_timestamp_ns,
        });
    }
    Ok(report)
}

/// Output format of `dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpFormat {
    /// One line per record: `seq=… ts_ns=… len=… file=… offset=… payload=…`.
    Text,
    /// One JSON object per line, with the same fields.
    JsonLines,
}

/// The default payload rendering: lowercase hex.
pub fn hex_payload(payload: &[u8]) -> String {
    let mut out = String::with_capacity(payload.len() * 2);
    for b in payload {
        write!(out, "{b:02x}").expect("writing to a String cannot fail");
    }
    out
}

#[derive(Serialize)]
struct DumpLine<'a> {
    sequence: u64,
    timestamp_ns: u64,
    payload_len: usize,
    file: &'a str,
    offset: u64,
    payload: String,
}

/// Writes every record with `sequence >= from_sequence` to `out`, validating as it goes; the
/// engine supplies `payload_formatter` to decode commands (`hex_payload` otherwise). On damage
/// the records before it have been written and the error names the place. A torn tail is
/// written as a final comment (text) or `{"torn_tail": …}` object (JSON lines). Returns the
/// number of records written.
pub fn dump(
    location: &JournalLocation,
    from_sequence: u64,
    out: &mut dyn Write,
    format: DumpFormat,
    payload_formatter: &dyn Fn(&[u8]) -> String,
) -> Result<u64, JournalError> {
    let mut written = 0u64;
    let output_error =
        |source| JournalError::Io { action: "write dump output", path: PathBuf::from("-"), source };
    let report = scan_all(location, &mut |path, record, offset| {
        if record.sequence < from_sequence {
            return Ok(());
        }
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let payload = payload_formatter(record.payload);
        match format {
            DumpFormat::Text => writeln!(
                out,
                "seq={} ts_ns={} len={} file={file} offset={offset} payload={payload}",
                record.sequence,
                record.timestamp_ns,
                record.payload.len()
            ),
            DumpFormat::JsonLines => {
                let line = DumpLine {
                    sequence: record.sequence,
                    timestamp_ns: record.timestamp_ns,
                    payload_len: record.payload.len(),
                    file,
                    offset,
                    payload,
                };
                serde_json::to_writer(&mut *out, &line)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(out))
            }
        }
        .map_err(output_error)?;
        written += 1;
        Ok(())
    })?;
    if let Some(tail) = &report.torn_tail {
        match format {
            DumpFormat::Text => writeln!(
                out,
                "# torn tail in {} at offset {}: {} ({} unacknowledged records); cut off at the next engine start",
                tail.file.display(),
                tail.offset,
                tail.reason,
                tail.discarded_records
            ),
            DumpFormat::JsonLines => serde_json::to_writer(&mut *out, &serde_json::json!({ "torn_tail": tail }))
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out)),
        }
        .map_err(output_error)?;
    }
    Ok(written)
}

/// Forensics for `dump --file F --from-offset O`: decodes whatever lies at `offset` (the segment
/// header at 0, otherwise a record header, valid or not) and hex-dumps `bytes` bytes from there.
/// Works on damaged files, which is its purpose.
pub fn inspect_at(path: &Path, offset: u64, bytes: usize, out: &mut dyn Write) -> Result<(), JournalError> {
    let output_error =
        |source| JournalError::Io { action: "write dump output", path: PathBuf::from("-"), source };
    let mut reader = ChunkReader::open(path)?;
    reader.seek(offset);
    let want = bytes.clamp(RECORD_HEADER_BYTES, crate::format::RECORD_BYTES_LIMIT);
    reader.fill(want.max(SEGMENT_HEADER_BYTES as usize))?;
    let data = reader.data();
    let mut text = format!("{} ({} bytes), offset {offset}:\n", path.display(), reader.file_len);
    if offset == 0 && data.len() >= SEGMENT_HEADER_BYTES as usize {
        match SegmentHeader::decode(&data[..SEGMENT_HEADER_BYTES as usize]) {
            Ok(h) => writeln!(
                text,
                "  segment header: valid, first sequence {}, segment bytes {}, created unix ns {}",
                h.first_sequence, h.segment_bytes, h.created_unix_ns
            ),
            Err(problem) => writeln!(text, "  segment header: INVALID: {problem}"),
        }
        .expect("String write");
    } else if data.len() >= RECORD_HEADER_BYTES {
        let stored_crc = le_u32(data, 0);
        writeln!(
            text,
            "  record header: crc32c {stored_crc:#010x}, payload_len {}, sequence {}, timestamp_ns {}, batch_index {}, reserved {}",
            le_u32(data, 4),
            le_u64(data, 8),
            le_u64(data, 16),
            le_u32(data, 24),
            le_u32(data, 28)
        )
        .expect("String write");
        let verdict = match parse_record(data, true) {
            Parsed::Valid(raw) => format!("valid record, {} bytes on disk", raw.total_bytes),
            Parsed::Invalid(why) => format!("INVALID: {why}"),
            Parsed::NeedBytes(_) => unreachable!("parse_record with at_eof never asks for more"),
        };
        writeln!(text, "  verdict: {verdict}").expect("String write");
    } else {
        writeln!(text, "  fewer than {RECORD_HEADER_BYTES} bytes remain in the file").expect("String write");
    }
    for (line, chunk) in data[..bytes.min(data.len())].chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String =
            chunk.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect();
        writeln!(text, "  {:012x}  {:<47}  {ascii}", offset + line as u64 * 16, hex.join(" "))
            .expect("String write");
    }
    out.write_all(text.as_bytes()).map_err(output_error)
}
