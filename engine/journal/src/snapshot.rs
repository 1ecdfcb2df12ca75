//! Snapshot files: one complete image of the core state at a sequence, written atomically.
//!
//! Layout (little-endian): a 64-byte header (magic `PTRLSNAP`, u32 version, u32 zero, u64
//! sequence, u64 payload bytes, u64 created unix ns, u32 payload crc32c, 16 zero bytes, u32
//! crc32c of bytes 0..60) followed by the payload. Named `snapshot-{sequence:020}.snap`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::format::{le_u32, le_u64};

pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"PTRLSNAP";
/// The snapshot file format this build writes and reads. Bumped on any incompatible change of
/// the file (this header) or of what it holds (the core's state encoding, `PTRLSTAT`, whose own
/// version is checked again when the state is restored). Like segments, later versions keep the
/// magic, this version (8..12) and the header checksum (60..64) where they are.
pub const SNAPSHOT_VERSION: u32 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 64;
const FILE_PREFIX: &str = "snapshot-";
const FILE_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".snap.tmp";

/// The core state as of `sequence`: replay the journal from `sequence + 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub sequence: u64,
    pub created_unix_ns: u64,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot I/O error: cannot {action} {path}: {source}", path = path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The newest snapshot is damaged. Falling back silently to an older one would be correct
    /// only if the journal still holds every record after it, which retention may have broken,
    /// so the decision is the operator's.
    #[error(
        "snapshot {path} is corrupt: {reason}. The engine will not start from it. If the journal \
         still holds every record after an older snapshot (see `petrel-engine journal stats`), \
         move this file out of {dir} to start from that one",
        path = path.display(),
        dir = path.parent().map(|d| d.display().to_string()).unwrap_or_default()
    )]
    Corrupt { path: PathBuf, reason: String },
    /// An intact snapshot in a format newer than this build reads.
    #[error(
        "snapshot {path} is in snapshot format {found}, which this build of petrel-engine does \
         not read (it reads snapshot format {reads}): a newer petrel-engine wrote it. Install a \
         petrel-engine that reads snapshot format {found} (`petrel-engine --version` lists the \
         formats a build reads); nothing was changed",
        path = path.display(),
        reads = SNAPSHOT_VERSION
    )]
    NewerFormat { path: PathBuf, found: u32 },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io { action, path: path.to_owned(), source }
}

fn snapshot_file_name(sequence: u64) -> String {
    format!("{FILE_PREFIX}{sequence:020}{FILE_SUFFIX}")
}

/// Writes a snapshot so that a crash at any point leaves either the complete new file or no
/// new file: write a temporary file, fsync it, rename it into place, fsync the directory.
pub fn write_snapshot(dir: &Path, sequence: u64, bytes: &[u8]) -> Result<PathBuf, SnapshotError> {
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let path = dir.join(snapshot_file_name(sequence));
    let temp = dir.join(format!("{FILE_PREFIX}{sequence:020}{TEMP_SUFFIX}"));
    let created_unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&sequence.to_le_bytes());
    header[24..32].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    header[32..40].copy_from_slice(&created_unix_ns.to_le_bytes());
    header[40..44].copy_from_slice(&crc32c::crc32c(bytes).to_le_bytes());
    let header_crc = crc32c::crc32c(&header[..60]);
    header[60..64].copy_from_slice(&header_crc.to_le_bytes());

    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(io_err("create", &temp))?;
    file.write_all(&header).map_err(io_err("write", &temp))?;
    file.write_all(bytes).map_err(io_err("write", &temp))?;
    file.sync_all().map_err(io_err("fsync", &temp))?;
    drop(file);
    std::fs::rename(&temp, &path).map_err(io_err("rename into place", &temp))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))?;
    Ok(path)
}

/// Snapshot files in `dir` by sequence, oldest first; temporary files of interrupted writes
/// are not snapshots and are skipped.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io_err("list directory", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list directory", dir))?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX))
        else {
            continue;
        };
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(sequence) = digits.parse::<u64>() {
            found.push((sequence, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Loads the newest snapshot in `dir`, or `None` when there is none. A damaged newest snapshot
/// is an error, never skipped (see `SnapshotError::Corrupt`).
pub fn latest_snapshot(dir: &Path) -> Result<Option<Snapshot>, SnapshotError> {
    match list_snapshots(dir)?.pop() {
        None => Ok(None),
        Some((sequence, path)) => read_snapshot(&path, sequence).map(Some),
    }
}

/// Reads and verifies one snapshot file.
pub fn read_snapshot(path: &Path, name_sequence: u64) -> Result<Snapshot, SnapshotError> {
    let corrupt = |reason: String| SnapshotError::Corrupt { path: path.to_owned(), reason };
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(io_err("read", path))?;
    if data.len() < SNAPSHOT_HEADER_BYTES {
        return Err(corrupt(format!(
            "file is {} bytes, shorter than the {SNAPSHOT_HEADER_BYTES}-byte header",
            data.len()
        )));
    }
    let header = &data[..SNAPSHOT_HEADER_BYTES];
    if header[0..8] != SNAPSHOT_MAGIC {
        return Err(corrupt("bad magic: not a Petrel snapshot".into()));
    }
    let stored = le_u32(header, 60);
    let computed = crc32c::crc32c(&header[..60]);
    if stored != computed {
        return Err(corrupt(format!(
            "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    let version = le_u32(header, 8);
    if version > SNAPSHOT_VERSION {
        return Err(SnapshotError::NewerFormat { path: path.to_owned(), found: version });
    }
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(format!(
            "snapshot format version {version} is not supported (this build reads {SNAPSHOT_VERSION})"
        )));
    }
    let sequence = le_u64(header, 16);
    if sequence != name_sequence {
        return Err(corrupt(format!(
            "header says sequence {sequence} but the file name says {name_sequence}"
        )));
    }
    let payload_bytes = le_u64(header, 24);
    let payload = &data[SNAPSHOT_HEADER_BYTES..];
    if payload.len() as u64 != payload_bytes {
        return Err(corrupt(format!(
            "header says {payload_bytes} payload bytes, the file holds {}",
            payload.len()
        )));
    }
    let payload_stored = le_u32(header, 40);
    let payload_computed = crc32c::crc32c(payload);
    if payload_stored != payload_computed {
        return Err(corrupt(format!(
            "payload checksum mismatch (stored {payload_stored:#010x}, computed {payload_computed:#010x})"
        )));
    }
    let created_unix_ns = le_u64(header, 32);
    data.drain(..SNAPSHOT_HEADER_BYTES);
    Ok(Snapshot { sequence, created_unix_ns, path: path.to_owned(), bytes: data })
}

/// Deletes all but the `keep` newest snapshots (and leftovers of interrupted writes); returns
/// the deleted paths. `keep` must be at least 1: the newest snapshot is what restart needs.
pub fn prune_snapshots(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, SnapshotError> {
    prune_snapshots_except(dir, keep, None)
}

/// [`prune_snapshots`], also keeping the snapshot of sequence `except` (one a restart still
/// needs beyond the newest `keep`).
pub fn prune_snapshots_except(
    dir: &Path,
    keep: usize,
    except: Option<u64>,
) -> Result<Vec<PathBuf>, SnapshotError> {
    assert!(keep >= 1, "pruning must keep the newest snapshot");
    let snapshots = list_snapshots(dir)?;
    let mut deleted = Vec::new();
    let old = snapshots.iter().take(snapshots.len().saturating_sub(keep));
    for (_, path) in old.filter(|(sequence, _)| Some(*sequence) != except) {
        std::fs::remove_file(path).map_err(io_err("remove", path))?;
        deleted.push(path.clone());
    }
    let entries = std::fs::read_dir(dir).map_err(io_err("list directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err("list directory", dir))?;
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(TEMP_SUFFIX));
        if is_temp {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            deleted.push(path);
        }
    }
    if !deleted.is_empty() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))?;
    }
    Ok(deleted)
}
