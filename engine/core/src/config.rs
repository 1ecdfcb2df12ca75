//! Engine configuration: instruments, accounts and their risk limits, and capacities.
//!
//! Everything the core allocates is sized from here, once, in [`crate::Engine::new`].

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::types::{Price, Qty, StpMode, Symbol};
use thiserror::Error;

/// Pre-trade risk limits of one account. A limit of zero means "no limit" only where the
/// field says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskLimits {
    /// Largest quantity one order may have.
    pub max_order_qty: Qty,
    /// Largest price × quantity of one order, in price units × shares (price units are
    /// 1/10_000 of the currency unit). Market orders are valued at their collar price.
    pub max_order_notional: u64,
    /// How far an order may price through the reference price, in basis points of it:
    /// buys above `reference × (1 + bps/10_000)` and sells below `reference × (1 - bps/10_000)`
    /// are rejected, and market orders execute no further than that. 0 disables the collar
    /// (market orders are then bounded by the instrument's price band).
    pub price_collar_bps: u32,
    /// Most orders the account may have resting at once, over all instruments.
    pub max_open_orders: u32,
    /// Largest absolute net position per instrument, counted as if every open order on the
    /// same side filled: buys need `position + open buys + qty <= max`, sells likewise.
    pub max_position: u64,
    /// Most new orders and replaces accepted per rate window. 0 disables the rate limit.
    pub max_orders_per_window: u32,
    /// Length of the rate window in sequenced time (the timestamps commands carry), ns.
    pub rate_window_ns: u64,
}

impl RiskLimits {
    /// Limits that never bind; for tests and replays of foreign data.
    pub const UNLIMITED: RiskLimits = RiskLimits {
        max_order_qty: Qty::MAX,
        max_order_notional: u64::MAX,
        price_collar_bps: 0,
        max_open_orders: u32::MAX,
        max_position: i64::MAX as u64,
        max_orders_per_window: 0,
        rate_window_ns: 1,
    };
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentConfig {
    pub symbol: Symbol,
    /// Prices must be multiples of this, in price units.
    pub tick_size: Price,
    /// Quantities must be multiples of this, in shares.
    pub lot_size: Qty,
    /// Lowest and highest price accepted, in price units, inclusive; both multiples of the tick.
    /// The book reserves one level per tick in this band, so it also sizes memory.
    pub price_band_min: Price,
    pub price_band_max: Price,
    /// Reference price for collars until the first trade sets one.
    pub reference_price: Option<Price>,
}

impl InstrumentConfig {
    pub fn level_count(&self) -> u64 {
        ((self.price_band_max - self.price_band_min) / self.tick_size + 1) as u64
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountConfig {
    /// Orders of accounts with the same firm number are subject to self-trade prevention.
    pub firm: u32,
    pub stp: StpMode,
    pub limits: RiskLimits,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    pub instruments: Vec<InstrumentConfig>,
    pub accounts: Vec<AccountConfig>,
    /// Most orders resting at once over all books; the order arena and index are sized by it.
    pub max_orders: u32,
}

/// Largest price band, in levels, that one instrument may reserve (2^24 levels: 16.7M
/// levels, about 400 MiB per side). Larger bands are almost certainly a configuration mistake.
pub const MAX_LEVELS_PER_INSTRUMENT: u64 = 1 << 24;
/// Order capacity is bounded so that arena indices fit in u32 with room for the NIL marker.
pub const MAX_ORDERS: u32 = 1 << 30;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("no instruments configured")]
    NoInstruments,
    #[error("too many instruments: {0} (at most 65535)")]
    TooManyInstruments(usize),
    #[error("too many accounts: {0} (at most 2^31)")]
    TooManyAccounts(usize),
    #[error("instrument {symbol}: {what}")]
    Instrument { symbol: String, what: String },
    #[error("instrument symbol {0} is configured twice")]
    DuplicateSymbol(String),
    #[error("account #{index}: {what}")]
    Account { index: usize, what: String },
    #[error("max_orders must be between 1 and {MAX_ORDERS}, got {0}")]
    MaxOrders(u32),
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.instruments.is_empty() {
            return Err(ConfigError::NoInstruments);
        }
        if self.instruments.len() > u16::MAX as usize {
            return Err(ConfigError::TooManyInstruments(self.instruments.len()));
        }
        if self.accounts.len() > (1usize << 31) {
            return Err(ConfigError::TooManyAccounts(self.accounts.len()));
        }
        if self.max_orders == 0 || self.max_orders > MAX_ORDERS {
            return Err(ConfigError::MaxOrders(self.max_orders));
        }
        for (i, inst) in self.instruments.iter().enumerate() {
            let err = |what: String| ConfigError::Instrument { symbol: inst.symbol.to_string(), what };
            if self.instruments[..i].iter().any(|o| o.symbol == inst.symbol) {
                return Err(ConfigError::DuplicateSymbol(inst.symbol.to_string()));
            }
            if inst.tick_size <= 0 {
                return Err(err(format!("tick_size must be positive, got {}", inst.tick_size)));
            }
            if inst.lot_size == 0 {
                return Err(err("lot_size must be positive".into()));
            }
            if inst.price_band_min <= 0 || inst.price_band_max < inst.price_band_min {
                return Err(err(format!(
                    "price band [{}, {}] must be positive and non-empty",
                    inst.price_band_min, inst.price_band_max
                )));
            }
            if inst.price_band_min % inst.tick_size != 0 || inst.price_band_max % inst.tick_size != 0 {
                return Err(err(format!(
                    "price band [{}, {}] must be multiples of the tick size {}",
                    inst.price_band_min, inst.price_band_max, inst.tick_size
                )));
            }
            if inst.level_count() > MAX_LEVELS_PER_INSTRUMENT {
                return Err(err(format!(
                    "price band holds {} ticks, more than the {} allowed: narrow the band or raise the tick",
                    inst.level_count(),
                    MAX_LEVELS_PER_INSTRUMENT
                )));
            }
            if let Some(reference) = inst.reference_price {
                if reference < inst.price_band_min || reference > inst.price_band_max {
                    return Err(err(format!("reference price {reference} lies outside the price band")));
                }
            }
        }
        for (index, account) in self.accounts.iter().enumerate() {
            validate_limits(&account.limits).map_err(|what| ConfigError::Account { index, what })?;
        }
        Ok(())
    }
}

pub(crate) fn validate_limits(limits: &RiskLimits) -> Result<(), String> {
    if limits.max_orders_per_window > 0 && limits.rate_window_ns == 0 {
        return Err("rate_window_ns must be positive when max_orders_per_window is set".into());
    }
    if limits.max_position > i64::MAX as u64 {
        return Err("max_position must fit in a signed 64-bit position".into());
    }
    Ok(())
}
