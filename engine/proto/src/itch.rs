//! Nasdaq TotalView-ITCH 5.0: the order-level market-data messages Petrel publishes (layouts
//! and their sources in `engine/proto/SPEC-NOTES.md`, "TotalView-ITCH 5.0").
//!
//! Every message starts with the same 11 bytes: Message Type (1), Stock Locate (u16), Tracking
//! Number (u16), Timestamp (u48, nanoseconds since midnight). Integers are big-endian; Price(4)
//! is a u32 with four implied decimals; Stock is alpha(8). Encoders write into a caller buffer;
//! the decoder checks the length of each type exactly and every coded byte, and names the
//! message, the field and the offset of what it refuses.

use crate::wire::{is_printable, Alpha, EncodeError, Rd, Wr};

/// The largest ITCH message this module encodes (Trade, 44 bytes): a buffer this long holds
/// any of them.
pub const MESSAGE_BYTES_MAX: usize = 44;

/// The largest timestamp a u48 holds (a day has 8.64e13 ns, well below it).
pub const TIMESTAMP_NS_MAX: u64 = (1 << 48) - 1;

/// Fields every message carries after its type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub stock_locate: u16,
    pub tracking_number: u16,
    /// Nanoseconds since midnight (u48 on the wire).
    pub timestamp_ns: u64,
}

/// System Event codes (`S`, field Event Code).
pub mod event_code {
    pub const START_OF_MESSAGES: u8 = b'O';
    pub const START_OF_SYSTEM_HOURS: u8 = b'S';
    pub const START_OF_MARKET_HOURS: u8 = b'Q';
    pub const END_OF_MARKET_HOURS: u8 = b'M';
    pub const END_OF_SYSTEM_HOURS: u8 = b'E';
    pub const END_OF_MESSAGES: u8 = b'C';
    pub(crate) fn valid(c: u8) -> bool {
        matches!(c, b'O' | b'S' | b'Q' | b'M' | b'E' | b'C')
    }
}

/// Stock Trading Action states (`H`, field Trading State).
pub mod trading_state {
    pub const HALTED: u8 = b'H';
    pub const PAUSED: u8 = b'P';
    pub const QUOTATION_ONLY: u8 = b'Q';
    pub const TRADING: u8 = b'T';
    pub(crate) fn valid(c: u8) -> bool {
        matches!(c, b'H' | b'P' | b'Q' | b'T')
    }
}

/// Stock Directory (`R`, 39 bytes): one per instrument at the start of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockDirectory {
    pub header: Header,
    pub stock: Alpha<8>,
    pub market_category: u8,
    pub financial_status: u8,
    pub round_lot_size: u32,
    pub round_lots_only: u8,
    pub issue_classification: u8,
    pub issue_sub_type: [u8; 2],
    pub authenticity: u8,
    pub short_sale_threshold: u8,
    pub ipo_flag: u8,
    pub luld_reference_price_tier: u8,
    pub etp_flag: u8,
    pub etp_leverage_factor: u32,
    pub inverse_indicator: u8,
}

/// Add Order (`A`, 36 bytes) and, with `attribution`, Add Order with MPID Attribution (`F`, 40).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddOrder {
    pub header: Header,
    pub order_ref: u64,
    /// `B` buy, `S` sell.
    pub side: u8,
    pub shares: u32,
    pub stock: Alpha<8>,
    pub price: u32,
    pub attribution: Option<Alpha<4>>,
}

/// Trade, non-cross (`P`, 44 bytes): an execution against a non-displayed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    pub header: Header,
    pub order_ref: u64,
    pub side: u8,
    pub shares: u32,
    pub stock: Alpha<8>,
    pub price: u32,
    pub match_number: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// `S`, 12 bytes.
    SystemEvent {
        header: Header,
        event_code: u8,
    },
    StockDirectory(StockDirectory),
    /// `H`, 25 bytes.
    StockTradingAction {
        header: Header,
        stock: Alpha<8>,
        trading_state: u8,
        reason: Alpha<4>,
    },
    AddOrder(AddOrder),
    /// `E`, 31 bytes.
    OrderExecuted {
        header: Header,
        order_ref: u64,
        executed_shares: u32,
        match_number: u64,
    },
    /// `C`, 36 bytes: an execution at a price other than the order's.
    OrderExecutedWithPrice {
        header: Header,
        order_ref: u64,
        executed_shares: u32,
        match_number: u64,
        printable: bool,
        execution_price: u32,
    },
    /// `X`, 23 bytes: a partial cancel.
    OrderCancel {
        header: Header,
        order_ref: u64,
        cancelled_shares: u32,
    },
    /// `D`, 19 bytes.
    OrderDelete {
        header: Header,
        order_ref: u64,
    },
    /// `U`, 35 bytes.
    OrderReplace {
        header: Header,
        original_order_ref: u64,
        new_order_ref: u64,
        shares: u32,
        price: u32,
    },
    Trade(Trade),
}

/// A message that is not valid ITCH 5.0 (of the types above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ItchError {
    #[error("empty ITCH message (no type byte)")]
    Empty,
    #[error("unknown or unsupported ITCH message type 0x{msg_type:02x}")]
    UnknownType { msg_type: u8 },
    #[error("{msg}: expected {expected_bytes} bytes, got {actual_bytes}")]
    WrongLength { msg: &'static str, expected_bytes: usize, actual_bytes: usize },
    #[error("{msg}: field {field} at offset {offset} has invalid value 0x{value:02x}")]
    InvalidField { msg: &'static str, field: &'static str, offset: usize, value: u8 },
}

impl Message {
    pub fn header(&self) -> Header {
        match self {
            Message::SystemEvent { header, .. }
            | Message::StockTradingAction { header, .. }
            | Message::OrderExecuted { header, .. }
            | Message::OrderExecutedWithPrice { header, .. }
            | Message::OrderCancel { header, .. }
            | Message::OrderDelete { header, .. }
            | Message::OrderReplace { header, .. } => *header,
            Message::StockDirectory(m) => m.header,
            Message::AddOrder(m) => m.header,
            Message::Trade(m) => m.header,
        }
    }

    /// The type byte and the exact length of this message.
    pub fn type_and_len(&self) -> (u8, usize) {
        match self {
            Message::SystemEvent { .. } => (b'S', 12),
            Message::StockDirectory(_) => (b'R', 39),
            Message::StockTradingAction { .. } => (b'H', 25),
            Message::AddOrder(AddOrder { attribution: None, .. }) => (b'A', 36),
            Message::AddOrder(AddOrder { attribution: Some(_), .. }) => (b'F', 40),
            Message::OrderExecuted { .. } => (b'E', 31),
            Message::OrderExecutedWithPrice { .. } => (b'C', 36),
            Message::OrderCancel { .. } => (b'X', 23),
            Message::OrderDelete { .. } => (b'D', 19),
            Message::OrderReplace { .. } => (b'U', 35),
            Message::Trade(_) => (b'P', 44),
        }
    }

    /// Writes the message at the start of `out`; returns its length. A timestamp above u48 is
    /// written modulo 2^48 (callers pass nanoseconds since midnight, which always fit). One
    /// `match` arm per message type: the accepted exception to the function-length rule.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let (msg_type, len) = self.type_and_len();
        let mut w = Wr::new(out, len)?;
        w.u8(msg_type);
        let h = self.header();
        w.u16(h.stock_locate);
        w.u16(h.tracking_number);
        w.bytes(&(h.timestamp_ns & TIMESTAMP_NS_MAX).to_be_bytes()[2..]);
        match self {
            Message::SystemEvent { event_code, .. } => w.u8(*event_code),
            Message::StockDirectory(d) => {
                w.bytes(d.stock.as_wire());
                w.u8(d.market_category);
                w.u8(d.financial_status);
                w.u32(d.round_lot_size);
                w.u8(d.round_lots_only);
                w.u8(d.issue_classification);
                w.bytes(&d.issue_sub_type);
                w.u8(d.authenticity);
                w.u8(d.short_sale_threshold);
                w.u8(d.ipo_flag);
                w.u8(d.luld_reference_price_tier);
                w.u8(d.etp_flag);
                w.u32(d.etp_leverage_factor);
                w.u8(d.inverse_indicator);
            }
            Message::StockTradingAction { stock, trading_state, reason, .. } => {
                w.bytes(stock.as_wire());
                w.u8(*trading_state);
                w.u8(b' ');
                w.bytes(reason.as_wire());
            }
            Message::AddOrder(a) => {
                w.u64(a.order_ref);
                w.u8(a.side);
                w.u32(a.shares);
                w.bytes(a.stock.as_wire());
                w.u32(a.price);
                if let Some(mpid) = a.attribution {
                    w.bytes(mpid.as_wire());
                }
            }
            Message::OrderExecuted { order_ref, executed_shares, match_number, .. } => {
                w.u64(*order_ref);
                w.u32(*executed_shares);
                w.u64(*match_number);
            }
            Message::OrderExecutedWithPrice {
                order_ref,
                executed_shares,
                match_number,
                printable,
                execution_price,
                ..
            } => {
                w.u64(*order_ref);
                w.u32(*executed_shares);
                w.u64(*match_number);
                w.u8(if *printable { b'Y' } else { b'N' });
                w.u32(*execution_price);
            }
            Message::OrderCancel { order_ref, cancelled_shares, .. } => {
                w.u64(*order_ref);
                w.u32(*cancelled_shares);
            }
            Message::OrderDelete { order_ref, .. } => w.u64(*order_ref),
            Message::OrderReplace { original_order_ref, new_order_ref, shares, price, .. } => {
                w.u64(*original_order_ref);
                w.u64(*new_order_ref);
                w.u32(*shares);
                w.u32(*price);
            }
            Message::Trade(t) => {
                w.u64(t.order_ref);
                w.u8(t.side);
                w.u32(t.shares);
                w.bytes(t.stock.as_wire());
                w.u32(t.price);
                w.u64(t.match_number);
            }
        }
        debug_assert_eq!(w.pos, len, "each arm writes exactly its type's length");
        Ok(len)
    }

    /// Decodes one whole message (a MoldUDP64 message block's bytes). A long `match` over the
    /// message types, the accepted exception to the function-length rule.
    pub fn decode(b: &[u8]) -> Result<Message, ItchError> {
        let &msg_type = b.first().ok_or(ItchError::Empty)?;
        let (msg, len) = match msg_type {
            b'S' => ("System Event", 12),
            b'R' => ("Stock Directory", 39),
            b'H' => ("Stock Trading Action", 25),
            b'A' => ("Add Order", 36),
            b'F' => ("Add Order with MPID Attribution", 40),
            b'E' => ("Order Executed", 31),
            b'C' => ("Order Executed With Price", 36),
            b'X' => ("Order Cancel", 23),
            b'D' => ("Order Delete", 19),
            b'U' => ("Order Replace", 35),
            b'P' => ("Trade", 44),
            _ => return Err(ItchError::UnknownType { msg_type }),
        };
        if b.len() != len {
            return Err(ItchError::WrongLength { msg, expected_bytes: len, actual_bytes: b.len() });
        }
        let mut rd = Rd::new(b, 1);
        let stock_locate = rd.u16();
        let tracking_number = rd.u16();
        let ts: [u8; 6] = rd.array();
        let mut wide = [0u8; 8];
        wide[2..].copy_from_slice(&ts);
        let header = Header { stock_locate, tracking_number, timestamp_ns: u64::from_be_bytes(wide) };
        let mut f = Fields { rd, msg };
        let message = match msg_type {
            b'S' => Message::SystemEvent { header, event_code: f.code("Event Code", event_code::valid)? },
            b'R' => Message::StockDirectory(StockDirectory {
                header,
                stock: f.alpha("Stock")?,
                market_category: f.printable("Market Category")?,
                financial_status: f.printable("Financial Status Indicator")?,
                round_lot_size: f.rd.u32(),
                round_lots_only: f.code("Round Lots Only", |c| matches!(c, b'Y' | b'N'))?,
                issue_classification: f.printable("Issue Classification")?,
                issue_sub_type: f.alpha::<2>("Issue Sub-Type")?.as_wire().to_owned(),
                authenticity: f.code("Authenticity", |c| matches!(c, b'P' | b'T'))?,
                short_sale_threshold: f.printable("Short Sale Threshold Indicator")?,
                ipo_flag: f.printable("IPO Flag")?,
                luld_reference_price_tier: f.printable("LULD Reference Price Tier")?,
                etp_flag: f.printable("ETP Flag")?,
                etp_leverage_factor: f.rd.u32(),
                inverse_indicator: f.printable("Inverse Indicator")?,
            }),
            b'H' => {
                let stock = f.alpha("Stock")?;
                let trading_state = f.code("Trading State", trading_state::valid)?;
                f.printable("Reserved")?;
                Message::StockTradingAction { header, stock, trading_state, reason: f.alpha("Reason")? }
            }
            b'A' | b'F' => Message::AddOrder(AddOrder {
                header,
                order_ref: f.rd.u64(),
                side: f.side()?,
                shares: f.rd.u32(),
                stock: f.alpha("Stock")?,
                price: f.rd.u32(),
                attribution: if msg_type == b'F' { Some(f.alpha("Attribution")?) } else { None },
            }),
            b'E' => Message::OrderExecuted {
                header,
                order_ref: f.rd.u64(),
                executed_shares: f.rd.u32(),
                match_number: f.rd.u64(),
            },
            b'C' => Message::OrderExecutedWithPrice {
                header,
                order_ref: f.rd.u64(),
                executed_shares: f.rd.u32(),
                match_number: f.rd.u64(),
                printable: f.code("Printable", |c| matches!(c, b'Y' | b'N'))? == b'Y',
                execution_price: f.rd.u32(),
            },
            b'X' => Message::OrderCancel { header, order_ref: f.rd.u64(), cancelled_shares: f.rd.u32() },
            b'D' => Message::OrderDelete { header, order_ref: f.rd.u64() },
            b'U' => Message::OrderReplace {
                header,
                original_order_ref: f.rd.u64(),
                new_order_ref: f.rd.u64(),
                shares: f.rd.u32(),
                price: f.rd.u32(),
            },
            _ => Message::Trade(Trade {
                header,
                order_ref: f.rd.u64(),
                side: f.side()?,
                shares: f.rd.u32(),
                stock: f.alpha("Stock")?,
                price: f.rd.u32(),
                match_number: f.rd.u64(),
            }),
        };
        Ok(message)
    }
}

/// Length of the snapshot service's End of Snapshot message.
pub const END_OF_SNAPSHOT_BYTES: usize = 21;

/// End of Snapshot (`G`, 21 bytes: type, then the feed sequence number of the next message to
/// apply from the live feed, numeric(20), right-justified and space-padded as SoupBinTCP's
/// numbers are): the last message of a snapshot for a late joiner, in the shape of Nasdaq
/// GLIMPSE 5.0's (which could not be checked against its specification here, see
/// SPEC-NOTES.md).
pub fn end_of_snapshot(next_sequence: u64) -> [u8; END_OF_SNAPSHOT_BYTES] {
    let mut out = [b' '; END_OF_SNAPSHOT_BYTES];
    out[0] = b'G';
    let digits: [u8; 20] =
        crate::soupbin::write_numeric("sequence_number", next_sequence).expect("a u64 has at most 20 digits");
    out[1..].copy_from_slice(&digits);
    out
}

/// Checking field readers over a message whose length was already checked.
struct Fields<'a> {
    rd: Rd<'a>,
    msg: &'static str,
}

impl Fields<'_> {
    fn code(&mut self, field: &'static str, valid: fn(u8) -> bool) -> Result<u8, ItchError> {
        let offset = self.rd.pos;
        let value = self.rd.u8();
        if valid(value) {
            Ok(value)
        } else {
            Err(ItchError::InvalidField { msg: self.msg, field, offset, value })
        }
    }

    fn printable(&mut self, field: &'static str) -> Result<u8, ItchError> {
        self.code(field, is_printable)
    }

    fn side(&mut self) -> Result<u8, ItchError> {
        self.code("Buy/Sell Indicator", |c| matches!(c, b'B' | b'S'))
    }

    fn alpha<const N: usize>(&mut self, field: &'static str) -> Result<Alpha<N>, ItchError> {
        let offset = self.rd.pos;
        let raw: [u8; N] = self.rd.array();
        Alpha::from_wire(raw).ok_or_else(|| {
            let (i, value) =
                raw.iter().enumerate().find(|(_, b)| !is_printable(**b)).map_or((0, 0), |(i, b)| (i, *b));
            ItchError::InvalidField { msg: self.msg, field, offset: offset + i, value }
        })
    }
}

#[cfg(test)]
mod tests;
