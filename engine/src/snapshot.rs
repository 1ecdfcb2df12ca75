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
    let floor = regeneration_floor(snapshots, journal, sequence);
    petrel_journal::prune_snapshots_except(&snapshots.dir, snapshots.keep as usize, floor)?;
    let covered = floor.unwrap_or(sequence);
    petrel_journal::apply_retention(journal, covered).map_err(SnapshotWriteError::Retention)?;
    Ok(path)
}

/// While the output journals' release mark trails the new snapshot (under load by up to 4096
/// commands), the newest snapshot at or before the mark: pruning keeps it and retention keeps
/// the journal after it. A restart (or a restore, or a standby rebuilt from a backup)
/// regenerates the messages of the commands after the mark from a state at or before it,
/// replayed through the journal after that state (`gateway::regeneration`). `None` when the
/// new snapshot will do, or nothing better exists.
fn regeneration_floor(snapshots: &SnapshotConfig, journal: &JournalConfig, sequence: u64) -> Option<u64> {
    let sessions = crate::gateway::settings::sessions_dir(&journal.dir);
    // No output journals (a bench, a fresh install) or no usable mark: nothing to keep for.
    let crate::gateway::ReleaseMark::At(mark) = crate::gateway::ReleaseMark::read(&sessions) else {
        return None;
    };
    if mark >= sequence {
        return None;
    }
    let snapshots = petrel_journal::list_snapshots(&snapshots.dir).unwrap_or_default();
    snapshots.iter().rev().map(|(s, _)| *s).find(|s| *s <= mark)
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
