//! The file as written: serde's mirror of the TOML, with its defaults. `deny_unknown_fields`
//! everywhere, so a misspelt key is an error, never ignored. Nothing here checks more than
//! serde can; `convert` does the rest.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use petrel_core::StpMode;
use petrel_journal::JournalConfig;
use serde::Deserialize;

use super::sections::{Ack, DataPath, FailoverMode, GatewayBackend, Rejoin, Role, StandbyLoss, ThreadConfig};
use super::units::{Decimal4, Limit, Money};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) engine: RawEngine,
    #[serde(default)]
    pub(super) firms: Vec<RawFirm>,
    #[serde(default)]
    pub(super) risk_profiles: BTreeMap<String, RawRiskProfile>,
    #[serde(default)]
    pub(super) instruments: Vec<RawInstrument>,
    #[serde(default)]
    pub(super) accounts: Vec<RawAccount>,
    /// Read straight into the journal's own type: it has no human units to convert.
    pub(super) journal: JournalConfig,
    pub(super) snapshots: RawSnapshots,
    #[serde(default)]
    pub(super) runtime: RawRuntime,
    pub(super) gateway: RawGateway,
    #[serde(default)]
    pub(super) admin: RawAdmin,
    #[serde(default)]
    pub(super) log: RawLog,
    /// Absent: a single engine with no standby.
    #[serde(default)]
    pub(super) replication: Option<RawReplication>,
    /// Absent: no market-data feed.
    #[serde(default)]
    pub(super) market_data: Option<RawMarketData>,
    /// Absent: promotion is manual.
    #[serde(default)]
    pub(super) failover: Option<RawFailover>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFailover {
    pub(super) mode: FailoverMode,
    #[serde(default)]
    pub(super) endpoints: Vec<String>,
    #[serde(default)]
    pub(super) key_prefix: Option<String>,
    #[serde(default = "default_lease_ttl_s")]
    pub(super) lease_ttl_s: u64,
}

fn default_lease_ttl_s() -> u64 {
    2
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMarketData {
    pub(super) session: String,
    #[serde(default)]
    pub(super) multicast_group: Option<SocketAddr>,
    #[serde(default)]
    pub(super) multicast_interface: Option<std::net::Ipv4Addr>,
    #[serde(default)]
    pub(super) multicast_ttl: Option<u32>,
    #[serde(default)]
    pub(super) destinations: Vec<SocketAddr>,
    #[serde(default)]
    pub(super) retransmission_listen: Option<SocketAddr>,
    #[serde(default)]
    pub(super) snapshot_listen: Option<SocketAddr>,
    #[serde(default)]
    pub(super) attributed_accounts: Vec<String>,
    #[serde(default)]
    pub(super) heartbeat_interval_ms: Option<u64>,
    #[serde(default)]
    pub(super) max_packet_bytes: Option<u32>,
    #[serde(default)]
    pub(super) max_messages_per_request: Option<u32>,
    #[serde(default)]
    pub(super) requests_per_second_per_requester: Option<u32>,
    #[serde(default)]
    pub(super) journal_segment_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplication {
    pub(super) role: Role,
    pub(super) cluster_id: String,
    pub(super) secret_file: PathBuf,
    pub(super) listen: SocketAddr,
    pub(super) peer: SocketAddr,
    #[serde(default)]
    pub(super) ack: Ack,
    #[serde(default)]
    pub(super) on_standby_loss: Option<StandbyLoss>,
    #[serde(default)]
    pub(super) rejoin: Rejoin,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    pub(super) max_orders: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFirm {
    pub(super) name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRiskProfile {
    pub(super) max_order_qty: Limit<u32>,
    pub(super) max_order_notional: Limit<Money>,
    pub(super) price_collar_bps: Limit<u32>,
    pub(super) max_open_orders: Limit<u32>,
    pub(super) max_position: Limit<u64>,
    pub(super) max_orders_per_window: Limit<u32>,
    pub(super) rate_window_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstrument {
    pub(super) symbol: String,
    pub(super) tick_size: Decimal4,
    pub(super) lot_size: u32,
    pub(super) price_band_min: Decimal4,
    pub(super) price_band_max: Decimal4,
    pub(super) reference_price: Option<Decimal4>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub(super) name: String,
    pub(super) firm: String,
    #[serde(default)]
    pub(super) stp: StpMode,
    pub(super) risk_profile: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSnapshots {
    pub(super) dir: PathBuf,
    pub(super) every_commands: u64,
    #[serde(default = "default_snapshots_keep")]
    pub(super) keep: u32,
}

fn default_snapshots_keep() -> u32 {
    3
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuntime {
    #[serde(default)]
    pub(super) mode: DataPath,
    #[serde(default)]
    pub(super) mlockall: bool,
    pub(super) realtime_priority: Option<u32>,
    #[serde(default)]
    pub(super) gateway: ThreadConfig,
    #[serde(default)]
    pub(super) sequencer: ThreadConfig,
    #[serde(default)]
    pub(super) journal: ThreadConfig,
    #[serde(default)]
    pub(super) housekeeping: ThreadConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub(super) listen: SocketAddr,
    pub(super) users_file: PathBuf,
    #[serde(default)]
    pub(super) backend: GatewayBackend,
    #[serde(default = "default_max_sessions")]
    pub(super) max_sessions: u32,
    #[serde(default = "default_session_name")]
    pub(super) session_name: String,
    #[serde(default = "default_max_send_backlog_bytes")]
    pub(super) max_send_backlog_bytes: u64,
    #[serde(default = "default_output_journal_segment_bytes")]
    pub(super) output_journal_segment_bytes: u64,
    #[serde(default)]
    pub(super) allow_readable_users_file: bool,
}

fn default_max_send_backlog_bytes() -> u64 {
    8 * 1024 * 1024
}

/// 1 MiB: one segment of an account's output journal holds some 10,000 OUCH messages; more
/// segments are created as a stream grows, so the size bounds what each account reserves up
/// front, not how much it can hold.
fn default_output_journal_segment_bytes() -> u64 {
    1 << 20
}

fn default_max_sessions() -> u32 {
    256
}

fn default_session_name() -> String {
    "PETREL".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    #[serde(default = "default_admin_listen")]
    pub(super) listen: SocketAddr,
    #[serde(default)]
    pub(super) allow_non_loopback: bool,
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
pub(super) struct RawLog {
    #[serde(default = "default_log_filter")]
    pub(super) filter: String,
}

impl Default for RawLog {
    fn default() -> RawLog {
        RawLog { filter: default_log_filter() }
    }
}

fn default_log_filter() -> String {
    "info".to_owned()
}
