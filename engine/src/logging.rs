//! Logging: the global `tracing` subscriber and the hot threads' bounded log ring.
//!
//! Under systemd with stderr connected to the journal, records go to journald with structured
//! fields (`journalctl -u petrel-engine SESSION=3 ACCOUNT=7`); anywhere else they are
//! human-readable lines on stderr. The filter is `RUST_LOG` when set, else the configuration's
//! `[log] filter`.
//!
//! Hot threads (gateway, sequencer, journal) never format or write a log line: they push a
//! small `Copy` [`HotRecord`] into a [`HotLog`] ring and carry on; when the ring is full the
//! record is dropped and counted. Housekeeping drains the ring into `tracing`.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::queue::ArrayQueue;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// The journal's `SYSLOG_IDENTIFIER` (`journalctl -t petrel-engine`).
pub const SYSLOG_IDENTIFIER: &str = "petrel-engine";

/// Where the filter came from, for the start-up log line and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterSource {
    RustLog,
    Config,
}

impl std::fmt::Display for FilterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FilterSource::RustLog => "the RUST_LOG environment variable",
            FilterSource::Config => "[log] filter in the configuration",
        })
    }
}

/// Where log records go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Journald,
    Stderr,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(
        "invalid log filter {filter:?} in {source_name}: {reason} \
         (expected directives like \"info\" or \"warn,petrel_engine=debug\")"
    )]
    Filter { source_name: FilterSource, filter: String, reason: String },
    #[error("RUST_LOG is not valid UTF-8")]
    RustLogNotUnicode,
    #[error("a global logger is already installed: {0}")]
    AlreadyInstalled(String),
}

/// What [`init`] set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSetup {
    pub target: LogTarget,
    pub filter_source: FilterSource,
    pub filter: String,
}

/// The filter to use: `RUST_LOG` if set (an operator's override for one run), else the
/// configuration's.
pub fn resolve_filter(
    config_filter: &str,
    rust_log: Option<&str>,
) -> Result<(EnvFilter, FilterSource, String), LoggingError> {
    let (text, source_name) = match rust_log {
        Some(s) if !s.trim().is_empty() => (s, FilterSource::RustLog),
        _ => (config_filter, FilterSource::Config),
    };
    let filter = EnvFilter::builder().parse(text).map_err(|e| LoggingError::Filter {
        source_name,
        filter: text.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((filter, source_name, text.to_owned()))
}

/// Whether stderr is the journal stream systemd set up for this service: `JOURNAL_STREAM`
/// holds the `device:inode` of that stream, and only if stderr still is it do our records
/// belong in the journal (systemd.exec(5)). A shell on a systemd host has journald's socket
/// but a terminal on stderr: that gets human-readable lines.
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some((dev, ino)) = journal_stream.and_then(|s| s.split_once(':')) else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    // stat() through /proc follows the descriptor to the socket or file it refers to.
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(meta) => meta.dev() == dev && meta.ino() == ino,
        Err(_) => false,
    }
}

/// Installs the global subscriber. Call once, before the threads start.
pub fn init(config: &LogConfig) -> Result<LogSetup, LoggingError> {
    let rust_log = match std::env::var("RUST_LOG") {
        Ok(s) => Some(s),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => return Err(LoggingError::RustLogNotUnicode),
    };
    let (filter, filter_source, filter_text) = resolve_filter(&config.filter, rust_log.as_deref())?;
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let journald = if stderr_is_journal(journal_stream.as_deref()) {
        match tracing_journald::layer() {
            Ok(layer) => Some(
                layer
                    // Our field names (session, account, order_ref, sequence) become SESSION,
                    // ACCOUNT, ... with no F_ prefix, so operators can match on them directly.
                    .with_field_prefix(None)
                    .with_syslog_identifier(SYSLOG_IDENTIFIER.to_owned()),
            ),
            // stderr still reaches the journal, as plain lines: better than no logs.
            Err(e) => {
                eprintln!("petrel-engine: journald socket unusable ({e}); logging to stderr");
                None
            }
        }
    } else {
        None
    };
    let target = if journald.is_some() { LogTarget::Journald } else { LogTarget::Stderr };
    let stderr = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(stderr)
        .try_init()
        .map_err(|e| LoggingError::AlreadyInstalled(e.to_string()))?;
    Ok(LogSetup { target, filter_source, filter: filter_text })
}

/// Severity of a hot-thread record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// One hot-thread log record: a static message and the identifiers an operator searches by.
/// `Copy` and allocation-free so that logging from the data plane costs a ring push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HotRecord {
    pub level: HotLevel,
    pub message: &'static str,
    pub session: Option<u32>,
    pub account: Option<u32>,
    pub order_ref: Option<u64>,
    pub sequence: Option<u64>,
}

impl HotRecord {
    pub const fn new(level: HotLevel, message: &'static str) -> HotRecord {
        HotRecord { level, message, session: None, account: None, order_ref: None, sequence: None }
    }
    pub const fn session(mut self, session: u32) -> HotRecord {
        self.session = Some(session);
        self
    }
    pub const fn account(mut self, account: u32) -> HotRecord {
        self.account = Some(account);
        self
    }
    pub const fn order_ref(mut self, order_ref: u64) -> HotRecord {
        self.order_ref = Some(order_ref);
        self
    }
    pub const fn sequence(mut self, sequence: u64) -> HotRecord {
        self.sequence = Some(sequence);
        self
    }
}

/// A bounded multi-producer ring of [`HotRecord`]s. Producers never block; housekeeping
/// drains. Share it with `Arc`.
#[derive(Debug)]
pub struct HotLog {
    ring: ArrayQueue<HotRecord>,
    dropped_total: AtomicU64,
    /// Drops already reported by a drain; touched only by housekeeping.
    dropped_reported: AtomicU64,
}

impl HotLog {
    /// A ring of `capacity_records` records, allocated now.
    pub fn new(capacity_records: usize) -> HotLog {
        assert!(capacity_records > 0, "a log ring needs room for at least one record");
        HotLog {
            ring: ArrayQueue::new(capacity_records),
            dropped_total: AtomicU64::new(0),
            dropped_reported: AtomicU64::new(0),
        }
    }

    /// Queues `record`; returns false (and counts the drop) when the ring is full.
    #[inline]
    pub fn try_log(&self, record: HotRecord) -> bool {
        match self.ring.push(record) {
            Ok(()) => true,
            Err(_) => {
                self.dropped_total.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Records dropped since start (`petrel_log_dropped_total`).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Records waiting to be drained.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Emits up to `max_records` queued records into `tracing`, then one warning for any drops
    /// since the last drain. Bounded so a flood cannot starve housekeeping's other duties.
    /// Returns the number of records emitted.
    pub fn drain(&self, max_records: usize) -> usize {
        let mut emitted = 0;
        while emitted < max_records {
            let Some(r) = self.ring.pop() else { break };
            emit(&r);
            emitted += 1;
        }
        let dropped = self.dropped_total();
        let reported = self.dropped_reported.swap(dropped, Ordering::Relaxed);
        if dropped > reported {
            tracing::warn!(
                dropped_records = dropped - reported,
                dropped_total = dropped,
                "hot-thread log ring was full; records were dropped"
            );
        }
        emitted
    }
}

fn emit(r: &HotRecord) {
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(
                target: "petrel_engine::hot",
                $level,
                session = r.session,
                account = r.account,
                order_ref = r.order_ref,
                sequence = r.sequence,
                "{}",
                r.message
            )
        };
    }
    match r.level {
        HotLevel::Error => at!(tracing::Level::ERROR),
        HotLevel::Warn => at!(tracing::Level::WARN),
        HotLevel::Info => at!(tracing::Level::INFO),
        HotLevel::Debug => at!(tracing::Level::DEBUG),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_configuration() {
        let (_, source, text) = resolve_filter("info", Some("debug,petrel_engine=trace")).unwrap();
        assert_eq!((source, text.as_str()), (FilterSource::RustLog, "debug,petrel_engine=trace"));
        let (_, source, _) = resolve_filter("info", Some("  ")).unwrap();
        assert_eq!(source, FilterSource::Config, "an empty RUST_LOG is unset");
        let (_, source, _) = resolve_filter("warn", None).unwrap();
        assert_eq!(source, FilterSource::Config);
    }

    #[test]
    fn a_bad_filter_names_where_it_came_from() {
        let e = resolve_filter("info,petrel_engine=loud", None).unwrap_err().to_string();
        assert!(e.contains("\"info,petrel_engine=loud\"") && e.contains("[log] filter"), "{e}");
        let e = resolve_filter("info", Some("=[")).unwrap_err().to_string();
        assert!(e.contains("RUST_LOG"), "{e}");
    }

    #[test]
    fn journal_stream_must_match_stderr() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(Some("0:0")));
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata("/proc/self/fd/2").unwrap();
        assert!(stderr_is_journal(Some(&format!("{}:{}", meta.dev(), meta.ino()))));
    }
}
