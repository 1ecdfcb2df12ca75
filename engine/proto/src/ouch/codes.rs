//! Coded fields: each enum maps its variants to the exact wire byte and back. Codes whose set
//! the spec leaves open or market-specific (liquidity flag, reject reason) are newtypes over the
//! raw value, with named constants for the ones the engine uses.

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$var),+];
            pub fn code(self) -> u8 { match self { $(Self::$var => $code),+ } }
            pub fn from_code(code: u8) -> Option<Self> {
                match code { $($code => Some(Self::$var),)+ _ => None }
            }
        }
    };
}

code_enum!(Side { Buy = b'B', Sell = b'S', SellShort = b'T', SellShortExempt = b'E' });
code_enum!(TimeInForce {
    Day = b'0',
    ImmediateOrCancel = b'3',
    /// GTX: extended hours.
    ExtendedHours = b'5',
    /// GTT: needs an ExpireTime appendage.
    GoodTillTime = b'6',
    AfterHours = b'E',
});
code_enum!(Display {
    Visible = b'Y',
    Hidden = b'N',
    Attributable = b'A',
    PostOnly = b'P',
    ImbalanceOnly = b'I',
    MidpointPeg = b'M',
    MidpointPegPostOnly = b'W',
    PostOnlyAttributable = b'L',
    RetailOrderType1 = b'O',
    RetailOrderType2 = b'T',
    RetailPriceImprovement = b'Q',
    Conformant = b'Z',
    MidpointTradeNow = b'm',
    NonDisplayMidpoint = b'n',
});
code_enum!(Capacity { Agency = b'A', Principal = b'P', Riskless = b'R', Other = b'O' });
code_enum!(CrossType {
    ContinuousMarket = b'N',
    Opening = b'O',
    Closing = b'C',
    HaltIpo = b'H',
    Supplemental = b'S',
    Retail = b'R',
    ExtendedLife = b'E',
    AfterHoursClose = b'A',
});
code_enum!(OrderState { Live = b'L', Dead = b'D' });
code_enum!(EventCode { StartOfDay = b'S', EndOfDay = b'E' });
code_enum!(CancelReason {
    UserRequested = b'U',
    ImmediateOrCancel = b'I',
    Timeout = b'T',
    Supervisory = b'S',
    RegulatoryRestriction = b'D',
    SelfMatchPrevention = b'Q',
    SystemCancel = b'Z',
    CrossCanceled = b'C',
    CannotBeExecuted = b'K',
    Halted = b'H',
    OpenProtection = b'X',
    Closed = b'E',
    PostOnlyCancel = b'F',
    PostOnlyCancelDisplayed = b'G',
});
code_enum!(BrokenTradeReason { Erroneous = b'E', Consent = b'C', Supervisory = b'S', External = b'X' });
code_enum!(RestatedReason { RefreshOfDisplay = b'R', UpdateOfDisplayedPrice = b'P' });
code_enum!(TradeCorrectionReason { AdjustedToNav = b'N' });
code_enum!(IntermarketSweep { Eligible = b'Y', NotEligible = b'N' });

/// Liquidity flag on executions; the spec lists many exchange-specific codes, so the codec
/// keeps the byte (validated printable) and names the ones the engine produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LiquidityFlag(pub u8);

impl LiquidityFlag {
    pub const ADDED: Self = Self(b'A');
    pub const REMOVED: Self = Self(b'R');
}

/// Order Rejected reason: a 2-byte integer code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RejectReason(pub u16);

impl RejectReason {
    pub const QUOTE_UNAVAILABLE: Self = Self(0x01);
    pub const DESTINATION_CLOSED: Self = Self(0x02);
    pub const INVALID_DISPLAY: Self = Self(0x03);
    pub const INVALID_MAX_FLOOR: Self = Self(0x04);
    pub const INVALID_PEG_TYPE: Self = Self(0x05);
    pub const FAT_FINGER: Self = Self(0x06);
    pub const HALTED: Self = Self(0x07);
    pub const ISO_NOT_ALLOWED: Self = Self(0x08);
    pub const INVALID_SIDE: Self = Self(0x09);
    pub const PROCESSING_ERROR: Self = Self(0x0A);
    pub const CANCEL_PENDING: Self = Self(0x0B);
    pub const FIRM_NOT_AUTHORIZED: Self = Self(0x0C);
    pub const INVALID_MIN_QUANTITY: Self = Self(0x0D);
    pub const NO_CLOSING_REFERENCE_PRICE: Self = Self(0x0E);
    pub const OTHER: Self = Self(0x0F);
    pub const CANCEL_NOT_ALLOWED: Self = Self(0x10);
    pub const PEGGING_NOT_ALLOWED: Self = Self(0x11);
    pub const CROSSED_MARKET: Self = Self(0x12);
    pub const INVALID_QUANTITY: Self = Self(0x13);
    pub const INVALID_CROSS_ORDER: Self = Self(0x14);
    pub const REPLACE_NOT_ALLOWED: Self = Self(0x15);
    pub const ROUTING_NOT_ALLOWED: Self = Self(0x16);
    pub const INVALID_SYMBOL: Self = Self(0x17);
    pub const TEST: Self = Self(0x18);
    pub const LATE_LOC_TOO_AGGRESSIVE: Self = Self(0x19);
    pub const RETAIL_NOT_ALLOWED: Self = Self(0x1A);
    pub const INVALID_MIDPOINT_POST_ONLY_PRICE: Self = Self(0x1B);
    pub const INVALID_DESTINATION: Self = Self(0x1C);
    pub const INVALID_PRICE: Self = Self(0x1D);
    pub const SHARES_EXCEED_THRESHOLD: Self = Self(0x1E);
    pub const EXCEEDS_MAXIMUM_NOTIONAL_VALUE: Self = Self(0x1F);
}
