//! systemd service notifications (sd_notify(3)) and the watchdog policy.
//!
//! [`Notifier`] speaks the notify protocol through the `sd-notify` crate: one datagram per call
//! to the socket named by `NOTIFY_SOCKET`. Without `NOTIFY_SOCKET` (a shell, a test, a
//! container without systemd) every call is a no-op, so the daemon needs no "am I under
//! systemd" branches.
//!
//! [`Watchdog`] decides whether a `WATCHDOG=1` may be sent: only when every pinned thread made
//! progress since the previous ping or sits idle with nothing queued. A stuck matcher,
//! gateway or journal thread therefore stops the pings and systemd restarts the engine; a
//! timer that pinged unconditionally would hide exactly the failure the watchdog exists for.

use std::time::Duration;

use sd_notify::NotifyState;

/// Longest `STATUS=` text sent, in bytes. The notify socket takes one datagram and systemd
/// shows the text in a single `systemctl status` line; longer text is cut at a char boundary.
pub const STATUS_MAX_BYTES: usize = 512;

/// Why a notification or the watchdog environment was refused.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot send {what} to the systemd notify socket (NOTIFY_SOCKET): {source}")]
    Send {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the monotonic clock for RELOADING=1: {0}")]
    Clock(#[source] std::io::Error),
    #[error(
        "WATCHDOG_USEC={value:?} is not a positive whole number of microseconds; \
         check WatchdogSec= in the unit file"
    )]
    WatchdogUsec { value: String },
    #[error("WATCHDOG_PID={value:?} is not a process id")]
    WatchdogPid { value: String },
}

/// Sends service state changes to systemd. Cheap to copy; holds no socket (the crate connects
/// per message, which is what a handful of notifications per second needs).
#[derive(Clone, Copy, Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog_interval: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` once, at start-up.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let watchdog_timeout = watchdog_timeout_from(usec.as_deref(), pid.as_deref(), std::process::id())?;
        Ok(Notifier { enabled, watchdog_interval: watchdog_timeout.map(|t| t / 2) })
    }

    /// A notifier that sends nothing, for tools and tests that run the engine's code outside
    /// systemd regardless of the environment.
    pub fn disabled() -> Notifier {
        Notifier { enabled: false, watchdog_interval: None }
    }

    /// Whether a notify socket was given.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// How often to consider a `WATCHDOG=1`: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
    /// recommends, so one late tick does not trip the watchdog. `None`: no watchdog configured
    /// for this process.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// `READY=1` with a final `STATUS=`: recovery is done, state rebuilt, listeners bound.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        let status = bounded_status(status);
        self.send("READY=1", &[NotifyState::Ready, NotifyState::Status(&status)])
    }

    /// `STATUS=` text shown by `systemctl status`: progress while starting, figures while
    /// running, the reason a reload was refused.
    pub fn status(&self, text: &str) -> Result<(), NotifyError> {
        let text = bounded_status(text);
        self.send("STATUS=", &[NotifyState::Status(&text)])
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=`: systemd 253+ (Type=notify-reload) refuses a
    /// reload notification without the timestamp. Follow with [`Notifier::ready`] when the
    /// reload is finished, whether it was applied or refused.
    pub fn reloading(&self, status: &str) -> Result<(), NotifyError> {
        if !self.enabled {
            return Ok(());
        }
        let now = NotifyState::monotonic_usec_now().map_err(NotifyError::Clock)?;
        let status = bounded_status(status);
        self.send("RELOADING=1", &[NotifyState::Reloading, now, NotifyState::Status(&status)])
    }

    /// `STOPPING=1`: shutdown has begun; systemd stops waiting for watchdog pings.
    pub fn stopping(&self, status: &str) -> Result<(), NotifyError> {
        let status = bounded_status(status);
        self.send("STOPPING=1", &[NotifyState::Stopping, NotifyState::Status(&status)])
    }

    /// `WATCHDOG=1`. Call only when [`Watchdog::tick`] says so.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1", &[NotifyState::Watchdog])
    }

    fn send(&self, what: &'static str, states: &[NotifyState<'_>]) -> Result<(), NotifyError> {
        if !self.enabled {
            return Ok(());
        }
        sd_notify::notify(states).map_err(|source| NotifyError::Send { what, source })
    }
}

/// The notify protocol is newline-separated `KEY=VALUE` lines: a newline inside the status
/// would start a new (bogus) assignment, so it becomes a space.
fn bounded_status(text: &str) -> String {
    let mut end = text.len().min(STATUS_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].replace(['\n', '\r'], " ")
}

/// The watchdog timeout that applies to process `own_pid`, from the values of `WATCHDOG_USEC`
/// and `WATCHDOG_PID` (sd_watchdog_enabled(3)): `None` when unset or meant for another
/// process (a child that inherited the environment).
pub fn watchdog_timeout_from(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Result<Option<Duration>, NotifyError> {
    let Some(usec) = usec else { return Ok(None) };
    let usec_value = match usec.trim().parse::<u64>() {
        Ok(v) if v > 0 => v,
        _ => return Err(NotifyError::WatchdogUsec { value: usec.to_owned() }),
    };
    if let Some(pid) = pid {
        let pid_value =
            pid.trim().parse::<u32>().map_err(|_| NotifyError::WatchdogPid { value: pid.to_owned() })?;
        if pid_value != own_pid {
            return Ok(None);
        }
    }
    Ok(Some(Duration::from_micros(usec_value)))
}

/// What one pinned thread reports to the watchdog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadProgress {
    /// Monotonic count the thread bumps once per loop iteration that did work or observed its
    /// inputs empty. Starts at zero when the thread starts.
    pub heartbeats: u64,
    /// The thread is idle and its input queue is empty right now. The producer of this flag
    /// (the runtime) must derive it from the queue itself, not from a flag the stuck thread
    /// last wrote, or a thread stuck with work queued would look idle.
    pub idle_empty: bool,
}

/// The ping policy: ping only if every thread advanced since the last ping or is idle with
/// nothing queued.
#[derive(Debug)]
pub struct Watchdog {
    /// Heartbeats at the last ping. Zero at start: a thread that never ran does not count as
    /// alive, so there is no free first ping.
    at_last_ping: Vec<u64>,
    /// Threads that blocked the last refused tick, for the log line that says which.
    stalled: Vec<usize>,
}

impl Watchdog {
    /// A policy for `threads` pinned threads, in the order the runtime reports them.
    pub fn new(threads: usize) -> Watchdog {
        assert!(threads > 0, "a watchdog over no threads would always ping");
        Watchdog { at_last_ping: vec![0; threads], stalled: Vec::with_capacity(threads) }
    }

    /// Whether to send `WATCHDOG=1` now. The baseline moves only when the answer is yes: a
    /// thread must show progress relative to the last ping, not to the last tick.
    pub fn tick(&mut self, progress: &[ThreadProgress]) -> bool {
        assert_eq!(progress.len(), self.at_last_ping.len(), "the runtime reports a fixed set of threads");
        self.stalled.clear();
        for (index, (now, before)) in progress.iter().zip(&self.at_last_ping).enumerate() {
            debug_assert!(now.heartbeats >= *before, "heartbeats are monotonic");
            if now.heartbeats == *before && !now.idle_empty {
                self.stalled.push(index);
            }
        }
        if !self.stalled.is_empty() {
            return false;
        }
        for (baseline, now) in self.at_last_ping.iter_mut().zip(progress) {
            *baseline = now.heartbeats;
        }
        true
    }

    /// Indices of the threads that blocked the last tick (empty after a ping).
    pub fn stalled(&self) -> &[usize] {
        &self.stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(heartbeats: u64, idle_empty: bool) -> ThreadProgress {
        ThreadProgress { heartbeats, idle_empty }
    }

    #[test]
    fn pings_only_when_every_thread_advanced() {
        let mut w = Watchdog::new(3);
        assert!(w.tick(&[p(1, false), p(5, false), p(2, false)]));
        assert!(!w.tick(&[p(2, false), p(5, false), p(3, false)]));
        assert_eq!(w.stalled(), &[1]);
        assert!(w.tick(&[p(2, false), p(6, false), p(3, false)]));
        assert!(w.stalled().is_empty());
    }

    #[test]
    fn no_free_first_ping_for_threads_that_never_ran() {
        let mut w = Watchdog::new(2);
        assert!(!w.tick(&[p(0, false), p(1, false)]));
        assert_eq!(w.stalled(), &[0]);
    }

    #[test]
    fn idle_with_nothing_queued_counts_as_alive() {
        let mut w = Watchdog::new(2);
        assert!(w.tick(&[p(0, true), p(4, false)]));
        assert!(w.tick(&[p(0, true), p(5, false)]));
        // The same thread, still not advancing but now with work queued: stuck.
        assert!(!w.tick(&[p(0, false), p(6, false)]));
        assert_eq!(w.stalled(), &[0]);
    }

    #[test]
    fn progress_is_measured_against_the_last_ping_not_the_last_tick() {
        let mut w = Watchdog::new(2);
        assert!(w.tick(&[p(1, false), p(1, false)]));
        // Thread 0 advanced, thread 1 did not: no ping, and thread 0's progress is kept.
        assert!(!w.tick(&[p(2, false), p(1, false)]));
        // Thread 1 catches up while thread 0 has not moved since the refused tick: thread 0
        // still advanced since the last ping, so this pings.
        assert!(w.tick(&[p(2, false), p(2, false)]));
        // Nobody moved since that ping.
        assert!(!w.tick(&[p(2, false), p(2, false)]));
        assert_eq!(w.stalled(), &[0, 1]);
    }

    #[test]
    #[should_panic(expected = "fixed set of threads")]
    fn a_different_thread_count_is_a_programmer_error() {
        Watchdog::new(2).tick(&[p(1, false)]);
    }

    #[test]
    fn watchdog_timeout_follows_sd_watchdog_enabled() {
        let t = |u, p| watchdog_timeout_from(u, p, 42);
        assert_eq!(t(None, None).unwrap(), None);
        assert_eq!(t(Some("3000000"), None).unwrap(), Some(Duration::from_secs(3)));
        assert_eq!(t(Some("3000000"), Some("42")).unwrap(), Some(Duration::from_secs(3)));
        assert_eq!(t(Some("3000000"), Some("41")).unwrap(), None, "meant for another process");
        let e = t(Some("3s"), None).unwrap_err().to_string();
        assert!(e.contains("WATCHDOG_USEC=\"3s\"") && e.contains("WatchdogSec="), "{e}");
        assert!(matches!(t(Some("0"), None), Err(NotifyError::WatchdogUsec { .. })));
        assert!(matches!(t(Some("10"), Some("x")), Err(NotifyError::WatchdogPid { .. })));
    }

    #[test]
    fn status_is_one_bounded_line() {
        assert_eq!(bounded_status("a\nb\rc"), "a b c");
        let long = "é".repeat(STATUS_MAX_BYTES);
        let cut = bounded_status(&long);
        assert!(cut.len() <= STATUS_MAX_BYTES && cut.chars().all(|c| c == 'é'));
    }
}
