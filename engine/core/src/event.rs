//! Events: the only output of the matching core.
//!
//! Order events (`Accepted`, `Rejected`, `Executed`, `Cancelled`, `Replaced`, ...) go to the
//! owners of the orders; `Book` events are the public changes a market-data feed publishes.
//! An execution is one `Executed` event carrying both sides and their shared match number; it is
//! also the public trade print, and is followed by a `Book(Execute)` for the resting order.

use alloc::vec::Vec;

use crate::command::CommandKind;
use crate::types::{
    AccountId, ClientRef, InstrumentId, MatchId, OrderId, OrderType, Price, Qty, Side, TimeInForce,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Accepted(Accepted),
    Rejected(Rejected),
    Executed(Executed),
    Cancelled(Cancelled),
    Replaced(Replaced),
    /// A mass cancel, disconnect or kill switch finished; `cancelled` orders were cancelled
    /// (each with its own `Cancelled` event before this one).
    MassCancelled {
        account: AccountId,
        cancelled: u32,
        reason: CancelReason,
    },
    /// The kill switch was engaged or released for the account.
    KillSwitch {
        account: AccountId,
        engaged: bool,
    },
    /// New risk limits are in force for the account.
    RiskLimitsSet {
        account: AccountId,
    },
    /// A [`crate::Command::Note`], returned as it came: the core changes nothing for it.
    Noted {
        account: AccountId,
        note: crate::command::Note,
    },
    Book(BookChange),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub account: AccountId,
    pub client_ref: ClientRef,
    pub order_id: OrderId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub order_type: OrderType,
    pub tif: TimeInForce,
    /// The limit price; for a market order, the collar price it may execute to.
    pub price: Price,
    pub qty: Qty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub account: AccountId,
    pub client_ref: ClientRef,
    pub command: CommandKind,
    pub reason: RejectReason,
}

/// One side of an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    pub account: AccountId,
    pub client_ref: ClientRef,
    pub order_id: OrderId,
    /// Open quantity left on this order after the execution.
    pub qty_remaining: Qty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Executed {
    pub match_id: MatchId,
    pub instrument: InstrumentId,
    pub price: Price,
    pub qty: Qty,
    /// The side of the incoming (taking) order.
    pub aggressor: Side,
    /// The resting order: it provided liquidity.
    pub maker: Fill,
    /// The incoming order: it took liquidity.
    pub taker: Fill,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled {
    pub account: AccountId,
    pub client_ref: ClientRef,
    pub order_id: OrderId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub qty_cancelled: Qty,
    pub qty_remaining: Qty,
    pub reason: CancelReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replaced {
    pub account: AccountId,
    pub old_client_ref: ClientRef,
    pub new_client_ref: ClientRef,
    pub old_order_id: OrderId,
    /// Equal to `old_order_id` when time priority was kept.
    pub new_order_id: OrderId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub priority_kept: bool,
}

/// Public changes to a book, in the shape of ITCH's order-level messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookChange {
    /// An order now rests on the book.
    Add { instrument: InstrumentId, order_id: OrderId, side: Side, price: Price, qty: Qty },
    /// A resting order executed `qty` (see the `Executed` event of the same match).
    Execute { instrument: InstrumentId, order_id: OrderId, qty: Qty, price: Price, match_id: MatchId },
    /// A resting order was reduced by `qty` and stays on the book.
    Cancel { instrument: InstrumentId, order_id: OrderId, qty: Qty },
    /// A resting order left the book (cancelled, fully reduced, or replaced with loss of priority
    /// by an order that executed on entry).
    Delete { instrument: InstrumentId, order_id: OrderId },
    /// A resting order was replaced by a new one that rests at the back of its level.
    Replace { instrument: InstrumentId, old_order_id: OrderId, new_order_id: OrderId, price: Price, qty: Qty },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The owner asked (Cancel, or a reduction).
    User,
    /// What an immediate-or-cancel or market order did not execute on entry.
    ImmediateOrCancel,
    /// A fill-or-kill or minimum-quantity order could not execute as required on entry.
    FillOrKill,
    SelfTrade,
    KillSwitch,
    MassCancel,
    Disconnect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    UnknownInstrument,
    UnknownAccount,
    ZeroQuantity,
    PriceNotOnTick,
    QuantityNotOnLot,
    PriceOutOfBand,
    /// The client reference is not above every reference the account used before.
    DuplicateClientRef,
    /// Cancel or replace of an order that does not exist or is no longer open.
    UnknownOrder,
    /// The order arena is full.
    CapacityExhausted,
    /// A cancel that would not reduce the order.
    CancelWouldNotReduce,
    /// Inconsistent order fields: market with post-only, minimum above quantity, post-only IOC...
    InvalidOrder,
    /// A market order with no reference price to bound it.
    NoReferencePrice,
    /// A post-only order that would take liquidity.
    WouldTakeLiquidity,
    AccountBlocked,
    MaxOrderQty,
    MaxOrderNotional,
    PriceCollar,
    MaxOpenOrders,
    MaxPosition,
    RateLimit,
    /// New risk limits that cannot be applied (see `RiskLimits`).
    InvalidRiskLimits,
}

impl RejectReason {
    pub const ALL: [RejectReason; 21] = [
        RejectReason::UnknownInstrument,
        RejectReason::UnknownAccount,
        RejectReason::ZeroQuantity,
        RejectReason::PriceNotOnTick,
        RejectReason::QuantityNotOnLot,
        RejectReason::PriceOutOfBand,
        RejectReason::DuplicateClientRef,
        RejectReason::UnknownOrder,
        RejectReason::CapacityExhausted,
        RejectReason::CancelWouldNotReduce,
        RejectReason::InvalidOrder,
        RejectReason::NoReferencePrice,
        RejectReason::WouldTakeLiquidity,
        RejectReason::AccountBlocked,
        RejectReason::MaxOrderQty,
        RejectReason::MaxOrderNotional,
        RejectReason::PriceCollar,
        RejectReason::MaxOpenOrders,
        RejectReason::MaxPosition,
        RejectReason::RateLimit,
        RejectReason::InvalidRiskLimits,
    ];

    /// A stable snake_case name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownInstrument => "unknown_instrument",
            RejectReason::UnknownAccount => "unknown_account",
            RejectReason::ZeroQuantity => "zero_quantity",
            RejectReason::PriceNotOnTick => "price_not_on_tick",
            RejectReason::QuantityNotOnLot => "quantity_not_on_lot",
            RejectReason::PriceOutOfBand => "price_out_of_band",
            RejectReason::DuplicateClientRef => "duplicate_client_ref",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::CapacityExhausted => "capacity_exhausted",
            RejectReason::CancelWouldNotReduce => "cancel_would_not_reduce",
            RejectReason::InvalidOrder => "invalid_order",
            RejectReason::NoReferencePrice => "no_reference_price",
            RejectReason::WouldTakeLiquidity => "would_take_liquidity",
            RejectReason::AccountBlocked => "account_blocked",
            RejectReason::MaxOrderQty => "max_order_qty",
            RejectReason::MaxOrderNotional => "max_order_notional",
            RejectReason::PriceCollar => "price_collar",
            RejectReason::MaxOpenOrders => "max_open_orders",
            RejectReason::MaxPosition => "max_position",
            RejectReason::RateLimit => "rate_limit",
            RejectReason::InvalidRiskLimits => "invalid_risk_limits",
        }
    }
}

/// Where the core writes its events. The runtime's sink encodes them straight into outbound
/// buffers; tests collect them into a `Vec`. Implementations must not allocate on the hot path.
pub trait EventSink {
    fn emit(&mut self, event: Event);
}

impl EventSink for Vec<Event> {
    fn emit(&mut self, event: Event) {
        self.push(event);
    }
}

/// Counts events without keeping them; for benchmarks.
#[derive(Debug, Default)]
pub struct CountingSink {
    pub events: u64,
    pub executions: u64,
    pub rejects: u64,
}

impl EventSink for CountingSink {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.events += 1;
        match event {
            Event::Executed(_) => self.executions += 1,
            Event::Rejected(_) => self.rejects += 1,
            _ => {}
        }
    }
}
