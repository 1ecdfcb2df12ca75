//! `[journal]` and `[snapshots]`: the state kept on disk, directories resolved against the
//! configuration file's directory.

use std::path::Path;

use petrel_core::codec::MAX_COMMAND_BYTES;
use petrel_journal::JournalConfig;

use super::resolve;
use crate::config::locate::Locator;
use crate::config::locate::Seg::Key as K;
use crate::config::raw::RawSnapshots;
use crate::config::{ConfigFileError, SnapshotConfig};

/// Most snapshots kept on disk.
pub const MAX_SNAPSHOTS_KEPT: u32 = 1_000;

/// The input journal, as `JournalConfig::validate` checks it (its complaints mapped back to
/// their keys), and big enough for the largest command.
pub(super) fn journal(
    mut journal: JournalConfig,
    base: &Path,
    loc: &Locator,
) -> Result<JournalConfig, ConfigFileError> {
    journal.dir = resolve(base, journal.dir);
    journal.validate().map_err(|e| {
        use petrel_journal::ConfigError as J;
        let key = match e {
            J::FilePrefix(_) => "file_prefix",
            J::SegmentSize { .. } => "segment_size_bytes",
            J::MaxPayload { .. } => "max_record_payload_bytes",
            J::WriteBuffer { .. } => "write_buffer_bytes",
            J::Retention => "retention",
        };
        loc.error(&[K("journal"), K(key)], e.to_string())
    })?;
    if (journal.max_record_payload_bytes as usize) < MAX_COMMAND_BYTES {
        return Err(loc.error(
            &[K("journal"), K("max_record_payload_bytes")],
            format!("journal.max_record_payload_bytes = {} must hold an encoded command ({MAX_COMMAND_BYTES} bytes)", journal.max_record_payload_bytes),
        ));
    }
    Ok(journal)
}

pub(super) fn snapshots(
    raw: RawSnapshots,
    base: &Path,
    loc: &Locator,
) -> Result<SnapshotConfig, ConfigFileError> {
    let snapshots =
        SnapshotConfig { dir: resolve(base, raw.dir), every_commands: raw.every_commands, keep: raw.keep };
    if snapshots.every_commands == 0 {
        return Err(loc.error(&[K("snapshots"), K("every_commands")], "every_commands must be at least 1"));
    }
    if !(1..=MAX_SNAPSHOTS_KEPT).contains(&snapshots.keep) {
        return Err(loc.error(
            &[K("snapshots"), K("keep")],
            format!("keep = {} must be between 1 and {MAX_SNAPSHOTS_KEPT}", snapshots.keep),
        ));
    }
    Ok(snapshots)
}
