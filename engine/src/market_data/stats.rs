//! The feed's counters, written by its threads with relaxed atomics and read by the metrics
//! endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct FeedStats {
    /// ITCH messages recorded in the feed journal (regenerated ones included).
    pub messages_total: AtomicU64,
    /// Messages regenerated at start (a crash kept them from the journal).
    pub regenerated_messages_total: AtomicU64,
    /// Downstream packets sent with messages (each destination counted once per packet).
    pub packets_total: AtomicU64,
    /// Bytes of those packets (UDP payload).
    pub bytes_total: AtomicU64,
    pub heartbeats_total: AtomicU64,
    pub end_of_session_total: AtomicU64,
    /// UDP sends the kernel refused (counted, never retried: listeners recover the gap).
    pub send_errors_total: AtomicU64,
    /// Feed-journal appends or commits that failed (disk full or I/O error).
    pub journal_errors_total: AtomicU64,
    /// The newest sequence number recorded, and the newest sent: their difference is how far
    /// the publisher is behind.
    pub recorded_sequence: AtomicU64,
    pub sent_sequence: AtomicU64,
    pub requests_served_total: AtomicU64,
    pub retransmitted_messages_total: AtomicU64,
    /// Requests refused, by reason.
    pub requests_malformed_total: AtomicU64,
    pub requests_wrong_session_total: AtomicU64,
    pub requests_out_of_range_total: AtomicU64,
    pub requests_rate_limited_total: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
