//! What the gateway is configured with, and how it fails to start.

use crate::config::Config;
use crate::runtime::IdleStrategy;
use petrel_proto::session::SessionTimers;
use std::io;
use std::path::PathBuf;

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
    /// Size of one segment of an account's output journal, preallocated when the segment is
    /// created (`gateway.output_journal_segment_bytes`).
    pub output_segment_bytes: u64,
    /// What the gateway thread does when a loop finds nothing to do (`runtime.gateway.idle`).
    /// `park` sleeps in the network poll, woken by the network or by its doorbell.
    pub idle: IdleStrategy,
}

/// Bytes one transport read hands the gateway at most.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Largest SoupBinTCP packet a client may send.
const PACKET_BYTES_MAX: usize = 1024;

/// Where the output journals and the release mark live: beside the input journal.
pub fn sessions_dir(journal_dir: &std::path::Path) -> PathBuf {
    journal_dir.join("sessions")
}

impl GatewaySettings {
    pub fn from_config(config: &Config) -> GatewaySettings {
        GatewaySettings {
            max_sessions: config.gateway.max_sessions,
            packet_bytes_max: PACKET_BYTES_MAX,
            // One read of the transport plus one partial packet.
            rx_buffer_bytes: READ_BUFFER_BYTES + PACKET_BYTES_MAX,
            tx_backlog_bytes_max: config.gateway.max_send_backlog_bytes as usize,
            timers: SessionTimers::default(),
            session_name: config.gateway.session_name.clone(),
            sessions_dir: sessions_dir(&config.journal.dir),
            output_segment_bytes: config.gateway.output_journal_segment_bytes,
            idle: config.runtime.gateway.idle,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: io::Error },
    #[error("session output journal for account {account}: {source}")]
    Journal { account: String, source: Box<petrel_journal::JournalError> },
    #[error(transparent)]
    MarketData(#[from] crate::market_data::MarketDataError),
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
