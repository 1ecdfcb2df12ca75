//! Golden byte vectors written out by hand from the spec's field tables (see SPEC-NOTES.md),
//! not produced by this crate's encoders: a layout mistake in both encoder and decoder would
//! otherwise cancel out.

use petrel_proto::ouch::{
    tag, Appendage, CancelReason, Capacity, CrossType, DecodeError, Display, EventCode, Inbound,
    IntermarketSweep, LiquidityFlag, OrderState, Outbound, Price, RejectReason, Side, TagValue, TimeInForce,
};
use petrel_proto::soupbin::{
    next_client_packet, next_frame, next_server_packet, ClientPacket, FrameError, FrameLimits, LoginAccepted,
    LoginRejectReason, LoginRequest, PacketError, ServerPacket, SoupError,
};
use petrel_proto::Alpha;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|h| u8::from_str_radix(h, 16).expect("test vector hex")).collect()
}

const SP: &str = "20";

fn spaces(n: usize) -> String {
    vec![SP; n].join(" ")
}

fn login_request_bytes() -> Vec<u8> {
    // len=47 ('L' + 46), 'L', "USER01", "pw"+8sp, session blank, seq "1" right-justified.
    hex(&format!("00 2F 4C  55 53 45 52 30 31  70 77 {}  {}  {} 31", spaces(8), spaces(10), spaces(19)))
}

#[test]
fn login_request_golden_decodes_and_encodes() {
    let bytes = login_request_bytes();
    let (packet, used) = next_client_packet(&bytes, FrameLimits::CLIENT_DEFAULT).unwrap().unwrap();
    assert_eq!(used, 49);
    let ClientPacket::LoginRequest(login) = packet else { panic!("not a login: {packet:?}") };
    assert_eq!(login.username.as_str(), "USER01");
    assert_eq!(login.password.as_str(), "pw");
    assert!(login.requested_session.is_blank());
    assert_eq!(login.requested_sequence_number, 1);
    let mut out = [0u8; 64];
    let n = login.encode(&mut out).unwrap();
    assert_eq!(&out[..n], &bytes[..]);
}

#[test]
fn login_accepted_golden() {
    // len=31, 'A', session "S1"+8sp, sequence 42 right-justified in 20.
    let bytes = hex(&format!("00 1F 41  53 31 {}  {} 34 32", spaces(8), spaces(18)));
    let accepted = LoginAccepted { session: Alpha::new("session", "S1").unwrap(), sequence_number: 42 };
    let mut out = [0u8; 64];
    let n = accepted.encode(&mut out).unwrap();
    assert_eq!(&out[..n], &bytes[..]);
    let (packet, _) = next_server_packet(&bytes, FrameLimits::new(64)).unwrap().unwrap();
    assert_eq!(packet, ServerPacket::LoginAccepted(accepted));
}

#[test]
fn short_server_packets_golden() {
    let mut out = [0u8; 8];
    let cases: [(ServerPacket<'_>, &str); 4] = [
        (ServerPacket::LoginRejected(LoginRejectReason::NotAuthorized), "00 02 4A 41"),
        (ServerPacket::LoginRejected(LoginRejectReason::SessionNotAvailable), "00 02 4A 53"),
        (ServerPacket::ServerHeartbeat, "00 01 48"),
        (ServerPacket::EndOfSession, "00 01 5A"),
    ];
    for (packet, wire) in cases {
        let n = packet.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &hex(wire)[..], "{packet:?}");
    }
    let client: [(ClientPacket<'_>, &str); 3] = [
        (ClientPacket::ClientHeartbeat, "00 01 52"),
        (ClientPacket::LogoutRequest, "00 01 4F"),
        (ClientPacket::UnsequencedData(b"Q"), "00 02 55 51"),
    ];
    for (packet, wire) in client {
        let n = packet.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &hex(wire)[..], "{packet:?}");
    }
}

#[test]
fn framing_handles_partial_oversize_zero_and_unknown() {
    let bytes = login_request_bytes();
    for cut in 0..bytes.len() {
        assert_eq!(next_frame(&bytes[..cut], FrameLimits::CLIENT_DEFAULT), Ok(None), "cut at {cut}");
    }
    // Oversize is reported from the prefix alone, before the payload is buffered.
    assert_eq!(
        next_frame(&[0x04, 0x01], FrameLimits::new(1024)),
        Err(FrameError::Oversize { len_bytes: 1025, max_bytes: 1024 })
    );
    assert_eq!(next_frame(&[0, 0, 0x52], FrameLimits::CLIENT_DEFAULT), Err(FrameError::ZeroLength));
    assert_eq!(
        next_client_packet(&hex("00 01 48"), FrameLimits::CLIENT_DEFAULT),
        Err(SoupError::Packet(PacketError::UnknownType { packet_type: b'H' }))
    );
    assert_eq!(
        next_client_packet(&hex("00 02 52 00"), FrameLimits::CLIENT_DEFAULT),
        Err(SoupError::Packet(PacketError::WrongLength {
            packet_type: b'R',
            expected_bytes: 0,
            actual_bytes: 1
        }))
    );
    // Two packets back to back: the first is consumed, the second follows.
    let two = hex("00 01 52 00 01 4F");
    let (first, used) = next_client_packet(&two, FrameLimits::CLIENT_DEFAULT).unwrap().unwrap();
    assert_eq!((first, used), (ClientPacket::ClientHeartbeat, 3));
    let (second, _) = next_client_packet(&two[used..], FrameLimits::CLIENT_DEFAULT).unwrap().unwrap();
    assert_eq!(second, ClientPacket::LogoutRequest);
}

#[test]
fn login_numeric_field_rules() {
    let mut bytes = login_request_bytes();
    // Zero-padded and left-justified numbers are accepted; the value is what counts.
    bytes[29..49].copy_from_slice(b"00000000000000000007");
    let (p, _) = next_client_packet(&bytes, FrameLimits::CLIENT_DEFAULT).unwrap().unwrap();
    assert!(matches!(p, ClientPacket::LoginRequest(LoginRequest { requested_sequence_number: 7, .. })));
    bytes[29..49].copy_from_slice(b"7                   ");
    let (p, _) = next_client_packet(&bytes, FrameLimits::CLIENT_DEFAULT).unwrap().unwrap();
    assert!(matches!(p, ClientPacket::LoginRequest(LoginRequest { requested_sequence_number: 7, .. })));
    for bad in
        [b"                    ", b"          12 3      ", b"99999999999999999999", b"        -1          "]
    {
        bytes[29..49].copy_from_slice(bad);
        let err = next_client_packet(&bytes, FrameLimits::CLIENT_DEFAULT).unwrap_err();
        assert!(
            matches!(err, SoupError::Packet(PacketError::BadNumber { offset: 26, .. })),
            "{:?} gave {err:?}",
            std::str::from_utf8(bad)
        );
    }
    bytes[29..49].copy_from_slice(b"                   1");
    bytes[3] = 0x07; // control byte in username
    assert!(matches!(
        next_client_packet(&bytes, FrameLimits::CLIENT_DEFAULT),
        Err(SoupError::Packet(PacketError::NotPrintable { field: "username", offset: 0, .. }))
    ));
}

fn enter_order_bytes() -> Vec<u8> {
    hex(&format!(
        "4F  00 00 00 01  42  00 00 00 64  41 41 50 4C 20 20 20 20  00 00 00 00 00 16 ED 24 \
         30 59 41 4E 4E  4F 52 44 31 {}  00 0C  05 02 41 42 43 44  05 03 00 00 00 0A",
        spaces(10)
    ))
}

#[test]
fn enter_order_golden() {
    let bytes = enter_order_bytes();
    assert_eq!(bytes.len(), 59);
    let Inbound::EnterOrder(order) = Inbound::decode(&bytes).unwrap() else { panic!() };
    assert_eq!(order.user_ref_num, 1);
    assert_eq!(order.side, Side::Buy);
    assert_eq!(order.quantity, 100);
    assert_eq!(order.symbol.as_str(), "AAPL");
    assert_eq!(order.price, Price(1_502_500));
    assert_eq!(order.time_in_force, TimeInForce::Day);
    assert_eq!(order.display, Display::Visible);
    assert_eq!(order.capacity, Capacity::Agency);
    assert_eq!(order.intermarket_sweep, IntermarketSweep::NotEligible);
    assert_eq!(order.cross_type, CrossType::ContinuousMarket);
    assert_eq!(order.cl_ord_id.as_str(), "ORD1");
    let tags: Vec<_> = order.appendage.iter().collect();
    assert_eq!(tags, [TagValue::Firm(Alpha::new("firm", "ABCD").unwrap()), TagValue::MinQty(10)]);
    assert_eq!(order.appendage.find(tag::MIN_QTY), Some(TagValue::MinQty(10)));

    let mut out = [0u8; 128];
    let n = Inbound::EnterOrder(order).encode(&mut out).unwrap();
    assert_eq!(&out[..n], &bytes[..]);
}

#[test]
fn small_inbound_golden() {
    let cancel = hex("58 00 00 00 09 00 00 00 00");
    assert_eq!(
        Inbound::decode(&cancel).unwrap(),
        Inbound::CancelOrder(petrel_proto::ouch::CancelOrder { user_ref_num: 9, quantity: 0 })
    );
    let modify = hex("4D 00 00 00 09 53 00 00 00 05");
    assert_eq!(
        Inbound::decode(&modify).unwrap(),
        Inbound::ModifyOrder(petrel_proto::ouch::ModifyOrder {
            user_ref_num: 9,
            side: Side::Sell,
            quantity: 5
        })
    );
    let mass = hex(&format!("43 00 00 00 0A 46 52 4D 31 {} 00 03 02 1B 42", spaces(8)));
    let Inbound::MassCancel(m) = Inbound::decode(&mass).unwrap() else { panic!() };
    assert!(m.symbol.is_blank());
    assert_eq!(m.firm.as_str(), "FRM1");
    assert_eq!(m.appendage.iter().collect::<Vec<_>>(), [TagValue::Side(b'B')]);
    assert_eq!(Inbound::decode(&hex("51")).unwrap(), Inbound::AccountQuery);
}

#[test]
fn outbound_golden() {
    let mut out = [0u8; 128];
    let accepted = Outbound::OrderAccepted(petrel_proto::ouch::OrderAccepted {
        timestamp_ns: 5,
        user_ref_num: 1,
        side: Side::Buy,
        quantity: 100,
        symbol: Alpha::new("symbol", "AAPL").unwrap(),
        price: Price(1_502_500),
        time_in_force: TimeInForce::Day,
        display: Display::Visible,
        order_reference_number: 1000,
        capacity: Capacity::Agency,
        intermarket_sweep: IntermarketSweep::NotEligible,
        cross_type: CrossType::ContinuousMarket,
        order_state: OrderState::Live,
        cl_ord_id: Alpha::new("clordid", "ORD1").unwrap(),
        appendage: Appendage::EMPTY,
    });
    let wire = hex(&format!(
        "41  00 00 00 00 00 00 00 05  00 00 00 01  42  00 00 00 64  41 41 50 4C 20 20 20 20 \
         00 00 00 00 00 16 ED 24  30 59  00 00 00 00 00 00 03 E8  41 4E 4E 4C  4F 52 44 31 {}  00 00",
        spaces(10)
    ));
    let cases: Vec<(Outbound<'_>, Vec<u8>)> = vec![
        (accepted, wire),
        (
            Outbound::SystemEvent(petrel_proto::ouch::SystemEvent {
                timestamp_ns: 0,
                event_code: EventCode::StartOfDay,
            }),
            hex("53 00 00 00 00 00 00 00 00 53"),
        ),
        (
            Outbound::OrderCanceled(petrel_proto::ouch::OrderCanceled {
                timestamp_ns: 5,
                user_ref_num: 1,
                quantity: 100,
                reason: CancelReason::UserRequested,
            }),
            hex("43 00 00 00 00 00 00 00 05 00 00 00 01 00 00 00 64 55"),
        ),
        (
            Outbound::OrderExecuted(petrel_proto::ouch::OrderExecuted {
                timestamp_ns: 0x0102_0304_0506_0708,
                user_ref_num: 7,
                quantity: 50,
                price: Price(100_000),
                liquidity_flag: LiquidityFlag::ADDED,
                match_number: 0x1122_3344_5566_7788,
                appendage: Appendage::EMPTY,
            }),
            hex("45 01 02 03 04 05 06 07 08 00 00 00 07 00 00 00 32 00 00 00 00 00 01 86 A0 41 \
                 11 22 33 44 55 66 77 88 00 00"),
        ),
        (
            Outbound::OrderRejected(petrel_proto::ouch::OrderRejected {
                timestamp_ns: 1,
                user_ref_num: 2,
                reason: RejectReason::INVALID_SYMBOL,
                cl_ord_id: Alpha::new("clordid", "X").unwrap(),
            }),
            hex(&format!("4A 00 00 00 00 00 00 00 01 00 00 00 02 00 17 58 {}", spaces(13))),
        ),
        (
            Outbound::CancelReject { timestamp_ns: 1, user_ref_num: 2 },
            hex("49 00 00 00 00 00 00 00 01 00 00 00 02"),
        ),
        (
            Outbound::AccountQueryResponse(petrel_proto::ouch::AccountQueryResponse {
                timestamp_ns: 1,
                next_user_ref_num: 3,
            }),
            hex("51 00 00 00 00 00 00 00 01 00 00 00 03"),
        ),
    ];
    for (msg, wire) in cases {
        let n = msg.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &wire[..], "encode {msg:?}");
        assert_eq!(Outbound::decode(&wire).unwrap(), msg, "decode");
    }
}

#[test]
fn inbound_errors_name_message_field_and_offset() {
    let mut bytes = enter_order_bytes();
    bytes[5] = b'X';
    assert_eq!(
        Inbound::decode(&bytes),
        Err(DecodeError::InvalidField { msg: "Enter Order", field: "Side", offset: 5, value: b'X' })
    );
    let bytes = enter_order_bytes();
    assert_eq!(
        Inbound::decode(&bytes[..40]),
        Err(DecodeError::TooShort { msg: "Enter Order", min_bytes: 47, actual_bytes: 40 })
    );
    assert_eq!(
        Inbound::decode(&bytes[..58]),
        Err(DecodeError::AppendageLength { msg: "Enter Order", declared_bytes: 12, actual_bytes: 11 })
    );
    let mut bad_tag_len = bytes.clone();
    bad_tag_len[53] = 0x04; // MinQty element claims 3 value bytes, then overruns... len 4 => 3 value bytes
    assert!(matches!(
        Inbound::decode(&bad_tag_len[..]),
        Err(DecodeError::Appendage { msg: "Enter Order", offset: 53, .. })
    ));
    let mut zero = bytes.clone();
    zero[47] = 0;
    assert!(matches!(
        Inbound::decode(&zero),
        Err(DecodeError::Appendage { offset: 47, error: petrel_proto::ouch::AppendageError::ZeroLength, .. })
    ));
    assert_eq!(
        Inbound::decode(&hex("58 00 00 00 09 00 00 00")),
        Err(DecodeError::WrongLength { msg: "Cancel Order", expected_bytes: 9, actual_bytes: 8 })
    );
    assert_eq!(
        Inbound::decode(&hex("44 00")),
        Err(DecodeError::UnknownType { direction: "inbound", msg_type: b'D' })
    );
    assert_eq!(Inbound::decode(&[]), Err(DecodeError::Empty));
}

#[test]
fn unknown_appendage_tag_is_surfaced_not_dropped() {
    let mut bytes = enter_order_bytes();
    // Replace the MinQty element (tag 3) with tag 99 carrying 4 bytes.
    bytes[54] = 99;
    let Inbound::EnterOrder(order) = Inbound::decode(&bytes).unwrap() else { panic!() };
    let last = order.appendage.iter().last().unwrap();
    assert_eq!(last, TagValue::Unknown { tag: 99, value: &[0, 0, 0, 0x0A] });
}
