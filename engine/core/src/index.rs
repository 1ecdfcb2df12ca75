//! Open-addressing map from (account, client reference) to the order's arena slot.
//!
//! Hand-written because it sits on every cancel and replace and must never allocate after
//! start-up: capacity is fixed at twice the order capacity (load factor at most 1/2), probing is
//! linear, and deletion shifts entries back instead of leaving tombstones, so a long run of
//! inserts and deletes never degrades lookups. The hash is a fixed multiplicative one: no random
//! state, so the core stays deterministic.

use alloc::vec;
use alloc::vec::Vec;

const EMPTY: u64 = u64::MAX;

#[derive(Clone, Debug)]
pub(crate) struct OrderIndex {
    keys: Vec<u64>,
    slots: Vec<u32>,
    mask: usize,
    len: usize,
}

#[inline]
pub(crate) fn key(account: u32, client_ref: u32) -> u64 {
    // Accounts are below 2^31, so no key equals EMPTY.
    ((account as u64) << 32) | client_ref as u64
}

impl OrderIndex {
    pub(crate) fn with_capacity(max_entries: u32) -> OrderIndex {
        let buckets = (max_entries as usize * 2).next_power_of_two().max(16);
        OrderIndex { keys: vec![EMPTY; buckets], slots: vec![0; buckets], mask: buckets - 1, len: 0 }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: the high bits of key × 2^64/φ spread sequential keys evenly.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            let k = self.keys[i];
            if k == key {
                return Some(self.slots[i]);
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Inserts a key that is not present. The caller guarantees capacity (at most as many live
    /// orders as the arena holds), so the table never fills.
    #[inline]
    pub(crate) fn insert(&mut self, key: u64, slot: u32) {
        debug_assert!(key != EMPTY);
        assert!(self.len < self.keys.len() / 2, "order index over capacity");
        let mut i = self.home(key);
        while self.keys[i] != EMPTY {
            debug_assert!(self.keys[i] != key, "duplicate key in order index");
            i = (i + 1) & self.mask;
        }
        self.keys[i] = key;
        self.slots[i] = slot;
        self.len += 1;
    }

    #[inline]
    pub(crate) fn remove(&mut self, key: u64) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            let k = self.keys[i];
            if k == EMPTY {
                return None;
            }
            if k == key {
                break;
            }
            i = (i + 1) & self.mask;
        }
        let removed = self.slots[i];
        self.len -= 1;
        // Backward-shift deletion: pull later entries of the probe run into the hole when their
        // home position does not lie (cyclically) between the hole and themselves.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let k = self.keys[j];
            if k == EMPTY {
                break;
            }
            let home = self.home(k);
            let between = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !between {
                self.keys[hole] = k;
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.keys[hole] = EMPTY;
        Some(removed)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn agrees_with_hashmap(ops in prop::collection::vec((0u8..3, 0u32..4, 0u32..64, any::<u32>()), 0..2000)) {
            let mut index = OrderIndex::with_capacity(256);
            let mut model: HashMap<u64, u32> = HashMap::new();
            for (op, account, client_ref, slot) in ops {
                let k = key(account, client_ref);
                match op {
                    0 if !model.contains_key(&k) && model.len() < 256 => { index.insert(k, slot); model.insert(k, slot); }
                    1 => { prop_assert_eq!(index.remove(k), model.remove(&k)); }
                    _ => { prop_assert_eq!(index.get(k), model.get(&k).copied()); }
                }
                prop_assert_eq!(index.len(), model.len());
            }
            for (k, v) in &model {
                prop_assert_eq!(index.get(*k), Some(*v));
            }
        }
    }
}
