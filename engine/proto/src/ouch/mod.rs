//! Nasdaq OUCH 5.0 messages: zero-copy decoders with strict validation and encoders into a
//! caller buffer. All integers are big-endian; alpha fields are left-justified, space padded.
//! Byte layouts and their sources are in `engine/proto/SPEC-NOTES.md`.
//!
//! Offsets in errors count from the message-type byte (offset 0), as the spec's tables do.
//!
//! Callers name everything through this module (`ouch::Side`, `ouch::tag::FIRM`); the files
//! below it are the layout, not part of the API:
//! - `fields`: shared field types (symbol, ClOrdID, firm, route, price);
//! - `codes`: coded fields (side, time in force, display, capacity, reasons, event codes);
//! - `decode`: the decode error and the validating field readers both directions use;
//! - `appendage`: TagValue elements after the fixed fields, their tags and validation;
//! - `inbound`: client-to-server messages, decoder and encoder;
//! - `outbound`: server-to-client messages, encoder and decoder.

mod appendage;
mod codes;
mod decode;
mod fields;
mod inbound;
mod outbound;

pub use appendage::{tag, Appendage, AppendageError, AppendageIter, TagValue};
pub use codes::{
    BrokenTradeReason, CancelReason, Capacity, CrossType, Display, EventCode, IntermarketSweep,
    LiquidityFlag, OrderState, RejectReason, RestatedReason, Side, TimeInForce, TradeCorrectionReason,
};
pub use decode::DecodeError;
pub use fields::{ClOrdId, Firm, Price, Route, Symbol};
pub use inbound::{
    inbound_type, CancelOrder, EnterOrder, Inbound, MassCancel, ModifyOrder, ReplaceOrder,
    ACCOUNT_QUERY_BYTES, CANCEL_ORDER_BYTES, ENTER_ORDER_FIXED_BYTES, MASS_CANCEL_FIXED_BYTES,
    MODIFY_ORDER_BYTES, REPLACE_ORDER_FIXED_BYTES,
};
pub use outbound::{
    outbound_type, AccountQueryResponse, AiqCanceled, BrokenTrade, MassCancelResponse, OrderAccepted,
    OrderCanceled, OrderExecuted, OrderModified, OrderPriorityUpdate, OrderRejected, OrderReplaced,
    OrderRestated, Outbound, SystemEvent, TimestampNs, TradeCorrection, ACCOUNT_QUERY_RESPONSE_BYTES,
    AIQ_CANCELED_BYTES, BROKEN_TRADE_BYTES, CANCEL_PENDING_BYTES, CANCEL_REJECT_BYTES,
    MASS_CANCEL_RESPONSE_FIXED_BYTES, ORDER_ACCEPTED_FIXED_BYTES, ORDER_CANCELED_BYTES,
    ORDER_EXECUTED_FIXED_BYTES, ORDER_MODIFIED_BYTES, ORDER_PRIORITY_UPDATE_BYTES, ORDER_REJECTED_BYTES,
    ORDER_REPLACED_FIXED_BYTES, ORDER_RESTATED_FIXED_BYTES, SYSTEM_EVENT_BYTES, TRADE_CORRECTION_BYTES,
};
