//! `petrel-engine journal backup|restore`: a consistent copy of a running engine's journal,
//! a snapshot and session output journals, taken without stopping trading and without the
//! journal's lock, and its restore onto an empty host.
//!
//! A backup directory holds `journal/` (input segments), `snapshots/` (one snapshot: the newest
//! at or before the release mark whose later commands the journal still holds, else the newest),
//! `sessions/` (each account's output journal and the release mark `released`),
//! `market_data/` (the feed journal, when the engine publishes one: copied with the output
//! journals, for the same reason) and
//! `manifest.json` ([`Manifest`]): the last input sequence the copy holds (the recovery point),
//! the state hash at that sequence, the format versions, and a SHA-256 per file.
//!
//! Why the copy is consistent although the engine keeps writing (see [`take`]): the parts are
//! copied in the order in which the engine makes them true. The release mark first, then the
//! output journals: every message of a command up to the mark was recorded before the mark was
//! written. Then the snapshot, then the durable input sequence D, then the input journal
//! through D. The gateway records a command's messages only once its input is durable and a
//! snapshot is written only of durable state, so the copied output journals and snapshot hold
//! nothing past D: restored, the engine recovers to D and regenerates the messages of the
//! commands up to D that the copied output journals lack (as after a crash; see
//! `gateway::regeneration`), from the snapshot at or before the mark: a newer one could not
//! give the state those messages were written from (under load the mark trails by up to 4096
//! commands).

mod durable;
mod manifest;
mod restore;
mod take;

use std::path::PathBuf;

pub use manifest::{FileEntry, Manifest, MANIFEST_FILE, MANIFEST_VERSION};
pub use restore::{restore, Restored};
pub use take::{backup, AdminSource};

/// The backup's folder of input-journal segments.
pub const JOURNAL_DIR: &str = "journal";
/// The backup's folder of snapshot files.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// The backup's folder of session output journals and the release mark.
pub const SESSIONS_DIR: &str = "sessions";
/// The backup's folder of the market-data feed journal (with `[market_data]`).
pub const MARKET_DATA_DIR: &str = "market_data";

/// Why a backup or a restore stopped. A failed backup removes what it wrote; a failed restore
/// removes what it wrote, or wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] petrel_journal::JournalError),
    #[error(transparent)]
    Snapshot(#[from] petrel_journal::SnapshotError),
    #[error(transparent)]
    Recovery(#[from] crate::recovery::RecoveryError),
    /// The directory to write into is not empty.
    #[error("{} is not empty (it holds {found}); {what}", dir.display())]
    NotEmpty { dir: PathBuf, found: String, what: &'static str },
    /// The running engine's admin endpoint could not say what is durable.
    #[error("admin endpoint {addr}: {reason}")]
    Admin { addr: std::net::SocketAddr, reason: String },
    /// The copy does not verify (taking a backup) or a verified copy does not replay to the
    /// manifest's state (restoring).
    #[error("{0}")]
    Verify(String),
    /// A backup file is missing or its checksum or size differ from the manifest's.
    #[error(
        "backup file {} is damaged: {reason}. Nothing was restored; restore from another backup",
        path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    /// The manifest is missing, unreadable or from a newer build.
    #[error("backup manifest {}: {reason}", path.display())]
    Manifest { path: PathBuf, reason: String },
}

impl From<crate::journal_tools::FormatsError> for BackupError {
    fn from(e: crate::journal_tools::FormatsError) -> BackupError {
        match e {
            crate::journal_tools::FormatsError::Journal(e) => BackupError::Journal(e),
            crate::journal_tools::FormatsError::Snapshot(e) => BackupError::Snapshot(e),
        }
    }
}

impl BackupError {
    pub(crate) fn io<'a>(
        action: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
        move |source| BackupError::Io { action, path: path.to_owned(), source }
    }
}

/// What a directory holds, for a refusal: up to five names, and how many more.
fn describe_entries(dir: &std::path::Path) -> Result<Option<String>, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BackupError::io("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry.map_err(BackupError::io("list", dir))?.file_name().to_string_lossy().into_owned();
        // A file system's own directory at a mount point is not data.
        if name != "lost+found" {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    names.sort();
    let more = names.len().saturating_sub(5);
    names.truncate(5);
    let mut found = names.join(", ");
    if more > 0 {
        found.push_str(&format!(" and {more} more"));
    }
    Ok(Some(found))
}

/// Syncs a directory, so that the names created in it survive a crash.
fn sync_dir(dir: &std::path::Path) -> Result<(), BackupError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(BackupError::io("fsync directory", dir))
}
