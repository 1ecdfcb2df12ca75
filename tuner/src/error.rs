//! Errors a user of `petrel-tuner` can meet, each mapped to a documented exit code.

use std::path::PathBuf;

use crate::cpuset::CpuSetError;

/// Process exit codes; the numbers are part of the command-line interface (see `--help`).
pub mod exit {
    /// The host matches the profile, or the command did what it was asked.
    pub const OK: i32 = 0;
    /// `verify` found drift.
    pub const DRIFT: i32 = 1;
    /// Bad usage, a bad profile, or a profile this host cannot satisfy; nothing was changed.
    pub const CONFIG: i32 = 2;
    /// The kernel command line differs from the profile: a reboot is needed (after `apply`
    /// wrote, or `rollback` removed, the GRUB drop-in).
    pub const REBOOT_NEEDED: i32 = 3;
    /// A change failed; everything this run had changed was restored.
    pub const APPLY_FAILED_RESTORED: i32 = 4;
    /// A change failed and restoring also failed; the state file is kept: fix and `rollback`.
    pub const RESTORE_FAILED: i32 = 5;
    /// The command changes the host and needs root.
    pub const NOT_ROOT: i32 = 6;
    /// Another `petrel-tuner` run holds the lock.
    pub const LOCKED: i32 = 7;
    /// Reading the host or the state file failed.
    pub const IO: i32 = 8;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    HostValue {
        path: PathBuf,
        #[source]
        source: CpuSetError,
    },
    #[error("{path}: more than {limit_bytes} bytes; refusing to read further")]
    TooLarge { path: PathBuf, limit_bytes: usize },
    #[error("profile {origin}: {message}")]
    ProfileSyntax { origin: String, message: String },
    #[error("profile {origin}: {message}")]
    Profile { origin: String, message: String },
    #[error("no profile named `{name}`: use a file path or one of the built-in profiles: {builtins}")]
    UnknownProfile { name: String, builtins: String },
    #[error("profile `{profile}` cannot be met on this host:\n{items}")]
    Unavailable { profile: String, items: String },
    #[error(
        "`petrel-tuner {command}` changes kernel settings and needs root; run it as root (e.g. with sudo)"
    )]
    NotRoot { command: String },
    #[error("another petrel-tuner run holds the lock {path}{holder}; wait for it to finish")]
    Locked { path: PathBuf, holder: String },
    #[error("state file {path} is damaged: {why}; inspect it and restore the values by hand")]
    StateCorrupt { path: PathBuf, why: String },
    #[error("{0}")]
    ApplyFailed(String),
    #[error("{0}")]
    RestoreFailed(String),
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io { .. } | Error::HostValue { .. } | Error::TooLarge { .. } => exit::IO,
            Error::StateCorrupt { .. } => exit::IO,
            Error::ProfileSyntax { .. }
            | Error::Profile { .. }
            | Error::UnknownProfile { .. }
            | Error::Unavailable { .. }
            | Error::Usage(_) => exit::CONFIG,
            Error::NotRoot { .. } => exit::NOT_ROOT,
            Error::Locked { .. } => exit::LOCKED,
            Error::ApplyFailed(_) => exit::APPLY_FAILED_RESTORED,
            Error::RestoreFailed(_) => exit::RESTORE_FAILED,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
