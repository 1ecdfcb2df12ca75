//! The order arena: one fixed table of slots holding every resting order of every book.
//!
//! Sized once from `max_orders` and never grown, so resting an order never calls the allocator.
//! Free slots form a list taken from the front and given back at the front; it starts in slot
//! order, so the slot an order lands in is a pure function of the commands applied since a
//! fresh start. Slots never leave the core: events and snapshots name orders by order id.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::{Index, IndexMut};

use crate::types::{Price, Qty, Side};

/// "No slot": the end of a list, or an empty level or side.
pub(crate) const NIL: u32 = u32::MAX;

/// A resting order. Kept small (48 bytes) because the matcher walks these.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    pub(crate) order_id: u64,
    pub(crate) price: Price,
    pub(crate) qty: Qty,
    pub(crate) client_ref: u32,
    pub(crate) account: u32,
    /// Neighbours in the price level's FIFO queue (arena slots, NIL at the ends). For a free
    /// slot, `next` links the free list.
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// Neighbours in the account's list of open orders, kept in order-id order.
    pub(crate) account_prev: u32,
    pub(crate) account_next: u32,
    pub(crate) instrument: u16,
    pub(crate) side: Side,
}

impl Order {
    pub(crate) const FREE: Order = Order {
        order_id: 0,
        price: 0,
        qty: 0,
        client_ref: 0,
        account: 0,
        prev: NIL,
        next: NIL,
        account_prev: NIL,
        account_next: NIL,
        instrument: 0,
        side: Side::Buy,
    };
}

#[derive(Clone, Debug)]
pub(crate) struct OrderArena {
    slots: Vec<Order>,
    free_head: u32,
    free_count: u32,
}

impl OrderArena {
    pub(crate) fn new(capacity: u32) -> OrderArena {
        let mut slots = vec![Order::FREE; capacity as usize];
        // Free list in slot order, so allocation is deterministic from any fresh start.
        for (slot, order) in slots.iter_mut().enumerate() {
            order.next = if slot + 1 < capacity as usize { slot as u32 + 1 } else { NIL };
        }
        OrderArena { slots, free_head: 0, free_count: capacity }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn free_count(&self) -> u32 {
        self.free_count
    }

    /// Stores `order` in the first free slot, unlinked from any list, and returns the slot. The
    /// caller has checked capacity.
    pub(crate) fn take(&mut self, order: Order) -> u32 {
        let slot = self.free_head;
        assert!(slot != NIL, "order arena exhausted: capacity checks must precede inserts");
        self.free_head = self.slots[slot as usize].next;
        self.free_count -= 1;
        self.slots[slot as usize] =
            Order { prev: NIL, next: NIL, account_prev: NIL, account_next: NIL, ..order };
        slot
    }

    /// Returns a slot whose order has left every list to the front of the free list.
    pub(crate) fn give_back(&mut self, slot: u32) {
        self.slots[slot as usize] = Order { next: self.free_head, ..Order::FREE };
        self.free_head = slot;
        self.free_count += 1;
    }
}

impl Index<u32> for OrderArena {
    type Output = Order;

    #[inline]
    fn index(&self, slot: u32) -> &Order {
        &self.slots[slot as usize]
    }
}

impl IndexMut<u32> for OrderArena {
    #[inline]
    fn index_mut(&mut self, slot: u32) -> &mut Order {
        &mut self.slots[slot as usize]
    }
}
