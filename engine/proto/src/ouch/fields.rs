//! Field types both message directions share: the fixed-width alpha identifiers and the
//! price with its implied decimals.

use crate::wire::Alpha;

pub type Symbol = Alpha<8>;
pub type ClOrdId = Alpha<14>;
pub type Firm = Alpha<4>;
pub type Route = Alpha<4>;

/// Prices carry 4 implied decimal places: `Price(1_234_500)` is 123.45.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(pub u64);

impl Price {
    pub const SCALE: u64 = 10_000;
}
