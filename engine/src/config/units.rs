//! Human units as written in the file, converted exactly to the engine's integer units: decimal
//! prices and currency amounts to price units (1/10_000 of the currency unit), and the
//! `"unlimited"` a risk limit may be instead of a number.

use std::fmt;

use petrel_core::Price;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Price units per currency unit: prices carry 4 implied decimals, as OUCH does.
pub const PRICE_UNITS_PER_CURRENCY_UNIT: i64 = 10_000;

/// Why a decimal amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("{0:?} is not a decimal number like \"585.33\"")]
    Syntax(String),
    #[error("{text:?} has {decimals} decimals; amounts have at most 4 (1/10000 of the currency unit)")]
    TooManyDecimals { text: String, decimals: usize },
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Parses a decimal amount in currency units ("585.33", "-0.5", "100") exactly into price units
/// (1/10_000 of the currency unit). More than 4 decimals is an error, never rounded.
pub fn parse_price(text: &str) -> Result<Price, DecimalError> {
    let syntax = || DecimalError::Syntax(text.to_owned());
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || (digits.contains('.') && fraction.is_empty())
    {
        return Err(syntax());
    }
    if fraction.len() > 4 {
        return Err(DecimalError::TooManyDecimals { text: text.to_owned(), decimals: fraction.len() });
    }
    let overflow = || DecimalError::Overflow(text.to_owned());
    let whole: i64 = whole.parse().map_err(|_| overflow())?;
    let mut fraction_units: i64 =
        if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| syntax())? };
    for _ in fraction.len()..4 {
        fraction_units *= 10;
    }
    let units = whole
        .checked_mul(PRICE_UNITS_PER_CURRENCY_UNIT)
        .and_then(|w| w.checked_add(fraction_units))
        .ok_or_else(overflow)?;
    Ok(if negative { -units } else { units })
}

/// Formats price units as a decimal amount with all 4 decimals: `5853300` -> `"585.3300"`.
pub fn format_price(price: Price) -> String {
    let sign = if price < 0 { "-" } else { "" };
    let abs = price.unsigned_abs();
    let unit = PRICE_UNITS_PER_CURRENCY_UNIT as u64;
    format!("{sign}{}.{:04}", abs / unit, abs % unit)
}

/// A price or currency amount as written in the file: a decimal string ("585.33") or an
/// integer (whole currency units). Floats are refused: most decimal prices have no exact binary
/// float, and a config file is no place to round money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Decimal4(pub(super) i64);

impl<'de> Deserialize<'de> for Decimal4 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DecimalVisitor).map(Decimal4)
    }
}

struct DecimalVisitor;

impl Visitor<'_> for DecimalVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal amount as a string, like \"585.33\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        parse_price(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        v.checked_mul(PRICE_UNITS_PER_CURRENCY_UNIT).ok_or_else(|| E::custom(format!("{v} is too large")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large"))).and_then(|v| self.visit_i64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        Err(E::custom(format!(
            "write amounts as decimal strings, e.g. \"{v}\": a float cannot hold most prices exactly"
        )))
    }
}

/// A risk limit: a value, or the string "unlimited".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Limit<T> {
    Unlimited,
    Value(T),
}

/// What a risk limit's number may be, and how it is written.
pub(super) trait LimitValue: Sized {
    const EXPECTING: &'static str;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_text(_text: &str) -> Option<Result<Self, String>> {
        None
    }
}

impl LimitValue for u32 {
    const EXPECTING: &'static str = "a whole number (at most 4294967295) or \"unlimited\"";
    fn from_u64(v: u64) -> Option<u32> {
        u32::try_from(v).ok()
    }
}

impl LimitValue for u64 {
    const EXPECTING: &'static str = "a whole number or \"unlimited\"";
    fn from_u64(v: u64) -> Option<u64> {
        Some(v)
    }
}

/// A currency amount (for notional limits), in price units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Money(pub(super) u64);

impl LimitValue for Money {
    const EXPECTING: &'static str =
        "an amount in currency units as a decimal string, like \"250000.00\", or \"unlimited\"";
    fn from_u64(v: u64) -> Option<Money> {
        v.checked_mul(PRICE_UNITS_PER_CURRENCY_UNIT as u64).map(Money)
    }
    fn from_text(text: &str) -> Option<Result<Money, String>> {
        Some(match parse_price(text) {
            Ok(units) if units >= 0 => Ok(Money(units as u64)),
            Ok(_) => Err(format!("{text:?} is negative")),
            Err(e) => Err(e.to_string()),
        })
    }
}

impl<'de, T: LimitValue> Deserialize<'de> for Limit<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LimitVisitor(std::marker::PhantomData))
    }
}

struct LimitVisitor<T>(std::marker::PhantomData<T>);

impl<T: LimitValue> Visitor<'_> for LimitVisitor<T> {
    type Value = Limit<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Limit<T>, E> {
        if v == "unlimited" {
            return Ok(Limit::Unlimited);
        }
        match T::from_text(v) {
            Some(parsed) => parsed.map(Limit::Value).map_err(E::custom),
            None => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Limit<T>, E> {
        T::from_u64(v).map(Limit::Value).ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit<T>, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_convert_exactly_and_refuse_extra_decimals() {
        assert_eq!(parse_price("585.33"), Ok(5_853_300));
        assert_eq!(parse_price("0.0001"), Ok(1));
        assert_eq!(parse_price("100"), Ok(1_000_000));
        assert_eq!(parse_price("-1.5"), Ok(-15_000));
        assert_eq!(
            parse_price("1.23456"),
            Err(DecimalError::TooManyDecimals { text: "1.23456".into(), decimals: 5 })
        );
        for bad in ["", ".5", "5.", "1,5", "1e3", "+1", "1.2.3", " 1"] {
            assert!(matches!(parse_price(bad), Err(DecimalError::Syntax(_))), "{bad:?}");
        }
        assert!(matches!(parse_price("9999999999999999"), Err(DecimalError::Overflow(_))));
        assert_eq!(format_price(5_853_300), "585.3300");
        assert_eq!(format_price(-15_000), "-1.5000");
        assert_eq!(format_price(1), "0.0001");
    }
}
