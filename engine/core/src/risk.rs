//! Pre-trade risk: every check an order or replace passes before it may touch a book, and the
//! per-account state those checks keep (limits, kill switch, client references, rate windows,
//! net positions).
//!
//! The checks only read, so a rejected command leaves no trace in the state; an accepted one is
//! then counted with [`Risk::admit`]. Net positions change only through [`Risk::on_execution`].
//! What rests on the books (open orders, open quantities, free capacity) is read from
//! [`OrderBooks`], which this file never changes.

use alloc::vec;
use alloc::vec::Vec;

use crate::book::{price_acceptable, Book};
use crate::command::{NewOrder, Replace};
use crate::config::{validate_limits, AccountConfig, EngineConfig, RiskLimits};
use crate::event::RejectReason;
use crate::order_books::{OpenQty, OrderBooks};
use crate::types::{OrderType, Price, Qty, Side, StpMode, TimeInForce};

#[derive(Clone, Debug)]
pub(crate) struct AccountRisk {
    pub(crate) firm: u32,
    pub(crate) stp: StpMode,
    pub(crate) limits: RiskLimits,
    pub(crate) blocked: bool,
    /// Highest client reference accepted so far; new ones must exceed it.
    pub(crate) last_client_ref: Option<u32>,
    pub(crate) rate_window_start_ns: u64,
    pub(crate) rate_window_count: u32,
}

impl AccountRisk {
    fn new(config: &AccountConfig) -> AccountRisk {
        AccountRisk {
            firm: config.firm,
            stp: config.stp,
            limits: config.limits,
            blocked: false,
            last_client_ref: None,
            rate_window_start_ns: 0,
            rate_window_count: 0,
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

#[derive(Clone, Debug)]
pub(crate) struct Risk {
    accounts: Vec<AccountRisk>,
    /// Net position (bought minus sold) per account and instrument; accounts × instruments,
    /// row-major by account.
    net_qty: Vec<i64>,
    instrument_count: usize,
}

impl Risk {
    pub(crate) fn new(config: &EngineConfig) -> Risk {
        let instrument_count = config.instruments.len();
        Risk {
            accounts: config.accounts.iter().map(AccountRisk::new).collect(),
            net_qty: vec![0; config.accounts.len() * instrument_count],
            instrument_count,
        }
    }

    pub(crate) fn account_count(&self) -> usize {
        self.accounts.len()
    }

    pub(crate) fn account(&self, account: u32) -> Option<&AccountRisk> {
        self.accounts.get(account as usize)
    }

    /// For restoring a snapshot, which carries every account's risk state.
    pub(crate) fn account_mut(&mut self, account: u32) -> &mut AccountRisk {
        &mut self.accounts[account as usize]
    }

    pub(crate) fn firm(&self, account: u32) -> u32 {
        self.accounts[account as usize].firm
    }

    pub(crate) fn net_qty(&self, account: u32, instrument: u16) -> i64 {
        self.net_qty[account as usize * self.instrument_count + instrument as usize]
    }

    pub(crate) fn set_net_qty(&mut self, account: u32, instrument: u16, net_qty: i64) {
        self.net_qty[account as usize * self.instrument_count + instrument as usize] = net_qty;
    }

    /// All checks of a new order, in a fixed order; returns the price it may execute to.
    pub(crate) fn check_new_order(
        &self,
        o: &NewOrder,
        books: &OrderBooks,
        timestamp_ns: u64,
    ) -> Result<Price, RejectReason> {
        let account = self.accounts.get(o.account.0 as usize).ok_or(RejectReason::UnknownAccount)?;
        let book = books.books().get(o.instrument.0 as usize).ok_or(RejectReason::UnknownInstrument)?;
        if account.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        if account.last_client_ref.is_some_and(|last| o.client_ref.0 <= last) {
            return Err(RejectReason::DuplicateClientRef);
        }
        if o.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if !book.lot.divides(o.qty as u64) {
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
        let open_orders = books.account(o.account.0).count;
        if !market && o.tif == TimeInForce::Day && open_orders >= limits.max_open_orders {
            return Err(RejectReason::MaxOpenOrders);
        }
        let (net_qty, open_qty) = self.exposure(books, o.account.0, o.instrument.0);
        check_position(limits, net_qty, open_qty, o.side, o.qty, 0)?;
        if !account.rate_admits(timestamp_ns) {
            return Err(RejectReason::RateLimit);
        }
        if books.free_slots() == 0 {
            return Err(RejectReason::CapacityExhausted);
        }
        if o.post_only && book.crosses(o.side, limit_price) {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        Ok(limit_price)
    }

    /// All checks of a replace, in a fixed order; returns the slot of the order it replaces.
    pub(crate) fn check_replace(
        &self,
        r: &Replace,
        books: &OrderBooks,
        timestamp_ns: u64,
    ) -> Result<u32, RejectReason> {
        let account = self.accounts.get(r.account.0 as usize).ok_or(RejectReason::UnknownAccount)?;
        if account.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        let slot = books.find(r.account.0, r.client_ref.0).ok_or(RejectReason::UnknownOrder)?;
        if account.last_client_ref.is_some_and(|last| r.new_client_ref.0 <= last) {
            return Err(RejectReason::DuplicateClientRef);
        }
        let old = books.order(slot);
        let book = books.book(old.instrument);
        if r.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if !book.lot.divides(r.qty as u64) {
            return Err(RejectReason::QuantityNotOnLot);
        }
        let limits = &account.limits;
        check_limit_price(book, old.side, r.price, limits.price_collar_bps)?;
        check_size(limits, r.price, r.qty)?;
        let (net_qty, open_qty) = self.exposure(books, r.account.0, old.instrument);
        check_position(limits, net_qty, open_qty, old.side, r.qty, old.qty)?;
        if !account.rate_admits(timestamp_ns) {
            return Err(RejectReason::RateLimit);
        }
        Ok(slot)
    }

    fn exposure(&self, books: &OrderBooks, account: u32, instrument: u16) -> (i64, OpenQty) {
        (self.net_qty(account, instrument), books.open_qty(account, instrument))
    }

    /// Counts an accepted new order or replace against the account's rate window and client
    /// references; returns the account's firm and self-trade prevention mode for matching.
    pub(crate) fn admit(&mut self, account: u32, client_ref: u32, timestamp_ns: u64) -> (u32, StpMode) {
        let state = &mut self.accounts[account as usize];
        state.count_order(timestamp_ns);
        state.last_client_ref = Some(client_ref);
        (state.firm, state.stp)
    }

    /// Moves both accounts' net positions by one execution of `qty`.
    pub(crate) fn on_execution(
        &mut self,
        taker: u32,
        maker: u32,
        instrument: u16,
        taker_side: Side,
        qty: Qty,
    ) {
        let signed = qty as i64;
        let (taker_delta, maker_delta) = match taker_side {
            Side::Buy => (signed, -signed),
            Side::Sell => (-signed, signed),
        };
        let row = self.instrument_count;
        self.net_qty[taker as usize * row + instrument as usize] += taker_delta;
        self.net_qty[maker as usize * row + instrument as usize] += maker_delta;
    }

    pub(crate) fn set_blocked(&mut self, account: u32, blocked: bool) {
        self.accounts[account as usize].blocked = blocked;
    }

    /// Replaces an account's limits, if it exists and the limits are valid.
    pub(crate) fn set_limits(&mut self, account: u32, limits: &RiskLimits) -> Result<(), RejectReason> {
        let state = self.accounts.get_mut(account as usize).ok_or(RejectReason::UnknownAccount)?;
        validate_limits(limits).map_err(|_| RejectReason::InvalidRiskLimits)?;
        state.limits = *limits;
        Ok(())
    }
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
    if !book.on_tick(price) {
        return Err(RejectReason::PriceNotOnTick);
    }
    if !book.in_band(price) {
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
    net_qty: i64,
    open_qty: OpenQty,
    side: Side,
    qty: Qty,
    replacing_qty: Qty,
) -> Result<(), RejectReason> {
    let directional = match side {
        Side::Buy => net_qty as i128,
        Side::Sell => -(net_qty as i128),
    };
    let worst = directional + open_qty.on(side) as i128 - replacing_qty as i128 + qty as i128;
    if worst > limits.max_position as i128 {
        return Err(RejectReason::MaxPosition);
    }
    Ok(())
}
