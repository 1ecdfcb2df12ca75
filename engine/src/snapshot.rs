//! Writing snapshot files of the engine's state, and the journal retention a new snapshot
//! allows. Used by the pipeline's housekeeping thread, the runtime's shutdown and the reference
//! sequencer; read back by `recovery`.
//!
//! The callers' duty: a snapshot is written only of state whose commands are all durable in
//! the journal. A snapshot ahead of the journal would make the next start refuse the journal as
//! short, and retention could delete segments the state does not yet cover.

use std::path::PathBuf;

use petrel_core::Engine;
use petrel_journal::{JournalConfig, JournalError, SnapshotError};

use crate::config::SnapshotConfig;

/// Which step failed. A failed snapshot loses nothing: the journal alone recovers everything.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotWriteError {
    /// Writing the file, or pruning old ones.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The snapshot is written; deleting the segments it covers failed.
    #[error(transparent)]
    Retention(JournalError),
}

/// Writes the snapshot of the state after `sequence` (already encoded, by
/// `Engine::encode_state`), deletes snapshots beyond `snapshots.keep`, then applies the
/// journal's retention up to `sequence`. Every command up to `sequence` must be durable.
pub fn write_encoded(
    snapshots: &SnapshotConfig,
    journal: &JournalConfig,
    sequence: u64,
    state: &[u8],
) -> Result<PathBuf, SnapshotWriteError> {
    let path = petrel_journal::write_snapshot(&snapshots.dir, sequence, state)?;
    petrel_journal::prune_snapshots(&snapshots.dir, snapshots.keep as usize)?;
    petrel_journal::apply_retention(journal, sequence).map_err(SnapshotWriteError::Retention)?;
    Ok(path)
}

/// [`write_encoded`] of `engine`'s current state. Every command the engine applied must be
/// durable.
pub fn write_snapshot(
    engine: &Engine,
    snapshots: &SnapshotConfig,
    journal: &JournalConfig,
) -> Result<PathBuf, SnapshotWriteError> {
    let mut state = Vec::with_capacity(1 << 16);
    engine.encode_state(&mut state);
    write_encoded(snapshots, journal, engine.last_sequence(), &state)
}
