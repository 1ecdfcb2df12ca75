//! The configuration the generated mixes trade on.

use petrel_core::*;

pub const TICK: Price = 100;
pub const MID: Price = 1_000_000; // $100.00
pub const ACCOUNTS: u32 = 100;

/// One instrument with a wide band, `ACCOUNTS` accounts in separate firms, no binding limits.
pub fn bench_config(max_orders: u32) -> EngineConfig {
    EngineConfig {
        instruments: vec![InstrumentConfig {
            symbol: Symbol::new("BENCH").unwrap(),
            tick_size: TICK,
            lot_size: 1,
            price_band_min: TICK,
            price_band_max: 2 * MID,
            reference_price: Some(MID),
        }],
        accounts: (0..ACCOUNTS)
            .map(|firm| AccountConfig { firm, stp: StpMode::None, limits: RiskLimits::UNLIMITED })
            .collect(),
        max_orders,
    }
}
