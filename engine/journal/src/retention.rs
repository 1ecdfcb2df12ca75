//! Deleting old segments once a snapshot makes them unnecessary for restart.

use std::path::PathBuf;

use crate::config::{JournalConfig, Retention};
use crate::error::JournalError;
use crate::scan::{list_segments, JournalLocation};
use crate::writer::sync_dir;

/// Applies `config.retention` given the sequence of the latest durable snapshot. Deletes only
/// the oldest segments, only those whose every record is at or below `snapshot_sequence`, and
/// never the newest segment (the writer's). Safe to call while the writer runs: the writer only
/// touches the newest segment and creates newer ones. Returns the deleted files.
pub fn apply_retention(config: &JournalConfig, snapshot_sequence: u64) -> Result<Vec<PathBuf>, JournalError> {
    let keep_segments = match config.retention {
        Retention::KeepAll => return Ok(Vec::new()),
        Retention::KeepSegments(n) => n.max(1) as usize,
    };
    let location = JournalLocation::new(&config.dir, &config.file_prefix);
    let segments = list_segments(&location)?.segments;
    let deletable = segments.len().saturating_sub(keep_segments);
    let mut deleted = Vec::new();
    for (index, segment) in segments.iter().enumerate().take(deletable) {
        // The next segment's first sequence bounds this one's records from above.
        let last_sequence_in_segment = segments[index + 1].first_sequence - 1;
        if last_sequence_in_segment > snapshot_sequence {
            break;
        }
        std::fs::remove_file(&segment.path).map_err(JournalError::io("remove", &segment.path))?;
        deleted.push(segment.path.clone());
    }
    if !deleted.is_empty() {
        sync_dir(&config.dir)?;
    }
    Ok(deleted)
}
