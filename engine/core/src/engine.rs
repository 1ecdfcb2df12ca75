//! The matching engine: a single-threaded, deterministic state machine.
//!
//! `apply(command, sequence, timestamp_ns, sink)` is the whole interface for changing state.
//! Nothing in here reads a clock, spawns a thread, does I/O or draws a random number, and nothing
//! allocates after `Engine::new`: orders live in a fixed arena, price levels in arrays spanning
//! each instrument's price band, and the (account, client reference) index in a fixed table.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::command::{Cancel, Command, CommandKind, NewOrder, Replace};
use crate::config::{validate_limits, AccountConfig, ConfigError, EngineConfig, RiskLimits};
use crate::event::{
    Accepted, BookChange, CancelReason, Cancelled, Event, EventSink, Executed, Fill, RejectReason, Rejected,
    Replaced,
};
use crate::index::{key, OrderIndex};
use crate::levelset::LevelSet;
use crate::types::{
    AccountId, ClientRef, InstrumentId, MatchId, OrderId, OrderType, Price, Qty, Side, StpMode, Symbol,
    TimeInForce,
};

pub(crate) const NIL: u32 = u32::MAX;

/// A resting order. Kept small (48 bytes) because the matcher walks these.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    pub(crate) order_id: u64,
    pub(crate) price: Price,
    pub(crate) qty: Qty,
    pub(crate) client_ref: u32,
    pub(crate) account: u32,
    /// Neighbours in the price level's FIFO queue (arena slots, NIL at the ends). For a free
    /// slot, `next` links the free list.
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// Neighbours in the account's list of open orders, kept in order-id order.
    pub(crate) account_prev: u32,
    pub(crate) account_next: u32,
    pub(crate) instrument: u16,
    pub(crate) side: Side,
}

impl Order {
    const FREE: Order = Order {
        order_id: 0,
        price: 0,
        qty: 0,
        client_ref: 0,
        account: 0,
        prev: NIL,
        next: NIL,
        account_prev: NIL,
        account_next: NIL,
        instrument: 0,
        side: Side::Buy,
    };
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) qty_total: u64,
    pub(crate) order_count: u32,
}

impl Level {
    const EMPTY: Level = Level { head: NIL, tail: NIL, qty_total: 0, order_count: 0 };
}

/// One side of one instrument's book: a level per tick of the price band.
#[derive(Clone, Debug)]
pub(crate) struct HalfBook {
    pub(crate) levels: Vec<Level>,
    pub(crate) occupied: LevelSet,
    /// Index of the best level, NIL when the side is empty.
    pub(crate) best: u32,
}

impl HalfBook {
    fn new(level_count: u32) -> HalfBook {
        HalfBook {
            levels: vec![Level::EMPTY; level_count as usize],
            occupied: LevelSet::new(level_count),
            best: NIL,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Book {
    pub(crate) symbol: Symbol,
    pub(crate) tick_size: Price,
    pub(crate) lot_size: Qty,
    pub(crate) band_min: Price,
    pub(crate) band_max: Price,
    pub(crate) bids: HalfBook,
    pub(crate) asks: HalfBook,
    /// Last trade price, or the configured reference before the first trade.
    pub(crate) reference_price: Option<Price>,
}

impl Book {
    #[inline]
    pub(crate) fn level_index(&self, price: Price) -> u32 {
        ((price - self.band_min) / self.tick_size) as u32
    }

    #[inline]
    pub(crate) fn level_price(&self, index: u32) -> Price {
        self.band_min + index as Price * self.tick_size
    }

    #[inline]
    pub(crate) fn half(&self, side: Side) -> &HalfBook {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    pub(crate) fn half_mut(&mut self, side: Side) -> &mut HalfBook {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The best price on `side`, if any.
    #[inline]
    pub(crate) fn best_price(&self, side: Side) -> Option<Price> {
        let best = self.half(side).best;
        (best != NIL).then(|| self.level_price(best))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) net_qty: i64,
    pub(crate) open_buy_qty: u64,
    pub(crate) open_sell_qty: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct AccountState {
    pub(crate) firm: u32,
    pub(crate) stp: StpMode,
    pub(crate) limits: RiskLimits,
    pub(crate) blocked: bool,
    pub(crate) open_orders: u32,
    /// Highest client reference accepted so far; new ones must exceed it.
    pub(crate) last_client_ref: Option<u32>,
    pub(crate) rate_window_start_ns: u64,
    pub(crate) rate_window_count: u32,
    /// The account's open orders in order-id order (arena slots).
    pub(crate) orders_head: u32,
    pub(crate) orders_tail: u32,
}

impl AccountState {
    fn new(config: &AccountConfig) -> AccountState {
        AccountState {
            firm: config.firm,
            stp: config.stp,
            limits: config.limits,
            blocked: false,
            open_orders: 0,
            last_client_ref: None,
            rate_window_start_ns: 0,
            rate_window_count: 0,
            orders_head: NIL,
            orders_tail: NIL,
        }
    }

    /// Whether the rate limit admits one more order at `timestamp_ns`. Fixed windows in
    /// sequenced time: a window opens at the first order past the previous one's end.
    fn rate_admits(&self, timestamp_ns: u64) -> bool {
        let limit = self.limits.max_orders_per_window;
        limit == 0 || self.window_expired(timestamp_ns) || self.rate_window_count < limit
    }

    fn window_expired(&self, timestamp_ns: u64) -> bool {
        timestamp_ns.saturating_sub(self.rate_window_start_ns) >= self.limits.rate_window_ns
    }

    fn count_order(&mut self, timestamp_ns: u64) {
        if self.window_expired(timestamp_ns) {
            self.rate_window_start_ns = timestamp_ns;
            self.rate_window_count = 0;
        }
        self.rate_window_count += 1;
    }
}

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

/// The incoming order while it matches.
struct Taker {
    account: u32,
    client_ref: u32,
    order_id: u64,
    instrument: u16,
    side: Side,
    /// Worst price it may execute at.
    limit_price: Price,
    qty: Qty,
    firm: u32,
    stp: StpMode,
}

pub struct Engine {
    pub(crate) books: Vec<Book>,
    pub(crate) accounts: Vec<AccountState>,
    /// accounts × instruments, row-major by account.
    pub(crate) positions: Vec<Position>,
    pub(crate) orders: Vec<Order>,
    pub(crate) free_head: u32,
    pub(crate) free_count: u32,
    pub(crate) index: OrderIndex,
    pub(crate) next_order_id: u64,
    pub(crate) next_match_id: u64,
    pub(crate) last_sequence: u64,
    pub(crate) last_timestamp_ns: u64,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("instruments", &self.books.len())
            .field("accounts", &self.accounts.len())
            .field("open_orders", &self.index.len())
            .field("last_sequence", &self.last_sequence)
            .finish()
    }
}

impl Engine {
    /// Builds an empty engine, allocating every table it will ever use.
    pub fn new(config: &EngineConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
        let books = config
            .instruments
            .iter()
            .map(|inst| {
                let levels = inst.level_count() as u32;
                Book {
                    symbol: inst.symbol,
                    tick_size: inst.tick_size,
                    lot_size: inst.lot_size,
                    band_min: inst.price_band_min,
                    band_max: inst.price_band_max,
                    bids: HalfBook::new(levels),
                    asks: HalfBook::new(levels),
                    reference_price: inst.reference_price,
                }
            })
            .collect();
        let capacity = config.max_orders;
        let mut orders = vec![Order::FREE; capacity as usize];
        // Free list in slot order, so allocation is deterministic from any fresh start.
        for (slot, order) in orders.iter_mut().enumerate() {
            order.next = if slot + 1 < capacity as usize { slot as u32 + 1 } else { NIL };
        }
        Ok(Engine {
            books,
            accounts: config.accounts.iter().map(AccountState::new).collect(),
            positions: vec![Position::default(); config.accounts.len() * config.instruments.len()],
            orders,
            free_head: 0,
            free_count: capacity,
            index: OrderIndex::with_capacity(capacity),
            next_order_id: 1,
            next_match_id: 1,
            last_sequence: 0,
            last_timestamp_ns: 0,
        })
    }

    /// Applies one sequenced command. `sequence` must exceed the last one applied; it and
    /// `timestamp_ns` come from the sequencer, never from a clock read here.
    pub fn apply(&mut self, command: &Command, sequence: u64, timestamp_ns: u64, out: &mut impl EventSink) {
        assert!(
            sequence > self.last_sequence,
            "sequence {sequence} applied after {}: the sequencer must number commands in increasing order",
            self.last_sequence
        );
        self.last_sequence = sequence;
        self.last_timestamp_ns = timestamp_ns;
        match command {
            Command::NewOrder(order) => self.new_order(order, timestamp_ns, out),
            Command::Cancel(cancel) => self.cancel(cancel, out),
            Command::Replace(replace) => self.replace(replace, timestamp_ns, out),
            Command::MassCancel { account, instrument } => self.mass_cancel(
                *account,
                *instrument,
                CancelReason::MassCancel,
                CommandKind::MassCancel,
                out,
            ),
            Command::Disconnect { account } => {
                self.mass_cancel(*account, None, CancelReason::Disconnect, CommandKind::Disconnect, out)
            }
            Command::KillSwitch { account, engage } => self.kill_switch(*account, *engage, out),
            Command::SetRiskLimits { account, limits } => self.set_risk_limits(*account, limits, out),
        }
    }

    // ---- queries -------------------------------------------------------------------------

    pub fn instrument_count(&self) -> usize {
        self.books.len()
    }

    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    pub fn instrument_id(&self, symbol: &Symbol) -> Option<InstrumentId> {
        self.books.iter().position(|b| b.symbol == *symbol).map(|i| InstrumentId(i as u16))
    }

    pub fn symbol(&self, instrument: InstrumentId) -> Option<Symbol> {
        self.books.get(instrument.0 as usize).map(|b| b.symbol)
    }

    /// Best price on a side and the total quantity resting there.
    pub fn best(&self, instrument: InstrumentId, side: Side) -> Option<(Price, u64)> {
        let book = self.books.get(instrument.0 as usize)?;
        let half = book.half(side);
        (half.best != NIL).then(|| (book.level_price(half.best), half.levels[half.best as usize].qty_total))
    }

    pub fn best_bid(&self, instrument: InstrumentId) -> Option<(Price, u64)> {
        self.best(instrument, Side::Buy)
    }

    pub fn best_ask(&self, instrument: InstrumentId) -> Option<(Price, u64)> {
        self.best(instrument, Side::Sell)
    }

    /// Up to `max_levels` levels of one side, best first, as (price, total quantity, orders).
    pub fn depth(&self, instrument: InstrumentId, side: Side, max_levels: usize) -> Vec<(Price, u64, u32)> {
        let mut result = Vec::new();
        let Some(book) = self.books.get(instrument.0 as usize) else { return result };
        let half = book.half(side);
        let mut at = half.best;
        while at != NIL && result.len() < max_levels {
            let level = &half.levels[at as usize];
            result.push((book.level_price(at), level.qty_total, level.order_count));
            at = next_level(half, side, at);
        }
        result
    }

    /// The orders resting at one price, in time priority.
    pub fn level_orders(&self, instrument: InstrumentId, side: Side, price: Price) -> Vec<OrderView> {
        let mut result = Vec::new();
        let Some(book) = self.books.get(instrument.0 as usize) else { return result };
        if price < book.band_min || price > book.band_max || (price - book.band_min) % book.tick_size != 0 {
            return result;
        }
        let mut slot = book.half(side).levels[book.level_index(price) as usize].head;
        while slot != NIL {
            result.push(self.view(slot));
            slot = self.orders[slot as usize].next;
        }
        result
    }

    pub fn order(&self, account: AccountId, client_ref: ClientRef) -> Option<OrderView> {
        self.index.get(key(account.0, client_ref.0)).map(|slot| self.view(slot))
    }

    /// The account's open orders in the order they were entered.
    pub fn open_orders(&self, account: AccountId) -> Vec<OrderView> {
        let mut result = Vec::new();
        let Some(state) = self.accounts.get(account.0 as usize) else { return result };
        let mut slot = state.orders_head;
        while slot != NIL {
            result.push(self.view(slot));
            slot = self.orders[slot as usize].account_next;
        }
        result
    }

    pub fn open_order_count(&self) -> usize {
        self.index.len()
    }

    /// Net position (bought minus sold) of an account in an instrument.
    pub fn position(&self, account: AccountId, instrument: InstrumentId) -> i64 {
        if account.0 as usize >= self.accounts.len() || instrument.0 as usize >= self.books.len() {
            return 0;
        }
        self.positions[self.position_index(account.0, instrument.0)].net_qty
    }

    pub fn reference_price(&self, instrument: InstrumentId) -> Option<Price> {
        self.books.get(instrument.0 as usize).and_then(|b| b.reference_price)
    }

    pub fn is_blocked(&self, account: AccountId) -> bool {
        self.accounts.get(account.0 as usize).is_some_and(|a| a.blocked)
    }

    pub fn risk_limits(&self, account: AccountId) -> Option<RiskLimits> {
        self.accounts.get(account.0 as usize).map(|a| a.limits)
    }

    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    pub fn last_timestamp_ns(&self) -> u64 {
        self.last_timestamp_ns
    }

    fn view(&self, slot: u32) -> OrderView {
        let o = &self.orders[slot as usize];
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

    #[inline]
    fn position_index(&self, account: u32, instrument: u16) -> usize {
        account as usize * self.books.len() + instrument as usize
    }

    // ---- new orders ----------------------------------------------------------------------

    fn new_order(&mut self, o: &NewOrder, timestamp_ns: u64, out: &mut impl EventSink) {
        let limit_price = match self.check_new_order(o, timestamp_ns) {
            Ok(price) => price,
            Err(reason) => return reject(out, o.account, o.client_ref, CommandKind::NewOrder, reason),
        };
        let account = &mut self.accounts[o.account.0 as usize];
        account.count_order(timestamp_ns);
        account.last_client_ref = Some(o.client_ref.0);
        let (firm, stp) = (account.firm, account.stp);
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        out.emit(Event::Accepted(Accepted {
            account: o.account,
            client_ref: o.client_ref,
            order_id: OrderId(order_id),
            instrument: o.instrument,
            side: o.side,
            order_type: o.order_type,
            tif: o.tif,
            price: limit_price,
            qty: o.qty,
        }));
        let mut taker = Taker {
            account: o.account.0,
            client_ref: o.client_ref.0,
            order_id,
            instrument: o.instrument.0,
            side: o.side,
            limit_price,
            qty: o.qty,
            firm,
            stp,
        };
        let required = if o.tif == TimeInForce::Fok { o.qty } else { o.min_qty };
        if required > 0 && self.fillable_qty(&taker, required) < required {
            self.emit_taker_cancel(&taker, o.qty, CancelReason::FillOrKill, out);
            return;
        }
        self.match_taker(&mut taker, out);
        if taker.qty == 0 {
            return;
        }
        if o.order_type == OrderType::Limit && o.tif == TimeInForce::Day {
            self.rest(&taker, out);
        } else {
            let qty = taker.qty;
            taker.qty = 0;
            self.emit_taker_cancel(&taker, qty, CancelReason::ImmediateOrCancel, out);
        }
    }

    /// All checks of a new order, in a fixed order; returns the price it may execute to.
    /// Changes nothing: a rejected command leaves no trace in the state.
    fn check_new_order(&self, o: &NewOrder, timestamp_ns: u64) -> Result<Price, RejectReason> {
        let account = self.accounts.get(o.account.0 as usize).ok_or(RejectReason::UnknownAccount)?;
        let book = self.books.get(o.instrument.0 as usize).ok_or(RejectReason::UnknownInstrument)?;
        if account.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        if account.last_client_ref.is_some_and(|last| o.client_ref.0 <= last) {
            return Err(RejectReason::DuplicateClientRef);
        }
        if o.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if o.qty % book.lot_size != 0 {
            return Err(RejectReason::QuantityNotOnLot);
        }
        let market = o.order_type == OrderType::Market;
        if o.min_qty > o.qty || (o.post_only && (market || o.tif != TimeInForce::Day)) {
            return Err(RejectReason::InvalidOrder);
        }
        let limits = &account.limits;
        let limit_price = if market {
            market_limit_price(book, o.side, limits.price_collar_bps)?
        } else {
            check_limit_price(book, o.side, o.price, limits.price_collar_bps)?;
            o.price
        };
        check_size(limits, limit_price, o.qty)?;
        if !market && o.tif == TimeInForce::Day && account.open_orders >= limits.max_open_orders {
            return Err(RejectReason::MaxOpenOrders);
        }
        let position = &self.positions[self.position_index(o.account.0, o.instrument.0)];
        check_position(limits, position, o.side, o.qty, 0)?;
        if !account.rate_admits(timestamp_ns) {
            return Err(RejectReason::RateLimit);
        }
        if self.free_count == 0 {
            return Err(RejectReason::CapacityExhausted);
        }
        if o.post_only && crosses(book, o.side, limit_price) {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        Ok(limit_price)
    }

    /// How much of `required` the taker would execute on entry, walking the book in matching
    /// order and stopping at the first order it may not trade with (self-trade prevention
    /// would stop or divert the match there). Read-only.
    fn fillable_qty(&self, taker: &Taker, required: Qty) -> Qty {
        let book = &self.books[taker.instrument as usize];
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
                    let maker = &self.orders[slot as usize];
                    if self.accounts[maker.account as usize].firm == taker.firm {
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
            at = next_level(half, opposite, at);
        }
        total.min(required as u64) as Qty
    }

    /// Executes the taker against the opposite side while prices cross, in price-time priority,
    /// applying self-trade prevention. On return `taker.qty` is what is left to rest or cancel
    /// (0 if self-trade prevention cancelled the remainder).
    fn match_taker(&mut self, taker: &mut Taker, out: &mut impl EventSink) {
        let opposite = taker.side.opposite();
        let inst = taker.instrument as usize;
        while taker.qty > 0 {
            let book = &self.books[inst];
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
                let maker = self.orders[slot as usize];
                let next = maker.next;
                if taker.stp != StpMode::None && self.accounts[maker.account as usize].firm == taker.firm {
                    match taker.stp {
                        StpMode::None => unreachable!(),
                        StpMode::CancelNewest => {
                            let qty = taker.qty;
                            taker.qty = 0;
                            self.emit_taker_cancel(taker, qty, CancelReason::SelfTrade, out);
                            return;
                        }
                        StpMode::CancelOldest => {
                            self.reduce_resting(slot, maker.qty, CancelReason::SelfTrade, out);
                        }
                        StpMode::CancelBoth => {
                            self.reduce_resting(slot, maker.qty, CancelReason::SelfTrade, out);
                            let qty = taker.qty;
                            taker.qty = 0;
                            self.emit_taker_cancel(taker, qty, CancelReason::SelfTrade, out);
                            return;
                        }
                        StpMode::DecrementAndCancel => {
                            let qty = maker.qty.min(taker.qty);
                            self.reduce_resting(slot, qty, CancelReason::SelfTrade, out);
                            taker.qty -= qty;
                            self.emit_taker_cancel(taker, qty, CancelReason::SelfTrade, out);
                        }
                    }
                    slot = next;
                    continue;
                }
                let qty = maker.qty.min(taker.qty);
                self.execute(taker, slot, price, qty, out);
                slot = next;
            }
        }
    }

    /// One execution of `qty` at `price` between the taker and the resting order in `slot`.
    fn execute(&mut self, taker: &mut Taker, slot: u32, price: Price, qty: Qty, out: &mut impl EventSink) {
        taker.qty -= qty;
        let match_id = self.next_match_id;
        self.next_match_id += 1;
        let inst = taker.instrument;
        let maker = self.orders[slot as usize];
        let maker_remaining = maker.qty - qty;
        let taker_pos = self.position_index(taker.account, inst);
        let maker_pos = self.position_index(maker.account, inst);
        let signed = qty as i64;
        match taker.side {
            Side::Buy => {
                self.positions[taker_pos].net_qty += signed;
                self.positions[maker_pos].net_qty -= signed;
            }
            Side::Sell => {
                self.positions[taker_pos].net_qty -= signed;
                self.positions[maker_pos].net_qty += signed;
            }
        }
        self.books[inst as usize].reference_price = Some(price);
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
                qty_remaining: maker_remaining,
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
        self.shrink_resting(slot, qty);
    }

    fn emit_taker_cancel(&self, taker: &Taker, qty: Qty, reason: CancelReason, out: &mut impl EventSink) {
        out.emit(Event::Cancelled(Cancelled {
            account: AccountId(taker.account),
            client_ref: ClientRef(taker.client_ref),
            order_id: OrderId(taker.order_id),
            instrument: InstrumentId(taker.instrument),
            side: taker.side,
            qty_cancelled: qty,
            qty_remaining: taker.qty,
            reason,
        }));
    }

    /// Puts what is left of the taker on the book, at the back of its level.
    fn rest(&mut self, taker: &Taker, out: &mut impl EventSink) {
        let slot = self.insert_order(Order {
            order_id: taker.order_id,
            price: taker.limit_price,
            qty: taker.qty,
            client_ref: taker.client_ref,
            account: taker.account,
            instrument: taker.instrument,
            side: taker.side,
            ..Order::FREE
        });
        let o = self.orders[slot as usize];
        out.emit(Event::Book(BookChange::Add {
            instrument: InstrumentId(o.instrument),
            order_id: OrderId(o.order_id),
            side: o.side,
            price: o.price,
            qty: o.qty,
        }));
    }

    // ---- book maintenance ----------------------------------------------------------------

    /// Links a new resting order into its level, the index, its account and the open
    /// quantities. The caller has checked capacity.
    pub(crate) fn insert_order(&mut self, order: Order) -> u32 {
        let slot = self.free_head;
        assert!(slot != NIL, "order arena exhausted: capacity checks must precede inserts");
        self.free_head = self.orders[slot as usize].next;
        self.free_count -= 1;
        let book = &mut self.books[order.instrument as usize];
        let at = book.level_index(order.price);
        let side = order.side;
        let half = book.half_mut(side);
        let level = &mut half.levels[at as usize];
        let prev_tail = level.tail;
        level.tail = slot;
        if prev_tail == NIL {
            level.head = slot;
        }
        level.qty_total += order.qty as u64;
        level.order_count += 1;
        if level.order_count == 1 {
            half.occupied.insert(at);
            if half.best == NIL || better(side, at, half.best) {
                half.best = at;
            }
        }
        let account = &mut self.accounts[order.account as usize];
        let account_prev = account.orders_tail;
        account.orders_tail = slot;
        if account_prev == NIL {
            account.orders_head = slot;
        }
        account.open_orders += 1;
        if prev_tail != NIL {
            self.orders[prev_tail as usize].next = slot;
        }
        if account_prev != NIL {
            self.orders[account_prev as usize].account_next = slot;
        }
        self.orders[slot as usize] =
            Order { prev: prev_tail, next: NIL, account_prev, account_next: NIL, ..order };
        self.index.insert(key(order.account, order.client_ref), slot);
        let pos = self.position_index(order.account, order.instrument);
        match side {
            Side::Buy => self.positions[pos].open_buy_qty += order.qty as u64,
            Side::Sell => self.positions[pos].open_sell_qty += order.qty as u64,
        }
        slot
    }

    /// Takes `qty` off a resting order (executed or cancelled); unlinks it when nothing is left.
    fn shrink_resting(&mut self, slot: u32, qty: Qty) {
        let order = self.orders[slot as usize];
        debug_assert!(qty > 0 && qty <= order.qty);
        let pos = self.position_index(order.account, order.instrument);
        match order.side {
            Side::Buy => self.positions[pos].open_buy_qty -= qty as u64,
            Side::Sell => self.positions[pos].open_sell_qty -= qty as u64,
        }
        let book = &mut self.books[order.instrument as usize];
        let at = book.level_index(order.price);
        let half = book.half_mut(order.side);
        half.levels[at as usize].qty_total -= qty as u64;
        if qty < order.qty {
            self.orders[slot as usize].qty -= qty;
            return;
        }
        // Unlink from the level.
        let level = &mut half.levels[at as usize];
        level.order_count -= 1;
        if order.prev == NIL {
            level.head = order.next;
        }
        if order.next == NIL {
            level.tail = order.prev;
        }
        if level.order_count == 0 {
            debug_assert!(level.qty_total == 0, "empty level holds quantity");
            half.occupied.remove(at);
            if half.best == at {
                half.best = next_level(half, order.side, at);
            }
        }
        if order.prev != NIL {
            self.orders[order.prev as usize].next = order.next;
        }
        if order.next != NIL {
            self.orders[order.next as usize].prev = order.prev;
        }
        // Unlink from the account.
        let account = &mut self.accounts[order.account as usize];
        account.open_orders -= 1;
        if order.account_prev == NIL {
            account.orders_head = order.account_next;
        } else {
            self.orders[order.account_prev as usize].account_next = order.account_next;
        }
        if order.account_next == NIL {
            account.orders_tail = order.account_prev;
        } else {
            self.orders[order.account_next as usize].account_prev = order.account_prev;
        }
        let removed = self.index.remove(key(order.account, order.client_ref));
        debug_assert_eq!(removed, Some(slot));
        self.orders[slot as usize] = Order { next: self.free_head, ..Order::FREE };
        self.free_head = slot;
        self.free_count += 1;
    }

    /// Cancels `qty` of a resting order with its events: `Cancelled`, then `Book(Cancel)` if it
    /// stays on the book or `Book(Delete)` if it leaves.
    fn reduce_resting(&mut self, slot: u32, qty: Qty, reason: CancelReason, out: &mut impl EventSink) {
        let order = self.orders[slot as usize];
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
        self.shrink_resting(slot, qty);
    }

    // ---- cancel, replace, mass cancel ----------------------------------------------------

    fn cancel<S: EventSink>(&mut self, c: &Cancel, out: &mut S) {
        let reject = |out: &mut S, reason| reject(out, c.account, c.client_ref, CommandKind::Cancel, reason);
        if c.account.0 as usize >= self.accounts.len() {
            return reject(out, RejectReason::UnknownAccount);
        }
        let Some(slot) = self.index.get(key(c.account.0, c.client_ref.0)) else {
            return reject(out, RejectReason::UnknownOrder);
        };
        let order = self.orders[slot as usize];
        if c.qty_remaining >= order.qty {
            return reject(out, RejectReason::CancelWouldNotReduce);
        }
        if c.qty_remaining % self.books[order.instrument as usize].lot_size != 0 {
            return reject(out, RejectReason::QuantityNotOnLot);
        }
        self.reduce_resting(slot, order.qty - c.qty_remaining, CancelReason::User, out);
    }

    fn replace(&mut self, r: &Replace, timestamp_ns: u64, out: &mut impl EventSink) {
        let slot = match self.check_replace(r, timestamp_ns) {
            Ok(slot) => slot,
            Err(reason) => return reject(out, r.account, r.new_client_ref, CommandKind::Replace, reason),
        };
        let old = self.orders[slot as usize];
        let account = &mut self.accounts[r.account.0 as usize];
        account.count_order(timestamp_ns);
        account.last_client_ref = Some(r.new_client_ref.0);
        let (firm, stp) = (account.firm, account.stp);
        let instrument = InstrumentId(old.instrument);
        if r.price == old.price && r.qty <= old.qty {
            // Same price, no growth: the order keeps its place in the queue and its order id.
            let reduced_by = old.qty - r.qty;
            if reduced_by > 0 {
                self.shrink_resting(slot, reduced_by);
            }
            self.index.remove(key(old.account, old.client_ref));
            self.index.insert(key(old.account, r.new_client_ref.0), slot);
            self.orders[slot as usize].client_ref = r.new_client_ref.0;
            out.emit(Event::Replaced(Replaced {
                account: r.account,
                old_client_ref: ClientRef(old.client_ref),
                new_client_ref: r.new_client_ref,
                old_order_id: OrderId(old.order_id),
                new_order_id: OrderId(old.order_id),
                instrument,
                side: old.side,
                price: r.price,
                qty: r.qty,
                priority_kept: true,
            }));
            if reduced_by > 0 {
                out.emit(Event::Book(BookChange::Cancel {
                    instrument,
                    order_id: OrderId(old.order_id),
                    qty: reduced_by,
                }));
            }
            return;
        }
        // Otherwise the old order leaves and a new one enters at the back, matching first if it
        // crosses.
        self.shrink_resting(slot, old.qty);
        let new_order_id = self.next_order_id;
        self.next_order_id += 1;
        out.emit(Event::Replaced(Replaced {
            account: r.account,
            old_client_ref: ClientRef(old.client_ref),
            new_client_ref: r.new_client_ref,
            old_order_id: OrderId(old.order_id),
            new_order_id: OrderId(new_order_id),
            instrument,
            side: old.side,
            price: r.price,
            qty: r.qty,
            priority_kept: false,
        }));
        let mut taker = Taker {
            account: r.account.0,
            client_ref: r.new_client_ref.0,
            order_id: new_order_id,
            instrument: old.instrument,
            side: old.side,
            limit_price: r.price,
            qty: r.qty,
            firm,
            stp,
        };
        if !crosses(&self.books[old.instrument as usize], old.side, r.price) {
            self.insert_order(Order {
                order_id: new_order_id,
                price: r.price,
                qty: r.qty,
                client_ref: r.new_client_ref.0,
                account: r.account.0,
                instrument: old.instrument,
                side: old.side,
                ..Order::FREE
            });
            out.emit(Event::Book(BookChange::Replace {
                instrument,
                old_order_id: OrderId(old.order_id),
                new_order_id: OrderId(new_order_id),
                price: r.price,
                qty: r.qty,
            }));
            return;
        }
        out.emit(Event::Book(BookChange::Delete { instrument, order_id: OrderId(old.order_id) }));
        self.match_taker(&mut taker, out);
        if taker.qty > 0 {
            self.rest(&taker, out);
        }
    }

    fn check_replace(&self, r: &Replace, timestamp_ns: u64) -> Result<u32, RejectReason> {
        let account = self.accounts.get(r.account.0 as usize).ok_or(RejectReason::UnknownAccount)?;
        if account.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        let slot = self.index.get(key(r.account.0, r.client_ref.0)).ok_or(RejectReason::UnknownOrder)?;
        if account.last_client_ref.is_some_and(|last| r.new_client_ref.0 <= last) {
            return Err(RejectReason::DuplicateClientRef);
        }
        let old = &self.orders[slot as usize];
        let book = &self.books[old.instrument as usize];
        if r.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if r.qty % book.lot_size != 0 {
            return Err(RejectReason::QuantityNotOnLot);
        }
        let limits = &account.limits;
        check_limit_price(book, old.side, r.price, limits.price_collar_bps)?;
        check_size(limits, r.price, r.qty)?;
        let position = &self.positions[self.position_index(r.account.0, old.instrument)];
        check_position(limits, position, old.side, r.qty, old.qty)?;
        if !account.rate_admits(timestamp_ns) {
            return Err(RejectReason::RateLimit);
        }
        Ok(slot)
    }

    fn mass_cancel(
        &mut self,
        account: AccountId,
        instrument: Option<InstrumentId>,
        reason: CancelReason,
        command: CommandKind,
        out: &mut impl EventSink,
    ) {
        let Some(state) = self.accounts.get(account.0 as usize) else {
            return reject(out, account, ClientRef(0), command, RejectReason::UnknownAccount);
        };
        if instrument.is_some_and(|i| i.0 as usize >= self.books.len()) {
            return reject(out, account, ClientRef(0), command, RejectReason::UnknownInstrument);
        }
        let mut cancelled = 0;
        let mut slot = state.orders_head;
        while slot != NIL {
            let order = self.orders[slot as usize];
            if instrument.is_none_or(|i| i.0 == order.instrument) {
                self.reduce_resting(slot, order.qty, reason, out);
                cancelled += 1;
            }
            slot = order.account_next;
        }
        out.emit(Event::MassCancelled { account, cancelled, reason });
    }

    fn kill_switch(&mut self, account: AccountId, engage: bool, out: &mut impl EventSink) {
        if account.0 as usize >= self.accounts.len() {
            return reject(out, account, ClientRef(0), CommandKind::KillSwitch, RejectReason::UnknownAccount);
        }
        if engage {
            self.mass_cancel(account, None, CancelReason::KillSwitch, CommandKind::KillSwitch, out);
        }
        self.accounts[account.0 as usize].blocked = engage;
        out.emit(Event::KillSwitch { account, engaged: engage });
    }

    fn set_risk_limits(&mut self, account: AccountId, limits: &RiskLimits, out: &mut impl EventSink) {
        let reason = if account.0 as usize >= self.accounts.len() {
            Some(RejectReason::UnknownAccount)
        } else if validate_limits(limits).is_err() {
            Some(RejectReason::InvalidRiskLimits)
        } else {
            None
        };
        if let Some(reason) = reason {
            return reject(out, account, ClientRef(0), CommandKind::SetRiskLimits, reason);
        }
        self.accounts[account.0 as usize].limits = *limits;
        out.emit(Event::RiskLimitsSet { account });
    }
}

fn reject(
    out: &mut impl EventSink,
    account: AccountId,
    client_ref: ClientRef,
    command: CommandKind,
    reason: RejectReason,
) {
    out.emit(Event::Rejected(Rejected { account, client_ref, command, reason }));
}

/// Whether a resting price is acceptable to an incoming order with this limit.
#[inline]
fn price_acceptable(taker_side: Side, resting_price: Price, limit_price: Price) -> bool {
    match taker_side {
        Side::Buy => resting_price <= limit_price,
        Side::Sell => resting_price >= limit_price,
    }
}

/// Whether an order at `price` on `side` would execute against the opposite best on entry.
#[inline]
fn crosses(book: &Book, side: Side, price: Price) -> bool {
    book.best_price(side.opposite()).is_some_and(|best| price_acceptable(side, best, price))
}

/// Whether level `a` is better than level `b` on `side`.
#[inline]
fn better(side: Side, a: u32, b: u32) -> bool {
    match side {
        Side::Buy => a > b,
        Side::Sell => a < b,
    }
}

/// The next worse occupied level after `at` on `side`, or NIL.
#[inline]
fn next_level(half: &HalfBook, side: Side, at: u32) -> u32 {
    let found = match side {
        Side::Buy => at.checked_sub(1).and_then(|i| half.occupied.last_at_or_before(i)),
        Side::Sell => half.occupied.first_at_or_after(at + 1),
    };
    found.unwrap_or(NIL)
}

/// The collar bound on one side of a reference price, rounded inwards to the tick.
fn collar_bound(book: &Book, side: Side, reference: Price, collar_bps: u32) -> Price {
    let offset = (reference as i128 * collar_bps as i128 / 10_000) as Price;
    match side {
        Side::Buy => {
            let bound = reference + offset;
            bound - bound.rem_euclid(book.tick_size)
        }
        Side::Sell => {
            let bound = reference - offset;
            bound + (book.tick_size - bound.rem_euclid(book.tick_size)) % book.tick_size
        }
    }
}

fn check_limit_price(book: &Book, side: Side, price: Price, collar_bps: u32) -> Result<(), RejectReason> {
    if price % book.tick_size != 0 {
        return Err(RejectReason::PriceNotOnTick);
    }
    if price < book.band_min || price > book.band_max {
        return Err(RejectReason::PriceOutOfBand);
    }
    if collar_bps > 0 {
        if let Some(reference) = book.reference_price {
            let bound = collar_bound(book, side, reference, collar_bps);
            if !price_acceptable(side, price, bound) {
                return Err(RejectReason::PriceCollar);
            }
        }
    }
    Ok(())
}

/// The price a market order may execute to: the collar bound around the reference, inside the
/// band, or the band's edge when the account has no collar.
fn market_limit_price(book: &Book, side: Side, collar_bps: u32) -> Result<Price, RejectReason> {
    if collar_bps == 0 {
        return Ok(match side {
            Side::Buy => book.band_max,
            Side::Sell => book.band_min,
        });
    }
    let reference = book.reference_price.ok_or(RejectReason::NoReferencePrice)?;
    let bound = collar_bound(book, side, reference, collar_bps);
    Ok(bound.clamp(book.band_min, book.band_max))
}

fn check_size(limits: &RiskLimits, price: Price, qty: Qty) -> Result<(), RejectReason> {
    if qty > limits.max_order_qty {
        return Err(RejectReason::MaxOrderQty);
    }
    if price as u128 * qty as u128 > limits.max_order_notional as u128 {
        return Err(RejectReason::MaxOrderNotional);
    }
    Ok(())
}

/// Worst-case position check: as if every open order on the same side filled, plus this one
/// (less `replacing_qty`, the open quantity of the order a replace removes).
fn check_position(
    limits: &RiskLimits,
    position: &Position,
    side: Side,
    qty: Qty,
    replacing_qty: Qty,
) -> Result<(), RejectReason> {
    let (open, directional) = match side {
        Side::Buy => (position.open_buy_qty, position.net_qty as i128),
        Side::Sell => (position.open_sell_qty, -(position.net_qty as i128)),
    };
    let worst = directional + open as i128 - replacing_qty as i128 + qty as i128;
    if worst > limits.max_position as i128 {
        return Err(RejectReason::MaxPosition);
    }
    Ok(())
}
