//! The exchange-core benchmark mix.

use petrel_core::*;

use crate::bench_config::{bench_config, ACCOUNTS, MID, TICK};
use crate::rng::Rng;
use crate::shadow::Shadow;

/// Resting orders the mix holds the book near.
const TARGET_OPEN: usize = 1_000;
/// Levels each side of the mid a passive order may rest on (~750 levels over both sides).
const HALF_SPREAD_LEVELS: i64 = 375;
const INSTRUMENT: InstrumentId = InstrumentId(0);

/// Statistics of a generated stream, to check it has the intended shape.
#[derive(Clone, Debug, Default)]
pub struct MixStats {
    pub commands: u64,
    pub new_limit: u64,
    pub ioc: u64,
    pub cancels: u64,
    pub replaces: u64,
    pub trading_commands: u64,
    pub open_orders_at_end: usize,
    pub levels_at_end: usize,
}

/// The exchange-core benchmark mix: about 1,000 resting orders over about 750 price levels;
/// 9% new limit orders, 3% IOC, 6% cancels, 82% replaces that move the price; about 6% of
/// commands trade. The stream starts with the orders that build the book to that depth.
pub fn exchange_core_mix(commands: usize, seed: u64) -> (Vec<Command>, MixStats) {
    let config = bench_config(1 << 16);
    let mut shadow = Shadow::new(&config);
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(commands + TARGET_OPEN);
    let mut stats = MixStats::default();
    while shadow.open.len() < TARGET_OPEN {
        let command = resting_order(&mut shadow, &mut rng);
        shadow.apply(command);
        out.push(command);
    }
    for _ in 0..commands {
        let roll = rng.below(100);
        let low_on_orders = shadow.open.len() < TARGET_OPEN * 9 / 10;
        let command = if roll < 9 || low_on_orders || shadow.open.is_empty() {
            stats.new_limit += 1;
            new_limit(&mut shadow, &mut rng)
        } else if roll < 12 {
            stats.ioc += 1;
            ioc(&mut shadow, &mut rng)
        } else if roll < 18 {
            stats.cancels += 1;
            let (account, client_ref, ..) = shadow.open[rng.below(shadow.open.len() as u64) as usize];
            Command::Cancel(Cancel { account, client_ref, qty_remaining: 0 })
        } else {
            stats.replaces += 1;
            replace(&mut shadow, &mut rng)
        };
        if shadow.apply(command) {
            stats.trading_commands += 1;
        }
        out.push(command);
    }
    stats.commands = commands as u64;
    stats.open_orders_at_end = shadow.engine.open_order_count();
    stats.levels_at_end = shadow.engine.depth(INSTRUMENT, Side::Buy, usize::MAX).len()
        + shadow.engine.depth(INSTRUMENT, Side::Sell, usize::MAX).len();
    (out, stats)
}

fn passive_price(rng: &mut Rng, side: Side) -> Price {
    let offset = 1 + rng.below(HALF_SPREAD_LEVELS as u64) as i64;
    match side {
        Side::Buy => MID - offset * TICK,
        Side::Sell => MID + offset * TICK,
    }
}

fn limit_order(
    shadow: &mut Shadow,
    account: u32,
    side: Side,
    tif: TimeInForce,
    price: Price,
    qty: Qty,
) -> Command {
    Command::NewOrder(NewOrder {
        account: AccountId(account),
        client_ref: shadow.new_ref(account),
        instrument: INSTRUMENT,
        side,
        order_type: OrderType::Limit,
        tif,
        price,
        qty,
        min_qty: 0,
        post_only: false,
    })
}

/// A passive order that builds the book.
fn resting_order(shadow: &mut Shadow, rng: &mut Rng) -> Command {
    let account = rng.below(ACCOUNTS as u64) as u32;
    let side = if rng.chance(50) { Side::Buy } else { Side::Sell };
    let price = passive_price(rng, side);
    let qty = 1 + rng.below(100) as Qty;
    limit_order(shadow, account, side, TimeInForce::Day, price, qty)
}

/// A day limit order, passive or (sometimes) at the best opposite price.
fn new_limit(shadow: &mut Shadow, rng: &mut Rng) -> Command {
    let account = rng.below(ACCOUNTS as u64) as u32;
    let side = if rng.chance(50) { Side::Buy } else { Side::Sell };
    // Some new orders are marketable (they take the best price), more of them while the
    // book is above its target depth, which holds it near 1,000 orders.
    let marketable = if shadow.open.len() > TARGET_OPEN { 50 } else { 12 };
    let price = if rng.chance(marketable) {
        // The passive price is drawn even when unused, which keeps each seed's stream as it was.
        let passive = passive_price(rng, side);
        shadow.engine.best(INSTRUMENT, side.opposite()).map_or(passive, |b| b.0)
    } else {
        passive_price(rng, side)
    };
    let qty = 1 + rng.below(100) as Qty;
    limit_order(shadow, account, side, TimeInForce::Day, price, qty)
}

/// An immediate-or-cancel order at the best opposite price.
fn ioc(shadow: &mut Shadow, rng: &mut Rng) -> Command {
    let account = rng.below(ACCOUNTS as u64) as u32;
    let side = if rng.chance(50) { Side::Buy } else { Side::Sell };
    let price = shadow.engine.best(INSTRUMENT, side.opposite()).map_or(MID, |b| b.0);
    let qty = 1 + rng.below(50) as Qty;
    limit_order(shadow, account, side, TimeInForce::Ioc, price, qty)
}

/// A replace of an open order that moves its price a few ticks; moves towards the other side
/// are what trade.
fn replace(shadow: &mut Shadow, rng: &mut Rng) -> Command {
    let (account, client_ref, side, price, qty) = shadow.open[rng.below(shadow.open.len() as u64) as usize];
    let step = 1 + rng.below(4) as i64;
    let toward = rng.chance(50);
    let moved = match (side, toward) {
        (Side::Buy, true) | (Side::Sell, false) => price + step * TICK,
        _ => price - step * TICK,
    };
    let moved = moved.clamp(MID - HALF_SPREAD_LEVELS * 2 * TICK, MID + HALF_SPREAD_LEVELS * 2 * TICK);
    let new_client_ref = shadow.new_ref(account.0);
    Command::Replace(Replace { account, client_ref, new_client_ref, price: moved, qty })
}
