//! Open-addressing map from (account, client reference) to the order's arena slot.
//!
//! Hand-written because it sits on every order that rests, leaves, is cancelled or replaced, and
//! must never allocate after start-up: capacity is fixed at twice the order capacity (load
//! factor at most 1/2), probing is linear in Robin Hood order (along a probe run, keys sit in
//! order of their home), and deletion shifts keys back instead of leaving tombstones, so a long
//! run of inserts and deletes never degrades lookups. The hash is a fixed multiplicative one:
//! no random state, so the core stays deterministic.
//!
//! With millions of resting orders the table is far larger than the caches, and a hash that
//! scattered every key would cost a miss to memory on every order that rests (on `deep-queues`,
//! half the core's time). Clients number their orders upwards, so in a large table the hash keeps
//! runs of 64 consecutive client references of one account together: it scatters (account,
//! reference / 64) and places the reference's low bits in order from that home. An account
//! entering orders then walks its run a line at a time, which the caches' prefetchers follow;
//! different accounts and runs still land far apart. Robin Hood order keeps a deletion inside a
//! run of consecutive live references short: it stops at the first key already at its home.

use alloc::vec;
use alloc::vec::Vec;

/// log2 of the length of a run: consecutive client references of one account whose homes are
/// adjacent in a table too large for the caches (64 keys, eight cache lines). Longer runs
/// measured slower on `deep-queues`.
const RUN_BITS: u32 = 6;
const IN_RUN: u64 = (1 << RUN_BITS) - 1;

/// Positions above which the table is taken to outgrow the caches (8 MiB of keys). Below it,
/// runs buy nothing and cost clustering (live references are not spread evenly over runs, so
/// runs sharing a home overflow into their neighbours): there the whole key is hashed, and only
/// its place inside the run of its hash comes from the reference's low bits.
const LARGE_TABLE_POSITIONS: usize = 1 << 20;

const EMPTY: u64 = u64::MAX;

#[derive(Clone, Debug)]
pub(crate) struct OrderIndex {
    /// Keys and their slots, position by position; a probe reads only the keys.
    keys: Vec<u64>,
    slots: Vec<u32>,
    /// Positions in all, a power of two, minus one: positions wrap with it.
    mask: usize,
    /// The bits of the key that are hashed: all but the reference's place in its run in a large
    /// table, all of them in a small one.
    hashed: u64,
    /// `mask` without the place in a run: the hash picks the run.
    run_mask: u64,
    len: usize,
}

#[inline]
pub(crate) fn key(account: u32, client_ref: u32) -> u64 {
    // Accounts are below 2^31, so no key equals EMPTY.
    ((account as u64) << 32) | client_ref as u64
}

impl OrderIndex {
    pub(crate) fn with_capacity(max_entries: u32) -> OrderIndex {
        let positions = (max_entries as usize * 2).next_power_of_two().max(2 << RUN_BITS);
        OrderIndex::with_runs(positions, positions > LARGE_TABLE_POSITIONS)
    }

    fn with_runs(positions: usize, runs: bool) -> OrderIndex {
        debug_assert!(positions.is_power_of_two() && positions >= 2 << RUN_BITS);
        OrderIndex {
            keys: vec![EMPTY; positions],
            // Filled, not zeroed: a zeroed allocation is mapped lazily, so its pages would fault
            // in one by one on the hot path as orders rest.
            slots: vec![u32::MAX; positions],
            mask: positions - 1,
            hashed: if runs { !IN_RUN } else { !0 },
            run_mask: (positions - 1) as u64 & !IN_RUN,
            len: 0,
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: bits of k × 2^64/φ pick the run, and the reference's low bits the
        // place in it.
        let hash = (key & self.hashed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        ((hash & self.run_mask) | (key & IN_RUN)) as usize
    }

    /// How far past its home the key at position `i` sits.
    #[inline]
    fn dist(&self, i: usize, key: u64) -> usize {
        i.wrapping_sub(self.home(key)) & self.mask
    }

    /// The position holding `key`, if present.
    #[inline]
    fn position(&self, key: u64) -> Option<usize> {
        let home = self.home(key);
        match self.keys[home] {
            k if k == key => Some(home),
            EMPTY => None,
            _ => self.position_past_home(home, key),
        }
    }

    /// The probe past a key's home: rare at this load, so kept out of the callers. Robin Hood
    /// order lets a miss stop at the first key nearer its home than `key` would be.
    #[inline(never)]
    fn position_past_home(&self, home: usize, key: u64) -> Option<usize> {
        let mut i = (home + 1) & self.mask;
        let mut dist = 1;
        loop {
            let k = self.keys[i];
            if k == key {
                return Some(i);
            }
            if k == EMPTY || self.dist(i, k) < dist {
                return None;
            }
            i = (i + 1) & self.mask;
            dist += 1;
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        self.position(key).map(|i| self.slots[i])
    }

    /// Inserts a key that is not present. The caller guarantees capacity (at most as many live
    /// orders as the arena holds), so the table never fills.
    #[inline]
    pub(crate) fn insert(&mut self, key: u64, slot: u32) {
        debug_assert!(key != EMPTY);
        debug_assert!(self.position(key).is_none(), "duplicate key in order index");
        assert!(self.len < self.keys.len() / 2, "order index over capacity");
        self.len += 1;
        let home = self.home(key);
        if self.keys[home] == EMPTY {
            self.keys[home] = key;
            self.slots[home] = slot;
        } else {
            self.insert_past_home(home, key, slot);
        }
    }

    #[inline(never)]
    fn insert_past_home(&mut self, home: usize, key: u64, slot: u32) {
        let (mut key, mut slot, mut dist) = (key, slot, 0);
        let mut i = home;
        loop {
            let resident = self.keys[i];
            if resident == EMPTY {
                self.keys[i] = key;
                self.slots[i] = slot;
                return;
            }
            // A key nearer its home gives its place to the one carried, and is carried on.
            let resident_dist = self.dist(i, resident);
            if resident_dist < dist {
                self.keys[i] = key;
                key = resident;
                slot = core::mem::replace(&mut self.slots[i], slot);
                dist = resident_dist;
            }
            i = (i + 1) & self.mask;
            dist += 1;
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, key: u64) -> Option<u32> {
        let hole = self.position(key)?;
        let removed = self.slots[hole];
        self.len -= 1;
        let next = (hole + 1) & self.mask;
        let k = self.keys[next];
        if k == EMPTY || self.dist(next, k) == 0 {
            self.keys[hole] = EMPTY;
        } else {
            self.shift_back(hole);
        }
        Some(removed)
    }

    /// Backward-shift deletion: pulls the rest of the probe run after `hole` one place back, up
    /// to an empty position or a key already at its home.
    #[inline(never)]
    fn shift_back(&mut self, mut hole: usize) {
        loop {
            let next = (hole + 1) & self.mask;
            let k = self.keys[next];
            if k == EMPTY || self.dist(next, k) == 0 {
                break;
            }
            self.keys[hole] = k;
            self.slots[hole] = self.slots[next];
            hole = next;
        }
        self.keys[hole] = EMPTY;
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

    /// Both layouts: a key per home, and runs of 64 (here eight runs share the table, so runs
    /// collide and overflow into each other far more than in a real one).
    fn layouts() -> [OrderIndex; 2] {
        [OrderIndex::with_capacity(256), OrderIndex::with_runs(512, true)]
    }

    proptest! {
        #[test]
        fn agrees_with_hashmap(ops in prop::collection::vec((0u8..3, 0u32..16, 0u32..160, any::<u32>()), 0..2000)) {
            for mut index in layouts() {
                let mut model: HashMap<u64, u32> = HashMap::new();
                for &(op, account, client_ref, slot) in &ops {
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

    #[test]
    fn a_full_table_of_consecutive_references_keeps_every_key() {
        for mut index in layouts() {
            // Sixteen accounts entering orders in turn fill the table to its bound; with runs,
            // their sixteen runs share eight homes, so half of them are displaced.
            for client_ref in 0..16 {
                for account in 0..16 {
                    index.insert(key(account, client_ref), account * 1_000 + client_ref);
                }
            }
            for account in (0..16).step_by(3) {
                for client_ref in (account % 4..16).step_by(2) {
                    assert_eq!(index.remove(key(account, client_ref)), Some(account * 1_000 + client_ref));
                }
            }
            for account in 0..16 {
                for client_ref in 0..16 {
                    let removed =
                        account % 3 == 0 && client_ref >= account % 4 && (client_ref - account % 4) % 2 == 0;
                    let expected = (!removed).then_some(account * 1_000 + client_ref);
                    assert_eq!(
                        index.get(key(account, client_ref)),
                        expected,
                        "account {account} ref {client_ref}"
                    );
                }
            }
            assert_eq!(index.get(key(16, 0)), None);
        }
    }
}
