//! What a pipeline thread does when a poll finds no work, or when the ring it must push into is
//! full. The strategy comes from the configuration (`runtime.<thread>.idle`).

use std::time::Duration;

pub use crate::config::IdleStrategy;
use crate::port::Doorbell;

/// The per-thread state of an idle strategy: how long it has been idle.
#[derive(Clone, Copy, Debug)]
pub struct Idler {
    strategy: IdleStrategy,
    /// Spins since the last yield (`SpinYield`).
    spins: u32,
    /// Next sleep (`Park`): doubles while idle, back to `min_us` on work.
    park_us: u32,
}

impl Idler {
    pub fn new(strategy: IdleStrategy) -> Idler {
        let park_us = match strategy {
            IdleStrategy::Park { min_us, .. } => min_us.max(1),
            _ => 0,
        };
        Idler { strategy, spins: 0, park_us }
    }

    pub fn strategy(&self) -> IdleStrategy {
        self.strategy
    }

    /// Called once per loop of a thread. With work done it only resets the back-off: a busy
    /// thread never sleeps. Without, it spins, yields or sleeps per the strategy.
    #[inline]
    pub fn idle(&mut self, did_work: bool) {
        if did_work {
            self.spins = 0;
            if let IdleStrategy::Park { min_us, .. } = self.strategy {
                self.park_us = min_us.max(1);
            }
            return;
        }
        match self.strategy {
            IdleStrategy::BusySpin => std::hint::spin_loop(),
            IdleStrategy::SpinYield { spins } => {
                if self.spins < spins {
                    self.spins += 1;
                    std::hint::spin_loop();
                } else {
                    self.spins = 0;
                    std::thread::yield_now();
                }
            }
            IdleStrategy::Park { max_us, .. } => {
                std::thread::sleep(Duration::from_micros(u64::from(self.park_us)));
                self.park_us = self.park_us.saturating_mul(2).min(max_us.max(1));
            }
        }
    }

    /// As [`Idler::idle`], for a thread whose producers ring `bell` after publishing work:
    /// `park` then sleeps until rung (or its current back-off passes, a safety net), after
    /// checking `has_work` once more with the sleep announced, so no ring is missed.
    #[inline]
    pub fn idle_or_sleep(&mut self, did_work: bool, bell: &Doorbell, has_work: impl FnOnce() -> bool) {
        let IdleStrategy::Park { max_us, .. } = self.strategy else {
            return self.idle(did_work);
        };
        if did_work {
            return self.idle(true);
        }
        bell.prepare_sleep();
        if has_work() {
            bell.cancel_sleep();
            return;
        }
        bell.sleep(Duration::from_micros(u64::from(self.park_us)));
        self.park_us = self.park_us.saturating_mul(2).min(max_us.max(1));
    }

    /// The sleep the next idle call of a `Park` strategy takes, µs (0 for the others).
    pub fn next_park_us(&self) -> u32 {
        match self.strategy {
            IdleStrategy::Park { .. } => self.park_us,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn park_doubles_up_to_its_maximum_and_work_resets_it() {
        let mut idler = Idler::new(IdleStrategy::Park { min_us: 1, max_us: 5 });
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(idler.next_park_us());
            idler.idle(false);
        }
        assert_eq!(seen, [1, 2, 4, 5, 5]);
        idler.idle(true);
        assert_eq!(idler.next_park_us(), 1);
    }

    #[test]
    fn spin_yield_counts_spins_and_work_resets_them() {
        let mut idler = Idler::new(IdleStrategy::SpinYield { spins: 3 });
        for expected in [1, 2, 3, 0, 1] {
            idler.idle(false);
            assert_eq!(idler.spins, expected);
        }
        idler.idle(true);
        assert_eq!(idler.spins, 0);
    }
}
