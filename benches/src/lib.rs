//! Workloads for Petrel's benchmarks, its load generator and its long-run tests.
//!
//! Each generator is deterministic in its seed. Streams are produced against a shadow engine,
//! so cancels and replaces name orders that are really open, as a trading client's would.

use petrel_core::*;

pub mod load;

/// xorshift64*: small, fast and reproducible; the core itself never draws random numbers.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub const TICK: Price = 100;
pub const MID: Price = 1_000_000; // $100.00
pub const ACCOUNTS: u32 = 100;

/// One instrument with a wide band, `ACCOUNTS` accounts in separate firms, no binding limits.
pub fn bench_config(max_orders: u32) -> EngineConfig {
    EngineConfig {
        instruments: vec![InstrumentConfig {
            symbol: Symbol::new("BENCH").unwrap(),
            tick_size: TICK,
            lot_size: 1,
            price_band_min: TICK,
            price_band_max: 2 * MID,
            reference_price: Some(MID),
        }],
        accounts: (0..ACCOUNTS)
            .map(|firm| AccountConfig { firm, stp: StpMode::None, limits: RiskLimits::UNLIMITED })
            .collect(),
        max_orders,
    }
}

/// Shadow state of the generator: the open orders, learned from the engine's events.
struct Shadow {
    engine: Engine,
    sequence: u64,
    open: Vec<(AccountId, ClientRef, Side, Price, Qty)>,
    position_of: std::collections::HashMap<(u32, u32), usize>,
    next_ref: Vec<u32>,
    events: Vec<Event>,
}

impl Shadow {
    fn new(config: &EngineConfig) -> Shadow {
        Shadow {
            engine: Engine::new(config).unwrap(),
            sequence: 0,
            open: Vec::new(),
            position_of: Default::default(),
            next_ref: vec![0; config.accounts.len()],
            events: Vec::new(),
        }
    }

    fn new_ref(&mut self, account: u32) -> ClientRef {
        self.next_ref[account as usize] += 1;
        ClientRef(self.next_ref[account as usize])
    }

    fn remove(&mut self, account: AccountId, client_ref: ClientRef) {
        if let Some(i) = self.position_of.remove(&(account.0, client_ref.0)) {
            self.open.swap_remove(i);
            if i < self.open.len() {
                let moved = self.open[i];
                self.position_of.insert((moved.0 .0, moved.1 .0), i);
            }
        }
    }

    /// Applies the command to the shadow engine and tracks what is open. Returns whether it
    /// traded.
    fn apply(&mut self, command: Command) -> bool {
        self.sequence += 1;
        self.events.clear();
        self.engine.apply(&command, self.sequence, self.sequence * 100, &mut self.events);
        let mut traded = false;
        let events = std::mem::take(&mut self.events);
        for e in &events {
            match *e {
                Event::Executed(x) => {
                    traded = true;
                    if x.maker.qty_remaining == 0 {
                        self.remove(x.maker.account, x.maker.client_ref);
                    } else if let Some(&i) = self.position_of.get(&(x.maker.account.0, x.maker.client_ref.0))
                    {
                        self.open[i].4 = x.maker.qty_remaining;
                    }
                }
                Event::Cancelled(c) => {
                    if c.qty_remaining == 0 {
                        self.remove(c.account, c.client_ref);
                    } else if let Some(&i) = self.position_of.get(&(c.account.0, c.client_ref.0)) {
                        self.open[i].4 = c.qty_remaining;
                    }
                }
                Event::Replaced(r) => {
                    self.remove(r.account, r.old_client_ref);
                    // Re-added below once it is known to rest.
                }
                Event::Book(BookChange::Add { .. }) | Event::Book(BookChange::Replace { .. }) => {}
                _ => {}
            }
        }
        // Anything now resting that the shadow does not know of is the command's own order.
        if let Command::NewOrder(NewOrder { account, client_ref, .. })
        | Command::Replace(Replace { account, new_client_ref: client_ref, .. }) = command
        {
            if let Some(o) = self.engine.order(account, client_ref) {
                if !self.position_of.contains_key(&(account.0, client_ref.0)) {
                    self.position_of.insert((account.0, client_ref.0), self.open.len());
                    self.open.push((account, client_ref, o.side, o.price, o.qty));
                } else if let Some(&i) = self.position_of.get(&(account.0, client_ref.0)) {
                    self.open[i].3 = o.price;
                    self.open[i].4 = o.qty;
                }
            }
        }
        self.events = events;
        traded
    }
}

/// Statistics of a generated stream, to check it has the intended shape.
#[derive(Clone, Debug, Default)]
pub struct MixStats {
    pub commands: u64,
    pub new_limit: u64,
    pub ioc: u64,
    pub cancels: u64,
    pub replaces: u64,
    pub trading_commands: u64,
    pub open_orders_at_end: usize,
    pub levels_at_end: usize,
}

/// The exchange-core benchmark mix: about 1,000 resting orders over about 750 price levels;
/// 9% new limit orders, 3% IOC, 6% cancels, 82% replaces that move the price; about 6% of
/// commands trade. The stream starts with the orders that build the book to that depth.
pub fn exchange_core_mix(commands: usize, seed: u64) -> (Vec<Command>, MixStats) {
    const TARGET_OPEN: usize = 1_000;
    const HALF_SPREAD_LEVELS: i64 = 375; // ~750 levels over both sides
    let config = bench_config(1 << 16);
    let mut shadow = Shadow::new(&config);
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(commands + TARGET_OPEN);
    let mut stats = MixStats::default();
    let instrument = InstrumentId(0);
    let passive_price = |rng: &mut Rng, side: Side| -> Price {
        let offset = 1 + rng.below(HALF_SPREAD_LEVELS as u64) as i64;
        match side {
            Side::Buy => MID - offset * TICK,
            Side::Sell => MID + offset * TICK,
        }
    };
    // Build the book.
    while shadow.open.len() < TARGET_OPEN {
        let account = rng.below(ACCOUNTS as u64) as u32;
        let side = if rng.chance(50) { Side::Buy } else { Side::Sell };
        let command = Command::NewOrder(NewOrder {
            account: AccountId(account),
            client_ref: shadow.new_ref(account),
            instrument,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Day,
            price: passive_price(&mut rng, side),
            qty: 1 + rng.below(100) as Qty,
            min_qty: 0,
            post_only: false,
        });
        shadow.apply(command);
        out.push(command);
    }
    for _ in 0..commands {
        let roll = rng.below(100);
        let low_on_orders = shadow.open.len() < TARGET_OPEN * 9 / 10;
        let command = if roll < 9 || low_on_orders || shadow.open.is_empty() {
            stats.new_limit += 1;
            let account = rng.below(ACCOUNTS as u64) as u32;
            let side = if rng.chance(50) { Side::Buy } else { Side::Sell };
            // Some new orders are marketable (they take the best price), more of them while the
            // book is above its target depth, which holds it near 1,000 orders.
            let marketable = if shadow.open.len() > TARGET_OPEN { 50 } else { 12 };
            let price = if rng.chance(marketable) {
                shadow.engine.best(instrument, side.opposite()).map_or(passive_price(&mut rng, side), |b| b.0)
            } else {
                passive_price(&mut rng, side)
            };
            Command::NewOrder(NewOrder {
                account: AccountId(account),
                client_ref: shadow.new_ref(account),
                instrument,
                side,
                order_type: OrderType::Limit,
                tif: TimeInForce::Day,
                price,
                qty: 1 + rng.below(100) as Qty,
                min_qty: 0,
                post_only: false,
            })
        } else if roll < 12 {
            stats.ioc += 1;
            let account = rng.below(ACCOUNTS as u64) as u32;
            let side = if rng.chance(50) { Side::Buy } else { Side::Sell };
            let price = shadow.engine.best(instrument, side.opposite()).map_or(MID, |b| b.0);
            Command::NewOrder(NewOrder {
                account: AccountId(account),
                client_ref: shadow.new_ref(account),
                instrument,
                side,
                order_type: OrderType::Limit,
                tif: TimeInForce::Ioc,
                price,
                qty: 1 + rng.below(50) as Qty,
                min_qty: 0,
                post_only: false,
            })
        } else if roll < 18 {
            stats.cancels += 1;
            let (account, client_ref, ..) = shadow.open[rng.below(shadow.open.len() as u64) as usize];
            Command::Cancel(Cancel { account, client_ref, qty_remaining: 0 })
        } else {
            stats.replaces += 1;
            let (account, client_ref, side, price, qty) =
                shadow.open[rng.below(shadow.open.len() as u64) as usize];
            // Move the price a few ticks; moves towards the other side are what trade.
            let step = 1 + rng.below(4) as i64;
            let toward = rng.chance(50);
            let moved = match (side, toward) {
                (Side::Buy, true) | (Side::Sell, false) => price + step * TICK,
                _ => price - step * TICK,
            };
            let moved = moved.clamp(MID - HALF_SPREAD_LEVELS * 2 * TICK, MID + HALF_SPREAD_LEVELS * 2 * TICK);
            let new_client_ref = shadow.new_ref(account.0);
            Command::Replace(Replace { account, client_ref, new_client_ref, price: moved, qty })
        };
        if shadow.apply(command) {
            stats.trading_commands += 1;
        }
        out.push(command);
    }
    stats.commands = commands as u64;
    stats.open_orders_at_end = shadow.engine.open_order_count();
    stats.levels_at_end = shadow.engine.depth(instrument, Side::Buy, usize::MAX).len()
        + shadow.engine.depth(instrument, Side::Sell, usize::MAX).len();
    (out, stats)
}

/// An add-heavy mix: 80% new passive limit orders, 10% marketable, 10% cancels; the book grows
/// to `max_open` orders and then cancels keep it there.
pub fn add_heavy_mix(commands: usize, max_open: usize, seed: u64) -> Vec<Command> {
    let config = bench_config((max_open * 2) as u32);
    let mut shadow = Shadow::new(&config);
    let mut rng = Rng::new(seed);
    let instrument = InstrumentId(0);
    let mut out = Vec::with_capacity(commands);
    for _ in 0..commands {
        let roll = rng.below(100);
        let command = if (roll < 10 || shadow.open.len() >= max_open) && !shadow.open.is_empty() {
            let (account, client_ref, ..) = shadow.open[rng.below(shadow.open.len() as u64) as usize];
            Command::Cancel(Cancel { account, client_ref, qty_remaining: 0 })
        } else {
            let account = rng.below(ACCOUNTS as u64) as u32;
            let side = if rng.chance(50) { Side::Buy } else { Side::Sell };
            let offset = if roll < 20 { -(rng.below(3) as i64) } else { 1 + rng.below(2_000) as i64 };
            let price = match side {
                Side::Buy => MID - offset * TICK,
                Side::Sell => MID + offset * TICK,
            };
            Command::NewOrder(NewOrder {
                account: AccountId(account),
                client_ref: shadow.new_ref(account),
                instrument,
                side,
                order_type: OrderType::Limit,
                tif: TimeInForce::Day,
                price,
                qty: 1 + rng.below(100) as Qty,
                min_qty: 0,
                post_only: false,
            })
        };
        shadow.apply(command);
        out.push(command);
    }
    out
}

pub use petrel_engine::lobster::lobster_commands;

/// Renumbers client references so that a stream repeated several times still has strictly
/// increasing references per account (each pass's references are offset past the last pass).
pub fn renumber_client_refs(commands: Vec<Command>) -> Vec<Command> {
    let mut offset: std::collections::HashMap<u32, u32> = Default::default();
    let mut max_seen: std::collections::HashMap<u32, u32> = Default::default();
    let mut last: std::collections::HashMap<u32, u32> = Default::default();
    commands
        .into_iter()
        .map(|command| {
            let account = command.account().0;
            let bump = |r: ClientRef, offset: &mut std::collections::HashMap<u32, u32>| {
                ClientRef(r.0 + offset.get(&account).copied().unwrap_or(0))
            };
            match command {
                Command::NewOrder(mut o) => {
                    // A reference at or below the previous new one starts a new pass.
                    if last.get(&account).is_some_and(|&l| o.client_ref.0 <= l) {
                        offset.insert(account, *max_seen.get(&account).unwrap_or(&0));
                    }
                    last.insert(account, o.client_ref.0);
                    o.client_ref = bump(o.client_ref, &mut offset);
                    let m = max_seen.entry(account).or_default();
                    *m = (*m).max(o.client_ref.0);
                    Command::NewOrder(o)
                }
                Command::Cancel(mut c) => {
                    c.client_ref = bump(c.client_ref, &mut offset);
                    Command::Cancel(c)
                }
                Command::Replace(mut r) => {
                    r.client_ref = bump(r.client_ref, &mut offset);
                    r.new_client_ref = bump(r.new_client_ref, &mut offset);
                    let m = max_seen.entry(account).or_default();
                    *m = (*m).max(r.new_client_ref.0);
                    Command::Replace(r)
                }
                other => other,
            }
        })
        .collect()
}
