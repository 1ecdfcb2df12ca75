//! One session's orders awaiting their first answer, shared by the sender (which registers
//! each order before its bytes leave) and the receiver (which matches each answer to it). The
//! answers also keep the session's view of its resting orders, from which the flow draws.

use super::result::ResponseCounts;
use crate::load::flow::{Book, Order, Resting};
use petrel_proto::ouch::{self, Outbound};
use std::collections::{HashMap, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    New,
    Replace,
    Cancel,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: Kind,
    intended_ns: u64,
}

pub(super) struct InFlight {
    book: Book,
    track_resting: bool,
    /// Orders awaiting their first answer, by the UserRefNum the answer carries. Several
    /// reductions of one order (LOBSTER) can be in flight at once; their answers come in order.
    pending: HashMap<u32, VecDeque<Pending>>,
    pending_len: usize,
    pending_max: usize,
    counts: ResponseCounts,
}

impl InFlight {
    pub(super) fn new(book: Book, track_resting: bool, pending_max: usize) -> InFlight {
        InFlight {
            book,
            track_resting,
            pending: HashMap::with_capacity(pending_max),
            pending_len: 0,
            pending_max,
            counts: ResponseCounts::default(),
        }
    }

    pub(super) fn book_mut(&mut self) -> &mut Book {
        &mut self.book
    }

    /// Orders awaiting their first answer.
    pub(super) fn len(&self) -> usize {
        self.pending_len
    }

    /// True when no more orders may be registered: the target is too far behind.
    pub(super) fn is_full(&self) -> bool {
        self.pending_len >= self.pending_max
    }

    pub(super) fn counts(&self) -> &ResponseCounts {
        &self.counts
    }

    /// Records `order`, intended to leave at `intended_ns`, as awaiting its first answer.
    pub(super) fn register(&mut self, order: &Order, intended_ns: u64) {
        debug_assert!(!self.is_full(), "the sender checks is_full first");
        let (key, kind) = match *order {
            Order::Enter { user_ref, .. } => (user_ref, Kind::New),
            Order::Replace { user_ref, .. } => (user_ref, Kind::Replace),
            Order::Cancel { user_ref, .. } => (user_ref, Kind::Cancel),
        };
        self.pending.entry(key).or_default().push_back(Pending { kind, intended_ns });
        self.pending_len += 1;
    }

    /// Applies one message from the server. When it is the first answer to an order in flight,
    /// returns that order's intended send time; a first answer naming no order in flight is
    /// counted as unmatched.
    pub(super) fn answer(&mut self, message: &Outbound<'_>) -> Option<u64> {
        let answered = match *message {
            Outbound::OrderAccepted(a) => {
                let p = self.take(a.user_ref_num, &[Kind::New]);
                if p.is_some() {
                    self.counts.accepted += 1;
                    if a.time_in_force != ouch::TimeInForce::ImmediateOrCancel {
                        self.rest(a.user_ref_num, a.side, a.price, a.quantity);
                    }
                }
                Some(p)
            }
            Outbound::OrderReplaced(r) => {
                let p = self.take(r.user_ref_num, &[Kind::Replace]);
                if p.is_some() {
                    self.counts.replaced += 1;
                    self.rest(r.user_ref_num, r.side, r.price, r.quantity);
                }
                Some(p)
            }
            Outbound::OrderRejected(r) => {
                let p = self.take(r.user_ref_num, &[Kind::New, Kind::Replace]);
                match p.map(|p| p.kind) {
                    Some(Kind::New) => self.counts.rejected_new += 1,
                    Some(_) => self.counts.rejected_replace += 1,
                    None => {}
                }
                Some(p)
            }
            Outbound::OrderCanceled(c) => match self.take(c.user_ref_num, &[Kind::Cancel]) {
                Some(p) => {
                    self.counts.canceled += 1;
                    Some(Some(p))
                }
                None => {
                    // An IOC remainder or an engine-initiated cancel: the order shrinks or goes.
                    self.book.executed(c.user_ref_num, c.quantity);
                    None
                }
            },
            Outbound::CancelReject { user_ref_num, .. } => {
                let p = self.take(user_ref_num, &[Kind::Cancel]);
                if p.is_some() {
                    self.counts.cancel_rejected += 1;
                }
                Some(p)
            }
            Outbound::OrderExecuted(x) => {
                self.counts.executions += 1;
                self.book.executed(x.user_ref_num, x.quantity);
                None
            }
            _ => None,
        };
        match answered {
            Some(Some(p)) => Some(p.intended_ns),
            Some(None) => {
                self.counts.unmatched += 1;
                None
            }
            None => None,
        }
    }

    /// Removes the oldest order in flight under `user_ref` when it is of one of `kinds`.
    fn take(&mut self, user_ref: u32, kinds: &[Kind]) -> Option<Pending> {
        let queue = self.pending.get_mut(&user_ref)?;
        let front = *queue.front()?;
        if !kinds.contains(&front.kind) {
            return None;
        }
        queue.pop_front();
        if queue.is_empty() {
            self.pending.remove(&user_ref);
        }
        self.pending_len -= 1;
        Some(front)
    }

    /// Notes an order now resting on the book, when the mix draws on resting orders.
    fn rest(&mut self, user_ref: u32, side: ouch::Side, price: ouch::Price, qty: u32) {
        if self.track_resting {
            self.book.insert(Resting { user_ref, buy: side == ouch::Side::Buy, price: price.0, qty });
        }
    }
}
