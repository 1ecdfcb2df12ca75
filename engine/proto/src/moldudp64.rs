//! MoldUDP64 1.00: the UDP framing that carries ITCH (layout and sources in
//! `engine/proto/SPEC-NOTES.md`, "MoldUDP64").
//!
//! A downstream packet is a 20-byte header (Session alpha(10), Sequence Number u64 of its first
//! message, Message Count u16) followed by `count` message blocks, each a u16 length and that
//! many bytes. A count of 0 is a heartbeat and 0xFFFF the end of the session; both carry the
//! sequence number of the next message. A request packet (listener to the retransmission
//! server) is the same 20 bytes: session, first sequence wanted, count wanted.

use crate::wire::{Alpha, EncodeError, Rd, Wr};

pub const HEADER_BYTES: usize = 20;
/// Message Count of a heartbeat.
pub const HEARTBEAT_COUNT: u16 = 0;
/// Message Count of the End of Session packet.
pub const END_OF_SESSION_COUNT: u16 = 0xFFFF;

/// The header of a downstream packet, or a whole request packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub session: Alpha<10>,
    pub sequence: u64,
    pub count: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoldError {
    #[error("MoldUDP64 packet of {actual_bytes} bytes is shorter than its {HEADER_BYTES}-byte header")]
    ShortHeader { actual_bytes: usize },
    #[error("MoldUDP64 session at offset {offset} holds byte 0x{value:02x}, not printable ASCII")]
    Session { offset: usize, value: u8 },
    #[error("MoldUDP64 message block at offset {offset}: length {len_bytes} runs past the packet's {packet_bytes} bytes")]
    BlockOverrun { offset: usize, len_bytes: usize, packet_bytes: usize },
    #[error("MoldUDP64 packet declares {declared} messages but {found} end at offset {offset}")]
    CountMismatch { declared: u16, found: u16, offset: usize },
    #[error("MoldUDP64 request must be exactly {HEADER_BYTES} bytes, got {actual_bytes}")]
    RequestLength { actual_bytes: usize },
}

impl Header {
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Wr::new(out, HEADER_BYTES)?;
        w.bytes(self.session.as_wire());
        w.u64(self.sequence);
        w.u16(self.count);
        Ok(HEADER_BYTES)
    }

    pub fn decode(b: &[u8]) -> Result<Header, MoldError> {
        if b.len() < HEADER_BYTES {
            return Err(MoldError::ShortHeader { actual_bytes: b.len() });
        }
        let mut rd = Rd::new(b, 0);
        let raw: [u8; 10] = rd.array();
        let session = Alpha::from_wire(raw).ok_or_else(|| {
            let (offset, value) = raw
                .iter()
                .enumerate()
                .find(|(_, b)| !crate::wire::is_printable(**b))
                .map_or((0, 0), |(i, b)| (i, *b));
            MoldError::Session { offset, value }
        })?;
        Ok(Header { session, sequence: rd.u64(), count: rd.u16() })
    }

    pub fn is_heartbeat(&self) -> bool {
        self.count == HEARTBEAT_COUNT
    }

    pub fn is_end_of_session(&self) -> bool {
        self.count == END_OF_SESSION_COUNT
    }
}

/// Decodes a request packet (exactly one header).
pub fn decode_request(b: &[u8]) -> Result<Header, MoldError> {
    if b.len() != HEADER_BYTES {
        return Err(MoldError::RequestLength { actual_bytes: b.len() });
    }
    Header::decode(b)
}

/// A downstream packet being filled in a caller buffer: the header is written last, when the
/// count is known.
#[derive(Debug)]
pub struct PacketBuilder<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u16,
}

impl<'a> PacketBuilder<'a> {
    /// Starts a packet in `buf` (whose length is the packet's size limit).
    pub fn new(buf: &'a mut [u8]) -> Result<PacketBuilder<'a>, EncodeError> {
        if buf.len() < HEADER_BYTES {
            return Err(EncodeError::BufferTooSmall {
                needed_bytes: HEADER_BYTES,
                available_bytes: buf.len(),
            });
        }
        Ok(PacketBuilder { buf, len: HEADER_BYTES, count: 0 })
    }

    /// Whether a message of `message_bytes` still fits (and the count stays below 0xFFFF).
    pub fn fits(&self, message_bytes: usize) -> bool {
        self.len + 2 + message_bytes <= self.buf.len() && self.count < END_OF_SESSION_COUNT - 1
    }

    /// Appends one message block; false (nothing written) when it does not fit.
    pub fn push(&mut self, message: &[u8]) -> bool {
        if !self.fits(message.len()) || message.len() > u16::MAX as usize {
            return false;
        }
        self.buf[self.len..self.len + 2].copy_from_slice(&(message.len() as u16).to_be_bytes());
        self.buf[self.len + 2..self.len + 2 + message.len()].copy_from_slice(message);
        self.len += 2 + message.len();
        self.count += 1;
        true
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    /// Writes the header (`sequence`: the first message's number) and returns the packet.
    pub fn finish(self, session: Alpha<10>, sequence: u64) -> &'a [u8] {
        let header = Header { session, sequence, count: self.count };
        header.encode(self.buf).expect("the buffer holds a header: checked in new");
        &self.buf[..self.len]
    }
}

/// A downstream packet's message blocks, each checked to lie within the packet.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    b: &'a [u8],
    at: usize,
    left: u16,
    found: u16,
    declared: u16,
}

/// Decodes a downstream packet: its header and an iterator over its messages (none for a
/// heartbeat or End of Session). The iterator yields an error, once, for a block that overruns
/// the packet or a count that the bytes do not match.
pub fn decode_packet(b: &[u8]) -> Result<(Header, Messages<'_>), MoldError> {
    let header = Header::decode(b)?;
    let declared = if header.is_end_of_session() { 0 } else { header.count };
    Ok((header, Messages { b, at: HEADER_BYTES, left: declared, found: 0, declared }))
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<&'a [u8], MoldError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if self.at != self.b.len() {
                let error =
                    MoldError::CountMismatch { declared: self.declared, found: self.found, offset: self.at };
                self.at = self.b.len();
                return Some(Err(error));
            }
            return None;
        }
        let rest = &self.b[self.at..];
        if rest.len() < 2 {
            self.left = 0;
            let offset = self.at;
            self.at = self.b.len();
            return Some(Err(MoldError::CountMismatch {
                declared: self.declared,
                found: self.found,
                offset,
            }));
        }
        let len_bytes = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + len_bytes {
            let offset = self.at;
            self.left = 0;
            self.at = self.b.len();
            return Some(Err(MoldError::BlockOverrun { offset, len_bytes, packet_bytes: self.b.len() }));
        }
        let message = &rest[2..2 + len_bytes];
        self.at += 2 + len_bytes;
        self.left -= 1;
        self.found += 1;
        Some(Ok(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Alpha<10> {
        Alpha::new("session", "PETREL0001").unwrap()
    }

    #[test]
    fn a_packet_of_two_messages_is_the_header_then_length_prefixed_blocks() {
        let mut buf = [0u8; 64];
        let mut builder = PacketBuilder::new(&mut buf).unwrap();
        assert!(builder.push(b"abc"));
        assert!(builder.push(b"Z"));
        let packet = builder.finish(session(), 0x0102);
        let golden: &[u8] = b"PETREL0001\x00\x00\x00\x00\x00\x00\x01\x02\x00\x02\x00\x03abc\x00\x01Z";
        assert_eq!(packet, golden);
        let (header, messages) = decode_packet(packet).unwrap();
        assert_eq!(header, Header { session: session(), sequence: 0x0102, count: 2 });
        let got: Vec<_> = messages.collect();
        assert_eq!(got, vec![Ok(&b"abc"[..]), Ok(&b"Z"[..])]);
    }

    #[test]
    fn heartbeat_and_end_of_session_are_bare_headers() {
        let mut buf = [0u8; HEADER_BYTES];
        let hb = Header { session: session(), sequence: 7, count: HEARTBEAT_COUNT };
        hb.encode(&mut buf).unwrap();
        assert_eq!(&buf, b"PETREL0001\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00");
        let (h, mut m) = decode_packet(&buf).unwrap();
        assert!(h.is_heartbeat() && m.next().is_none());
        let end = Header { count: END_OF_SESSION_COUNT, ..hb };
        end.encode(&mut buf).unwrap();
        assert_eq!(&buf[18..], b"\xff\xff");
        let (h, mut m) = decode_packet(&buf).unwrap();
        assert!(h.is_end_of_session() && m.next().is_none());
    }

    #[test]
    fn a_full_packet_refuses_the_next_message_and_writes_nothing() {
        let mut buf = [0u8; HEADER_BYTES + 5];
        let mut builder = PacketBuilder::new(&mut buf).unwrap();
        assert!(builder.push(b"abc"));
        assert!(!builder.push(b""));
        assert_eq!(builder.count(), 1);
    }

    #[test]
    fn requests_must_be_exactly_one_header() {
        let mut buf = [0u8; 21];
        Header { session: session(), sequence: 5, count: 10 }.encode(&mut buf).unwrap();
        assert_eq!(decode_request(&buf[..20]), Ok(Header { session: session(), sequence: 5, count: 10 }));
        assert_eq!(decode_request(&buf), Err(MoldError::RequestLength { actual_bytes: 21 }));
        assert_eq!(decode_request(&buf[..3]), Err(MoldError::RequestLength { actual_bytes: 3 }));
        buf[4] = 0x07;
        assert_eq!(decode_request(&buf[..20]), Err(MoldError::Session { offset: 4, value: 7 }));
    }

    #[test]
    fn overrunning_blocks_and_wrong_counts_are_errors_naming_the_offset() {
        let mut packet = b"PETREL0001\x00\x00\x00\x00\x00\x00\x00\x01\x00\x02\x00\x03abc\x00\x09Z".to_vec();
        let (_, m) = decode_packet(&packet).unwrap();
        let got: Vec<_> = m.collect();
        assert_eq!(got[1], Err(MoldError::BlockOverrun { offset: 25, len_bytes: 9, packet_bytes: 28 }));
        packet[19] = 1;
        let (_, m) = decode_packet(&packet).unwrap();
        let got: Vec<_> = m.collect();
        assert_eq!(got[1], Err(MoldError::CountMismatch { declared: 1, found: 1, offset: 25 }));
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_bytes_never_panics_and_blocks_stay_inside(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok((_, messages)) = decode_packet(&data) {
                for block in messages.take(70_000).flatten() {
                    proptest::prop_assert!(block.len() <= data.len());
                }
            }
            let _ = decode_request(&data);
        }
    }
}
