//! The checks every scenario makes: a value, a text, a message, or a state reached in time. Each
//! fails with what it saw.

use crate::systest::ouch::Message;
use crate::util::Result;
use std::thread::sleep;
use std::time::Duration;

/// Bound for waiting on a unit state change driven by systemd timers: the watchdog path is
/// WatchdogSec (10 s) + TimeoutAbortSec (15 s) + RestartSec (2 s) + recovery; 120 s only stops a
/// hung run from hanging forever.
const POLLS: u32 = 480;
const POLL_INTERVAL: Duration = Duration::from_millis(250);

pub(super) fn expect_eq(what: &str, got: &str, want: &str) -> Result {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

pub(super) fn expect_contains(what: &str, text: &str, needle: &str) -> Result {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("{what}: {needle:?} not found in:\n{}", text.trim_end()))
    }
}

pub(super) fn wait_for(what: &str, mut check: impl FnMut() -> Result<bool>) -> Result {
    for _ in 0..POLLS {
        if check()? {
            return Ok(());
        }
        sleep(POLL_INTERVAL);
    }
    Err(format!("timed out waiting for {what}"))
}

pub(super) fn expect_message(what: &str, got: Message, want: Message) -> Result {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}
