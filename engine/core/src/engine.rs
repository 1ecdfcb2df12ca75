//! The matching engine: a single-threaded, deterministic state machine.
//!
//! `apply(command, sequence, timestamp_ns, sink)` is the whole interface for changing state.
//! Each command takes the same path: the pre-trade checks in [`Risk`] (which only read), then
//! the change to the books ([`OrderBooks`]) and matching ([`Matcher`]), writing events as it
//! goes. This file wires those parts together and owns the counters of the command stream; the
//! state lives in the parts. Nothing in here reads a clock, spawns a thread, does I/O or draws a
//! random number, and nothing allocates after `Engine::new`.

use alloc::vec::Vec;
use core::fmt;

use crate::arena::Order;
use crate::command::{Cancel, Command, CommandKind, NewOrder, Replace};
use crate::config::{ConfigError, EngineConfig, RiskLimits};
use crate::event::{Accepted, BookChange, CancelReason, Event, EventSink, RejectReason, Rejected, Replaced};
use crate::matching::{Matcher, Taker};
use crate::order_books::{OrderBooks, OrderView};
use crate::risk::Risk;
use crate::types::{
    AccountId, ClientRef, InstrumentId, OrderId, OrderType, Price, Side, StpMode, Symbol, TimeInForce,
};

pub struct Engine {
    pub(crate) books: OrderBooks,
    pub(crate) risk: Risk,
    pub(crate) matcher: Matcher,
    pub(crate) next_order_id: u64,
    pub(crate) last_sequence: u64,
    pub(crate) last_timestamp_ns: u64,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("instruments", &self.books.books().len())
            .field("accounts", &self.risk.account_count())
            .field("open_orders", &self.books.open_order_count())
            .field("last_sequence", &self.last_sequence)
            .finish()
    }
}

impl Engine {
    /// Builds an empty engine, allocating every table it will ever use.
    pub fn new(config: &EngineConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine {
            books: OrderBooks::new(config),
            risk: Risk::new(config),
            matcher: Matcher::new(),
            next_order_id: 1,
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
            Command::Note { account, note } => out.emit(Event::Noted { account: *account, note: *note }),
        }
    }

    // ---- queries -------------------------------------------------------------------------

    pub fn instrument_count(&self) -> usize {
        self.books.books().len()
    }

    pub fn account_count(&self) -> usize {
        self.risk.account_count()
    }

    pub fn instrument_id(&self, symbol: &Symbol) -> Option<InstrumentId> {
        self.books.books().iter().position(|b| b.symbol == *symbol).map(|i| InstrumentId(i as u16))
    }

    pub fn symbol(&self, instrument: InstrumentId) -> Option<Symbol> {
        self.books.books().get(instrument.0 as usize).map(|b| b.symbol)
    }

    /// Best price on a side and the total quantity resting there.
    pub fn best(&self, instrument: InstrumentId, side: Side) -> Option<(Price, u64)> {
        self.books.books().get(instrument.0 as usize)?.best_level(side)
    }

    pub fn best_bid(&self, instrument: InstrumentId) -> Option<(Price, u64)> {
        self.best(instrument, Side::Buy)
    }

    pub fn best_ask(&self, instrument: InstrumentId) -> Option<(Price, u64)> {
        self.best(instrument, Side::Sell)
    }

    /// Up to `max_levels` levels of one side, best first, as (price, total quantity, orders).
    pub fn depth(&self, instrument: InstrumentId, side: Side, max_levels: usize) -> Vec<(Price, u64, u32)> {
        self.books.depth(instrument, side, max_levels)
    }

    /// The orders resting at one price, in time priority.
    pub fn level_orders(&self, instrument: InstrumentId, side: Side, price: Price) -> Vec<OrderView> {
        self.books.level_orders(instrument, side, price)
    }

    pub fn order(&self, account: AccountId, client_ref: ClientRef) -> Option<OrderView> {
        self.books.find(account.0, client_ref.0).map(|slot| self.books.view(slot))
    }

    /// The account's open orders in the order they were entered.
    pub fn open_orders(&self, account: AccountId) -> Vec<OrderView> {
        self.books.account_orders(account)
    }

    pub fn open_order_count(&self) -> usize {
        self.books.open_order_count()
    }

    /// Net position (bought minus sold) of an account in an instrument.
    pub fn position(&self, account: AccountId, instrument: InstrumentId) -> i64 {
        if account.0 as usize >= self.risk.account_count() || instrument.0 as usize >= self.instrument_count()
        {
            return 0;
        }
        self.risk.net_qty(account.0, instrument.0)
    }

    pub fn reference_price(&self, instrument: InstrumentId) -> Option<Price> {
        self.books.books().get(instrument.0 as usize).and_then(|b| b.reference_price)
    }

    pub fn is_blocked(&self, account: AccountId) -> bool {
        self.risk.account(account.0).is_some_and(|a| a.blocked)
    }

    pub fn risk_limits(&self, account: AccountId) -> Option<RiskLimits> {
        self.risk.account(account.0).map(|a| a.limits)
    }

    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    pub fn last_timestamp_ns(&self) -> u64 {
        self.last_timestamp_ns
    }

    // ---- new orders ----------------------------------------------------------------------

    fn new_order(&mut self, o: &NewOrder, timestamp_ns: u64, out: &mut impl EventSink) {
        let limit_price = match self.risk.check_new_order(o, &self.books, timestamp_ns) {
            Ok(price) => price,
            Err(reason) => return reject(out, o.account, o.client_ref, CommandKind::NewOrder, reason),
        };
        let (firm, stp) = self.risk.admit(o.account.0, o.client_ref.0, timestamp_ns);
        let order_id = self.take_order_id();
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
        if required > 0 && Matcher::fillable_qty(&self.books, &self.risk, &taker, required) < required {
            taker.emit_cancel(o.qty, CancelReason::FillOrKill, out);
            return;
        }
        // Most orders do not cross on entry; asking first skips the matcher's set-up for them.
        if self.books.book(o.instrument.0).crosses(o.side, limit_price) {
            self.matcher.match_taker(&mut self.books, &mut self.risk, &mut taker, out);
        }
        if taker.qty == 0 {
            return;
        }
        if o.order_type == OrderType::Limit && o.tif == TimeInForce::Day {
            self.books.add(taker.resting(), out);
        } else {
            taker.cancel_rest(CancelReason::ImmediateOrCancel, out);
        }
    }

    fn take_order_id(&mut self) -> u64 {
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        order_id
    }

    // ---- cancel, replace, mass cancel ----------------------------------------------------

    fn cancel<S: EventSink>(&mut self, c: &Cancel, out: &mut S) {
        let reject = |out: &mut S, reason| reject(out, c.account, c.client_ref, CommandKind::Cancel, reason);
        if c.account.0 as usize >= self.risk.account_count() {
            return reject(out, RejectReason::UnknownAccount);
        }
        let Some(slot) = self.books.find(c.account.0, c.client_ref.0) else {
            return reject(out, RejectReason::UnknownOrder);
        };
        let order = *self.books.order(slot);
        if c.qty_remaining >= order.qty {
            return reject(out, RejectReason::CancelWouldNotReduce);
        }
        if !self.books.book(order.instrument).lot.divides(c.qty_remaining as u64) {
            return reject(out, RejectReason::QuantityNotOnLot);
        }
        self.books.cancel(slot, order.qty - c.qty_remaining, CancelReason::User, out);
    }

    fn replace(&mut self, r: &Replace, timestamp_ns: u64, out: &mut impl EventSink) {
        let slot = match self.risk.check_replace(r, &self.books, timestamp_ns) {
            Ok(slot) => slot,
            Err(reason) => return reject(out, r.account, r.new_client_ref, CommandKind::Replace, reason),
        };
        let old = *self.books.order(slot);
        let (firm, stp) = self.risk.admit(r.account.0, r.new_client_ref.0, timestamp_ns);
        if r.price == old.price && r.qty <= old.qty {
            self.replace_in_place(r, slot, &old, out);
        } else {
            self.replace_moving(r, slot, &old, (firm, stp), out);
        }
    }

    /// Same price, no growth: the order keeps its place in the queue and its order id.
    fn replace_in_place(&mut self, r: &Replace, slot: u32, old: &Order, out: &mut impl EventSink) {
        let instrument = InstrumentId(old.instrument);
        let reduced_by = old.qty - r.qty;
        if reduced_by > 0 {
            self.books.shrink(slot, reduced_by);
        }
        self.books.rekey(slot, r.new_client_ref.0);
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
    }

    /// A new price or more quantity: the old order leaves and a new one enters at the back,
    /// matching first if it crosses.
    fn replace_moving(
        &mut self,
        r: &Replace,
        slot: u32,
        old: &Order,
        (firm, stp): (u32, StpMode),
        out: &mut impl EventSink,
    ) {
        let instrument = InstrumentId(old.instrument);
        self.books.shrink(slot, old.qty);
        let new_order_id = self.take_order_id();
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
        if !self.books.book(old.instrument).crosses(old.side, r.price) {
            self.books.insert(taker.resting());
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
        self.matcher.match_taker(&mut self.books, &mut self.risk, &mut taker, out);
        if taker.qty > 0 {
            self.books.add(taker.resting(), out);
        }
    }

    fn mass_cancel(
        &mut self,
        account: AccountId,
        instrument: Option<InstrumentId>,
        reason: CancelReason,
        command: CommandKind,
        out: &mut impl EventSink,
    ) {
        if account.0 as usize >= self.risk.account_count() {
            return reject(out, account, ClientRef(0), command, RejectReason::UnknownAccount);
        }
        if instrument.is_some_and(|i| i.0 as usize >= self.instrument_count()) {
            return reject(out, account, ClientRef(0), command, RejectReason::UnknownInstrument);
        }
        let cancelled = self.books.cancel_all(account.0, instrument, reason, out);
        out.emit(Event::MassCancelled { account, cancelled, reason });
    }

    fn kill_switch(&mut self, account: AccountId, engage: bool, out: &mut impl EventSink) {
        if account.0 as usize >= self.risk.account_count() {
            return reject(out, account, ClientRef(0), CommandKind::KillSwitch, RejectReason::UnknownAccount);
        }
        if engage {
            self.mass_cancel(account, None, CancelReason::KillSwitch, CommandKind::KillSwitch, out);
        }
        self.risk.set_blocked(account.0, engage);
        out.emit(Event::KillSwitch { account, engaged: engage });
    }

    fn set_risk_limits(&mut self, account: AccountId, limits: &RiskLimits, out: &mut impl EventSink) {
        match self.risk.set_limits(account.0, limits) {
            Ok(()) => out.emit(Event::RiskLimitsSet { account }),
            Err(reason) => reject(out, account, ClientRef(0), CommandKind::SetRiskLimits, reason),
        }
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
