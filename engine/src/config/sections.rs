//! The validated sections of a [`Config`](super::Config), in the engine's units, as the
//! runtime, the gateway and the tools use them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// What the configuration says about an account beyond what the core needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    pub name: String,
    pub firm: String,
    pub risk_profile: String,
}

/// `[replication]`: a primary/standby pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    pub role: Role,
    /// Both engines of a pair must name the same cluster; a peer of another one is refused.
    pub cluster_id: String,
    pub secret_file: PathBuf,
    pub secret: Secret,
    /// This engine's replication address: a primary (and a standby once promoted) listens
    /// here for its standby.
    pub listen: SocketAddr,
    /// The other engine's replication address: a standby follows the primary there; a primary
    /// asks there at start whether a newer primary (a promoted standby) runs.
    pub peer: SocketAddr,
    pub ack: Ack,
    /// With `ack = "standby"`: what the primary does while it has no standby.
    pub on_standby_loss: StandbyLoss,
    /// What a primary does at start when a newer primary (a promoted standby) runs at its peer.
    pub rejoin: Rejoin,
}

/// `[market_data]`: the TotalView-ITCH 5.0 feed over MoldUDP64 (docs/MARKET-DATA.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketDataConfig {
    /// MoldUDP64 session: 1 to 10 letters or digits, padded with spaces on the wire.
    pub session: String,
    pub multicast_group: Option<SocketAddr>,
    /// The local address multicast leaves from (`IP_MULTICAST_IF`); unset: the kernel's route.
    pub multicast_interface: Option<std::net::Ipv4Addr>,
    pub multicast_ttl: u32,
    /// Unicast destinations, each sent every packet.
    pub destinations: Vec<SocketAddr>,
    /// The MoldUDP64 retransmission request server; unset: none.
    pub retransmission_listen: Option<SocketAddr>,
    /// The snapshot service for late joiners (SoupBinTCP over TCP); unset: none.
    pub snapshot_listen: Option<SocketAddr>,
    /// Accounts whose new orders are published as Add Order with MPID Attribution (`F`), the
    /// MPID being the account's firm name; the others' anonymously (`A`).
    pub attributed_accounts: Vec<String>,
    pub heartbeat_interval_ms: u64,
    /// UDP payload limit of one downstream packet (header included).
    pub max_packet_bytes: u32,
    /// Most messages answered to one request (a larger count is cut to this).
    pub max_messages_per_request: u32,
    /// Requests each requester (address and port) may make per second; more are refused.
    pub requests_per_second_per_requester: u32,
    /// Segment size of the feed journal (`<journal dir>/market_data/feed-*.seg`).
    pub journal_segment_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Primary,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }
}

/// When the primary may release a command's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ack {
    /// Once durable on both hosts: no acknowledged order is lost with either host (RPO 0).
    #[default]
    Standby,
    /// Once durable locally; the standby follows asynchronously and its lag is a metric.
    Local,
}

/// With `ack = "standby"`, while no standby is connected and caught up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StandbyLoss {
    /// Acknowledge nothing until a standby has it too (orders wait; alert).
    Halt,
    /// Acknowledge on local durability alone; the standby is not promotable until it has
    /// caught up (recorded in the metrics and the log; alert).
    Continue,
}

/// `[failover] mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverMode {
    /// `petrel-engine promote`, by an operator.
    Manual,
    /// A leader key in etcd, bound to a lease: the standby promotes itself when it expires.
    Etcd,
}

/// `[failover]` with `mode = "etcd"` (`failover/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverConfig {
    /// etcd's client URLs (`http://host:port`), tried in turn.
    pub endpoints: Vec<String>,
    /// Keys under this prefix: `<prefix>/leader`, `<prefix>/epoch`, `<prefix>/promotable`.
    pub key_prefix: String,
    /// The leader lease's time to live (etcd counts whole seconds; at least 2).
    pub lease_ttl_s: u64,
}

/// `replication.rejoin`: what a stale primary does at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rejoin {
    /// Refuse to start, saying so; an operator runs `petrel-engine rejoin`.
    #[default]
    Manual,
    /// Rejoin by itself (what `petrel-engine rejoin` does), then follow the new primary as its
    /// standby.
    Auto,
}

/// The shared secret's bytes; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
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
    /// Which threads carry an order (see [`DataPath`]).
    pub mode: DataPath,
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

/// How an order crosses the engine (`runtime.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataPath {
    /// One thread carries an order from socket to socket: the gateway's thread reads it,
    /// sequences, matches and journals it, waits for its durable write and sends the answer.
    /// No wake-up of another thread on an order's path: the lowest latency wherever threads
    /// cannot each own a core (development machines, CI, small VMs), and a fair choice on any
    /// host. `runtime.sequencer` and `runtime.journal` are not used.
    RunToCompletion,
    /// The LMAX pipeline: gateway, sequencer/matcher and journal writer on threads of their own,
    /// joined by bounded rings. Matching overlaps the durable write and the network: the most
    /// throughput on a host that pins each thread to a core of its own with `busy-spin`.
    #[default]
    Pipeline,
}

impl DataPath {
    pub fn as_str(self) -> &'static str {
        match self {
            DataPath::RunToCompletion => "run-to-completion",
            DataPath::Pipeline => "pipeline",
        }
    }
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
    /// Size of one segment of each account's output journal (`<journal dir>/sessions`),
    /// preallocated when the segment is created: every account reserves one at start.
    pub output_journal_segment_bytes: u64,
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
