//! Replays the real Nasdaq order flow of the LOBSTER sample (AAPL, 2012-06-21; see
//! tests/data/lobster/README.md) through the public engine API, and requires after every event
//! that the best bid and ask (price and size) equal the sample's, and that every visible
//! execution fills the very order it names.
//!
//! Only the best levels are an exact oracle: the message file carries no events beyond the ten
//! visible levels, so a deep level can vanish without a message (5876500 does, by event 12).

use petrel_engine::core::*;
use std::collections::{HashMap, HashSet};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lobster/");
const MESSAGES: &str = "AAPL_2012-06-21_34200000_57600000_message_10.csv";
const BOOKS: &str = "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv";
const AAPL: InstrumentId = InstrumentId(0);
const MAKERS: AccountId = AccountId(0);
const TAKER: AccountId = AccountId(1);

struct Message {
    kind: u8,
    order_id: u64,
    size: Qty,
    price: Price,
    side: Side,
}

/// The visible book after an event: up to ten (price, size) levels per side, best first.
struct Snapshot {
    asks: Vec<(Price, u64)>,
    bids: Vec<(Price, u64)>,
}

fn load() -> (Vec<Message>, Vec<Snapshot>) {
    let messages: Vec<Message> = std::fs::read_to_string(format!("{DATA}{MESSAGES}"))
        .expect("LOBSTER message file")
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Message {
                kind: f[1].parse().unwrap(),
                order_id: f[2].parse().unwrap(),
                size: f[3].parse().unwrap(),
                price: f[4].parse().unwrap(),
                side: if f[5] == "1" { Side::Buy } else { Side::Sell },
            }
        })
        .collect();
    let snapshots: Vec<Snapshot> = std::fs::read_to_string(format!("{DATA}{BOOKS}"))
        .expect("LOBSTER order book file")
        .lines()
        .map(|line| {
            let f: Vec<i64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            let mut s = Snapshot { asks: Vec::new(), bids: Vec::new() };
            for level in f.chunks(4) {
                // Missing levels are padded with ±9999999999 and size 0.
                if level[1] > 0 {
                    s.asks.push((level[0], level[1] as u64));
                }
                if level[3] > 0 {
                    s.bids.push((level[2], level[3] as u64));
                }
            }
            s
        })
        .collect();
    assert_eq!(messages.len(), snapshots.len());
    (messages, snapshots)
}

struct Replay {
    engine: Engine,
    sequence: u64,
    next_maker_ref: u32,
    next_taker_ref: u32,
    /// LOBSTER order id → the engine's client reference for it.
    refs: HashMap<u64, ClientRef>,
    /// Client references of synthetic orders standing for orders older than the sample.
    synthetic: HashSet<ClientRef>,
}

impl Replay {
    fn apply(&mut self, command: Command) -> Vec<Event> {
        self.sequence += 1;
        let mut events = Vec::new();
        self.engine.apply(&command, self.sequence, self.sequence * 1_000, &mut events);
        assert!(!events.iter().any(|e| matches!(e, Event::Rejected(_))), "{command:?} rejected: {events:?}");
        events
    }

    fn add(&mut self, side: Side, price: Price, qty: Qty) -> ClientRef {
        self.next_maker_ref += 1;
        let client_ref = ClientRef(self.next_maker_ref);
        let events = self.apply(Command::NewOrder(NewOrder {
            account: MAKERS,
            client_ref,
            instrument: AAPL,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Day,
            price,
            qty,
            min_qty: 0,
            post_only: false,
        }));
        assert!(
            !events.iter().any(|e| matches!(e, Event::Executed(_))),
            "a LOBSTER add is never marketable, but {side:?} {qty}@{price} executed"
        );
        client_ref
    }

    fn reduce(&mut self, client_ref: ClientRef, by: Qty) {
        let open = self.engine.order(MAKERS, client_ref).expect("order to reduce is open").qty;
        assert!(by <= open, "reducing {client_ref:?} by {by} but only {open} is open");
        self.apply(Command::Cancel(Cancel { account: MAKERS, client_ref, qty_remaining: open - by }));
    }

    /// Older orders surface at the front of a level: cancel the level's orders, add the
    /// synthetic one, and re-enter the others behind it in their original order.
    fn surface_at_front(&mut self, side: Side, price: Price, qty: Qty) {
        let queue = self.engine.level_orders(AAPL, side, price);
        for o in &queue {
            self.apply(Command::Cancel(Cancel {
                account: MAKERS,
                client_ref: o.client_ref,
                qty_remaining: 0,
            }));
        }
        let synthetic = self.add(side, price, qty);
        self.synthetic.insert(synthetic);
        for o in queue {
            let new_ref = self.add(side, price, o.qty);
            if self.synthetic.remove(&o.client_ref) {
                self.synthetic.insert(new_ref);
            }
            for r in self.refs.values_mut() {
                if *r == o.client_ref {
                    *r = new_ref;
                }
            }
        }
    }

    /// The order a message names: known from an add in the sample, or else one of the orders
    /// older than the sample, which the synthetic orders at its price stand for.
    fn named(&self, m: &Message) -> ClientRef {
        if let Some(r) = self.refs.get(&m.order_id) {
            return *r;
        }
        self.engine
            .level_orders(AAPL, m.side, m.price)
            .iter()
            .find(|o| self.synthetic.contains(&o.client_ref))
            .unwrap_or_else(|| {
                panic!("order {} predates the sample but no older order rests at {}", m.order_id, m.price)
            })
            .client_ref
    }
}

#[test]
fn lobster_sample_replays_exactly() {
    let (messages, snapshots) = load();
    let config = EngineConfig {
        instruments: vec![InstrumentConfig {
            symbol: Symbol::new("AAPL").unwrap(),
            tick_size: 100, // one cent, in price units of 1/10_000 dollar
            lot_size: 1,
            price_band_min: 5_000_000,
            price_band_max: 7_000_000,
            reference_price: None,
        }],
        accounts: vec![
            AccountConfig { firm: 1, stp: StpMode::None, limits: RiskLimits::UNLIMITED },
            AccountConfig { firm: 2, stp: StpMode::None, limits: RiskLimits::UNLIMITED },
        ],
        max_orders: 10_000,
    };
    let mut replay = Replay {
        engine: Engine::new(&config).unwrap(),
        sequence: 0,
        next_maker_ref: 0,
        next_taker_ref: 0,
        refs: HashMap::new(),
        synthetic: HashSet::new(),
    };
    // Seed from the first snapshot: one synthetic order per visible level.
    for (side, levels) in [(Side::Sell, &snapshots[0].asks), (Side::Buy, &snapshots[0].bids)] {
        for &(price, size) in levels {
            let r = replay.add(side, price, size as Qty);
            replay.synthetic.insert(r);
        }
    }
    let (mut checked, mut executions_checked, mut surfaced) = (0, 0, 0);
    for (i, m) in messages.iter().enumerate().skip(1) {
        match m.kind {
            1 => {
                let r = replay.add(m.side, m.price, m.size);
                replay.refs.insert(m.order_id, r);
            }
            2 | 3 => {
                let named = replay.named(m);
                if m.kind == 3 && replay.refs.contains_key(&m.order_id) {
                    let open = replay.engine.order(MAKERS, named).unwrap().qty;
                    assert_eq!(open, m.size, "event {i}: delete of order {} with {} open", m.order_id, open);
                }
                replay.reduce(named, m.size);
            }
            4 => {
                let named = replay.named(m);
                replay.next_taker_ref += 1;
                let events = replay.apply(Command::NewOrder(NewOrder {
                    account: TAKER,
                    client_ref: ClientRef(replay.next_taker_ref),
                    instrument: AAPL,
                    side: m.side.opposite(),
                    order_type: OrderType::Limit,
                    tif: TimeInForce::Ioc,
                    price: m.price,
                    qty: m.size,
                    min_qty: 0,
                    post_only: false,
                }));
                let fills: Vec<&Executed> = events
                    .iter()
                    .filter_map(|e| if let Event::Executed(x) = e { Some(x) } else { None })
                    .collect();
                assert_eq!(
                    fills.len(),
                    1,
                    "event {i}: execution of {} should fill one order: {fills:?}",
                    m.order_id
                );
                assert_eq!(
                    (fills[0].maker.client_ref, fills[0].price, fills[0].qty),
                    (named, m.price, m.size),
                    "event {i}"
                );
                executions_checked += 1;
            }
            5 | 7 => continue, // hidden executions and halts leave the visible book alone
            other => panic!("event {i}: unknown LOBSTER event type {other}"),
        }
        let want = &snapshots[i];
        assert_eq!(replay.engine.best_ask(AAPL), want.asks.first().copied(), "best ask after event {i}");
        assert_eq!(replay.engine.best_bid(AAPL), want.bids.first().copied(), "best bid after event {i}");
        checked += 1;
        // Orders older than the sample surface as the visible book thins out.
        for (side, levels) in [(Side::Sell, &want.asks), (Side::Buy, &want.bids)] {
            for &(price, size) in levels {
                let known: u64 =
                    replay.engine.level_orders(AAPL, side, price).iter().map(|o| o.qty as u64).sum();
                if size > known {
                    replay.surface_at_front(side, price, (size - known) as Qty);
                    surfaced += 1;
                }
            }
        }
    }
    assert_eq!(executions_checked, 98, "visible executions in the sample");
    // The files hold 999 rows (the sample's README counts one fewer), so 998 events follow the
    // first; every one of them that changes the visible book was checked.
    assert_eq!(messages.len(), 999);
    assert_eq!(checked + messages.iter().skip(1).filter(|m| m.kind == 5 || m.kind == 7).count(), 998);
    assert!(surfaced > 0, "the sample is known to surface older orders");
}
