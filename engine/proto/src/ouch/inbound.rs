//! Inbound messages (client to server, carried in SoupBinTCP Unsequenced Data): their layouts,
//! the decoder the gateway runs on every order, and the encoder a client uses.

use super::appendage::{appendage_after, write_appendage, Appendage};
use super::codes::{Capacity, CrossType, Display, IntermarketSweep, Side, TimeInForce};
use super::decode::{alpha, code, fixed_len, DecodeError};
use super::fields::{ClOrdId, Firm, Price, Symbol};
use crate::wire::{EncodeError, Rd, Wr};

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
                let mut w = Wr::new(buf, ENTER_ORDER_FIXED_BYTES + m.appendage.as_bytes().len())?;
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
                let mut w = Wr::new(buf, REPLACE_ORDER_FIXED_BYTES + m.appendage.as_bytes().len())?;
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
                let mut w = Wr::new(buf, MASS_CANCEL_FIXED_BYTES + m.appendage.as_bytes().len())?;
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
