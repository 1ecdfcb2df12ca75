//! Matching: crossing an incoming order against the opposite side of its book in price-time
//! priority, with self-trade prevention, and the executions that follow.
//!
//! Owns the match-id counter. Reads firms from [`Risk`] (self-trade prevention) and moves net
//! positions through it on each execution; changes resting orders only through [`OrderBooks`].
//! Whether an order may enter at all is decided before it gets here.

use crate::arena::{Order, NIL};
use crate::book::price_acceptable;
use crate::event::{BookChange, CancelReason, Cancelled, Event, EventSink, Executed, Fill};
use crate::order_books::OrderBooks;
use crate::risk::Risk;
use crate::types::{AccountId, ClientRef, InstrumentId, MatchId, OrderId, Price, Qty, Side, StpMode};

/// The incoming order while it matches.
pub(crate) struct Taker {
    pub(crate) account: u32,
    pub(crate) client_ref: u32,
    pub(crate) order_id: u64,
    pub(crate) instrument: u16,
    pub(crate) side: Side,
    /// Worst price it may execute at.
    pub(crate) limit_price: Price,
    pub(crate) qty: Qty,
    pub(crate) firm: u32,
    pub(crate) stp: StpMode,
}

impl Taker {
    /// What is left of the taker as a resting order at its limit price.
    pub(crate) fn resting(&self) -> Order {
        Order {
            order_id: self.order_id,
            price: self.limit_price,
            qty: self.qty,
            client_ref: self.client_ref,
            account: self.account,
            instrument: self.instrument,
            side: self.side,
            ..Order::FREE
        }
    }

    /// Cancels `qty` of the taker (`qty_remaining` is what it still has after that).
    pub(crate) fn emit_cancel(&self, qty: Qty, reason: CancelReason, out: &mut impl EventSink) {
        out.emit(Event::Cancelled(Cancelled {
            account: AccountId(self.account),
            client_ref: ClientRef(self.client_ref),
            order_id: OrderId(self.order_id),
            instrument: InstrumentId(self.instrument),
            side: self.side,
            qty_cancelled: qty,
            qty_remaining: self.qty,
            reason,
        }));
    }

    /// Cancels all that is left of the taker.
    pub(crate) fn cancel_rest(&mut self, reason: CancelReason, out: &mut impl EventSink) {
        let qty = self.qty;
        self.qty = 0;
        self.emit_cancel(qty, reason, out);
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    /// The next execution's match id; ids are never reused.
    pub(crate) next_match_id: u64,
}

impl Matcher {
    pub(crate) fn new() -> Matcher {
        Matcher { next_match_id: 1 }
    }

    /// How much of `required` the taker would execute on entry, walking the book in matching
    /// order and stopping at the first order it may not trade with (self-trade prevention
    /// would stop or divert the match there). Read-only.
    pub(crate) fn fillable_qty(books: &OrderBooks, risk: &Risk, taker: &Taker, required: Qty) -> Qty {
        let book = books.book(taker.instrument);
        let opposite = taker.side.opposite();
        let half = book.half(opposite);
        let mut total: u64 = 0;
        let mut at = half.best;
        while at != NIL && price_acceptable(taker.side, book.level_price(at), taker.limit_price) {
            let level = &half.levels[at as usize];
            if taker.stp == StpMode::None {
                total += level.qty_total;
            } else {
                let mut slot = level.head;
                while slot != NIL {
                    let maker = books.order(slot);
                    if risk.firm(maker.account) == taker.firm {
                        return total.min(required as u64) as Qty;
                    }
                    total += maker.qty as u64;
                    if total >= required as u64 {
                        return required;
                    }
                    slot = maker.next;
                }
            }
            if total >= required as u64 {
                return required;
            }
            at = half.next_level(opposite, at);
        }
        total.min(required as u64) as Qty
    }

    /// Executes the taker against the opposite side while prices cross, in price-time priority,
    /// applying self-trade prevention. On return `taker.qty` is what is left to rest or cancel
    /// (0 if self-trade prevention cancelled the remainder).
    pub(crate) fn match_taker(
        &mut self,
        books: &mut OrderBooks,
        risk: &mut Risk,
        taker: &mut Taker,
        out: &mut impl EventSink,
    ) {
        let opposite = taker.side.opposite();
        while taker.qty > 0 {
            let book = books.book(taker.instrument);
            let at = book.half(opposite).best;
            if at == NIL {
                return;
            }
            let price = book.level_price(at);
            if !price_acceptable(taker.side, price, taker.limit_price) {
                return;
            }
            let mut slot = book.half(opposite).levels[at as usize].head;
            while slot != NIL && taker.qty > 0 {
                let maker = *books.order(slot);
                let next = maker.next;
                if taker.stp != StpMode::None && risk.firm(maker.account) == taker.firm {
                    if prevent_self_trade(books, taker, slot, maker.qty, out) {
                        return;
                    }
                } else {
                    self.execute(books, risk, taker, slot, price, out);
                }
                slot = next;
            }
        }
    }

    /// One execution at `price` between the taker and the resting order in `slot`, of as much
    /// as both have.
    fn execute(
        &mut self,
        books: &mut OrderBooks,
        risk: &mut Risk,
        taker: &mut Taker,
        slot: u32,
        price: Price,
        out: &mut impl EventSink,
    ) {
        let maker = *books.order(slot);
        let qty = maker.qty.min(taker.qty);
        taker.qty -= qty;
        let match_id = self.next_match_id;
        self.next_match_id += 1;
        let inst = taker.instrument;
        risk.on_execution(taker.account, maker.account, inst, taker.side, qty);
        books.book_mut(inst).reference_price = Some(price);
        out.emit(Event::Executed(Executed {
            match_id: MatchId(match_id),
            instrument: InstrumentId(inst),
            price,
            qty,
            aggressor: taker.side,
            maker: Fill {
                account: AccountId(maker.account),
                client_ref: ClientRef(maker.client_ref),
                order_id: OrderId(maker.order_id),
                qty_remaining: maker.qty - qty,
            },
            taker: Fill {
                account: AccountId(taker.account),
                client_ref: ClientRef(taker.client_ref),
                order_id: OrderId(taker.order_id),
                qty_remaining: taker.qty,
            },
        }));
        out.emit(Event::Book(BookChange::Execute {
            instrument: InstrumentId(inst),
            order_id: OrderId(maker.order_id),
            qty,
            price,
            match_id: MatchId(match_id),
        }));
        books.shrink(slot, qty);
    }
}

/// Applies the taker's self-trade prevention mode against the same-firm resting order in
/// `slot` (holding `maker_qty`). Returns whether matching stops there.
fn prevent_self_trade(
    books: &mut OrderBooks,
    taker: &mut Taker,
    slot: u32,
    maker_qty: Qty,
    out: &mut impl EventSink,
) -> bool {
    match taker.stp {
        StpMode::None => unreachable!("self-trade prevention applied with mode None"),
        StpMode::CancelNewest => {
            taker.cancel_rest(CancelReason::SelfTrade, out);
            true
        }
        StpMode::CancelOldest => {
            books.cancel(slot, maker_qty, CancelReason::SelfTrade, out);
            false
        }
        StpMode::CancelBoth => {
            books.cancel(slot, maker_qty, CancelReason::SelfTrade, out);
            taker.cancel_rest(CancelReason::SelfTrade, out);
            true
        }
        StpMode::DecrementAndCancel => {
            let qty = maker_qty.min(taker.qty);
            books.cancel(slot, qty, CancelReason::SelfTrade, out);
            taker.qty -= qty;
            taker.emit_cancel(qty, CancelReason::SelfTrade, out);
            false
        }
    }
}
