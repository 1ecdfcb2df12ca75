//! The engine's configuration file (TOML): parsing, validation and conversion to the types the
//! core, the journal and the runtime use.
//!
//! Loading is two steps. First serde reads the file into `Raw*` structs that mirror it
//! (`deny_unknown_fields` everywhere, so a misspelt key is an error, never ignored). Then
//! [`Config::parse`] checks what serde cannot (references between sections, overlapping core
//! pinning, prices that do not fit the tick, everything `EngineConfig::validate` and
//! `JournalConfig::validate` check) and converts human units (decimal prices, currency amounts,
//! milliseconds) to the engine's integer units. Every error, of either step, carries the file,
//! line, column and key, found through the span `toml_edit` keeps for each item.
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

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use petrel_core::codec::MAX_COMMAND_BYTES;
use petrel_core::{AccountConfig, EngineConfig, InstrumentConfig, Price, RiskLimits, StpMode, Symbol};
use petrel_journal::{Durability, JournalConfig};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Price units per currency unit: prices carry 4 implied decimals, as OUCH does.
pub const PRICE_UNITS_PER_CURRENCY_UNIT: i64 = 10_000;
/// Largest CPU id a thread may be pinned to (`CPU_SETSIZE` is 1024 on Linux).
pub const MAX_CPU_ID: u32 = 1023;
/// Longest sleep the `park` idle strategy may back off to, µs. Longer sleeps make a quiet engine
/// answer its first order late and are almost certainly a unit mistake.
pub const MAX_PARK_US: u32 = 1_000_000;
/// Most spins before a yield in the `spin-yield` idle strategy.
pub const MAX_SPINS: u32 = 1_000_000;
/// Most snapshots kept on disk.
pub const MAX_SNAPSHOTS_KEPT: u32 = 1_000;
/// Most OUCH connections at once: each takes about 192 KiB of gateway buffers (io_uring: two
/// 64 KiB receive buffers in the shared ring and a 64 KiB send buffer), so 4,096 is 768 MiB.
pub const MAX_SESSIONS: u32 = 4_096;
/// Bounds of `gateway.max_send_backlog_bytes`.
pub const MIN_SEND_BACKLOG_BYTES: u64 = 4 * 1024;
pub const MAX_SEND_BACKLOG_BYTES: u64 = 1 << 30;

// ---- the validated configuration ---------------------------------------------------------

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
}

/// What the configuration says about an account beyond what the core needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    pub name: String,
    pub firm: String,
    pub risk_profile: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// Directory of `snapshot-*.snap` files (resolved).
    pub dir: PathBuf,
    /// A snapshot is written after this many commands since the last one.
    pub every_commands: u64,
    /// Snapshots kept on disk; older ones are deleted after a new one is durable.
    pub keep: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Lock all current and future memory (`mlockall(MCL_CURRENT | MCL_FUTURE)`) at start.
    pub mlockall: bool,
    /// `SCHED_FIFO` priority (1..=99) of the pinned data-plane threads; `None`: normal scheduling.
    pub realtime_priority: Option<u8>,
    pub gateway: ThreadConfig,
    pub sequencer: ThreadConfig,
    pub journal: ThreadConfig,
    pub housekeeping: ThreadConfig,
}

impl RuntimeConfig {
    /// The four threads with their configuration keys, in a fixed order.
    pub fn threads(&self) -> [(&'static str, &ThreadConfig); 4] {
        [
            ("gateway", &self.gateway),
            ("sequencer", &self.sequencer),
            ("journal", &self.journal),
            ("housekeeping", &self.housekeeping),
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadConfig {
    /// CPUs the thread may run on; empty: not pinned (the scheduler decides).
    #[serde(default)]
    pub cores: Vec<u32>,
    /// What the thread does when it finds no work.
    #[serde(default)]
    pub idle: IdleStrategy,
}

/// What a thread does when a poll finds no work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum IdleStrategy {
    /// Poll again at once: lowest latency, burns its core at 100%. Needs a dedicated, pinned core.
    BusySpin,
    /// Poll `spins` times, then `sched_yield` once.
    SpinYield { spins: u32 },
    /// Sleep until a producer rings the thread's doorbell with new work, or at most the back-off
    /// (doubling from `min_us` up to `max_us` while idle, back to `min_us` on work) passes.
    Park { min_us: u32, max_us: u32 },
}

impl Default for IdleStrategy {
    /// Sleeping is the only strategy that is safe on any machine (a 2-core VM included).
    fn default() -> IdleStrategy {
        IdleStrategy::Park { min_us: 50, max_us: 1_000 }
    }
}

impl fmt::Display for IdleStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdleStrategy::BusySpin => write!(f, "busy-spin"),
            IdleStrategy::SpinYield { spins } => write!(f, "spin-yield({spins} spins)"),
            IdleStrategy::Park { min_us, max_us } => write!(f, "park({min_us}..{max_us} us)"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Where OUCH (SoupBinTCP) sessions connect.
    pub listen: SocketAddr,
    /// The users file (resolved): OUCH users, passwords and their accounts.
    pub users_file: PathBuf,
    /// Which kernel interface carries the sockets.
    pub backend: GatewayBackend,
    /// Most connections at once; more are refused at accept.
    pub max_sessions: u32,
    /// The SoupBinTCP session name clients see and may request (1 to 10 letters or digits).
    pub session_name: String,
    /// Bytes queued for one client that is not reading, beyond what its socket and the
    /// transport hold, before the gateway disconnects it as a slow consumer.
    pub max_send_backlog_bytes: u64,
    /// Development only: accept a users file that others may read (a git checkout makes files
    /// 0644). Production refuses it: the file holds password hashes.
    pub allow_readable_users_file: bool,
}

/// The gateway's network backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayBackend {
    /// io_uring when the kernel offers it, else epoll (logged).
    #[default]
    Auto,
    IoUring,
    Epoll,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the admin (metrics, health, kill switch) endpoint listens.
    pub listen: SocketAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info,petrel_engine=debug`.
    pub filter: String,
}

// ---- errors ------------------------------------------------------------------------------

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

/// One step of a key path.
#[derive(Clone, Copy, Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}
use Seg::{Index as I, Key as K};

fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Builds located errors for one file.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
    doc: toml_edit::ImDocument<&'a str>,
}

impl<'a> Locator<'a> {
    fn at_span(&self, span: Option<Range<usize>>, key: String, message: String) -> ConfigFileError {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigFileError::Invalid { path: self.path.to_owned(), line, column, key, message }
    }

    /// An error at `path`: at the key itself when it is present in the file, else at the nearest
    /// enclosing table that is (a missing key is reported where it should have been written).
    fn error(&self, path: &[Seg], message: impl Into<String>) -> ConfigFileError {
        self.at_span(self.span_of(path), path_string(path), message.into())
    }

    fn span_of(&self, path: &[Seg]) -> Option<Range<usize>> {
        let root = self.doc.as_table();
        let mut best: Option<Range<usize>> = None;
        let mut current: Option<&toml_edit::Item> = None;
        for seg in path {
            let (next, key_span) = match (current, *seg) {
                (None, Seg::Key(k)) => (root.get(k), root.key(k).and_then(|k| k.span())),
                (Some(item), Seg::Key(k)) => {
                    (item.get(k), item.as_table_like().and_then(|t| t.key(k)).and_then(|k| k.span()))
                }
                (Some(item), Seg::Index(n)) => (item.get(n), None),
                (None, Seg::Index(_)) => (None, None),
            };
            let Some(next) = next else { break };
            best = key_span.or_else(|| next.span()).or(best);
            current = Some(next);
        }
        best
    }
}

// ---- human units -------------------------------------------------------------------------

/// Why a decimal amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("{0:?} is not a decimal number like \"585.33\"")]
    Syntax(String),
    #[error("{text:?} has {decimals} decimals; amounts have at most 4 (1/10000 of the currency unit)")]
    TooManyDecimals { text: String, decimals: usize },
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Parses a decimal amount in currency units ("585.33", "-0.5", "100") exactly into price units
/// (1/10_000 of the currency unit). More than 4 decimals is an error, never rounded.
pub fn parse_price(text: &str) -> Result<Price, DecimalError> {
    let syntax = || DecimalError::Syntax(text.to_owned());
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || (digits.contains('.') && fraction.is_empty())
    {
        return Err(syntax());
    }
    if fraction.len() > 4 {
        return Err(DecimalError::TooManyDecimals { text: text.to_owned(), decimals: fraction.len() });
    }
    let overflow = || DecimalError::Overflow(text.to_owned());
    let whole: i64 = whole.parse().map_err(|_| overflow())?;
    let mut fraction_units: i64 =
        if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| syntax())? };
    for _ in fraction.len()..4 {
        fraction_units *= 10;
    }
    let units = whole
        .checked_mul(PRICE_UNITS_PER_CURRENCY_UNIT)
        .and_then(|w| w.checked_add(fraction_units))
        .ok_or_else(overflow)?;
    Ok(if negative { -units } else { units })
}

/// Formats price units as a decimal amount with all 4 decimals: `5853300` -> `"585.3300"`.
pub fn format_price(price: Price) -> String {
    let sign = if price < 0 { "-" } else { "" };
    let abs = price.unsigned_abs();
    let unit = PRICE_UNITS_PER_CURRENCY_UNIT as u64;
    format!("{sign}{}.{:04}", abs / unit, abs % unit)
}

/// A price or currency amount as written in the file: a decimal string ("585.33") or an
/// integer (whole currency units). Floats are refused: most decimal prices have no exact binary
/// float, and a config file is no place to round money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Decimal4(i64);

impl<'de> Deserialize<'de> for Decimal4 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DecimalVisitor).map(Decimal4)
    }
}

struct DecimalVisitor;

impl Visitor<'_> for DecimalVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal amount as a string, like \"585.33\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        parse_price(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        v.checked_mul(PRICE_UNITS_PER_CURRENCY_UNIT).ok_or_else(|| E::custom(format!("{v} is too large")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large"))).and_then(|v| self.visit_i64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        Err(E::custom(format!(
            "write amounts as decimal strings, e.g. \"{v}\": a float cannot hold most prices exactly"
        )))
    }
}

/// A risk limit: a value, or the string "unlimited".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit<T> {
    Unlimited,
    Value(T),
}

trait LimitValue: Sized {
    const EXPECTING: &'static str;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_text(_text: &str) -> Option<Result<Self, String>> {
        None
    }
}

impl LimitValue for u32 {
    const EXPECTING: &'static str = "a whole number (at most 4294967295) or \"unlimited\"";
    fn from_u64(v: u64) -> Option<u32> {
        u32::try_from(v).ok()
    }
}

impl LimitValue for u64 {
    const EXPECTING: &'static str = "a whole number or \"unlimited\"";
    fn from_u64(v: u64) -> Option<u64> {
        Some(v)
    }
}

/// A currency amount (for notional limits), in price units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Money(u64);

impl LimitValue for Money {
    const EXPECTING: &'static str =
        "an amount in currency units as a decimal string, like \"250000.00\", or \"unlimited\"";
    fn from_u64(v: u64) -> Option<Money> {
        v.checked_mul(PRICE_UNITS_PER_CURRENCY_UNIT as u64).map(Money)
    }
    fn from_text(text: &str) -> Option<Result<Money, String>> {
        Some(match parse_price(text) {
            Ok(units) if units >= 0 => Ok(Money(units as u64)),
            Ok(_) => Err(format!("{text:?} is negative")),
            Err(e) => Err(e.to_string()),
        })
    }
}

impl<'de, T: LimitValue> Deserialize<'de> for Limit<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: LimitValue> Visitor<'_> for V<T> {
            type Value = Limit<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Limit<T>, E> {
                if v == "unlimited" {
                    return Ok(Limit::Unlimited);
                }
                match T::from_text(v) {
                    Some(parsed) => parsed.map(Limit::Value).map_err(E::custom),
                    None => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Limit<T>, E> {
                T::from_u64(v)
                    .map(Limit::Value)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit<T>, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

// ---- the file as written -----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    engine: RawEngine,
    #[serde(default)]
    firms: Vec<RawFirm>,
    #[serde(default)]
    risk_profiles: BTreeMap<String, RawRiskProfile>,
    #[serde(default)]
    instruments: Vec<RawInstrument>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    journal: JournalConfig,
    snapshots: RawSnapshots,
    #[serde(default)]
    runtime: RawRuntime,
    gateway: RawGateway,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    log: RawLog,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    max_orders: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirm {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRiskProfile {
    max_order_qty: Limit<u32>,
    max_order_notional: Limit<Money>,
    price_collar_bps: Limit<u32>,
    max_open_orders: Limit<u32>,
    max_position: Limit<u64>,
    max_orders_per_window: Limit<u32>,
    rate_window_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstrument {
    symbol: String,
    tick_size: Decimal4,
    lot_size: u32,
    price_band_min: Decimal4,
    price_band_max: Decimal4,
    reference_price: Option<Decimal4>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: String,
    firm: String,
    #[serde(default)]
    stp: StpMode,
    risk_profile: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshots {
    dir: PathBuf,
    every_commands: u64,
    #[serde(default = "default_snapshots_keep")]
    keep: u32,
}

fn default_snapshots_keep() -> u32 {
    3
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    #[serde(default)]
    mlockall: bool,
    realtime_priority: Option<u32>,
    #[serde(default)]
    gateway: ThreadConfig,
    #[serde(default)]
    sequencer: ThreadConfig,
    #[serde(default)]
    journal: ThreadConfig,
    #[serde(default)]
    housekeeping: ThreadConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    listen: SocketAddr,
    users_file: PathBuf,
    #[serde(default)]
    backend: GatewayBackend,
    #[serde(default = "default_max_sessions")]
    max_sessions: u32,
    #[serde(default = "default_session_name")]
    session_name: String,
    #[serde(default = "default_max_send_backlog_bytes")]
    max_send_backlog_bytes: u64,
    #[serde(default)]
    allow_readable_users_file: bool,
}

fn default_max_send_backlog_bytes() -> u64 {
    8 * 1024 * 1024
}

fn default_max_sessions() -> u32 {
    256
}

fn default_session_name() -> String {
    "PETREL".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    #[serde(default = "default_admin_listen")]
    listen: SocketAddr,
    #[serde(default)]
    allow_non_loopback: bool,
}

impl Default for RawAdmin {
    fn default() -> RawAdmin {
        RawAdmin { listen: default_admin_listen(), allow_non_loopback: false }
    }
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9180))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default = "default_log_filter")]
    filter: String,
}

impl Default for RawLog {
    fn default() -> RawLog {
        RawLog { filter: default_log_filter() }
    }
}

fn default_log_filter() -> String {
    "info".to_owned()
}

// ---- loading -----------------------------------------------------------------------------

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
        let raw: RawConfig = match serde_path_to_error::deserialize(toml::Deserializer::new(text)) {
            Ok(raw) => raw,
            Err(e) => return Err(serde_error(text, path, e)),
        };
        let doc = toml_edit::ImDocument::parse(text).expect("text that serde parsed is valid TOML");
        let loc = Locator { path, text, doc };
        convert(raw, &loc, path, base_dir)
    }

    /// One line for operators: what this configuration runs.
    pub fn summary(&self) -> String {
        let pinned: Vec<String> = self
            .runtime
            .threads()
            .iter()
            .filter(|(_, t)| !t.cores.is_empty())
            .map(|(name, t)| format!("{name}={:?}", t.cores))
            .collect();
        format!(
            "{} instruments, {} accounts in {} firms, max {} open orders; journal {} ({}); \
             snapshots every {} commands in {}; gateway {}; admin {}; {}",
            self.engine.instruments.len(),
            self.engine.accounts.len(),
            self.firms.len(),
            self.engine.max_orders,
            self.journal.dir.display(),
            match self.journal.durability {
                Durability::Fsync => "fsync",
                Durability::None => "no fsync",
            },
            self.snapshots.every_commands,
            self.snapshots.dir.display(),
            self.gateway.listen,
            self.admin.listen,
            if pinned.is_empty() {
                "no core pinning".to_owned()
            } else {
                format!("pinned {}", pinned.join(" "))
            }
        )
    }

    /// The account id of a named account.
    pub fn account_id(&self, name: &str) -> Option<petrel_core::AccountId> {
        self.accounts.iter().position(|a| a.name == name).map(|i| petrel_core::AccountId(i as u32))
    }
}

fn serde_error(text: &str, path: &Path, e: serde_path_to_error::Error<toml::de::Error>) -> ConfigFileError {
    let key = e.path().to_string();
    let key = if key == "." { String::new() } else { key };
    let inner = e.into_inner();
    let doc = toml_edit::ImDocument::parse(text);
    let message = inner.message().trim_end().to_owned();
    match doc {
        // A syntax error: toml_edit's span is the most precise.
        Err(syntax) => {
            let loc = Locator { path, text, doc: toml_edit::ImDocument::parse("").expect("empty document") };
            let message = syntax.message().trim_end().replace('\n', "; ");
            loc.at_span(syntax.span().or(inner.span()), String::new(), message)
        }
        Ok(doc) => {
            let loc = Locator { path, text, doc };
            loc.at_span(inner.span(), key, message)
        }
    }
}

/// Joins a relative path to the configuration file's directory and removes `.` and `..`
/// lexically (no symlinks are followed: the directories may not exist yet).
fn resolve(base: &Path, p: PathBuf) -> PathBuf {
    use std::path::Component;
    let joined = if p.is_absolute() { p } else { base.join(p) };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

fn convert(raw: RawConfig, loc: &Locator, path: &Path, base: &Path) -> Result<Config, ConfigFileError> {
    // Firms.
    let mut firms: Vec<String> = Vec::with_capacity(raw.firms.len());
    for (i, firm) in raw.firms.iter().enumerate() {
        let name_ok =
            (1..=4).contains(&firm.name.len()) && firm.name.bytes().all(|b| b.is_ascii_alphanumeric());
        if !name_ok {
            return Err(loc.error(
                &[K("firms"), I(i), K("name")],
                format!("firm name {:?} must be 1 to 4 letters or digits (it travels in OUCH's 4-byte Firm field)", firm.name),
            ));
        }
        if firms.contains(&firm.name) {
            return Err(
                loc.error(&[K("firms"), I(i), K("name")], format!("firm {:?} is defined twice", firm.name))
            );
        }
        firms.push(firm.name.clone());
    }

    // Risk profiles.
    let mut profiles: BTreeMap<&str, RiskLimits> = BTreeMap::new();
    for (name, p) in &raw.risk_profiles {
        let at = |key: &'static str| [K("risk_profiles"), K(name.as_str()), K(key)];
        let (max_orders_per_window, rate_window_ns) = match (p.max_orders_per_window, p.rate_window_ms) {
            (Limit::Unlimited, None) => (0, RiskLimits::UNLIMITED.rate_window_ns),
            (Limit::Unlimited, Some(_)) => {
                return Err(loc.error(
                    &at("rate_window_ms"),
                    "rate_window_ms has no effect while max_orders_per_window = \"unlimited\"; remove one of them",
                ))
            }
            (Limit::Value(0), _) => {
                return Err(loc.error(
                    &at("max_orders_per_window"),
                    "max_orders_per_window = 0 would refuse every order; write \"unlimited\" for no rate limit",
                ))
            }
            (Limit::Value(_), None) => {
                return Err(loc.error(&at("max_orders_per_window"), "max_orders_per_window needs rate_window_ms (the window length, ms)"))
            }
            (Limit::Value(n), Some(ms)) => match ms.checked_mul(1_000_000) {
                Some(ns) if ms > 0 => (n, ns),
                _ => return Err(loc.error(&at("rate_window_ms"), format!("rate_window_ms = {ms} must be between 1 and 2^44"))),
            },
        };
        let max_position = match p.max_position {
            Limit::Unlimited => RiskLimits::UNLIMITED.max_position,
            Limit::Value(v) if v <= i64::MAX as u64 => v,
            Limit::Value(v) => {
                return Err(
                    loc.error(&at("max_position"), format!("max_position = {v} must be at most 2^63-1"))
                )
            }
        };
        let limits = RiskLimits {
            max_order_qty: match p.max_order_qty {
                Limit::Unlimited => RiskLimits::UNLIMITED.max_order_qty,
                Limit::Value(v) => v,
            },
            max_order_notional: match p.max_order_notional {
                Limit::Unlimited => RiskLimits::UNLIMITED.max_order_notional,
                Limit::Value(Money(v)) => v,
            },
            price_collar_bps: match p.price_collar_bps {
                Limit::Unlimited => 0,
                Limit::Value(0) => return Err(loc.error(
                    &at("price_collar_bps"),
                    "a collar of 0 bps would refuse every priced order; write \"unlimited\" for no collar",
                )),
                Limit::Value(v) => v,
            },
            max_open_orders: match p.max_open_orders {
                Limit::Unlimited => RiskLimits::UNLIMITED.max_open_orders,
                Limit::Value(v) => v,
            },
            max_position,
            max_orders_per_window,
            rate_window_ns,
        };
        profiles.insert(name.as_str(), limits);
    }

    // Instruments.
    let mut instruments = Vec::with_capacity(raw.instruments.len());
    for (i, inst) in raw.instruments.iter().enumerate() {
        let at = |key: &'static str| [K("instruments"), I(i), K(key)];
        let symbol = Symbol::new(&inst.symbol).map_err(|e| loc.error(&at("symbol"), e))?;
        if inst.symbol.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(loc.error(
                &at("symbol"),
                format!("symbol {:?} must be upper case, as OUCH and ITCH carry it", inst.symbol),
            ));
        }
        instruments.push(InstrumentConfig {
            symbol,
            tick_size: inst.tick_size.0,
            lot_size: inst.lot_size,
            price_band_min: inst.price_band_min.0,
            price_band_max: inst.price_band_max.0,
            reference_price: inst.reference_price.map(|p| p.0),
        });
    }

    // Accounts.
    let mut accounts = Vec::with_capacity(raw.accounts.len());
    let mut account_infos: Vec<AccountInfo> = Vec::with_capacity(raw.accounts.len());
    for (i, acct) in raw.accounts.iter().enumerate() {
        let at = |key: &'static str| [K("accounts"), I(i), K(key)];
        let name_ok = (1..=32).contains(&acct.name.len())
            && acct.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(loc.error(
                &at("name"),
                format!("account name {:?} must be 1 to 32 of [A-Za-z0-9_-]", acct.name),
            ));
        }
        if account_infos.iter().any(|a| a.name == acct.name) {
            return Err(loc.error(&at("name"), format!("account {:?} is defined twice", acct.name)));
        }
        let Some(firm) = firms.iter().position(|f| *f == acct.firm) else {
            return Err(loc.error(
                &at("firm"),
                format!(
                    "firm {:?} is not defined; define it in a [[firms]] entry (defined: {})",
                    acct.firm,
                    list(&firms)
                ),
            ));
        };
        let Some(limits) = profiles.get(acct.risk_profile.as_str()) else {
            let defined: Vec<String> = profiles.keys().map(|k| k.to_string()).collect();
            return Err(loc.error(
                &at("risk_profile"),
                format!(
                    "risk profile {:?} is not defined; define it as [risk_profiles.{}] (defined: {})",
                    acct.risk_profile,
                    acct.risk_profile,
                    list(&defined)
                ),
            ));
        };
        accounts.push(AccountConfig { firm: firm as u32, stp: acct.stp, limits: *limits });
        account_infos.push(AccountInfo {
            name: acct.name.clone(),
            firm: acct.firm.clone(),
            risk_profile: acct.risk_profile.clone(),
        });
    }

    let engine = EngineConfig { instruments, accounts, max_orders: raw.engine.max_orders };
    engine.validate().map_err(|e| core_error(loc, &engine, e))?;

    // Journal.
    let mut journal = raw.journal;
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

    // Snapshots.
    let snapshots = SnapshotConfig {
        dir: resolve(base, raw.snapshots.dir),
        every_commands: raw.snapshots.every_commands,
        keep: raw.snapshots.keep,
    };
    if snapshots.every_commands == 0 {
        return Err(loc.error(&[K("snapshots"), K("every_commands")], "every_commands must be at least 1"));
    }
    if !(1..=MAX_SNAPSHOTS_KEPT).contains(&snapshots.keep) {
        return Err(loc.error(
            &[K("snapshots"), K("keep")],
            format!("keep = {} must be between 1 and {MAX_SNAPSHOTS_KEPT}", snapshots.keep),
        ));
    }
    let runtime = convert_runtime(raw.runtime, loc)?;

    let g = &raw.gateway;
    if g.max_sessions == 0 || g.max_sessions > MAX_SESSIONS {
        return Err(loc.error(
            &[K("gateway"), K("max_sessions")],
            format!("max_sessions = {} must be between 1 and {MAX_SESSIONS}", g.max_sessions),
        ));
    }
    let name_ok =
        (1..=10).contains(&g.session_name.len()) && g.session_name.bytes().all(|b| b.is_ascii_alphanumeric());
    if !name_ok {
        return Err(loc.error(
            &[K("gateway"), K("session_name")],
            format!("session_name = {:?} must be 1 to 10 letters or digits (SoupBinTCP)", g.session_name),
        ));
    }
    if !(MIN_SEND_BACKLOG_BYTES..=MAX_SEND_BACKLOG_BYTES).contains(&g.max_send_backlog_bytes) {
        return Err(loc.error(
            &[K("gateway"), K("max_send_backlog_bytes")],
            format!(
                "max_send_backlog_bytes = {} must be between {MIN_SEND_BACKLOG_BYTES} and {MAX_SEND_BACKLOG_BYTES}",
                g.max_send_backlog_bytes
            ),
        ));
    }
    let gateway = GatewayConfig {
        listen: raw.gateway.listen,
        users_file: resolve(base, raw.gateway.users_file),
        backend: raw.gateway.backend,
        max_sessions: raw.gateway.max_sessions,
        session_name: raw.gateway.session_name,
        max_send_backlog_bytes: raw.gateway.max_send_backlog_bytes,
        allow_readable_users_file: raw.gateway.allow_readable_users_file,
    };
    if !raw.admin.listen.ip().is_loopback() && !raw.admin.allow_non_loopback {
        return Err(loc.error(
            &[K("admin"), K("listen")],
            format!(
                "admin.listen = {} is not a loopback address: the admin endpoint can engage kill switches; \
                 set admin.allow_non_loopback = true if it really must be reachable from the network",
                raw.admin.listen
            ),
        ));
    }
    let admin = AdminConfig { listen: raw.admin.listen };
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.log.filter) {
        return Err(
            loc.error(&[K("log"), K("filter")], format!("invalid log filter {:?}: {e}", raw.log.filter))
        );
    }
    let log = LogConfig { filter: raw.log.filter };

    Ok(Config {
        path: path.to_owned(),
        engine,
        firms,
        accounts: account_infos,
        journal,
        snapshots,
        runtime,
        gateway,
        admin,
        log,
    })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Maps an error of `EngineConfig::validate` back to the key in the file.
fn core_error(loc: &Locator, engine: &EngineConfig, e: petrel_core::ConfigError) -> ConfigFileError {
    use petrel_core::ConfigError as C;
    let message = e.to_string();
    match &e {
        C::NoInstruments => {
            loc.error(&[K("instruments")], "no instruments configured; add an [[instruments]] entry")
        }
        C::TooManyInstruments(_) | C::TooManyAccounts(_) => loc.error(
            &[K(if matches!(e, C::TooManyInstruments(_)) { "instruments" } else { "accounts" })],
            message,
        ),
        C::MaxOrders(_) => loc.error(&[K("engine"), K("max_orders")], message),
        C::DuplicateSymbol(symbol) => {
            let i = engine.instruments.iter().rposition(|inst| inst.symbol.as_str() == symbol).unwrap_or(0);
            loc.error(&[K("instruments"), I(i), K("symbol")], message)
        }
        C::Instrument { symbol, what } => {
            let i = engine.instruments.iter().position(|inst| inst.symbol.as_str() == symbol).unwrap_or(0);
            let inst = &engine.instruments[i];
            // The core speaks price units; the file speaks currency units.
            let message = format!(
                "{message} (price units are 1/10000; in this file tick_size = \"{}\", price band \"{}\" ..= \"{}\")",
                format_price(inst.tick_size),
                format_price(inst.price_band_min),
                format_price(inst.price_band_max)
            );
            loc.error(&[K("instruments"), I(i), K(instrument_key(engine, i, what))], message)
        }
        C::Account { index, what } => loc.error(&[K("accounts"), I(*index)], what.to_string()),
    }
}

/// Which key of an instrument an `EngineConfig::validate` complaint is about. The core names the
/// field in its message; the unit test `every_core_instrument_error_maps_to_its_key` keeps the
/// two in step.
fn instrument_key(engine: &EngineConfig, i: usize, what: &str) -> &'static str {
    let inst = &engine.instruments[i];
    if what.starts_with("tick_size") {
        "tick_size"
    } else if what.starts_with("lot_size") {
        "lot_size"
    } else if what.starts_with("reference price") {
        "reference_price"
    } else if what.starts_with("price band")
        && inst.price_band_min > 0
        && inst.tick_size > 0
        && inst.price_band_min % inst.tick_size != 0
    {
        "price_band_min"
    } else if what.starts_with("price band") {
        "price_band_max"
    } else {
        "symbol"
    }
}

fn convert_runtime(raw: RawRuntime, loc: &Locator) -> Result<RuntimeConfig, ConfigFileError> {
    let realtime_priority = match raw.realtime_priority {
        None => None,
        Some(p @ 1..=99) => Some(p as u8),
        Some(p) => {
            return Err(loc.error(
                &[K("runtime"), K("realtime_priority")],
                format!("realtime_priority = {p} must be a SCHED_FIFO priority, 1 to 99"),
            ))
        }
    };
    let runtime = RuntimeConfig {
        mlockall: raw.mlockall,
        realtime_priority,
        gateway: raw.gateway,
        sequencer: raw.sequencer,
        journal: raw.journal,
        housekeeping: raw.housekeeping,
    };
    let threads = runtime.threads();
    for (t, (name, thread)) in threads.iter().enumerate() {
        let cores_at = [K("runtime"), K(name), K("cores")];
        let idle_at = [K("runtime"), K(name), K("idle")];
        for (c, &core) in thread.cores.iter().enumerate() {
            if core > MAX_CPU_ID {
                return Err(
                    loc.error(&cores_at, format!("core {core} is beyond the largest CPU id, {MAX_CPU_ID}"))
                );
            }
            if thread.cores[..c].contains(&core) {
                return Err(loc.error(&cores_at, format!("core {core} is listed twice")));
            }
            if let Some((other, _)) = threads[..t].iter().find(|(_, o)| o.cores.contains(&core)) {
                return Err(loc.error(
                    &cores_at,
                    format!("core {core} is also pinned to runtime.{other}: pinned threads need cores of their own, or they stall each other"),
                ));
            }
        }
        match thread.idle {
            IdleStrategy::BusySpin if thread.cores.is_empty() => {
                return Err(loc.error(
                    &idle_at,
                    format!("runtime.{name}: busy-spin needs a dedicated core (set runtime.{name}.cores); unpinned, it takes a core from every other thread"),
                ))
            }
            IdleStrategy::SpinYield { spins } if spins == 0 || spins > MAX_SPINS => {
                return Err(loc.error(&idle_at, format!("spin-yield spins = {spins} must be between 1 and {MAX_SPINS}")))
            }
            IdleStrategy::Park { min_us, max_us } if min_us == 0 || min_us > max_us || max_us > MAX_PARK_US => {
                return Err(loc.error(
                    &idle_at,
                    format!("park needs 1 <= min_us <= max_us <= {MAX_PARK_US}, got min_us = {min_us}, max_us = {max_us}"),
                ))
            }
            _ => {}
        }
    }
    Ok(runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_convert_exactly_and_refuse_extra_decimals() {
        assert_eq!(parse_price("585.33"), Ok(5_853_300));
        assert_eq!(parse_price("0.0001"), Ok(1));
        assert_eq!(parse_price("100"), Ok(1_000_000));
        assert_eq!(parse_price("-1.5"), Ok(-15_000));
        assert_eq!(
            parse_price("1.23456"),
            Err(DecimalError::TooManyDecimals { text: "1.23456".into(), decimals: 5 })
        );
        for bad in ["", ".5", "5.", "1,5", "1e3", "+1", "1.2.3", " 1"] {
            assert!(matches!(parse_price(bad), Err(DecimalError::Syntax(_))), "{bad:?}");
        }
        assert!(matches!(parse_price("9999999999999999"), Err(DecimalError::Overflow(_))));
        assert_eq!(format_price(5_853_300), "585.3300");
        assert_eq!(format_price(-15_000), "-1.5000");
        assert_eq!(format_price(1), "0.0001");
    }

    fn instrument(tick: Price, min: Price, max: Price, reference: Option<Price>, lot: u32) -> EngineConfig {
        EngineConfig {
            instruments: vec![InstrumentConfig {
                symbol: Symbol::new("X").unwrap(),
                tick_size: tick,
                lot_size: lot,
                price_band_min: min,
                price_band_max: max,
                reference_price: reference,
            }],
            accounts: vec![],
            max_orders: 10,
        }
    }

    #[test]
    fn every_core_instrument_error_maps_to_its_key() {
        let cases = [
            (instrument(0, 100, 200, None, 1), "tick_size"),
            (instrument(100, 100, 200, None, 0), "lot_size"),
            (instrument(100, 150, 200, None, 1), "price_band_min"),
            (instrument(100, 100, 250, None, 1), "price_band_max"),
            (instrument(100, 200, 100, None, 1), "price_band_max"),
            (instrument(1, 1, 1 << 30, None, 1), "price_band_max"),
            (instrument(100, 100, 200, Some(300), 1), "reference_price"),
        ];
        for (config, key) in cases {
            let Err(petrel_core::ConfigError::Instrument { what, .. }) = config.validate() else {
                panic!("expected an instrument error for {config:?}");
            };
            assert_eq!(instrument_key(&config, 0, &what), key, "{what}");
        }
    }
}
