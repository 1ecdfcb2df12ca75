//! The release mark: a 20-byte file saying that every message of every command up to a
//! sequence W is recorded in its account's output journal (see the module docs of
//! [`super::regeneration`] for how a restart uses it).
//!
//! Format: `PTRLREL1`, W (u64 LE), CRC32C of those 16 bytes (u32 LE). Written with one `pwrite`
//! after the streams it covers were committed, never fsynced (the durability of the output
//! journals themselves). A mark that lags is safe: each stream's tail says what it holds.

use super::settings::GatewayError;
use crate::logging::{HotLevel, HotLog, HotRecord};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The release mark's file in the sessions directory.
pub const RELEASE_MARK_FILE: &str = "released";
const RELEASE_MARK_MAGIC: [u8; 8] = *b"PTRLREL1";
const RELEASE_MARK_BYTES: usize = 20;

/// Most commands the written mark may lag the released ones while the gateway is busy.
const RELEASE_MARK_LAG_MAX: u64 = 4_096;

pub(super) fn encode(sequence: u64) -> [u8; RELEASE_MARK_BYTES] {
    let mut bytes = [0u8; RELEASE_MARK_BYTES];
    bytes[..8].copy_from_slice(&RELEASE_MARK_MAGIC);
    bytes[8..16].copy_from_slice(&sequence.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..16]);
    bytes[16..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// The sequence a mark file's bytes hold, or why they hold none.
pub fn decode(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() != RELEASE_MARK_BYTES {
        return Err(format!("{} bytes, expected {RELEASE_MARK_BYTES}", bytes.len()));
    }
    if bytes[..8] != RELEASE_MARK_MAGIC {
        return Err("bad magic (expected PTRLREL1)".into());
    }
    let stored = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&bytes[..16]);
    if stored != computed {
        return Err(format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"));
    }
    Ok(u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")))
}

/// The release mark as found at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseMark {
    /// No file: a fresh install, or output journals written before the mark existed.
    Missing,
    /// Unreadable or damaged (the reason): the streams' tails are used alone.
    Corrupt(String),
    /// Every message of every command up to this sequence is recorded.
    At(u64),
}

impl ReleaseMark {
    /// The mark in `sessions_dir`, as found.
    pub fn read(sessions_dir: &Path) -> ReleaseMark {
        match std::fs::read(sessions_dir.join(RELEASE_MARK_FILE)) {
            Ok(bytes) => match decode(&bytes) {
                Ok(sequence) => ReleaseMark::At(sequence),
                Err(reason) => ReleaseMark::Corrupt(reason),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => ReleaseMark::Missing,
            Err(e) => ReleaseMark::Corrupt(format!("cannot read it: {e}")),
        }
    }
}

/// The mark's file, kept open, and where the mark stands.
pub(super) struct MarkFile {
    pub(super) path: PathBuf,
    file: std::fs::File,
    written: u64,
    /// The last command boundary released; becomes the mark once its streams are committed.
    pending: u64,
    write_failed: bool,
    /// Test-only crash point (`PETREL_FAILPOINT_ABORT_BEFORE_RELEASE_MARK`); `u64::MAX` unset.
    abort_before: u64,
}

impl MarkFile {
    pub(super) fn open(sessions_dir: &Path, abort_before: u64) -> Result<MarkFile, GatewayError> {
        let path = sessions_dir.join(RELEASE_MARK_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| GatewayError::ReleaseMark { path: path.clone(), action: "open", source })?;
        Ok(MarkFile { path, file, written: 0, pending: 0, write_failed: false, abort_before })
    }

    /// Every message of the commands up to `sequence` has been emitted (not yet committed).
    pub(super) fn released_through(&mut self, sequence: u64) {
        self.pending = sequence;
    }

    /// After the streams were committed: under load the mark is written every
    /// [`RELEASE_MARK_LAG_MAX`] commands, otherwise when the gateway goes idle.
    pub(super) fn after_commit(&mut self, log: &HotLog) {
        if self.pending - self.written >= RELEASE_MARK_LAG_MAX {
            self.write_if_moved(log);
        }
    }

    /// Writes the mark if released commands moved it (idle loops, shutdown).
    pub(super) fn write_if_moved(&mut self, log: &HotLog) {
        if self.pending <= self.written {
            return;
        }
        let mark = self.pending;
        if mark >= self.abort_before {
            super::release::abort_at_failpoint("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE_MARK", mark);
        }
        self.write(mark, log);
    }

    /// Start-up: every command up to `sequence` has its messages recorded.
    pub(super) fn write_at_start(&mut self, sequence: u64, log: &HotLog) {
        self.pending = sequence;
        self.write(sequence, log);
    }

    fn write(&mut self, mark: u64, log: &HotLog) {
        match self.file.write_all_at(&encode(mark), 0) {
            Ok(()) => {
                self.written = mark;
                self.write_failed = false;
            }
            // Said once per failing spell, not once per release.
            Err(_) if !self.write_failed => {
                self.write_failed = true;
                log.try_log(HotRecord::new(
                    HotLevel::Error,
                    "cannot write the release mark (sessions/released): a crash now would regenerate more than needed at restart",
                ));
            }
            Err(_) => {}
        }
    }
}

/// `petrel-engine rejoin` (the engine stopped): sets the mark back to `sequence`, durably.
pub(super) fn rewrite(sessions_dir: &Path, sequence: u64) -> Result<(), GatewayError> {
    let path = sessions_dir.join(RELEASE_MARK_FILE);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|file| file.write_all_at(&encode(sequence), 0).and_then(|()| file.sync_all()));
    written.map_err(|source| GatewayError::ReleaseMark { path, action: "rewrite", source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_mark_round_trips_and_damage_is_detected() {
        let bytes = encode(123_456);
        assert_eq!(decode(&bytes), Ok(123_456));
        for i in 0..RELEASE_MARK_BYTES {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert!(decode(&damaged).is_err(), "a flipped bit at byte {i} is caught");
        }
        assert!(decode(&bytes[..19]).unwrap_err().contains("19 bytes"));
        assert!(decode(&[]).is_err(), "an empty file (crash before the first write)");
    }
}
