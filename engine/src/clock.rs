//! Where timestamps come from. The sequencer (`runtime::stamp::Stamper`) is the only reader
//! of a clock in the engine: everything after it sees the timestamp a command was given.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since midnight (UTC) of a Unix timestamp: the time OUCH answers and ITCH
/// messages carry, taken from the command's sequenced timestamp.
pub fn midnight_ns(timestamp_ns: u64) -> u64 {
    timestamp_ns % 86_400_000_000_000
}

/// Wall-clock nanoseconds since the Unix epoch, for timestamps of what no command produced.
pub fn wall_ns() -> u64 {
    SystemClock.now_ns()
}

pub trait Clock {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&mut self) -> u64;
}

/// `CLOCK_REALTIME`, through `SystemTime` (a vDSO call: no system call).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&mut self) -> u64 {
        // A clock before 1970 is a broken host; 0 keeps the sequencer going (timestamps then
        // hold at the last value, see `Stamper`).
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }
}

/// A clock for tests: returns the values of a closure.
pub struct FnClock<F: FnMut() -> u64>(pub F);

impl<F: FnMut() -> u64> Clock for FnClock<F> {
    fn now_ns(&mut self) -> u64 {
        (self.0)()
    }
}

impl<F: FnMut() -> u64> std::fmt::Debug for FnClock<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnClock")
    }
}
