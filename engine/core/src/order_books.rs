//! Every resting order, reachable three ways: by price and time in its instrument's [`Book`],
//! by account (a list in order-id order, for mass cancels), and by (account, client reference)
//! in the [`OrderIndex`], for cancels and replaces. Also what rests per account: the count of
//! open orders and the open quantity per instrument and side, which the risk checks read.
//!
//! The methods here are the only code that changes these structures, and they keep them in step.
//! This file knows nothing of risk limits or matching.

use alloc::vec;
use alloc::vec::Vec;

use crate::arena::{Order, OrderArena, NIL};
use crate::book::Book;
use crate::config::EngineConfig;
use crate::event::{BookChange, CancelReason, Cancelled, Event, EventSink};
use crate::index::{key, OrderIndex};
use crate::types::{AccountId, ClientRef, InstrumentId, OrderId, Price, Qty, Side};

/// A read-only view of an open order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub order_id: OrderId,
    pub account: AccountId,
    pub client_ref: ClientRef,
    pub instrument: InstrumentId,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
}

/// One account's open orders: a list through the arena in order-id order, and its length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AccountOrders {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) count: u32,
}

impl AccountOrders {
    const EMPTY: AccountOrders = AccountOrders { head: NIL, tail: NIL, count: 0 };
}

/// Quantity an account has resting in one instrument, per side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OpenQty {
    pub(crate) buy: u64,
    pub(crate) sell: u64,
}

impl OpenQty {
    pub(crate) fn on(&self, side: Side) -> u64 {
        match side {
            Side::Buy => self.buy,
            Side::Sell => self.sell,
        }
    }

    fn on_mut(&mut self, side: Side) -> &mut u64 {
        match side {
            Side::Buy => &mut self.buy,
            Side::Sell => &mut self.sell,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct OrderBooks {
    books: Vec<Book>,
    orders: OrderArena,
    index: OrderIndex,
    accounts: Vec<AccountOrders>,
    /// accounts × instruments, row-major by account.
    open_qty: Vec<OpenQty>,
}

impl OrderBooks {
    /// Allocates every book, the arena and the index. The configuration has been validated.
    pub(crate) fn new(config: &EngineConfig) -> OrderBooks {
        OrderBooks {
            books: config.instruments.iter().map(Book::new).collect(),
            orders: OrderArena::new(config.max_orders),
            index: OrderIndex::with_capacity(config.max_orders),
            accounts: vec![AccountOrders::EMPTY; config.accounts.len()],
            open_qty: vec![OpenQty::default(); config.accounts.len() * config.instruments.len()],
        }
    }

    // ---- reading -------------------------------------------------------------------------

    pub(crate) fn books(&self) -> &[Book] {
        &self.books
    }

    pub(crate) fn book(&self, instrument: u16) -> &Book {
        &self.books[instrument as usize]
    }

    pub(crate) fn book_mut(&mut self, instrument: u16) -> &mut Book {
        &mut self.books[instrument as usize]
    }

    #[inline]
    pub(crate) fn order(&self, slot: u32) -> &Order {
        &self.orders[slot]
    }

    /// The slot of the open order with this client reference.
    #[inline]
    pub(crate) fn find(&self, account: u32, client_ref: u32) -> Option<u32> {
        self.index.get(key(account, client_ref))
    }

    pub(crate) fn capacity(&self) -> usize {
        self.orders.capacity()
    }

    pub(crate) fn free_slots(&self) -> u32 {
        self.orders.free_count()
    }

    pub(crate) fn open_order_count(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn account(&self, account: u32) -> &AccountOrders {
        &self.accounts[account as usize]
    }

    pub(crate) fn open_qty(&self, account: u32, instrument: u16) -> OpenQty {
        self.open_qty[account as usize * self.books.len() + instrument as usize]
    }

    pub(crate) fn view(&self, slot: u32) -> OrderView {
        let o = &self.orders[slot];
        OrderView {
            order_id: OrderId(o.order_id),
            account: AccountId(o.account),
            client_ref: ClientRef(o.client_ref),
            instrument: InstrumentId(o.instrument),
            side: o.side,
            price: o.price,
            qty: o.qty,
        }
    }

    /// Up to `max_levels` levels of one side, best first, as (price, total quantity, orders).
    pub(crate) fn depth(
        &self,
        instrument: InstrumentId,
        side: Side,
        max_levels: usize,
    ) -> Vec<(Price, u64, u32)> {
        let mut result = Vec::new();
        let Some(book) = self.books.get(instrument.0 as usize) else { return result };
        let half = book.half(side);
        let mut at = half.best;
        while at != NIL && result.len() < max_levels {
            let level = &half.levels[at as usize];
            result.push((book.level_price(at), level.qty_total, level.order_count));
            at = half.next_level(side, at);
        }
        result
    }

    /// The orders resting at one price, in time priority.
    pub(crate) fn level_orders(&self, instrument: InstrumentId, side: Side, price: Price) -> Vec<OrderView> {
        let mut result = Vec::new();
        let Some(book) = self.books.get(instrument.0 as usize) else { return result };
        if !book.has_level(price) {
            return result;
        }
        let mut slot = book.half(side).levels[book.level_index(price) as usize].head;
        while slot != NIL {
            result.push(self.view(slot));
            slot = self.orders[slot].next;
        }
        result
    }

    /// The account's open orders in the order they were entered.
    pub(crate) fn account_orders(&self, account: AccountId) -> Vec<OrderView> {
        let mut result = Vec::new();
        let Some(list) = self.accounts.get(account.0 as usize) else { return result };
        let mut slot = list.head;
        while slot != NIL {
            result.push(self.view(slot));
            slot = self.orders[slot].account_next;
        }
        result
    }

    // ---- changing ------------------------------------------------------------------------

    /// Rests a new order: links it into its level, the index, its account's list and the open
    /// quantities, and returns its slot. The caller has checked capacity.
    pub(crate) fn insert(&mut self, order: Order) -> u32 {
        let slot = self.orders.take(order);
        self.books[order.instrument as usize].push_back(&mut self.orders, slot, &order);
        self.append_to_account(slot, order.account);
        self.accounts[order.account as usize].count += 1;
        self.index.insert(key(order.account, order.client_ref), slot);
        let at = order.account as usize * self.books.len() + order.instrument as usize;
        *self.open_qty[at].on_mut(order.side) += order.qty as u64;
        slot
    }

    /// Rests a new order and publishes it (`Book(Add)`).
    pub(crate) fn add(&mut self, order: Order, out: &mut impl EventSink) {
        self.insert(order);
        out.emit(Event::Book(BookChange::Add {
            instrument: InstrumentId(order.instrument),
            order_id: OrderId(order.order_id),
            side: order.side,
            price: order.price,
            qty: order.qty,
        }));
    }

    /// Takes `qty` off a resting order (executed or cancelled); unlinks it when nothing is left.
    pub(crate) fn shrink(&mut self, slot: u32, qty: Qty) {
        let order = self.orders[slot];
        debug_assert!(qty > 0 && qty <= order.qty);
        let at = order.account as usize * self.books.len() + order.instrument as usize;
        *self.open_qty[at].on_mut(order.side) -= qty as u64;
        let book = &mut self.books[order.instrument as usize];
        book.reduce_level(&self.orders, slot, qty);
        if qty < order.qty {
            self.orders[slot].qty -= qty;
            return;
        }
        book.unlink(&mut self.orders, slot);
        self.unlink_from_account(slot);
        let removed = self.index.remove(key(order.account, order.client_ref));
        debug_assert_eq!(removed, Some(slot));
        self.orders.give_back(slot);
    }

    /// Cancels `qty` of a resting order with its events: `Cancelled`, then `Book(Cancel)` if it
    /// stays on the book or `Book(Delete)` if it leaves.
    pub(crate) fn cancel(&mut self, slot: u32, qty: Qty, reason: CancelReason, out: &mut impl EventSink) {
        let order = self.orders[slot];
        let remaining = order.qty - qty;
        out.emit(Event::Cancelled(Cancelled {
            account: AccountId(order.account),
            client_ref: ClientRef(order.client_ref),
            order_id: OrderId(order.order_id),
            instrument: InstrumentId(order.instrument),
            side: order.side,
            qty_cancelled: qty,
            qty_remaining: remaining,
            reason,
        }));
        let instrument = InstrumentId(order.instrument);
        let order_id = OrderId(order.order_id);
        out.emit(Event::Book(if remaining == 0 {
            BookChange::Delete { instrument, order_id }
        } else {
            BookChange::Cancel { instrument, order_id, qty }
        }));
        self.shrink(slot, qty);
    }

    /// Cancels every open order of `account`, in `instrument` or in all, oldest first; returns
    /// how many it cancelled.
    pub(crate) fn cancel_all(
        &mut self,
        account: u32,
        instrument: Option<InstrumentId>,
        reason: CancelReason,
        out: &mut impl EventSink,
    ) -> u32 {
        let mut cancelled = 0;
        let mut slot = self.accounts[account as usize].head;
        while slot != NIL {
            let order = self.orders[slot];
            if instrument.is_none_or(|i| i.0 == order.instrument) {
                self.cancel(slot, order.qty, reason, out);
                cancelled += 1;
            }
            slot = order.account_next;
        }
        cancelled
    }

    /// Gives a resting order a new client reference; it keeps its slot and its place.
    pub(crate) fn rekey(&mut self, slot: u32, new_client_ref: u32) {
        let order = self.orders[slot];
        self.index.remove(key(order.account, order.client_ref));
        self.index.insert(key(order.account, new_client_ref), slot);
        self.orders[slot].client_ref = new_client_ref;
    }

    /// Rebuilds every account's list in the order of `slots` (all open orders, by order id):
    /// restoring a snapshot inserts orders level by level, not in the order they were entered.
    pub(crate) fn relink_accounts(&mut self, slots: impl Iterator<Item = u32>) {
        for list in self.accounts.iter_mut() {
            list.head = NIL;
            list.tail = NIL;
        }
        for slot in slots {
            self.append_to_account(slot, self.orders[slot].account);
        }
    }

    fn append_to_account(&mut self, slot: u32, account: u32) {
        let list = &mut self.accounts[account as usize];
        let tail = list.tail;
        list.tail = slot;
        if tail == NIL {
            list.head = slot;
        } else {
            self.orders[tail].account_next = slot;
        }
        self.orders[slot].account_prev = tail;
        self.orders[slot].account_next = NIL;
    }

    fn unlink_from_account(&mut self, slot: u32) {
        let order = self.orders[slot];
        let list = &mut self.accounts[order.account as usize];
        list.count -= 1;
        if order.account_prev == NIL {
            list.head = order.account_next;
        } else {
            self.orders[order.account_prev].account_next = order.account_next;
        }
        if order.account_next == NIL {
            list.tail = order.account_prev;
        } else {
            self.orders[order.account_next].account_prev = order.account_prev;
        }
    }
}
