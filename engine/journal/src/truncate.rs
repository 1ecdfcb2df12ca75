//! Cutting a journal back to a sequence: what a primary that was replaced does before it
//! follows the new one as a standby. Its records after the point where the new primary's epoch
//! began were never acknowledged to anyone (the acknowledgement rule), and the new primary's
//! records for the same sequences differ.

use crate::config::{Durability, JournalConfig};
use crate::error::JournalError;
use crate::tail::JournalTail;
use crate::writer::{preallocate, sync_dir, Journal};

/// What [`truncate_after`] removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated {
    /// The journal's last sequence before (0: empty).
    pub last_before: u64,
    /// Records removed.
    pub removed_records: u64,
    /// Whole segment files deleted.
    pub removed_segments: u64,
}

/// Removes every record after `last_kept`. Takes the journal's lock (so never while an engine
/// writes it), recovers it first (cutting a torn tail, refusing damage), then deletes the
/// segments that start after `last_kept` (newest first) and cuts the one holding `last_kept + 1`
/// at that record, re-preallocated. A crash in the middle leaves a valid journal that still
/// holds some of those records; running it again finishes the job.
pub fn truncate_after(config: &JournalConfig, last_kept: u64) -> Result<Truncated, JournalError> {
    let (writer, recovery) = Journal::open(config)?;
    let last_before = recovery.last_sequence.unwrap_or(0);
    let mut truncated = Truncated { last_before, removed_records: 0, removed_segments: 0 };
    if last_before <= last_kept {
        return Ok(truncated);
    }
    let cut = last_kept + 1;
    let location = &recovery.location;
    // The oldest segment stays (a journal always has one), cut back to its header if need be.
    for (index, segment) in recovery.segments.iter().enumerate().rev() {
        if segment.first_sequence >= cut && index > 0 {
            std::fs::remove_file(&segment.path).map_err(JournalError::io("remove", &segment.path))?;
            truncated.removed_segments += 1;
        }
    }
    if truncated.removed_segments > 0 {
        sync_dir(&location.dir)?;
    }
    let holder = recovery
        .segments
        .iter()
        .enumerate()
        .rev()
        .find(|(index, s)| s.first_sequence < cut || *index == 0)
        .map(|(_, s)| s)
        .expect("a journal has a segment");
    let offset = if holder.first_sequence >= cut {
        crate::format::SEGMENT_HEADER_BYTES
    } else {
        JournalTail::open(location, cut)?
            .offset_in(&holder.path)
            .expect("the tail stands in the segment holding it")
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&holder.path)
        .map_err(JournalError::io("open", &holder.path))?;
    file.set_len(offset).map_err(JournalError::io("truncate", &holder.path))?;
    preallocate(&file, &holder.path, holder.file_bytes)?;
    if config.durability == Durability::Fsync {
        file.sync_all().map_err(JournalError::io("fsync", &holder.path))?;
    }
    truncated.removed_records = last_before - last_kept;
    drop(writer);
    Ok(truncated)
}
