//! The gateway's counters and its wire-to-wire latency histogram, read by the control plane.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

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
    /// switch is engaged. Both move when the event is released to the account's stream.
    pub position_rejects_total: Vec<AtomicU64>,
    pub kill_switch_engaged: Vec<AtomicBool>,
    /// Inside the engine, wire to wire: from the moment a client's packet was read to the
    /// moment its first answer was queued to the socket, ns. Merged from the gateway thread's
    /// own histogram (never blocking it) and reset by whoever reads it.
    pub wire_to_wire_ns: Mutex<hdrhistogram::Histogram<u64>>,
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
            kill_switch_engaged: (0..accounts).map(|_| AtomicBool::new(false)).collect(),
            wire_to_wire_ns: Mutex::new(crate::metrics::new_latency_histogram()),
        }
    }
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The gateway thread's own latency histogram: recorded without sharing, merged into
/// [`GatewayStats::wire_to_wire_ns`] at most every [`crate::port::HISTOGRAM_MERGE_INTERVAL`]
/// (a merge costs tens of microseconds; the loop offers one on every pass).
pub(super) struct LatencyRecorder {
    histogram: crate::port::ThreadHistogram,
}

impl LatencyRecorder {
    pub(super) fn new() -> LatencyRecorder {
        LatencyRecorder {
            histogram: crate::port::ThreadHistogram::new(crate::metrics::new_latency_histogram()),
        }
    }

    pub(super) fn record(&mut self, latency_ns: u64) {
        self.histogram.record(latency_ns);
    }

    /// Hands the samples to readers when due, without ever waiting for them.
    pub(super) fn publish(&mut self, stats: &GatewayStats) {
        self.histogram.merge_if_due(&stats.wire_to_wire_ns);
    }
}
