//! Joins each order's OUCH Order Accepted to its Add Order on the market-data feed, by the
//! engine's order id (OUCH's Order Reference Number is the Add Order's), and records the
//! feed's latencies. Either can arrive first: the feed listener sees Add Orders at once and
//! Accepted messages through a ring from the OUCH receiver, so whichever half comes first
//! waits in a slot for the other.
//!
//! The table is direct-mapped by order id and allocated once: order ids are handed out in
//! sequence, so a slot is reused only after `JOIN_SLOTS` more orders, far longer than an Add
//! Order trails its Accepted. A half that never finds its other half (an order filled or
//! cancelled on entry has an Accepted and no Add Order; an order of the warm-up has an Add Order
//! and no recorded Accepted) is simply overwritten.

use super::result::new_histogram;
use hdrhistogram::Histogram;

/// Slots of the join table (a power of two): order ids of about 2.6 s at 50,000 orders/s.
const JOIN_SLOTS: usize = 1 << 17;

/// What the OUCH receiver tells the feed listener about an order that may rest: its Order
/// Accepted, received at `acked_ns` after t0, for an order intended at `intended_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AckNote {
    pub order_ref: u64,
    pub intended_ns: u64,
    pub acked_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Half {
    Empty,
    Acked { order_ref: u64, intended_ns: u64, acked_ns: u64 },
    OnFeed { order_ref: u64, feed_ns: u64 },
}

/// The feed's latencies, ns, over the orders whose Accepted and Add Order were both seen.
#[derive(Clone, Debug)]
pub struct FeedLatency {
    /// Intended send time to the Add Order's packet received.
    pub add_ns: Histogram<u64>,
    /// Add Order received minus Accepted received, when the feed came no earlier.
    pub after_ack_ns: Histogram<u64>,
    /// Accepted received minus Add Order received, when the feed came first.
    pub before_ack_ns: Histogram<u64>,
}

impl FeedLatency {
    pub(super) fn new() -> FeedLatency {
        FeedLatency { add_ns: new_histogram(), after_ack_ns: new_histogram(), before_ack_ns: new_histogram() }
    }

    /// The signed (Add Order received - Accepted received) at quantile `q`, ns: the two
    /// histograms read as one distribution, feed-first (negative) values first, largest lead
    /// first. Zero when nothing was joined.
    pub fn feed_minus_ack_ns_at(&self, q: f64) -> i64 {
        let (before, after) = (self.before_ack_ns.len(), self.after_ack_ns.len());
        let total = before + after;
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        if rank <= before {
            // The rank-th most negative: the (before - rank + 1)-th smallest lead.
            let q_before = (before - rank + 1) as f64 / before as f64;
            -(self.before_ack_ns.value_at_quantile(q_before) as i64)
        } else {
            let q_after = (rank - before) as f64 / after as f64;
            self.after_ack_ns.value_at_quantile(q_after) as i64
        }
    }

    /// Orders joined.
    pub fn joined(&self) -> u64 {
        self.add_ns.len()
    }
}

pub(super) struct FeedJoin {
    slots: Box<[Half]>,
    latency: FeedLatency,
}

impl FeedJoin {
    pub(super) fn new() -> FeedJoin {
        FeedJoin { slots: vec![Half::Empty; JOIN_SLOTS].into_boxed_slice(), latency: FeedLatency::new() }
    }

    fn slot(&mut self, order_ref: u64) -> &mut Half {
        &mut self.slots[order_ref as usize & (JOIN_SLOTS - 1)]
    }

    /// An order's Accepted: joins it to its Add Order if that came first, else waits for it.
    pub(super) fn acked(&mut self, note: AckNote) {
        let slot = self.slot(note.order_ref);
        match *slot {
            Half::OnFeed { order_ref, feed_ns } if order_ref == note.order_ref => {
                *slot = Half::Empty;
                self.record(note.intended_ns, note.acked_ns, feed_ns);
            }
            _ => {
                *slot = Half::Acked {
                    order_ref: note.order_ref,
                    intended_ns: note.intended_ns,
                    acked_ns: note.acked_ns,
                }
            }
        }
    }

    /// An Add Order received at `feed_ns`: joins it to its Accepted if that came first, else
    /// waits for it.
    pub(super) fn added(&mut self, order_ref: u64, feed_ns: u64) {
        let slot = self.slot(order_ref);
        match *slot {
            Half::Acked { order_ref: r, intended_ns, acked_ns } if r == order_ref => {
                *slot = Half::Empty;
                self.record(intended_ns, acked_ns, feed_ns);
            }
            _ => *slot = Half::OnFeed { order_ref, feed_ns },
        }
    }

    fn record(&mut self, intended_ns: u64, acked_ns: u64, feed_ns: u64) {
        let l = &mut self.latency;
        l.add_ns.saturating_record(feed_ns.saturating_sub(intended_ns));
        if feed_ns >= acked_ns {
            l.after_ack_ns.saturating_record(feed_ns - acked_ns);
        } else {
            l.before_ack_ns.saturating_record(acked_ns - feed_ns);
        }
    }

    pub(super) fn into_latency(self) -> FeedLatency {
        self.latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(order_ref: u64, intended_ns: u64, acked_ns: u64) -> AckNote {
        AckNote { order_ref, intended_ns, acked_ns }
    }

    #[test]
    fn either_half_may_come_first_and_each_order_is_recorded_once() {
        let mut join = FeedJoin::new();
        join.acked(note(7, 1_000, 5_000));
        join.added(7, 8_000); // the feed 3 µs after the Accepted
        join.added(9, 20_000); // the feed 2 µs before the Accepted
        join.acked(note(9, 10_000, 22_000));
        join.added(9, 30_000); // a stray second Add Order under a joined id waits, unrecorded
        join.acked(note(11, 0, 1)); // an order filled on entry: no Add Order ever
        let l = join.into_latency();
        assert_eq!(l.joined(), 2);
        assert_eq!((l.after_ack_ns.len(), l.before_ack_ns.len()), (1, 1));
        assert!(l.add_ns.equivalent(l.add_ns.min(), 7_000) && l.add_ns.equivalent(l.add_ns.max(), 10_000));
        assert!(l.after_ack_ns.equivalent(l.after_ack_ns.max(), 3_000));
        assert!(l.before_ack_ns.equivalent(l.before_ack_ns.max(), 2_000));
    }

    #[test]
    fn a_slot_reused_by_a_later_order_drops_the_unjoined_half() {
        let mut join = FeedJoin::new();
        join.acked(note(5, 0, 10));
        join.acked(note(5 + JOIN_SLOTS as u64, 0, 10));
        join.added(5, 20);
        assert_eq!(join.into_latency().joined(), 0);
    }

    #[test]
    fn the_signed_quantiles_read_feed_first_values_as_negative() {
        let mut l = FeedLatency::new();
        assert_eq!(l.feed_minus_ack_ns_at(0.5), 0, "nothing joined");
        // -3000, -1000, +2000, +4000, +6000: the median is +2000, the minimum -3000.
        for v in [3_000, 1_000] {
            l.before_ack_ns.record(v).unwrap();
        }
        for v in [2_000, 4_000, 6_000] {
            l.after_ack_ns.record(v).unwrap();
        }
        let at = |q| l.feed_minus_ack_ns_at(q);
        assert!(l.after_ack_ns.equivalent(at(0.5) as u64, 2_000), "{}", at(0.5));
        assert!(l.before_ack_ns.equivalent((-at(0.0)) as u64, 3_000), "{}", at(0.0));
        assert!(l.before_ack_ns.equivalent((-at(0.4)) as u64, 1_000), "{}", at(0.4));
        assert!(l.after_ack_ns.equivalent(at(1.0) as u64, 6_000), "{}", at(1.0));
        // Mostly feed first: the median is negative.
        for v in [500, 700, 900] {
            l.before_ack_ns.record(v).unwrap();
        }
        assert!(l.feed_minus_ack_ns_at(0.5) < 0, "{}", l.feed_minus_ack_ns_at(0.5));
    }
}
