//! Identifiers and small value types shared by commands, events and the book.
//!
//! Prices are integers in *price units*: 1/10_000 of the currency unit, as OUCH carries them
//! (4 implied decimals). Quantities are integers in shares. Neither is ever a float.

use alloc::format;
use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Serialize};

/// A price in price units (1/10_000 of the currency unit).
pub type Price = i64;
/// A quantity in shares.
pub type Qty = u32;

/// Index of an instrument in the engine configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstrumentId(pub u16);

/// Index of an account in the engine configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub u32);

/// The exchange-assigned order number: unique for the life of the engine state, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(pub u64);

/// The match number shared by both sides of one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MatchId(pub u64);

/// The client's reference for an order (OUCH's UserRefNum). Strictly increasing per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientRef(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderType {
    Limit,
    /// Executes against the book up to the price collar; any remainder is cancelled.
    Market,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Rests on the book until cancelled (sessions end with a mass cancel).
    Day,
    /// Immediate or cancel: what does not execute on entry is cancelled.
    Ioc,
    /// Fill or kill: executes in full on entry or is cancelled without executing at all.
    Fok,
}

/// Self-trade prevention, applied when an incoming order would execute against a resting
/// order of the same firm. The incoming order's account decides the mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StpMode {
    /// Self-trades are allowed.
    #[default]
    None,
    /// Cancel the remainder of the incoming order; the resting order stays.
    CancelNewest,
    /// Cancel the resting order and go on matching.
    CancelOldest,
    /// Cancel both the resting order and the remainder of the incoming one.
    CancelBoth,
    /// Reduce both by the smaller quantity without executing; the smaller one ends cancelled.
    DecrementAndCancel,
}

/// An 8-byte, space-padded, upper-case ASCII symbol as OUCH and ITCH carry it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(pub [u8; 8]);

impl Symbol {
    /// Builds a symbol from 1 to 8 printable ASCII characters (no spaces).
    pub fn new(text: &str) -> Result<Symbol, String> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > 8 {
            return Err(format!("symbol {text:?} must be 1 to 8 characters"));
        }
        if !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return Err(format!("symbol {text:?} must be printable ASCII without spaces"));
        }
        let mut raw = [b' '; 8];
        raw[..bytes.len()].copy_from_slice(bytes);
        Ok(Symbol(raw))
    }

    pub fn as_str(&self) -> &str {
        let end = self.0.iter().position(|&b| b == b' ').unwrap_or(8);
        // The constructor admits ASCII only; a raw symbol from the wire may not be.
        core::str::from_utf8(&self.0[..end]).unwrap_or("?")
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
