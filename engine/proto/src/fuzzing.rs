//! Fuzz entry points shared by the `cargo fuzz` targets (engine/proto/fuzz) and the stable
//! property tests, so both exercise exactly the same oracles. Each function accepts any bytes,
//! must never panic, and asserts that whatever decodes re-encodes to bytes that decode to the
//! same packet. (Not always to the identical bytes: the SoupBinTCP decoder accepts numbers with
//! leading zeros or left-justified, which the encoder writes canonically, right-justified and
//! space-padded. Such input re-encodes canonically, and the canonical form is a fixed point.)

use crate::ouch::{Inbound, Outbound};
use crate::session::{ServerSession, SessionTimers, TimerAction};
use crate::soupbin::{next_client_packet, next_server_packet, FrameLimits, HEADER_BYTES};

/// Largest message the oracles re-encode; bigger inputs are still decoded.
const SCRATCH_BYTES: usize = 70_000;

/// Feeds `data` as a client byte stream to the framer and the server session machine, with a
/// clock that advances 100 ms per packet so the timers fire too.
pub fn soupbin_server_stream(data: &[u8]) {
    let limits = FrameLimits::new(512);
    let mut session = ServerSession::new(SessionTimers::default(), 0);
    let mut now_ns = 0u64;
    let mut rest = data;
    let mut scratch = vec![0u8; SCRATCH_BYTES];
    // Each iteration consumes at least HEADER_BYTES or stops, so the loop is bounded by
    // data.len() / HEADER_BYTES.
    loop {
        now_ns += 100_000_000;
        if let TimerAction::Disconnect(_) = session.poll(now_ns) {
            return;
        }
        match next_client_packet(rest, limits) {
            Ok(None) | Err(_) => return,
            Ok(Some((packet, used))) => {
                assert!(used >= HEADER_BYTES && used <= rest.len(), "framer consumed {used}");
                let n = packet.encode(&mut scratch).expect("decoded packet re-encodes");
                let again = next_client_packet(&scratch[..n], limits);
                assert_eq!(again, Ok(Some((packet, n))), "the re-encoding decodes to the same packet");
                rest = &rest[used..];
                match session.on_packet(now_ns, packet) {
                    Err(_) => return,
                    Ok(crate::session::SessionEvent::LoginRequested(_)) => session.accept(now_ns),
                    Ok(crate::session::SessionEvent::Data(payload)) => ouch_inbound(payload),
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Client side: a server byte stream, each sequenced payload decoded as OUCH outbound.
pub fn soupbin_client_stream(data: &[u8]) {
    let mut rest = data;
    let mut scratch = vec![0u8; SCRATCH_BYTES];
    let limits = FrameLimits::new(u16::MAX.into());
    while let Ok(Some((packet, used))) = next_server_packet(rest, limits) {
        let n = packet.encode(&mut scratch).expect("decoded packet re-encodes");
        let again = next_server_packet(&scratch[..n], limits);
        assert_eq!(again, Ok(Some((packet, n))), "the re-encoding decodes to the same packet");
        if let crate::soupbin::ServerPacket::SequencedData(payload) = packet {
            ouch_outbound(payload);
        }
        rest = &rest[used..];
    }
}

pub fn ouch_inbound(data: &[u8]) {
    if let Ok(msg) = Inbound::decode(data) {
        let mut scratch = vec![0u8; data.len()];
        let n = msg.encode(&mut scratch).expect("decoded inbound re-encodes");
        assert_eq!(&scratch[..n], data, "inbound re-encoding differs: {msg:?}");
    }
}

pub fn ouch_outbound(data: &[u8]) {
    if let Ok(msg) = Outbound::decode(data) {
        let mut scratch = vec![0u8; data.len()];
        let n = msg.encode(&mut scratch).expect("decoded outbound re-encodes");
        assert_eq!(&scratch[..n], data, "outbound re-encoding differs: {msg:?}");
    }
}

/// An ITCH message: whatever decodes re-encodes to bytes that decode to the same message, and
/// to the same bytes except Stock Trading Action's reserved byte (written as a space).
pub fn itch_message(data: &[u8]) {
    if let Ok(msg) = crate::itch::Message::decode(data) {
        let mut scratch = [0u8; crate::itch::MESSAGE_BYTES_MAX];
        let n = msg.encode(&mut scratch).expect("decoded ITCH re-encodes");
        assert_eq!(crate::itch::Message::decode(&scratch[..n]), Ok(msg));
        if data[0] != b'H' {
            assert_eq!(&scratch[..n], data, "ITCH re-encoding differs: {msg:?}");
        }
    }
}

/// A MoldUDP64 packet or request: a downstream packet whose blocks all decode is rebuilt byte
/// for byte from its header and blocks; no block ever lies outside the packet.
pub fn moldudp64_packet(data: &[u8]) {
    use crate::moldudp64::{
        decode_packet, decode_request, PacketBuilder, END_OF_SESSION_COUNT, HEADER_BYTES,
    };
    let _ = decode_request(data);
    let Ok((header, messages)) = decode_packet(data) else { return };
    let blocks: Result<Vec<&[u8]>, _> = messages.collect();
    let Ok(blocks) = blocks else { return };
    if header.count == END_OF_SESSION_COUNT {
        assert_eq!(data.len(), HEADER_BYTES, "End of Session carries no blocks");
        return;
    }
    assert_eq!(blocks.len(), usize::from(header.count));
    let mut scratch = vec![0u8; data.len()];
    let mut builder = PacketBuilder::new(&mut scratch).expect("a decoded packet holds a header");
    for block in &blocks {
        assert!(builder.push(block), "a decoded block fits again");
    }
    assert_eq!(builder.finish(header.session, header.sequence), data);
}
