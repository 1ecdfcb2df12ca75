//! What the load generator sends: the exchange-core mix generated live against each session's
//! own resting orders, or the LOBSTER sample replayed as OUCH.

use crate::Rng;
use petrel_core::{Command, TimeInForce};
use std::collections::HashMap;

/// One OUCH order message, before encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Enter {
        user_ref: u32,
        buy: bool,
        qty: u32,
        price: u64,
        ioc: bool,
    },
    Replace {
        orig_user_ref: u32,
        user_ref: u32,
        qty: u32,
        price: u64,
    },
    /// `qty` is the intended remaining size: 0 cancels the whole order.
    Cancel {
        user_ref: u32,
        qty: u32,
    },
}

/// A resting order of a session, as its acknowledgements describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resting {
    pub user_ref: u32,
    pub buy: bool,
    pub price: u64,
    pub qty: u32,
}

/// A session's view of its own orders: what is resting (learned from acknowledgements and
/// executions) and the next UserRefNum. References strictly increase per session because the
/// engine refuses any that does not.
#[derive(Debug)]
pub struct Book {
    pub next_user_ref: u32,
    resting: Vec<Resting>,
    position_of: HashMap<u32, usize>,
    /// Most resting orders tracked; a flow sends no new resting order beyond it.
    pub resting_max: usize,
}

impl Book {
    pub fn new(first_user_ref: u32, resting_max: usize) -> Book {
        Book {
            next_user_ref: first_user_ref,
            resting: Vec::with_capacity(resting_max),
            position_of: HashMap::with_capacity(resting_max),
            resting_max,
        }
    }

    pub fn allocate_user_ref(&mut self) -> u32 {
        let r = self.next_user_ref;
        // A session would need 4 billion orders to wrap; stop rather than send a stale number.
        self.next_user_ref = r.checked_add(1).expect("UserRefNum space of the session exhausted");
        r
    }

    pub fn resting_len(&self) -> usize {
        self.resting.len()
    }

    pub fn insert(&mut self, order: Resting) {
        if self.resting.len() >= self.resting_max || self.position_of.contains_key(&order.user_ref) {
            return;
        }
        self.position_of.insert(order.user_ref, self.resting.len());
        self.resting.push(order);
    }

    pub fn remove(&mut self, user_ref: u32) -> Option<Resting> {
        let i = self.position_of.remove(&user_ref)?;
        let order = self.resting.swap_remove(i);
        if let Some(moved) = self.resting.get(i) {
            self.position_of.insert(moved.user_ref, i);
        }
        Some(order)
    }

    /// An execution of `qty` against one of the session's orders.
    pub fn executed(&mut self, user_ref: u32, qty: u32) {
        if let Some(&i) = self.position_of.get(&user_ref) {
            let left = self.resting[i].qty.saturating_sub(qty);
            if left == 0 {
                self.remove(user_ref);
            } else {
                self.resting[i].qty = left;
            }
        }
    }

    /// Takes a random resting order out (it is about to be cancelled or replaced, and must not
    /// be picked again while that is in flight).
    fn take_random(&mut self, rng: &mut Rng) -> Option<Resting> {
        if self.resting.is_empty() {
            return None;
        }
        let user_ref = self.resting[rng.below(self.resting.len() as u64) as usize].user_ref;
        self.remove(user_ref)
    }
}

/// Which order flow to send.
#[derive(Clone, Debug)]
pub enum Mix {
    /// exchange-core's benchmark mix (see [`crate::exchange_core_mix`]): 9% new limit orders,
    /// 3% IOC, 6% cancels, 82% replaces that move the price by 1 to 4 ticks, around `mid_price`
    /// on one symbol; about `resting_target` orders rest over all sessions.
    ExchangeCore { symbol: String, mid_price: u64, tick: u64, resting_target: usize },
    /// The LOBSTER sample's adds, reductions, deletes and visible executions (the latter as IOC
    /// orders), in file order, looped; the resting account's orders go to session
    /// `0 % sessions`, the taking account's to `1 % sessions`.
    Lobster { symbol: String, commands: std::sync::Arc<Vec<Command>> },
}

impl Mix {
    pub fn name(&self) -> &'static str {
        match self {
            Mix::ExchangeCore { .. } => "exchange-core",
            Mix::Lobster { .. } => "lobster",
        }
    }

    pub fn symbol(&self) -> &str {
        match self {
            Mix::ExchangeCore { symbol, .. } | Mix::Lobster { symbol, .. } => symbol,
        }
    }

    /// Whether the flow needs the sessions' resting orders tracked.
    pub fn tracks_resting(&self) -> bool {
        matches!(self, Mix::ExchangeCore { .. })
    }
}

/// Price levels on each side of the mid that passive orders spread over (about 750 levels in
/// all, as in exchange-core's mix).
const HALF_SPREAD_LEVELS: u64 = 375;

/// The generator of one run: deterministic in its seed given the same acknowledgements.
#[derive(Debug)]
pub struct Flow {
    mix: Mix,
    sessions: usize,
    rng: Rng,
    /// LOBSTER: position in the command list, and (account, client ref) -> (session, UserRefNum).
    lobster_next: usize,
    lobster_refs: HashMap<(u32, u32), u32>,
}

impl Flow {
    pub fn new(mix: Mix, sessions: usize, seed: u64) -> Flow {
        assert!(sessions > 0, "a flow needs at least one session");
        Flow { mix, sessions, rng: Rng::new(seed), lobster_next: 0, lobster_refs: HashMap::new() }
    }

    /// Resting orders each session may track.
    pub fn resting_max_per_session(&self) -> usize {
        match &self.mix {
            // Twice the target leaves room for the swings of a random walk.
            Mix::ExchangeCore { resting_target, .. } => (2 * resting_target).div_ceil(self.sessions).max(2),
            Mix::Lobster { .. } => 0,
        }
    }

    /// The session that sends message `i` of the run.
    pub fn session_of(&self, i: u64) -> usize {
        match &self.mix {
            Mix::ExchangeCore { .. } => (i % self.sessions as u64) as usize,
            Mix::Lobster { commands, .. } => {
                let command = &commands[self.lobster_next % commands.len()];
                command.account().0 as usize % self.sessions
            }
        }
    }

    /// The next order for `session`, whose book the caller holds locked. `None` when the
    /// LOBSTER command has nothing to send (a reduction of an order this run never added).
    pub fn next_order(&mut self, session: usize, book: &mut Book) -> Option<Order> {
        match &self.mix {
            &Mix::ExchangeCore { mid_price, tick, resting_target, .. } => {
                Some(self.exchange_core(book, mid_price, tick, resting_target.div_ceil(self.sessions)))
            }
            Mix::Lobster { commands, .. } => {
                let command = commands[self.lobster_next % commands.len()];
                self.lobster_next += 1;
                debug_assert_eq!(command.account().0 as usize % self.sessions, session);
                self.lobster(command, book)
            }
        }
    }

    fn exchange_core(&mut self, book: &mut Book, mid: u64, tick: u64, target: usize) -> Order {
        let rng = &mut self.rng;
        let roll = rng.below(100);
        let low_on_orders = book.resting_len() < target * 9 / 10;
        let passive = |rng: &mut Rng, buy: bool| {
            let offset = (1 + rng.below(HALF_SPREAD_LEVELS)) * tick;
            if buy {
                mid - offset
            } else {
                mid + offset
            }
        };
        // Marketable prices reach a few levels into the other side, where the best resting
        // orders of all sessions sit.
        let through = |rng: &mut Rng, buy: bool| {
            let offset = (1 + rng.below(4)) * tick;
            if buy {
                mid + offset
            } else {
                mid - offset
            }
        };
        let full = book.resting_len() >= book.resting_max;
        if (roll < 9 || low_on_orders || book.resting_len() == 0) && !full {
            let buy = rng.chance(50);
            // More marketable orders while above the target depth hold the book near it.
            let marketable = if book.resting_len() > target { 50 } else { 12 };
            let price = if rng.chance(marketable) { through(rng, buy) } else { passive(rng, buy) };
            let qty = 1 + rng.below(100) as u32;
            return Order::Enter { user_ref: book.allocate_user_ref(), buy, qty, price, ioc: false };
        }
        if roll < 12 || book.resting_len() == 0 {
            let buy = rng.chance(50);
            let price = through(rng, buy);
            let qty = 1 + rng.below(50) as u32;
            return Order::Enter { user_ref: book.allocate_user_ref(), buy, qty, price, ioc: true };
        }
        let order = book.take_random(rng).expect("the book is not empty");
        if roll < 18 {
            return Order::Cancel { user_ref: order.user_ref, qty: 0 };
        }
        // Move the price a few ticks; moves towards the other side are what trade.
        let step = (1 + rng.below(4)) * tick;
        let toward = rng.chance(50);
        let moved = if order.buy == toward { order.price + step } else { order.price.saturating_sub(step) };
        let lowest = mid - 2 * HALF_SPREAD_LEVELS * tick;
        let highest = mid + 2 * HALF_SPREAD_LEVELS * tick;
        Order::Replace {
            orig_user_ref: order.user_ref,
            user_ref: book.allocate_user_ref(),
            qty: order.qty,
            price: moved.clamp(lowest, highest),
        }
    }

    fn lobster(&mut self, command: Command, book: &mut Book) -> Option<Order> {
        match command {
            Command::NewOrder(o) => {
                let user_ref = book.allocate_user_ref();
                // A later pass of the loop reuses the file's references: the newest order wins,
                // as it does in the file.
                self.lobster_refs.insert((o.account.0, o.client_ref.0), user_ref);
                Some(Order::Enter {
                    user_ref,
                    buy: o.side == petrel_core::Side::Buy,
                    qty: o.qty,
                    price: o.price.max(0) as u64,
                    ioc: o.tif == TimeInForce::Ioc,
                })
            }
            Command::Cancel(c) => {
                let user_ref = *self.lobster_refs.get(&(c.account.0, c.client_ref.0))?;
                if c.qty_remaining == 0 {
                    self.lobster_refs.remove(&(c.account.0, c.client_ref.0));
                }
                Some(Order::Cancel { user_ref, qty: c.qty_remaining })
            }
            // lobster_commands produces only adds, reductions and IOC executions.
            _ => None,
        }
    }
}
