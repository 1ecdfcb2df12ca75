//! Hot standby: the primary ships every input-journal record to its standby, which journals and
//! applies it (`[replication]` in the configuration).
//!
//! - `wire.rs`: the frames and the handshake (cluster id, HMAC proofs over fresh nonces).
//! - `primary.rs`: the primary's replication thread: accepts the standby, ships records up to
//!   the local durable mark from the journal files ([`petrel_journal::JournalTail`]), and
//!   takes its acknowledgements into the release gate (`port::ReleaseGate`).
//! - `standby.rs`: the standby's follower: connects, proves the secret, appends each record to
//!   its own journal (group commit per frame), applies it to its engine, acknowledges.
//! - `rebuild.rs`: a standby that needs records the primary's retention deleted gets a backup
//!   of the primary over the same connection and restores it.
//!
//! Inputs are shipped, not state: both engines apply the same records in the same order, and
//! the core is deterministic, so their states are equal at every sequence.

pub mod epoch;
pub mod observe;
pub mod peer;
pub mod primary;
pub mod rebuild;
pub mod standby;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// With etcd failover under `on_standby_loss = "continue"`: writes, for the primary's epoch,
/// whether its standby may be promoted, where the standby's failover watcher reads it
/// (`failover::promotable`). An error says why nothing was written.
pub type MarkStandby = Arc<dyn Fn(bool) -> Result<(), String> + Send + Sync>;

/// The acknowledgement policy as one byte, compared in the handshake: a pair whose two
/// configurations disagree on it is refused (the standby's judgement of whether it may be
/// promoted rests on its own copy).
pub fn policy_byte(config: &crate::config::ReplicationConfig) -> u8 {
    use crate::config::{Ack, StandbyLoss};
    match (config.ack, config.on_standby_loss) {
        (Ack::Local, _) => 0,
        (Ack::Standby, StandbyLoss::Halt) => 1,
        (Ack::Standby, StandbyLoss::Continue) => 2,
    }
}

/// With this policy the primary never acknowledges what its standby lacks, even after losing
/// it: a standby cut off from its primary stays promotable.
pub fn halts_without_standby(config: &crate::config::ReplicationConfig) -> bool {
    policy_byte(config) == 1
}

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

    /// A peer of another epoch: a standby newer than its primary (which is then stale), or a
    /// primary older than its standby.
    Epoch,
}

impl Refusal {
    pub const ALL: [Refusal; 5] =
        [Refusal::Protocol, Refusal::Cluster, Refusal::Secret, Refusal::Sequence, Refusal::Epoch];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Protocol => "protocol",
            Refusal::Cluster => "cluster",
            Refusal::Secret => "secret",
            Refusal::Sequence => "sequence",

            Refusal::Epoch => "epoch",
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
    /// Standby: the last sequence applied to its engine...
    pub applied: AtomicU64,
    /// ... and its sequenced timestamp (wall-clock ns, the primary's sequencer's).
    pub applied_timestamp_ns: AtomicU64,
    /// Primary, `ack = "standby"`, `on_standby_loss = "halt"`, no standby caught up:
    /// nothing is acknowledged.
    pub halted: AtomicBool,
    /// Standby: the primary last reported that this standby holds every record it
    /// acknowledged (promoting it loses no acknowledged order). On a primary the same is
    /// computed from the release gate (`primary::promotable`).
    pub standby_promotable: AtomicBool,
    /// Standby: what the primary said of `standby_promotable` in its last frame, kept when the
    /// connection ends (the failover watcher's view under `continue`, where etcd says whether
    /// the primary went on alone since).
    pub primary_said_promotable: AtomicBool,
    /// Primary: the standby has acknowledged everything durable since it (re)connected.
    pub caught_up: AtomicBool,
    refused: [AtomicU64; 5],
    /// Primary: a standby of a newer epoch connected, so a standby was promoted since this
    /// engine became primary: it must stop serving.
    pub stale: AtomicBool,
    /// This engine's epoch.
    pub epoch: AtomicU64,
    pub disconnects_total: AtomicU64,
    pub records_total: AtomicU64,
    /// Primary: backups sent to a standby to rebuild from. Standby: rebuilds from one.
    pub rebuilds_total: AtomicU64,
    /// State hashes compared (the standby: its own against the primary's at the same sequence;
    /// the primary: sent).
    pub hash_checks_total: AtomicU64,
    pub divergences_total: AtomicU64,
    /// Standby: a hash differed. Its state is not the primary's, so it is never promoted.
    pub diverged: AtomicBool,
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
