//! The echo the gateway journals with each command a client sent (`crate::input_record`): the
//! fields of its OUCH answers that the core's events do not carry. With it, each account's
//! output stream is a function of the input journal alone: regeneration after a crash writes
//! the bytes the live gateway would have.
//!
//! Layout (little-endian), one kind byte first:
//! - `1`, an order (Enter Order, Replace Order), 22 bytes: UserRefNum u32, ClOrdID (14 bytes,
//!   as on the wire), Display, Capacity and Time in Force (their OUCH codes). What the Accepted,
//!   Replaced and Order Rejected of the command repeat.
//! - `2`, a mass cancel, 17 bytes: UserRefNum u32, Firm (4 bytes), Symbol (8 bytes). What its
//!   Mass Cancel Response (or Cancel Reject) repeats.
//!
//! Nothing else an outbound message carries comes from the client: the other fields are the
//! core's (side, quantity, price, references), constants (Intermarket Sweep, Cross Type, Order
//! State, empty appendages) or the input journal's timestamp. The time a packet was read
//! (`Echo::rx_ns`) is a local clock reading, for latency only, and is not journaled.
//!
//! A new field or kind takes a new kind byte; a kind this build does not know, or an echo of
//! the wrong length, is reported and the command's answers regenerated with the defaults used
//! for records that carry no echo.

use super::ouch_map::{Echo, MassCancelEcho, NOT_RECEIVED_HERE};
use crate::input_record::CommandEcho;
use petrel_proto::ouch;

const KIND_ORDER: u8 = 1;
const KIND_MASS_CANCEL: u8 = 2;
const ORDER_BYTES: usize = 22;
const MASS_CANCEL_BYTES: usize = 17;

/// A journaled echo, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JournaledEcho {
    Order(Echo),
    MassCancel(MassCancelEcho),
}

/// Why a journaled echo cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EchoError {
    #[error("unknown echo kind {kind}")]
    UnknownKind { kind: u8 },
    #[error("echo kind {kind} needs {expected} bytes, has {actual}")]
    Length { kind: u8, expected: usize, actual: usize },
    #[error("invalid {field} in echo kind {kind}")]
    Field { kind: u8, field: &'static str },
}

/// The echo of an Enter Order or Replace Order.
pub(super) fn order(echo: &Echo) -> CommandEcho {
    let mut bytes = [0u8; ORDER_BYTES];
    bytes[0] = KIND_ORDER;
    bytes[1..5].copy_from_slice(&echo.user_ref.to_le_bytes());
    bytes[5..19].copy_from_slice(echo.cl_ord_id.as_wire());
    bytes[19] = echo.display.code();
    bytes[20] = echo.capacity.code();
    bytes[21] = echo.time_in_force.code();
    CommandEcho::new(&bytes).expect("an order echo fits")
}

/// The echo of a Mass Cancel Request.
pub(super) fn mass_cancel(echo: &MassCancelEcho) -> CommandEcho {
    let (user_ref, firm, symbol) = echo;
    let mut bytes = [0u8; MASS_CANCEL_BYTES];
    bytes[0] = KIND_MASS_CANCEL;
    bytes[1..5].copy_from_slice(&user_ref.to_le_bytes());
    bytes[5..9].copy_from_slice(firm.as_wire());
    bytes[9..17].copy_from_slice(symbol.as_wire());
    CommandEcho::new(&bytes).expect("a mass cancel echo fits")
}

/// Decodes a journaled echo; `None` for a command that carries none.
pub(super) fn decode(echo: &CommandEcho) -> Result<Option<JournaledEcho>, EchoError> {
    let b = echo.as_bytes();
    let Some(&kind) = b.first() else { return Ok(None) };
    let expected = match kind {
        KIND_ORDER => ORDER_BYTES,
        KIND_MASS_CANCEL => MASS_CANCEL_BYTES,
        _ => return Err(EchoError::UnknownKind { kind }),
    };
    if b.len() != expected {
        return Err(EchoError::Length { kind, expected, actual: b.len() });
    }
    let field = |field| EchoError::Field { kind, field };
    let user_ref = u32::from_le_bytes(b[1..5].try_into().expect("4 bytes"));
    Ok(Some(match kind {
        KIND_ORDER => JournaledEcho::Order(Echo {
            user_ref,
            rx_ns: NOT_RECEIVED_HERE,
            cl_ord_id: ouch::ClOrdId::from_wire(b[5..19].try_into().expect("14 bytes"))
                .ok_or(field("ClOrdID"))?,
            display: ouch::Display::from_code(b[19]).ok_or(field("Display"))?,
            capacity: ouch::Capacity::from_code(b[20]).ok_or(field("Capacity"))?,
            time_in_force: ouch::TimeInForce::from_code(b[21]).ok_or(field("Time in Force"))?,
        }),
        _ => JournaledEcho::MassCancel((
            user_ref,
            ouch::Firm::from_wire(b[5..9].try_into().expect("4 bytes")).ok_or(field("Firm"))?,
            ouch::Symbol::from_wire(b[9..17].try_into().expect("8 bytes")).ok_or(field("Symbol"))?,
        )),
    }))
}

/// A journaled echo as text, for `journal dump`: empty for none.
pub fn describe(echo: &CommandEcho) -> String {
    match decode(echo) {
        Ok(None) => String::new(),
        Ok(Some(JournaledEcho::Order(e))) => format!(
            "user_ref={} cl_ord_id={:?} display={} capacity={} tif={}",
            e.user_ref,
            e.cl_ord_id.as_str(),
            e.display.code() as char,
            e.capacity.code() as char,
            e.time_in_force.code() as char
        ),
        Ok(Some(JournaledEcho::MassCancel((user_ref, firm, symbol)))) => {
            format!("user_ref={user_ref} firm={:?} symbol={:?}", firm.as_str(), symbol.as_str())
        }
        Err(e) => format!("UNREADABLE ({e}) {echo:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input_record::{self, RECORD_PAYLOAD_BYTES_MAX};
    use petrel_core::codec::MAX_COMMAND_BYTES;
    use petrel_core::{self as core, AccountId, ClientRef, Command, InstrumentId};

    fn order_echo() -> Echo {
        Echo {
            user_ref: u32::MAX,
            rx_ns: NOT_RECEIVED_HERE,
            cl_ord_id: ouch::ClOrdId::new("ClOrdID", "ABCDEFGHIJKLMN").unwrap(),
            display: ouch::Display::Attributable,
            capacity: ouch::Capacity::Principal,
            time_in_force: ouch::TimeInForce::ImmediateOrCancel,
        }
    }

    fn mass_cancel_echo() -> MassCancelEcho {
        (7, ouch::Firm::new("Firm", "FIRM").unwrap(), ouch::Symbol::new("Symbol", "AAPL").unwrap())
    }

    #[test]
    fn echoes_round_trip_without_the_local_read_time() {
        let live = Echo { rx_ns: 123, ..order_echo() };
        assert_eq!(decode(&order(&live)), Ok(Some(JournaledEcho::Order(order_echo()))));
        assert_eq!(
            decode(&mass_cancel(&mass_cancel_echo())),
            Ok(Some(JournaledEcho::MassCancel(mass_cancel_echo())))
        );
        assert_eq!(decode(&CommandEcho::NONE), Ok(None));
        assert!(describe(&order(&live)).contains("cl_ord_id=\"ABCDEFGHIJKLMN\" display=A capacity=P tif=3"));
    }

    /// The commands that carry an echo, at their largest, fit a journal record with it
    /// (`input_record::encode` asserts it on the data path).
    #[test]
    fn every_echoed_command_fits_a_record() {
        let new_order = Command::NewOrder(core::NewOrder {
            account: AccountId(u32::MAX),
            client_ref: ClientRef(u32::MAX),
            instrument: InstrumentId(u16::MAX),
            side: core::Side::Sell,
            order_type: core::OrderType::Limit,
            tif: core::TimeInForce::Ioc,
            price: i64::MAX,
            qty: u32::MAX,
            min_qty: u32::MAX,
            post_only: true,
        });
        let replace = Command::Replace(core::Replace {
            account: AccountId(1),
            client_ref: ClientRef(2),
            new_client_ref: ClientRef(3),
            price: 4,
            qty: 5,
        });
        let mass = Command::MassCancel { account: AccountId(1), instrument: Some(InstrumentId(2)) };
        for (command, echo) in [
            (new_order, order(&order_echo())),
            (replace, order(&order_echo())),
            (mass, mass_cancel(&mass_cancel_echo())),
        ] {
            let command_len = petrel_core::codec::encode(&command, &mut [0u8; MAX_COMMAND_BYTES]);
            assert!(command_len + echo.as_bytes().len() <= RECORD_PAYLOAD_BYTES_MAX, "{command:?}");
            let mut buf = [0u8; RECORD_PAYLOAD_BYTES_MAX];
            let len = input_record::encode(&command, &echo, &mut buf);
            assert_eq!(input_record::decode(&buf[..len]), Ok((command, echo)));
        }
    }

    #[test]
    fn a_damaged_echo_is_an_error() {
        let good = order(&order_echo());
        let bytes = good.as_bytes();
        assert_eq!(decode(&CommandEcho::new(&[9]).unwrap()), Err(EchoError::UnknownKind { kind: 9 }));
        assert_eq!(
            decode(&CommandEcho::new(&bytes[..21]).unwrap()),
            Err(EchoError::Length { kind: 1, expected: 22, actual: 21 })
        );
        let mut bad = bytes.to_vec();
        bad[19] = b'?';
        assert_eq!(
            decode(&CommandEcho::new(&bad).unwrap()),
            Err(EchoError::Field { kind: 1, field: "Display" })
        );
    }
}
