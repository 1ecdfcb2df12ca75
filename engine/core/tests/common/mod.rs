//! A small harness for driving the engine in tests.
#![allow(dead_code)]

use petrel_core::*;

pub const TICK: Price = 100;
pub const SYM: InstrumentId = InstrumentId(0);

pub fn instrument(symbol: &str) -> InstrumentConfig {
    InstrumentConfig {
        symbol: Symbol::new(symbol).unwrap(),
        tick_size: TICK,
        lot_size: 1,
        price_band_min: 100,
        price_band_max: 2_000_000,
        reference_price: None,
    }
}

pub fn account(firm: u32) -> AccountConfig {
    AccountConfig { firm, stp: StpMode::None, limits: RiskLimits::UNLIMITED }
}

pub struct Harness {
    pub engine: Engine,
    pub sequence: u64,
    pub now_ns: u64,
    next_ref: Vec<u32>,
}

impl Harness {
    pub fn new(config: EngineConfig) -> Harness {
        let accounts = config.accounts.len();
        Harness {
            engine: Engine::new(&config).unwrap(),
            sequence: 0,
            now_ns: 1_000,
            next_ref: vec![1; accounts],
        }
    }

    /// Three accounts: 0 and 1 in firm 1, 2 in firm 2; one instrument.
    pub fn basic() -> Harness {
        Harness::new(EngineConfig {
            instruments: vec![instrument("AAPL")],
            accounts: vec![account(1), account(1), account(2)],
            max_orders: 1000,
        })
    }

    pub fn apply(&mut self, command: Command) -> Vec<Event> {
        self.sequence += 1;
        self.now_ns += 1_000;
        let mut events = Vec::new();
        self.engine.apply(&command, self.sequence, self.now_ns, &mut events);
        events
    }

    pub fn next_ref(&mut self, account: u32) -> ClientRef {
        let r = self.next_ref[account as usize];
        self.next_ref[account as usize] += 1;
        ClientRef(r)
    }

    pub fn order(
        &mut self,
        account: u32,
        side: Side,
        price: Price,
        qty: Qty,
        tif: TimeInForce,
    ) -> (ClientRef, Vec<Event>) {
        let client_ref = self.next_ref(account);
        let events = self.apply(Command::NewOrder(NewOrder {
            account: AccountId(account),
            client_ref,
            instrument: SYM,
            side,
            order_type: OrderType::Limit,
            tif,
            price,
            qty,
            min_qty: 0,
            post_only: false,
        }));
        (client_ref, events)
    }

    pub fn limit(&mut self, account: u32, side: Side, price: Price, qty: Qty) -> (ClientRef, Vec<Event>) {
        self.order(account, side, price, qty, TimeInForce::Day)
    }

    pub fn with(&mut self, order: NewOrder) -> (ClientRef, Vec<Event>) {
        let client_ref = self.next_ref(order.account.0);
        let events = self.apply(Command::NewOrder(NewOrder { client_ref, ..order }));
        (client_ref, events)
    }
}

pub fn limit_order(account: u32, side: Side, price: Price, qty: Qty) -> NewOrder {
    NewOrder {
        account: AccountId(account),
        client_ref: ClientRef(0),
        instrument: SYM,
        side,
        order_type: OrderType::Limit,
        tif: TimeInForce::Day,
        price,
        qty,
        min_qty: 0,
        post_only: false,
    }
}

pub fn rejected(events: &[Event]) -> Option<RejectReason> {
    match events {
        [Event::Rejected(r)] => Some(r.reason),
        _ => None,
    }
}

pub fn executions(events: &[Event]) -> Vec<Executed> {
    events.iter().filter_map(|e| if let Event::Executed(x) = e { Some(*x) } else { None }).collect()
}

pub fn cancels(events: &[Event]) -> Vec<Cancelled> {
    events.iter().filter_map(|e| if let Event::Cancelled(x) = e { Some(*x) } else { None }).collect()
}

pub fn book_changes(events: &[Event]) -> Vec<BookChange> {
    events.iter().filter_map(|e| if let Event::Book(x) = e { Some(*x) } else { None }).collect()
}
