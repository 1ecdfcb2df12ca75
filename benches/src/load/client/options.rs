//! What a load run is asked to do, its checks, and the bounds derived from it.

use crate::load::{LoadError, Mix};
use std::net::SocketAddr;
use std::time::Duration;

/// A SoupBinTCP user name and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub target: SocketAddr,
    /// One session per login.
    pub logins: Vec<Login>,
    /// Orders per second offered over all sessions.
    pub rate_per_s: u64,
    pub duration: Duration,
    /// Orders intended to be sent before this much time into the run are not recorded (they
    /// still count as sent and acknowledged).
    pub warmup: Duration,
    pub mix: Mix,
    pub seed: u64,
    /// How long the run waits for the last answers, and (times the rate) how many orders may
    /// await an answer before the run is declared overloaded.
    pub response_timeout: Duration,
    /// The sender sleeps until this long before an order's intended time, then spins. Zero
    /// never spins, which on a 2-core host leaves the other core to the target.
    pub spin: Duration,
    /// The first UserRefNum of every session: the engine refuses references at or below the
    /// last one an account used, which its journal remembers across restarts.
    pub first_user_ref: u32,
    /// Listen here for the engine's market-data feed (MoldUDP64 by unicast) and join each Add
    /// Order to its order's Accepted; `None`: no feed measurement.
    pub feed_listen: Option<SocketAddr>,
}

/// The fewest orders a session may have awaiting an answer, whatever the rate and timeout.
const IN_FLIGHT_MIN_PER_SESSION: usize = 64;

impl LoadOptions {
    /// Refuses options no run can be made of, before any session is opened.
    pub(super) fn validate(&self) -> Result<(), LoadError> {
        if self.logins.is_empty() {
            return Err(LoadError::Usage("at least one session (login) is needed".into()));
        }
        if self.rate_per_s == 0 {
            return Err(LoadError::Usage("the offered rate must be at least 1 order/s".into()));
        }
        Ok(())
    }

    /// Orders one session may have awaiting an answer: its share of the rate over the
    /// response timeout. More means the target has fallen further behind than the timeout.
    pub(super) fn in_flight_max_per_session(&self) -> usize {
        let per_session_rate = self.rate_per_s.div_ceil(self.logins.len() as u64);
        ((per_session_rate as u128 * self.response_timeout.as_nanos() / 1_000_000_000) as usize)
            .max(IN_FLIGHT_MIN_PER_SESSION)
    }

    /// Orders the run sends over all sessions: the rate over the duration.
    pub(super) fn orders_total(&self) -> u64 {
        (self.rate_per_s as u128 * self.duration.as_nanos() / 1_000_000_000) as u64
    }
}

/// One offered rate as `--rate` takes it: orders per second, a positive whole number, digits
/// optionally grouped with `_` (`50_000`). A list (`20000,50000`) is split on commas first.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let digits: String = text.trim().chars().filter(|&c| c != '_').collect();
    let rate: u64 = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().map_err(|_| format!("{text:?} is too large a rate"))?
    } else {
        return Err(format!("{text:?} is not a rate: expected orders per second, like 20000"));
    };
    if rate == 0 {
        return Err("the offered rate must be at least 1 order/s".into());
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn a_rate_is_a_positive_whole_number_of_orders_per_second() {
        assert_eq!(parse_rate("20000"), Ok(20_000));
        assert_eq!(parse_rate("50_000"), Ok(50_000));
        assert_eq!(parse_rate(" 7 "), Ok(7));
        for bad in ["", "0", "-5", "20k", "1.5", "_", "99999999999999999999999"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_rate("20k").unwrap_err().contains("like 20000"));
    }
}
