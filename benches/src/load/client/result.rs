//! What a load run measured: the histograms' shape, the answers counted, the run's result.

use hdrhistogram::Histogram;
use std::time::Duration;

/// First answers by kind, and the other messages seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseCounts {
    pub accepted: u64,
    pub replaced: u64,
    pub canceled: u64,
    /// Order Rejected for an Enter Order: never expected from a valid flow.
    pub rejected_new: u64,
    /// Order Rejected for a Replace: the order was filled while the replace was in flight.
    pub rejected_replace: u64,
    /// Cancel Reject: the order was filled (or reduced below the asked size) first.
    pub cancel_rejected: u64,
    /// Order Executed messages (either side); not acknowledgements.
    pub executions: u64,
    /// First-answer messages naming no order in flight: a protocol error of the target.
    pub unmatched: u64,
}

impl ResponseCounts {
    /// Adds another run's counts to these.
    pub fn add(&mut self, o: &ResponseCounts) {
        self.accepted += o.accepted;
        self.replaced += o.replaced;
        self.canceled += o.canceled;
        self.rejected_new += o.rejected_new;
        self.rejected_replace += o.rejected_replace;
        self.cancel_rejected += o.cancel_rejected;
        self.executions += o.executions;
        self.unmatched += o.unmatched;
    }

    /// Orders that got their first answer.
    pub fn acknowledged(&self) -> u64 {
        self.accepted
            + self.replaced
            + self.canceled
            + self.rejected_new
            + self.rejected_replace
            + self.cancel_rejected
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct LoadResult {
    /// Intended send time to first answer, ns, for orders intended after the warm-up.
    pub latency_ns: Histogram<u64>,
    /// How late the sender was against each intended send time, ns (after the warm-up): the
    /// client's own share of `latency_ns`.
    pub send_lag_ns: Histogram<u64>,
    pub sent: u64,
    pub counts: ResponseCounts,
    /// Orders still unanswered when the response timeout ran out after the last send.
    pub lost: u64,
    pub sessions: usize,
    pub rate_per_s: u64,
    pub duration: Duration,
    pub mix: &'static str,
    /// What the feed listener measured, when the run had one (`LoadOptions::feed_listen`).
    pub feed: Option<super::FeedResult>,
}

/// Longest a histogram records: one minute, in ns.
const LATENCY_NS_MAX: u64 = 60_000_000_000;

pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds")
}
