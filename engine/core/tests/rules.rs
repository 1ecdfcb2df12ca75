//! One test per trading rule, through the public engine API.

mod common;
use common::*;
use petrel_core::*;

// ---- price-time priority ------------------------------------------------------------------

#[test]
fn better_price_executes_first_then_earlier_time() {
    let mut h = Harness::basic();
    let (a1, _) = h.limit(0, Side::Sell, 10_100, 10);
    let (a2, _) = h.limit(2, Side::Sell, 10_000, 10);
    let (a3, _) = h.limit(0, Side::Sell, 10_000, 10);
    let (_, events) = h.limit(2, Side::Buy, 10_100, 25);
    let fills: Vec<_> = executions(&events).iter().map(|x| (x.maker.client_ref, x.price, x.qty)).collect();
    assert_eq!(fills, vec![(a2, 10_000, 10), (a3, 10_000, 10), (a1, 10_100, 5)]);
    assert_eq!(h.engine.best_ask(SYM), Some((10_100, 5)));
    assert_eq!(h.engine.best_bid(SYM), None);
}

#[test]
fn execution_is_at_the_resting_price_and_shares_one_match_number() {
    let mut h = Harness::basic();
    let (maker, _) = h.limit(0, Side::Buy, 10_000, 50);
    let (taker, events) = h.limit(2, Side::Sell, 9_900, 20);
    let x = executions(&events);
    assert_eq!(x.len(), 1);
    assert_eq!((x[0].price, x[0].qty, x[0].aggressor), (10_000, 20, Side::Sell));
    assert_eq!((x[0].maker.client_ref, x[0].maker.qty_remaining), (maker, 30));
    assert_eq!((x[0].taker.client_ref, x[0].taker.qty_remaining), (taker, 0));
    assert!(book_changes(&events).contains(&BookChange::Execute {
        instrument: SYM,
        order_id: x[0].maker.order_id,
        qty: 20,
        price: 10_000,
        match_id: x[0].match_id
    }));
    assert_eq!(h.engine.position(AccountId(0), SYM), 20);
    assert_eq!(h.engine.position(AccountId(2), SYM), -20);
    assert_eq!(h.engine.reference_price(SYM), Some(10_000));
}

#[test]
fn accepted_comes_first_and_a_resting_remainder_is_added_to_the_book() {
    let mut h = Harness::basic();
    h.limit(0, Side::Sell, 10_000, 5);
    let (_, events) = h.limit(2, Side::Buy, 10_000, 8);
    assert!(matches!(events[0], Event::Accepted(Accepted { qty: 8, .. })));
    assert!(matches!(
        events.last(),
        Some(Event::Book(BookChange::Add { qty: 3, price: 10_000, side: Side::Buy, .. }))
    ));
    assert_eq!(h.engine.best_bid(SYM), Some((10_000, 3)));
}

#[test]
fn match_numbers_and_order_ids_increase() {
    let mut h = Harness::basic();
    h.limit(0, Side::Sell, 10_000, 1);
    h.limit(0, Side::Sell, 10_000, 1);
    let (_, events) = h.limit(2, Side::Buy, 10_000, 2);
    let x = executions(&events);
    assert_eq!(x[1].match_id.0, x[0].match_id.0 + 1);
    assert!(x[0].maker.order_id < x[1].maker.order_id && x[1].maker.order_id < x[0].taker.order_id);
}

// ---- order types ----------------------------------------------------------------------------

#[test]
fn ioc_cancels_what_does_not_execute() {
    let mut h = Harness::basic();
    h.limit(0, Side::Sell, 10_000, 5);
    let (_, events) = h.order(2, Side::Buy, 10_000, 8, TimeInForce::Ioc);
    assert_eq!(executions(&events).len(), 1);
    let c = cancels(&events);
    assert_eq!(
        (c[0].qty_cancelled, c[0].qty_remaining, c[0].reason),
        (3, 0, CancelReason::ImmediateOrCancel)
    );
    assert_eq!(h.engine.best_bid(SYM), None);
}

#[test]
fn fok_executes_fully_or_not_at_all() {
    let mut h = Harness::basic();
    h.limit(0, Side::Sell, 10_000, 5);
    h.limit(0, Side::Sell, 10_100, 5);
    let (_, events) = h.order(2, Side::Buy, 10_000, 8, TimeInForce::Fok);
    assert!(executions(&events).is_empty());
    assert_eq!(cancels(&events)[0].reason, CancelReason::FillOrKill);
    assert_eq!(h.engine.best_ask(SYM), Some((10_000, 5)));
    let (_, events) = h.order(2, Side::Buy, 10_100, 8, TimeInForce::Fok);
    assert_eq!(executions(&events).iter().map(|x| x.qty).sum::<u32>(), 8);
    assert!(cancels(&events).is_empty());
}

#[test]
fn minimum_quantity_must_execute_on_entry() {
    let mut h = Harness::basic();
    h.limit(0, Side::Sell, 10_000, 5);
    let (_, events) = h.with(NewOrder { min_qty: 6, ..limit_order(2, Side::Buy, 10_000, 10) });
    assert_eq!(cancels(&events)[0].reason, CancelReason::FillOrKill);
    assert!(executions(&events).is_empty());
    let (_, events) = h.with(NewOrder { min_qty: 5, ..limit_order(2, Side::Buy, 10_000, 10) });
    assert_eq!(executions(&events)[0].qty, 5);
    assert_eq!(h.engine.best_bid(SYM), Some((10_000, 5)), "the remainder of a day order rests");
    let (_, events) = h.with(NewOrder { min_qty: 11, ..limit_order(2, Side::Buy, 10_000, 10) });
    assert_eq!(rejected(&events), Some(RejectReason::InvalidOrder));
}

#[test]
fn market_order_is_bounded_by_the_collar_and_never_rests() {
    let mut config = EngineConfig {
        instruments: vec![InstrumentConfig { reference_price: Some(10_000), ..instrument("AAPL") }],
        accounts: vec![account(1), account(2)],
        max_orders: 100,
    };
    config.accounts[1].limits.price_collar_bps = 500; // 5%: buys up to 10_500
    let mut h = Harness::new(config);
    h.limit(0, Side::Sell, 10_400, 5);
    h.limit(0, Side::Sell, 10_600, 5);
    let (_, events) = h.with(NewOrder { order_type: OrderType::Market, ..limit_order(1, Side::Buy, 0, 8) });
    assert!(matches!(events[0], Event::Accepted(Accepted { price: 10_500, .. })));
    assert_eq!(executions(&events).iter().map(|x| (x.price, x.qty)).collect::<Vec<_>>(), vec![(10_400, 5)]);
    assert_eq!(cancels(&events)[0].reason, CancelReason::ImmediateOrCancel);
    assert_eq!(h.engine.best_bid(SYM), None);
}

#[test]
fn market_order_without_reference_price_is_rejected_when_collared() {
    let mut config =
        EngineConfig { instruments: vec![instrument("AAPL")], accounts: vec![account(1)], max_orders: 10 };
    config.accounts[0].limits.price_collar_bps = 100;
    let mut h = Harness::new(config);
    let (_, events) = h.with(NewOrder { order_type: OrderType::Market, ..limit_order(0, Side::Buy, 0, 1) });
    assert_eq!(rejected(&events), Some(RejectReason::NoReferencePrice));
}

#[test]
fn post_only_is_rejected_if_it_would_take_liquidity() {
    let mut h = Harness::basic();
    h.limit(0, Side::Sell, 10_000, 5);
    let (_, events) = h.with(NewOrder { post_only: true, ..limit_order(2, Side::Buy, 10_000, 1) });
    assert_eq!(rejected(&events), Some(RejectReason::WouldTakeLiquidity));
    let (_, events) = h.with(NewOrder { post_only: true, ..limit_order(2, Side::Buy, 9_900, 1) });
    assert!(matches!(book_changes(&events)[..], [BookChange::Add { .. }]));
    let (_, events) =
        h.with(NewOrder { post_only: true, tif: TimeInForce::Ioc, ..limit_order(2, Side::Buy, 9_900, 1) });
    assert_eq!(rejected(&events), Some(RejectReason::InvalidOrder));
}

// ---- cancel and replace ------------------------------------------------------------------

#[test]
fn cancel_to_zero_removes_and_reduce_keeps_priority() {
    let mut h = Harness::basic();
    let (first, _) = h.limit(0, Side::Buy, 10_000, 10);
    let (second, _) = h.limit(2, Side::Buy, 10_000, 10);
    let events =
        h.apply(Command::Cancel(Cancel { account: AccountId(0), client_ref: first, qty_remaining: 4 }));
    let c = cancels(&events)[0];
    assert_eq!((c.qty_cancelled, c.qty_remaining, c.reason), (6, 4, CancelReason::User));
    assert!(matches!(book_changes(&events)[..], [BookChange::Cancel { qty: 6, .. }]));
    let queue: Vec<_> =
        h.engine.level_orders(SYM, Side::Buy, 10_000).iter().map(|o| (o.client_ref, o.qty)).collect();
    assert_eq!(queue, vec![(first, 4), (second, 10)]);
    let events =
        h.apply(Command::Cancel(Cancel { account: AccountId(2), client_ref: second, qty_remaining: 0 }));
    assert!(matches!(book_changes(&events)[..], [BookChange::Delete { .. }]));
    assert_eq!(h.engine.best_bid(SYM), Some((10_000, 4)));
}

#[test]
fn invalid_cancels_are_rejected() {
    let mut h = Harness::basic();
    let (r, _) = h.limit(0, Side::Buy, 10_000, 10);
    let reject = |h: &mut Harness, account, client_ref, qty_remaining| {
        rejected(&h.apply(Command::Cancel(Cancel { account: AccountId(account), client_ref, qty_remaining })))
    };
    assert_eq!(reject(&mut h, 0, ClientRef(99), 0), Some(RejectReason::UnknownOrder));
    assert_eq!(reject(&mut h, 1, r, 0), Some(RejectReason::UnknownOrder), "another account's reference");
    assert_eq!(reject(&mut h, 0, r, 10), Some(RejectReason::CancelWouldNotReduce));
    assert_eq!(reject(&mut h, 9, r, 0), Some(RejectReason::UnknownAccount));
    h.apply(Command::Cancel(Cancel { account: AccountId(0), client_ref: r, qty_remaining: 0 }));
    assert_eq!(reject(&mut h, 0, r, 0), Some(RejectReason::UnknownOrder), "a finished order");
}

#[test]
fn replace_keeps_priority_only_at_same_price_without_growth() {
    let mut h = Harness::basic();
    let (a, _) = h.limit(0, Side::Buy, 10_000, 10);
    let (b, _) = h.limit(2, Side::Buy, 10_000, 10);
    let a2 = h.next_ref(0);
    let events = h.apply(Command::Replace(Replace {
        account: AccountId(0),
        client_ref: a,
        new_client_ref: a2,
        price: 10_000,
        qty: 7,
    }));
    let Event::Replaced(r) = events[0] else { panic!("{events:?}") };
    assert!(r.priority_kept && r.old_order_id == r.new_order_id);
    assert_eq!(h.engine.level_orders(SYM, Side::Buy, 10_000)[0].client_ref, a2);
    let a3 = h.next_ref(0);
    let events = h.apply(Command::Replace(Replace {
        account: AccountId(0),
        client_ref: a2,
        new_client_ref: a3,
        price: 10_000,
        qty: 8,
    }));
    let Event::Replaced(r) = events[0] else { panic!("{events:?}") };
    assert!(!r.priority_kept && r.new_order_id != r.old_order_id);
    assert!(matches!(book_changes(&events)[..], [BookChange::Replace { qty: 8, .. }]));
    let queue: Vec<_> = h.engine.level_orders(SYM, Side::Buy, 10_000).iter().map(|o| o.client_ref).collect();
    assert_eq!(queue, vec![b, a3], "growing the quantity loses time priority");
    assert_eq!(h.engine.order(AccountId(0), a2), None, "the old reference is gone");
}

#[test]
fn replace_that_crosses_executes_then_rests() {
    let mut h = Harness::basic();
    h.limit(2, Side::Sell, 10_100, 5);
    let (a, _) = h.limit(0, Side::Buy, 10_000, 10);
    let a2 = h.next_ref(0);
    let events = h.apply(Command::Replace(Replace {
        account: AccountId(0),
        client_ref: a,
        new_client_ref: a2,
        price: 10_100,
        qty: 10,
    }));
    assert_eq!(executions(&events)[0].qty, 5);
    assert_eq!(executions(&events)[0].taker.client_ref, a2);
    assert_eq!(h.engine.best_bid(SYM), Some((10_100, 5)));
    assert_eq!(h.engine.best_ask(SYM), None);
}

#[test]
fn replace_rejects_change_nothing() {
    let mut h = Harness::basic();
    let (a, _) = h.limit(0, Side::Buy, 10_000, 10);
    let before = h.engine.state_hash();
    for (new_ref, price, qty, reason) in [
        (ClientRef(1), 10_000, 5, RejectReason::DuplicateClientRef),
        (ClientRef(50), 10_050, 5, RejectReason::PriceNotOnTick),
        (ClientRef(50), 10_000, 0, RejectReason::ZeroQuantity),
        (ClientRef(50), 99_999_900, 5, RejectReason::PriceOutOfBand),
    ] {
        let events = h.apply(Command::Replace(Replace {
            account: AccountId(0),
            client_ref: a,
            new_client_ref: new_ref,
            price,
            qty,
        }));
        assert_eq!(rejected(&events), Some(reason));
    }
    // Only the sequence and timestamp moved: a twin that saw none of the rejects, brought to the
    // same sequence by one identical command, has the same state.
    let mut twin = Harness::basic();
    twin.limit(0, Side::Buy, 10_000, 10);
    assert_eq!(twin.engine.state_hash(), before);
    twin.sequence = h.sequence;
    twin.now_ns = h.now_ns;
    let sync = Command::MassCancel { account: AccountId(1), instrument: None };
    h.apply(sync);
    twin.apply(sync);
    assert_eq!(h.engine.state_hash(), twin.engine.state_hash());
}

// ---- mass cancel, disconnect, kill switch ------------------------------------------------

#[test]
fn mass_cancel_cancels_only_the_account_and_instrument() {
    let mut h = Harness::new(EngineConfig {
        instruments: vec![instrument("AAPL"), instrument("MSFT")],
        accounts: vec![account(1), account(2)],
        max_orders: 100,
    });
    h.limit(0, Side::Buy, 10_000, 1);
    h.with(NewOrder { instrument: InstrumentId(1), ..limit_order(0, Side::Buy, 10_000, 1) });
    h.limit(1, Side::Buy, 10_000, 1);
    let events = h.apply(Command::MassCancel { account: AccountId(0), instrument: Some(SYM) });
    assert_eq!(cancels(&events).len(), 1);
    assert!(matches!(
        events.last(),
        Some(Event::MassCancelled { cancelled: 1, reason: CancelReason::MassCancel, .. })
    ));
    assert_eq!(h.engine.open_orders(AccountId(0)).len(), 1);
    let events = h.apply(Command::Disconnect { account: AccountId(0) });
    assert_eq!(cancels(&events)[0].reason, CancelReason::Disconnect);
    assert!(h.engine.open_orders(AccountId(0)).is_empty());
    assert_eq!(h.engine.open_orders(AccountId(1)).len(), 1);
}

#[test]
fn kill_switch_cancels_all_and_blocks_until_released() {
    let mut h = Harness::basic();
    h.limit(0, Side::Buy, 10_000, 1);
    h.limit(0, Side::Sell, 10_500, 1);
    let events = h.apply(Command::KillSwitch { account: AccountId(0), engage: true });
    assert_eq!(cancels(&events).iter().filter(|c| c.reason == CancelReason::KillSwitch).count(), 2);
    assert!(matches!(events.last(), Some(Event::KillSwitch { engaged: true, .. })));
    assert!(h.engine.is_blocked(AccountId(0)));
    let (_, events) = h.limit(0, Side::Buy, 10_000, 1);
    assert_eq!(rejected(&events), Some(RejectReason::AccountBlocked));
    h.apply(Command::KillSwitch { account: AccountId(0), engage: false });
    let (_, events) = h.limit(0, Side::Buy, 10_000, 1);
    assert!(matches!(events[0], Event::Accepted(_)));
}

// ---- self-trade prevention ---------------------------------------------------------------

fn stp_harness(mode: StpMode) -> Harness {
    let mut config = EngineConfig {
        instruments: vec![instrument("AAPL")],
        accounts: vec![account(1), account(1), account(2)],
        max_orders: 100,
    };
    for a in &mut config.accounts {
        a.stp = mode;
    }
    Harness::new(config)
}

#[test]
fn stp_cancel_newest_keeps_the_resting_order() {
    let mut h = stp_harness(StpMode::CancelNewest);
    h.limit(0, Side::Sell, 10_000, 5);
    let (_, events) = h.limit(1, Side::Buy, 10_000, 3);
    assert!(executions(&events).is_empty());
    assert_eq!(cancels(&events)[0].reason, CancelReason::SelfTrade);
    assert_eq!(h.engine.best_ask(SYM), Some((10_000, 5)));
    assert_eq!(h.engine.best_bid(SYM), None);
}

#[test]
fn stp_cancel_oldest_removes_the_resting_order_and_continues() {
    let mut h = stp_harness(StpMode::CancelOldest);
    h.limit(0, Side::Sell, 10_000, 5);
    h.limit(2, Side::Sell, 10_000, 5);
    let (_, events) = h.limit(1, Side::Buy, 10_000, 3);
    let c = cancels(&events);
    assert_eq!((c[0].account, c[0].reason), (AccountId(0), CancelReason::SelfTrade));
    assert_eq!(executions(&events)[0].maker.account, AccountId(2));
    assert_eq!(h.engine.best_ask(SYM), Some((10_000, 2)));
}

#[test]
fn stp_cancel_both() {
    let mut h = stp_harness(StpMode::CancelBoth);
    h.limit(0, Side::Sell, 10_000, 5);
    let (_, events) = h.limit(1, Side::Buy, 10_000, 3);
    assert_eq!(cancels(&events).len(), 2);
    assert_eq!(h.engine.best_ask(SYM), None);
    assert_eq!(h.engine.best_bid(SYM), None);
}

#[test]
fn stp_decrement_and_cancel_reduces_both_without_trading() {
    let mut h = stp_harness(StpMode::DecrementAndCancel);
    h.limit(0, Side::Sell, 10_000, 5);
    let (_, events) = h.limit(1, Side::Buy, 10_000, 3);
    assert!(executions(&events).is_empty());
    let c = cancels(&events);
    assert_eq!((c[0].account, c[0].qty_cancelled, c[0].qty_remaining), (AccountId(0), 3, 2));
    assert_eq!((c[1].account, c[1].qty_cancelled, c[1].qty_remaining), (AccountId(1), 3, 0));
    assert_eq!(h.engine.best_ask(SYM), Some((10_000, 2)));
    assert_eq!(h.engine.position(AccountId(0), SYM), 0);
}

#[test]
fn other_firms_trade_normally_under_stp() {
    let mut h = stp_harness(StpMode::CancelBoth);
    h.limit(0, Side::Sell, 10_000, 5);
    let (_, events) = h.limit(2, Side::Buy, 10_000, 5);
    assert_eq!(executions(&events).len(), 1);
}

// ---- pre-trade risk ------------------------------------------------------------------------

fn risk_harness(limits: RiskLimits) -> Harness {
    let mut config = EngineConfig {
        instruments: vec![InstrumentConfig { reference_price: Some(10_000), ..instrument("AAPL") }],
        accounts: vec![account(1), account(2)],
        max_orders: 100,
    };
    config.accounts[0].limits = limits;
    Harness::new(config)
}

#[test]
fn max_order_qty_and_notional() {
    let mut h = risk_harness(RiskLimits {
        max_order_qty: 100,
        max_order_notional: 10_000 * 50,
        ..RiskLimits::UNLIMITED
    });
    assert_eq!(rejected(&h.limit(0, Side::Buy, 100, 101).1), Some(RejectReason::MaxOrderQty));
    assert_eq!(rejected(&h.limit(0, Side::Buy, 10_000, 51).1), Some(RejectReason::MaxOrderNotional));
    assert!(matches!(h.limit(0, Side::Buy, 10_000, 50).1[0], Event::Accepted(_)));
}

#[test]
fn price_collar_follows_the_last_trade() {
    let mut h = risk_harness(RiskLimits { price_collar_bps: 1_000, ..RiskLimits::UNLIMITED });
    assert_eq!(rejected(&h.limit(0, Side::Buy, 11_100, 1).1), Some(RejectReason::PriceCollar));
    assert_eq!(rejected(&h.limit(0, Side::Sell, 8_900, 1).1), Some(RejectReason::PriceCollar));
    assert!(matches!(h.limit(0, Side::Buy, 11_000, 1).1[0], Event::Accepted(_)));
    assert!(
        matches!(h.limit(0, Side::Buy, 5_000, 1).1[0], Event::Accepted(_)),
        "passive prices are not collared"
    );
    h.limit(1, Side::Sell, 20_000, 1);
    h.limit(1, Side::Buy, 20_000, 1); // trade at 20_000 moves the reference
    assert_eq!(h.engine.reference_price(SYM), Some(20_000));
    assert!(matches!(h.limit(0, Side::Buy, 21_000, 1).1[0], Event::Accepted(_)));
}

#[test]
fn max_open_orders() {
    let mut h = risk_harness(RiskLimits { max_open_orders: 2, ..RiskLimits::UNLIMITED });
    h.limit(0, Side::Buy, 100, 1);
    h.limit(0, Side::Buy, 200, 1);
    assert_eq!(rejected(&h.limit(0, Side::Buy, 300, 1).1), Some(RejectReason::MaxOpenOrders));
    let (_, events) = h.order(0, Side::Buy, 300, 1, TimeInForce::Ioc);
    assert!(rejected(&events).is_none(), "an IOC never rests, so it does not count");
}

#[test]
fn max_position_counts_open_orders_and_fills() {
    let mut h = risk_harness(RiskLimits { max_position: 10, ..RiskLimits::UNLIMITED });
    h.limit(0, Side::Buy, 10_000, 6);
    assert_eq!(rejected(&h.limit(0, Side::Buy, 9_900, 5).1), Some(RejectReason::MaxPosition));
    h.limit(1, Side::Sell, 10_000, 6); // fills: position 6, no open buys
    assert_eq!(h.engine.position(AccountId(0), SYM), 6);
    assert_eq!(rejected(&h.limit(0, Side::Buy, 9_900, 5).1), Some(RejectReason::MaxPosition));
    assert!(matches!(h.limit(0, Side::Buy, 9_900, 4).1[0], Event::Accepted(_)));
    assert!(matches!(h.limit(0, Side::Sell, 20_000, 16).1[0], Event::Accepted(_)), "selling reduces a long");
    assert_eq!(rejected(&h.limit(0, Side::Sell, 20_000, 1).1), Some(RejectReason::MaxPosition));
}

#[test]
fn order_rate_limit_counts_in_sequenced_time() {
    let mut h = risk_harness(RiskLimits {
        max_orders_per_window: 3,
        rate_window_ns: 1_000_000,
        ..RiskLimits::UNLIMITED
    });
    for _ in 0..3 {
        assert!(matches!(h.limit(0, Side::Buy, 100, 1).1[0], Event::Accepted(_)));
    }
    assert_eq!(rejected(&h.limit(0, Side::Buy, 100, 1).1), Some(RejectReason::RateLimit));
    h.now_ns += 1_000_000;
    assert!(matches!(h.limit(0, Side::Buy, 100, 1).1[0], Event::Accepted(_)));
}

#[test]
fn risk_limits_can_be_changed_by_a_sequenced_command() {
    let mut h = risk_harness(RiskLimits::UNLIMITED);
    let events = h.apply(Command::SetRiskLimits {
        account: AccountId(0),
        limits: RiskLimits { max_order_qty: 5, ..RiskLimits::UNLIMITED },
    });
    assert_eq!(events, vec![Event::RiskLimitsSet { account: AccountId(0) }]);
    assert_eq!(rejected(&h.limit(0, Side::Buy, 100, 6).1), Some(RejectReason::MaxOrderQty));
    let bad = RiskLimits { max_orders_per_window: 1, rate_window_ns: 0, ..RiskLimits::UNLIMITED };
    let events = h.apply(Command::SetRiskLimits { account: AccountId(0), limits: bad });
    assert_eq!(rejected(&events), Some(RejectReason::InvalidRiskLimits));
}

// ---- invalid commands ----------------------------------------------------------------------

#[test]
fn every_invalid_order_is_rejected_with_its_reason_and_changes_nothing() {
    let mut config = EngineConfig {
        instruments: vec![InstrumentConfig { lot_size: 10, ..instrument("AAPL") }],
        accounts: vec![account(1)],
        max_orders: 2,
    };
    config.accounts[0].limits.max_open_orders = 100;
    let mut h = Harness::new(config);
    h.limit(0, Side::Buy, 10_000, 10); // client ref 1
    let hash = h.engine.state_hash();
    let cases = [
        (
            NewOrder { instrument: InstrumentId(5), ..limit_order(0, Side::Buy, 10_000, 10) },
            RejectReason::UnknownInstrument,
        ),
        (limit_order(3, Side::Buy, 10_000, 10), RejectReason::UnknownAccount),
        (limit_order(0, Side::Buy, 10_000, 0), RejectReason::ZeroQuantity),
        (limit_order(0, Side::Buy, 10_050, 10), RejectReason::PriceNotOnTick),
        (limit_order(0, Side::Buy, 10_000, 15), RejectReason::QuantityNotOnLot),
        (limit_order(0, Side::Buy, 3_000_000, 10), RejectReason::PriceOutOfBand),
        (limit_order(0, Side::Buy, 0, 10), RejectReason::PriceOutOfBand),
        (
            NewOrder { client_ref: ClientRef(1), ..limit_order(0, Side::Buy, 10_000, 10) },
            RejectReason::DuplicateClientRef,
        ),
    ];
    for (order, reason) in cases {
        let order =
            if order.client_ref.0 == 0 { NewOrder { client_ref: ClientRef(100), ..order } } else { order };
        let mut events = Vec::new();
        h.sequence += 1;
        h.engine.apply(&Command::NewOrder(order), h.sequence, h.now_ns, &mut events);
        assert_eq!(rejected(&events), Some(reason), "{order:?}");
    }
    assert_eq!(h.engine.open_order_count(), 1);
    // Capacity: the arena holds two orders.
    h.limit(0, Side::Buy, 10_000, 10);
    assert_eq!(rejected(&h.limit(0, Side::Buy, 10_000, 10).1), Some(RejectReason::CapacityExhausted));
    assert_ne!(hash, h.engine.state_hash());
}

#[test]
fn configuration_errors_name_what_is_wrong() {
    let bad_tick = EngineConfig {
        instruments: vec![InstrumentConfig { price_band_min: 150, ..instrument("AAPL") }],
        accounts: vec![],
        max_orders: 1,
    };
    let err = Engine::new(&bad_tick).unwrap_err().to_string();
    assert!(err.contains("AAPL") && err.contains("multiples of the tick size"), "{err}");
    let dup = EngineConfig {
        instruments: vec![instrument("AAPL"), instrument("AAPL")],
        accounts: vec![],
        max_orders: 1,
    };
    assert_eq!(Engine::new(&dup).unwrap_err(), ConfigError::DuplicateSymbol("AAPL".into()));
    let huge = EngineConfig {
        instruments: vec![InstrumentConfig { tick_size: 1, price_band_max: 1 << 40, ..instrument("AAPL") }],
        accounts: vec![],
        max_orders: 1,
    };
    assert!(Engine::new(&huge).unwrap_err().to_string().contains("narrow the band"));
}

#[test]
fn snapshot_restores_an_identical_engine() {
    let mut h = Harness::basic();
    h.limit(0, Side::Buy, 10_000, 10);
    h.limit(2, Side::Sell, 10_200, 7);
    h.limit(1, Side::Buy, 10_000, 3);
    h.limit(2, Side::Sell, 9_900, 4);
    h.apply(Command::KillSwitch { account: AccountId(1), engage: true });
    let mut bytes = Vec::new();
    h.engine.encode_state(&mut bytes);
    let config = EngineConfig {
        instruments: vec![instrument("AAPL")],
        accounts: vec![account(1), account(1), account(2)],
        max_orders: 50,
    };
    let mut restored = Engine::restore(&config, &bytes).unwrap();
    assert_eq!(restored.state_hash(), h.engine.state_hash());
    // And both go on identically.
    let cmd =
        Command::NewOrder(NewOrder { client_ref: ClientRef(10), ..limit_order(2, Side::Sell, 9_800, 20) });
    let (mut a, mut b) = (Vec::new(), Vec::new());
    h.engine.apply(&cmd, 100, 1, &mut a);
    restored.apply(&cmd, 100, 1, &mut b);
    assert_eq!(a, b);
    assert_eq!(restored.state_hash(), h.engine.state_hash());
    // A damaged snapshot is refused, never half-loaded.
    // (Random damage is the journal's CRC's to catch; restore checks structure.) Here the first
    // bid level's total no longer matches its orders.
    let mut damaged = bytes.clone();
    damaged[85] ^= 0x01;
    let err = Engine::restore(&config, &damaged).unwrap_err();
    assert!(matches!(err, SnapshotError::Inconsistent { offset: 73, .. }), "{err}");
    assert!(matches!(
        Engine::restore(&config, &bytes[..bytes.len() - 1]),
        Err(SnapshotError::Truncated { .. })
    ));
}
