//! The format versions of the files on disk, read from their headers alone: what an operator
//! checks before installing another build (`petrel-engine journal formats`). Segments and
//! snapshots keep their magic, their version (bytes 8..12) and their header checksum (CRC32C of
//! bytes 0..60, at 60..64) in place across versions, so any build can read them; a header whose
//! checksum fails is damage, and its version field says nothing.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::JournalError;
use crate::format::{le_u32, SEGMENT_MAGIC};
use crate::scan::{list_segments, JournalLocation};
use crate::snapshot::{list_snapshots, SnapshotError, SNAPSHOT_MAGIC};

/// Bytes of the header prefix every version keeps: magic, version, ..., checksum.
const STABLE_HEADER_BYTES: usize = 64;
const HEADER_CRC_OFFSET: usize = 60;

/// Why a header prefix could not be read: the file, or what is wrong with it.
enum HeaderRead {
    Io(std::io::Error),
    Damaged(String),
}

/// The version field of the header at the start of `path`, its magic and checksum checked.
fn header_version(path: &Path, magic: &[u8; 8]) -> Result<u32, HeaderRead> {
    let mut file = File::open(path).map_err(HeaderRead::Io)?;
    let mut header = [0u8; STABLE_HEADER_BYTES];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => {
                return Err(HeaderRead::Damaged(format!(
                    "file is {read} bytes, shorter than a {STABLE_HEADER_BYTES}-byte header"
                )))
            }
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HeaderRead::Io(e)),
        }
    }
    if header[..8] != magic[..] {
        return Err(HeaderRead::Damaged(format!("bad magic (expected {})", String::from_utf8_lossy(magic))));
    }
    let stored = le_u32(&header, HEADER_CRC_OFFSET);
    let computed = crc32c::crc32c(&header[..HEADER_CRC_OFFSET]);
    if stored != computed {
        return Err(HeaderRead::Damaged(format!(
            "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    Ok(le_u32(&header, 8))
}

/// The format version of one segment, from its header page (no record is read).
pub fn segment_format_version(location: &JournalLocation, path: &Path) -> Result<u32, JournalError> {
    header_version(path, &SEGMENT_MAGIC).map_err(|e| match e {
        HeaderRead::Io(source) => {
            JournalError::Io { action: "read the header of", path: path.to_owned(), source }
        }
        HeaderRead::Damaged(reason) => location.corrupt(path, 0, reason),
    })
}

/// The newest format version among the journal's segments, or `None` when it has none (or its
/// directory does not exist). Reads one header per segment; takes no lock, changes nothing.
pub fn newest_segment_format_version(location: &JournalLocation) -> Result<Option<u32>, JournalError> {
    if !location.dir.is_dir() {
        return Ok(None);
    }
    let mut newest = None;
    for segment in list_segments(location)?.segments {
        let version = segment_format_version(location, &segment.path)?;
        newest = newest.max(Some(version));
    }
    Ok(newest)
}

/// The format version of one snapshot file, from its header (the payload is not read).
pub fn snapshot_format_version(path: &Path) -> Result<u32, SnapshotError> {
    header_version(path, &SNAPSHOT_MAGIC).map_err(|e| match e {
        HeaderRead::Io(source) => {
            SnapshotError::Io { action: "read the header of", path: path.to_owned(), source }
        }
        HeaderRead::Damaged(reason) => SnapshotError::Corrupt { path: path.to_owned(), reason },
    })
}

/// The newest format version among the snapshots in `dir`, or `None` when there are none.
pub fn newest_snapshot_format_version(dir: &Path) -> Result<Option<u32>, SnapshotError> {
    let mut newest = None;
    for (_, path) in list_snapshots(dir)? {
        newest = newest.max(Some(snapshot_format_version(&path)?));
    }
    Ok(newest)
}
