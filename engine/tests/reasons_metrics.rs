//! Every reject and cancel reason a client can cause, driven through the real daemon over
//! OUCH, with the metric an operator's alerts read for it: each step asserts the client's
//! answer and that the metric moved (so a counter nothing increments, as
//! `petrel_position_limit_rejects_total` once was, cannot come back unnoticed).
//!
//! Reasons no client can cause, and where they are tested instead: `unknown_account` (a login
//! maps to a configured account), `no_reference_price` (OUCH orders are limit orders),
//! `invalid_risk_limits` (the configuration refuses such limits before they are sequenced),
//! `account_blocked` and the kill-switch cancel (no operator command engages the kill switch
//! yet): `engine/core/tests/rules.rs` covers them in the core.

mod support;

use std::time::{Duration, Instant};

use petrel_core::RejectReason;
use petrel_proto::ouch;
use support::*;

const AAPL_585: u64 = 5_853_300;
/// OUCH Time in Force: Day and Immediate or Cancel.
const DAY: u8 = b'0';
const IOC: u8 = b'3';

/// The development configuration made tight enough that each limit is one order away:
/// three open orders, a position of 500, four orders an hour, four resting orders in the whole
/// engine, MSFT in lots of 100.
fn tight_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = write_config_with_rate_limit(dir, "auto", 4);
    let text = std::fs::read_to_string(&path).unwrap();
    let edits = [
        ("max_orders = 100_000", "max_orders = 4"),
        ("max_open_orders = 1_000 ", "max_open_orders = 3 "),
        ("max_position = 100_000 ", "max_position = 500 "),
        (
            "symbol = \"MSFT\"\ntick_size = \"0.01\"\nlot_size = 1",
            "symbol = \"MSFT\"\ntick_size = \"0.01\"\nlot_size = 100",
        ),
    ];
    let mut text = text;
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "config/dev.toml changed: {from:?}");
        text = text.replace(from, to);
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// An Enter Order with the fields the test client does not set: Display, and a MinQty
/// appendage (option length, tag 3, u32), encoded by hand from the OUCH 5.0 layout.
fn enter_raw(
    client: &mut Client,
    user_ref: u32,
    (side, qty, price): (u8, u32, u64),
    tif: u8,
    display: u8,
    min_qty: Option<u32>,
) {
    let mut m = vec![b'O'];
    m.extend_from_slice(&user_ref.to_be_bytes());
    m.push(side);
    m.extend_from_slice(&qty.to_be_bytes());
    m.extend_from_slice(b"AAPL    ");
    m.extend_from_slice(&price.to_be_bytes());
    m.extend_from_slice(&[tif, display, b'A', b'N', b'N']);
    m.extend_from_slice(format!("{:<14}", format!("RAW{user_ref}")).as_bytes());
    match min_qty {
        None => m.extend_from_slice(&0u16.to_be_bytes()),
        Some(q) => {
            m.extend_from_slice(&6u16.to_be_bytes());
            m.extend_from_slice(&[5, 3]);
            m.extend_from_slice(&q.to_be_bytes());
        }
    }
    client.send_packet(b'U', &m);
}

/// A metric's value, waiting (up to 10 s) until it reaches `want`: counters are published by
/// the sequencer after its batch, which may come a moment after the client's answer.
fn wait_metric(daemon: &Daemon, series: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http_get(daemon.admin.expect("admin address"), "/metrics");
        let got = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .map(|v| v.trim().parse::<u64>().unwrap())
            .unwrap_or_else(|| panic!("no {series} in /metrics"));
        if got == want {
            return;
        }
        assert!(got < want, "{series} is {got}, expected {want}");
        assert!(Instant::now() < deadline, "{series} stayed at {got}, expected {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn expect_reject(daemon: &Daemon, client: &mut Client, user_ref: u32, reason: RejectReason) {
    match client.ouch() {
        OwnedOutbound::Rejected { user_ref: r, .. } if r == user_ref => {}
        other => panic!("order {user_ref}: expected a reject for {reason:?}, got {other:?}"),
    }
    wait_metric(daemon, &format!("petrel_rejects_total{{reason=\"{}\"}}", reason.as_str()), 1);
}

fn expect_cancel_reject(daemon: &Daemon, client: &mut Client, user_ref: u32, reason: RejectReason) {
    match client.ouch() {
        OwnedOutbound::CancelReject { user_ref: r } if r == user_ref => {}
        other => panic!("cancel of {user_ref}: expected a Cancel Reject for {reason:?}, got {other:?}"),
    }
    wait_metric(daemon, &format!("petrel_rejects_total{{reason=\"{}\"}}", reason.as_str()), 1);
}

fn expect_accepted(client: &mut Client, user_ref: u32) {
    match client.ouch() {
        OwnedOutbound::Accepted { user_ref: r, .. } if r == user_ref => {}
        other => panic!("order {user_ref}: expected Accepted, got {other:?}"),
    }
}

/// Reads until the Order Canceled of `user_ref` and checks its OUCH reason.
fn expect_canceled(client: &mut Client, user_ref: u32, reason: ouch::CancelReason) {
    loop {
        match client.ouch() {
            OwnedOutbound::Canceled { user_ref: r, reason: got, .. } if r == user_ref => {
                assert_eq!(got, reason.code(), "order {user_ref}: cancel reason");
                return;
            }
            OwnedOutbound::Accepted { user_ref: r, .. } | OwnedOutbound::Executed { user_ref: r, .. }
                if r == user_ref => {}
            other => panic!("order {user_ref}: expected Order Canceled ({reason:?}), got {other:?}"),
        }
    }
}

#[test]
fn every_reason_a_client_can_cause_is_answered_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(BIN, &tight_config(dir.path()));
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    let mut bob = Client::connect(daemon.addr);
    assert!(matches!(bob.login("BOB", "bob", 0), Got::LoginAccepted { .. }));

    // Price, size and shape checks, in the order the core makes them.
    alice.enter(1, b'B', 100, "ZZZZ", AAPL_585, DAY);
    expect_reject(&daemon, &mut alice, 1, RejectReason::UnknownInstrument);
    alice.enter(2, b'B', 0, "AAPL", AAPL_585, DAY);
    expect_reject(&daemon, &mut alice, 2, RejectReason::ZeroQuantity);
    alice.enter(3, b'B', 50, "MSFT", 300_000, DAY);
    expect_reject(&daemon, &mut alice, 3, RejectReason::QuantityNotOnLot);
    enter_raw(&mut alice, 4, (b'B', 100, AAPL_585), IOC, b'P', None); // post-only IOC
    expect_reject(&daemon, &mut alice, 4, RejectReason::InvalidOrder);
    alice.enter(5, b'B', 100, "AAPL", AAPL_585 + 1, DAY);
    expect_reject(&daemon, &mut alice, 5, RejectReason::PriceNotOnTick);
    alice.enter(6, b'B', 100, "AAPL", 20_000_100, DAY); // 2000.01, above the band
    expect_reject(&daemon, &mut alice, 6, RejectReason::PriceOutOfBand);
    alice.enter(7, b'B', 100, "AAPL", 7_000_000, DAY); // 700.00, 20% through the reference
    expect_reject(&daemon, &mut alice, 7, RejectReason::PriceCollar);
    alice.enter(8, b'B', 10_001, "AAPL", AAPL_585, DAY);
    expect_reject(&daemon, &mut alice, 8, RejectReason::MaxOrderQty);
    alice.enter(9, b'B', 2_000, "AAPL", 6_000_000, DAY); // 1.2M of notional
    expect_reject(&daemon, &mut alice, 9, RejectReason::MaxOrderNotional);
    alice.enter(10, b'B', 600, "AAPL", AAPL_585, DAY);
    expect_reject(&daemon, &mut alice, 10, RejectReason::MaxPosition);
    wait_metric(&daemon, "petrel_position_limit_rejects_total{account=\"alice\"}", 1);
    wait_metric(&daemon, "petrel_position_limit_rejects_total{account=\"bob\"}", 0);

    // Alice's three resting orders: her open-order limit, three of her four orders an hour,
    // and three of the engine's four order slots.
    for (user_ref, price) in [(12, 5_800_000), (13, 5_790_000), (14, 5_780_000)] {
        alice.enter(user_ref, b'B', 100, "AAPL", price, DAY);
        expect_accepted(&mut alice, user_ref);
    }
    alice.enter(15, b'B', 100, "AAPL", 5_770_000, DAY);
    expect_reject(&daemon, &mut alice, 15, RejectReason::MaxOpenOrders);
    alice.enter(12, b'B', 100, "AAPL", 5_770_000, DAY);
    expect_reject(&daemon, &mut alice, 12, RejectReason::DuplicateClientRef);
    alice.cancel(99, 0);
    expect_cancel_reject(&daemon, &mut alice, 99, RejectReason::UnknownOrder);
    alice.cancel(12, 100);
    expect_cancel_reject(&daemon, &mut alice, 12, RejectReason::CancelWouldNotReduce);

    // Bob: a post-only sell at Alice's bid, then the engine's last order slot.
    enter_raw(&mut bob, 1, (b'S', 100, 5_800_000), DAY, b'P', None);
    expect_reject(&daemon, &mut bob, 1, RejectReason::WouldTakeLiquidity);
    bob.enter(2, b'S', 100, "AAPL", 5_900_000, DAY);
    expect_accepted(&mut bob, 2);
    bob.enter(3, b'S', 100, "AAPL", 5_910_000, DAY);
    expect_reject(&daemon, &mut bob, 3, RejectReason::CapacityExhausted);

    // Cancels, each counted: the owner's, then Alice's fourth and fifth orders of the hour.
    alice.cancel(14, 0);
    expect_canceled(&mut alice, 14, ouch::CancelReason::UserRequested);
    wait_metric(&daemon, "petrel_cancels_total", 1);
    alice.enter(16, b'B', 100, "AAPL", 5_770_000, DAY);
    expect_accepted(&mut alice, 16);
    alice.cancel(16, 0);
    expect_canceled(&mut alice, 16, ouch::CancelReason::UserRequested);
    wait_metric(&daemon, "petrel_cancels_total", 2);
    alice.enter(17, b'B', 100, "AAPL", 5_760_000, DAY);
    expect_reject(&daemon, &mut alice, 17, RejectReason::RateLimit);

    // MM1 shares Bob's firm: its IOC buy at Bob's offer cancels Bob's resting order (MM1's
    // self-trade prevention: cancel the oldest), and the unfilled IOC is cancelled too.
    let mut mm1 = Client::connect(daemon.addr);
    assert!(matches!(mm1.login("MM1", "mm1", 0), Got::LoginAccepted { .. }));
    mm1.enter(1, b'B', 100, "AAPL", 5_900_000, IOC);
    expect_canceled(&mut bob, 2, ouch::CancelReason::SelfMatchPrevention);
    expect_canceled(&mut mm1, 1, ouch::CancelReason::ImmediateOrCancel);
    wait_metric(&daemon, "petrel_cancels_total", 4);
    // A minimum quantity the book cannot fill on entry.
    enter_raw(&mut mm1, 2, (b'B', 100, 5_600_000), DAY, b'Y', Some(100));
    expect_canceled(&mut mm1, 2, ouch::CancelReason::CannotBeExecuted);
    wait_metric(&daemon, "petrel_cancels_total", 5);

    // Alice's mass cancel (two orders left), then Bob rests an order and drops his connection:
    // cancel on disconnect, which he reads when he logs in again.
    let mut m = vec![b'C'];
    m.extend_from_slice(&77u32.to_be_bytes());
    m.extend_from_slice(b"    ");
    m.extend_from_slice(b"        ");
    m.extend_from_slice(&0u16.to_be_bytes());
    alice.send_packet(b'U', &m);
    expect_canceled(&mut alice, 12, ouch::CancelReason::UserRequested);
    expect_canceled(&mut alice, 13, ouch::CancelReason::UserRequested);
    assert!(matches!(alice.ouch(), OwnedOutbound::MassCancelResponse { user_ref: 77 }));
    wait_metric(&daemon, "petrel_cancels_total", 7);
    bob.enter(4, b'S', 100, "AAPL", 5_950_000, DAY);
    expect_accepted(&mut bob, 4);
    drop(bob);
    wait_metric(&daemon, "petrel_cancels_total", 8);
    let mut bob = Client::connect(daemon.addr);
    let next = match bob.login("BOB", "bob", 1) {
        Got::LoginAccepted { sequence, .. } => sequence,
        other => panic!("Bob's second login: {other:?}"),
    };
    assert_eq!(next, 1, "Bob asked to replay his stream from 1");
    // His whole stream again (Start of Day, his answers above), ending with the cancel.
    let canceled = (0..30).find_map(|_| match bob.ouch() {
        OwnedOutbound::Canceled { user_ref: 4, reason, .. } => Some(reason),
        _ => None,
    });
    assert_eq!(
        canceled,
        Some(ouch::CancelReason::SystemCancel.code()),
        "Bob's order 4, cancelled on disconnect"
    );
    assert!(daemon.stop().success());
}
