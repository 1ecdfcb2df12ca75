//! Outbound messages (server to client, carried in SoupBinTCP Sequenced Data): their layouts,
//! the encoder the gateway runs on every report, and the decoder a client or replay checker uses.

use super::appendage::{appendage_after, write_appendage, Appendage};
use super::codes::{
    BrokenTradeReason, CancelReason, Capacity, CrossType, Display, EventCode, IntermarketSweep,
    LiquidityFlag, OrderState, RejectReason, RestatedReason, Side, TimeInForce, TradeCorrectionReason,
};
use super::decode::{alpha, code, fixed_len, printable, DecodeError};
use super::fields::{ClOrdId, Firm, Price, Symbol};
use crate::wire::{is_printable, EncodeError, Rd, Wr};

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
            Self::OrderAccepted(m) => ORDER_ACCEPTED_FIXED_BYTES + m.appendage.as_bytes().len(),
            Self::OrderReplaced(m) => ORDER_REPLACED_FIXED_BYTES + m.appendage.as_bytes().len(),
            Self::OrderCanceled(_) => ORDER_CANCELED_BYTES,
            Self::AiqCanceled(_) => AIQ_CANCELED_BYTES,
            Self::OrderExecuted(m) => ORDER_EXECUTED_FIXED_BYTES + m.appendage.as_bytes().len(),
            Self::BrokenTrade(_) => BROKEN_TRADE_BYTES,
            Self::TradeCorrection(_) => TRADE_CORRECTION_BYTES,
            Self::OrderRejected(_) => ORDER_REJECTED_BYTES,
            Self::CancelPending { .. } => CANCEL_PENDING_BYTES,
            Self::CancelReject { .. } => CANCEL_REJECT_BYTES,
            Self::OrderPriorityUpdate(_) => ORDER_PRIORITY_UPDATE_BYTES,
            Self::OrderModified(_) => ORDER_MODIFIED_BYTES,
            Self::OrderRestated(m) => ORDER_RESTATED_FIXED_BYTES + m.appendage.as_bytes().len(),
            Self::MassCancelResponse(m) => MASS_CANCEL_RESPONSE_FIXED_BYTES + m.appendage.as_bytes().len(),
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
