//! The canonical encoding of the whole engine state, its hash, and restoring from it.
//!
//! The encoding lists, in a fixed order, every book (levels best first, orders in time
//! priority), every account (limits, flags, counters, positions) and the engine's counters. It
//! names orders by their order ids, never by arena slots, so two engines that processed the same
//! commands encode identically whatever their capacities. It is both the snapshot format and the
//! input of [`Engine::state_hash`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};
use core::fmt;

use crate::config::{EngineConfig, RiskLimits};
use crate::engine::{Engine, Order, NIL};
use crate::types::{Side, StpMode};
use thiserror::Error;

const MAGIC: &[u8; 8] = b"PTRLSTAT";
const VERSION: u32 = 1;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot ends early at byte {offset} (reading {what})")]
    Truncated { offset: usize, what: &'static str },
    #[error("not a Petrel state snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot format version {found} is not supported (this build reads {VERSION})")]
    Version { found: u32 },
    #[error("snapshot does not fit the configuration: {0}")]
    ConfigMismatch(String),
    #[error("snapshot is inconsistent at byte {offset}: {what}")]
    Inconsistent { offset: usize, what: String },
}

/// A 128-bit hash of the canonical state, shown as 32 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateHash(pub u128);

impl fmt::Display for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

fn put_limits(out: &mut Vec<u8>, l: &RiskLimits) {
    out.extend_from_slice(&l.max_order_qty.to_le_bytes());
    out.extend_from_slice(&l.max_order_notional.to_le_bytes());
    out.extend_from_slice(&l.price_collar_bps.to_le_bytes());
    out.extend_from_slice(&l.max_open_orders.to_le_bytes());
    out.extend_from_slice(&l.max_position.to_le_bytes());
    out.extend_from_slice(&l.max_orders_per_window.to_le_bytes());
    out.extend_from_slice(&l.rate_window_ns.to_le_bytes());
}

fn stp_byte(mode: StpMode) -> u8 {
    match mode {
        StpMode::None => 0,
        StpMode::CancelNewest => 1,
        StpMode::CancelOldest => 2,
        StpMode::CancelBoth => 3,
        StpMode::DecrementAndCancel => 4,
    }
}

impl Engine {
    /// Appends the canonical encoding of the whole state to `out`.
    pub fn encode_state(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.books.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.accounts.len() as u32).to_le_bytes());
        for v in [self.last_sequence, self.last_timestamp_ns, self.next_order_id, self.next_match_id] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for book in &self.books {
            out.extend_from_slice(&book.symbol.0);
            out.push(book.reference_price.is_some() as u8);
            out.extend_from_slice(&book.reference_price.unwrap_or(0).to_le_bytes());
            for side in [Side::Buy, Side::Sell] {
                let half = book.half(side);
                let count_at = out.len();
                out.extend_from_slice(&0u32.to_le_bytes());
                let mut level_count = 0u32;
                let mut at = half.best;
                while at != NIL {
                    let level = &half.levels[at as usize];
                    out.extend_from_slice(&book.level_price(at).to_le_bytes());
                    out.extend_from_slice(&level.order_count.to_le_bytes());
                    out.extend_from_slice(&level.qty_total.to_le_bytes());
                    let mut slot = level.head;
                    while slot != NIL {
                        let o = &self.orders[slot as usize];
                        out.extend_from_slice(&o.order_id.to_le_bytes());
                        out.extend_from_slice(&o.account.to_le_bytes());
                        out.extend_from_slice(&o.client_ref.to_le_bytes());
                        out.extend_from_slice(&o.qty.to_le_bytes());
                        slot = o.next;
                    }
                    level_count += 1;
                    at = match side {
                        Side::Buy => at.checked_sub(1).and_then(|i| half.occupied.last_at_or_before(i)),
                        Side::Sell => half.occupied.first_at_or_after(at + 1),
                    }
                    .unwrap_or(NIL);
                }
                out[count_at..count_at + 4].copy_from_slice(&level_count.to_le_bytes());
            }
        }
        for (a, account) in self.accounts.iter().enumerate() {
            out.extend_from_slice(&account.firm.to_le_bytes());
            out.push(stp_byte(account.stp));
            put_limits(out, &account.limits);
            out.push(account.blocked as u8);
            out.push(account.last_client_ref.is_some() as u8);
            out.extend_from_slice(&account.last_client_ref.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&account.rate_window_start_ns.to_le_bytes());
            out.extend_from_slice(&account.rate_window_count.to_le_bytes());
            out.extend_from_slice(&account.open_orders.to_le_bytes());
            for i in 0..self.books.len() {
                let p = &self.positions[a * self.books.len() + i];
                out.extend_from_slice(&p.net_qty.to_le_bytes());
                out.extend_from_slice(&p.open_buy_qty.to_le_bytes());
                out.extend_from_slice(&p.open_sell_qty.to_le_bytes());
            }
        }
    }

    /// A hash of the canonical state: equal hashes mean equal books, orders and accounts.
    pub fn state_hash(&self) -> StateHash {
        let mut bytes = Vec::with_capacity(1024 + self.open_order_count() * 20);
        self.encode_state(&mut bytes);
        StateHash(xxhash_rust::xxh3::xxh3_128(&bytes))
    }

    /// Rebuilds an engine from [`Engine::encode_state`] output. The configuration supplies
    /// capacities and must name the same instruments and accounts; risk limits, STP modes and
    /// firms come from the snapshot, since sequenced commands may have changed them. The result
    /// is checked by re-encoding it: a snapshot that does not reproduce itself is refused.
    pub fn restore(config: &EngineConfig, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let mut engine = Engine::new(config).map_err(|e| SnapshotError::ConfigMismatch(e.to_string()))?;
        let mut r = SnapReader { buf: bytes, at: 0 };
        if r.take(8, "magic")? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(SnapshotError::Version { found: version });
        }
        let instruments = r.u32("instrument count")? as usize;
        let accounts = r.u32("account count")? as usize;
        if instruments != engine.books.len() || accounts != engine.accounts.len() {
            return Err(SnapshotError::ConfigMismatch(format!(
                "snapshot has {instruments} instruments and {accounts} accounts, configuration {} and {}",
                engine.books.len(),
                engine.accounts.len()
            )));
        }
        engine.last_sequence = r.u64("last sequence")?;
        engine.last_timestamp_ns = r.u64("last timestamp")?;
        engine.next_order_id = r.u64("next order id")?;
        engine.next_match_id = r.u64("next match id")?;
        let mut pending: Vec<Order> = Vec::new();
        for i in 0..instruments {
            let symbol = r.take(8, "symbol")?;
            let book = &engine.books[i];
            if symbol != book.symbol.0 {
                return Err(SnapshotError::ConfigMismatch(format!(
                    "instrument #{i} is {:?} in the snapshot but {} in the configuration",
                    String::from_utf8_lossy(symbol),
                    book.symbol
                )));
            }
            let has_reference = r.flag("reference flag")?;
            let reference = r.i64("reference price")?;
            engine.books[i].reference_price = has_reference.then_some(reference);
            for side in [Side::Buy, Side::Sell] {
                let level_count = r.u32("level count")?;
                for _ in 0..level_count {
                    let at = r.at;
                    let price = r.i64("level price")?;
                    let order_count = r.u32("order count")?;
                    let qty_total = r.u64("level quantity")?;
                    let book = &engine.books[i];
                    if price < book.band_min
                        || price > book.band_max
                        || (price - book.band_min) % book.tick_size != 0
                    {
                        return Err(r.inconsistent(
                            at,
                            format!("level price {price} is outside the band or off tick"),
                        ));
                    }
                    let mut sum = 0u64;
                    for _ in 0..order_count {
                        let order_id = r.u64("order id")?;
                        let account = r.u32("order account")?;
                        let client_ref = r.u32("order client ref")?;
                        let qty = r.u32("order quantity")?;
                        if account as usize >= accounts || qty == 0 || order_id >= engine.next_order_id {
                            return Err(r.inconsistent(
                                at,
                                format!("order {order_id} has an invalid account, quantity or id"),
                            ));
                        }
                        sum += qty as u64;
                        pending.push(Order {
                            order_id,
                            price,
                            qty,
                            client_ref,
                            account,
                            prev: NIL,
                            next: NIL,
                            account_prev: NIL,
                            account_next: NIL,
                            instrument: i as u16,
                            side,
                        });
                    }
                    if sum != qty_total || order_count == 0 {
                        return Err(r.inconsistent(
                            at,
                            format!("level {price} totals {qty_total} but its orders sum to {sum}"),
                        ));
                    }
                }
            }
        }
        if pending.len() > engine.orders.len() {
            return Err(SnapshotError::ConfigMismatch(format!(
                "snapshot holds {} open orders, more than max_orders {}",
                pending.len(),
                engine.orders.len()
            )));
        }
        for a in 0..accounts {
            let state = &mut engine.accounts[a];
            state.firm = r.u32("firm")?;
            let at = r.at;
            state.stp = match r.u8("stp mode")? {
                0 => StpMode::None,
                1 => StpMode::CancelNewest,
                2 => StpMode::CancelOldest,
                3 => StpMode::CancelBoth,
                4 => StpMode::DecrementAndCancel,
                v => return Err(r.inconsistent(at, format!("stp mode {v}"))),
            };
            state.limits = RiskLimits {
                max_order_qty: r.u32("limits")?,
                max_order_notional: r.u64("limits")?,
                price_collar_bps: r.u32("limits")?,
                max_open_orders: r.u32("limits")?,
                max_position: r.u64("limits")?,
                max_orders_per_window: r.u32("limits")?,
                rate_window_ns: r.u64("limits")?,
            };
            state.blocked = r.flag("blocked")?;
            let has_ref = r.flag("client ref flag")?;
            let last_ref = r.u32("last client ref")?;
            state.last_client_ref = has_ref.then_some(last_ref);
            state.rate_window_start_ns = r.u64("rate window start")?;
            state.rate_window_count = r.u32("rate window count")?;
            r.u32("open orders")?; // derived: recomputed below and checked by re-encoding
            for i in 0..instruments {
                engine.positions[a * instruments + i].net_qty = r.i64("position")?;
                r.u64("open buy quantity")?;
                r.u64("open sell quantity")?;
            }
        }
        if r.at != bytes.len() {
            return Err(r.inconsistent(r.at, format!("{} trailing bytes", bytes.len() - r.at)));
        }
        // Orders join their levels in queue order (the encoding's order) and their accounts in
        // order-id order, which is the order in which they were entered.
        let mut by_id: Vec<usize> = (0..pending.len()).collect();
        by_id.sort_by_key(|&i| pending[i].order_id);
        let mut slots = vec![NIL; pending.len()];
        for (i, order) in pending.iter().enumerate() {
            if engine.index.get(crate::index::key(order.account, order.client_ref)).is_some() {
                return Err(SnapshotError::Inconsistent {
                    offset: 0,
                    what: format!(
                        "client reference {} of account {} appears twice",
                        order.client_ref, order.account
                    ),
                });
            }
            slots[i] = engine.insert_order(*order);
        }
        for account in engine.accounts.iter_mut() {
            account.orders_head = NIL;
            account.orders_tail = NIL;
        }
        for &i in &by_id {
            let slot = slots[i];
            let account = pending[i].account as usize;
            let tail = engine.accounts[account].orders_tail;
            engine.orders[slot as usize].account_prev = tail;
            engine.orders[slot as usize].account_next = NIL;
            if tail == NIL {
                engine.accounts[account].orders_head = slot;
            } else {
                engine.orders[tail as usize].account_next = slot;
            }
            engine.accounts[account].orders_tail = slot;
        }
        let mut again = Vec::with_capacity(bytes.len());
        engine.encode_state(&mut again);
        if again != bytes {
            let offset =
                again.iter().zip(bytes).position(|(a, b)| a != b).unwrap_or(again.len().min(bytes.len()));
            return Err(SnapshotError::Inconsistent {
                offset,
                what: "derived counters (open orders or open quantities) disagree with the orders".into(),
            });
        }
        Ok(engine)
    }
}

struct SnapReader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> SnapReader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SnapshotError> {
        if self.buf.len() - self.at < n {
            return Err(SnapshotError::Truncated { offset: self.at, what });
        }
        let bytes = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(bytes)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, SnapshotError> {
        Ok(self.take(1, what)?[0])
    }
    fn flag(&mut self, what: &'static str) -> Result<bool, SnapshotError> {
        let at = self.at;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.inconsistent(at, format!("{what} is {v}, expected 0 or 1"))),
        }
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn inconsistent(&self, offset: usize, what: String) -> SnapshotError {
        SnapshotError::Inconsistent { offset, what }
    }
}
