//! `[engine]` and `[[instruments]]`, and the core's own validation (`EngineConfig::validate`)
//! of the finished instruments and accounts, its complaints mapped back to their keys.

use petrel_core::{AccountConfig, EngineConfig, InstrumentConfig, Symbol};

use crate::config::locate::Locator;
use crate::config::locate::Seg::{Index as I, Key as K};
use crate::config::raw::{RawEngine, RawInstrument};
use crate::config::units::format_price;
use crate::config::ConfigFileError;

/// The instruments, in file order (the n-th is `InstrumentId(n)`), prices in price units.
pub(super) fn instruments(
    raw: &[RawInstrument],
    loc: &Locator,
) -> Result<Vec<InstrumentConfig>, ConfigFileError> {
    let mut instruments = Vec::with_capacity(raw.len());
    for (i, inst) in raw.iter().enumerate() {
        let at = |key: &'static str| [K("instruments"), I(i), K(key)];
        let symbol = Symbol::new(&inst.symbol).map_err(|e| loc.error(&at("symbol"), e))?;
        if inst.symbol.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(loc.error(
                &at("symbol"),
                format!("symbol {:?} must be upper case, as OUCH and ITCH carry it", inst.symbol),
            ));
        }
        instruments.push(InstrumentConfig {
            symbol,
            tick_size: inst.tick_size.0,
            lot_size: inst.lot_size,
            price_band_min: inst.price_band_min.0,
            price_band_max: inst.price_band_max.0,
            reference_price: inst.reference_price.map(|p| p.0),
        });
    }
    Ok(instruments)
}

/// The matching core's configuration, as the core itself validates it.
pub(super) fn engine(
    raw: RawEngine,
    instruments: Vec<InstrumentConfig>,
    accounts: Vec<AccountConfig>,
    loc: &Locator,
) -> Result<EngineConfig, ConfigFileError> {
    let engine = EngineConfig { instruments, accounts, max_orders: raw.max_orders };
    engine.validate().map_err(|e| core_error(loc, &engine, e))?;
    Ok(engine)
}

/// Maps an error of `EngineConfig::validate` back to the key in the file.
fn core_error(loc: &Locator, engine: &EngineConfig, e: petrel_core::ConfigError) -> ConfigFileError {
    use petrel_core::ConfigError as C;
    let message = e.to_string();
    match &e {
        C::NoInstruments => {
            loc.error(&[K("instruments")], "no instruments configured; add an [[instruments]] entry")
        }
        C::TooManyInstruments(_) | C::TooManyAccounts(_) => loc.error(
            &[K(if matches!(e, C::TooManyInstruments(_)) { "instruments" } else { "accounts" })],
            message,
        ),
        C::MaxOrders(_) => loc.error(&[K("engine"), K("max_orders")], message),
        C::DuplicateSymbol(symbol) => {
            let i = engine.instruments.iter().rposition(|inst| inst.symbol.as_str() == symbol).unwrap_or(0);
            loc.error(&[K("instruments"), I(i), K("symbol")], message)
        }
        C::Instrument { symbol, what } => {
            let i = engine.instruments.iter().position(|inst| inst.symbol.as_str() == symbol).unwrap_or(0);
            let inst = &engine.instruments[i];
            // The core speaks price units; the file speaks currency units.
            let message = format!(
                "{message} (price units are 1/10000; in this file tick_size = \"{}\", price band \"{}\" ..= \"{}\")",
                format_price(inst.tick_size),
                format_price(inst.price_band_min),
                format_price(inst.price_band_max)
            );
            loc.error(&[K("instruments"), I(i), K(instrument_key(engine, i, what))], message)
        }
        C::Account { index, what } => loc.error(&[K("accounts"), I(*index)], what.to_string()),
    }
}

/// Which key of an instrument an `EngineConfig::validate` complaint is about. The core names the
/// field in its message; the unit test `every_core_instrument_error_maps_to_its_key` keeps the
/// two in step.
fn instrument_key(engine: &EngineConfig, i: usize, what: &str) -> &'static str {
    let inst = &engine.instruments[i];
    if what.starts_with("tick_size") {
        "tick_size"
    } else if what.starts_with("lot_size") {
        "lot_size"
    } else if what.starts_with("reference price") {
        "reference_price"
    } else if what.starts_with("price band")
        && inst.price_band_min > 0
        && inst.tick_size > 0
        && inst.price_band_min % inst.tick_size != 0
    {
        "price_band_min"
    } else if what.starts_with("price band") {
        "price_band_max"
    } else {
        "symbol"
    }
}

#[cfg(test)]
mod tests {
    use petrel_core::Price;

    use super::*;

    fn instrument(tick: Price, min: Price, max: Price, reference: Option<Price>, lot: u32) -> EngineConfig {
        EngineConfig {
            instruments: vec![InstrumentConfig {
                symbol: Symbol::new("X").unwrap(),
                tick_size: tick,
                lot_size: lot,
                price_band_min: min,
                price_band_max: max,
                reference_price: reference,
            }],
            accounts: vec![],
            max_orders: 10,
        }
    }

    #[test]
    fn every_core_instrument_error_maps_to_its_key() {
        let cases = [
            (instrument(0, 100, 200, None, 1), "tick_size"),
            (instrument(100, 100, 200, None, 0), "lot_size"),
            (instrument(100, 150, 200, None, 1), "price_band_min"),
            (instrument(100, 100, 250, None, 1), "price_band_max"),
            (instrument(100, 200, 100, None, 1), "price_band_max"),
            (instrument(1, 1, 1 << 30, None, 1), "price_band_max"),
            (instrument(100, 100, 200, Some(300), 1), "reference_price"),
        ];
        for (config, key) in cases {
            let Err(petrel_core::ConfigError::Instrument { what, .. }) = config.validate() else {
                panic!("expected an instrument error for {config:?}");
            };
            assert_eq!(instrument_key(&config, 0, &what), key, "{what}");
        }
    }
}
