//! Appendages: the optional TagValue elements after a message's fixed fields. Decoding
//! validates every element once so iterating later cannot fail; encoding writes the elements
//! and the Appendage Length field in front of them.

use super::decode::DecodeError;
use super::fields::{Firm, Price, Route};
use crate::wire::{is_printable, Alpha, EncodeError, Rd, Wr};

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

/// Checks a message with `fixed_bytes` before its appendage (the last two of which are the
/// Appendage Length) and returns the validated appendage.
pub(super) fn appendage_after<'a>(
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

/// Writes the Appendage Length field and the appendage after it.
pub(super) fn write_appendage(w: &mut Wr<'_>, a: &Appendage<'_>) -> Result<(), EncodeError> {
    let len = u16::try_from(a.0.len()).map_err(|_| EncodeError::FieldTooLong {
        field: "appendage",
        len_bytes: a.0.len(),
        max_bytes: usize::from(u16::MAX),
    })?;
    w.u16(len);
    w.bytes(a.0);
    Ok(())
}
