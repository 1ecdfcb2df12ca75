//! The decode error and the validating field readers both directions' decoders share, so a
//! bad byte is reported the same way everywhere: message, field, offset and value.

use super::appendage::AppendageError;
use crate::wire::{is_printable, Alpha, Rd};

/// A message that is not valid OUCH 5.0. The offending session gets a reject or is dropped;
/// the message names the message type, field and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty OUCH message (no type byte)")]
    Empty,
    #[error("unknown {direction} OUCH message type 0x{msg_type:02x}")]
    UnknownType { direction: &'static str, msg_type: u8 },
    #[error("{msg}: expected {expected_bytes} bytes, got {actual_bytes}")]
    WrongLength { msg: &'static str, expected_bytes: usize, actual_bytes: usize },
    #[error("{msg}: at least {min_bytes} bytes needed, got {actual_bytes}")]
    TooShort { msg: &'static str, min_bytes: usize, actual_bytes: usize },
    #[error("{msg}: appendage length field says {declared_bytes} bytes but {actual_bytes} follow")]
    AppendageLength { msg: &'static str, declared_bytes: usize, actual_bytes: usize },
    #[error("{msg}: field {field} at offset {offset} has invalid value 0x{value:02x}")]
    InvalidField { msg: &'static str, field: &'static str, offset: usize, value: u8 },
    #[error("{msg}: appendage element at offset {offset}: {error}")]
    Appendage { msg: &'static str, offset: usize, error: AppendageError },
}

pub(super) fn fixed_len(b: &[u8], msg: &'static str, expected_bytes: usize) -> Result<(), DecodeError> {
    if b.len() == expected_bytes {
        Ok(())
    } else {
        Err(DecodeError::WrongLength { msg, expected_bytes, actual_bytes: b.len() })
    }
}

pub(super) fn code<T>(
    rd: &mut Rd<'_>,
    msg: &'static str,
    field: &'static str,
    f: fn(u8) -> Option<T>,
) -> Result<T, DecodeError> {
    let offset = rd.pos;
    let value = rd.u8();
    f(value).ok_or(DecodeError::InvalidField { msg, field, offset, value })
}

pub(super) fn alpha<const N: usize>(
    rd: &mut Rd<'_>,
    msg: &'static str,
    field: &'static str,
) -> Result<Alpha<N>, DecodeError> {
    let offset = rd.pos;
    let raw: [u8; N] = rd.array();
    Alpha::from_wire(raw).ok_or_else(|| {
        let (i, value) =
            raw.iter().enumerate().find(|(_, b)| !is_printable(**b)).map_or((0, 0), |(i, b)| (i, *b));
        DecodeError::InvalidField { msg, field, offset: offset + i, value }
    })
}

pub(super) fn printable(rd: &mut Rd<'_>, msg: &'static str, field: &'static str) -> Result<u8, DecodeError> {
    code(rd, msg, field, |b| is_printable(b).then_some(b))
}
