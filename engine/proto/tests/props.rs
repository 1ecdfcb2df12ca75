//! Property tests: decode(encode(x)) == x for generated messages, and arbitrary bytes never
//! panic any decoder or the session machine (the same oracles the cargo-fuzz targets run).

use petrel_proto::fuzzing;
use petrel_proto::ouch::*;
use petrel_proto::soupbin::{
    next_client_packet, next_server_packet, ClientPacket, FrameLimits, LoginRequest,
};
use petrel_proto::Alpha;
use proptest::prelude::*;

fn alpha<const N: usize>() -> impl Strategy<Value = Alpha<N>> {
    proptest::collection::vec(0x20u8..=0x7e, 0..=N)
        .prop_map(|b| Alpha::new("f", std::str::from_utf8(&b).unwrap()).unwrap())
}

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

fn printable() -> impl Strategy<Value = u8> {
    0x20u8..=0x7e
}

fn tag_value() -> impl Strategy<Value = TagValue<'static>> {
    prop_oneof![
        any::<u64>().prop_map(TagValue::SecondaryOrdRefNum),
        alpha::<4>().prop_map(TagValue::Firm),
        any::<u32>().prop_map(TagValue::MinQty),
        printable().prop_map(TagValue::CustomerType),
        any::<u32>().prop_map(TagValue::MaxFloor),
        any::<i32>().prop_map(TagValue::PegOffset),
        any::<u64>().prop_map(|p| TagValue::DiscretionPrice(Price(p))),
        printable().prop_map(TagValue::PostOnly),
        alpha::<4>().prop_map(TagValue::Route),
        any::<u32>().prop_map(TagValue::ExpireTimeSeconds),
        any::<u64>().prop_map(|p| TagValue::DisplayPrice(Price(p))),
        any::<u16>().prop_map(TagValue::GroupId),
        any::<u8>().prop_map(TagValue::UserRefIdx),
    ]
}

#[derive(Debug, Clone)]
struct Common {
    ts: u64,
    urn: u32,
    urn2: u32,
    qty: u32,
    price: u64,
    side: Side,
    tif: TimeInForce,
    display: Display,
    capacity: Capacity,
    ise: IntermarketSweep,
    cross: CrossType,
    state: OrderState,
    symbol: Alpha<8>,
    clid: Alpha<14>,
    firm: Alpha<4>,
    liq: u8,
    cancel: CancelReason,
    tags: Vec<TagValue<'static>>,
}

fn common() -> impl Strategy<Value = Common> {
    (
        (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>()),
        (pick(Side::ALL), pick(TimeInForce::ALL), pick(Display::ALL), pick(Capacity::ALL)),
        (pick(IntermarketSweep::ALL), pick(CrossType::ALL), pick(OrderState::ALL), pick(CancelReason::ALL)),
        (alpha::<8>(), alpha::<14>(), alpha::<4>(), printable()),
        proptest::collection::vec(tag_value(), 0..6),
    )
        .prop_map(
            |(
                (ts, urn, urn2, qty, price),
                (side, tif, display, capacity),
                (ise, cross, state, cancel),
                (symbol, clid, firm, liq),
                tags,
            )| Common {
                ts,
                urn,
                urn2,
                qty,
                price,
                side,
                tif,
                display,
                capacity,
                ise,
                cross,
                state,
                symbol,
                clid,
                firm,
                liq,
                cancel,
                tags,
            },
        )
}

fn roundtrip_inbound(m: Inbound<'_>) {
    let mut buf = [0u8; 512];
    let n = m.encode(&mut buf).unwrap();
    assert_eq!(Inbound::decode(&buf[..n]).unwrap(), m);
    // A buffer one byte short is refused, not overrun.
    assert!(m.encode(&mut buf[..n - 1]).is_err());
}

fn roundtrip_outbound(m: Outbound<'_>) {
    let mut buf = [0u8; 512];
    let n = m.encode(&mut buf).unwrap();
    assert_eq!(n, m.encoded_len());
    assert_eq!(Outbound::decode(&buf[..n]).unwrap(), m);
    assert!(m.encode(&mut buf[..n - 1]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn inbound_roundtrip(c in common()) {
        let mut abuf = [0u8; 256];
        let appendage = Appendage::encode(&mut abuf, &c.tags).unwrap();
        prop_assert_eq!(appendage.iter().collect::<Vec<_>>(), c.tags.clone());
        roundtrip_inbound(Inbound::EnterOrder(EnterOrder {
            user_ref_num: c.urn, side: c.side, quantity: c.qty, symbol: c.symbol, price: Price(c.price),
            time_in_force: c.tif, display: c.display, capacity: c.capacity, intermarket_sweep: c.ise,
            cross_type: c.cross, cl_ord_id: c.clid, appendage,
        }));
        roundtrip_inbound(Inbound::ReplaceOrder(ReplaceOrder {
            orig_user_ref_num: c.urn, user_ref_num: c.urn2, quantity: c.qty, price: Price(c.price),
            time_in_force: c.tif, display: c.display, intermarket_sweep: c.ise, cl_ord_id: c.clid, appendage,
        }));
        roundtrip_inbound(Inbound::CancelOrder(CancelOrder { user_ref_num: c.urn, quantity: c.qty }));
        roundtrip_inbound(Inbound::ModifyOrder(ModifyOrder { user_ref_num: c.urn, side: c.side, quantity: c.qty }));
        roundtrip_inbound(Inbound::MassCancel(MassCancel { user_ref_num: c.urn, firm: c.firm, symbol: c.symbol, appendage }));
    }

    #[test]
    fn outbound_roundtrip(c in common()) {
        let mut abuf = [0u8; 256];
        let appendage = Appendage::encode(&mut abuf, &c.tags).unwrap();
        let liq = LiquidityFlag(c.liq);
        roundtrip_outbound(Outbound::OrderAccepted(OrderAccepted {
            timestamp_ns: c.ts, user_ref_num: c.urn, side: c.side, quantity: c.qty, symbol: c.symbol,
            price: Price(c.price), time_in_force: c.tif, display: c.display, order_reference_number: c.ts ^ 1,
            capacity: c.capacity, intermarket_sweep: c.ise, cross_type: c.cross, order_state: c.state,
            cl_ord_id: c.clid, appendage,
        }));
        roundtrip_outbound(Outbound::OrderReplaced(OrderReplaced {
            timestamp_ns: c.ts, orig_user_ref_num: c.urn2, user_ref_num: c.urn, side: c.side, quantity: c.qty,
            symbol: c.symbol, price: Price(c.price), time_in_force: c.tif, display: c.display,
            order_reference_number: c.ts ^ 2, capacity: c.capacity, intermarket_sweep: c.ise,
            cross_type: c.cross, order_state: c.state, cl_ord_id: c.clid, appendage,
        }));
        roundtrip_outbound(Outbound::OrderCanceled(OrderCanceled { timestamp_ns: c.ts, user_ref_num: c.urn, quantity: c.qty, reason: c.cancel }));
        roundtrip_outbound(Outbound::AiqCanceled(AiqCanceled {
            timestamp_ns: c.ts, user_ref_num: c.urn, decrement_shares: c.qty, reason: c.cancel,
            quantity_prevented_from_trading: c.urn2, execution_price: Price(c.price), liquidity_flag: liq,
        }));
        roundtrip_outbound(Outbound::OrderExecuted(OrderExecuted {
            timestamp_ns: c.ts, user_ref_num: c.urn, quantity: c.qty, price: Price(c.price),
            liquidity_flag: liq, match_number: c.ts ^ 3, appendage,
        }));
        roundtrip_outbound(Outbound::BrokenTrade(BrokenTrade {
            timestamp_ns: c.ts, user_ref_num: c.urn, match_number: c.price, reason: BrokenTradeReason::Erroneous, cl_ord_id: c.clid,
        }));
        roundtrip_outbound(Outbound::TradeCorrection(TradeCorrection {
            timestamp_ns: c.ts, user_ref_num: c.urn, quantity: c.qty, price: Price(c.price), liquidity_flag: liq,
            match_number: c.ts, reason: TradeCorrectionReason::AdjustedToNav, cl_ord_id: c.clid,
        }));
        roundtrip_outbound(Outbound::OrderRejected(OrderRejected { timestamp_ns: c.ts, user_ref_num: c.urn, reason: RejectReason(c.qty as u16), cl_ord_id: c.clid }));
        roundtrip_outbound(Outbound::CancelPending { timestamp_ns: c.ts, user_ref_num: c.urn });
        roundtrip_outbound(Outbound::CancelReject { timestamp_ns: c.ts, user_ref_num: c.urn });
        roundtrip_outbound(Outbound::OrderPriorityUpdate(OrderPriorityUpdate {
            timestamp_ns: c.ts, user_ref_num: c.urn, price: Price(c.price), display: c.display, order_reference_number: c.ts,
        }));
        roundtrip_outbound(Outbound::OrderModified(OrderModified { timestamp_ns: c.ts, user_ref_num: c.urn, side: c.side, quantity: c.qty }));
        roundtrip_outbound(Outbound::OrderRestated(OrderRestated { timestamp_ns: c.ts, user_ref_num: c.urn, reason: RestatedReason::RefreshOfDisplay, appendage }));
        roundtrip_outbound(Outbound::MassCancelResponse(MassCancelResponse { timestamp_ns: c.ts, user_ref_num: c.urn, firm: c.firm, symbol: c.symbol, appendage }));
        roundtrip_outbound(Outbound::AccountQueryResponse(AccountQueryResponse { timestamp_ns: c.ts, next_user_ref_num: c.urn }));
        roundtrip_outbound(Outbound::SystemEvent(SystemEvent { timestamp_ns: c.ts, event_code: EventCode::EndOfDay }));
    }

    #[test]
    fn login_request_roundtrip(user in alpha::<6>(), pw in alpha::<10>(), session in alpha::<10>(), seq in any::<u64>()) {
        let login = LoginRequest { username: user, password: pw, requested_session: session, requested_sequence_number: seq };
        let mut buf = [0u8; 64];
        let n = login.encode(&mut buf).unwrap();
        let (packet, used) = next_client_packet(&buf[..n], FrameLimits::CLIENT_DEFAULT).unwrap().unwrap();
        prop_assert_eq!(used, n);
        prop_assert_eq!(packet, ClientPacket::LoginRequest(login));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::ouch_inbound(&data);
        fuzzing::ouch_outbound(&data);
        fuzzing::soupbin_server_stream(&data);
        fuzzing::soupbin_client_stream(&data);
        fuzzing::itch_message(&data);
        fuzzing::moldudp64_packet(&data);
    }

    /// Random bytes rarely reach deep; starting from a valid message and corrupting a few
    /// bytes explores the validation paths.
    #[test]
    fn mutated_valid_messages_never_panic(c in common(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut abuf = [0u8; 256];
        let appendage = Appendage::encode(&mut abuf, &c.tags).unwrap();
        let mut buf = [0u8; 512];
        let n = Outbound::OrderAccepted(OrderAccepted {
            timestamp_ns: c.ts, user_ref_num: c.urn, side: c.side, quantity: c.qty, symbol: c.symbol,
            price: Price(c.price), time_in_force: c.tif, display: c.display, order_reference_number: 1,
            capacity: c.capacity, intermarket_sweep: c.ise, cross_type: c.cross, order_state: c.state,
            cl_ord_id: c.clid, appendage,
        }).encode(&mut buf).unwrap();
        let mut inb = [0u8; 512];
        let m = Inbound::EnterOrder(EnterOrder {
            user_ref_num: c.urn, side: c.side, quantity: c.qty, symbol: c.symbol, price: Price(c.price),
            time_in_force: c.tif, display: c.display, capacity: c.capacity, intermarket_sweep: c.ise,
            cross_type: c.cross, cl_ord_id: c.clid, appendage,
        }).encode(&mut inb).unwrap();
        for (idx, byte) in flips {
            buf[idx.index(n)] = byte;
            inb[idx.index(m)] = byte;
        }
        fuzzing::ouch_outbound(&buf[..n]);
        fuzzing::ouch_inbound(&inb[..m]);
    }
}

/// Found by `cargo fuzz run soupbin_client`: a Login Accepted whose sequence number is
/// zero-padded ("00159089797835941478") is valid input, accepted by the lenient numeric parser
/// and re-encoded canonically (space-padded). The oracles compare decoded packets, not bytes.
#[test]
fn zero_padded_numbers_decode_and_re_encode_canonically() {
    let mut stream = vec![0x00, 0x1f, b'A'];
    stream.extend_from_slice(b"Srrrrr0000");
    stream.extend_from_slice(b"00159089797835941478");
    fuzzing::soupbin_client_stream(&stream);
    let (packet, used) = next_server_packet(&stream, FrameLimits::new(u16::MAX.into())).unwrap().unwrap();
    assert_eq!(used, stream.len());
    let mut buf = [0u8; 64];
    let n = packet.encode(&mut buf).unwrap();
    assert_eq!(&buf[3..13], b"Srrrrr0000");
    assert_eq!(&buf[13..n], b"  159089797835941478", "numbers are written space-padded");

    // The same on the server side: a client's zero-padded requested sequence number.
    let mut login = vec![0x00, 0x2f, b'L'];
    login.extend_from_slice(b"ALICE alice     PETREL    00000000000000000007");
    fuzzing::soupbin_server_stream(&login);
    let (packet, _) = next_client_packet(&login, FrameLimits::CLIENT_DEFAULT).unwrap().unwrap();
    let ClientPacket::LoginRequest(request) = packet else { panic!("{packet:?}") };
    assert_eq!(request.requested_sequence_number, 7);
}
