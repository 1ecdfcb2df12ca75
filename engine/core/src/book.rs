//! The book of one instrument: a price level per tick of its band on each side, each level a
//! FIFO queue of resting orders in time priority.
//!
//! The queues run through the order arena (each order links its neighbours); a level holds only
//! the ends, the total quantity and the count. Which levels are occupied is a [`LevelSet`], so
//! finding the next best level once one empties is bounded whatever the band's width.

use alloc::vec;
use alloc::vec::Vec;

use crate::arena::{Order, OrderArena, NIL};
use crate::config::InstrumentConfig;
use crate::divisor::ExactDivisor;
use crate::levelset::LevelSet;
use crate::types::{Price, Qty, Side, Symbol};

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

    /// The next worse occupied level after `at` on `side`, or NIL.
    #[inline]
    pub(crate) fn next_level(&self, side: Side, at: u32) -> u32 {
        let found = match side {
            Side::Buy => at.checked_sub(1).and_then(|i| self.occupied.last_at_or_before(i)),
            Side::Sell => self.occupied.first_at_or_after(at + 1),
        };
        found.unwrap_or(NIL)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Book {
    pub(crate) symbol: Symbol,
    pub(crate) tick_size: Price,
    /// Division by the tick and by the lot without a divide instruction.
    pub(crate) tick: ExactDivisor,
    pub(crate) lot: ExactDivisor,
    pub(crate) band_min: Price,
    pub(crate) band_max: Price,
    pub(crate) bids: HalfBook,
    pub(crate) asks: HalfBook,
    /// Last trade price, or the configured reference before the first trade.
    pub(crate) reference_price: Option<Price>,
}

impl Book {
    pub(crate) fn new(config: &InstrumentConfig) -> Book {
        let levels = config.level_count() as u32;
        Book {
            symbol: config.symbol,
            tick_size: config.tick_size,
            tick: ExactDivisor::new(config.tick_size as u64),
            lot: ExactDivisor::new(config.lot_size as u64),
            band_min: config.price_band_min,
            band_max: config.price_band_max,
            bids: HalfBook::new(levels),
            asks: HalfBook::new(levels),
            reference_price: config.reference_price,
        }
    }

    /// The level of a price on the book's grid (inside the band, on the tick).
    #[inline]
    pub(crate) fn level_index(&self, price: Price) -> u32 {
        debug_assert!(self.in_band(price));
        self.tick.quotient_of_multiple((price - self.band_min) as u64) as u32
    }

    #[inline]
    pub(crate) fn level_price(&self, index: u32) -> Price {
        self.band_min + index as Price * self.tick_size
    }

    /// Whether `price` is one of this book's levels: inside the band and on the tick grid.
    pub(crate) fn has_level(&self, price: Price) -> bool {
        self.in_band(price) && self.tick.divides((price - self.band_min) as u64)
    }

    #[inline]
    pub(crate) fn in_band(&self, price: Price) -> bool {
        price >= self.band_min && price <= self.band_max
    }

    /// Whether `price` is a whole number of ticks. The band's ends are, so inside the band this
    /// is a question about the distance from its floor, which needs no divide.
    #[inline]
    pub(crate) fn on_tick(&self, price: Price) -> bool {
        if self.in_band(price) {
            self.tick.divides((price - self.band_min) as u64)
        } else {
            price % self.tick_size == 0
        }
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

    /// The best price on `side` and the total quantity resting there.
    pub(crate) fn best_level(&self, side: Side) -> Option<(Price, u64)> {
        let half = self.half(side);
        (half.best != NIL).then(|| (self.level_price(half.best), half.levels[half.best as usize].qty_total))
    }

    /// Whether an order at `price` on `side` would execute against the opposite best on entry.
    #[inline]
    pub(crate) fn crosses(&self, side: Side, price: Price) -> bool {
        self.best_price(side.opposite()).is_some_and(|best| price_acceptable(side, best, price))
    }

    /// Appends `order`, just stored in `slot`, to the back of its level's queue. The caller
    /// passes the order it stored rather than have it read back at once.
    pub(crate) fn push_back(&mut self, orders: &mut OrderArena, slot: u32, order: &Order) {
        let at = self.level_index(order.price);
        let half = self.half_mut(order.side);
        let level = &mut half.levels[at as usize];
        let prev_tail = level.tail;
        level.tail = slot;
        if prev_tail == NIL {
            level.head = slot;
        } else {
            orders[prev_tail].next = slot;
        }
        orders[slot].prev = prev_tail;
        level.qty_total += order.qty as u64;
        level.order_count += 1;
        if level.order_count == 1 {
            half.occupied.insert(at);
            if half.best == NIL || better(order.side, at, half.best) {
                half.best = at;
            }
        }
    }

    /// Takes `qty` off the total of the level the order in `slot` rests at; the order's own
    /// quantity is the caller's to change.
    pub(crate) fn reduce_level(&mut self, orders: &OrderArena, slot: u32, qty: Qty) {
        let order = &orders[slot];
        let at = self.level_index(order.price);
        self.half_mut(order.side).levels[at as usize].qty_total -= qty as u64;
    }

    /// Unlinks the order in `slot` from its level's queue, emptying the level if it was the
    /// last. The level's total must already exclude the order's quantity.
    pub(crate) fn unlink(&mut self, orders: &mut OrderArena, slot: u32) {
        let order = orders[slot];
        let at = self.level_index(order.price);
        let half = self.half_mut(order.side);
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
                half.best = half.next_level(order.side, at);
            }
        }
        if order.prev != NIL {
            orders[order.prev].next = order.next;
        }
        if order.next != NIL {
            orders[order.next].prev = order.prev;
        }
    }
}

/// Whether a resting price is acceptable to an incoming order with this limit.
#[inline]
pub(crate) fn price_acceptable(taker_side: Side, resting_price: Price, limit_price: Price) -> bool {
    match taker_side {
        Side::Buy => resting_price <= limit_price,
        Side::Sell => resting_price >= limit_price,
    }
}

/// Whether level `a` is better than level `b` on `side`.
#[inline]
fn better(side: Side, a: u32, b: u32) -> bool {
    match side {
        Side::Buy => a > b,
        Side::Sell => a < b,
    }
}
