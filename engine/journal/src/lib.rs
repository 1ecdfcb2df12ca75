//! Petrel's journal: segmented, preallocated, checksummed files of sequenced records, written in
//! group commits, recovered and validated on start, plus atomic snapshot files.
//!
//! A record's payload is opaque bytes; the engine encodes commands (input journal) or outbound
//! messages (output journal) into it. The on-disk format and the recovery rules are in
//! `FORMAT.md` beside this crate's `Cargo.toml`.
//!
//! Reading without the writer's lock: [`open_read_only`] checks every record first, as
//! `Journal::open` would, and changes nothing; [`open_read_only_from`] starts at a sequence
//! without scanning the journal and checks each record as it reads it; [`copy_records`] copies
//! a consistent prefix of a journal being written (backups). The format versions on disk are
//! read from headers alone ([`newest_segment_format_version`]).
//!
//! Typical use:
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use petrel_journal::{Journal, JournalConfig};
//! let config = JournalConfig::new("/var/lib/petrel/journal");
//! let (mut writer, recovery) = Journal::open(&config)?;
//! if let Some(torn) = &recovery.truncation {
//!     eprintln!("cut torn tail of {} at offset {}", torn.file.display(), torn.offset);
//! }
//! let mut replay = recovery.replay_from(1)?;
//! while let Some(record) = replay.next_record()? {
//!     let _ = (record.sequence, record.payload); // feed the matcher
//! }
//! let seq = writer.next_sequence();
//! writer.append(seq, 1_700_000_000_000_000_000, b"command bytes")?;
//! let durable = writer.commit()?.durable_sequence; // release outputs up to `durable`
//! // Or: commit only when the write buffer is full, and keep appending.
//! let seq = writer.next_sequence();
//! if let Some(committed) = writer.append_or_commit(seq, 1_700_000_000_000_000_001, b"more")? {
//!     let _ = committed.durable_sequence;
//! }
//! # let _ = durable; Ok(()) }
//! ```

mod config;
mod copy;
mod error;
mod format;
mod inspect;
mod read_only;
mod reader;
mod retention;
mod scan;
mod snapshot;
mod tail;
mod truncate;
mod versions;
mod writer;

pub use config::{ConfigError, Durability, JournalConfig, Retention};
pub use copy::{copy_records, CopiedJournal};
pub use error::{AppendError, JournalError};
pub use format::{
    record_total_bytes, Record, FORMAT_VERSION, PAYLOAD_BYTES_LIMIT, RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
};
pub use inspect::{dump, hex_payload, inspect_at, verify, DumpFormat, VerifyReport};
pub use read_only::{open_read_only, open_read_only_from};
pub use reader::JournalReader;
pub use retention::apply_retention;
pub use scan::{journal_prefixes, JournalLocation, TornTail};
pub use snapshot::{
    latest_snapshot, list_snapshots, prune_snapshots, prune_snapshots_except, read_snapshot, write_snapshot,
    Snapshot, SnapshotError, SNAPSHOT_VERSION,
};
pub use tail::{JournalTail, TailRecord};
pub use truncate::{truncate_after, Truncated};
pub use versions::{
    newest_segment_format_version, newest_snapshot_format_version, segment_format_version,
    snapshot_format_version,
};
pub use writer::{preallocate, CommitStats, Journal, JournalWriter, Recovery, SegmentSummary};
