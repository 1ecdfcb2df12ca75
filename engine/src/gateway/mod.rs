//! The order-entry gateway: SoupBinTCP 3.0 sessions carrying OUCH 5.0, on one thread.
//!
//! Bytes arrive through a [`Transport`] (io_uring, epoll, or later a kernel-bypass backend),
//! are cut into SoupBinTCP packets and checked by the sans-I/O session machine, decoded as OUCH
//! and turned into core commands on the runtime's inbound ring. Events come back on the
//! outbound ring and are held until the journal has made their command durable; then each
//! becomes OUCH messages in the sequenced stream of the account it concerns. A stream is
//! recorded in that account's output journal before its bytes reach the socket, so a client
//! that reconnects with a sequence number gets what it missed, across restarts too.
//!
//! Every per-session buffer is bounded: a client that stops reading is disconnected when its
//! backlog passes the limit, and never stalls the matcher or other sessions.
//!
//! # Regenerating lost outputs
//!
//! A command can be durable in the input journal while the gateway never recorded its messages
//! (the process died in between). Each output-journal record's second header field holds the
//! input sequence of the command that produced the message (its *source*; 0 for a message no
//! command produced: Start of Day, the gateway's own refusals and answers). Source sequences
//! never decrease within a stream, because events are released in sequence order. The
//! gateway also keeps a release mark W in `<sessions>/released` ([`RELEASE_MARK_FILE`]):
//! every message of every command up to W is recorded in its stream. It moves only at command
//! boundaries, and is written (one `pwrite`, no fsync: the durability of the output journals)
//! only after every stream holding those messages was committed: when the gateway goes idle,
//! at shutdown, and every 4,096 commands under load, not per release. A mark that lags is safe:
//! each stream's tail says what it holds; the mark only bounds how far back a restart replays.
//!
//! At start, before recovery, [`OutputTails::read`] reads W and each stream's tail: L, its
//! newest source sequence, and n, how many records carry L. For an account the stream then holds
//! every message of the commands up to max(W, L - 1) and, when L > W, the first n messages of
//! command L (a commit can be cut mid-command; later commands are absent). Recovery replays
//! from a state at or before T, the least of those bounds over the accounts, and collects the
//! events of the commands after T; [`Gateway::new`] feeds them through the same mapping as live
//! events, dropping per account what its stream already holds, and commits the result before
//! any client can log in. The echo fields only the gateway knew (ClOrdID, Display, Capacity,
//! the Time in Force of an Accepted, a mass cancel's UserRefNum) are lost for regenerated
//! messages: they carry the defaults used when no echo is known.
//!
//! Test-only failpoints, read once by [`Gateway::new`] from the environment (a number: an
//! input sequence), cost one compare per released event when unset:
//! - `PETREL_FAILPOINT_ABORT_BEFORE_RELEASE=N`: `abort()` when about to record the first event
//!   of command N, as a crash there would;
//! - `PETREL_FAILPOINT_ABORT_BEFORE_RELEASE_MARK=N`: `abort()` after the streams holding the
//!   messages of command N were committed, before the release mark covering N is written.

pub mod epoll;
mod ouch_map;
pub mod transport;
pub mod uring;

use crate::config::Config;
use crate::logging::{HotLevel, HotLog, HotRecord};
use crate::recovery::Collection;
use crate::runtime::{GatewayPort, IdleStrategy, Idler, InboundCommand, OutboundEvent, ADMIN_CONN};
use crate::users::Users;
use petrel_core::{self as core, AccountId, ClientRef, Command, CommandKind, Event, InstrumentId};
use petrel_journal::{Durability, Journal, JournalConfig, JournalWriter};
use petrel_proto::ouch::{self, Outbound};
use petrel_proto::session::{CloseReason, ServerSession, SessionEvent, SessionTimers, TimerAction};
use petrel_proto::soupbin::{
    self, next_client_packet, packet_type, ClientPacket, FrameLimits, LoginAccepted, LoginRejectReason,
    ServerPacket, SessionName,
};
use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
pub use transport::{ConnId, NetEvent, Transport};

/// Limits and timers of the gateway.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    pub max_sessions: u32,
    /// Largest SoupBinTCP packet a client may send, in bytes.
    pub packet_bytes_max: usize,
    /// Unprocessed bytes a session may hold: one transport read plus one partial packet.
    pub rx_buffer_bytes: usize,
    /// Bytes waiting to be sent to one client before it is disconnected as too slow.
    pub tx_backlog_bytes_max: usize,
    pub timers: SessionTimers,
    /// The SoupBinTCP session name clients see (10 characters at most).
    pub session_name: String,
    /// Where each account's sequenced output stream is recorded.
    pub sessions_dir: PathBuf,
    /// What the gateway thread does when a loop finds nothing to do (`runtime.gateway.idle`).
    /// `park` sleeps in the network poll, woken by the network or by its doorbell.
    pub idle: IdleStrategy,
}

impl GatewaySettings {
    pub fn from_config(config: &Config) -> GatewaySettings {
        GatewaySettings {
            max_sessions: config.gateway.max_sessions,
            packet_bytes_max: 1024,
            // One read of the transport (64 KiB) plus one partial packet.
            rx_buffer_bytes: 64 * 1024 + 1024,
            tx_backlog_bytes_max: config.gateway.max_send_backlog_bytes as usize,
            timers: SessionTimers::default(),
            session_name: config.gateway.session_name.clone(),
            sessions_dir: config.journal.dir.join("sessions"),
            idle: config.runtime.gateway.idle,
        }
    }
}

/// Counters an operator and the metrics endpoint read.
#[derive(Debug)]
pub struct GatewayStats {
    pub connections_total: AtomicU64,
    pub connections_refused_total: AtomicU64,
    pub sessions_logged_in: AtomicU64,
    pub logins_accepted_total: AtomicU64,
    pub logins_rejected_total: AtomicU64,
    pub messages_in_total: AtomicU64,
    pub messages_out_total: AtomicU64,
    pub malformed_total: AtomicU64,
    pub violations_total: AtomicU64,
    pub disconnects_logout_total: AtomicU64,
    pub disconnects_peer_total: AtomicU64,
    pub disconnects_timeout_total: AtomicU64,
    pub disconnects_slow_consumer_total: AtomicU64,
    pub disconnects_protocol_total: AtomicU64,
    pub inbound_full_total: AtomicU64,
    pub replayed_messages_total: AtomicU64,
    /// Messages regenerated at start from the input journal (outputs a crash lost).
    pub regenerated_messages_total: AtomicU64,
    /// Per account (index): orders rejected for the position limit, and whether the kill
    /// switch is engaged.
    pub position_rejects_total: Vec<AtomicU64>,
    pub kill_switch_engaged: Vec<std::sync::atomic::AtomicBool>,
    /// Inside the engine, wire to wire: from the moment a client's packet was read to the
    /// moment its first answer was queued to the socket, ns. Merged from the gateway thread's
    /// own histogram (never blocking it) and reset by whoever reads it.
    pub wire_to_wire_ns: std::sync::Mutex<hdrhistogram::Histogram<u64>>,
}

impl GatewayStats {
    pub fn new(accounts: usize) -> GatewayStats {
        GatewayStats {
            connections_total: AtomicU64::new(0),
            connections_refused_total: AtomicU64::new(0),
            sessions_logged_in: AtomicU64::new(0),
            logins_accepted_total: AtomicU64::new(0),
            logins_rejected_total: AtomicU64::new(0),
            messages_in_total: AtomicU64::new(0),
            messages_out_total: AtomicU64::new(0),
            malformed_total: AtomicU64::new(0),
            violations_total: AtomicU64::new(0),
            disconnects_logout_total: AtomicU64::new(0),
            disconnects_peer_total: AtomicU64::new(0),
            disconnects_timeout_total: AtomicU64::new(0),
            disconnects_slow_consumer_total: AtomicU64::new(0),
            disconnects_protocol_total: AtomicU64::new(0),
            inbound_full_total: AtomicU64::new(0),
            replayed_messages_total: AtomicU64::new(0),
            regenerated_messages_total: AtomicU64::new(0),
            position_rejects_total: (0..accounts).map(|_| AtomicU64::new(0)).collect(),
            kill_switch_engaged: (0..accounts).map(|_| std::sync::atomic::AtomicBool::new(false)).collect(),
            wire_to_wire_ns: std::sync::Mutex::new(crate::metrics::new_latency_histogram()),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: io::Error },
    #[error("session output journal for account {account}: {source}")]
    Journal { account: String, source: Box<petrel_journal::JournalError> },
    #[error("session name {0:?} must be 1 to 10 letters or digits")]
    SessionName(String),
    #[error("release mark {}: cannot {action}: {source}", path.display())]
    ReleaseMark {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{name}={value:?}: a failpoint takes an input sequence (a whole number)")]
    Failpoint { name: &'static str, value: String },
    #[error("network: {0}")]
    Io(#[from] io::Error),
}

/// The source sequence of a message that no command produced (Start of Day, the gateway's own
/// refusals and answers): input sequences start at 1.
pub const NOT_FROM_A_COMMAND: u64 = 0;

/// Source values at or above this are not input sequences (at ten million commands a second
/// the journal would need two centuries to reach it): output journals written before source
/// sequences existed hold wall-clock ns there (about 1.7e18), which tail reading ignores.
const SOURCE_SEQUENCE_LIMIT: u64 = 1 << 56;

/// Most commands the written release mark may lag the released ones while the gateway is busy.
const RELEASE_MARK_LAG_MAX: u64 = 4_096;

/// The release mark's file in the sessions directory.
pub const RELEASE_MARK_FILE: &str = "released";
/// Magic and format version of the release mark: `PTRLREL1`, then the mark (u64 LE), then the
/// CRC32C of those 16 bytes (u32 LE).
const RELEASE_MARK_MAGIC: [u8; 8] = *b"PTRLREL1";
const RELEASE_MARK_BYTES: usize = 20;

fn encode_release_mark(sequence: u64) -> [u8; RELEASE_MARK_BYTES] {
    let mut bytes = [0u8; RELEASE_MARK_BYTES];
    bytes[..8].copy_from_slice(&RELEASE_MARK_MAGIC);
    bytes[8..16].copy_from_slice(&sequence.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..16]);
    bytes[16..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode_release_mark(bytes: &[u8]) -> Result<u64, String> {
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

/// The end of one account's output journal, in source sequences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTail {
    /// The newest source sequence in the stream (0: no message from a command).
    pub last_source: u64,
    /// Records carrying `last_source`.
    pub last_source_messages: u64,
    /// The stream sequence its next message gets.
    pub next_sequence: u64,
}

/// What a restart knows of the output journals, read before recovery (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputTails {
    pub mark: ReleaseMark,
    /// Per account (index).
    pub streams: Vec<StreamTail>,
}

/// What one stream already holds: every message of the commands up to `through`, and the first
/// `partial_messages` of command `through + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub through: u64,
    pub partial_messages: u64,
}

fn stream_journal_config(sessions_dir: &Path, account: usize) -> JournalConfig {
    let mut journal = JournalConfig::new(sessions_dir.to_path_buf());
    journal.file_prefix = format!("account_{account}");
    journal.durability = Durability::None;
    journal.segment_size_bytes = 16 * 1024 * 1024;
    journal.write_buffer_bytes = 256 * 1024;
    journal
}

impl OutputTails {
    /// Reads the release mark and the tail of each of `accounts` output journals in
    /// `sessions_dir`, changing nothing (a torn tail is read as the next open will cut it).
    pub fn read(sessions_dir: &Path, accounts: usize) -> Result<OutputTails, GatewayError> {
        let mark_path = sessions_dir.join(RELEASE_MARK_FILE);
        let mark = match std::fs::read(&mark_path) {
            Ok(bytes) => match decode_release_mark(&bytes) {
                Ok(sequence) => ReleaseMark::At(sequence),
                Err(reason) => ReleaseMark::Corrupt(reason),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => ReleaseMark::Missing,
            Err(e) => ReleaseMark::Corrupt(format!("cannot read it: {e}")),
        };
        let mut streams = Vec::with_capacity(accounts);
        for account in 0..accounts {
            let config = stream_journal_config(sessions_dir, account);
            let location = petrel_journal::JournalLocation::new(config.dir, config.file_prefix);
            let tail = if sessions_dir.is_dir() {
                read_stream_tail(&location).map_err(|source| GatewayError::Journal {
                    account: format!("#{account}"),
                    source: Box::new(source),
                })?
            } else {
                StreamTail { last_source: 0, last_source_messages: 0, next_sequence: 1 }
            };
            streams.push(tail);
        }
        Ok(OutputTails { mark, streams })
    }

    fn mark_sequence(&self) -> u64 {
        match self.mark {
            ReleaseMark::At(sequence) => sequence,
            ReleaseMark::Missing | ReleaseMark::Corrupt(_) => 0,
        }
    }

    /// What the stream of `account` already holds.
    pub fn held(&self, account: usize) -> Held {
        let mark = self.mark_sequence();
        match self.streams.get(account) {
            Some(tail) if tail.last_source > mark => {
                Held { through: tail.last_source - 1, partial_messages: tail.last_source_messages }
            }
            _ => Held { through: mark, partial_messages: 0 },
        }
    }

    /// T: the commands after it may have messages missing from some stream. `None` when the
    /// mark is missing (nothing to regenerate from: a fresh install, or journals from before it).
    pub fn regenerate_after(&self) -> Option<u64> {
        if self.mark == ReleaseMark::Missing {
            return None;
        }
        Some((0..self.streams.len()).map(|a| self.held(a).through).min().unwrap_or(self.mark_sequence()))
    }
}

/// The newest source sequence of one output journal and how many records carry it. Source
/// sequences do not decrease within a stream, so the scan walks back from the newest segment
/// only until a segment shows an older source.
fn read_stream_tail(
    location: &petrel_journal::JournalLocation,
) -> Result<StreamTail, petrel_journal::JournalError> {
    let recovery = read_only_view(location)?;
    let mut tail =
        StreamTail { last_source: 0, last_source_messages: 0, next_sequence: recovery.next_sequence() };
    for segment in recovery.segments.iter().rev().filter(|s| s.record_count > 0) {
        let mut reader = recovery.replay_from(segment.first_sequence)?;
        let mut older_seen = false;
        let (mut last, mut count) = (0u64, 0u64);
        for _ in 0..segment.record_count {
            let record = reader.next_record()?.expect("the segment holds record_count records");
            let source = record.timestamp_ns;
            if source == NOT_FROM_A_COMMAND || source >= SOURCE_SEQUENCE_LIMIT {
                continue;
            }
            match source.cmp(&last) {
                std::cmp::Ordering::Greater => {
                    older_seen |= last != 0;
                    (last, count) = (source, 1);
                }
                std::cmp::Ordering::Equal => count += 1,
                std::cmp::Ordering::Less => older_seen = true,
            }
        }
        if tail.last_source == 0 {
            (tail.last_source, tail.last_source_messages) = (last, count);
        } else if last == tail.last_source {
            tail.last_source_messages += count;
        } else if last != 0 {
            // An older segment whose newest source differs: nothing of the newest is here.
            break;
        }
        // A segment of messages from no command says nothing: look further back.
        if tail.last_source != 0 && older_seen {
            break;
        }
    }
    Ok(tail)
}

/// What [`Gateway::new`] needs to regenerate the messages a crash kept it from recording.
#[derive(Debug)]
pub struct Regeneration {
    /// Read before recovery by [`OutputTails::read`].
    pub tails: OutputTails,
    /// The events recovery collected for the commands after `tails.regenerate_after()`.
    pub collection: Collection,
    /// The engine's last sequence after recovery.
    pub last_sequence: u64,
}

/// The release mark's file, kept open; written with one `pwrite` when the mark moves.
struct ReleaseMarkFile {
    path: PathBuf,
    file: std::fs::File,
    written: u64,
    /// The last command boundary released; becomes the mark once its streams are committed.
    pending: u64,
    write_failed: bool,
}

/// Test-only crash points (see the module docs); `u64::MAX` when unset.
#[derive(Clone, Copy, Debug)]
struct Failpoints {
    abort_before_release: u64,
    abort_before_release_mark: u64,
}

impl Failpoints {
    fn from_env() -> Result<Failpoints, GatewayError> {
        let read = |name: &'static str| match std::env::var(name) {
            Err(_) => Ok(u64::MAX),
            Ok(value) => value.trim().parse::<u64>().map_err(|_| GatewayError::Failpoint { name, value }),
        };
        Ok(Failpoints {
            abort_before_release: read("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE")?,
            abort_before_release_mark: read("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE_MARK")?,
        })
    }
}

/// A failpoint was reached: die as a crash would, without unwinding or flushing anything.
#[cold]
fn abort_at_failpoint(name: &str, sequence: u64) -> ! {
    eprintln!("failpoint {name} reached at input sequence {sequence}: aborting");
    std::process::abort();
}

/// Echo fields of an order in flight: OUCH's Accepted and Replaced repeat what the client sent,
/// which the core does not carry.
#[derive(Clone, Copy, Debug)]
struct Echo {
    user_ref: u32,
    /// When the packet carrying it was read (gateway clock, ns): wire-to-wire starts here.
    rx_ns: u64,
    cl_ord_id: ouch::ClOrdId,
    display: ouch::Display,
    capacity: ouch::Capacity,
    time_in_force: ouch::TimeInForce,
}

/// Orders whose Accepted or Replaced has not come back yet, per account: a ring indexed by the
/// client reference (references increase, so in-flight ones do not collide below its size).
const ECHO_SLOTS: usize = 4096;

/// One account's sequenced message stream.
struct Stream {
    next_sequence: u64,
    writer: JournalWriter,
    location: petrel_journal::JournalLocation,
    conn: Option<ConnId>,
    echo: Box<[Option<Echo>]>,
    mass_cancel: Option<(u32, ouch::Firm, ouch::Symbol)>,
    dirty: bool,
    /// While regenerating: the stream already holds every message of the commands up to this
    /// sequence...
    held_through: u64,
    /// ... and this many messages of command `held_through + 1`.
    held_partial_messages: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Free,
    Open,
    /// Logged in and sending the messages it asked to be replayed, up to `replay_end`.
    Replaying,
    Live,
}

struct Conn {
    phase: Phase,
    generation: u32,
    session: ServerSession,
    account: Option<AccountId>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    tx_sent: usize,
    replay_next: u64,
    replay: Option<petrel_journal::JournalReader>,
}

struct AuthRequest {
    conn: ConnId,
    generation: u32,
    username: String,
    password: String,
}

struct AuthResult {
    conn: ConnId,
    generation: u32,
    account: Option<AccountId>,
}

pub struct Gateway<T: Transport> {
    transport: T,
    port: GatewayPort,
    settings: GatewaySettings,
    session_name: SessionName,
    users: Arc<RwLock<Arc<Users>>>,
    symbols: Vec<[u8; 8]>,
    conns: Vec<Conn>,
    streams: Vec<Option<Stream>>,
    held: VecDeque<OutboundEvent>,
    auth_tx: crossbeam::channel::Sender<AuthRequest>,
    auth_rx: crossbeam::channel::Receiver<AuthResult>,
    stats: Arc<GatewayStats>,
    heartbeat: Arc<AtomicU64>,
    started: Instant,
    scratch: Box<[u8]>,
    dirty_conns: Vec<ConnId>,
    latency: hdrhistogram::Histogram<u64>,
    latency_recorded: u32,
    /// Cleared by the daemon at shutdown: no new command may enter the runtime.
    intake: Arc<AtomicBool>,
    intake_closed: bool,
    /// The gateway never writes logs itself: records go to this ring, which the control plane
    /// drains into tracing (journald), so a slow log sink cannot stall order flow.
    hot_log: Arc<HotLog>,
    release: ReleaseMarkFile,
    /// Set only while `new` feeds regenerated events through `on_event`: `emit` then drops
    /// what each stream already holds.
    regenerating: bool,
    failpoints: Failpoints,
}

fn midnight_ns(timestamp_ns: u64) -> u64 {
    timestamp_ns % 86_400_000_000_000
}

impl<T: Transport> Gateway<T> {
    /// Opens every account's output journal, regenerates the messages a crash kept from them
    /// (see the module docs) and records them before any client can log in.
    pub fn new(
        mut transport: T,
        port: GatewayPort,
        config: &Config,
        users: Arc<RwLock<Arc<Users>>>,
        settings: GatewaySettings,
        regeneration: Regeneration,
    ) -> Result<Gateway<T>, GatewayError> {
        let session_name = SessionName::new("session", &settings.session_name)
            .ok()
            .filter(|_| settings.session_name.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or_else(|| GatewayError::SessionName(settings.session_name.clone()))?;
        let failpoints = Failpoints::from_env()?;
        let mut streams = Vec::with_capacity(config.accounts.len());
        for (index, account) in config.accounts.iter().enumerate() {
            let journal = stream_journal_config(&settings.sessions_dir, index);
            let (writer, recovery) = Journal::open(&journal).map_err(|source| GatewayError::Journal {
                account: account.name.clone(),
                source: Box::new(source),
            })?;
            if let Some(torn) = &recovery.truncation {
                tracing::warn!(account = %account.name, "session output journal had a torn tail, cut: {torn:?}");
            }
            if let Some(tail) = regeneration.tails.streams.get(index) {
                assert_eq!(
                    tail.next_sequence,
                    writer.next_sequence(),
                    "nothing writes an output journal between reading its tail and opening it"
                );
            }
            let held = regeneration.tails.held(index);
            streams.push(Some(Stream {
                next_sequence: writer.next_sequence(),
                writer,
                location: petrel_journal::JournalLocation::new(
                    journal.dir.clone(),
                    journal.file_prefix.clone(),
                ),
                conn: None,
                echo: vec![None; ECHO_SLOTS].into_boxed_slice(),
                mass_cancel: None,
                dirty: false,
                held_through: held.through,
                held_partial_messages: held.partial_messages,
            }));
        }
        let mark_path = settings.sessions_dir.join(RELEASE_MARK_FILE);
        let mark_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&mark_path)
            .map_err(|source| GatewayError::ReleaseMark {
                path: mark_path.clone(),
                action: "open",
                source,
            })?;
        if let Some(fd) = port.gateway_bell.wake_fd().map_err(GatewayError::Io)? {
            transport.set_wake_fd(fd).map_err(GatewayError::Io)?;
        }
        let (auth_tx, auth_requests) = crossbeam::channel::bounded::<AuthRequest>(64);
        let (auth_results, auth_rx) = crossbeam::channel::bounded::<AuthResult>(64);
        let auth_users = users.clone();
        let auth_bell = Arc::clone(&port.gateway_bell);
        std::thread::Builder::new()
            .name("petrel-auth".into())
            .spawn(move || {
                // Password checks are slow by design: they run here, never on the gateway thread.
                for request in auth_requests {
                    let users = auth_users.read().expect("users lock").clone();
                    let account = users
                        .get(&request.username)
                        .filter(|u| u.verify_password(&request.password))
                        .map(|u| u.account);
                    if auth_results
                        .send(AuthResult { conn: request.conn, generation: request.generation, account })
                        .is_err()
                    {
                        return;
                    }
                    auth_bell.ring();
                }
            })
            .map_err(GatewayError::Io)?;
        let conns = (0..settings.max_sessions)
            .map(|_| Conn {
                phase: Phase::Free,
                generation: 0,
                session: ServerSession::new(settings.timers, 0),
                account: None,
                rx: Vec::with_capacity(settings.rx_buffer_bytes),
                tx: Vec::new(),
                tx_sent: 0,
                replay_next: 0,
                replay: None,
            })
            .collect();
        let mut gateway = Gateway {
            transport,
            held: VecDeque::with_capacity(port.outbound.capacity()),
            port,
            session_name,
            users,
            symbols: config.engine.instruments.iter().map(|i| i.symbol.0).collect(),
            conns,
            streams,
            auth_tx,
            auth_rx,
            stats: Arc::new(GatewayStats::new(config.accounts.len())),
            heartbeat: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            scratch: vec![0u8; 64 * 1024].into_boxed_slice(),
            dirty_conns: Vec::with_capacity(settings.max_sessions as usize),
            latency: crate::metrics::new_latency_histogram(),
            latency_recorded: 0,
            intake: Arc::new(AtomicBool::new(true)),
            intake_closed: false,
            hot_log: Arc::new(HotLog::new(4096)),
            release: ReleaseMarkFile {
                path: mark_path,
                file: mark_file,
                written: 0,
                pending: 0,
                write_failed: false,
            },
            regenerating: false,
            failpoints,
            settings,
        };
        // A stream begins with Start of Day, as an OUCH session does (before anything
        // regenerated into a stream that was still empty).
        let ts = gateway.wall_ns();
        for account in 0..gateway.streams.len() {
            if gateway.streams[account].as_ref().is_some_and(|s| s.next_sequence == 1) {
                gateway.emit(
                    AccountId(account as u32),
                    NOT_FROM_A_COMMAND,
                    &Outbound::SystemEvent(ouch::SystemEvent {
                        timestamp_ns: midnight_ns(ts),
                        event_code: ouch::EventCode::StartOfDay,
                    }),
                );
            }
        }
        gateway.regenerate(config, &regeneration);
        // Every command up to the recovered last sequence now has its messages recorded (or
        // was reported as lost): the mark starts there.
        gateway.release.pending = regeneration.last_sequence;
        if gateway.commit_streams() {
            gateway.write_release_mark(regeneration.last_sequence);
        }
        Ok(gateway)
    }

    /// Feeds the collected events through the live mapping, each stream keeping only what it
    /// does not hold yet, and says what was done (or why nothing could be).
    fn regenerate(&mut self, config: &Config, regeneration: &Regeneration) {
        let last = regeneration.last_sequence;
        let tails = &regeneration.tails;
        if let ReleaseMark::Corrupt(reason) = &tails.mark {
            tracing::warn!(
                file = %self.release.path.display(),
                "release mark unusable ({reason}); the output journals' tails alone decide what to regenerate"
            );
        }
        match &regeneration.collection {
            Collection::NotAsked => {
                if tails.mark == ReleaseMark::Missing {
                    tracing::info!(
                        file = %self.release.path.display(),
                        "no release mark (a fresh install or output journals from before it): nothing to regenerate"
                    );
                }
            }
            Collection::Unavailable { after, reason } => {
                let accounts: Vec<String> = (0..self.streams.len())
                    .filter_map(|a| {
                        let through = tails.held(a).through;
                        (through < last).then(|| format!("{} ({}, {last}]", config.accounts[a].name, through))
                    })
                    .collect();
                tracing::error!(
                    accounts = ?accounts,
                    "cannot regenerate the messages of input sequences ({after}, {last}]: {reason}. Those \
                     accounts' clients may never hear of those commands' outcomes; check their orders \
                     with the journal (petrel-engine journal dump)"
                );
            }
            Collection::Events { after, events } => {
                let before: Vec<u64> =
                    self.streams.iter().map(|s| s.as_ref().map_or(0, |s| s.next_sequence)).collect();
                self.regenerating = true;
                for event in events {
                    debug_assert!(event.sequence > *after && event.sequence <= last);
                    self.on_event(event);
                }
                self.regenerating = false;
                let (mut messages, mut accounts) = (0u64, 0usize);
                for (stream, before) in self.streams.iter().zip(before) {
                    let added = stream.as_ref().map_or(0, |s| s.next_sequence - before);
                    messages += added;
                    accounts += usize::from(added > 0);
                }
                self.stats.regenerated_messages_total.store(messages, Ordering::Relaxed);
                if *after < last {
                    tracing::info!(
                        events = events.len(),
                        "regenerated {messages} messages for {accounts} accounts from input sequences ({after}, {last}]"
                    );
                }
            }
        }
    }

    pub fn stats(&self) -> Arc<GatewayStats> {
        self.stats.clone()
    }

    /// Bumped once per loop: the watchdog's proof that this thread is alive.
    pub fn heartbeat(&self) -> Arc<AtomicU64> {
        self.heartbeat.clone()
    }

    /// The gateway's log records, for the control plane to drain.
    pub fn hot_log(&self) -> Arc<HotLog> {
        self.hot_log.clone()
    }

    fn hot(&self, record: HotRecord) {
        hot(&self.hot_log, record);
    }

    /// The daemon clears this to stop new commands entering the runtime (shutdown); the
    /// gateway goes on delivering events and serving replays until `stop`.
    pub fn intake(&self) -> Arc<AtomicBool> {
        self.intake.clone()
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.transport.local_addr()
    }

    pub fn transport_name(&self) -> &'static str {
        self.transport.name()
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Serves until `stop` is set, then ends every session with End of Session.
    ///
    /// Idle behaviour follows `runtime.gateway.idle`: `busy-spin` and `spin-yield` poll the
    /// network without waiting; `park` sleeps in the network poll itself (back-off from `min_us`
    /// to `max_us`), from which a client's bytes, the journal writer's doorbell (new durable
    /// events) or the auth thread's wake it at once.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), GatewayError> {
        let mut idler = Idler::new(self.settings.idle);
        let bell = Arc::clone(&self.port.gateway_bell);
        let mut park_us = 0u32;
        let mut work = true;
        while !stop.load(Ordering::Acquire) {
            self.heartbeat.fetch_add(1, Ordering::Relaxed);
            if !self.intake_closed && !self.intake.load(Ordering::Acquire) {
                self.intake_closed = true;
                self.hot(HotRecord::new(
                    HotLevel::Info,
                    "gateway intake closed: new orders are no longer accepted",
                ));
            }
            let mut timeout = Duration::ZERO;
            let mut sleeping = false;
            if !work {
                match self.settings.idle {
                    IdleStrategy::Park { min_us, max_us } => {
                        park_us = if park_us == 0 { min_us.max(1) } else { (park_us * 2).min(max_us.max(1)) };
                        bell.prepare_sleep();
                        if self.has_queued_work() {
                            bell.cancel_sleep();
                        } else {
                            sleeping = true;
                            timeout = Duration::from_micros(u64::from(park_us));
                        }
                    }
                    _ => idler.idle(false),
                }
            } else {
                park_us = 0;
            }
            let polled = self.poll_network(timeout);
            if sleeping {
                bell.cancel_sleep();
            }
            work = polled?;
            work |= self.auth_results();
            work |= self.drain_outbound();
            work |= self.flush();
            self.timers();
            if !work {
                self.write_release_mark_if_moved();
                if self.latency_recorded > 0 {
                    self.publish_latency();
                }
            }
        }
        self.close_all();
        Ok(())
    }

    /// Work that needs no network event: checked after announcing a sleep, so that a doorbell
    /// rung before the announcement is not missed.
    fn has_queued_work(&self) -> bool {
        let durable = self.port.durable_sequence.load(Ordering::Acquire);
        !self.port.outbound.is_empty()
            || self.held.front().is_some_and(|e| e.sequence <= durable)
            || !self.auth_rx.is_empty()
    }

    fn poll_network(&mut self, timeout: Duration) -> Result<bool, GatewayError> {
        self.transport.poll(timeout)?;
        let mut work = false;
        let now = self.now_ns();
        while let Some(event) = self.transport.next_event() {
            work = true;
            match event {
                NetEvent::Accepted { conn, peer: _ } => {
                    bump(&self.stats.connections_total);
                    hot(&self.hot_log, HotRecord::new(HotLevel::Debug, "connection accepted").session(conn));
                    let c = &mut self.conns[conn as usize];
                    c.phase = Phase::Open;
                    c.generation = c.generation.wrapping_add(1);
                    c.session = ServerSession::new(self.settings.timers, now);
                    c.account = None;
                    c.rx.clear();
                    c.tx.clear();
                    c.tx_sent = 0;
                    c.replay = None;
                }
                NetEvent::Refused { peer: _ } => {
                    bump(&self.stats.connections_refused_total);
                    hot(
                        &self.hot_log,
                        HotRecord::new(
                            HotLevel::Warn,
                            "connection refused: every session slot (gateway.max_sessions) is in use",
                        ),
                    );
                }
                NetEvent::Data { conn, bytes } => {
                    bump(&self.stats.messages_in_total);
                    let c = &mut self.conns[conn as usize];
                    // What is left unprocessed is at most one partial packet, because each read
                    // is processed before the next: only a broken client can overflow this.
                    if c.rx.len() + bytes.len() > self.settings.rx_buffer_bytes {
                        c.rx.clear();
                        self.dirty_conns.push(conn | 0x8000_0000);
                    } else {
                        c.rx.extend_from_slice(bytes);
                        if c.phase != Phase::Free {
                            self.process_rx(conn, now);
                        }
                    }
                }
                NetEvent::Closed { conn, error: _ } => {
                    hot(
                        &self.hot_log,
                        HotRecord::new(HotLevel::Debug, "connection closed by peer").session(conn),
                    );
                    bump(&self.stats.disconnects_peer_total);
                    self.dirty_conns.push(conn | 0x4000_0000);
                }
            }
        }
        let dirty = std::mem::take(&mut self.dirty_conns);
        for &entry in &dirty {
            let conn = entry & 0x3fff_ffff;
            if entry & 0x4000_0000 != 0 {
                self.release_conn(conn, false);
            } else if entry & 0x8000_0000 != 0 {
                bump(&self.stats.disconnects_protocol_total);
                self.hot(
                    HotRecord::new(HotLevel::Warn, "receive buffer overflow: disconnecting").session(conn),
                );
                self.disconnect(conn);
            } else if self.conns[conn as usize].phase != Phase::Free {
                self.process_rx(conn, now);
            }
        }
        self.dirty_conns = dirty;
        self.dirty_conns.clear();
        Ok(work)
    }

    fn process_rx(&mut self, conn: ConnId, now: u64) {
        let limits = FrameLimits::new(self.settings.packet_bytes_max);
        let mut consumed = 0;
        loop {
            let c = &mut self.conns[conn as usize];
            if c.phase == Phase::Free {
                return;
            }
            let packet = match next_client_packet(&c.rx[consumed..], limits) {
                Ok(Some((packet, used))) => {
                    consumed += used;
                    packet
                }
                Ok(None) => break,
                Err(_) => {
                    bump(&self.stats.malformed_total);
                    self.hot(
                        HotRecord::new(HotLevel::Warn, "malformed SoupBinTCP packet: disconnecting")
                            .session(conn),
                    );
                    self.disconnect(conn);
                    return;
                }
            };
            // Copy what the session machine needs out of the receive buffer first.
            let packet = match packet {
                ClientPacket::UnsequencedData(data) => {
                    let n = data.len();
                    self.scratch[..n].copy_from_slice(data);
                    Owned::Data(n)
                }
                ClientPacket::LoginRequest(r) => Owned::Login(r),
                ClientPacket::ClientHeartbeat => Owned::Heartbeat,
                ClientPacket::LogoutRequest => Owned::Logout,
                ClientPacket::Debug(_) => Owned::Debug,
            };
            let c = &mut self.conns[conn as usize];
            let event = match packet {
                Owned::Data(n) => c.session.on_packet(now, ClientPacket::UnsequencedData(&self.scratch[..n])),
                Owned::Login(r) => c.session.on_packet(now, ClientPacket::LoginRequest(r)),
                Owned::Heartbeat => c.session.on_packet(now, ClientPacket::ClientHeartbeat),
                Owned::Logout => c.session.on_packet(now, ClientPacket::LogoutRequest),
                Owned::Debug => c.session.on_packet(now, ClientPacket::Debug(b"")),
            };
            match event {
                Ok(SessionEvent::LoginRequested(request)) => {
                    let session_ok = request.requested_session.is_blank()
                        || request.requested_session.trimmed() == self.session_name.trimmed();
                    let generation = c.generation;
                    c.replay_next = request.requested_sequence_number;
                    if !session_ok {
                        self.reject_login(conn, LoginRejectReason::SessionNotAvailable);
                        return;
                    }
                    let sent = self.auth_tx.try_send(AuthRequest {
                        conn,
                        generation,
                        username: request.username.trimmed().to_string(),
                        password: request.password.trimmed().to_string(),
                    });
                    if sent.is_err() {
                        // A login storm: refuse rather than queue without bound.
                        self.reject_login(conn, LoginRejectReason::NotAuthorized);
                        return;
                    }
                }
                Ok(SessionEvent::Data(_)) => {
                    if let Owned::Data(n) = packet {
                        self.on_ouch(conn, n);
                    }
                }
                Ok(SessionEvent::LoggedOut) => {
                    bump(&self.stats.disconnects_logout_total);
                    self.disconnect(conn);
                    return;
                }
                Ok(SessionEvent::Heartbeat | SessionEvent::Debug(_)) => {}
                Err(violation) => {
                    bump(&self.stats.violations_total);
                    self.hot(HotRecord::new(HotLevel::Warn, violation_message(violation)).session(conn));
                    self.disconnect(conn);
                    return;
                }
            }
        }
        let c = &mut self.conns[conn as usize];
        if c.phase != Phase::Free {
            c.rx.drain(..consumed);
        }
    }

    fn reject_login(&mut self, conn: ConnId, reason: LoginRejectReason) {
        bump(&self.stats.logins_rejected_total);
        self.conns[conn as usize].session.reject();
        self.send_packet(conn, &ServerPacket::LoginRejected(reason));
        self.flush_conn(conn);
        self.release_conn(conn, true);
    }

    fn auth_results(&mut self) -> bool {
        let mut work = false;
        while let Ok(result) = self.auth_rx.try_recv() {
            work = true;
            let c = &self.conns[result.conn as usize];
            if c.generation != result.generation || c.phase != Phase::Open {
                continue;
            }
            let Some(account) = result.account else {
                self.hot(
                    HotRecord::new(HotLevel::Warn, "login rejected: unknown user or wrong password")
                        .session(result.conn),
                );
                self.reject_login(result.conn, LoginRejectReason::NotAuthorized);
                continue;
            };
            let Some(stream) = self.streams[account.0 as usize].as_mut() else { continue };
            if stream.conn.is_some() {
                hot(
                    &self.hot_log,
                    HotRecord::new(
                        HotLevel::Warn,
                        "login rejected: the account's session is already logged in",
                    )
                    .session(result.conn)
                    .account(account.0),
                );
                self.reject_login(result.conn, LoginRejectReason::NotAuthorized);
                continue;
            }
            stream.conn = Some(result.conn);
            let next = stream.next_sequence;
            let requested = self.conns[result.conn as usize].replay_next;
            let start = petrel_proto::session::resolve_start_sequence(requested, next);
            let now = self.now_ns();
            let c = &mut self.conns[result.conn as usize];
            c.session.accept(now);
            c.account = Some(account);
            c.replay_next = start;
            c.phase = if start < next { Phase::Replaying } else { Phase::Live };
            bump(&self.stats.logins_accepted_total);
            self.stats.sessions_logged_in.fetch_add(1, Ordering::Relaxed);
            hot(
                &self.hot_log,
                HotRecord::new(HotLevel::Info, "session logged in")
                    .session(result.conn)
                    .account(account.0)
                    .sequence(start),
            );
            self.send_packet(
                result.conn,
                &ServerPacket::LoginAccepted(LoginAccepted {
                    session: self.session_name,
                    sequence_number: start,
                }),
            );
        }
        work
    }

    /// Turns one OUCH inbound message (in `scratch[..n]`) into a command, or answers it.
    fn on_ouch(&mut self, conn: ConnId, n: usize) {
        let scratch = std::mem::take(&mut self.scratch);
        self.on_ouch_bytes(conn, &scratch[..n]);
        self.scratch = scratch;
    }

    fn on_ouch_bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(account) = self.conns[conn as usize].account else { return };
        let message = match ouch::Inbound::decode(bytes) {
            Ok(m) => m,
            Err(_) => {
                bump(&self.stats.malformed_total);
                self.hot(
                    HotRecord::new(HotLevel::Warn, "malformed OUCH message: disconnecting").session(conn),
                );
                self.disconnect(conn);
                return;
            }
        };
        let command = match message {
            ouch::Inbound::EnterOrder(o) => {
                let echo = Echo {
                    user_ref: o.user_ref_num,
                    rx_ns: self.now_ns(),
                    cl_ord_id: o.cl_ord_id,
                    display: o.display,
                    capacity: o.capacity,
                    time_in_force: o.time_in_force,
                };
                let refused = self.check_enter(&o);
                if let Some(reason) = refused {
                    self.gateway_reject(account, o.user_ref_num, o.cl_ord_id, reason);
                    return;
                }
                self.remember(account, echo);
                let mut min_qty = 0;
                let mut post_only = matches!(o.display, ouch::Display::PostOnly);
                for tv in o.appendage.iter() {
                    match tv {
                        ouch::TagValue::MinQty(q) => min_qty = q,
                        ouch::TagValue::PostOnly(flag) => post_only |= flag == b'P' || flag == b'Y',
                        _ => {}
                    }
                }
                let instrument =
                    self.symbols.iter().position(|s| s == o.symbol.as_wire()).map_or(u16::MAX, |i| i as u16);
                Command::NewOrder(core::NewOrder {
                    account,
                    client_ref: ClientRef(o.user_ref_num),
                    instrument: InstrumentId(instrument),
                    side: ouch_map::side(o.side),
                    order_type: core::OrderType::Limit,
                    tif: match o.time_in_force {
                        ouch::TimeInForce::ImmediateOrCancel => core::TimeInForce::Ioc,
                        _ => core::TimeInForce::Day,
                    },
                    price: o.price.0.min(i64::MAX as u64) as i64,
                    qty: o.quantity,
                    min_qty,
                    post_only,
                })
            }
            ouch::Inbound::ReplaceOrder(r) => {
                self.remember(
                    account,
                    Echo {
                        user_ref: r.user_ref_num,
                        rx_ns: self.now_ns(),
                        cl_ord_id: r.cl_ord_id,
                        display: r.display,
                        capacity: ouch::Capacity::Agency,
                        time_in_force: r.time_in_force,
                    },
                );
                Command::Replace(core::Replace {
                    account,
                    client_ref: ClientRef(r.orig_user_ref_num),
                    new_client_ref: ClientRef(r.user_ref_num),
                    price: r.price.0.min(i64::MAX as u64) as i64,
                    qty: r.quantity,
                })
            }
            ouch::Inbound::CancelOrder(c) => Command::Cancel(core::Cancel {
                account,
                client_ref: ClientRef(c.user_ref_num),
                qty_remaining: c.quantity,
            }),
            ouch::Inbound::ModifyOrder(m) => {
                // Petrel has no short-sale marking to modify; say so clearly.
                self.hot(
                    HotRecord::new(
                        HotLevel::Info,
                        "Modify Order is not supported: answered with Cancel Reject",
                    )
                    .session(conn)
                    .order_ref(m.user_ref_num as u64),
                );
                let ts = self.wall_ns();
                self.emit(
                    account,
                    NOT_FROM_A_COMMAND,
                    &Outbound::CancelReject { timestamp_ns: midnight_ns(ts), user_ref_num: m.user_ref_num },
                );
                return;
            }
            ouch::Inbound::MassCancel(m) => {
                let instrument = if m.symbol.is_blank() {
                    None
                } else {
                    match self.symbols.iter().position(|s| s == m.symbol.as_wire()) {
                        Some(i) => Some(InstrumentId(i as u16)),
                        None => Some(InstrumentId(u16::MAX)),
                    }
                };
                if let Some(stream) = self.streams[account.0 as usize].as_mut() {
                    stream.mass_cancel = Some((m.user_ref_num, m.firm, m.symbol));
                }
                Command::MassCancel { account, instrument }
            }
            ouch::Inbound::AccountQuery => {
                let ts = self.wall_ns();
                let next = self.streams[account.0 as usize]
                    .as_ref()
                    .map_or(1, |s| s.echo.iter().flatten().map(|e| e.user_ref).max().unwrap_or(0) + 1);
                self.emit(
                    account,
                    NOT_FROM_A_COMMAND,
                    &Outbound::AccountQueryResponse(ouch::AccountQueryResponse {
                        timestamp_ns: midnight_ns(ts),
                        next_user_ref_num: next,
                    }),
                );
                return;
            }
        };
        self.submit(InboundCommand { conn, command });
    }

    /// Features of an Enter Order that Petrel does not offer, refused before sequencing.
    fn check_enter(&self, o: &ouch::EnterOrder<'_>) -> Option<ouch::RejectReason> {
        use ouch::RejectReason as R;
        if !matches!(
            o.display,
            ouch::Display::Visible | ouch::Display::Attributable | ouch::Display::PostOnly
        ) {
            return Some(R::INVALID_DISPLAY);
        }
        if !matches!(o.time_in_force, ouch::TimeInForce::Day | ouch::TimeInForce::ImmediateOrCancel) {
            return Some(R::OTHER);
        }
        if o.cross_type != ouch::CrossType::ContinuousMarket {
            return Some(R::INVALID_CROSS_ORDER);
        }
        if o.intermarket_sweep == ouch::IntermarketSweep::Eligible {
            return Some(R::ISO_NOT_ALLOWED);
        }
        for tv in o.appendage.iter() {
            match tv {
                ouch::TagValue::MinQty(_)
                | ouch::TagValue::PostOnly(_)
                | ouch::TagValue::Firm(_)
                | ouch::TagValue::CustomerType(_)
                | ouch::TagValue::HandleInst(_)
                | ouch::TagValue::UserRefIdx(_) => {}
                ouch::TagValue::MaxFloor(_) => return Some(R::INVALID_MAX_FLOOR),
                ouch::TagValue::PegOffset(_) | ouch::TagValue::PriceType(_) => {
                    return Some(R::PEGGING_NOT_ALLOWED)
                }
                ouch::TagValue::Route(_) => return Some(R::ROUTING_NOT_ALLOWED),
                _ => return Some(R::OTHER),
            }
        }
        None
    }

    fn remember(&mut self, account: AccountId, echo: Echo) {
        if let Some(stream) = self.streams[account.0 as usize].as_mut() {
            stream.echo[echo.user_ref as usize % ECHO_SLOTS] = Some(echo);
        }
    }

    fn echo(&self, account: AccountId, user_ref: u32) -> Option<Echo> {
        self.streams[account.0 as usize]
            .as_ref()
            .and_then(|s| s.echo[user_ref as usize % ECHO_SLOTS])
            .filter(|e| e.user_ref == user_ref)
    }

    fn gateway_reject(
        &mut self,
        account: AccountId,
        user_ref: u32,
        cl_ord_id: ouch::ClOrdId,
        reason: ouch::RejectReason,
    ) {
        let ts = self.wall_ns();
        self.emit(
            account,
            NOT_FROM_A_COMMAND,
            &Outbound::OrderRejected(ouch::OrderRejected {
                timestamp_ns: midnight_ns(ts),
                user_ref_num: user_ref,
                reason,
                cl_ord_id,
            }),
        );
    }

    fn wall_ns(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }

    /// Hands a command to the sequencer; when the ring is full the gateway waits (and stops
    /// reading meanwhile): backpressure, never a dropped order.
    fn submit(&mut self, mut command: InboundCommand) {
        if self.intake_closed {
            self.hot(
                HotRecord::new(HotLevel::Debug, "shutting down: command not accepted").session(command.conn),
            );
            return;
        }
        let mut counted = false;
        loop {
            match self.port.try_submit(command) {
                Ok(()) => {
                    self.port.sequencer_bell.ring();
                    return;
                }
                Err(back) => {
                    command = back;
                    if !counted {
                        bump(&self.stats.inbound_full_total);
                        counted = true;
                    }
                    // Release what is already durable so the core can make progress.
                    self.drain_outbound();
                    self.flush();
                    // Flushing may have ended this command's session (a slow consumer): its
                    // cancel-on-disconnect is sequenced already, and an order sequenced after
                    // it would rest for a session that is gone. Never acknowledged, it is
                    // dropped; the client learns that from its stream when it reconnects.
                    let session_ended =
                        self.conns.get(command.conn as usize).is_some_and(|c| c.phase == Phase::Free);
                    if session_ended {
                        self.hot(
                            HotRecord::new(
                                HotLevel::Debug,
                                "session ended while its command waited for the sequencer: dropped",
                            )
                            .session(command.conn),
                        );
                        return;
                    }
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Moves events from the runtime into the held queue, and releases every held event whose
    /// command is durable.
    fn drain_outbound(&mut self) -> bool {
        let mut work = false;
        while self.held.len() < self.held.capacity() {
            let Some(event) = self.port.outbound.pop() else { break };
            self.held.push_back(event);
            work = true;
        }
        let durable = self.port.durable_sequence.load(Ordering::Acquire);
        while self.held.front().is_some_and(|e| e.sequence <= durable) {
            let event = self.held.pop_front().expect("front checked");
            if event.sequence == self.failpoints.abort_before_release {
                abort_at_failpoint("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE", event.sequence);
            }
            self.on_event(&event);
            if event.last_of_command {
                self.release.pending = event.sequence;
            }
            work = true;
        }
        if work {
            self.commit_streams_and_mark();
        }
        work
    }

    fn on_event(&mut self, e: &OutboundEvent) {
        let ts = midnight_ns(e.timestamp_ns);
        match e.event {
            Event::Accepted(a) => {
                let echo = self.echo(a.account, a.client_ref.0);
                self.record_latency(echo);
                let symbol = self.symbol(a.instrument);
                self.emit(
                    a.account,
                    e.sequence,
                    &Outbound::OrderAccepted(ouch::OrderAccepted {
                        timestamp_ns: ts,
                        user_ref_num: a.client_ref.0,
                        side: ouch_map::ouch_side(a.side),
                        quantity: a.qty,
                        symbol,
                        price: ouch::Price(a.price.max(0) as u64),
                        time_in_force: echo.map_or(ouch::TimeInForce::Day, |x| x.time_in_force),
                        display: echo.map_or(ouch::Display::Visible, |x| x.display),
                        order_reference_number: a.order_id.0,
                        capacity: echo.map_or(ouch::Capacity::Agency, |x| x.capacity),
                        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
                        cross_type: ouch::CrossType::ContinuousMarket,
                        order_state: ouch::OrderState::Live,
                        cl_ord_id: echo.map_or(blank_cl_ord_id(), |x| x.cl_ord_id),
                        appendage: ouch::Appendage::EMPTY,
                    }),
                );
            }
            Event::Rejected(r) => {
                if e.conn == ADMIN_CONN
                    || r.command == CommandKind::Disconnect
                    || r.command == CommandKind::SetRiskLimits
                    || r.command == CommandKind::KillSwitch
                {
                    self.hot(
                        HotRecord::new(HotLevel::Warn, "control command rejected")
                            .account(r.account.0)
                            .sequence(e.sequence),
                    );
                    return;
                }
                if (r.account.0 as usize) >= self.streams.len() {
                    return;
                }
                self.hot(
                    HotRecord::new(HotLevel::Debug, r.reason.as_str())
                        .account(r.account.0)
                        .order_ref(r.client_ref.0 as u64)
                        .sequence(e.sequence),
                );
                let message = if ouch_map::is_cancel_kind(r.command) {
                    Outbound::CancelReject { timestamp_ns: ts, user_ref_num: r.client_ref.0 }
                } else if r.command == CommandKind::MassCancel {
                    Outbound::CancelReject {
                        timestamp_ns: ts,
                        user_ref_num: self.streams[r.account.0 as usize]
                            .as_ref()
                            .and_then(|s| s.mass_cancel)
                            .map_or(0, |m| m.0),
                    }
                } else {
                    Outbound::OrderRejected(ouch::OrderRejected {
                        timestamp_ns: ts,
                        user_ref_num: r.client_ref.0,
                        reason: ouch_map::reject_code(r.reason),
                        cl_ord_id: self
                            .echo(r.account, r.client_ref.0)
                            .map_or(blank_cl_ord_id(), |x| x.cl_ord_id),
                    })
                };
                self.emit(r.account, e.sequence, &message);
            }
            Event::Executed(x) => {
                for (fill, liquidity) in
                    [(x.maker, ouch::LiquidityFlag::ADDED), (x.taker, ouch::LiquidityFlag::REMOVED)]
                {
                    self.emit(
                        fill.account,
                        e.sequence,
                        &Outbound::OrderExecuted(ouch::OrderExecuted {
                            timestamp_ns: ts,
                            user_ref_num: fill.client_ref.0,
                            quantity: x.qty,
                            price: ouch::Price(x.price.max(0) as u64),
                            liquidity_flag: liquidity,
                            match_number: x.match_id.0,
                            appendage: ouch::Appendage::EMPTY,
                        }),
                    );
                }
            }
            Event::Cancelled(c) => {
                self.emit(
                    c.account,
                    e.sequence,
                    &Outbound::OrderCanceled(ouch::OrderCanceled {
                        timestamp_ns: ts,
                        user_ref_num: c.client_ref.0,
                        quantity: c.qty_cancelled,
                        reason: ouch_map::cancel_code(c.reason),
                    }),
                );
            }
            Event::Replaced(r) => {
                let echo = self.echo(r.account, r.new_client_ref.0);
                self.record_latency(echo);
                let symbol = self.symbol(r.instrument);
                self.emit(
                    r.account,
                    e.sequence,
                    &Outbound::OrderReplaced(ouch::OrderReplaced {
                        timestamp_ns: ts,
                        orig_user_ref_num: r.old_client_ref.0,
                        user_ref_num: r.new_client_ref.0,
                        side: ouch_map::ouch_side(r.side),
                        quantity: r.qty,
                        symbol,
                        price: ouch::Price(r.price.max(0) as u64),
                        time_in_force: ouch::TimeInForce::Day,
                        display: echo.map_or(ouch::Display::Visible, |x| x.display),
                        order_reference_number: r.new_order_id.0,
                        capacity: echo.map_or(ouch::Capacity::Agency, |x| x.capacity),
                        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
                        cross_type: ouch::CrossType::ContinuousMarket,
                        order_state: ouch::OrderState::Live,
                        cl_ord_id: echo.map_or(blank_cl_ord_id(), |x| x.cl_ord_id),
                        appendage: ouch::Appendage::EMPTY,
                    }),
                );
            }
            Event::MassCancelled { account, reason: core::CancelReason::MassCancel, .. } => {
                let Some((user_ref, firm, symbol)) =
                    self.streams.get(account.0 as usize).and_then(|s| s.as_ref()).and_then(|s| s.mass_cancel)
                else {
                    return;
                };
                self.emit(
                    account,
                    e.sequence,
                    &Outbound::MassCancelResponse(ouch::MassCancelResponse {
                        timestamp_ns: ts,
                        user_ref_num: user_ref,
                        firm,
                        symbol,
                        appendage: ouch::Appendage::EMPTY,
                    }),
                );
            }
            Event::KillSwitch { account, engaged } => {
                if let Some(flag) = self.stats.kill_switch_engaged.get(account.0 as usize) {
                    flag.store(engaged, Ordering::Relaxed);
                }
                self.hot(
                    HotRecord::new(
                        HotLevel::Warn,
                        if engaged { "kill switch engaged" } else { "kill switch released" },
                    )
                    .account(account.0),
                );
            }
            _ => {}
        }
    }

    fn record_latency(&mut self, echo: Option<Echo>) {
        let Some(echo) = echo else { return };
        let _ = self.latency.record(self.now_ns().saturating_sub(echo.rx_ns).max(1));
        self.latency_recorded += 1;
        if self.latency_recorded >= 1024 {
            self.publish_latency();
        }
    }

    /// Hands the gateway's latency samples to readers without ever waiting for them.
    fn publish_latency(&mut self) {
        if let Ok(mut shared) = self.stats.wire_to_wire_ns.try_lock() {
            let _ = shared.add(&self.latency);
            self.latency.reset();
            self.latency_recorded = 0;
        }
    }

    fn symbol(&self, instrument: InstrumentId) -> ouch::Symbol {
        ouch::Symbol::from_wire(self.symbols.get(instrument.0 as usize).copied().unwrap_or([b' '; 8]))
            .unwrap_or_else(|| ouch::Symbol::from_wire([b' '; 8]).expect("blank symbol"))
    }

    /// Appends one OUCH message to an account's sequenced stream: recorded in its output
    /// journal (with the input sequence of the command that produced it, `source_sequence`, or
    /// [`NOT_FROM_A_COMMAND`]), and queued to its connection when that is live.
    fn emit(&mut self, account: AccountId, source_sequence: u64, message: &Outbound<'_>) {
        let Some(stream) = self.streams.get_mut(account.0 as usize).and_then(|s| s.as_mut()) else { return };
        if self.regenerating {
            // What the stream already holds of the replayed commands is not written twice.
            if source_sequence <= stream.held_through {
                return;
            }
            if source_sequence == stream.held_through + 1 && stream.held_partial_messages > 0 {
                stream.held_partial_messages -= 1;
                return;
            }
        }
        let mut packet = [0u8; 512];
        let len = match soupbin::encode_packet_with(&mut packet, packet_type::SEQUENCED_DATA, |b| {
            message.encode(b)
        }) {
            Ok(len) => len,
            Err(_) => {
                hot(
                    &self.hot_log,
                    HotRecord::new(HotLevel::Error, "cannot encode an outbound message").account(account.0),
                );
                return;
            }
        };
        let sequence = stream.next_sequence;
        if let Err(petrel_journal::AppendError::BufferFull { .. }) =
            stream.writer.append(sequence, source_sequence, &packet[..len])
        {
            if stream.writer.commit().is_err() {
                hot(
                    &self.hot_log,
                    HotRecord::new(
                        HotLevel::Error,
                        "session output journal commit failed (disk full or I/O error)",
                    )
                    .account(account.0),
                );
            }
            if stream.writer.append(sequence, source_sequence, &packet[..len]).is_err() {
                hot(
                    &self.hot_log,
                    HotRecord::new(HotLevel::Error, "session output journal append failed")
                        .account(account.0),
                );
                return;
            }
        }
        stream.next_sequence += 1;
        stream.dirty = true;
        bump(&self.stats.messages_out_total);
        if let Some(conn) = stream.conn {
            let c = &mut self.conns[conn as usize];
            if c.phase == Phase::Live {
                c.tx.extend_from_slice(&packet[..len]);
            }
        }
    }

    /// Writes the output journals before any of their bytes reach a socket, so a sequence
    /// number a client has seen is never reused for another message. False when a commit failed.
    fn commit_streams(&mut self) -> bool {
        let mut all_written = true;
        for stream in self.streams.iter_mut().flatten() {
            if stream.dirty {
                stream.dirty = false;
                if stream.writer.commit().is_err() {
                    all_written = false;
                    hot(
                        &self.hot_log,
                        HotRecord::new(
                            HotLevel::Error,
                            "session output journal commit failed (disk full or I/O error)",
                        ),
                    );
                }
            }
        }
        all_written
    }

    /// Commits the streams, then lets the release mark follow the last command boundary
    /// released, only once every stream holding its messages is written (after a failed commit
    /// the mark stays, so a restart regenerates what may be missing).
    fn commit_streams_and_mark(&mut self) {
        if !self.commit_streams() {
            return;
        }
        // A mark that lags is safe (the streams' own tails say what they hold; the mark only
        // bounds how far back a restart replays), so under load it is written every
        // RELEASE_MARK_LAG_MAX commands, and otherwise when the gateway goes idle.
        if self.release.pending - self.release.written >= RELEASE_MARK_LAG_MAX {
            self.write_release_mark_if_moved();
        }
    }

    /// Writes the release mark if released commands moved it (idle loops, shutdown).
    fn write_release_mark_if_moved(&mut self) {
        if self.release.pending <= self.release.written {
            return;
        }
        let mark = self.release.pending;
        if mark >= self.failpoints.abort_before_release_mark {
            abort_at_failpoint("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE_MARK", mark);
        }
        self.write_release_mark(mark);
    }

    fn write_release_mark(&mut self, mark: u64) {
        match self.release.file.write_all_at(&encode_release_mark(mark), 0) {
            Ok(()) => {
                self.release.written = mark;
                self.release.write_failed = false;
            }
            Err(_) => {
                // Said once per failing spell, not once per release.
                if !self.release.write_failed {
                    self.release.write_failed = true;
                    self.hot(HotRecord::new(
                        HotLevel::Error,
                        "cannot write the release mark (sessions/released): a crash now would regenerate more than needed at restart",
                    ));
                }
            }
        }
    }

    fn send_packet(&mut self, conn: ConnId, packet: &ServerPacket<'_>) {
        let mut buf = [0u8; 64];
        if let Ok(len) = packet.encode(&mut buf) {
            self.conns[conn as usize].tx.extend_from_slice(&buf[..len]);
        }
    }

    /// Sends what each connection has queued; continues replays; drops slow consumers.
    fn flush(&mut self) -> bool {
        let mut work = false;
        for conn in 0..self.conns.len() as ConnId {
            let phase = self.conns[conn as usize].phase;
            if phase == Phase::Free {
                continue;
            }
            if phase == Phase::Replaying {
                work |= self.continue_replay(conn);
            }
            work |= self.flush_conn(conn);
        }
        work
    }

    fn flush_conn(&mut self, conn: ConnId) -> bool {
        let now = self.now_ns();
        let c = &mut self.conns[conn as usize];
        if c.tx_sent == c.tx.len() {
            return false;
        }
        match self.transport.send(conn, &c.tx[c.tx_sent..]) {
            Ok(0) => {}
            Ok(n) => {
                c.tx_sent += n;
                c.session.on_sent(now);
                if c.tx_sent == c.tx.len() {
                    c.tx.clear();
                    c.tx_sent = 0;
                } else if c.tx_sent > c.tx.len() / 2 {
                    c.tx.drain(..c.tx_sent);
                    c.tx_sent = 0;
                }
            }
            Err(_) => {
                self.hot(HotRecord::new(HotLevel::Debug, "send failed: connection closed").session(conn));
                bump(&self.stats.disconnects_peer_total);
                self.release_conn(conn, true);
                return true;
            }
        }
        let c = &self.conns[conn as usize];
        if c.tx.len() - c.tx_sent > self.settings.tx_backlog_bytes_max {
            bump(&self.stats.disconnects_slow_consumer_total);
            hot(
                &self.hot_log,
                HotRecord::new(
                    HotLevel::Warn,
                    "client is not reading (send backlog over its limit): resetting the connection",
                )
                .session(conn),
            );
            // Reset, not closed: the answers queued in the kernel would otherwise trickle out
            // to a client that does not read, holding their memory for minutes.
            self.transport.abort(conn);
            self.release_conn(conn, false);
        }
        true
    }

    /// Sends more of a replay, a bounded amount per loop so live sessions keep being served.
    fn continue_replay(&mut self, conn: ConnId) -> bool {
        let Some(account) = self.conns[conn as usize].account else { return false };
        let Some(stream) = self.streams[account.0 as usize].as_ref() else { return false };
        let end = stream.next_sequence;
        let c = &mut self.conns[conn as usize];
        if c.replay_next >= end {
            c.replay = None;
            c.phase = Phase::Live;
            return true;
        }
        if c.tx.len() - c.tx_sent > self.settings.tx_backlog_bytes_max / 2 {
            return false;
        }
        if c.replay.is_none() {
            match open_reader(&stream.location, c.replay_next) {
                Ok(reader) => c.replay = Some(reader),
                Err(_) => {
                    hot(
                        &self.hot_log,
                        HotRecord::new(
                            HotLevel::Error,
                            "cannot read the session output journal for a replay: disconnecting",
                        )
                        .session(conn),
                    );
                    self.disconnect(conn);
                    return true;
                }
            }
        }
        let reader = c.replay.as_mut().expect("opened above");
        for _ in 0..1024 {
            if c.replay_next >= end {
                break;
            }
            match reader.next_record() {
                Ok(Some(record)) => {
                    debug_assert_eq!(record.sequence, c.replay_next);
                    c.tx.extend_from_slice(record.payload);
                    c.replay_next += 1;
                    self.stats.replayed_messages_total.fetch_add(1, Ordering::Relaxed);
                }
                // The reader's view ended (a new segment since it opened): reopen next time.
                Ok(None) => {
                    c.replay = None;
                    break;
                }
                Err(_) => {
                    hot(
                        &self.hot_log,
                        HotRecord::new(
                            HotLevel::Error,
                            "session replay failed reading the output journal: disconnecting",
                        )
                        .session(conn),
                    );
                    self.disconnect(conn);
                    return true;
                }
            }
        }
        true
    }

    fn timers(&mut self) {
        let now = self.now_ns();
        for conn in 0..self.conns.len() as ConnId {
            let c = &mut self.conns[conn as usize];
            if c.phase == Phase::Free {
                continue;
            }
            match c.session.poll(now) {
                TimerAction::Nothing => {}
                TimerAction::SendHeartbeat => self.send_packet(conn, &ServerPacket::ServerHeartbeat),
                TimerAction::Disconnect(reason) => {
                    match reason {
                        CloseReason::IdleTimeout | CloseReason::LoginTimeout => {
                            bump(&self.stats.disconnects_timeout_total)
                        }
                        _ => bump(&self.stats.disconnects_protocol_total),
                    }
                    hot(
                        &self.hot_log,
                        HotRecord::new(
                            HotLevel::Info,
                            if matches!(reason, CloseReason::LoginTimeout) {
                                "session timed out before logging in"
                            } else {
                                "session timed out: no heartbeat"
                            },
                        )
                        .session(conn),
                    );
                    self.disconnect(conn);
                }
            }
        }
    }

    /// Ends a session from our side: flush what is queued, close.
    fn disconnect(&mut self, conn: ConnId) {
        self.flush_conn(conn);
        self.release_conn(conn, true);
    }

    fn release_conn(&mut self, conn: ConnId, close_socket: bool) {
        let c = &mut self.conns[conn as usize];
        if c.phase == Phase::Free {
            return;
        }
        c.phase = Phase::Free;
        c.replay = None;
        c.tx.clear();
        c.tx_sent = 0;
        c.rx.clear();
        let account = c.account.take();
        if close_socket {
            self.transport.close(conn);
        }
        if let Some(account) = account {
            self.stats.sessions_logged_in.fetch_sub(1, Ordering::Relaxed);
            if let Some(stream) = self.streams[account.0 as usize].as_mut() {
                stream.conn = None;
            }
            let cancel = self
                .users
                .read()
                .expect("users lock")
                .by_account(account)
                .is_some_and(|u| u.cancel_on_disconnect);
            if cancel {
                self.hot(
                    HotRecord::new(
                        HotLevel::Info,
                        "session ended: cancelling the account's orders (cancel on disconnect)",
                    )
                    .session(conn)
                    .account(account.0),
                );
                self.submit(InboundCommand { conn: ADMIN_CONN, command: Command::Disconnect { account } });
            }
        }
    }

    /// Shutdown: deliver what is durable, send End of Session to every session, close.
    fn close_all(&mut self) {
        self.drain_outbound();
        for conn in 0..self.conns.len() as ConnId {
            if self.conns[conn as usize].phase == Phase::Free {
                continue;
            }
            self.conns[conn as usize].session.end_of_session();
            self.send_packet(conn, &ServerPacket::EndOfSession);
            self.flush_conn(conn);
            let c = &mut self.conns[conn as usize];
            // Ending the trading session is not a disconnect: no cancel-on-disconnect here.
            c.account = None;
            c.phase = Phase::Free;
            self.transport.close(conn);
        }
        self.commit_streams_and_mark();
        self.write_release_mark_if_moved();
        // End of Session is queued; give every client a moment to receive it.
        if let Ok(false) = self.transport.drain_sends(SHUTDOWN_SEND_WAIT) {
            self.hot(HotRecord::new(
                HotLevel::Warn,
                "shutdown: some clients did not take their End of Session in time",
            ));
        }
    }
}

/// How long shutdown waits for queued bytes (End of Session) to reach the kernel.
const SHUTDOWN_SEND_WAIT: Duration = Duration::from_millis(500);

fn hot(log: &HotLog, record: HotRecord) {
    log.try_log(record);
}

fn violation_message(violation: petrel_proto::session::Violation) -> &'static str {
    use petrel_proto::session::Violation;
    match violation {
        Violation::DataBeforeLogin => "SoupBinTCP violation: data before login: disconnecting",
        Violation::SecondLogin => "SoupBinTCP violation: second login on a logged-in session: disconnecting",
        Violation::PacketDuringLogin => {
            "SoupBinTCP violation: packet while the login is being checked: disconnecting"
        }
        Violation::AfterClose => "SoupBinTCP violation: packet after the session closed: disconnecting",
    }
}

enum Owned {
    Data(usize),
    Login(soupbin::LoginRequest),
    Heartbeat,
    Logout,
    Debug,
}

fn blank_cl_ord_id() -> ouch::ClOrdId {
    ouch::ClOrdId::from_wire([b' '; 14]).expect("blank ClOrdID")
}

/// A reader of an output journal from `sequence`, without taking the writer's lock.
/// A read-only view of an output journal (checked, nothing changed; a torn tail is left for the
/// writer's next open to cut), from which records can be replayed.
fn read_only_view(
    location: &petrel_journal::JournalLocation,
) -> Result<petrel_journal::Recovery, petrel_journal::JournalError> {
    let verified = petrel_journal::verify(location)?;
    Ok(petrel_journal::Recovery {
        location: location.clone(),
        record_count: verified.record_count,
        first_sequence: verified.first_sequence,
        last_sequence: verified.last_sequence,
        segments: verified.segments,
        truncation: verified.torn_tail,
        removed_temp_files: Vec::new(),
        created: false,
    })
}

fn open_reader(
    location: &petrel_journal::JournalLocation,
    sequence: u64,
) -> Result<petrel_journal::JournalReader, petrel_journal::JournalError> {
    let recovery = read_only_view(location)?;
    recovery.replay_from(sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_mark_round_trips_and_damage_is_detected() {
        let bytes = encode_release_mark(123_456);
        assert_eq!(decode_release_mark(&bytes), Ok(123_456));
        for i in 0..RELEASE_MARK_BYTES {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert!(decode_release_mark(&damaged).is_err(), "a flipped bit at byte {i} is caught");
        }
        assert!(decode_release_mark(&bytes[..19]).unwrap_err().contains("19 bytes"));
        assert!(decode_release_mark(&[]).is_err(), "an empty file (crash before the first write)");
    }

    fn tails(mark: ReleaseMark, streams: &[(u64, u64)]) -> OutputTails {
        OutputTails {
            mark,
            streams: streams
                .iter()
                .map(|&(last_source, last_source_messages)| StreamTail {
                    last_source,
                    last_source_messages,
                    next_sequence: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn what_a_stream_holds_follows_the_mark_and_its_tail() {
        // Account 0 is behind the mark, account 1 holds two messages of command 12 > mark.
        let t = tails(ReleaseMark::At(10), &[(7, 1), (12, 2)]);
        assert_eq!(t.held(0), Held { through: 10, partial_messages: 0 });
        assert_eq!(t.held(1), Held { through: 11, partial_messages: 2 });
        assert_eq!(t.regenerate_after(), Some(10));
        // Every stream ahead of the mark: T is the least of their bounds.
        let t = tails(ReleaseMark::At(10), &[(14, 1), (12, 3)]);
        assert_eq!(t.regenerate_after(), Some(11));
        // A damaged mark: the tails alone (an account with nothing from a command: everything).
        let t = tails(ReleaseMark::Corrupt("bad magic".into()), &[(14, 1), (0, 0)]);
        assert_eq!(t.held(1), Held { through: 0, partial_messages: 0 });
        assert_eq!(t.regenerate_after(), Some(0));
        // No mark: nothing to regenerate from.
        assert_eq!(tails(ReleaseMark::Missing, &[(14, 1)]).regenerate_after(), None);
    }

    #[test]
    fn a_stream_tail_is_its_newest_source_and_how_many_records_carry_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            OutputTails::read(&dir.path().join("sessions"), 2).unwrap(),
            tails(ReleaseMark::Missing, &[(0, 0), (0, 0)]),
            "no sessions directory: a fresh install"
        );
        let sessions = dir.path().join("sessions");
        let (mut writer, _) = Journal::open(&stream_journal_config(&sessions, 0)).unwrap();
        // A record from before source sequences (wall-clock ns), Start of Day, three commands
        // with a gateway answer inside the last one.
        let sources = [1_700_000_000_000_000_000u64, 0, 3, 3, 5, 0, 5];
        for (i, source) in sources.iter().enumerate() {
            writer.append(i as u64 + 1, *source, b"packet").unwrap();
        }
        writer.commit().unwrap();
        drop(writer);
        std::fs::write(sessions.join(RELEASE_MARK_FILE), encode_release_mark(4)).unwrap();
        let read = OutputTails::read(&sessions, 2).unwrap();
        assert_eq!(read.mark, ReleaseMark::At(4));
        assert_eq!(read.streams[0], StreamTail { last_source: 5, last_source_messages: 2, next_sequence: 8 });
        assert_eq!(read.streams[1], StreamTail { last_source: 0, last_source_messages: 0, next_sequence: 1 });
        assert_eq!(read.held(0), Held { through: 4, partial_messages: 2 });
        assert_eq!(read.regenerate_after(), Some(4));
    }
}
