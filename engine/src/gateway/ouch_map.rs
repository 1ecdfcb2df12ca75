//! Mapping between OUCH 5.0 messages and the core's commands and events.

use petrel_core::{self as core, CancelReason, CommandKind, RejectReason};
use petrel_proto::ouch;

/// Why the gateway itself refused an inbound message (before sequencing).
pub fn reject_code(reason: RejectReason) -> ouch::RejectReason {
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

pub fn cancel_code(reason: CancelReason) -> ouch::CancelReason {
    match reason {
        CancelReason::User | CancelReason::MassCancel => ouch::CancelReason::UserRequested,
        CancelReason::ImmediateOrCancel => ouch::CancelReason::ImmediateOrCancel,
        CancelReason::FillOrKill => ouch::CancelReason::CannotBeExecuted,
        CancelReason::SelfTrade => ouch::CancelReason::SelfMatchPrevention,
        CancelReason::KillSwitch => ouch::CancelReason::Supervisory,
        CancelReason::Disconnect => ouch::CancelReason::SystemCancel,
    }
}

pub fn side(side: ouch::Side) -> core::Side {
    match side {
        ouch::Side::Buy => core::Side::Buy,
        ouch::Side::Sell | ouch::Side::SellShort | ouch::Side::SellShortExempt => core::Side::Sell,
    }
}

pub fn ouch_side(side: core::Side) -> ouch::Side {
    match side {
        core::Side::Buy => ouch::Side::Buy,
        core::Side::Sell => ouch::Side::Sell,
    }
}

/// Whether a rejected command of this kind is answered with Cancel Reject rather than Order
/// Rejected.
pub fn is_cancel_kind(kind: CommandKind) -> bool {
    matches!(kind, CommandKind::Cancel)
}
