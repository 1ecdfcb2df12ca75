//! Liquibook's performance-test workload: adds only, into a few deep price levels.
//!
//! Orders alternate buy and sell; buys are priced 1880 to 1889 ticks, sells 1884 to 1893, so the
//! two sides overlap by six ticks and about half of the orders execute on entry while the rest
//! rest; quantities are 100 to 1,000 in hundreds. With millions of orders, millions stay live in
//! some fourteen levels: the order arena and the order index, not the price levels, are what the
//! core walks (cache misses, not comparisons).

use petrel_core::*;

use crate::bench_config::{ACCOUNTS, TICK};
use crate::rng::Rng;

/// The lowest buy and the lowest sell price, in ticks, and how many prices each side spans.
const BUY_LOW_TICKS: i64 = 1_880;
const SELL_LOW_TICKS: i64 = 1_884;
const PRICES_PER_SIDE: u64 = 10;

/// `commands` new limit orders (Day), alternating buy and sell, from `ACCOUNTS` accounts in
/// turn. Run it on `bench_config(commands as u32)`: every order could rest.
pub fn deep_queues_mix(commands: usize, seed: u64) -> Vec<Command> {
    let mut rng = Rng::new(seed);
    let mut next_ref = vec![0u32; ACCOUNTS as usize];
    (0..commands)
        .map(|i| {
            let account = (i as u32) % ACCOUNTS;
            next_ref[account as usize] += 1;
            let (side, low) =
                if i % 2 == 0 { (Side::Buy, BUY_LOW_TICKS) } else { (Side::Sell, SELL_LOW_TICKS) };
            Command::NewOrder(NewOrder {
                account: AccountId(account),
                client_ref: ClientRef(next_ref[account as usize]),
                instrument: InstrumentId(0),
                side,
                order_type: OrderType::Limit,
                tif: TimeInForce::Day,
                price: (low + rng.below(PRICES_PER_SIDE) as i64) * TICK,
                qty: 100 * (1 + rng.below(10) as Qty),
                min_qty: 0,
                post_only: false,
            })
        })
        .collect()
}
