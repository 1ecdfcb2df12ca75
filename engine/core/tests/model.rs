//! Property test: long random command streams through the engine and through a deliberately
//! naive reference model must give identical events, books, positions and account states.
//!
//! The model keeps every open order in one flat `Vec` and finds the next order to match by
//! sorting it on (price, time) each time: slow and obvious, with none of the engine's arena,
//! linked lists, level arrays, bitsets or index.

use petrel_core::*;
use proptest::prelude::*;

const TICK: Price = 100;

/// A side of a book: (price, [(client ref, account, quantity)] in time priority), best first.
type Levels = Vec<(Price, Vec<(u32, u32, Qty)>)>;
const BAND_MIN: Price = 9_000;
const BAND_MAX: Price = 11_000;

#[derive(Clone, Debug)]
struct MOrder {
    order_id: u64,
    account: u32,
    client_ref: u32,
    instrument: u16,
    side: Side,
    price: Price,
    qty: Qty,
    /// Time priority: smaller is earlier.
    time: u64,
}

#[derive(Clone, Debug)]
struct MAccount {
    firm: u32,
    stp: StpMode,
    limits: RiskLimits,
    blocked: bool,
    last_ref: Option<u32>,
    window_start: u64,
    window_count: u32,
}

struct Model {
    instruments: Vec<InstrumentConfig>,
    max_orders: usize,
    orders: Vec<MOrder>,
    accounts: Vec<MAccount>,
    positions: std::collections::BTreeMap<(u32, u16), i64>,
    reference: Vec<Option<Price>>,
    next_order_id: u64,
    next_match_id: u64,
    clock: u64,
}

struct MTaker {
    order_id: u64,
    account: u32,
    client_ref: u32,
    instrument: u16,
    side: Side,
    limit: Price,
    qty: Qty,
}

fn acceptable(side: Side, resting: Price, limit: Price) -> bool {
    if side == Side::Buy {
        resting <= limit
    } else {
        resting >= limit
    }
}

impl Model {
    fn new(config: &EngineConfig) -> Model {
        Model {
            instruments: config.instruments.clone(),
            max_orders: config.max_orders as usize,
            orders: Vec::new(),
            accounts: config
                .accounts
                .iter()
                .map(|a| MAccount {
                    firm: a.firm,
                    stp: a.stp,
                    limits: a.limits,
                    blocked: false,
                    last_ref: None,
                    window_start: 0,
                    window_count: 0,
                })
                .collect(),
            positions: Default::default(),
            reference: config.instruments.iter().map(|i| i.reference_price).collect(),
            next_order_id: 1,
            next_match_id: 1,
            clock: 0,
        }
    }

    fn pos(&self, account: u32, instrument: u16) -> i64 {
        *self.positions.get(&(account, instrument)).unwrap_or(&0)
    }

    fn open_qty(&self, account: u32, instrument: u16, side: Side) -> u64 {
        self.orders
            .iter()
            .filter(|o| o.account == account && o.instrument == instrument && o.side == side)
            .map(|o| o.qty as u64)
            .sum()
    }

    /// Opposite-side orders the taker may trade with, best first.
    fn candidates(&self, instrument: u16, side: Side, limit: Price) -> Vec<usize> {
        let mut c: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                let o = &self.orders[i];
                o.instrument == instrument && o.side != side && acceptable(side, o.price, limit)
            })
            .collect();
        c.sort_by_key(|&i| {
            let o = &self.orders[i];
            (if side == Side::Buy { o.price } else { -o.price }, o.time)
        });
        c
    }

    fn best(&self, instrument: u16, side: Side) -> Option<Price> {
        let prices =
            self.orders.iter().filter(|o| o.instrument == instrument && o.side == side).map(|o| o.price);
        if side == Side::Buy {
            prices.max()
        } else {
            prices.min()
        }
    }

    fn collar(&self, instrument: u16, side: Side, reference: Price, bps: u32) -> Price {
        let tick = self.instruments[instrument as usize].tick_size;
        let offset = (reference as i128 * bps as i128 / 10_000) as Price;
        if side == Side::Buy {
            (reference + offset).div_euclid(tick) * tick
        } else {
            let b = reference - offset;
            if b.rem_euclid(tick) == 0 {
                b
            } else {
                (b.div_euclid(tick) + 1) * tick
            }
        }
    }

    fn window_expired(a: &MAccount, ts: u64) -> bool {
        ts.saturating_sub(a.window_start) >= a.limits.rate_window_ns
    }

    fn rate_ok(a: &MAccount, ts: u64) -> bool {
        a.limits.max_orders_per_window == 0
            || Self::window_expired(a, ts)
            || a.window_count < a.limits.max_orders_per_window
    }

    fn count_rate(&mut self, account: u32, ts: u64) {
        let a = &mut self.accounts[account as usize];
        if Self::window_expired(a, ts) {
            a.window_start = ts;
            a.window_count = 0;
        }
        a.window_count += 1;
    }

    fn position_ok(&self, account: u32, instrument: u16, side: Side, qty: Qty, replacing: Qty) -> bool {
        let limits = &self.accounts[account as usize].limits;
        let p = self.pos(account, instrument) as i128;
        let directional = if side == Side::Buy { p } else { -p };
        directional + self.open_qty(account, instrument, side) as i128 - replacing as i128 + qty as i128
            <= limits.max_position as i128
    }

    fn price_ok(&self, instrument: u16, side: Side, price: Price, bps: u32) -> Result<(), RejectReason> {
        let inst = &self.instruments[instrument as usize];
        if price % inst.tick_size != 0 {
            return Err(RejectReason::PriceNotOnTick);
        }
        if price < inst.price_band_min || price > inst.price_band_max {
            return Err(RejectReason::PriceOutOfBand);
        }
        if bps > 0 {
            if let Some(reference) = self.reference[instrument as usize] {
                if !acceptable(side, price, self.collar(instrument, side, reference, bps)) {
                    return Err(RejectReason::PriceCollar);
                }
            }
        }
        Ok(())
    }

    fn size_ok(limits: &RiskLimits, price: Price, qty: Qty) -> Result<(), RejectReason> {
        if qty > limits.max_order_qty {
            return Err(RejectReason::MaxOrderQty);
        }
        if price as u128 * qty as u128 > limits.max_order_notional as u128 {
            return Err(RejectReason::MaxOrderNotional);
        }
        Ok(())
    }

    fn check_new(&self, o: &NewOrder, ts: u64) -> Result<Price, RejectReason> {
        let a = self.accounts.get(o.account.0 as usize).ok_or(RejectReason::UnknownAccount)?;
        let inst = self.instruments.get(o.instrument.0 as usize).ok_or(RejectReason::UnknownInstrument)?;
        if a.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        if a.last_ref.is_some_and(|l| o.client_ref.0 <= l) {
            return Err(RejectReason::DuplicateClientRef);
        }
        if o.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if o.qty % inst.lot_size != 0 {
            return Err(RejectReason::QuantityNotOnLot);
        }
        let market = o.order_type == OrderType::Market;
        if o.min_qty > o.qty || (o.post_only && (market || o.tif != TimeInForce::Day)) {
            return Err(RejectReason::InvalidOrder);
        }
        let bps = a.limits.price_collar_bps;
        let price = if market {
            if bps == 0 {
                if o.side == Side::Buy {
                    inst.price_band_max
                } else {
                    inst.price_band_min
                }
            } else {
                let r = self.reference[o.instrument.0 as usize].ok_or(RejectReason::NoReferencePrice)?;
                self.collar(o.instrument.0, o.side, r, bps).clamp(inst.price_band_min, inst.price_band_max)
            }
        } else {
            self.price_ok(o.instrument.0, o.side, o.price, bps)?;
            o.price
        };
        Self::size_ok(&a.limits, price, o.qty)?;
        let open = self.orders.iter().filter(|x| x.account == o.account.0).count() as u32;
        if !market && o.tif == TimeInForce::Day && open >= a.limits.max_open_orders {
            return Err(RejectReason::MaxOpenOrders);
        }
        if !self.position_ok(o.account.0, o.instrument.0, o.side, o.qty, 0) {
            return Err(RejectReason::MaxPosition);
        }
        if !Self::rate_ok(a, ts) {
            return Err(RejectReason::RateLimit);
        }
        if self.orders.len() >= self.max_orders {
            return Err(RejectReason::CapacityExhausted);
        }
        if o.post_only
            && self.best(o.instrument.0, o.side.opposite()).is_some_and(|b| acceptable(o.side, b, price))
        {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        Ok(price)
    }

    fn taker_cancel(t: &MTaker, qty: Qty, reason: CancelReason, out: &mut Vec<Event>) {
        out.push(Event::Cancelled(Cancelled {
            account: AccountId(t.account),
            client_ref: ClientRef(t.client_ref),
            order_id: OrderId(t.order_id),
            instrument: InstrumentId(t.instrument),
            side: t.side,
            qty_cancelled: qty,
            qty_remaining: t.qty,
            reason,
        }));
    }

    /// Cancels `qty` of resting order `i` (by position in `orders`).
    fn cancel_resting(&mut self, i: usize, qty: Qty, reason: CancelReason, out: &mut Vec<Event>) {
        let o = self.orders[i].clone();
        out.push(Event::Cancelled(Cancelled {
            account: AccountId(o.account),
            client_ref: ClientRef(o.client_ref),
            order_id: OrderId(o.order_id),
            instrument: InstrumentId(o.instrument),
            side: o.side,
            qty_cancelled: qty,
            qty_remaining: o.qty - qty,
            reason,
        }));
        if qty == o.qty {
            out.push(Event::Book(BookChange::Delete {
                instrument: InstrumentId(o.instrument),
                order_id: OrderId(o.order_id),
            }));
            self.orders.remove(i);
        } else {
            out.push(Event::Book(BookChange::Cancel {
                instrument: InstrumentId(o.instrument),
                order_id: OrderId(o.order_id),
                qty,
            }));
            self.orders[i].qty -= qty;
        }
    }

    fn fillable(&self, t: &MTaker, required: Qty) -> Qty {
        let a = &self.accounts[t.account as usize];
        let mut total = 0u64;
        for i in self.candidates(t.instrument, t.side, t.limit) {
            let o = &self.orders[i];
            if a.stp != StpMode::None && self.accounts[o.account as usize].firm == a.firm {
                break;
            }
            total += o.qty as u64;
        }
        total.min(required as u64) as Qty
    }

    fn do_match(&mut self, t: &mut MTaker, out: &mut Vec<Event>) {
        let (firm, stp) = (self.accounts[t.account as usize].firm, self.accounts[t.account as usize].stp);
        while t.qty > 0 {
            let Some(&i) = self.candidates(t.instrument, t.side, t.limit).first() else { return };
            let maker = self.orders[i].clone();
            if stp != StpMode::None && self.accounts[maker.account as usize].firm == firm {
                if self.self_trade(stp, t, i, maker.qty, out) {
                    return;
                }
                continue;
            }
            let q = maker.qty.min(t.qty);
            t.qty -= q;
            let match_id = MatchId(self.next_match_id);
            self.next_match_id += 1;
            let sign = if t.side == Side::Buy { 1 } else { -1 };
            *self.positions.entry((t.account, t.instrument)).or_default() += sign * q as i64;
            *self.positions.entry((maker.account, t.instrument)).or_default() -= sign * q as i64;
            self.reference[t.instrument as usize] = Some(maker.price);
            out.push(Event::Executed(Executed {
                match_id,
                instrument: InstrumentId(t.instrument),
                price: maker.price,
                qty: q,
                aggressor: t.side,
                maker: Fill {
                    account: AccountId(maker.account),
                    client_ref: ClientRef(maker.client_ref),
                    order_id: OrderId(maker.order_id),
                    qty_remaining: maker.qty - q,
                },
                taker: Fill {
                    account: AccountId(t.account),
                    client_ref: ClientRef(t.client_ref),
                    order_id: OrderId(t.order_id),
                    qty_remaining: t.qty,
                },
            }));
            out.push(Event::Book(BookChange::Execute {
                instrument: InstrumentId(t.instrument),
                order_id: OrderId(maker.order_id),
                qty: q,
                price: maker.price,
                match_id,
            }));
            if q == maker.qty {
                self.orders.remove(i);
            } else {
                self.orders[i].qty -= q;
            }
        }
    }

    /// Self-trade prevention against resting order `i`; returns whether matching stops.
    fn self_trade(
        &mut self,
        stp: StpMode,
        t: &mut MTaker,
        i: usize,
        maker_qty: Qty,
        out: &mut Vec<Event>,
    ) -> bool {
        match stp {
            StpMode::CancelNewest => {
                let q = t.qty;
                t.qty = 0;
                Self::taker_cancel(t, q, CancelReason::SelfTrade, out);
                true
            }
            StpMode::CancelOldest => {
                self.cancel_resting(i, maker_qty, CancelReason::SelfTrade, out);
                false
            }
            StpMode::CancelBoth => {
                self.cancel_resting(i, maker_qty, CancelReason::SelfTrade, out);
                let q = t.qty;
                t.qty = 0;
                Self::taker_cancel(t, q, CancelReason::SelfTrade, out);
                true
            }
            StpMode::DecrementAndCancel => {
                let q = maker_qty.min(t.qty);
                self.cancel_resting(i, q, CancelReason::SelfTrade, out);
                t.qty -= q;
                Self::taker_cancel(t, q, CancelReason::SelfTrade, out);
                false
            }
            StpMode::None => unreachable!(),
        }
    }

    fn rest(&mut self, t: &MTaker, out: &mut Vec<Event>) {
        self.clock += 1;
        self.orders.push(MOrder {
            order_id: t.order_id,
            account: t.account,
            client_ref: t.client_ref,
            instrument: t.instrument,
            side: t.side,
            price: t.limit,
            qty: t.qty,
            time: self.clock,
        });
        out.push(Event::Book(BookChange::Add {
            instrument: InstrumentId(t.instrument),
            order_id: OrderId(t.order_id),
            side: t.side,
            price: t.limit,
            qty: t.qty,
        }));
    }

    fn reject(
        out: &mut Vec<Event>,
        account: AccountId,
        client_ref: ClientRef,
        command: CommandKind,
        reason: RejectReason,
    ) {
        out.push(Event::Rejected(Rejected { account, client_ref, command, reason }));
    }

    fn find(&self, account: u32, client_ref: u32) -> Option<usize> {
        self.orders.iter().position(|o| o.account == account && o.client_ref == client_ref)
    }

    fn mass(
        &mut self,
        account: AccountId,
        instrument: Option<InstrumentId>,
        reason: CancelReason,
        kind: CommandKind,
        out: &mut Vec<Event>,
    ) {
        if account.0 as usize >= self.accounts.len() {
            return Self::reject(out, account, ClientRef(0), kind, RejectReason::UnknownAccount);
        }
        if instrument.is_some_and(|i| i.0 as usize >= self.instruments.len()) {
            return Self::reject(out, account, ClientRef(0), kind, RejectReason::UnknownInstrument);
        }
        let mut ids: Vec<u64> = self
            .orders
            .iter()
            .filter(|o| o.account == account.0 && instrument.is_none_or(|i| i.0 == o.instrument))
            .map(|o| o.order_id)
            .collect();
        ids.sort();
        for id in &ids {
            let i = self.orders.iter().position(|o| o.order_id == *id).unwrap();
            let q = self.orders[i].qty;
            self.cancel_resting(i, q, reason, out);
        }
        out.push(Event::MassCancelled { account, cancelled: ids.len() as u32, reason });
    }

    fn apply(&mut self, command: &Command, ts: u64) -> Vec<Event> {
        let mut out = Vec::new();
        match command {
            Command::NewOrder(o) => self.new_order(o, ts, &mut out),
            Command::Cancel(c) => self.cancel(c, &mut out),
            Command::Replace(r) => self.replace(r, ts, &mut out),
            Command::MassCancel { account, instrument } => {
                self.mass(*account, *instrument, CancelReason::MassCancel, CommandKind::MassCancel, &mut out)
            }
            Command::Disconnect { account } => {
                self.mass(*account, None, CancelReason::Disconnect, CommandKind::Disconnect, &mut out)
            }
            Command::KillSwitch { account, engage } => self.kill(*account, *engage, &mut out),
            Command::SetRiskLimits { account, limits } => self.set_limits(*account, limits, &mut out),
            Command::Note { account, note } => out.push(Event::Noted { account: *account, note: *note }),
        }
        out
    }

    fn new_order(&mut self, o: &NewOrder, ts: u64, out: &mut Vec<Event>) {
        let price = match self.check_new(o, ts) {
            Ok(p) => p,
            Err(r) => {
                Self::reject(out, o.account, o.client_ref, CommandKind::NewOrder, r);
                return;
            }
        };
        self.count_rate(o.account.0, ts);
        self.accounts[o.account.0 as usize].last_ref = Some(o.client_ref.0);
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        out.push(Event::Accepted(Accepted {
            account: o.account,
            client_ref: o.client_ref,
            order_id: OrderId(order_id),
            instrument: o.instrument,
            side: o.side,
            order_type: o.order_type,
            tif: o.tif,
            price,
            qty: o.qty,
        }));
        let mut t = MTaker {
            order_id,
            account: o.account.0,
            client_ref: o.client_ref.0,
            instrument: o.instrument.0,
            side: o.side,
            limit: price,
            qty: o.qty,
        };
        let required = if o.tif == TimeInForce::Fok { o.qty } else { o.min_qty };
        if required > 0 && self.fillable(&t, required) < required {
            Self::taker_cancel(&t, o.qty, CancelReason::FillOrKill, out);
            return;
        }
        self.do_match(&mut t, out);
        if t.qty > 0 {
            if o.order_type == OrderType::Limit && o.tif == TimeInForce::Day {
                self.rest(&t, out);
            } else {
                let q = t.qty;
                t.qty = 0;
                Self::taker_cancel(&t, q, CancelReason::ImmediateOrCancel, out);
            }
        }
    }

    fn cancel(&mut self, c: &Cancel, out: &mut Vec<Event>) {
        let kind = CommandKind::Cancel;
        if c.account.0 as usize >= self.accounts.len() {
            Self::reject(out, c.account, c.client_ref, kind, RejectReason::UnknownAccount);
        } else if let Some(i) = self.find(c.account.0, c.client_ref.0) {
            let o = self.orders[i].clone();
            if c.qty_remaining >= o.qty {
                Self::reject(out, c.account, c.client_ref, kind, RejectReason::CancelWouldNotReduce);
            } else if c.qty_remaining % self.instruments[o.instrument as usize].lot_size != 0 {
                Self::reject(out, c.account, c.client_ref, kind, RejectReason::QuantityNotOnLot);
            } else {
                self.cancel_resting(i, o.qty - c.qty_remaining, CancelReason::User, out);
            }
        } else {
            Self::reject(out, c.account, c.client_ref, kind, RejectReason::UnknownOrder);
        }
    }

    fn kill(&mut self, account: AccountId, engage: bool, out: &mut Vec<Event>) {
        if account.0 as usize >= self.accounts.len() {
            Self::reject(out, account, ClientRef(0), CommandKind::KillSwitch, RejectReason::UnknownAccount);
        } else {
            if engage {
                self.mass(account, None, CancelReason::KillSwitch, CommandKind::KillSwitch, out);
            }
            self.accounts[account.0 as usize].blocked = engage;
            out.push(Event::KillSwitch { account, engaged: engage });
        }
    }

    fn set_limits(&mut self, account: AccountId, limits: &RiskLimits, out: &mut Vec<Event>) {
        let invalid = (limits.max_orders_per_window > 0 && limits.rate_window_ns == 0)
            || limits.max_position > i64::MAX as u64;
        if account.0 as usize >= self.accounts.len() {
            Self::reject(
                out,
                account,
                ClientRef(0),
                CommandKind::SetRiskLimits,
                RejectReason::UnknownAccount,
            );
        } else if invalid {
            Self::reject(
                out,
                account,
                ClientRef(0),
                CommandKind::SetRiskLimits,
                RejectReason::InvalidRiskLimits,
            );
        } else {
            self.accounts[account.0 as usize].limits = *limits;
            out.push(Event::RiskLimitsSet { account });
        }
    }

    fn check_replace(&self, r: &Replace, ts: u64) -> Result<usize, RejectReason> {
        let a = self.accounts.get(r.account.0 as usize).ok_or(RejectReason::UnknownAccount)?;
        if a.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        let i = self.find(r.account.0, r.client_ref.0).ok_or(RejectReason::UnknownOrder)?;
        if a.last_ref.is_some_and(|l| r.new_client_ref.0 <= l) {
            return Err(RejectReason::DuplicateClientRef);
        }
        let o = &self.orders[i];
        if r.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if r.qty % self.instruments[o.instrument as usize].lot_size != 0 {
            return Err(RejectReason::QuantityNotOnLot);
        }
        self.price_ok(o.instrument, o.side, r.price, a.limits.price_collar_bps)?;
        Self::size_ok(&a.limits, r.price, r.qty)?;
        if !self.position_ok(r.account.0, o.instrument, o.side, r.qty, o.qty) {
            return Err(RejectReason::MaxPosition);
        }
        if !Self::rate_ok(a, ts) {
            return Err(RejectReason::RateLimit);
        }
        Ok(i)
    }

    fn replace(&mut self, r: &Replace, ts: u64, out: &mut Vec<Event>) {
        let kind = CommandKind::Replace;
        let i = match self.check_replace(r, ts) {
            Ok(i) => i,
            Err(reason) => return Self::reject(out, r.account, r.new_client_ref, kind, reason),
        };
        self.count_rate(r.account.0, ts);
        self.accounts[r.account.0 as usize].last_ref = Some(r.new_client_ref.0);
        let old = self.orders[i].clone();
        let instrument = InstrumentId(old.instrument);
        if r.price == old.price && r.qty <= old.qty {
            return self.replace_in_place(r, i, &old, out);
        }
        self.orders.remove(i);
        let new_id = self.next_order_id;
        self.next_order_id += 1;
        out.push(Event::Replaced(Replaced {
            account: r.account,
            old_client_ref: ClientRef(old.client_ref),
            new_client_ref: r.new_client_ref,
            old_order_id: OrderId(old.order_id),
            new_order_id: OrderId(new_id),
            instrument,
            side: old.side,
            price: r.price,
            qty: r.qty,
            priority_kept: false,
        }));
        let mut t = MTaker {
            order_id: new_id,
            account: r.account.0,
            client_ref: r.new_client_ref.0,
            instrument: old.instrument,
            side: old.side,
            limit: r.price,
            qty: r.qty,
        };
        let crosses =
            self.best(old.instrument, old.side.opposite()).is_some_and(|b| acceptable(old.side, b, r.price));
        if !crosses {
            self.clock += 1;
            self.orders.push(MOrder {
                order_id: new_id,
                account: r.account.0,
                client_ref: r.new_client_ref.0,
                instrument: old.instrument,
                side: old.side,
                price: r.price,
                qty: r.qty,
                time: self.clock,
            });
            out.push(Event::Book(BookChange::Replace {
                instrument,
                old_order_id: OrderId(old.order_id),
                new_order_id: OrderId(new_id),
                price: r.price,
                qty: r.qty,
            }));
            return;
        }
        out.push(Event::Book(BookChange::Delete { instrument, order_id: OrderId(old.order_id) }));
        self.do_match(&mut t, out);
        if t.qty > 0 {
            self.rest(&t, out);
        }
    }

    fn replace_in_place(&mut self, r: &Replace, i: usize, old: &MOrder, out: &mut Vec<Event>) {
        let instrument = InstrumentId(old.instrument);
        self.orders[i].qty = r.qty;
        self.orders[i].client_ref = r.new_client_ref.0;
        out.push(Event::Replaced(Replaced {
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
        if r.qty < old.qty {
            out.push(Event::Book(BookChange::Cancel {
                instrument,
                order_id: OrderId(old.order_id),
                qty: old.qty - r.qty,
            }));
        }
    }

    /// The model's book as (price, [(client_ref, account, qty)]) levels, best first.
    fn levels(&self, instrument: u16, side: Side) -> Levels {
        let mut orders: Vec<&MOrder> =
            self.orders.iter().filter(|o| o.instrument == instrument && o.side == side).collect();
        orders.sort_by_key(|o| (if side == Side::Buy { -o.price } else { o.price }, o.time));
        let mut levels: Levels = Vec::new();
        for o in orders {
            match levels.last_mut() {
                Some((p, v)) if *p == o.price => v.push((o.client_ref, o.account, o.qty)),
                _ => levels.push((o.price, vec![(o.client_ref, o.account, o.qty)])),
            }
        }
        levels
    }
}

fn engine_levels(engine: &Engine, instrument: u16, side: Side) -> Levels {
    engine
        .depth(InstrumentId(instrument), side, usize::MAX)
        .into_iter()
        .map(|(price, qty, count)| {
            let orders = engine.level_orders(InstrumentId(instrument), side, price);
            assert_eq!(orders.len() as u32, count);
            assert_eq!(orders.iter().map(|o| o.qty as u64).sum::<u64>(), qty);
            (price, orders.iter().map(|o| (o.client_ref.0, o.account.0, o.qty)).collect())
        })
        .collect()
}

// ---- generation ----------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    New {
        account: u8,
        instrument: u8,
        buy: bool,
        kind: u8,
        tick: i8,
        qty: u8,
        min_qty: u8,
        post_only: bool,
        dup_ref: bool,
    },
    Cancel {
        account: u8,
        back: u8,
        keep: u8,
    },
    Replace {
        account: u8,
        back: u8,
        tick: i8,
        qty: u8,
        shape: u8,
    },
    Mass {
        account: u8,
        instrument: Option<u8>,
    },
    Disconnect {
        account: u8,
    },
    Kill {
        account: u8,
        engage: bool,
    },
    Limits {
        account: u8,
        pick: u8,
    },
    /// A note: returned unchanged, and nothing else changes.
    Note {
        account: u8,
        fill: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u8..5, 0u8..3, any::<bool>(), 0u8..10, -6i8..6, 0u8..25, 0u8..12, prop::bool::weighted(0.1), prop::bool::weighted(0.05))
            .prop_map(|(account, instrument, buy, kind, tick, qty, min_qty, post_only, dup_ref)| Op::New {
                account, instrument, buy, kind, tick, qty, min_qty, post_only, dup_ref
            }),
        4 => (0u8..5, 0u8..8, 0u8..12).prop_map(|(account, back, keep)| Op::Cancel { account, back, keep }),
        5 => (0u8..5, 0u8..8, -6i8..6, 0u8..25, 0u8..6).prop_map(|(account, back, tick, qty, shape)| Op::Replace { account, back, tick, qty, shape }),
        1 => (0u8..5, prop::option::of(0u8..3)).prop_map(|(account, instrument)| Op::Mass { account, instrument }),
        1 => (0u8..5).prop_map(|account| Op::Disconnect { account }),
        1 => (0u8..5, any::<bool>()).prop_map(|(account, engage)| Op::Kill { account, engage }),
                1 => (0u8..5, 0u8..6).prop_map(|(account, pick)| Op::Limits { account, pick }),
        1 => (0u8..5, any::<u8>()).prop_map(|(account, fill)| Op::Note { account, fill }),
    ]
}

fn limits_for(pick: u8) -> RiskLimits {
    let u = RiskLimits::UNLIMITED;
    match pick {
        0 => u,
        1 => RiskLimits { max_order_qty: 15, max_order_notional: 10_000 * 12, ..u },
        2 => RiskLimits { price_collar_bps: 300, ..u },
        3 => RiskLimits { max_open_orders: 3, max_position: 30, ..u },
        4 => RiskLimits { max_orders_per_window: 6, rate_window_ns: 100_000, ..u },
        _ => RiskLimits { max_orders_per_window: 1, rate_window_ns: 0, ..u }, // invalid
    }
}

fn config(stp: &[u8], lots: &[u32]) -> EngineConfig {
    let modes = [
        StpMode::None,
        StpMode::CancelNewest,
        StpMode::CancelOldest,
        StpMode::CancelBoth,
        StpMode::DecrementAndCancel,
    ];
    EngineConfig {
        instruments: (0..2)
            .map(|i| InstrumentConfig {
                symbol: Symbol::new(["AAA", "BBB"][i]).unwrap(),
                tick_size: TICK,
                lot_size: lots[i],
                price_band_min: BAND_MIN,
                price_band_max: BAND_MAX,
                reference_price: if i == 0 { Some(10_000) } else { None },
            })
            .collect(),
        // Firms: accounts 0 and 1 share firm 1; 2 and 3 are firm 2 and 3.
        accounts: (0..4)
            .map(|a| AccountConfig {
                firm: [1, 1, 2, 3][a],
                stp: modes[stp[a] as usize % modes.len()],
                limits: limits_for([0, 2, 3, 4][a]),
            })
            .collect(),
        max_orders: 24,
    }
}

fn new_ref(account: u8, refs: &mut [u32; 5]) -> ClientRef {
    refs[account as usize] += 1;
    ClientRef(refs[account as usize])
}

fn old_ref(account: u8, back: u8, refs: &[u32; 5]) -> ClientRef {
    ClientRef(refs[account as usize].saturating_sub(back as u32))
}

/// The command an operation stands for; client references come from `refs`, the last one issued
/// per account, and a replace aims at what `engine` has open.
fn command_for(op: Op, engine: &Engine, refs: &mut [u32; 5]) -> Command {
    match op {
        Op::New { account, instrument, buy, kind, tick, qty, min_qty, post_only, dup_ref } => {
            let client_ref = if dup_ref { old_ref(account, 1, refs) } else { new_ref(account, refs) };
            new_order_command(account, client_ref, instrument, buy, kind, tick, qty, min_qty, post_only)
        }
        Op::Cancel { account, back, keep } => Command::Cancel(Cancel {
            account: AccountId(account as u32),
            client_ref: old_ref(account, back, refs),
            qty_remaining: if keep < 6 { 0 } else { keep as Qty },
        }),
        Op::Replace { account, back, tick, qty, shape } => replace_command(
            engine,
            account,
            old_ref(account, back, refs),
            new_ref(account, refs),
            tick,
            qty,
            shape,
        ),
        Op::Mass { account, instrument } => Command::MassCancel {
            account: AccountId(account as u32),
            instrument: instrument.map(|i| InstrumentId(i as u16)),
        },
        Op::Disconnect { account } => Command::Disconnect { account: AccountId(account as u32) },
        Op::Kill { account, engage } => Command::KillSwitch { account: AccountId(account as u32), engage },
        Op::Limits { account, pick } => {
            Command::SetRiskLimits { account: AccountId(account as u32), limits: limits_for(pick) }
        }
        Op::Note { account, fill } => Command::Note { account: AccountId(account as u32), note: [fill; 24] },
    }
}

#[allow(clippy::too_many_arguments)] // one per field of Op::New
fn new_order_command(
    account: u8,
    client_ref: ClientRef,
    instrument: u8,
    buy: bool,
    kind: u8,
    tick: i8,
    qty: u8,
    min_qty: u8,
    post_only: bool,
) -> Command {
    let (order_type, tif) = match kind {
        0..=5 => (OrderType::Limit, TimeInForce::Day),
        6 => (OrderType::Limit, TimeInForce::Ioc),
        7 => (OrderType::Limit, TimeInForce::Fok),
        8 => (OrderType::Market, TimeInForce::Ioc),
        _ => (OrderType::Market, TimeInForce::Fok),
    };
    // Mostly on tick near 10_000; sometimes off tick or outside the band.
    let price = match tick {
        5 => 10_000 + 50,
        -6 => BAND_MIN - TICK,
        t => 10_000 + t as Price * TICK,
    };
    Command::NewOrder(NewOrder {
        account: AccountId(account as u32),
        client_ref,
        instrument: InstrumentId(instrument as u16),
        side: if buy { Side::Buy } else { Side::Sell },
        order_type,
        tif,
        price,
        qty: qty as Qty,
        min_qty: if min_qty < 8 { 0 } else { min_qty as Qty },
        post_only,
    })
}

fn replace_command(
    engine: &Engine,
    account: u8,
    client_ref: ClientRef,
    new_client_ref: ClientRef,
    tick: i8,
    qty: u8,
    shape: u8,
) -> Command {
    let mut price = 10_000 + tick as Price * TICK;
    let mut qty = qty as Qty;
    // Aim at the priority rules: same price with the same, a smaller or a larger
    // quantity than the order has now.
    if let Some(old) = engine.order(AccountId(account as u32), client_ref) {
        match shape {
            0 => (price, qty) = (old.price, old.qty),
            1 => (price, qty) = (old.price, old.qty.saturating_sub(qty % 4 + 1)),
            2 => (price, qty) = (old.price, old.qty + qty % 4 + 1),
            _ => {}
        }
    }
    Command::Replace(Replace { account: AccountId(account as u32), client_ref, new_client_ref, price, qty })
}

/// After each command: the same books, positions and kill switches in engine and model.
fn agree(engine: &Engine, model: &Model, n: usize) -> Result<(), TestCaseError> {
    for instrument in 0..2u16 {
        for side in [Side::Buy, Side::Sell] {
            prop_assert_eq!(
                engine_levels(engine, instrument, side),
                model.levels(instrument, side),
                "book differs after command {}",
                n
            );
        }
        for account in 0..4u32 {
            prop_assert_eq!(
                engine.position(AccountId(account), InstrumentId(instrument)),
                model.pos(account, instrument)
            );
        }
    }
    for account in 0..4u32 {
        prop_assert_eq!(engine.is_blocked(AccountId(account)), model.accounts[account as usize].blocked);
    }
    Ok(())
}

fn run(stp: Vec<u8>, lots: Vec<u32>, ops: Vec<(Op, u16)>) -> Result<(), TestCaseError> {
    let config = config(&stp, &lots);
    let mut engine = Engine::new(&config).unwrap();
    let mut model = Model::new(&config);
    let mut refs = [0u32; 5];
    let mut ts = 0u64;
    for (n, (op, dt)) in ops.into_iter().enumerate() {
        ts += dt as u64;
        let command = command_for(op, &engine, &mut refs);
        let mut got = Vec::new();
        engine.apply(&command, n as u64 + 1, ts, &mut got);
        let want = model.apply(&command, ts);
        prop_assert_eq!(&got, &want, "events differ at command {} {:?}", n, command);
        agree(&engine, &model, n)?;
    }
    // The snapshot of the final state restores to the same hash.
    let mut bytes = Vec::new();
    engine.encode_state(&mut bytes);
    prop_assert_eq!(Engine::restore(&config, &bytes).unwrap().state_hash(), engine.state_hash());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn engine_agrees_with_naive_model(
        stp in prop::collection::vec(0u8..5, 4),
        lots in prop::collection::vec(prop::sample::select(vec![1u32, 1, 5]), 2),
        ops in prop::collection::vec((op(), prop_oneof![3 => 0u16..500, 1 => 0u16..20_000]), 1..400),
    ) {
        run(stp, lots, ops)?;
    }
}
