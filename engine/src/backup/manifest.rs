//! `manifest.json`: what a backup holds and how to check it, written last (a backup without it
//! is incomplete) and read first by a restore.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{sync_dir, BackupError, JOURNAL_DIR, MARKET_DATA_DIR, SESSIONS_DIR, SNAPSHOTS_DIR};
use crate::journal_tools::FormatVersions;

/// The manifest's file name in a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Bumped on an incompatible change of the manifest or of the backup's layout.
pub const MANIFEST_VERSION: u32 = 1;
/// Bytes read at a time while checksumming.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// The backup's description (`manifest.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`] of the build that wrote it.
    pub manifest_version: u32,
    /// The petrel-engine version that took the backup.
    pub engine_version: String,
    /// The newest format versions among the backup's segments and snapshot (0: none).
    pub formats: FormatVersions,
    pub created_unix_ns: u64,
    /// The last input sequence the backup holds: a restore recovers to exactly this command.
    pub sequence: u64,
    /// Where `sequence` came from: `admin` (the running engine's durable sequence, from its
    /// admin endpoint's `/status`) or `journal` (the last complete record read).
    pub sequence_source: String,
    /// The engine's state hash at `sequence` (as `journal replay` prints it).
    pub state_hash: String,
    /// The sequence of the snapshot in `snapshots/`, if any.
    pub snapshot_sequence: Option<u64>,
    /// The input journal's segment file prefix (a restore renames to the target's).
    pub journal_file_prefix: String,
    /// The first input sequence the backup's journal holds (retention may have removed older).
    pub journal_first_sequence: Option<u64>,
    /// The configuration, journal and snapshot directories the backup was taken from.
    pub source_config: PathBuf,
    pub source_journal_dir: PathBuf,
    pub source_snapshots_dir: PathBuf,
    /// Every file of the backup but this manifest, by path relative to the backup directory.
    pub files: Vec<FileEntry>,
}

/// One file of a backup and its checksum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// `journal/NAME`, `snapshots/NAME` or `sessions/NAME`.
    pub path: String,
    pub bytes: u64,
    /// SHA-256 of the whole file, lower-case hex (what `sha256sum` prints).
    pub sha256: String,
}

/// The SHA-256 and length of a file.
pub(super) fn checksum(path: &Path) -> Result<(String, u64), BackupError> {
    let mut file = std::fs::File::open(path).map_err(BackupError::io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BackupError::io("read", path)(e)),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, bytes))
}

/// Entries for every file in the backup's three folders, sorted by path.
pub(super) fn list_files(backup: &Path) -> Result<Vec<FileEntry>, BackupError> {
    let mut files = Vec::new();
    for folder in [JOURNAL_DIR, SNAPSHOTS_DIR, SESSIONS_DIR, MARKET_DATA_DIR] {
        let dir = backup.join(folder);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BackupError::io("list", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(BackupError::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let (sha256, bytes) = checksum(&entry.path())?;
            files.push(FileEntry { path: format!("{folder}/{name}"), bytes, sha256 });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

impl Manifest {
    /// Writes `manifest.json` atomically (temporary file, fsync, rename, fsync the directory).
    pub(super) fn write(&self, backup: &Path) -> Result<(), BackupError> {
        let path = backup.join(MANIFEST_FILE);
        let temp = backup.join(format!("{MANIFEST_FILE}.tmp"));
        let mut text = serde_json::to_string_pretty(self).expect("the manifest serializes");
        text.push('\n');
        let mut file = std::fs::File::create(&temp).map_err(BackupError::io("create", &temp))?;
        file.write_all(text.as_bytes()).map_err(BackupError::io("write", &temp))?;
        file.sync_all().map_err(BackupError::io("fsync", &temp))?;
        std::fs::rename(&temp, &path).map_err(BackupError::io("rename into place", &temp))?;
        sync_dir(backup)
    }

    /// Reads `manifest.json` from a backup directory, refusing one from a newer build.
    pub fn read(backup: &Path) -> Result<Manifest, BackupError> {
        let path = backup.join(MANIFEST_FILE);
        let manifest_error = |reason: String| BackupError::Manifest { path: path.clone(), reason };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            manifest_error(format!("cannot read it ({e}); is {} a complete backup?", backup.display()))
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| manifest_error(format!("not JSON: {e}")))?;
        let version = value.get("manifest_version").and_then(serde_json::Value::as_u64);
        if version.is_some_and(|v| v > u64::from(MANIFEST_VERSION)) {
            return Err(manifest_error(format!(
                "manifest version {} is newer than this build reads ({MANIFEST_VERSION}): a newer \
                 petrel-engine took this backup; restore it with that version",
                version.unwrap_or_default()
            )));
        }
        serde_json::from_value(value).map_err(|e| manifest_error(format!("unexpected content: {e}")))
    }

    /// Bytes of all the backup's files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}
