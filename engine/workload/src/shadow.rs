//! The generators' shadow engine: what a trading client knows of its open orders.

use petrel_core::*;

/// Shadow state of the generator: the open orders, learned from the engine's events.
pub(crate) struct Shadow {
    pub(crate) engine: Engine,
    sequence: u64,
    pub(crate) open: Vec<(AccountId, ClientRef, Side, Price, Qty)>,
    position_of: std::collections::HashMap<(u32, u32), usize>,
    next_ref: Vec<u32>,
    events: Vec<Event>,
}

impl Shadow {
    pub(crate) fn new(config: &EngineConfig) -> Shadow {
        Shadow {
            engine: Engine::new(config).unwrap(),
            sequence: 0,
            open: Vec::new(),
            position_of: Default::default(),
            next_ref: vec![0; config.accounts.len()],
            events: Vec::new(),
        }
    }

    pub(crate) fn new_ref(&mut self, account: u32) -> ClientRef {
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
    pub(crate) fn apply(&mut self, command: Command) -> bool {
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
