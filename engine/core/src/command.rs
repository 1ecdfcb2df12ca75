//! Commands: the only input of the matching core. Each is applied with a sequence number and a
//! timestamp assigned once, by the sequencer, so that replaying the same sequence reproduces the
//! same events and state.

use crate::config::RiskLimits;
use crate::types::{AccountId, ClientRef, InstrumentId, OrderType, Price, Qty, Side, TimeInForce};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub account: AccountId,
    pub client_ref: ClientRef,
    pub instrument: InstrumentId,
    pub side: Side,
    pub order_type: OrderType,
    pub tif: TimeInForce,
    /// Limit price in price units; ignored for market orders.
    pub price: Price,
    pub qty: Qty,
    /// Least quantity that must execute on entry, or the order is cancelled unexecuted. 0: none.
    pub min_qty: Qty,
    /// Rejected instead of executing if it would take liquidity on entry.
    pub post_only: bool,
}

/// Cancel an order, or reduce it: `qty_remaining` is what is to stay open (0 cancels it), as
/// OUCH's Cancel Order does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancel {
    pub account: AccountId,
    pub client_ref: ClientRef,
    pub qty_remaining: Qty,
}

/// Replace an order with a new reference, price and open quantity. Time priority is kept only
/// when the price is unchanged and the quantity does not grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replace {
    pub account: AccountId,
    pub client_ref: ClientRef,
    pub new_client_ref: ClientRef,
    pub price: Price,
    pub qty: Qty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    NewOrder(NewOrder),
    Cancel(Cancel),
    Replace(Replace),
    /// Cancel every open order of the account, in one instrument or all.
    MassCancel {
        account: AccountId,
        instrument: Option<InstrumentId>,
    },
    /// The gateway's cancel-on-disconnect hook: cancels every open order of the account.
    Disconnect {
        account: AccountId,
    },
    /// Engage: cancel every open order of the account and reject its new orders until released.
    KillSwitch {
        account: AccountId,
        engage: bool,
    },
    /// Replace an account's risk limits (configuration reload), sequenced like any command so
    /// that a replay applies it at the same point.
    SetRiskLimits {
        account: AccountId,
        limits: RiskLimits,
    },
    /// A message for the account that the core does not act on: it comes back unchanged as
    /// [`crate::Event::Noted`]. The gateway's own answers (Start of Day, refusals before
    /// matching, Account Query Response) travel as notes, sequenced and journaled like any
    /// command, so that everything an account is sent follows from the input journal alone
    /// (a restart and a hot standby write the same messages). The bytes are opaque here.
    Note {
        account: AccountId,
        note: Note,
    },
}

/// Bytes of a [`Command::Note`]: enough for the gateway's largest answer (an Order Rejected's
/// UserRefNum, reason and ClOrdID, with a kind byte).
pub const NOTE_BYTES: usize = 24;

/// A note's bytes, fixed in size so that commands and events stay `Copy` and never allocate.
pub type Note = [u8; NOTE_BYTES];

impl Command {
    pub fn account(&self) -> AccountId {
        match *self {
            Command::NewOrder(o) => o.account,
            Command::Cancel(c) => c.account,
            Command::Replace(r) => r.account,
            Command::MassCancel { account, .. }
            | Command::Disconnect { account }
            | Command::KillSwitch { account, .. }
            | Command::SetRiskLimits { account, .. }
            | Command::Note { account, .. } => account,
        }
    }

    /// Which kind of command this is, for rejects and metrics.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::NewOrder(_) => CommandKind::NewOrder,
            Command::Cancel(_) => CommandKind::Cancel,
            Command::Replace(_) => CommandKind::Replace,
            Command::MassCancel { .. } => CommandKind::MassCancel,
            Command::Disconnect { .. } => CommandKind::Disconnect,
            Command::KillSwitch { .. } => CommandKind::KillSwitch,
            Command::SetRiskLimits { .. } => CommandKind::SetRiskLimits,
            Command::Note { .. } => CommandKind::Note,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandKind {
    NewOrder,
    Cancel,
    Replace,
    MassCancel,
    Disconnect,
    KillSwitch,
    SetRiskLimits,
    Note,
}
