//! The canonical encoding of the whole engine state, its hash, and restoring from it.
//!
//! The encoding lists, in a fixed order, every book (levels best first, orders in time
//! priority), every account (limits, flags, counters, positions) and the engine's counters. It
//! names orders by their order ids, never by arena slots, so two engines that processed the same
//! commands encode identically whatever their capacities. It is both the snapshot format and the
//! input of [`Engine::state_hash`].
//!
//! The one place that reads every part of the engine at once (books and orders, risk state,
//! counters); it writes them only while restoring, into an engine fresh from `Engine::new`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};
use core::fmt;

use crate::arena::{Order, NIL};
use crate::book::Book;
use crate::config::{EngineConfig, RiskLimits};
use crate::engine::Engine;
use crate::types::{Side, StpMode};
use thiserror::Error;

const MAGIC: &[u8; 8] = b"PTRLSTAT";
/// The state encoding's version (inside a snapshot file, whose own version must change with it).
pub const STATE_ENCODING_VERSION: u32 = 1;
const VERSION: u32 = STATE_ENCODING_VERSION;

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

impl StateHash {
    /// The hash of a state as [`Engine::encode_state`] wrote it (a snapshot's payload): what
    /// [`Engine::state_hash`] returns for that engine.
    pub fn of_encoded(bytes: &[u8]) -> StateHash {
        StateHash(xxhash_rust::xxh3::xxh3_128(bytes))
    }
}

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
        out.extend_from_slice(&(self.books.books().len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.risk.account_count() as u32).to_le_bytes());
        let counters =
            [self.last_sequence, self.last_timestamp_ns, self.next_order_id, self.matcher.next_match_id];
        for v in counters {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for book in self.books.books() {
            out.extend_from_slice(&book.symbol.0);
            out.push(book.reference_price.is_some() as u8);
            out.extend_from_slice(&book.reference_price.unwrap_or(0).to_le_bytes());
            for side in [Side::Buy, Side::Sell] {
                self.encode_side(book, side, out);
            }
        }
        for account in 0..self.risk.account_count() as u32 {
            self.encode_account(account, out);
        }
    }

    /// One side of a book: its level count, then each level best first with its orders in time
    /// priority.
    fn encode_side(&self, book: &Book, side: Side, out: &mut Vec<u8>) {
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
                let o = self.books.order(slot);
                out.extend_from_slice(&o.order_id.to_le_bytes());
                out.extend_from_slice(&o.account.to_le_bytes());
                out.extend_from_slice(&o.client_ref.to_le_bytes());
                out.extend_from_slice(&o.qty.to_le_bytes());
                slot = o.next;
            }
            level_count += 1;
            at = half.next_level(side, at);
        }
        out[count_at..count_at + 4].copy_from_slice(&level_count.to_le_bytes());
    }

    /// One account: its risk state, its open-order count, and per instrument its net position
    /// and open quantities.
    fn encode_account(&self, a: u32, out: &mut Vec<u8>) {
        let account = self.risk.account(a).expect("encoding accounts in range");
        out.extend_from_slice(&account.firm.to_le_bytes());
        out.push(stp_byte(account.stp));
        put_limits(out, &account.limits);
        out.push(account.blocked as u8);
        out.push(account.last_client_ref.is_some() as u8);
        out.extend_from_slice(&account.last_client_ref.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&account.rate_window_start_ns.to_le_bytes());
        out.extend_from_slice(&account.rate_window_count.to_le_bytes());
        out.extend_from_slice(&self.books.account(a).count.to_le_bytes());
        for i in 0..self.books.books().len() as u16 {
            let open = self.books.open_qty(a, i);
            out.extend_from_slice(&self.risk.net_qty(a, i).to_le_bytes());
            out.extend_from_slice(&open.buy.to_le_bytes());
            out.extend_from_slice(&open.sell.to_le_bytes());
        }
    }

    /// A hash of the canonical state: equal hashes mean equal books, orders and accounts.
    pub fn state_hash(&self) -> StateHash {
        let mut bytes = Vec::with_capacity(1024 + self.open_order_count() * 20);
        self.encode_state(&mut bytes);
        StateHash::of_encoded(&bytes)
    }

    /// Rebuilds an engine from [`Engine::encode_state`] output. The configuration supplies
    /// capacities and must name the same instruments and accounts; risk limits, STP modes and
    /// firms come from the snapshot, since sequenced commands may have changed them. The result
    /// is checked by re-encoding it: a snapshot that does not reproduce itself is refused.
    pub fn restore(config: &EngineConfig, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let mut engine = Engine::new(config).map_err(|e| SnapshotError::ConfigMismatch(e.to_string()))?;
        let mut r = SnapReader { buf: bytes, at: 0 };
        engine.read_header(&mut r)?;
        let mut pending: Vec<Order> = Vec::new();
        for i in 0..engine.books.books().len() as u16 {
            engine.read_book(&mut r, i, &mut pending)?;
        }
        if pending.len() > engine.books.capacity() {
            return Err(SnapshotError::ConfigMismatch(format!(
                "snapshot holds {} open orders, more than max_orders {}",
                pending.len(),
                engine.books.capacity()
            )));
        }
        for a in 0..engine.risk.account_count() as u32 {
            engine.read_account(&mut r, a)?;
        }
        if r.at != bytes.len() {
            return Err(r.inconsistent(r.at, format!("{} trailing bytes", bytes.len() - r.at)));
        }
        engine.rest_restored(&pending)?;
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

    fn read_header(&mut self, r: &mut SnapReader<'_>) -> Result<(), SnapshotError> {
        if r.take(8, "magic")? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(SnapshotError::Version { found: version });
        }
        let instruments = r.u32("instrument count")? as usize;
        let accounts = r.u32("account count")? as usize;
        if instruments != self.books.books().len() || accounts != self.risk.account_count() {
            return Err(SnapshotError::ConfigMismatch(format!(
                "snapshot has {instruments} instruments and {accounts} accounts, configuration {} and {}",
                self.books.books().len(),
                self.risk.account_count()
            )));
        }
        self.last_sequence = r.u64("last sequence")?;
        self.last_timestamp_ns = r.u64("last timestamp")?;
        self.next_order_id = r.u64("next order id")?;
        self.matcher.next_match_id = r.u64("next match id")?;
        Ok(())
    }

    /// Reads instrument `i`'s book: its reference price here, its orders into `pending`.
    fn read_book(
        &mut self,
        r: &mut SnapReader<'_>,
        i: u16,
        pending: &mut Vec<Order>,
    ) -> Result<(), SnapshotError> {
        let symbol = r.take(8, "symbol")?;
        let book = self.books.book(i);
        if symbol != book.symbol.0 {
            return Err(SnapshotError::ConfigMismatch(format!(
                "instrument #{i} is {:?} in the snapshot but {} in the configuration",
                String::from_utf8_lossy(symbol),
                book.symbol
            )));
        }
        let has_reference = r.flag("reference flag")?;
        let reference = r.i64("reference price")?;
        self.books.book_mut(i).reference_price = has_reference.then_some(reference);
        for side in [Side::Buy, Side::Sell] {
            let level_count = r.u32("level count")?;
            for _ in 0..level_count {
                self.read_level(r, i, side, pending)?;
            }
        }
        Ok(())
    }

    fn read_level(
        &self,
        r: &mut SnapReader<'_>,
        instrument: u16,
        side: Side,
        pending: &mut Vec<Order>,
    ) -> Result<(), SnapshotError> {
        let at = r.at;
        let price = r.i64("level price")?;
        let order_count = r.u32("order count")?;
        let qty_total = r.u64("level quantity")?;
        if !self.books.book(instrument).has_level(price) {
            return Err(r.inconsistent(at, format!("level price {price} is outside the band or off tick")));
        }
        let mut sum = 0u64;
        for _ in 0..order_count {
            let order_id = r.u64("order id")?;
            let account = r.u32("order account")?;
            let client_ref = r.u32("order client ref")?;
            let qty = r.u32("order quantity")?;
            if account as usize >= self.risk.account_count() || qty == 0 || order_id >= self.next_order_id {
                return Err(
                    r.inconsistent(at, format!("order {order_id} has an invalid account, quantity or id"))
                );
            }
            sum += qty as u64;
            pending.push(Order {
                order_id,
                price,
                qty,
                client_ref,
                account,
                instrument,
                side,
                ..Order::FREE
            });
        }
        if sum != qty_total || order_count == 0 {
            return Err(
                r.inconsistent(at, format!("level {price} totals {qty_total} but its orders sum to {sum}"))
            );
        }
        Ok(())
    }

    fn read_account(&mut self, r: &mut SnapReader<'_>, a: u32) -> Result<(), SnapshotError> {
        let state = self.risk.account_mut(a);
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
        for i in 0..self.books.books().len() as u16 {
            self.risk.set_net_qty(a, i, r.i64("position")?);
            r.u64("open buy quantity")?;
            r.u64("open sell quantity")?;
        }
        Ok(())
    }

    /// Rests the snapshot's orders. They join their levels in queue order (the encoding's
    /// order) and their accounts in order-id order, which is the order in which they were
    /// entered.
    fn rest_restored(&mut self, pending: &[Order]) -> Result<(), SnapshotError> {
        let mut by_id: Vec<usize> = (0..pending.len()).collect();
        by_id.sort_by_key(|&i| pending[i].order_id);
        let mut slots = vec![NIL; pending.len()];
        for (i, order) in pending.iter().enumerate() {
            if self.books.find(order.account, order.client_ref).is_some() {
                return Err(SnapshotError::Inconsistent {
                    offset: 0,
                    what: format!(
                        "client reference {} of account {} appears twice",
                        order.client_ref, order.account
                    ),
                });
            }
            slots[i] = self.books.insert(*order);
        }
        self.books.relink_accounts(by_id.iter().map(|&i| slots[i]));
        Ok(())
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
