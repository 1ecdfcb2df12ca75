//! The gateway's own answers, sequenced as notes (`petrel_core::Command::Note`).
//!
//! Some messages an account is sent come from no order the core acts on: Order Rejected for a
//! feature Petrel does not offer, Cancel Reject for Modify Order, and Account Query Response.
//! (Start of Day, the first message of every stream, is written when the stream is created,
//! with timestamp 0 on every host: `streams.rs`.) The gateway submits each as a note carrying what the
//! message needs; the core returns it unchanged as `Event::Noted`, and the message is written
//! when that event is released, with the journal's timestamp, like every other answer. So an
//! account's whole stream follows from the input journal: a restart regenerates these messages
//! too, and a hot standby writes the same stream, byte for byte, for its clients to resume on.
//!
//! Layout (little-endian, zero-padded to [`NOTE_BYTES`]), one kind byte first (the OUCH message
//! type it becomes):

//! - `J`, Order Rejected: UserRefNum u32, Reason u16, ClOrdID (14 bytes, as on the wire);
//! - `I`, Cancel Reject: UserRefNum u32;
//! - `Q`, Account Query Response: NextUserRefNum u32.
//!
//! A kind this build does not know, or a field that is not valid, is reported and nothing is
//! written for that note (a journal from a newer build).
//!
//! A note for [`ENGINE`] (no account) is about the engine, and no stream gets a message for it:
//! the journal keeps it, so that the journal alone tells what happened to replication
//! ([`EngineNote`]): `R`, the primary's standby state changed under `ack = "standby"` (whether
//! the standby holds every acknowledged order, and whether nothing is acknowledged for lack of
//! one), two flag bytes; `E`, a promotion began an epoch, its number (u64).

use petrel_core::{AccountId, Note, NOTE_BYTES};
use petrel_proto::ouch::{self, Outbound};

const KIND_ORDER_REJECTED: u8 = b'J';
const KIND_CANCEL_REJECT: u8 = b'I';
const KIND_ACCOUNT_QUERY: u8 = b'Q';
const KIND_REPLICATION: u8 = b'R';
const KIND_EPOCH: u8 = b'E';

/// The account of a note about the engine rather than an account.
pub const ENGINE: AccountId = AccountId(u32::MAX);

/// What the journal records about the engine itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineNote {
    /// The primary's standby state changed (`ack = "standby"`): from this record on, whether
    /// the standby holds every acknowledged order (promotable) and whether this primary
    /// acknowledges nothing for lack of one (halted).
    Replication { promotable: bool, halted: bool },
    /// A promotion made this engine the primary of epoch `number`: the epoch's first record.
    Epoch { number: u64 },
}

impl EngineNote {
    pub fn encode(&self) -> Note {
        let mut note = [0u8; NOTE_BYTES];
        match *self {
            EngineNote::Replication { promotable, halted } => {
                note[0] = KIND_REPLICATION;
                (note[1], note[2]) = (u8::from(promotable), u8::from(halted));
            }
            EngineNote::Epoch { number } => {
                note[0] = KIND_EPOCH;
                note[1..9].copy_from_slice(&number.to_le_bytes());
            }
        }
        note
    }

    pub fn decode(note: &Note) -> Result<EngineNote, NoteError> {
        let flag = |b: u8| match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(NoteError::Flag),
        };
        Ok(match note[0] {
            KIND_REPLICATION => {
                EngineNote::Replication { promotable: flag(note[1])?, halted: flag(note[2])? }
            }
            KIND_EPOCH => {
                EngineNote::Epoch { number: u64::from_le_bytes(note[1..9].try_into().expect("8 bytes")) }
            }
            kind => return Err(NoteError::UnknownKind { kind }),
        })
    }

    /// What the gateway's log says when the note is released.
    pub(super) fn log_text(&self) -> &'static str {
        match *self {
            EngineNote::Replication { promotable: true, halted: false } => {
                "journaled: the standby holds every acknowledged order again"
            }
            EngineNote::Replication { promotable: false, halted: false } => {
                "journaled: acknowledging without a standby; the standby is not promotable"
            }
            EngineNote::Replication { halted: true, .. } => {
                "journaled: no standby caught up; acknowledging nothing (halt)"
            }
            EngineNote::Epoch { .. } => "journaled: a promotion began this epoch",
        }
    }
}

/// One of the gateway's own answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    OrderRejected { user_ref: u32, reason: ouch::RejectReason, cl_ord_id: ouch::ClOrdId },
    CancelReject { user_ref: u32 },
    AccountQuery { next_user_ref: u32 },
}

/// Why a note's bytes are not an answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("unknown note kind {kind:#04x}")]
    UnknownKind { kind: u8 },
    #[error("invalid ClOrdID in an Order Rejected note")]
    ClOrdId,
    #[error("a flag byte that is neither 0 nor 1")]
    Flag,
}

impl Answer {
    pub(super) fn encode(&self) -> Note {
        let mut note = [0u8; NOTE_BYTES];
        let (kind, user_ref) = match *self {
            Answer::OrderRejected { user_ref, reason, cl_ord_id } => {
                note[5..7].copy_from_slice(&reason.0.to_le_bytes());
                note[7..21].copy_from_slice(cl_ord_id.as_wire());
                (KIND_ORDER_REJECTED, user_ref)
            }
            Answer::CancelReject { user_ref } => (KIND_CANCEL_REJECT, user_ref),
            Answer::AccountQuery { next_user_ref } => (KIND_ACCOUNT_QUERY, next_user_ref),
        };
        note[0] = kind;
        note[1..5].copy_from_slice(&user_ref.to_le_bytes());
        note
    }

    pub(super) fn decode(note: &Note) -> Result<Answer, NoteError> {
        let number = u32::from_le_bytes(note[1..5].try_into().expect("4 bytes"));
        Ok(match note[0] {
            KIND_ORDER_REJECTED => Answer::OrderRejected {
                user_ref: number,
                reason: ouch::RejectReason(u16::from_le_bytes(note[5..7].try_into().expect("2 bytes"))),
                cl_ord_id: ouch::ClOrdId::from_wire(note[7..21].try_into().expect("14 bytes"))
                    .ok_or(NoteError::ClOrdId)?,
            },
            KIND_CANCEL_REJECT => Answer::CancelReject { user_ref: number },
            KIND_ACCOUNT_QUERY => Answer::AccountQuery { next_user_ref: number },
            kind => return Err(NoteError::UnknownKind { kind }),
        })
    }

    /// The OUCH message, stamped `timestamp_ns` (nanoseconds since midnight).
    pub(super) fn message(&self, timestamp_ns: u64) -> Outbound<'static> {
        match *self {
            Answer::OrderRejected { user_ref, reason, cl_ord_id } => {
                Outbound::OrderRejected(ouch::OrderRejected {
                    timestamp_ns,
                    user_ref_num: user_ref,
                    reason,
                    cl_ord_id,
                })
            }
            Answer::CancelReject { user_ref } => {
                Outbound::CancelReject { timestamp_ns, user_ref_num: user_ref }
            }
            Answer::AccountQuery { next_user_ref } => {
                Outbound::AccountQueryResponse(ouch::AccountQueryResponse {
                    timestamp_ns,
                    next_user_ref_num: next_user_ref,
                })
            }
        }
    }
}

/// A note as text, for `journal dump`.
pub fn describe(account: AccountId, note: &Note) -> String {
    if account == ENGINE {
        return match EngineNote::decode(note) {
            Ok(EngineNote::Replication { promotable, halted }) => {
                format!("engine replication standby_promotable={promotable} halted={halted}")
            }
            Ok(EngineNote::Epoch { number }) => format!("engine epoch={number}"),
            Err(e) => format!("engine UNREADABLE ({e}) {}", petrel_journal::hex_payload(note)),
        };
    }
    let text = match Answer::decode(note) {
        Ok(Answer::OrderRejected { user_ref, reason, cl_ord_id }) => format!(
            "order-rejected user_ref={user_ref} reason={:#06x} cl_ord_id={:?}",
            reason.0,
            cl_ord_id.as_str()
        ),
        Ok(Answer::CancelReject { user_ref }) => format!("cancel-reject user_ref={user_ref}"),
        Ok(Answer::AccountQuery { next_user_ref }) => format!("account-query next_user_ref={next_user_ref}"),
        Err(e) => format!("UNREADABLE ({e}) {}", petrel_journal::hex_payload(note)),
    };
    format!("account={} {text}", account.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> [Answer; 3] {
        [
            Answer::OrderRejected {
                user_ref: u32::MAX,
                reason: ouch::RejectReason::INVALID_DISPLAY,
                cl_ord_id: ouch::ClOrdId::new("ClOrdID", "ABCDEFGHIJKLMN").unwrap(),
            },
            Answer::CancelReject { user_ref: 7 },
            Answer::AccountQuery { next_user_ref: 1 << 20 },
        ]
    }

    #[test]
    fn every_answer_round_trips_through_a_note() {
        for answer in answers() {
            assert_eq!(Answer::decode(&answer.encode()), Ok(answer));
        }
        assert_eq!(describe(AccountId(2), &answers()[1].encode()), "account=2 cancel-reject user_ref=7");
        for note in
            [EngineNote::Replication { promotable: false, halted: true }, EngineNote::Epoch { number: 9 }]
        {
            assert_eq!(EngineNote::decode(&note.encode()), Ok(note));
        }
        assert_eq!(describe(ENGINE, &EngineNote::Epoch { number: 9 }.encode()), "engine epoch=9");
    }

    #[test]
    fn a_note_this_build_cannot_read_is_an_error() {
        let mut note = Answer::CancelReject { user_ref: 1 }.encode();
        note[0] = b'?';
        assert_eq!(Answer::decode(&note), Err(NoteError::UnknownKind { kind: b'?' }));
        assert!(describe(AccountId(0), &note).starts_with("account=0 UNREADABLE"));
        let mut note = EngineNote::Replication { promotable: true, halted: false }.encode();
        note[2] = 7;
        assert_eq!(EngineNote::decode(&note), Err(NoteError::Flag));
        let mut note = answers()[0].encode();
        note[7] = 0x01;
        assert_eq!(Answer::decode(&note), Err(NoteError::ClOrdId));
    }

    #[test]
    fn each_note_becomes_the_ouch_message_of_its_kind() {
        let types: Vec<u8> = answers()
            .iter()
            .map(|a| {
                let mut buf = [0u8; 512];
                let len = a.message(42).encode(&mut buf).unwrap();
                buf[..len][0]
            })
            .collect();
        assert_eq!(types, b"JIQ");
    }
}
