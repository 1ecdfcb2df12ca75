//! Prometheus text exposition (format 0.0.4) of the engine's metrics.
//!
//! Recording is not here: the hot threads bump relaxed atomics in `RuntimeStats` and update
//! thread-local hdrhistograms, which housekeeping merges into a [`LatencySummary`]. This module
//! renders a snapshot of those into text when `/metrics` is scraped.
//!
//! Hand-written rather than `prometheus-client`: that crate owns the recording side (its own
//! metric types and registry, which would duplicate `RuntimeStats`), has no summary type to
//! carry hdrhistogram quantiles, and encodes OpenMetrics rather than 0.0.4 text. The format
//! itself is a few lines per metric; what needs care (name validity, label and HELP escaping,
//! `_total` on counters, NaN for an empty window) is here and checked by `promtool check
//! metrics` in the tests.
//!
//! Every metric the engine exports is declared once in [`CATALOGUE`] with its type, help and
//! label; docs/METRICS.md, the alert rules and the dashboard are tested against it.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// The Prometheus type of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Summary,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Summary => "summary",
        }
    }
}

/// One exported metric: its full name (with the `petrel_` prefix and unit suffix), type,
/// help text and label name (at most one label besides a summary's `quantile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: MetricKind,
    pub help: &'static str,
    pub label: Option<&'static str>,
}

const fn def(
    name: &'static str,
    kind: MetricKind,
    label: Option<&'static str>,
    help: &'static str,
) -> MetricDef {
    MetricDef { name, kind, help, label }
}

use MetricKind::{Counter, Gauge, Summary};

pub const BUILD_INFO: MetricDef =
    def("petrel_build_info", Gauge, Some("version"), "Always 1; the label carries the engine version.");
pub const START_TIME_SECONDS: MetricDef = def(
    "petrel_start_time_seconds",
    Gauge,
    None,
    "Unix time at which this engine process started; a change means a restart.",
);
pub const READY: MetricDef = def(
    "petrel_ready",
    Gauge,
    None,
    "1 when the engine is ready to trade (journal recovered, listeners bound), else 0.",
);
pub const COMMANDS_TOTAL: MetricDef = def(
    "petrel_commands_total",
    Counter,
    None,
    "Commands sequenced (accepted and rejected), including control-plane commands.",
);
pub const REJECTS_TOTAL: MetricDef = def(
    "petrel_rejects_total",
    Counter,
    Some("reason"),
    "Commands rejected, by reason (RejectReason::as_str).",
);
pub const EXECUTIONS_TOTAL: MetricDef =
    def("petrel_executions_total", Counter, None, "Executions (fills), one per match.");
pub const CANCELS_TOTAL: MetricDef =
    def("petrel_cancels_total", Counter, None, "Orders cancelled or reduced, for any reason.");
pub const POSITION_LIMIT_REJECTS_TOTAL: MetricDef = def(
    "petrel_position_limit_rejects_total",
    Counter,
    Some("account"),
    "Orders rejected because they would breach the account's position limit.",
);
pub const KILL_SWITCH_ENGAGED: MetricDef = def(
    "petrel_kill_switch_engaged",
    Gauge,
    Some("account"),
    "1 while the account's kill switch blocks new orders, else 0.",
);
pub const SESSIONS: MetricDef = def("petrel_sessions", Gauge, None, "OUCH sessions logged in now.");
pub const SESSION_DISCONNECTS_TOTAL: MetricDef = def(
    "petrel_session_disconnects_total",
    Counter,
    Some("cause"),
    "Sessions ended, by cause (logout, peer_closed, heartbeat_timeout, protocol_error, \
     slow_consumer, io_error, shutdown).",
);
pub const GATEWAY_CONNECTIONS_REFUSED_TOTAL: MetricDef = def(
    "petrel_gateway_connections_refused_total",
    Counter,
    None,
    "Connections closed at accept because every session slot (gateway.max_sessions) was in use.",
);
pub const OUTPUTS_REGENERATED_TOTAL: MetricDef = def(
    "petrel_outputs_regenerated_total",
    Counter,
    None,
    "OUCH messages regenerated at start from the input journal: outputs of durable commands that \
     a crash kept from being recorded.",
);
pub const RING_DEPTH: MetricDef =
    def("petrel_ring_depth", Gauge, Some("ring"), "Entries queued in the ring at scrape time.");
pub const RING_CAPACITY: MetricDef =
    def("petrel_ring_capacity", Gauge, Some("ring"), "Fixed capacity of the ring, in entries.");
pub const RING_FULL_TOTAL: MetricDef = def(
    "petrel_ring_full_total",
    Counter,
    Some("ring"),
    "Times a producer found the ring full and had to wait or push back.",
);
pub const LAST_SEQUENCE: MetricDef =
    def("petrel_last_sequence", Gauge, None, "Sequence number of the last command sequenced.");
pub const DURABLE_SEQUENCE: MetricDef = def(
    "petrel_durable_sequence",
    Gauge,
    None,
    "Highest sequence number durable in the journal; outputs up to it are released.",
);
pub const JOURNAL_BYTES_TOTAL: MetricDef =
    def("petrel_journal_bytes_total", Counter, None, "Bytes appended to the journal.");
pub const JOURNAL_BATCHES_TOTAL: MetricDef = def(
    "petrel_journal_batches_total",
    Counter,
    None,
    "Journal write batches (one write and, with durability fsync, one fdatasync each).",
);
pub const JOURNAL_BATCH_RECORDS: MetricDef =
    def("petrel_journal_batch_records", Gauge, None, "Records in the most recent journal batch.");
pub const JOURNAL_FSYNC_LATENCY_SECONDS: MetricDef = def(
    "petrel_journal_fsync_latency_seconds",
    Summary,
    None,
    "Journal fdatasync latency; quantiles over the last one to two summary windows.",
);
pub const JOURNAL_DISK_FREE_BYTES: MetricDef = def(
    "petrel_journal_disk_free_bytes",
    Gauge,
    None,
    "Bytes available to the engine on the journal's filesystem (statvfs f_bavail).",
);
pub const JOURNAL_DISK_SIZE_BYTES: MetricDef =
    def("petrel_journal_disk_size_bytes", Gauge, None, "Size of the journal's filesystem.");
pub const WIRE_TO_WIRE_LATENCY_SECONDS: MetricDef = def(
    "petrel_wire_to_wire_latency_seconds",
    Summary,
    None,
    "Inside the engine, from a command's bytes read off the socket to its response written; \
     quantiles over the last one to two summary windows.",
);
pub const MATCHER_SERVICE_TIME_SECONDS: MetricDef = def(
    "petrel_matcher_service_time_seconds",
    Summary,
    None,
    "Matcher time per command (risk, match, events); quantiles over the last one to two \
     summary windows.",
);
pub const WATCHDOG_PINGS_TOTAL: MetricDef =
    def("petrel_watchdog_pings_total", Counter, None, "WATCHDOG=1 notifications sent to systemd.");
pub const WATCHDOG_WITHHELD_TOTAL: MetricDef = def(
    "petrel_watchdog_withheld_total",
    Counter,
    Some("thread"),
    "Watchdog ticks withheld because this pinned thread made no progress with work queued.",
);
pub const LOG_DROPPED_TOTAL: MetricDef = def(
    "petrel_log_dropped_total",
    Counter,
    None,
    "Hot-thread log records dropped because the log ring was full.",
);
pub const CONFIG_RELOADS_TOTAL: MetricDef = def(
    "petrel_config_reloads_total",
    Counter,
    Some("result"),
    "SIGHUP reloads of risk limits and users, by result (applied, refused).",
);
pub const CONFIG_LAST_RELOAD_OK: MetricDef = def(
    "petrel_config_last_reload_ok",
    Gauge,
    None,
    "1 if the last reload was applied (or none was tried), 0 if it was refused and the \
     previous configuration is still running.",
);

pub const REPLICATION_ROLE: MetricDef = def(
    "petrel_replication_role",
    Gauge,
    Some("role"),
    "1 for this engine's replication role (primary or standby); absent without [replication].",
);
pub const REPLICATION_CONNECTED: MetricDef = def(
    "petrel_replication_connected",
    Gauge,
    None,
    "1 while the peer (the standby on a primary, the primary on a standby) is connected past the handshake.",
);
pub const REPLICATION_STANDBY_DURABLE_SEQUENCE: MetricDef = def(
    "petrel_replication_standby_durable_sequence",
    Gauge,
    None,
    "Highest sequence durable in the standby's journal (on a primary: its last acknowledgement).",
);
pub const REPLICATION_LAG_RECORDS: MetricDef = def(
    "petrel_replication_lag_records",
    Gauge,
    None,
    "Records durable on the primary that the standby does not have yet.",
);
pub const REPLICATION_RECORDS_TOTAL: MetricDef = def(
    "petrel_replication_records_total",
    Counter,
    None,
    "Journal records shipped to the standby (primary) or journaled and applied (standby).",
);
pub const REPLICATION_REFUSED_TOTAL: MetricDef = def(
    "petrel_replication_refused_total",
    Counter,
    Some("refusal"),
    "Replication peers refused or cut off, by cause (protocol, cluster, secret, sequence, epoch).",
);
pub const REPLICATION_DISCONNECTS_TOTAL: MetricDef = def(
    "petrel_replication_disconnects_total",
    Counter,
    None,
    "Replication connections that ended after the handshake.",
);
pub const REPLICATION_HALTED: MetricDef = def(
    "petrel_replication_halted",
    Gauge,
    None,
    "1 while a primary with ack = standby and on_standby_loss = halt acknowledges nothing for lack of a caught-up standby.",
);
pub const REPLICATION_STANDBY_PROMOTABLE: MetricDef = def(
    "petrel_replication_standby_promotable",
    Gauge,
    None,
    "1 while the standby holds every record the primary made durable (promoting it loses no acknowledged order).",
);

pub const FAILOVER_LEADER: MetricDef = def(
    "petrel_failover_leader",
    Gauge,
    None,
    "1 while this engine holds the etcd leader key ([failover] mode = \"etcd\").",
);
pub const FAILOVER_FENCED: MetricDef = def(
    "petrel_failover_fenced",
    Gauge,
    None,
    "1 while this engine holds the leader key but cannot be sure its lease is valid: it acknowledges nothing.",
);
pub const FAILOVER_LEASE_REMAINING_SECONDS: MetricDef = def(
    "petrel_failover_lease_remaining_seconds",
    Gauge,
    None,
    "How long the leader lease is certainly valid for (renewals push it forward; 0 when fenced or not leader).",
);
pub const FAILOVER_PROMOTIONS_TOTAL: MetricDef = def(
    "petrel_failover_promotions_total",
    Counter,
    None,
    "Times this standby took the leader key and promoted itself.",
);
pub const FAILOVER_TAKEOVER_SECONDS: MetricDef = def(
    "petrel_failover_takeover_seconds",
    Gauge,
    None,
    "The last promotion: seconds from seeing the leader key gone to holding it.",
);
pub const FAILOVER_REFUSED_TOTAL: MetricDef = def(
    "petrel_failover_refused_total",
    Counter,
    None,
    "Leader keys refused: a value that does not parse, or an epoch older than this engine's; and <prefix>/standby values that do not parse.",
);
pub const FAILOVER_ETCD_ERRORS_TOTAL: MetricDef = def(
    "petrel_failover_etcd_errors_total",
    Counter,
    None,
    "etcd requests that no member answered (renewals, reads of the leader key, reads and writes of <prefix>/standby).",
);
pub const FAILOVER_STANDBY_PROMOTABLE: MetricDef = def(
    "petrel_failover_standby_promotable",
    Gauge,
    None,
    "0 while this primary has told etcd (<prefix>/standby) that its standby is not promotable (on_standby_loss = \"continue\": it acknowledged without it); 1 otherwise.",
);
pub const REPLICATION_REBUILDS_TOTAL: MetricDef = def(
    "petrel_replication_rebuilds_total",
    Counter,
    None,
    "Backups of the primary sent to a standby that needed records retention deleted (primary), or restored from (standby).",
);
pub const REPLICATION_EPOCH: MetricDef = def(
    "petrel_replication_epoch",
    Gauge,
    None,
    "This engine's epoch: 1 at first, one more at each promotion (a standby follows its primary's).",
);
pub const REPLICATION_LAG_SECONDS: MetricDef = def(
    "petrel_replication_lag_seconds",
    Gauge,
    None,
    "Standby only: how far back in time its state is while it lacks records the primary announced (now minus the sequenced timestamp of its last applied record); 0 when it has them all.",
);
pub const REPLICATION_HASH_CHECKS_TOTAL: MetricDef = def(
    "petrel_replication_hash_checks_total",
    Counter,
    None,
    "State hashes sent to the standby (primary) or compared with the primary's (standby), one per snapshots.every_commands commands.",
);
pub const REPLICATION_DIVERGENCES_TOTAL: MetricDef = def(
    "petrel_replication_divergences_total",
    Counter,
    None,
    "State hash comparisons on the standby that differed from the primary's: its state is not the primary's and it will not be promoted.",
);

pub const FEED_MESSAGES_TOTAL: MetricDef = def(
    "petrel_feed_messages_total",
    Counter,
    None,
    "ITCH messages recorded in the market-data feed journal (each gets the next MoldUDP64 sequence number).",
);
pub const FEED_REGENERATED_MESSAGES_TOTAL: MetricDef = def(
    "petrel_feed_regenerated_messages_total",
    Counter,
    None,
    "Feed messages regenerated at start from the input journal: book changes of durable commands that a crash kept from the feed journal.",
);
pub const FEED_PACKETS_TOTAL: MetricDef =
    def("petrel_feed_packets_total", Counter, None, "MoldUDP64 downstream packets with messages sent.");
pub const FEED_BYTES_TOTAL: MetricDef = def(
    "petrel_feed_bytes_total",
    Counter,
    None,
    "UDP payload bytes of the feed's downstream packets, heartbeats and End of Session.",
);
pub const FEED_HEARTBEATS_TOTAL: MetricDef =
    def("petrel_feed_heartbeats_total", Counter, None, "MoldUDP64 heartbeats sent while the feed was idle.");
pub const FEED_SEND_ERRORS_TOTAL: MetricDef = def(
    "petrel_feed_send_errors_total",
    Counter,
    None,
    "Feed packet sends the kernel refused (not retried: listeners recover the gap by request).",
);
pub const FEED_JOURNAL_ERRORS_TOTAL: MetricDef = def(
    "petrel_feed_journal_errors_total",
    Counter,
    None,
    "Feed journal appends, commits or reads that failed (disk full or I/O error).",
);
pub const FEED_RECORDED_SEQUENCE: MetricDef = def(
    "petrel_feed_recorded_sequence",
    Gauge,
    None,
    "The newest feed sequence number recorded in the feed journal.",
);
pub const FEED_SENT_SEQUENCE: MetricDef = def(
    "petrel_feed_sent_sequence",
    Gauge,
    None,
    "The newest feed sequence number sent; recorded minus sent is how far the publisher is behind.",
);
pub const FEED_REQUESTS_SERVED_TOTAL: MetricDef =
    def("petrel_feed_requests_served_total", Counter, None, "MoldUDP64 retransmission requests answered.");
pub const FEED_RETRANSMITTED_MESSAGES_TOTAL: MetricDef = def(
    "petrel_feed_retransmitted_messages_total",
    Counter,
    None,
    "Feed messages sent again in answers to retransmission requests.",
);
pub const FEED_REQUESTS_REFUSED_TOTAL: MetricDef = def(
    "petrel_feed_requests_refused_total",
    Counter,
    Some("refusal"),
    "Retransmission requests refused, by refusal: malformed, wrong_session, out_of_range, rate_limited.",
);
pub const FEED_SNAPSHOT_SESSIONS_TOTAL: MetricDef = def(
    "petrel_feed_snapshot_sessions_total",
    Counter,
    Some("result"),
    "Late joiners served by the snapshot service, by result: sent, or failed (no login, too slow, gone).",
);

/// Every metric the engine exports, in exposition order.
pub const CATALOGUE: &[MetricDef] = &[
    BUILD_INFO,
    START_TIME_SECONDS,
    READY,
    COMMANDS_TOTAL,
    REJECTS_TOTAL,
    EXECUTIONS_TOTAL,
    CANCELS_TOTAL,
    POSITION_LIMIT_REJECTS_TOTAL,
    KILL_SWITCH_ENGAGED,
    SESSIONS,
    SESSION_DISCONNECTS_TOTAL,
    GATEWAY_CONNECTIONS_REFUSED_TOTAL,
    OUTPUTS_REGENERATED_TOTAL,
    RING_DEPTH,
    RING_CAPACITY,
    RING_FULL_TOTAL,
    LAST_SEQUENCE,
    DURABLE_SEQUENCE,
    JOURNAL_BYTES_TOTAL,
    JOURNAL_BATCHES_TOTAL,
    JOURNAL_BATCH_RECORDS,
    JOURNAL_FSYNC_LATENCY_SECONDS,
    JOURNAL_DISK_FREE_BYTES,
    JOURNAL_DISK_SIZE_BYTES,
    WIRE_TO_WIRE_LATENCY_SECONDS,
    MATCHER_SERVICE_TIME_SECONDS,
    WATCHDOG_PINGS_TOTAL,
    WATCHDOG_WITHHELD_TOTAL,
    LOG_DROPPED_TOTAL,
    CONFIG_RELOADS_TOTAL,
    CONFIG_LAST_RELOAD_OK,
    REPLICATION_ROLE,
    REPLICATION_CONNECTED,
    REPLICATION_STANDBY_DURABLE_SEQUENCE,
    REPLICATION_LAG_RECORDS,
    REPLICATION_RECORDS_TOTAL,
    REPLICATION_REFUSED_TOTAL,
    REPLICATION_DISCONNECTS_TOTAL,
    REPLICATION_HALTED,
    REPLICATION_STANDBY_PROMOTABLE,
    REPLICATION_HASH_CHECKS_TOTAL,
    REPLICATION_DIVERGENCES_TOTAL,
    REPLICATION_EPOCH,
    REPLICATION_LAG_SECONDS,
    REPLICATION_REBUILDS_TOTAL,
    FAILOVER_LEADER,
    FAILOVER_FENCED,
    FAILOVER_LEASE_REMAINING_SECONDS,
    FAILOVER_PROMOTIONS_TOTAL,
    FAILOVER_TAKEOVER_SECONDS,
    FAILOVER_REFUSED_TOTAL,
    FAILOVER_ETCD_ERRORS_TOTAL,
    FAILOVER_STANDBY_PROMOTABLE,
    FEED_MESSAGES_TOTAL,
    FEED_REGENERATED_MESSAGES_TOTAL,
    FEED_PACKETS_TOTAL,
    FEED_BYTES_TOTAL,
    FEED_HEARTBEATS_TOTAL,
    FEED_SEND_ERRORS_TOTAL,
    FEED_JOURNAL_ERRORS_TOTAL,
    FEED_RECORDED_SEQUENCE,
    FEED_SENT_SEQUENCE,
    FEED_REQUESTS_SERVED_TOTAL,
    FEED_RETRANSMITTED_MESSAGES_TOTAL,
    FEED_REQUESTS_REFUSED_TOTAL,
    FEED_SNAPSHOT_SESSIONS_TOTAL,
];

/// Quantiles every summary reports; `1` is the maximum of the window.
pub const SUMMARY_QUANTILES: [f64; 4] = [0.5, 0.99, 0.999, 1.0];

/// The `Content-Type` of what [`Exposition`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes metrics into a caller-owned `String` (reused across scrapes by the admin handler).
/// Misuse (a counter rendered as a gauge, a missing label) is a programmer error and panics.
pub struct Exposition<'a> {
    out: &'a mut String,
}

impl<'a> Exposition<'a> {
    pub fn new(out: &'a mut String) -> Exposition<'a> {
        Exposition { out }
    }

    /// An unlabelled counter.
    pub fn counter(&mut self, def: &MetricDef, value: u64) {
        self.header(def, MetricKind::Counter, false);
        let _ = writeln!(self.out, "{} {value}", def.name);
    }

    /// An unlabelled gauge.
    pub fn gauge(&mut self, def: &MetricDef, value: f64) {
        self.header(def, MetricKind::Gauge, false);
        self.out.push_str(def.name);
        self.out.push(' ');
        push_float(self.out, value);
        self.out.push('\n');
    }

    /// A labelled counter family: one sample per `(label value, count)`.
    pub fn counters<'v>(&mut self, def: &MetricDef, samples: impl IntoIterator<Item = (&'v str, u64)>) {
        let label = self.header(def, MetricKind::Counter, true);
        for (value, count) in samples {
            self.labelled_name(def.name, label, value);
            let _ = writeln!(self.out, " {count}");
        }
    }

    /// A labelled gauge family.
    pub fn gauges<'v>(&mut self, def: &MetricDef, samples: impl IntoIterator<Item = (&'v str, f64)>) {
        let label = self.header(def, MetricKind::Gauge, true);
        for (value, sample) in samples {
            self.labelled_name(def.name, label, value);
            self.out.push(' ');
            push_float(self.out, sample);
            self.out.push('\n');
        }
    }

    /// A latency summary recorded in nanoseconds, exported in seconds.
    pub fn summary_ns(&mut self, def: &MetricDef, summary: &LatencySummary) {
        self.header(def, MetricKind::Summary, false);
        for q in SUMMARY_QUANTILES {
            let _ = write!(self.out, "{}{{quantile=\"{q}\"}} ", def.name);
            match summary.quantile_ns(q) {
                Some(ns) => push_float(self.out, ns as f64 / 1e9),
                // No observation in the window: Prometheus' convention for an empty summary.
                None => self.out.push_str("NaN"),
            }
            self.out.push('\n');
        }
        let _ = write!(self.out, "{}_sum ", def.name);
        push_float(self.out, summary.sum_ns_total as f64 / 1e9);
        let _ = writeln!(self.out, "\n{}_count {}", def.name, summary.count_total);
    }

    /// `# HELP` and `# TYPE`, after checking the call matches the declaration. Returns the
    /// label name for labelled families.
    fn header(&mut self, def: &MetricDef, kind: MetricKind, labelled: bool) -> &'static str {
        assert_eq!(def.kind, kind, "{} is declared as a {:?}", def.name, def.kind);
        assert_eq!(def.label.is_some(), labelled, "{} is declared with label {:?}", def.name, def.label);
        debug_assert!(valid_name(def.name), "invalid metric name {:?}", def.name);
        debug_assert!(
            (kind == MetricKind::Counter) == def.name.ends_with("_total"),
            "{}: counters and only counters end in _total",
            def.name
        );
        let _ = write!(self.out, "# HELP {} ", def.name);
        for c in def.help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {} {}", def.name, kind.as_str());
        def.label.unwrap_or("")
    }

    fn labelled_name(&mut self, name: &str, label: &str, value: &str) {
        let _ = write!(self.out, "{name}{{{label}=\"");
        for c in value.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '"' => self.out.push_str("\\\""),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\"}");
    }
}

fn push_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Highest latency a summary tracks, in ns (one minute): anything slower is clamped to it and
/// is an incident whatever its exact value.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// A latency summary kept by housekeeping: quantiles over a window, count and sum over the
/// process lifetime (Prometheus summary semantics, so `rate(_sum)/rate(_count)` is a mean),
/// and the whole distribution over the process lifetime.
///
/// Hot threads record into their own `Histogram`s; housekeeping [`absorb`](Self::absorb)s
/// them and calls [`rotate`](Self::rotate) once per window (e.g. every 30 s), so the
/// quantiles cover between one and two windows: recent enough for an alert on p99, never
/// empty right after a rotation. The lifetime histogram is never rotated: a client that reads
/// it twice (`GET /latency`) and subtracts gets the exact distribution between its reads,
/// whatever the windows did meanwhile.
#[derive(Debug)]
pub struct LatencySummary {
    current: Histogram<u64>,
    previous: Histogram<u64>,
    lifetime: Histogram<u64>,
    count_total: u64,
    sum_ns_total: u128,
}

impl Default for LatencySummary {
    fn default() -> LatencySummary {
        LatencySummary::new()
    }
}

impl LatencySummary {
    pub fn new() -> LatencySummary {
        LatencySummary {
            current: new_latency_histogram(),
            previous: new_latency_histogram(),
            lifetime: new_latency_histogram(),
            count_total: 0,
            sum_ns_total: 0,
        }
    }

    /// Adds a thread's histogram (in ns). Values above [`LATENCY_NS_MAX`] count as the max.
    pub fn absorb(&mut self, recorded: &Histogram<u64>) {
        for v in recorded.iter_recorded() {
            let value_ns = v.value_iterated_to().min(LATENCY_NS_MAX);
            let count = v.count_at_value();
            self.current.saturating_record_n(value_ns, count);
            self.lifetime.saturating_record_n(value_ns, count);
            self.count_total = self.count_total.saturating_add(count);
            self.sum_ns_total += u128::from(value_ns) * u128::from(count);
        }
    }

    /// Records one latency directly (housekeeping's own measurements, tests).
    pub fn record_ns(&mut self, value_ns: u64) {
        let value_ns = value_ns.min(LATENCY_NS_MAX);
        self.current.saturating_record(value_ns);
        self.lifetime.saturating_record(value_ns);
        self.count_total = self.count_total.saturating_add(1);
        self.sum_ns_total += u128::from(value_ns);
    }

    /// Starts a new window; the one just finished stays in the quantiles until the next call.
    pub fn rotate(&mut self) {
        std::mem::swap(&mut self.current, &mut self.previous);
        self.current.reset();
    }

    /// The `q` quantile (0..=1) over the current and previous windows, in ns; `None` when
    /// both are empty.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        assert!((0.0..=1.0).contains(&q), "quantile {q} outside 0..=1");
        let total = self.current.len() + self.previous.len();
        if total == 0 {
            return None;
        }
        if self.previous.is_empty() {
            return Some(quantile_of(&self.current, q));
        }
        if self.current.is_empty() {
            return Some(quantile_of(&self.previous, q));
        }
        let mut merged = self.previous.clone();
        // Same bounds on both, so adding cannot fail.
        merged.add(&self.current).expect("histograms with equal bounds");
        Some(quantile_of(&merged, q))
    }

    pub fn count_total(&self) -> u64 {
        self.count_total
    }

    /// Every latency since the process started, in ns (values above [`LATENCY_NS_MAX`] as the
    /// max): cumulative, so the difference of two copies is what happened between them.
    pub fn lifetime(&self) -> &Histogram<u64> {
        &self.lifetime
    }
}

fn quantile_of(h: &Histogram<u64>, q: f64) -> u64 {
    if q >= 1.0 {
        h.max()
    } else {
        h.value_at_quantile(q)
    }
}

/// A histogram covering 1 ns to [`LATENCY_NS_MAX`] at 3 significant digits, the shape hot
/// threads should use for the histograms they hand to [`LatencySummary::absorb`].
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("constant, valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_are_unique_valid_and_counters_end_in_total() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "duplicate metric name");
        for d in CATALOGUE {
            assert!(d.name.starts_with("petrel_") && valid_name(d.name), "{}", d.name);
            assert_eq!(d.kind == Counter, d.name.ends_with("_total"), "{}", d.name);
            assert!(!d.help.is_empty() && !d.help.contains('\n'), "{}", d.name);
        }
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = String::new();
        let def = MetricDef { name: "petrel_x_total", kind: Counter, help: "a \\ b", label: Some("l") };
        Exposition::new(&mut out).counters(&def, [("q\"u\\o\nte", 3)]);
        assert_eq!(
            out,
            "# HELP petrel_x_total a \\\\ b\n# TYPE petrel_x_total counter\n\
             petrel_x_total{l=\"q\\\"u\\\\o\\nte\"} 3\n"
        );
    }

    #[test]
    #[should_panic(expected = "declared as a Counter")]
    fn rendering_a_counter_as_a_gauge_is_a_programmer_error() {
        Exposition::new(&mut String::new()).gauge(&COMMANDS_TOTAL, 1.0);
    }

    #[test]
    fn summary_reports_window_quantiles_and_lifetime_count_and_sum() {
        let mut s = LatencySummary::new();
        assert_eq!(s.quantile_ns(0.99), None);
        for v in 1..=1000u64 {
            s.record_ns(v * 1000);
        }
        let p50 = s.quantile_ns(0.5).unwrap();
        assert!((499_000..=501_000).contains(&p50), "{p50}");
        assert!(s.quantile_ns(1.0).unwrap() >= 1_000_000);
        s.rotate();
        // The finished window still answers.
        assert!(s.quantile_ns(0.5).is_some());
        let mut thread_histogram = new_latency_histogram();
        thread_histogram.record(7_000_000).unwrap();
        s.absorb(&thread_histogram);
        s.rotate();
        // Only the absorbed value's window remains.
        let only = s.quantile_ns(0.5).unwrap();
        assert!(thread_histogram.equivalent(only, 7_000_000), "{only}");
        s.rotate();
        s.rotate();
        assert_eq!(s.quantile_ns(0.5), None, "both windows empty");
        assert_eq!(s.count_total(), 1001, "the count is lifetime, not windowed");
        assert_eq!(s.lifetime().len(), 1001, "so is the lifetime histogram");
        assert!(s.lifetime().equivalent(s.lifetime().max(), 7_000_000));

        let mut out = String::new();
        Exposition::new(&mut out).summary_ns(&WIRE_TO_WIRE_LATENCY_SECONDS, &s);
        assert!(out.contains("petrel_wire_to_wire_latency_seconds{quantile=\"0.99\"} NaN\n"), "{out}");
        assert!(out.contains("petrel_wire_to_wire_latency_seconds_count 1001\n"), "{out}");
        // 1000 * 500.5 us + 7 ms, within hdrhistogram's 3-digit precision.
        let sum: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("petrel_wire_to_wire_latency_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 0.5075).abs() < 0.001, "{sum}");
    }

    #[test]
    fn latencies_beyond_the_bound_are_clamped_not_lost() {
        let mut s = LatencySummary::new();
        s.record_ns(u64::MAX);
        assert_eq!(s.count_total(), 1);
        let max = s.quantile_ns(1.0).unwrap();
        assert!((LATENCY_NS_MAX..=LATENCY_NS_MAX + LATENCY_NS_MAX / 500).contains(&max), "{max}");
    }
}
