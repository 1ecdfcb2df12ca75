//! A compact, versioned binary encoding of commands: the payload of input-journal records.
//!
//! Fixed little-endian layouts, one tag byte first. Decoding validates every enum byte and the
//! exact length, so a damaged payload becomes an error naming the offset, never a wrong command.

use crate::command::{Cancel, Command, NewOrder, Replace};
use crate::config::RiskLimits;
use crate::types::{AccountId, ClientRef, InstrumentId, OrderType, Side, TimeInForce};
use thiserror::Error;

/// Largest encoded command, in bytes.
pub const MAX_COMMAND_BYTES: usize = 64;

const TAG_NEW_ORDER: u8 = 1;
const TAG_CANCEL: u8 = 2;
const TAG_REPLACE: u8 = 3;
const TAG_MASS_CANCEL: u8 = 4;
const TAG_DISCONNECT: u8 = 5;
const TAG_KILL_SWITCH: u8 = 6;
const TAG_SET_RISK_LIMITS: u8 = 7;
const TAG_NOTE: u8 = 8;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("empty command payload")]
    Empty,
    #[error("unknown command tag {tag:#04x}")]
    UnknownTag { tag: u8 },
    #[error("command tag {tag:#04x} needs {expected} bytes, payload has {actual}")]
    Length { tag: u8, expected: usize, actual: usize },
    #[error("invalid value {value:#04x} for {field} at byte {offset}")]
    Field { field: &'static str, offset: usize, value: u8 },
}

struct Writer<'a> {
    buf: &'a mut [u8; MAX_COMMAND_BYTES],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.put(&v.to_le_bytes());
    }
    fn limits(&mut self, l: &RiskLimits) {
        self.u32(l.max_order_qty);
        self.u64(l.max_order_notional);
        self.u32(l.price_collar_bps);
        self.u32(l.max_open_orders);
        self.u64(l.max_position);
        self.u32(l.max_orders_per_window);
        self.u64(l.rate_window_ns);
    }
}

/// Encodes a command into `buf`, returning its length. Never allocates.
pub fn encode(command: &Command, buf: &mut [u8; MAX_COMMAND_BYTES]) -> usize {
    let mut w = Writer { buf, at: 0 };
    match command {
        Command::NewOrder(o) => {
            w.u8(TAG_NEW_ORDER);
            w.u32(o.account.0);
            w.u32(o.client_ref.0);
            w.u16(o.instrument.0);
            w.u8(side_byte(o.side));
            w.u8(match o.order_type {
                OrderType::Limit => b'L',
                OrderType::Market => b'M',
            });
            w.u8(match o.tif {
                TimeInForce::Day => b'D',
                TimeInForce::Ioc => b'I',
                TimeInForce::Fok => b'F',
            });
            w.u8(o.post_only as u8);
            w.i64(o.price);
            w.u32(o.qty);
            w.u32(o.min_qty);
        }
        Command::Cancel(c) => {
            w.u8(TAG_CANCEL);
            w.u32(c.account.0);
            w.u32(c.client_ref.0);
            w.u32(c.qty_remaining);
        }
        Command::Replace(r) => {
            w.u8(TAG_REPLACE);
            w.u32(r.account.0);
            w.u32(r.client_ref.0);
            w.u32(r.new_client_ref.0);
            w.i64(r.price);
            w.u32(r.qty);
        }
        Command::MassCancel { account, instrument } => {
            w.u8(TAG_MASS_CANCEL);
            w.u32(account.0);
            w.u8(instrument.is_some() as u8);
            w.u16(instrument.map_or(0, |i| i.0));
        }
        Command::Disconnect { account } => {
            w.u8(TAG_DISCONNECT);
            w.u32(account.0);
        }
        Command::KillSwitch { account, engage } => {
            w.u8(TAG_KILL_SWITCH);
            w.u32(account.0);
            w.u8(*engage as u8);
        }
        Command::SetRiskLimits { account, limits } => {
            w.u8(TAG_SET_RISK_LIMITS);
            w.u32(account.0);
            w.limits(limits);
        }
        Command::Note { account, note } => {
            w.u8(TAG_NOTE);
            w.u32(account.0);
            w.put(note);
        }
    }
    w.at
}

fn side_byte(side: Side) -> u8 {
    match side {
        Side::Buy => b'B',
        Side::Sell => b'S',
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let bytes: [u8; N] = self.buf[self.at..self.at + N].try_into().expect("length checked up front");
        self.at += N;
        bytes
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
    fn flag(&mut self, field: &'static str) -> Result<bool, CodecError> {
        let offset = self.at;
        match self.u8() {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(CodecError::Field { field, offset, value }),
        }
    }
    fn limits(&mut self) -> RiskLimits {
        RiskLimits {
            max_order_qty: self.u32(),
            max_order_notional: self.u64(),
            price_collar_bps: self.u32(),
            max_open_orders: self.u32(),
            max_position: self.u64(),
            max_orders_per_window: self.u32(),
            rate_window_ns: self.u64(),
        }
    }
}

fn encoded_len(tag: u8) -> Option<usize> {
    Some(match tag {
        TAG_NEW_ORDER => 31,
        TAG_CANCEL => 13,
        TAG_REPLACE => 25,
        TAG_MASS_CANCEL => 8,
        TAG_DISCONNECT => 5,
        TAG_KILL_SWITCH => 6,
        TAG_SET_RISK_LIMITS => 45,
        TAG_NOTE => 5 + crate::command::NOTE_BYTES,
        _ => return None,
    })
}

/// The length of the command that `payload` begins with, as its tag declares, whatever follows
/// it: the input journal carries bytes the core never reads after the command (see
/// `petrel_engine::input_record`), and this is where they start. The bytes themselves are
/// checked by [`decode`].
pub fn command_len(payload: &[u8]) -> Result<usize, CodecError> {
    let &tag = payload.first().ok_or(CodecError::Empty)?;
    encoded_len(tag).ok_or(CodecError::UnknownTag { tag })
}

/// Decodes a command encoded by [`encode`].
// Over 70 lines: one arm per command tag, each reading its fields in wire order (the accepted
// long-match exception for codecs); splitting it would scatter the layout over many functions.
pub fn decode(buf: &[u8]) -> Result<Command, CodecError> {
    let &tag = buf.first().ok_or(CodecError::Empty)?;
    let expected = encoded_len(tag).ok_or(CodecError::UnknownTag { tag })?;
    if buf.len() != expected {
        return Err(CodecError::Length { tag, expected, actual: buf.len() });
    }
    let mut r = Reader { buf, at: 1 };
    Ok(match tag {
        TAG_NEW_ORDER => {
            let account = AccountId(r.u32());
            let client_ref = ClientRef(r.u32());
            let instrument = InstrumentId(r.u16());
            let side = match r.u8() {
                b'B' => Side::Buy,
                b'S' => Side::Sell,
                value => return Err(CodecError::Field { field: "side", offset: 11, value }),
            };
            let order_type = match r.u8() {
                b'L' => OrderType::Limit,
                b'M' => OrderType::Market,
                value => return Err(CodecError::Field { field: "order type", offset: 12, value }),
            };
            let tif = match r.u8() {
                b'D' => TimeInForce::Day,
                b'I' => TimeInForce::Ioc,
                b'F' => TimeInForce::Fok,
                value => return Err(CodecError::Field { field: "time in force", offset: 13, value }),
            };
            let post_only = r.flag("post-only")?;
            Command::NewOrder(NewOrder {
                account,
                client_ref,
                instrument,
                side,
                order_type,
                tif,
                post_only,
                price: r.i64(),
                qty: r.u32(),
                min_qty: r.u32(),
            })
        }
        TAG_CANCEL => Command::Cancel(Cancel {
            account: AccountId(r.u32()),
            client_ref: ClientRef(r.u32()),
            qty_remaining: r.u32(),
        }),
        TAG_REPLACE => Command::Replace(Replace {
            account: AccountId(r.u32()),
            client_ref: ClientRef(r.u32()),
            new_client_ref: ClientRef(r.u32()),
            price: r.i64(),
            qty: r.u32(),
        }),
        TAG_MASS_CANCEL => {
            let account = AccountId(r.u32());
            let has_instrument = r.flag("instrument present")?;
            let instrument = InstrumentId(r.u16());
            Command::MassCancel { account, instrument: has_instrument.then_some(instrument) }
        }
        TAG_DISCONNECT => Command::Disconnect { account: AccountId(r.u32()) },
        TAG_KILL_SWITCH => {
            let account = AccountId(r.u32());
            Command::KillSwitch { account, engage: r.flag("engage")? }
        }
        TAG_SET_RISK_LIMITS => {
            let account = AccountId(r.u32());
            Command::SetRiskLimits { account, limits: r.limits() }
        }
        TAG_NOTE => Command::Note { account: AccountId(r.u32()), note: r.take() },
        _ => unreachable!("tag validated by encoded_len"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn samples() -> Vec<Command> {
        vec![
            Command::NewOrder(NewOrder {
                account: AccountId(7),
                client_ref: ClientRef(u32::MAX),
                instrument: InstrumentId(3),
                side: Side::Sell,
                order_type: OrderType::Market,
                tif: TimeInForce::Fok,
                price: -5,
                qty: 100,
                min_qty: 10,
                post_only: true,
            }),
            Command::Cancel(Cancel { account: AccountId(1), client_ref: ClientRef(2), qty_remaining: 3 }),
            Command::Replace(Replace {
                account: AccountId(1),
                client_ref: ClientRef(2),
                new_client_ref: ClientRef(3),
                price: 1_000_000,
                qty: 9,
            }),
            Command::MassCancel { account: AccountId(4), instrument: Some(InstrumentId(9)) },
            Command::MassCancel { account: AccountId(4), instrument: None },
            Command::Disconnect { account: AccountId(5) },
            Command::KillSwitch { account: AccountId(6), engage: true },
            Command::SetRiskLimits { account: AccountId(8), limits: RiskLimits::UNLIMITED },
            Command::Note { account: AccountId(9), note: core::array::from_fn(|i| i as u8 * 7) },
        ]
    }

    #[test]
    fn every_command_round_trips_with_its_declared_length() {
        for command in samples() {
            let mut buf = [0u8; MAX_COMMAND_BYTES];
            let len = encode(&command, &mut buf);
            assert_eq!(Some(len), encoded_len(buf[0]));
            assert_eq!(decode(&buf[..len]), Ok(command));
        }
    }

    #[test]
    fn command_len_reads_the_tag_alone() {
        for command in samples() {
            let mut buf = [0u8; MAX_COMMAND_BYTES];
            let len = encode(&command, &mut buf);
            assert_eq!(command_len(&buf), Ok(len), "bytes after the command do not count");
            assert_eq!(command_len(&buf[..1]), Ok(len), "nor does a short payload: decode checks it");
        }
        assert_eq!(command_len(&[]), Err(CodecError::Empty));
        assert_eq!(command_len(&[0xee, 1, 2]), Err(CodecError::UnknownTag { tag: 0xee }));
    }

    #[test]
    fn damaged_payloads_are_errors() {
        let mut buf = [0u8; MAX_COMMAND_BYTES];
        let len = encode(&samples()[0], &mut buf);
        assert_eq!(decode(&[]), Err(CodecError::Empty));
        assert_eq!(decode(&[0xee]), Err(CodecError::UnknownTag { tag: 0xee }));
        assert_eq!(decode(&buf[..len - 1]), Err(CodecError::Length { tag: 1, expected: 31, actual: 30 }));
        let mut bad = buf;
        bad[11] = b'X';
        assert_eq!(decode(&bad[..len]), Err(CodecError::Field { field: "side", offset: 11, value: b'X' }));
    }
}
