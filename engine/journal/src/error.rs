use std::io;
use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// Everything that can go wrong opening, writing or reading a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("invalid journal configuration: {0}")]
    Config(#[from] ConfigError),

    #[error("journal I/O error: cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Damage that is not a torn tail: refusing is the only way not to drop records silently.
    #[error(
        "journal is corrupt: {file} at byte offset {offset}: {reason}. The engine will not start \
         on a damaged journal. Inspect it with: petrel-engine journal dump --dir {dir} --prefix \
         {prefix} --file {file_name} --from-offset {offset}",
        file = file.display(),
        dir = dir.display(),
        file_name = file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
    )]
    Corrupt { dir: PathBuf, prefix: String, file: PathBuf, offset: u64, reason: String },

    /// A segment whose header is intact but in a format newer than this build reads: not
    /// damage, and nothing a restart of this build can fix.
    #[error(
        "journal segment {file} is in journal format {found}, which this build of petrel-engine \
         does not read (it reads journal format {reads}): a newer petrel-engine wrote it. Install \
         a petrel-engine that reads journal format {found} (`petrel-engine --version` lists the \
         formats a build reads); nothing was changed",
        file = file.display(),
        reads = crate::format::FORMAT_VERSION
    )]
    NewerFormat { file: PathBuf, found: u32 },

    #[error(
        "journal {dir} (prefix {prefix}) is locked by another writer (lock file {lock}); \
         is another petrel-engine running?",
        dir = dir.display(),
        lock = lock.display()
    )]
    Locked { dir: PathBuf, prefix: String, lock: PathBuf },

    #[error(
        "unexpected file {path} looks like a journal segment but its name is not \
         {{prefix}}-{{20-digit first sequence}}.seg; move it out of the journal directory",
        path = path.display()
    )]
    UnexpectedFile { path: PathBuf },

    #[error(
        "replay from sequence {requested} is impossible: the journal starts at sequence \
         {first_available} (older segments were deleted by retention or lost)"
    )]
    SequenceNotRetained { requested: u64, first_available: u64 },

    #[error(
        "replay from sequence {requested} is impossible: the journal ends at sequence {last} \
         (a snapshot newer than the journal means journal records were lost)"
    )]
    SequenceBeyondEnd { requested: u64, last: u64 },

    /// A record larger than `max_record_payload_bytes` (from `append_or_commit`; nothing was
    /// buffered). The engine's configuration sizes the limit to hold any command.
    #[error("journal payload of {payload_bytes} bytes exceeds max_record_payload_bytes = {max_bytes}")]
    PayloadTooLarge { payload_bytes: usize, max_bytes: u32 },

    /// A commit failed part-way: what reached the disk is unknown (and after a failed fsync the
    /// kernel may have dropped the dirty pages), so the writer refuses further use. Restart, and
    /// recovery will establish what is durable.
    #[error("journal writer is unusable after an earlier I/O failure; restart to recover")]
    Poisoned,
}

impl JournalError {
    pub(crate) fn io<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> JournalError + 'a {
        move |source| JournalError::Io { action, path: path.to_owned(), source }
    }
}

/// Why `JournalWriter::append` did not take a record; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Commit first, then append again.
    #[error("journal write buffer full: record needs {record_bytes} bytes, {free_bytes} free; commit first")]
    BufferFull { record_bytes: usize, free_bytes: usize },
    #[error("journal payload of {payload_bytes} bytes exceeds max_record_payload_bytes = {max_bytes}")]
    PayloadTooLarge { payload_bytes: usize, max_bytes: u32 },
}
