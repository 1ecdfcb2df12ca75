//! Hot standby: the primary ships every input-journal record to its standby, which journals and
//! applies it (`[replication]` in the configuration).
//!
//! - `wire.rs`: the frames and the handshake (cluster id, HMAC proofs over fresh nonces).
//! - `primary.rs`: the primary's replication thread: accepts the standby, ships records up to
//!   the local durable mark from the journal files ([`petrel_journal::JournalTail`]), and
//!   takes its acknowledgements into the release gate (`port::ReleaseGate`).
//! - `standby.rs`: the standby's follower: connects, proves the secret, appends each record to
//!   its own journal (group commit per frame), applies it to its engine, acknowledges.
//!
//! Inputs are shipped, not state: both engines apply the same records in the same order, and
//! the core is deterministic, so their states are equal at every sequence.

pub mod observe;
pub mod primary;
pub mod standby;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Why a peer was refused, as the metric's `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Bytes that are not this protocol, a damaged frame, or a frame out of place.
    Protocol,
    /// Another cluster's peer.
    Cluster,
    /// A proof of the shared secret that does not hold.
    Secret,
    /// A standby that holds records the primary does not, or wants records it no longer keeps.
    Sequence,
    /// A second standby while one is connected.
    Busy,
}

impl Refusal {
    pub const ALL: [Refusal; 5] =
        [Refusal::Protocol, Refusal::Cluster, Refusal::Secret, Refusal::Sequence, Refusal::Busy];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Protocol => "protocol",
            Refusal::Cluster => "cluster",
            Refusal::Secret => "secret",
            Refusal::Sequence => "sequence",
            Refusal::Busy => "busy",
        }
    }
}

/// What the admin endpoint shows about replication, on either role.
#[derive(Debug, Default)]
pub struct ReplicationStats {
    /// A peer is connected and past the handshake.
    pub connected: AtomicBool,
    /// Primary: the standby's last acknowledgement. Standby: its own durable mark.
    pub standby_durable: AtomicU64,
    /// Standby: the primary's durable mark, as last heard (the lag is the difference).
    pub primary_durable: AtomicU64,
    /// Standby: the last sequence applied to its engine.
    pub applied: AtomicU64,
    /// Primary, `ack = "standby"`, `on_standby_loss = "halt"`, no standby caught up:
    /// nothing is acknowledged.
    pub halted: AtomicBool,
    /// Primary: the standby has every record the primary acknowledged (it could be promoted
    /// without losing an acknowledged order).
    pub standby_promotable: AtomicBool,
    refused: [AtomicU64; 5],
    pub disconnects_total: AtomicU64,
    pub records_total: AtomicU64,
}

impl ReplicationStats {
    pub fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused[why as usize].load(Ordering::Relaxed)
    }

    /// Records the standby lacks (primary: local durable minus the standby's acknowledgement;
    /// standby: the primary's mark minus its own).
    pub fn lag(&self, local_durable: u64) -> u64 {
        local_durable.saturating_sub(self.standby_durable.load(Ordering::Relaxed))
    }
}
