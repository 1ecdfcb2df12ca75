//! The engine's configuration file (TOML): parsing, validation and conversion to the types the
//! core, the journal and the runtime use.
//!
//! Loading is two steps. First serde reads the file into the `Raw*` structs of `raw`, which
//! mirror it (`deny_unknown_fields` everywhere, so a misspelt key is an error, never ignored),
//! with `units` reading decimal prices and amounts. Then `convert`, one function per section,
//! checks what serde cannot (references between sections, overlapping core pinning, prices that
//! do not fit the tick, everything `EngineConfig::validate` and `JournalConfig::validate` check)
//! and converts human units (decimal prices, currency amounts, milliseconds) to the engine's
//! integer units into the types of `sections`. Every error, of either step, carries the file,
//! line, column and key, found by `locate` through the span `toml_edit` keeps for each item.
//!
//! Identity is positional: the n-th `[[instruments]]` entry is `InstrumentId(n)` and the n-th
//! `[[accounts]]` entry is `AccountId(n)`, and journal records and snapshots name them by these
//! numbers. So entries may only ever be appended; reordering or removing one under an existing
//! journal would replay orders onto the wrong instrument or account (a snapshot whose counts do
//! not match is refused by `Engine::restore`, but a reordering of equal counts is not detectable).
//!
//! Relative paths (`journal.dir`, `snapshots.dir`, `gateway.users_file`) are resolved against
//! the directory holding the configuration file, so the result does not depend on the working
//! directory the engine was started from.

mod convert;
mod locate;
mod raw;
mod sections;
mod summary;
mod units;

use std::path::{Path, PathBuf};

use petrel_core::EngineConfig;
use petrel_journal::JournalConfig;

pub use convert::{
    MAX_CPU_ID, MAX_PARK_US, MAX_SEND_BACKLOG_BYTES, MAX_SESSIONS, MAX_SNAPSHOTS_KEPT, MAX_SPINS,
    MIN_SEND_BACKLOG_BYTES,
};
pub use sections::{
    AccountInfo, Ack, AdminConfig, DataPath, FailoverConfig, FailoverMode, GatewayBackend, GatewayConfig,
    IdleStrategy, LogConfig, MarketDataConfig, Rejoin, ReplicationConfig, Role, RuntimeConfig, Secret,
    SnapshotConfig, StandbyLoss, ThreadConfig,
};
pub use units::{format_price, parse_price, DecimalError, PRICE_UNITS_PER_CURRENCY_UNIT};

/// A loaded, validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it was read from, as given.
    pub path: PathBuf,
    /// Instruments, accounts and capacities for the matching core.
    pub engine: EngineConfig,
    /// Firm names; `AccountConfig::firm` indexes this.
    pub firms: Vec<String>,
    /// Names of the accounts, indexed by `AccountId`.
    pub accounts: Vec<AccountInfo>,
    /// The input journal, with `dir` resolved.
    pub journal: JournalConfig,
    pub snapshots: SnapshotConfig,
    pub runtime: RuntimeConfig,
    pub gateway: GatewayConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    /// `None`: a single engine, no standby.
    pub replication: Option<ReplicationConfig>,
    /// `None`: no market-data feed.
    pub market_data: Option<MarketDataConfig>,
    /// `None`: promotion is manual (`[failover]` absent, or `mode = "manual"`).
    pub failover: Option<FailoverConfig>,
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Read { path: path.to_owned(), source })?;
        let base = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Config::parse(&text, path, base)
    }

    /// Validates configuration text. `path` names it in errors; relative paths inside resolve
    /// against `base_dir`.
    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigFileError> {
        let raw: raw::RawConfig = match serde_path_to_error::deserialize(toml::Deserializer::new(text)) {
            Ok(raw) => raw,
            Err(e) => return Err(locate::serde_error(text, path, e)),
        };
        convert::convert(raw, &locate::Locator::new(path, text), path, base_dir)
    }

    /// The account id of a named account.
    pub fn account_id(&self, name: &str) -> Option<petrel_core::AccountId> {
        self.accounts.iter().position(|a| a.name == name).map(|i| petrel_core::AccountId(i as u32))
    }
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `file:line:col: key: message`, the form editors and compilers use, so an editor can jump
    /// to it.
    #[error("{}:{line}:{column}: {}{message}", path.display(), key_prefix(key))]
    Invalid {
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        /// The key at fault, as a path (`instruments[1].tick_size`); empty for syntax errors.
        key: String,
        message: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}
