//! The book as the feed describes it, rebuilt from the feed journal's ITCH messages for the
//! snapshot service: every resting order with its priority (the sequence number of the message
//! that put it at the back of its level), and each instrument's directory messages. It reads
//! the feed, not the core, so it is exactly what a listener that saw every message holds.

use petrel_proto::itch::{AddOrder, Header, Message};
use petrel_proto::Alpha;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug)]
struct Resting {
    locate: u16,
    side: u8,
    price: u32,
    shares: u32,
    stock: Alpha<8>,
    timestamp_ns: u64,
    /// Feed sequence number of the Add Order or Order Replace that placed it.
    priority: u64,
    attribution: Option<Alpha<4>>,
}

#[derive(Debug, Default)]
pub(super) struct Replica {
    orders: HashMap<u64, Resting>,
    /// Stock Directory and Stock Trading Action messages, by Stock Locate, as sent.
    directory: std::collections::BTreeMap<(u16, u8), Vec<u8>>,
    /// Every message up to this sequence number is applied.
    pub(super) through: u64,
}

impl Replica {
    /// Applies feed message `sequence`; a message that does not decode or names an unknown
    /// order is a feed bug, reported and skipped.
    pub(super) fn apply(&mut self, sequence: u64, bytes: &[u8]) {
        self.through = sequence;
        let message = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                return tracing::error!("snapshot replica: feed message {sequence} does not decode: {e}")
            }
        };
        match message {
            Message::StockDirectory(_) | Message::StockTradingAction { .. } => {
                let (msg_type, _) = message.type_and_len();
                self.directory.insert((message.header().stock_locate, msg_type), bytes.to_vec());
            }
            Message::AddOrder(a) => {
                let resting = Resting {
                    locate: a.header.stock_locate,
                    side: a.side,
                    price: a.price,
                    shares: a.shares,
                    stock: a.stock,
                    timestamp_ns: a.header.timestamp_ns,
                    priority: sequence,
                    attribution: a.attribution,
                };
                self.orders.insert(a.order_ref, resting);
            }
            Message::OrderExecuted { order_ref, executed_shares: n, .. }
            | Message::OrderExecutedWithPrice { order_ref, executed_shares: n, .. }
            | Message::OrderCancel { order_ref, cancelled_shares: n, .. } => {
                self.reduce(sequence, order_ref, n)
            }
            Message::OrderDelete { order_ref, .. } => {
                if self.orders.remove(&order_ref).is_none() {
                    tracing::error!(
                        "snapshot replica: feed message {sequence} deletes unknown order {order_ref}"
                    );
                }
            }
            Message::OrderReplace { header, original_order_ref, new_order_ref, shares, price } => {
                let Some(old) = self.orders.remove(&original_order_ref) else {
                    return tracing::error!(
                        "snapshot replica: feed message {sequence} replaces unknown order {original_order_ref}"
                    );
                };
                let resting =
                    Resting { price, shares, timestamp_ns: header.timestamp_ns, priority: sequence, ..old };
                self.orders.insert(new_order_ref, resting);
            }
            Message::SystemEvent { .. } | Message::Trade(_) => {}
        }
    }

    fn reduce(&mut self, sequence: u64, order_ref: u64, shares: u32) {
        let Some(order) = self.orders.get_mut(&order_ref) else {
            return tracing::error!(
                "snapshot replica: feed message {sequence} reduces unknown order {order_ref}"
            );
        };
        order.shares = order.shares.saturating_sub(shares);
        if order.shares == 0 {
            self.orders.remove(&order_ref);
        }
    }

    /// The snapshot: each instrument's directory messages, then an Add Order for every resting
    /// order, by instrument, bids best first then asks best first, each level in priority order.
    pub(super) fn snapshot(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self.directory.values().cloned().collect();
        let mut orders: Vec<(&u64, &Resting)> = self.orders.iter().collect();
        orders.sort_by_key(|(_, o)| {
            let price_rank = if o.side == b'B' { u64::from(u32::MAX - o.price) } else { u64::from(o.price) };
            (o.locate, o.side != b'B', price_rank, o.priority)
        });
        for (order_ref, o) in orders {
            let add = Message::AddOrder(AddOrder {
                header: Header { stock_locate: o.locate, tracking_number: 0, timestamp_ns: o.timestamp_ns },
                order_ref: *order_ref,
                side: o.side,
                shares: o.shares,
                stock: o.stock,
                price: o.price,
                attribution: o.attribution,
            });
            let mut bytes = vec![0u8; petrel_proto::itch::MESSAGE_BYTES_MAX];
            let n = add.encode(&mut bytes).expect("an Add Order fits");
            bytes.truncate(n);
            out.push(bytes);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(m: Message) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        let n = m.encode(&mut b).unwrap();
        b.truncate(n);
        b
    }

    fn add(order_ref: u64, side: u8, price: u32, shares: u32) -> Vec<u8> {
        let header = Header { stock_locate: 1, tracking_number: 0, timestamp_ns: 5 };
        let stock = Alpha::new("s", "AAPL").unwrap();
        encode(Message::AddOrder(AddOrder {
            header,
            order_ref,
            side,
            shares,
            stock,
            price,
            attribution: None,
        }))
    }

    fn refs(snapshot: &[Vec<u8>]) -> Vec<(u64, u32)> {
        snapshot
            .iter()
            .filter_map(|b| match Message::decode(b).unwrap() {
                Message::AddOrder(a) => Some((a.order_ref, a.shares)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_snapshot_lists_bids_then_asks_best_first_in_priority_order() {
        let mut r = Replica::default();
        let header = Header { stock_locate: 1, tracking_number: 0, timestamp_ns: 6 };
        r.apply(1, &add(1, b'B', 100, 10));
        r.apply(2, &add(2, b'B', 101, 20));
        r.apply(3, &add(3, b'S', 105, 30));
        r.apply(4, &add(4, b'B', 100, 40));
        r.apply(5, &add(5, b'S', 104, 50));
        // Order 1 loses its priority by a replace (to 6), order 4 is reduced (keeps it).
        r.apply(
            6,
            &encode(Message::OrderReplace {
                header,
                original_order_ref: 1,
                new_order_ref: 6,
                shares: 11,
                price: 100,
            }),
        );
        r.apply(7, &encode(Message::OrderCancel { header, order_ref: 4, cancelled_shares: 15 }));
        r.apply(
            8,
            &encode(Message::OrderExecuted { header, order_ref: 5, executed_shares: 50, match_number: 1 }),
        );
        assert_eq!(refs(&r.snapshot()), vec![(2, 20), (4, 25), (6, 11), (3, 30)]);
        assert_eq!(r.through, 8);
    }
}
