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
    /// Snapshots sent to late joiners, and subscribers dropped before theirs was sent.
    pub snapshot_sessions_total: AtomicU64,
    pub snapshot_failed_total: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl FeedStats {
    /// Renders the feed's metrics (with `[market_data]` only).
    pub fn render_metrics(&self, e: &mut crate::metrics::Exposition<'_>) {
        use crate::metrics as m;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        e.counter(&m::FEED_MESSAGES_TOTAL, load(&self.messages_total));
        e.counter(&m::FEED_REGENERATED_MESSAGES_TOTAL, load(&self.regenerated_messages_total));
        e.counter(&m::FEED_PACKETS_TOTAL, load(&self.packets_total));
        e.counter(&m::FEED_BYTES_TOTAL, load(&self.bytes_total));
        e.counter(&m::FEED_HEARTBEATS_TOTAL, load(&self.heartbeats_total));
        e.counter(&m::FEED_SEND_ERRORS_TOTAL, load(&self.send_errors_total));
        e.counter(&m::FEED_JOURNAL_ERRORS_TOTAL, load(&self.journal_errors_total));
        e.gauge(&m::FEED_RECORDED_SEQUENCE, load(&self.recorded_sequence) as f64);
        e.gauge(&m::FEED_SENT_SEQUENCE, load(&self.sent_sequence) as f64);
        e.counter(&m::FEED_REQUESTS_SERVED_TOTAL, load(&self.requests_served_total));
        e.counter(&m::FEED_RETRANSMITTED_MESSAGES_TOTAL, load(&self.retransmitted_messages_total));
        e.counters(
            &m::FEED_REQUESTS_REFUSED_TOTAL,
            [
                ("malformed", load(&self.requests_malformed_total)),
                ("wrong_session", load(&self.requests_wrong_session_total)),
                ("out_of_range", load(&self.requests_out_of_range_total)),
                ("rate_limited", load(&self.requests_rate_limited_total)),
            ],
        );
        e.counters(
            &m::FEED_SNAPSHOT_SESSIONS_TOTAL,
            [("sent", load(&self.snapshot_sessions_total)), ("failed", load(&self.snapshot_failed_total))],
        );
    }
}
