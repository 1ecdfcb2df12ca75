//! Nasdaq OUCH 5.0 messages: zero-copy decoders with strict validation and encoders into a
//! caller buffer. All integers are big-endian; alpha fields are left-justified, space padded.
//! Byte layouts and their sources are in `engine/proto/SPEC-NOTES.md`.
//!
//! Offsets in errors count from the message-type byte (offset 0), as the spec's tables do.

use crate::wire::{is_printable, Alpha, EncodeError, Rd, Wr};

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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A message that is not valid OUCH 5.0. The offending session gets a reject or is dropped;
/// the message names the message type, field and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty OUCH message (no type byte)")]
    Empty,
    #[error("unknown {direction} OUCH message type 0x{msg_type:02x}")]
    UnknownType { direction: &'static str, msg_type: u8 },
    #[error("{msg}: expected {expected_bytes} bytes, got {actual_bytes}")]
    WrongLength { msg: &'static str, expected_bytes: usize, actual_bytes: usize },
    #[error("{msg}: at least {min_bytes} bytes needed, got {actual_bytes}")]
    TooShort { msg: &'static str, min_bytes: usize, actual_bytes: usize },
    #[error("{msg}: appendage length field says {declared_bytes} bytes but {actual_bytes} follow")]
    AppendageLength { msg: &'static str, declared_bytes: usize, actual_bytes: usize },
    #[error("{msg}: field {field} at offset {offset} has invalid value 0x{value:02x}")]
    InvalidField { msg: &'static str, field: &'static str, offset: usize, value: u8 },
    #[error("{msg}: appendage element at offset {offset}: {error}")]
    Appendage { msg: &'static str, offset: usize, error: AppendageError },
}

/// A malformed TagValue element inside an appendage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendageError {
    #[error("element length byte is 0 (it must count at least the tag byte)")]
    ZeroLength,
    #[error("element needs {needed_bytes} bytes but only {available_bytes} remain")]
    Overrun { needed_bytes: usize, available_bytes: usize },
    #[error("tag {tag} carries {actual_bytes} value bytes, the spec says {expected_bytes}")]
    WrongValueLength { tag: u8, expected_bytes: usize, actual_bytes: usize },
    #[error("tag {tag} value is not printable ASCII")]
    NotPrintable { tag: u8 },
}

// ---------------------------------------------------------------------------------------------
// Appendages (TagValue elements)
// ---------------------------------------------------------------------------------------------

/// Appendage tags. Numbers 1-23 are confirmed against a generated dissector of the spec;
/// see SPEC-NOTES.md for 24-28.
pub mod tag {
    pub const SECONDARY_ORD_REF_NUM: u8 = 1;
    pub const FIRM: u8 = 2;
    pub const MIN_QTY: u8 = 3;
    pub const CUSTOMER_TYPE: u8 = 4;
    pub const MAX_FLOOR: u8 = 5;
    pub const PRICE_TYPE: u8 = 6;
    pub const PEG_OFFSET: u8 = 7;
    pub const DISCRETION_PRICE: u8 = 9;
    pub const DISCRETION_PRICE_TYPE: u8 = 10;
    pub const DISCRETION_PEG_OFFSET: u8 = 11;
    pub const POST_ONLY: u8 = 12;
    pub const RANDOM_RESERVES: u8 = 13;
    pub const ROUTE: u8 = 14;
    pub const EXPIRE_TIME: u8 = 15;
    pub const TRADE_NOW: u8 = 16;
    pub const HANDLE_INST: u8 = 17;
    pub const BBO_WEIGHT_INDICATOR: u8 = 18;
    pub const REFERENCE_PRICE: u8 = 19;
    pub const REFERENCE_PRICE_TYPE: u8 = 20;
    pub const DISPLAY_QUANTITY: u8 = 22;
    pub const DISPLAY_PRICE: u8 = 23;
    pub const GROUP_ID: u8 = 24;
    pub const SHARES_LOCATED: u8 = 25;
    pub const LOCATE_BROKER: u8 = 26;
    pub const SIDE: u8 = 27;
    pub const USER_REF_IDX: u8 = 28;
}

/// One appendage element. Single-character options keep their byte (validated printable):
/// the set of codes per option varies between Nasdaq markets, and the engine decides which
/// it supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagValue<'a> {
    SecondaryOrdRefNum(u64),
    Firm(Firm),
    MinQty(u32),
    CustomerType(u8),
    MaxFloor(u32),
    PriceType(u8),
    PegOffset(i32),
    DiscretionPrice(Price),
    DiscretionPriceType(u8),
    DiscretionPegOffset(i32),
    PostOnly(u8),
    RandomReserves(u32),
    Route(Route),
    ExpireTimeSeconds(u32),
    TradeNow(u8),
    HandleInst(u8),
    BboWeightIndicator(u8),
    ReferencePrice(Price),
    ReferencePriceType(u8),
    DisplayQuantity(u32),
    DisplayPrice(Price),
    GroupId(u16),
    SharesLocated(u8),
    LocateBroker(Alpha<4>),
    Side(u8),
    UserRefIdx(u8),
    /// A tag this codec does not know: passed up so the gateway can reject the order with a
    /// clear reason instead of silently ignoring an instruction the client relies on.
    Unknown {
        tag: u8,
        value: &'a [u8],
    },
}

impl<'a> TagValue<'a> {
    pub fn tag(&self) -> u8 {
        use TagValue as T;
        match self {
            T::SecondaryOrdRefNum(_) => tag::SECONDARY_ORD_REF_NUM,
            T::Firm(_) => tag::FIRM,
            T::MinQty(_) => tag::MIN_QTY,
            T::CustomerType(_) => tag::CUSTOMER_TYPE,
            T::MaxFloor(_) => tag::MAX_FLOOR,
            T::PriceType(_) => tag::PRICE_TYPE,
            T::PegOffset(_) => tag::PEG_OFFSET,
            T::DiscretionPrice(_) => tag::DISCRETION_PRICE,
            T::DiscretionPriceType(_) => tag::DISCRETION_PRICE_TYPE,
            T::DiscretionPegOffset(_) => tag::DISCRETION_PEG_OFFSET,
            T::PostOnly(_) => tag::POST_ONLY,
            T::RandomReserves(_) => tag::RANDOM_RESERVES,
            T::Route(_) => tag::ROUTE,
            T::ExpireTimeSeconds(_) => tag::EXPIRE_TIME,
            T::TradeNow(_) => tag::TRADE_NOW,
            T::HandleInst(_) => tag::HANDLE_INST,
            T::BboWeightIndicator(_) => tag::BBO_WEIGHT_INDICATOR,
            T::ReferencePrice(_) => tag::REFERENCE_PRICE,
            T::ReferencePriceType(_) => tag::REFERENCE_PRICE_TYPE,
            T::DisplayQuantity(_) => tag::DISPLAY_QUANTITY,
            T::DisplayPrice(_) => tag::DISPLAY_PRICE,
            T::GroupId(_) => tag::GROUP_ID,
            T::SharesLocated(_) => tag::SHARES_LOCATED,
            T::LocateBroker(_) => tag::LOCATE_BROKER,
            T::Side(_) => tag::SIDE,
            T::UserRefIdx(_) => tag::USER_REF_IDX,
            T::Unknown { tag, .. } => *tag,
        }
    }

    /// Value bytes a known tag must carry; `None` for unknown tags.
    pub fn value_bytes_for(tag: u8) -> Option<usize> {
        Some(match tag {
            tag::SECONDARY_ORD_REF_NUM
            | tag::DISCRETION_PRICE
            | tag::REFERENCE_PRICE
            | tag::DISPLAY_PRICE => 8,
            tag::FIRM
            | tag::MIN_QTY
            | tag::MAX_FLOOR
            | tag::PEG_OFFSET
            | tag::DISCRETION_PEG_OFFSET
            | tag::RANDOM_RESERVES
            | tag::ROUTE
            | tag::EXPIRE_TIME
            | tag::DISPLAY_QUANTITY
            | tag::LOCATE_BROKER => 4,
            tag::GROUP_ID => 2,
            tag::CUSTOMER_TYPE
            | tag::PRICE_TYPE
            | tag::DISCRETION_PRICE_TYPE
            | tag::POST_ONLY
            | tag::TRADE_NOW
            | tag::HANDLE_INST
            | tag::BBO_WEIGHT_INDICATOR
            | tag::REFERENCE_PRICE_TYPE
            | tag::SHARES_LOCATED
            | tag::SIDE
            | tag::USER_REF_IDX => 1,
            _ => return None,
        })
    }

    fn value_len(&self) -> usize {
        match self {
            Self::Unknown { value, .. } => value.len(),
            known => Self::value_bytes_for(known.tag()).unwrap_or(0),
        }
    }

    /// Bytes this element occupies on the wire: length byte, tag byte, value.
    pub fn wire_len(&self) -> usize {
        2 + self.value_len()
    }

    /// Decodes the value of a known tag whose length was already checked.
    fn from_parts(tag: u8, value: &'a [u8]) -> Result<Self, AppendageError> {
        let mut rd = Rd::new(value, 0);
        let ch = |v: u8| {
            if is_printable(v) {
                Ok(v)
            } else {
                Err(AppendageError::NotPrintable { tag })
            }
        };
        let alpha4 = |raw: [u8; 4]| Alpha::from_wire(raw).ok_or(AppendageError::NotPrintable { tag });
        Ok(match tag {
            tag::SECONDARY_ORD_REF_NUM => Self::SecondaryOrdRefNum(rd.u64()),
            tag::FIRM => Self::Firm(alpha4(rd.array())?),
            tag::MIN_QTY => Self::MinQty(rd.u32()),
            tag::CUSTOMER_TYPE => Self::CustomerType(ch(rd.u8())?),
            tag::MAX_FLOOR => Self::MaxFloor(rd.u32()),
            tag::PRICE_TYPE => Self::PriceType(ch(rd.u8())?),
            tag::PEG_OFFSET => Self::PegOffset(rd.i32()),
            tag::DISCRETION_PRICE => Self::DiscretionPrice(Price(rd.u64())),
            tag::DISCRETION_PRICE_TYPE => Self::DiscretionPriceType(ch(rd.u8())?),
            tag::DISCRETION_PEG_OFFSET => Self::DiscretionPegOffset(rd.i32()),
            tag::POST_ONLY => Self::PostOnly(ch(rd.u8())?),
            tag::RANDOM_RESERVES => Self::RandomReserves(rd.u32()),
            tag::ROUTE => Self::Route(alpha4(rd.array())?),
            tag::EXPIRE_TIME => Self::ExpireTimeSeconds(rd.u32()),
            tag::TRADE_NOW => Self::TradeNow(ch(rd.u8())?),
            tag::HANDLE_INST => Self::HandleInst(ch(rd.u8())?),
            tag::BBO_WEIGHT_INDICATOR => Self::BboWeightIndicator(ch(rd.u8())?),
            tag::REFERENCE_PRICE => Self::ReferencePrice(Price(rd.u64())),
            tag::REFERENCE_PRICE_TYPE => Self::ReferencePriceType(ch(rd.u8())?),
            tag::DISPLAY_QUANTITY => Self::DisplayQuantity(rd.u32()),
            tag::DISPLAY_PRICE => Self::DisplayPrice(Price(rd.u64())),
            tag::GROUP_ID => Self::GroupId(rd.u16()),
            tag::SHARES_LOCATED => Self::SharesLocated(ch(rd.u8())?),
            tag::LOCATE_BROKER => Self::LocateBroker(alpha4(rd.array())?),
            tag::SIDE => Self::Side(ch(rd.u8())?),
            tag::USER_REF_IDX => Self::UserRefIdx(rd.u8()),
            _ => Self::Unknown { tag, value },
        })
    }

    fn write(&self, w: &mut Wr<'_>) -> Result<(), EncodeError> {
        let len = u8::try_from(1 + self.value_len()).map_err(|_| EncodeError::FieldTooLong {
            field: "appendage element",
            len_bytes: 1 + self.value_len(),
            max_bytes: usize::from(u8::MAX),
        })?;
        w.u8(len);
        w.u8(self.tag());
        match *self {
            Self::SecondaryOrdRefNum(v) => w.u64(v),
            Self::Firm(v) | Self::Route(v) | Self::LocateBroker(v) => w.bytes(v.as_wire()),
            Self::MinQty(v)
            | Self::MaxFloor(v)
            | Self::RandomReserves(v)
            | Self::ExpireTimeSeconds(v)
            | Self::DisplayQuantity(v) => w.u32(v),
            Self::PegOffset(v) | Self::DiscretionPegOffset(v) => w.i32(v),
            Self::DiscretionPrice(v) | Self::ReferencePrice(v) | Self::DisplayPrice(v) => w.u64(v.0),
            Self::CustomerType(v)
            | Self::PriceType(v)
            | Self::DiscretionPriceType(v)
            | Self::PostOnly(v)
            | Self::TradeNow(v)
            | Self::HandleInst(v)
            | Self::BboWeightIndicator(v)
            | Self::ReferencePriceType(v)
            | Self::SharesLocated(v)
            | Self::Side(v)
            | Self::UserRefIdx(v) => w.u8(v),
            Self::GroupId(v) => w.u16(v),
            Self::Unknown { value, .. } => w.bytes(value),
        }
        Ok(())
    }
}

/// A validated appendage: the bytes after the Appendage Length field. Iterating re-reads the
/// validated bytes, so it cannot fail.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Appendage<'a>(&'a [u8]);

impl std::fmt::Debug for Appendage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Appendage<'a> {
    pub const EMPTY: Appendage<'static> = Appendage(&[]);

    /// Validates every element; `Err` carries the offset within the appendage.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, (usize, AppendageError)> {
        let mut pos = 0;
        while pos < bytes.len() {
            let len = usize::from(bytes[pos]);
            if len == 0 {
                return Err((pos, AppendageError::ZeroLength));
            }
            let available_bytes = bytes.len() - pos - 1;
            if len > available_bytes {
                return Err((pos, AppendageError::Overrun { needed_bytes: len, available_bytes }));
            }
            let tag = bytes[pos + 1];
            let value = &bytes[pos + 2..pos + 1 + len];
            if let Some(expected_bytes) = TagValue::value_bytes_for(tag) {
                if value.len() != expected_bytes {
                    return Err((
                        pos,
                        AppendageError::WrongValueLength { tag, expected_bytes, actual_bytes: value.len() },
                    ));
                }
            }
            TagValue::from_parts(tag, value).map_err(|e| (pos, e))?;
            pos += 1 + len;
        }
        Ok(Self(bytes))
    }

    /// Writes `elements` into `buf` and returns the appendage view over what was written.
    pub fn encode<'b>(buf: &'b mut [u8], elements: &[TagValue<'_>]) -> Result<Appendage<'b>, EncodeError> {
        let total: usize = elements.iter().map(TagValue::wire_len).sum();
        if total > usize::from(u16::MAX) {
            return Err(EncodeError::FieldTooLong {
                field: "appendage",
                len_bytes: total,
                max_bytes: usize::from(u16::MAX),
            });
        }
        let mut w = Wr::new(buf, total)?;
        for e in elements {
            if let TagValue::Unknown { tag, .. } = e {
                // An Unknown must not smuggle a known tag with a value of the wrong width.
                if TagValue::value_bytes_for(*tag).is_some() {
                    return Err(EncodeError::FieldNotPrintable { field: "appendage unknown tag" });
                }
            }
            e.write(&mut w)?;
        }
        let written = w.pos;
        Ok(Appendage(&buf[..written]))
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> AppendageIter<'a> {
        AppendageIter { rest: self.0 }
    }

    /// The first element with `tag`, if any.
    pub fn find(&self, tag: u8) -> Option<TagValue<'a>> {
        self.iter().find(|e| e.tag() == tag)
    }
}

pub struct AppendageIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for AppendageIter<'a> {
    type Item = TagValue<'a>;
    fn next(&mut self) -> Option<TagValue<'a>> {
        let (&len, tail) = self.rest.split_first()?;
        let len = usize::from(len);
        // Invariant from `Appendage::parse`: every element is complete and well-formed.
        let element = tail.get(..len)?;
        self.rest = &tail[len..];
        TagValue::from_parts(element[0], &element[1..]).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Decode helpers
// ---------------------------------------------------------------------------------------------

fn fixed_len(b: &[u8], msg: &'static str, expected_bytes: usize) -> Result<(), DecodeError> {
    if b.len() == expected_bytes {
        Ok(())
    } else {
        Err(DecodeError::WrongLength { msg, expected_bytes, actual_bytes: b.len() })
    }
}

/// Checks a message with `fixed_bytes` before its appendage (the last two of which are the
/// Appendage Length) and returns the validated appendage.
fn appendage_after<'a>(
    b: &'a [u8],
    msg: &'static str,
    fixed_bytes: usize,
) -> Result<Appendage<'a>, DecodeError> {
    if b.len() < fixed_bytes {
        return Err(DecodeError::TooShort { msg, min_bytes: fixed_bytes, actual_bytes: b.len() });
    }
    let declared_bytes = usize::from(u16::from_be_bytes([b[fixed_bytes - 2], b[fixed_bytes - 1]]));
    let rest = &b[fixed_bytes..];
    if rest.len() != declared_bytes {
        return Err(DecodeError::AppendageLength { msg, declared_bytes, actual_bytes: rest.len() });
    }
    Appendage::parse(rest).map_err(|(off, error)| DecodeError::Appendage {
        msg,
        offset: fixed_bytes + off,
        error,
    })
}

fn code<T>(
    rd: &mut Rd<'_>,
    msg: &'static str,
    field: &'static str,
    f: fn(u8) -> Option<T>,
) -> Result<T, DecodeError> {
    let offset = rd.pos;
    let value = rd.u8();
    f(value).ok_or(DecodeError::InvalidField { msg, field, offset, value })
}

fn alpha<const N: usize>(
    rd: &mut Rd<'_>,
    msg: &'static str,
    field: &'static str,
) -> Result<Alpha<N>, DecodeError> {
    let offset = rd.pos;
    let raw: [u8; N] = rd.array();
    Alpha::from_wire(raw).ok_or_else(|| {
        let (i, value) =
            raw.iter().enumerate().find(|(_, b)| !is_printable(**b)).map_or((0, 0), |(i, b)| (i, *b));
        DecodeError::InvalidField { msg, field, offset: offset + i, value }
    })
}

fn printable(rd: &mut Rd<'_>, msg: &'static str, field: &'static str) -> Result<u8, DecodeError> {
    code(rd, msg, field, |b| is_printable(b).then_some(b))
}

fn write_appendage(w: &mut Wr<'_>, a: &Appendage<'_>) -> Result<(), EncodeError> {
    let len = u16::try_from(a.0.len()).map_err(|_| EncodeError::FieldTooLong {
        field: "appendage",
        len_bytes: a.0.len(),
        max_bytes: usize::from(u16::MAX),
    })?;
    w.u16(len);
    w.bytes(a.0);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Inbound messages (client to server, carried in SoupBinTCP Unsequenced Data)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnterOrder<'a> {
    pub user_ref_num: u32,
    pub side: Side,
    pub quantity: u32,
    pub symbol: Symbol,
    pub price: Price,
    pub time_in_force: TimeInForce,
    pub display: Display,
    pub capacity: Capacity,
    pub intermarket_sweep: IntermarketSweep,
    pub cross_type: CrossType,
    pub cl_ord_id: ClOrdId,
    pub appendage: Appendage<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaceOrder<'a> {
    pub orig_user_ref_num: u32,
    pub user_ref_num: u32,
    pub quantity: u32,
    pub price: Price,
    pub time_in_force: TimeInForce,
    pub display: Display,
    pub intermarket_sweep: IntermarketSweep,
    pub cl_ord_id: ClOrdId,
    pub appendage: Appendage<'a>,
}

/// Cancel Order: `quantity` is the new intended size (0 cancels the whole order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOrder {
    pub user_ref_num: u32,
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModifyOrder {
    pub user_ref_num: u32,
    pub side: Side,
    pub quantity: u32,
}

/// Mass Cancel Request: a blank symbol means every symbol; appendage may narrow by Side,
/// GroupID or UserRefIdx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassCancel<'a> {
    pub user_ref_num: u32,
    pub firm: Firm,
    pub symbol: Symbol,
    pub appendage: Appendage<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    EnterOrder(EnterOrder<'a>),
    ReplaceOrder(ReplaceOrder<'a>),
    CancelOrder(CancelOrder),
    ModifyOrder(ModifyOrder),
    MassCancel(MassCancel<'a>),
    AccountQuery,
}

pub mod inbound_type {
    pub const ENTER_ORDER: u8 = b'O';
    pub const REPLACE_ORDER: u8 = b'U';
    pub const CANCEL_ORDER: u8 = b'X';
    pub const MODIFY_ORDER: u8 = b'M';
    pub const MASS_CANCEL: u8 = b'C';
    pub const ACCOUNT_QUERY: u8 = b'Q';
}

pub const ENTER_ORDER_FIXED_BYTES: usize = 47;
pub const REPLACE_ORDER_FIXED_BYTES: usize = 40;
pub const CANCEL_ORDER_BYTES: usize = 9;
pub const MODIFY_ORDER_BYTES: usize = 10;
pub const MASS_CANCEL_FIXED_BYTES: usize = 19;
pub const ACCOUNT_QUERY_BYTES: usize = 1;

impl<'a> Inbound<'a> {
    /// Decodes one inbound message (the payload of an Unsequenced Data packet).
    pub fn decode(b: &'a [u8]) -> Result<Self, DecodeError> {
        let (&msg_type, _) = b.split_first().ok_or(DecodeError::Empty)?;
        match msg_type {
            inbound_type::ENTER_ORDER => {
                const M: &str = "Enter Order";
                let appendage = appendage_after(b, M, ENTER_ORDER_FIXED_BYTES)?;
                let mut rd = Rd::new(b, 1);
                Ok(Self::EnterOrder(EnterOrder {
                    user_ref_num: rd.u32(),
                    side: code(&mut rd, M, "Side", Side::from_code)?,
                    quantity: rd.u32(),
                    symbol: alpha(&mut rd, M, "Symbol")?,
                    price: Price(rd.u64()),
                    time_in_force: code(&mut rd, M, "TimeInForce", TimeInForce::from_code)?,
                    display: code(&mut rd, M, "Display", Display::from_code)?,
                    capacity: code(&mut rd, M, "Capacity", Capacity::from_code)?,
                    intermarket_sweep: code(
                        &mut rd,
                        M,
                        "InterMarketSweepEligibility",
                        IntermarketSweep::from_code,
                    )?,
                    cross_type: code(&mut rd, M, "CrossType", CrossType::from_code)?,
                    cl_ord_id: alpha(&mut rd, M, "ClOrdID")?,
                    appendage,
                }))
            }
            inbound_type::REPLACE_ORDER => {
                const M: &str = "Replace Order";
                let appendage = appendage_after(b, M, REPLACE_ORDER_FIXED_BYTES)?;
                let mut rd = Rd::new(b, 1);
                Ok(Self::ReplaceOrder(ReplaceOrder {
                    orig_user_ref_num: rd.u32(),
                    user_ref_num: rd.u32(),
                    quantity: rd.u32(),
                    price: Price(rd.u64()),
                    time_in_force: code(&mut rd, M, "TimeInForce", TimeInForce::from_code)?,
                    display: code(&mut rd, M, "Display", Display::from_code)?,
                    intermarket_sweep: code(
                        &mut rd,
                        M,
                        "InterMarketSweepEligibility",
                        IntermarketSweep::from_code,
                    )?,
                    cl_ord_id: alpha(&mut rd, M, "ClOrdID")?,
                    appendage,
                }))
            }
            inbound_type::CANCEL_ORDER => {
                fixed_len(b, "Cancel Order", CANCEL_ORDER_BYTES)?;
                let mut rd = Rd::new(b, 1);
                Ok(Self::CancelOrder(CancelOrder { user_ref_num: rd.u32(), quantity: rd.u32() }))
            }
            inbound_type::MODIFY_ORDER => {
                const M: &str = "Modify Order";
                fixed_len(b, M, MODIFY_ORDER_BYTES)?;
                let mut rd = Rd::new(b, 1);
                Ok(Self::ModifyOrder(ModifyOrder {
                    user_ref_num: rd.u32(),
                    side: code(&mut rd, M, "Side", Side::from_code)?,
                    quantity: rd.u32(),
                }))
            }
            inbound_type::MASS_CANCEL => {
                const M: &str = "Mass Cancel Request";
                let appendage = appendage_after(b, M, MASS_CANCEL_FIXED_BYTES)?;
                let mut rd = Rd::new(b, 1);
                Ok(Self::MassCancel(MassCancel {
                    user_ref_num: rd.u32(),
                    firm: alpha(&mut rd, M, "Firm")?,
                    symbol: alpha(&mut rd, M, "Symbol")?,
                    appendage,
                }))
            }
            inbound_type::ACCOUNT_QUERY => {
                fixed_len(b, "Account Query Request", ACCOUNT_QUERY_BYTES)?;
                Ok(Self::AccountQuery)
            }
            other => Err(DecodeError::UnknownType { direction: "inbound", msg_type: other }),
        }
    }

    /// Encodes the message (what a client sends); returns bytes written.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Self::EnterOrder(m) => {
                let mut w = Wr::new(buf, ENTER_ORDER_FIXED_BYTES + m.appendage.0.len())?;
                w.u8(inbound_type::ENTER_ORDER);
                w.u32(m.user_ref_num);
                w.u8(m.side.code());
                w.u32(m.quantity);
                w.bytes(m.symbol.as_wire());
                w.u64(m.price.0);
                w.u8(m.time_in_force.code());
                w.u8(m.display.code());
                w.u8(m.capacity.code());
                w.u8(m.intermarket_sweep.code());
                w.u8(m.cross_type.code());
                w.bytes(m.cl_ord_id.as_wire());
                write_appendage(&mut w, &m.appendage)?;
                Ok(w.pos)
            }
            Self::ReplaceOrder(m) => {
                let mut w = Wr::new(buf, REPLACE_ORDER_FIXED_BYTES + m.appendage.0.len())?;
                w.u8(inbound_type::REPLACE_ORDER);
                w.u32(m.orig_user_ref_num);
                w.u32(m.user_ref_num);
                w.u32(m.quantity);
                w.u64(m.price.0);
                w.u8(m.time_in_force.code());
                w.u8(m.display.code());
                w.u8(m.intermarket_sweep.code());
                w.bytes(m.cl_ord_id.as_wire());
                write_appendage(&mut w, &m.appendage)?;
                Ok(w.pos)
            }
            Self::CancelOrder(m) => {
                let mut w = Wr::new(buf, CANCEL_ORDER_BYTES)?;
                w.u8(inbound_type::CANCEL_ORDER);
                w.u32(m.user_ref_num);
                w.u32(m.quantity);
                Ok(w.pos)
            }
            Self::ModifyOrder(m) => {
                let mut w = Wr::new(buf, MODIFY_ORDER_BYTES)?;
                w.u8(inbound_type::MODIFY_ORDER);
                w.u32(m.user_ref_num);
                w.u8(m.side.code());
                w.u32(m.quantity);
                Ok(w.pos)
            }
            Self::MassCancel(m) => {
                let mut w = Wr::new(buf, MASS_CANCEL_FIXED_BYTES + m.appendage.0.len())?;
                w.u8(inbound_type::MASS_CANCEL);
                w.u32(m.user_ref_num);
                w.bytes(m.firm.as_wire());
                w.bytes(m.symbol.as_wire());
                write_appendage(&mut w, &m.appendage)?;
                Ok(w.pos)
            }
            Self::AccountQuery => {
                let mut w = Wr::new(buf, ACCOUNT_QUERY_BYTES)?;
                w.u8(inbound_type::ACCOUNT_QUERY);
                Ok(w.pos)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound messages (server to client, carried in SoupBinTCP Sequenced Data)
// ---------------------------------------------------------------------------------------------

/// Nanoseconds since midnight, as every outbound message's Timestamp field.
pub type TimestampNs = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemEvent {
    pub timestamp_ns: TimestampNs,
    pub event_code: EventCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderAccepted<'a> {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub side: Side,
    pub quantity: u32,
    pub symbol: Symbol,
    pub price: Price,
    pub time_in_force: TimeInForce,
    pub display: Display,
    pub order_reference_number: u64,
    pub capacity: Capacity,
    pub intermarket_sweep: IntermarketSweep,
    pub cross_type: CrossType,
    pub order_state: OrderState,
    pub cl_ord_id: ClOrdId,
    pub appendage: Appendage<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderReplaced<'a> {
    pub timestamp_ns: TimestampNs,
    pub orig_user_ref_num: u32,
    pub user_ref_num: u32,
    pub side: Side,
    pub quantity: u32,
    pub symbol: Symbol,
    pub price: Price,
    pub time_in_force: TimeInForce,
    pub display: Display,
    pub order_reference_number: u64,
    pub capacity: Capacity,
    pub intermarket_sweep: IntermarketSweep,
    pub cross_type: CrossType,
    pub order_state: OrderState,
    pub cl_ord_id: ClOrdId,
    pub appendage: Appendage<'a>,
}

/// Order Canceled: `quantity` is the number of shares just decremented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCanceled {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub quantity: u32,
    pub reason: CancelReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AiqCanceled {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub decrement_shares: u32,
    pub reason: CancelReason,
    pub quantity_prevented_from_trading: u32,
    pub execution_price: Price,
    pub liquidity_flag: LiquidityFlag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderExecuted<'a> {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub quantity: u32,
    pub price: Price,
    pub liquidity_flag: LiquidityFlag,
    pub match_number: u64,
    pub appendage: Appendage<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokenTrade {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub match_number: u64,
    pub reason: BrokenTradeReason,
    pub cl_ord_id: ClOrdId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeCorrection {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub quantity: u32,
    pub price: Price,
    pub liquidity_flag: LiquidityFlag,
    pub match_number: u64,
    pub reason: TradeCorrectionReason,
    pub cl_ord_id: ClOrdId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRejected {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub reason: RejectReason,
    pub cl_ord_id: ClOrdId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderPriorityUpdate {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub price: Price,
    pub display: Display,
    pub order_reference_number: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderModified {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub side: Side,
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRestated<'a> {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub reason: RestatedReason,
    pub appendage: Appendage<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassCancelResponse<'a> {
    pub timestamp_ns: TimestampNs,
    pub user_ref_num: u32,
    pub firm: Firm,
    pub symbol: Symbol,
    pub appendage: Appendage<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountQueryResponse {
    pub timestamp_ns: TimestampNs,
    pub next_user_ref_num: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound<'a> {
    SystemEvent(SystemEvent),
    OrderAccepted(OrderAccepted<'a>),
    OrderReplaced(OrderReplaced<'a>),
    OrderCanceled(OrderCanceled),
    AiqCanceled(AiqCanceled),
    OrderExecuted(OrderExecuted<'a>),
    BrokenTrade(BrokenTrade),
    TradeCorrection(TradeCorrection),
    OrderRejected(OrderRejected),
    /// 'P': `(timestamp_ns, user_ref_num)`.
    CancelPending {
        timestamp_ns: TimestampNs,
        user_ref_num: u32,
    },
    /// 'I': `(timestamp_ns, user_ref_num)`.
    CancelReject {
        timestamp_ns: TimestampNs,
        user_ref_num: u32,
    },
    OrderPriorityUpdate(OrderPriorityUpdate),
    OrderModified(OrderModified),
    OrderRestated(OrderRestated<'a>),
    MassCancelResponse(MassCancelResponse<'a>),
    AccountQueryResponse(AccountQueryResponse),
}

pub mod outbound_type {
    pub const SYSTEM_EVENT: u8 = b'S';
    pub const ORDER_ACCEPTED: u8 = b'A';
    pub const ORDER_REPLACED: u8 = b'U';
    pub const ORDER_CANCELED: u8 = b'C';
    pub const AIQ_CANCELED: u8 = b'D';
    pub const ORDER_EXECUTED: u8 = b'E';
    pub const BROKEN_TRADE: u8 = b'B';
    pub const TRADE_CORRECTION: u8 = b'F';
    pub const ORDER_REJECTED: u8 = b'J';
    pub const CANCEL_PENDING: u8 = b'P';
    pub const CANCEL_REJECT: u8 = b'I';
    pub const ORDER_PRIORITY_UPDATE: u8 = b'T';
    pub const ORDER_MODIFIED: u8 = b'M';
    pub const ORDER_RESTATED: u8 = b'R';
    pub const MASS_CANCEL_RESPONSE: u8 = b'X';
    pub const ACCOUNT_QUERY_RESPONSE: u8 = b'Q';
}

pub const SYSTEM_EVENT_BYTES: usize = 10;
pub const ORDER_ACCEPTED_FIXED_BYTES: usize = 64;
pub const ORDER_REPLACED_FIXED_BYTES: usize = 68;
pub const ORDER_CANCELED_BYTES: usize = 18;
pub const AIQ_CANCELED_BYTES: usize = 31;
pub const ORDER_EXECUTED_FIXED_BYTES: usize = 36;
pub const BROKEN_TRADE_BYTES: usize = 36;
pub const TRADE_CORRECTION_BYTES: usize = 49;
pub const ORDER_REJECTED_BYTES: usize = 29;
pub const CANCEL_PENDING_BYTES: usize = 13;
pub const CANCEL_REJECT_BYTES: usize = 13;
pub const ORDER_PRIORITY_UPDATE_BYTES: usize = 30;
pub const ORDER_MODIFIED_BYTES: usize = 18;
pub const ORDER_RESTATED_FIXED_BYTES: usize = 16;
pub const MASS_CANCEL_RESPONSE_FIXED_BYTES: usize = 27;
pub const ACCOUNT_QUERY_RESPONSE_BYTES: usize = 13;

impl<'a> Outbound<'a> {
    /// Decodes one outbound message (the payload of a Sequenced Data packet); what a client
    /// or a replay checker does.
    pub fn decode(b: &'a [u8]) -> Result<Self, DecodeError> {
        use outbound_type as t;
        let (&msg_type, _) = b.split_first().ok_or(DecodeError::Empty)?;
        let mut rd = Rd::new(b, 1);
        let rd = &mut rd;
        let liq = |rd: &mut Rd<'_>, m| printable(rd, m, "LiquidityFlag").map(LiquidityFlag);
        Ok(match msg_type {
            t::SYSTEM_EVENT => {
                const M: &str = "System Event";
                fixed_len(b, M, SYSTEM_EVENT_BYTES)?;
                Self::SystemEvent(SystemEvent {
                    timestamp_ns: rd.u64(),
                    event_code: code(rd, M, "EventCode", EventCode::from_code)?,
                })
            }
            t::ORDER_ACCEPTED => {
                const M: &str = "Order Accepted";
                let appendage = appendage_after(b, M, ORDER_ACCEPTED_FIXED_BYTES)?;
                Self::OrderAccepted(OrderAccepted {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    side: code(rd, M, "Side", Side::from_code)?,
                    quantity: rd.u32(),
                    symbol: alpha(rd, M, "Symbol")?,
                    price: Price(rd.u64()),
                    time_in_force: code(rd, M, "TimeInForce", TimeInForce::from_code)?,
                    display: code(rd, M, "Display", Display::from_code)?,
                    order_reference_number: rd.u64(),
                    capacity: code(rd, M, "Capacity", Capacity::from_code)?,
                    intermarket_sweep: code(
                        rd,
                        M,
                        "InterMarketSweepEligibility",
                        IntermarketSweep::from_code,
                    )?,
                    cross_type: code(rd, M, "CrossType", CrossType::from_code)?,
                    order_state: code(rd, M, "OrderState", OrderState::from_code)?,
                    cl_ord_id: alpha(rd, M, "ClOrdID")?,
                    appendage,
                })
            }
            t::ORDER_REPLACED => {
                const M: &str = "Order Replaced";
                let appendage = appendage_after(b, M, ORDER_REPLACED_FIXED_BYTES)?;
                Self::OrderReplaced(OrderReplaced {
                    timestamp_ns: rd.u64(),
                    orig_user_ref_num: rd.u32(),
                    user_ref_num: rd.u32(),
                    side: code(rd, M, "Side", Side::from_code)?,
                    quantity: rd.u32(),
                    symbol: alpha(rd, M, "Symbol")?,
                    price: Price(rd.u64()),
                    time_in_force: code(rd, M, "TimeInForce", TimeInForce::from_code)?,
                    display: code(rd, M, "Display", Display::from_code)?,
                    order_reference_number: rd.u64(),
                    capacity: code(rd, M, "Capacity", Capacity::from_code)?,
                    intermarket_sweep: code(
                        rd,
                        M,
                        "InterMarketSweepEligibility",
                        IntermarketSweep::from_code,
                    )?,
                    cross_type: code(rd, M, "CrossType", CrossType::from_code)?,
                    order_state: code(rd, M, "OrderState", OrderState::from_code)?,
                    cl_ord_id: alpha(rd, M, "ClOrdID")?,
                    appendage,
                })
            }
            t::ORDER_CANCELED => {
                const M: &str = "Order Canceled";
                fixed_len(b, M, ORDER_CANCELED_BYTES)?;
                Self::OrderCanceled(OrderCanceled {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    quantity: rd.u32(),
                    reason: code(rd, M, "Reason", CancelReason::from_code)?,
                })
            }
            t::AIQ_CANCELED => {
                const M: &str = "AIQ Canceled";
                fixed_len(b, M, AIQ_CANCELED_BYTES)?;
                Self::AiqCanceled(AiqCanceled {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    decrement_shares: rd.u32(),
                    reason: code(rd, M, "Reason", CancelReason::from_code)?,
                    quantity_prevented_from_trading: rd.u32(),
                    execution_price: Price(rd.u64()),
                    liquidity_flag: liq(rd, M)?,
                })
            }
            t::ORDER_EXECUTED => {
                const M: &str = "Order Executed";
                let appendage = appendage_after(b, M, ORDER_EXECUTED_FIXED_BYTES)?;
                Self::OrderExecuted(OrderExecuted {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    quantity: rd.u32(),
                    price: Price(rd.u64()),
                    liquidity_flag: liq(rd, M)?,
                    match_number: rd.u64(),
                    appendage,
                })
            }
            t::BROKEN_TRADE => {
                const M: &str = "Broken Trade";
                fixed_len(b, M, BROKEN_TRADE_BYTES)?;
                Self::BrokenTrade(BrokenTrade {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    match_number: rd.u64(),
                    reason: code(rd, M, "Reason", BrokenTradeReason::from_code)?,
                    cl_ord_id: alpha(rd, M, "ClOrdID")?,
                })
            }
            t::TRADE_CORRECTION => {
                const M: &str = "Trade Correction";
                fixed_len(b, M, TRADE_CORRECTION_BYTES)?;
                Self::TradeCorrection(TradeCorrection {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    quantity: rd.u32(),
                    price: Price(rd.u64()),
                    liquidity_flag: liq(rd, M)?,
                    match_number: rd.u64(),
                    reason: code(rd, M, "Reason", TradeCorrectionReason::from_code)?,
                    cl_ord_id: alpha(rd, M, "ClOrdID")?,
                })
            }
            t::ORDER_REJECTED => {
                const M: &str = "Order Rejected";
                fixed_len(b, M, ORDER_REJECTED_BYTES)?;
                Self::OrderRejected(OrderRejected {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    reason: RejectReason(rd.u16()),
                    cl_ord_id: alpha(rd, M, "ClOrdID")?,
                })
            }
            t::CANCEL_PENDING => {
                fixed_len(b, "Cancel Pending", CANCEL_PENDING_BYTES)?;
                Self::CancelPending { timestamp_ns: rd.u64(), user_ref_num: rd.u32() }
            }
            t::CANCEL_REJECT => {
                fixed_len(b, "Cancel Reject", CANCEL_REJECT_BYTES)?;
                Self::CancelReject { timestamp_ns: rd.u64(), user_ref_num: rd.u32() }
            }
            t::ORDER_PRIORITY_UPDATE => {
                const M: &str = "Order Priority Update";
                fixed_len(b, M, ORDER_PRIORITY_UPDATE_BYTES)?;
                Self::OrderPriorityUpdate(OrderPriorityUpdate {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    price: Price(rd.u64()),
                    display: code(rd, M, "Display", Display::from_code)?,
                    order_reference_number: rd.u64(),
                })
            }
            t::ORDER_MODIFIED => {
                const M: &str = "Order Modified";
                fixed_len(b, M, ORDER_MODIFIED_BYTES)?;
                Self::OrderModified(OrderModified {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    side: code(rd, M, "Side", Side::from_code)?,
                    quantity: rd.u32(),
                })
            }
            t::ORDER_RESTATED => {
                const M: &str = "Order Restated";
                let appendage = appendage_after(b, M, ORDER_RESTATED_FIXED_BYTES)?;
                Self::OrderRestated(OrderRestated {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    reason: code(rd, M, "Reason", RestatedReason::from_code)?,
                    appendage,
                })
            }
            t::MASS_CANCEL_RESPONSE => {
                const M: &str = "Mass Cancel Response";
                let appendage = appendage_after(b, M, MASS_CANCEL_RESPONSE_FIXED_BYTES)?;
                Self::MassCancelResponse(MassCancelResponse {
                    timestamp_ns: rd.u64(),
                    user_ref_num: rd.u32(),
                    firm: alpha(rd, M, "Firm")?,
                    symbol: alpha(rd, M, "Symbol")?,
                    appendage,
                })
            }
            t::ACCOUNT_QUERY_RESPONSE => {
                fixed_len(b, "Account Query Response", ACCOUNT_QUERY_RESPONSE_BYTES)?;
                Self::AccountQueryResponse(AccountQueryResponse {
                    timestamp_ns: rd.u64(),
                    next_user_ref_num: rd.u32(),
                })
            }
            other => return Err(DecodeError::UnknownType { direction: "outbound", msg_type: other }),
        })
    }

    /// Bytes [`Self::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::SystemEvent(_) => SYSTEM_EVENT_BYTES,
            Self::OrderAccepted(m) => ORDER_ACCEPTED_FIXED_BYTES + m.appendage.0.len(),
            Self::OrderReplaced(m) => ORDER_REPLACED_FIXED_BYTES + m.appendage.0.len(),
            Self::OrderCanceled(_) => ORDER_CANCELED_BYTES,
            Self::AiqCanceled(_) => AIQ_CANCELED_BYTES,
            Self::OrderExecuted(m) => ORDER_EXECUTED_FIXED_BYTES + m.appendage.0.len(),
            Self::BrokenTrade(_) => BROKEN_TRADE_BYTES,
            Self::TradeCorrection(_) => TRADE_CORRECTION_BYTES,
            Self::OrderRejected(_) => ORDER_REJECTED_BYTES,
            Self::CancelPending { .. } => CANCEL_PENDING_BYTES,
            Self::CancelReject { .. } => CANCEL_REJECT_BYTES,
            Self::OrderPriorityUpdate(_) => ORDER_PRIORITY_UPDATE_BYTES,
            Self::OrderModified(_) => ORDER_MODIFIED_BYTES,
            Self::OrderRestated(m) => ORDER_RESTATED_FIXED_BYTES + m.appendage.0.len(),
            Self::MassCancelResponse(m) => MASS_CANCEL_RESPONSE_FIXED_BYTES + m.appendage.0.len(),
            Self::AccountQueryResponse(_) => ACCOUNT_QUERY_RESPONSE_BYTES,
        }
    }

    /// Encodes the message into `buf`, big-endian, byte for byte per the spec; returns bytes
    /// written.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        use outbound_type as t;
        let mut w = Wr::new(buf, self.encoded_len())?;
        match self {
            Self::SystemEvent(m) => {
                w.u8(t::SYSTEM_EVENT);
                w.u64(m.timestamp_ns);
                w.u8(m.event_code.code());
            }
            Self::OrderAccepted(m) => {
                w.u8(t::ORDER_ACCEPTED);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u8(m.side.code());
                w.u32(m.quantity);
                w.bytes(m.symbol.as_wire());
                w.u64(m.price.0);
                w.u8(m.time_in_force.code());
                w.u8(m.display.code());
                w.u64(m.order_reference_number);
                w.u8(m.capacity.code());
                w.u8(m.intermarket_sweep.code());
                w.u8(m.cross_type.code());
                w.u8(m.order_state.code());
                w.bytes(m.cl_ord_id.as_wire());
                write_appendage(&mut w, &m.appendage)?;
            }
            Self::OrderReplaced(m) => {
                w.u8(t::ORDER_REPLACED);
                w.u64(m.timestamp_ns);
                w.u32(m.orig_user_ref_num);
                w.u32(m.user_ref_num);
                w.u8(m.side.code());
                w.u32(m.quantity);
                w.bytes(m.symbol.as_wire());
                w.u64(m.price.0);
                w.u8(m.time_in_force.code());
                w.u8(m.display.code());
                w.u64(m.order_reference_number);
                w.u8(m.capacity.code());
                w.u8(m.intermarket_sweep.code());
                w.u8(m.cross_type.code());
                w.u8(m.order_state.code());
                w.bytes(m.cl_ord_id.as_wire());
                write_appendage(&mut w, &m.appendage)?;
            }
            Self::OrderCanceled(m) => {
                w.u8(t::ORDER_CANCELED);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u32(m.quantity);
                w.u8(m.reason.code());
            }
            Self::AiqCanceled(m) => {
                w.u8(t::AIQ_CANCELED);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u32(m.decrement_shares);
                w.u8(m.reason.code());
                w.u32(m.quantity_prevented_from_trading);
                w.u64(m.execution_price.0);
                w.u8(checked_printable("LiquidityFlag", m.liquidity_flag.0)?);
            }
            Self::OrderExecuted(m) => {
                w.u8(t::ORDER_EXECUTED);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u32(m.quantity);
                w.u64(m.price.0);
                w.u8(checked_printable("LiquidityFlag", m.liquidity_flag.0)?);
                w.u64(m.match_number);
                write_appendage(&mut w, &m.appendage)?;
            }
            Self::BrokenTrade(m) => {
                w.u8(t::BROKEN_TRADE);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u64(m.match_number);
                w.u8(m.reason.code());
                w.bytes(m.cl_ord_id.as_wire());
            }
            Self::TradeCorrection(m) => {
                w.u8(t::TRADE_CORRECTION);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u32(m.quantity);
                w.u64(m.price.0);
                w.u8(checked_printable("LiquidityFlag", m.liquidity_flag.0)?);
                w.u64(m.match_number);
                w.u8(m.reason.code());
                w.bytes(m.cl_ord_id.as_wire());
            }
            Self::OrderRejected(m) => {
                w.u8(t::ORDER_REJECTED);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u16(m.reason.0);
                w.bytes(m.cl_ord_id.as_wire());
            }
            Self::CancelPending { timestamp_ns, user_ref_num } => {
                w.u8(t::CANCEL_PENDING);
                w.u64(*timestamp_ns);
                w.u32(*user_ref_num);
            }
            Self::CancelReject { timestamp_ns, user_ref_num } => {
                w.u8(t::CANCEL_REJECT);
                w.u64(*timestamp_ns);
                w.u32(*user_ref_num);
            }
            Self::OrderPriorityUpdate(m) => {
                w.u8(t::ORDER_PRIORITY_UPDATE);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u64(m.price.0);
                w.u8(m.display.code());
                w.u64(m.order_reference_number);
            }
            Self::OrderModified(m) => {
                w.u8(t::ORDER_MODIFIED);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u8(m.side.code());
                w.u32(m.quantity);
            }
            Self::OrderRestated(m) => {
                w.u8(t::ORDER_RESTATED);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.u8(m.reason.code());
                write_appendage(&mut w, &m.appendage)?;
            }
            Self::MassCancelResponse(m) => {
                w.u8(t::MASS_CANCEL_RESPONSE);
                w.u64(m.timestamp_ns);
                w.u32(m.user_ref_num);
                w.bytes(m.firm.as_wire());
                w.bytes(m.symbol.as_wire());
                write_appendage(&mut w, &m.appendage)?;
            }
            Self::AccountQueryResponse(m) => {
                w.u8(t::ACCOUNT_QUERY_RESPONSE);
                w.u64(m.timestamp_ns);
                w.u32(m.next_user_ref_num);
            }
        }
        debug_assert_eq!(w.pos, self.encoded_len(), "encoded_len disagrees with encode");
        Ok(w.pos)
    }
}

fn checked_printable(field: &'static str, b: u8) -> Result<u8, EncodeError> {
    if is_printable(b) {
        Ok(b)
    } else {
        Err(EncodeError::FieldNotPrintable { field })
    }
}
