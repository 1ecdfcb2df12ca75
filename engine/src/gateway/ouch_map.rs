//! Mapping between OUCH 5.0 messages and the core's commands and events. Pure: no sockets,
//! no state, no clock; unit-tested without a gateway.

use petrel_core::{
    self as core, AccountId, CancelReason, ClientRef, Command, CommandKind, InstrumentId, RejectReason,
};
use petrel_proto::ouch::{self, Outbound};

/// Echo fields of an order in flight: OUCH's Accepted and Replaced repeat what the client sent,
/// which the core does not carry. Journaled with the command (`echo.rs`), `rx_ns` aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Echo {
    pub(super) user_ref: u32,
    /// When the packet carrying it was read (gateway clock, ns): wire-to-wire starts here.
    /// [`NOT_RECEIVED_HERE`] for an echo read back from the journal.
    pub(super) rx_ns: u64,
    pub(super) cl_ord_id: ouch::ClOrdId,
    pub(super) display: ouch::Display,
    pub(super) capacity: ouch::Capacity,
    pub(super) time_in_force: ouch::TimeInForce,
}

/// The `rx_ns` of an echo this process did not read from a socket (regenerated from the
/// journal): no latency is measured from it.
pub(super) const NOT_RECEIVED_HERE: u64 = u64::MAX;

/// What a Mass Cancel Response repeats: UserRefNum, Firm, Symbol.
pub(super) type MassCancelEcho = (u32, ouch::Firm, ouch::Symbol);

/// The instruments' OUCH symbols, by instrument index.
pub(super) struct Symbols(Vec<[u8; 8]>);

impl Symbols {
    pub(super) fn new(symbols: Vec<[u8; 8]>) -> Symbols {
        Symbols(symbols)
    }

    /// The instrument of a symbol; an unknown symbol maps to an instrument no book has, which
    /// the core rejects as unknown (sequenced, like every other reject).
    fn instrument(&self, symbol: &ouch::Symbol) -> InstrumentId {
        InstrumentId(self.0.iter().position(|s| s == symbol.as_wire()).map_or(u16::MAX, |i| i as u16))
    }

    fn symbol(&self, instrument: InstrumentId) -> ouch::Symbol {
        ouch::Symbol::from_wire(self.0.get(instrument.0 as usize).copied().unwrap_or([b' '; 8]))
            .unwrap_or_else(|| ouch::Symbol::from_wire([b' '; 8]).expect("blank symbol"))
    }
}

/// What an inbound OUCH message asks of the gateway.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Mapped {
    /// Sequence this command; remember the echo (Enter and Replace) for its answer.
    Submit { command: Command, echo: Option<Echo> },
    /// Sequence this mass cancel; its response repeats these fields.
    MassCancel { command: Command, echo: MassCancelEcho },
    /// Refused before sequencing (a feature Petrel does not offer): Order Rejected.
    Refuse { user_ref: u32, cl_ord_id: ouch::ClOrdId, reason: ouch::RejectReason },
    /// Modify Order: Petrel has no short-sale marking to modify; answered with Cancel Reject.
    ModifyUnsupported { user_ref: u32 },
    /// Account Query: answered from the gateway's own state.
    AccountQuery,
}

/// Maps one decoded inbound message of `account`, read at `rx_ns`.
pub(super) fn inbound(
    message: &ouch::Inbound<'_>,
    account: AccountId,
    symbols: &Symbols,
    rx_ns: u64,
) -> Mapped {
    match message {
        ouch::Inbound::EnterOrder(o) => enter_order(o, account, symbols, rx_ns),
        ouch::Inbound::ReplaceOrder(r) => Mapped::Submit {
            command: Command::Replace(core::Replace {
                account,
                client_ref: ClientRef(r.orig_user_ref_num),
                new_client_ref: ClientRef(r.user_ref_num),
                price: r.price.0.min(i64::MAX as u64) as i64,
                qty: r.quantity,
            }),
            echo: Some(Echo {
                user_ref: r.user_ref_num,
                rx_ns,
                cl_ord_id: r.cl_ord_id,
                display: r.display,
                capacity: ouch::Capacity::Agency,
                time_in_force: r.time_in_force,
            }),
        },
        ouch::Inbound::CancelOrder(c) => Mapped::Submit {
            command: Command::Cancel(core::Cancel {
                account,
                client_ref: ClientRef(c.user_ref_num),
                qty_remaining: c.quantity,
            }),
            echo: None,
        },
        ouch::Inbound::ModifyOrder(m) => Mapped::ModifyUnsupported { user_ref: m.user_ref_num },
        ouch::Inbound::MassCancel(m) => {
            let instrument = (!m.symbol.is_blank()).then(|| symbols.instrument(&m.symbol));
            Mapped::MassCancel {
                command: Command::MassCancel { account, instrument },
                echo: (m.user_ref_num, m.firm, m.symbol),
            }
        }
        ouch::Inbound::AccountQuery => Mapped::AccountQuery,
    }
}

fn enter_order(o: &ouch::EnterOrder<'_>, account: AccountId, symbols: &Symbols, rx_ns: u64) -> Mapped {
    if let Some(reason) = unsupported(o) {
        return Mapped::Refuse { user_ref: o.user_ref_num, cl_ord_id: o.cl_ord_id, reason };
    }
    let mut min_qty = 0;
    let mut post_only = matches!(o.display, ouch::Display::PostOnly);
    for tv in o.appendage.iter() {
        match tv {
            ouch::TagValue::MinQty(q) => min_qty = q,
            ouch::TagValue::PostOnly(flag) => post_only |= flag == b'P' || flag == b'Y',
            _ => {}
        }
    }
    Mapped::Submit {
        command: Command::NewOrder(core::NewOrder {
            account,
            client_ref: ClientRef(o.user_ref_num),
            instrument: symbols.instrument(&o.symbol),
            side: side(o.side),
            order_type: core::OrderType::Limit,
            tif: match o.time_in_force {
                ouch::TimeInForce::ImmediateOrCancel => core::TimeInForce::Ioc,
                _ => core::TimeInForce::Day,
            },
            price: o.price.0.min(i64::MAX as u64) as i64,
            qty: o.quantity,
            min_qty,
            post_only,
        }),
        echo: Some(Echo {
            user_ref: o.user_ref_num,
            rx_ns,
            cl_ord_id: o.cl_ord_id,
            display: o.display,
            capacity: o.capacity,
            time_in_force: o.time_in_force,
        }),
    }
}

/// Features of an Enter Order that Petrel does not offer, refused before sequencing.
fn unsupported(o: &ouch::EnterOrder<'_>) -> Option<ouch::RejectReason> {
    use ouch::RejectReason as R;
    if !matches!(o.display, ouch::Display::Visible | ouch::Display::Attributable | ouch::Display::PostOnly) {
        return Some(R::INVALID_DISPLAY);
    }
    if !matches!(o.time_in_force, ouch::TimeInForce::Day | ouch::TimeInForce::ImmediateOrCancel) {
        return Some(R::OTHER);
    }
    if o.cross_type != ouch::CrossType::ContinuousMarket {
        return Some(R::INVALID_CROSS_ORDER);
    }
    if o.intermarket_sweep == ouch::IntermarketSweep::Eligible {
        return Some(R::ISO_NOT_ALLOWED);
    }
    o.appendage.iter().find_map(|tv| match tv {
        ouch::TagValue::MinQty(_)
        | ouch::TagValue::PostOnly(_)
        | ouch::TagValue::Firm(_)
        | ouch::TagValue::CustomerType(_)
        | ouch::TagValue::HandleInst(_)
        | ouch::TagValue::UserRefIdx(_) => None,
        ouch::TagValue::MaxFloor(_) => Some(R::INVALID_MAX_FLOOR),
        ouch::TagValue::PegOffset(_) | ouch::TagValue::PriceType(_) => Some(R::PEGGING_NOT_ALLOWED),
        ouch::TagValue::Route(_) => Some(R::ROUTING_NOT_ALLOWED),
        _ => Some(R::OTHER),
    })
}

pub(super) fn blank_cl_ord_id() -> ouch::ClOrdId {
    ouch::ClOrdId::from_wire([b' '; 14]).expect("blank ClOrdID")
}

/// OUCH timestamps count nanoseconds since midnight (UTC), as the ITCH feed's do.
pub(super) use crate::clock::midnight_ns;

/// Order Accepted for an accepted order; fields only the client sent come from its echo.
pub(super) fn order_accepted(
    a: &core::Accepted,
    ts: u64,
    echo: Option<Echo>,
    symbols: &Symbols,
) -> Outbound<'static> {
    Outbound::OrderAccepted(ouch::OrderAccepted {
        timestamp_ns: ts,
        user_ref_num: a.client_ref.0,
        side: ouch_side(a.side),
        quantity: a.qty,
        symbol: symbols.symbol(a.instrument),
        price: ouch::Price(a.price.max(0) as u64),
        time_in_force: echo.map_or(ouch::TimeInForce::Day, |x| x.time_in_force),
        display: echo.map_or(ouch::Display::Visible, |x| x.display),
        order_reference_number: a.order_id.0,
        capacity: echo.map_or(ouch::Capacity::Agency, |x| x.capacity),
        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
        cross_type: ouch::CrossType::ContinuousMarket,
        order_state: ouch::OrderState::Live,
        cl_ord_id: echo.map_or(blank_cl_ord_id(), |x| x.cl_ord_id),
        appendage: ouch::Appendage::EMPTY,
    })
}

/// Order Replaced; fields only the client sent come from the new order's echo.
pub(super) fn order_replaced(
    r: &core::Replaced,
    ts: u64,
    echo: Option<Echo>,
    symbols: &Symbols,
) -> Outbound<'static> {
    Outbound::OrderReplaced(ouch::OrderReplaced {
        timestamp_ns: ts,
        orig_user_ref_num: r.old_client_ref.0,
        user_ref_num: r.new_client_ref.0,
        side: ouch_side(r.side),
        quantity: r.qty,
        symbol: symbols.symbol(r.instrument),
        price: ouch::Price(r.price.max(0) as u64),
        time_in_force: ouch::TimeInForce::Day,
        display: echo.map_or(ouch::Display::Visible, |x| x.display),
        order_reference_number: r.new_order_id.0,
        capacity: echo.map_or(ouch::Capacity::Agency, |x| x.capacity),
        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
        cross_type: ouch::CrossType::ContinuousMarket,
        order_state: ouch::OrderState::Live,
        cl_ord_id: echo.map_or(blank_cl_ord_id(), |x| x.cl_ord_id),
        appendage: ouch::Appendage::EMPTY,
    })
}

/// The answer to a rejected command: Cancel Reject for cancels and mass cancels (whose
/// UserRefNum is `mass_cancel_user_ref`), Order Rejected otherwise.
pub(super) fn rejected(
    r: &core::Rejected,
    ts: u64,
    cl_ord_id: ouch::ClOrdId,
    mass_cancel_user_ref: u32,
) -> Outbound<'static> {
    if is_cancel_kind(r.command) {
        Outbound::CancelReject { timestamp_ns: ts, user_ref_num: r.client_ref.0 }
    } else if r.command == CommandKind::MassCancel {
        Outbound::CancelReject { timestamp_ns: ts, user_ref_num: mass_cancel_user_ref }
    } else {
        Outbound::OrderRejected(ouch::OrderRejected {
            timestamp_ns: ts,
            user_ref_num: r.client_ref.0,
            reason: reject_code(r.reason),
            cl_ord_id,
        })
    }
}

/// One side's Order Executed: the maker added liquidity, the taker removed it.
pub(super) fn order_executed(
    x: &core::Executed,
    fill: &core::Fill,
    maker: bool,
    ts: u64,
) -> Outbound<'static> {
    Outbound::OrderExecuted(ouch::OrderExecuted {
        timestamp_ns: ts,
        user_ref_num: fill.client_ref.0,
        quantity: x.qty,
        price: ouch::Price(x.price.max(0) as u64),
        liquidity_flag: if maker { ouch::LiquidityFlag::ADDED } else { ouch::LiquidityFlag::REMOVED },
        match_number: x.match_id.0,
        appendage: ouch::Appendage::EMPTY,
    })
}

pub(super) fn order_canceled(c: &core::Cancelled, ts: u64) -> Outbound<'static> {
    Outbound::OrderCanceled(ouch::OrderCanceled {
        timestamp_ns: ts,
        user_ref_num: c.client_ref.0,
        quantity: c.qty_cancelled,
        reason: cancel_code(c.reason),
    })
}

pub(super) fn mass_cancel_response(echo: MassCancelEcho, ts: u64) -> Outbound<'static> {
    let (user_ref_num, firm, symbol) = echo;
    Outbound::MassCancelResponse(ouch::MassCancelResponse {
        timestamp_ns: ts,
        user_ref_num,
        firm,
        symbol,
        appendage: ouch::Appendage::EMPTY,
    })
}

/// The OUCH reject code for a core reject reason.
pub(super) fn reject_code(reason: RejectReason) -> ouch::RejectReason {
    use ouch::RejectReason as R;
    match reason {
        RejectReason::UnknownInstrument => R::INVALID_SYMBOL,
        RejectReason::ZeroQuantity | RejectReason::QuantityNotOnLot | RejectReason::MaxOrderQty => {
            R::INVALID_QUANTITY
        }
        RejectReason::PriceNotOnTick | RejectReason::PriceOutOfBand => R::INVALID_PRICE,
        RejectReason::PriceCollar | RejectReason::MaxOrderNotional => R::FAT_FINGER,
        RejectReason::WouldTakeLiquidity => R::CROSSED_MARKET,
        RejectReason::InvalidOrder => R::INVALID_MIN_QUANTITY,
        RejectReason::AccountBlocked => R::FIRM_NOT_AUTHORIZED,
        RejectReason::NoReferencePrice => R::NO_CLOSING_REFERENCE_PRICE,
        _ => R::OTHER,
    }
}

pub(super) fn cancel_code(reason: CancelReason) -> ouch::CancelReason {
    match reason {
        CancelReason::User | CancelReason::MassCancel => ouch::CancelReason::UserRequested,
        CancelReason::ImmediateOrCancel => ouch::CancelReason::ImmediateOrCancel,
        CancelReason::FillOrKill => ouch::CancelReason::CannotBeExecuted,
        CancelReason::SelfTrade => ouch::CancelReason::SelfMatchPrevention,
        CancelReason::KillSwitch => ouch::CancelReason::Supervisory,
        CancelReason::Disconnect => ouch::CancelReason::SystemCancel,
    }
}

pub(super) fn side(side: ouch::Side) -> core::Side {
    match side {
        ouch::Side::Buy => core::Side::Buy,
        ouch::Side::Sell | ouch::Side::SellShort | ouch::Side::SellShortExempt => core::Side::Sell,
    }
}

pub(super) fn ouch_side(side: core::Side) -> ouch::Side {
    match side {
        core::Side::Buy => ouch::Side::Buy,
        core::Side::Sell => ouch::Side::Sell,
    }
}

/// Whether a rejected command of this kind is answered with Cancel Reject rather than Order
/// Rejected.
pub(super) fn is_cancel_kind(kind: CommandKind) -> bool {
    matches!(kind, CommandKind::Cancel)
}
