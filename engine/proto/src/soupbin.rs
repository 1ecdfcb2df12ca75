//! SoupBinTCP 3.00 framing, typed packet views and encoders.
//!
//! A logical packet is a two-byte big-endian length (counting the type byte and the payload),
//! one packet-type byte, then the payload. The protocol sets no maximum payload, so the
//! receiver picks one ([`FrameLimits`]) and treats a longer packet as an attack.

use crate::wire::{is_printable, Alpha, EncodeError, Wr};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 2;
/// Bytes of the length prefix plus the packet-type byte.
pub const HEADER_BYTES: usize = 3;
/// Largest packet the 16-bit length prefix can describe (type byte + payload).
pub const PACKET_BYTES_MAX_WIRE: usize = u16::MAX as usize;

pub const USERNAME_BYTES: usize = 6;
pub const PASSWORD_BYTES: usize = 10;
pub const SESSION_BYTES: usize = 10;
pub const SEQUENCE_NUMBER_BYTES: usize = 20;
/// Payload bytes of a Login Request: username, password, requested session, requested sequence.
pub const LOGIN_REQUEST_PAYLOAD_BYTES: usize =
    USERNAME_BYTES + PASSWORD_BYTES + SESSION_BYTES + SEQUENCE_NUMBER_BYTES;
/// Payload bytes of a Login Accepted: session and sequence number.
pub const LOGIN_ACCEPTED_PAYLOAD_BYTES: usize = SESSION_BYTES + SEQUENCE_NUMBER_BYTES;

pub type Username = Alpha<USERNAME_BYTES>;
pub type Password = Alpha<PASSWORD_BYTES>;
pub type SessionName = Alpha<SESSION_BYTES>;

/// Packet-type bytes, spelled as the spec spells them.
pub mod packet_type {
    pub const DEBUG: u8 = b'+';
    pub const LOGIN_ACCEPTED: u8 = b'A';
    pub const LOGIN_REJECTED: u8 = b'J';
    pub const SEQUENCED_DATA: u8 = b'S';
    pub const SERVER_HEARTBEAT: u8 = b'H';
    pub const END_OF_SESSION: u8 = b'Z';
    pub const LOGIN_REQUEST: u8 = b'L';
    pub const UNSEQUENCED_DATA: u8 = b'U';
    pub const CLIENT_HEARTBEAT: u8 = b'R';
    pub const LOGOUT_REQUEST: u8 = b'O';
}

/// The receiver's bound on one packet (type byte + payload), checked before any payload is
/// buffered so a peer cannot make the gateway hold more than this per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    pub packet_bytes_max: usize,
}

impl FrameLimits {
    /// Largest legitimate client packet: an Unsequenced Data packet carrying an OUCH Enter
    /// Order (47 fixed bytes) with a generous appendage; 1 KiB leaves ample room.
    pub const CLIENT_DEFAULT: Self = Self { packet_bytes_max: 1024 };

    pub fn new(packet_bytes_max: usize) -> Self {
        assert!(
            (1..=PACKET_BYTES_MAX_WIRE).contains(&packet_bytes_max),
            "packet_bytes_max must be within 1..=65535, got {packet_bytes_max}"
        );
        Self { packet_bytes_max }
    }
}

/// A packet whose length prefix is intact; the type byte is not yet interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub packet_type: u8,
    pub payload: &'a [u8],
}

/// The byte stream cannot be framed; the session must be dropped because the stream has lost
/// its packet boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("packet length prefix is 0; a SoupBinTCP packet has at least a type byte")]
    ZeroLength,
    #[error("packet of {len_bytes} bytes exceeds the configured limit of {max_bytes} bytes")]
    Oversize { len_bytes: usize, max_bytes: usize },
}

/// Finds the next complete packet at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a packet (read more and call again), or the
/// frame and the number of bytes it occupies (consume them). The length prefix is checked
/// against `limits` as soon as its two bytes are present, before the payload arrives.
pub fn next_frame(buf: &[u8], limits: FrameLimits) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX_BYTES) else {
        return Ok(None);
    };
    let len_bytes = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    if len_bytes == 0 {
        return Err(FrameError::ZeroLength);
    }
    if len_bytes > limits.packet_bytes_max {
        return Err(FrameError::Oversize { len_bytes, max_bytes: limits.packet_bytes_max });
    }
    let total_bytes = LENGTH_PREFIX_BYTES + len_bytes;
    let Some(packet) = buf.get(LENGTH_PREFIX_BYTES..total_bytes) else {
        return Ok(None);
    };
    Ok(Some((Frame { packet_type: packet[0], payload: &packet[1..] }, total_bytes)))
}

/// A framed packet that is not a valid SoupBinTCP packet for its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("unknown packet type 0x{packet_type:02x} for this direction")]
    UnknownType { packet_type: u8 },
    #[error("packet type '{}' needs a {expected_bytes}-byte payload, got {actual_bytes}", char::from(*packet_type))]
    WrongLength { packet_type: u8, expected_bytes: usize, actual_bytes: usize },
    #[error("packet type '{}': field {field} at payload offset {offset} is not printable ASCII", char::from(*packet_type))]
    NotPrintable { packet_type: u8, field: &'static str, offset: usize },
    #[error("packet type '{}': numeric field {field} at payload offset {offset} is malformed ({reason})", char::from(*packet_type))]
    BadNumber { packet_type: u8, field: &'static str, offset: usize, reason: &'static str },
    #[error("login rejected packet carries unknown reason code 0x{code:02x}")]
    UnknownRejectReason { code: u8 },
}

/// Either a framing failure or a packet that is wrong for its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SoupError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Packet(#[from] PacketError),
}

/// Login Request ('L'): the only packet a client may send before it is logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRequest {
    pub username: Username,
    pub password: Password,
    /// Blank asks for the currently active session.
    pub requested_session: SessionName,
    /// Sequence number of the next Sequenced Data message the client wants; 0 asks to start
    /// with the most recently generated message.
    pub requested_sequence_number: u64,
}

/// Login Accepted ('A').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAccepted {
    pub session: SessionName,
    /// Sequence number of the next Sequenced Data packet the server will send.
    pub sequence_number: u64,
}

/// Login Rejected reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRejectReason {
    /// 'A': invalid username or password.
    NotAuthorized,
    /// 'S': the requested session is invalid or not available.
    SessionNotAvailable,
}

impl LoginRejectReason {
    pub fn code(self) -> u8 {
        match self {
            Self::NotAuthorized => b'A',
            Self::SessionNotAvailable => b'S',
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            b'A' => Some(Self::NotAuthorized),
            b'S' => Some(Self::SessionNotAvailable),
            _ => None,
        }
    }
}

/// Packets a client sends to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientPacket<'a> {
    Debug(&'a [u8]),
    LoginRequest(LoginRequest),
    UnsequencedData(&'a [u8]),
    ClientHeartbeat,
    LogoutRequest,
}

/// Packets a server sends to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerPacket<'a> {
    Debug(&'a [u8]),
    LoginAccepted(LoginAccepted),
    LoginRejected(LoginRejectReason),
    SequencedData(&'a [u8]),
    ServerHeartbeat,
    EndOfSession,
}

fn expect_len(frame: &Frame<'_>, expected_bytes: usize) -> Result<(), PacketError> {
    if frame.payload.len() == expected_bytes {
        Ok(())
    } else {
        Err(PacketError::WrongLength {
            packet_type: frame.packet_type,
            expected_bytes,
            actual_bytes: frame.payload.len(),
        })
    }
}

fn alpha_at<const N: usize>(
    frame: &Frame<'_>,
    offset: usize,
    field: &'static str,
) -> Result<Alpha<N>, PacketError> {
    let mut raw = [0u8; N];
    raw.copy_from_slice(&frame.payload[offset..offset + N]);
    Alpha::from_wire(raw).ok_or(PacketError::NotPrintable { packet_type: frame.packet_type, field, offset })
}

/// Parses a SoupBinTCP numeric field: ASCII digits, right-justified and padded on the left
/// with spaces. Right padding is tolerated too because some clients left-justify numbers;
/// spaces inside the digits, an all-blank field and values above `u64::MAX` are errors.
pub fn parse_numeric(raw: &[u8]) -> Result<u64, &'static str> {
    let start = raw.iter().position(|b| *b != b' ').ok_or("field is blank")?;
    let end = raw.iter().rposition(|b| *b != b' ').map_or(start, |i| i + 1);
    let mut value: u64 = 0;
    for b in &raw[start..end] {
        if !b.is_ascii_digit() {
            return Err("non-digit character");
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or("value exceeds u64")?;
    }
    Ok(value)
}

fn numeric_at(frame: &Frame<'_>, offset: usize, field: &'static str) -> Result<u64, PacketError> {
    parse_numeric(&frame.payload[offset..offset + SEQUENCE_NUMBER_BYTES])
        .map_err(|reason| PacketError::BadNumber { packet_type: frame.packet_type, field, offset, reason })
}

impl<'a> ClientPacket<'a> {
    pub fn parse(frame: Frame<'a>) -> Result<Self, PacketError> {
        use packet_type as t;
        match frame.packet_type {
            t::DEBUG => Ok(Self::Debug(frame.payload)),
            t::LOGIN_REQUEST => {
                expect_len(&frame, LOGIN_REQUEST_PAYLOAD_BYTES)?;
                Ok(Self::LoginRequest(LoginRequest {
                    username: alpha_at(&frame, 0, "username")?,
                    password: alpha_at(&frame, 6, "password")?,
                    requested_session: alpha_at(&frame, 16, "requested_session")?,
                    requested_sequence_number: numeric_at(&frame, 26, "requested_sequence_number")?,
                }))
            }
            t::UNSEQUENCED_DATA => Ok(Self::UnsequencedData(frame.payload)),
            t::CLIENT_HEARTBEAT => expect_len(&frame, 0).map(|()| Self::ClientHeartbeat),
            t::LOGOUT_REQUEST => expect_len(&frame, 0).map(|()| Self::LogoutRequest),
            other => Err(PacketError::UnknownType { packet_type: other }),
        }
    }
}

impl<'a> ServerPacket<'a> {
    pub fn parse(frame: Frame<'a>) -> Result<Self, PacketError> {
        use packet_type as t;
        match frame.packet_type {
            t::DEBUG => Ok(Self::Debug(frame.payload)),
            t::LOGIN_ACCEPTED => {
                expect_len(&frame, LOGIN_ACCEPTED_PAYLOAD_BYTES)?;
                Ok(Self::LoginAccepted(LoginAccepted {
                    session: alpha_at(&frame, 0, "session")?,
                    sequence_number: numeric_at(&frame, 10, "sequence_number")?,
                }))
            }
            t::LOGIN_REJECTED => {
                expect_len(&frame, 1)?;
                let code = frame.payload[0];
                LoginRejectReason::from_code(code)
                    .map(Self::LoginRejected)
                    .ok_or(PacketError::UnknownRejectReason { code })
            }
            t::SEQUENCED_DATA => Ok(Self::SequencedData(frame.payload)),
            t::SERVER_HEARTBEAT => expect_len(&frame, 0).map(|()| Self::ServerHeartbeat),
            t::END_OF_SESSION => expect_len(&frame, 0).map(|()| Self::EndOfSession),
            other => Err(PacketError::UnknownType { packet_type: other }),
        }
    }
}

/// Frames and parses the next client packet at the start of `buf` (server side).
pub fn next_client_packet(
    buf: &[u8],
    limits: FrameLimits,
) -> Result<Option<(ClientPacket<'_>, usize)>, SoupError> {
    match next_frame(buf, limits)? {
        None => Ok(None),
        Some((frame, consumed)) => Ok(Some((ClientPacket::parse(frame)?, consumed))),
    }
}

/// Frames and parses the next server packet at the start of `buf` (client side).
pub fn next_server_packet(
    buf: &[u8],
    limits: FrameLimits,
) -> Result<Option<(ServerPacket<'_>, usize)>, SoupError> {
    match next_frame(buf, limits)? {
        None => Ok(None),
        Some((frame, consumed)) => Ok(Some((ServerPacket::parse(frame)?, consumed))),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoders
// ---------------------------------------------------------------------------------------------

/// Writes a whole packet: length prefix, type byte and payload.
pub fn encode_packet(buf: &mut [u8], packet_type: u8, payload: &[u8]) -> Result<usize, EncodeError> {
    let len = payload_len_prefix(payload.len())?;
    let total = HEADER_BYTES + payload.len();
    let mut w = Wr::new(buf, total)?;
    w.u16(len);
    w.u8(packet_type);
    w.bytes(payload);
    Ok(total)
}

fn payload_len_prefix(payload_bytes: usize) -> Result<u16, EncodeError> {
    u16::try_from(payload_bytes + 1).map_err(|_| EncodeError::PayloadTooLarge {
        len_bytes: payload_bytes,
        max_bytes: PACKET_BYTES_MAX_WIRE - 1,
    })
}

/// Writes a packet whose payload `fill` encodes in place (for example an OUCH message),
/// avoiding a copy: `fill` gets the buffer after the 3-byte header and returns the payload
/// length it wrote.
pub fn encode_packet_with(
    buf: &mut [u8],
    packet_type: u8,
    fill: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    if buf.len() < HEADER_BYTES {
        return Err(EncodeError::BufferTooSmall { needed_bytes: HEADER_BYTES, available_bytes: buf.len() });
    }
    let payload_bytes = fill(&mut buf[HEADER_BYTES..])?;
    let len = payload_len_prefix(payload_bytes)?;
    buf[..2].copy_from_slice(&len.to_be_bytes());
    buf[2] = packet_type;
    Ok(HEADER_BYTES + payload_bytes)
}

/// Right-justifies `value` in a space-padded numeric field.
pub fn write_numeric<const N: usize>(field: &'static str, value: u64) -> Result<[u8; N], EncodeError> {
    let mut out = [b' '; N];
    let mut v = value;
    let mut i = N;
    loop {
        if i == 0 {
            return Err(EncodeError::NumberTooWide { field, value, width: N });
        }
        i -= 1;
        // `v % 10` is below 10, so the cast cannot truncate.
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return Ok(out);
        }
    }
}

impl LoginRequest {
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let seq: [u8; SEQUENCE_NUMBER_BYTES] =
            write_numeric("requested_sequence_number", self.requested_sequence_number)?;
        let mut payload = [0u8; LOGIN_REQUEST_PAYLOAD_BYTES];
        payload[..6].copy_from_slice(self.username.as_wire());
        payload[6..16].copy_from_slice(self.password.as_wire());
        payload[16..26].copy_from_slice(self.requested_session.as_wire());
        payload[26..].copy_from_slice(&seq);
        encode_packet(buf, packet_type::LOGIN_REQUEST, &payload)
    }
}

impl LoginAccepted {
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let seq: [u8; SEQUENCE_NUMBER_BYTES] = write_numeric("sequence_number", self.sequence_number)?;
        let mut payload = [0u8; LOGIN_ACCEPTED_PAYLOAD_BYTES];
        payload[..10].copy_from_slice(self.session.as_wire());
        payload[10..].copy_from_slice(&seq);
        encode_packet(buf, packet_type::LOGIN_ACCEPTED, &payload)
    }
}

impl ClientPacket<'_> {
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Self::Debug(text) => encode_packet(buf, packet_type::DEBUG, text),
            Self::LoginRequest(login) => login.encode(buf),
            Self::UnsequencedData(data) => encode_packet(buf, packet_type::UNSEQUENCED_DATA, data),
            Self::ClientHeartbeat => encode_packet(buf, packet_type::CLIENT_HEARTBEAT, &[]),
            Self::LogoutRequest => encode_packet(buf, packet_type::LOGOUT_REQUEST, &[]),
        }
    }
}

impl ServerPacket<'_> {
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Self::Debug(text) => encode_packet(buf, packet_type::DEBUG, text),
            Self::LoginAccepted(accepted) => accepted.encode(buf),
            Self::LoginRejected(reason) => encode_packet(buf, packet_type::LOGIN_REJECTED, &[reason.code()]),
            Self::SequencedData(data) => encode_packet(buf, packet_type::SEQUENCED_DATA, data),
            Self::ServerHeartbeat => encode_packet(buf, packet_type::SERVER_HEARTBEAT, &[]),
            Self::EndOfSession => encode_packet(buf, packet_type::END_OF_SESSION, &[]),
        }
    }
}

/// True when every byte of a Debug packet's text is printable ASCII (the spec calls it free
/// form text; the server logs it, so it must not carry control bytes into a log line).
pub fn debug_text_is_printable(text: &[u8]) -> bool {
    text.iter().all(|b| is_printable(*b))
}
