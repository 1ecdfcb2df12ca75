//! The input journal's record payload: the core's encoded command (`petrel_core::codec`), then,
//! for a command a client sent, its *echo*: the bytes the gateway needs, besides the command's
//! events, to write the command's OUCH answers (ClOrdID, Display, Capacity, ...). Journaling the
//! echo makes each account's output stream a function of the input journal alone, so that
//! regeneration after a crash (and a standby replaying the journal) writes the very bytes the
//! live gateway sent.
//!
//! Layout: `command ‖ echo`. The command's first byte (its tag) fixes its length
//! ([`codec::command_len`]); whatever follows is the echo, at most [`ECHO_BYTES_MAX`] bytes. A
//! record without bytes after its command carries no echo: every record written before echoes
//! were journaled, and every command no client sent (control commands, cancel-on-disconnect).
//! The echo is opaque here and to the core, which never sees it; its layout belongs to the
//! gateway (`gateway/echo.rs`), whose first byte names the kind of echo.

use petrel_core::codec::{self, CodecError, MAX_COMMAND_BYTES};
use petrel_core::Command;

/// Most bytes of one command's echo.
pub const ECHO_BYTES_MAX: usize = 24;

/// Most bytes of one input-journal record's payload, echo included: what a command alone may
/// take, so that `journal.max_record_payload_bytes` (at least [`MAX_COMMAND_BYTES`], checked
/// with the configuration) holds every record, and configurations written before echoes were
/// journaled stay valid. The commands that carry an echo are short (the largest, an order
/// with its echo, takes 53 bytes: `gateway/echo.rs` tests it); [`encode`] asserts the bound.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = MAX_COMMAND_BYTES;
const _: () = assert!(RECORD_PAYLOAD_BYTES_MAX <= u8::MAX as usize);

/// The echo a command carries into its journal record: fixed size and `Copy`, so that it
/// travels with the command on the rings by value, never allocated. Empty for commands no
/// client sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommandEcho {
    len: u8,
    bytes: [u8; ECHO_BYTES_MAX],
}

impl CommandEcho {
    pub const NONE: CommandEcho = CommandEcho { len: 0, bytes: [0; ECHO_BYTES_MAX] };

    /// An echo of these bytes; `None` when they exceed [`ECHO_BYTES_MAX`].
    pub fn new(bytes: &[u8]) -> Option<CommandEcho> {
        let mut echo = CommandEcho::NONE;
        echo.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        echo.len = bytes.len() as u8;
        Some(echo)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for CommandEcho {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommandEcho({})", petrel_journal::hex_payload(self.as_bytes()))
    }
}

/// Why a record's payload is not a command and an echo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error(transparent)]
    Command(#[from] CodecError),
    #[error("{echo_bytes} bytes follow the command, more than an echo's {ECHO_BYTES_MAX}")]
    EchoTooLong { echo_bytes: usize },
}

/// Encodes `command` and its `echo` into `buf`, returning the payload's length. Never
/// allocates. Panics when the two exceed [`RECORD_PAYLOAD_BYTES_MAX`]: only the gateway attaches
/// echoes, to commands short enough (a programmer error otherwise, caught by its tests).
#[inline]
pub fn encode(command: &Command, echo: &CommandEcho, buf: &mut [u8; RECORD_PAYLOAD_BYTES_MAX]) -> usize {
    let command_len = codec::encode(command, buf);
    let end = command_len + echo.as_bytes().len();
    assert!(
        end <= RECORD_PAYLOAD_BYTES_MAX,
        "a {command_len}-byte command cannot carry a {}-byte echo",
        echo.len
    );
    buf[command_len..end].copy_from_slice(echo.as_bytes());
    end
}

/// Decodes a record's payload into its command and echo (empty when none follows the command).
pub fn decode(payload: &[u8]) -> Result<(Command, CommandEcho), RecordError> {
    let command_len = codec::command_len(payload)?.min(payload.len());
    let (command, echo) = payload.split_at(command_len);
    let command = codec::decode(command)?;
    let echo = CommandEcho::new(echo).ok_or(RecordError::EchoTooLong { echo_bytes: echo.len() })?;
    Ok((command, echo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_core::{AccountId, RiskLimits};

    fn commands() -> Vec<Command> {
        let (mut commands, _) = petrel_workload::exchange_core_mix(200, 7);
        commands.push(Command::SetRiskLimits { account: AccountId(3), limits: RiskLimits::UNLIMITED });
        commands
    }

    #[test]
    fn a_command_and_its_echo_round_trip() {
        let echoes =
            [CommandEcho::NONE, CommandEcho::new(b"\x01abc").unwrap(), CommandEcho::new(&[7; 19]).unwrap()];
        for command in commands() {
            let command_len = codec::encode(&command, &mut [0u8; MAX_COMMAND_BYTES]);
            // Only short commands carry long echoes (`encode` asserts it).
            for echo in echoes.iter().filter(|e| command_len + e.as_bytes().len() <= RECORD_PAYLOAD_BYTES_MAX)
            {
                let mut buf = [0u8; RECORD_PAYLOAD_BYTES_MAX];
                let len = encode(&command, echo, &mut buf);
                assert_eq!(len, command_len + echo.as_bytes().len());
                assert_eq!(decode(&buf[..len]), Ok((command, *echo)));
            }
        }
    }

    /// Records written before echoes were journaled hold the command alone: they decode as a
    /// command without echo, byte for byte what the core's codec wrote.
    #[test]
    fn a_payload_of_the_command_alone_has_no_echo() {
        for command in commands() {
            let mut old = [0u8; MAX_COMMAND_BYTES];
            let old_len = codec::encode(&command, &mut old);
            assert_eq!(decode(&old[..old_len]), Ok((command, CommandEcho::NONE)));
            let mut buf = [0u8; RECORD_PAYLOAD_BYTES_MAX];
            let len = encode(&command, &CommandEcho::NONE, &mut buf);
            assert_eq!(&buf[..len], &old[..old_len], "no echo: the old payload");
        }
    }

    #[test]
    fn damaged_payloads_are_errors() {
        let command = commands()[0];
        let mut buf = [0u8; RECORD_PAYLOAD_BYTES_MAX];
        let len = encode(&command, &CommandEcho::NONE, &mut buf);
        assert_eq!(decode(&[]), Err(RecordError::Command(CodecError::Empty)));
        assert!(matches!(decode(&buf[..len - 1]), Err(RecordError::Command(CodecError::Length { .. }))));
        let mut long = vec![0u8; len + ECHO_BYTES_MAX + 1];
        long[..len].copy_from_slice(&buf[..len]);
        assert_eq!(decode(&long), Err(RecordError::EchoTooLong { echo_bytes: ECHO_BYTES_MAX + 1 }));
        assert_eq!(CommandEcho::new(&[0; ECHO_BYTES_MAX + 1]), None);
    }
}
