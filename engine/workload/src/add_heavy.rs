//! A mix that grows a deep book.

use petrel_core::*;

use crate::bench_config::{bench_config, ACCOUNTS, MID, TICK};
use crate::rng::Rng;
use crate::shadow::Shadow;

/// An add-heavy mix: 80% new passive limit orders, 10% marketable, 10% cancels; the book grows
/// to `max_open` orders and then cancels keep it there.
pub fn add_heavy_mix(commands: usize, max_open: usize, seed: u64) -> Vec<Command> {
    let config = bench_config((max_open * 2) as u32);
    let mut shadow = Shadow::new(&config);
    let mut rng = Rng::new(seed);
    let instrument = InstrumentId(0);
    let mut out = Vec::with_capacity(commands);
    for _ in 0..commands {
        let roll = rng.below(100);
        let command = if (roll < 10 || shadow.open.len() >= max_open) && !shadow.open.is_empty() {
            let (account, client_ref, ..) = shadow.open[rng.below(shadow.open.len() as u64) as usize];
            Command::Cancel(Cancel { account, client_ref, qty_remaining: 0 })
        } else {
            let account = rng.below(ACCOUNTS as u64) as u32;
            let side = if rng.chance(50) { Side::Buy } else { Side::Sell };
            let offset = if roll < 20 { -(rng.below(3) as i64) } else { 1 + rng.below(2_000) as i64 };
            let price = match side {
                Side::Buy => MID - offset * TICK,
                Side::Sell => MID + offset * TICK,
            };
            Command::NewOrder(NewOrder {
                account: AccountId(account),
                client_ref: shadow.new_ref(account),
                instrument,
                side,
                order_type: OrderType::Limit,
                tif: TimeInForce::Day,
                price,
                qty: 1 + rng.below(100) as Qty,
                min_qty: 0,
                post_only: false,
            })
        };
        shadow.apply(command);
        out.push(command);
    }
    out
}
