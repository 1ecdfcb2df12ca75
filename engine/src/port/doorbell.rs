//! Wake-ups between pipeline threads that sleep when idle.
//!
//! A thread with a `park` idle strategy sleeps when it finds no work. Without a doorbell it
//! notices new work only when its sleep ends, so every hop of an order (gateway → sequencer →
//! journal → gateway) could add up to `max_us`. With one, the producer rings after publishing and
//! the sleeper wakes at once; the sleep's timeout remains only as a safety net.
//!
//! The protocol is Dekker's: the sleeper announces itself (`sleeping = true`), then looks for work
//! once more, then sleeps; the producer publishes its work, then looks at `sleeping`. A SeqCst
//! fence on each side between the store and the load means at least one of them sees the other,
//! so a wake-up is never lost between the last check and the sleep. Ringing costs the producer one
//! fence and one load while the consumer is awake (no syscall); a sleeping consumer costs one
//! `futex` wake (thread) or one `write` (eventfd). Busy-spinning consumers never announce sleep,
//! so their producers never make a syscall.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

use nix::sys::eventfd::{EfdFlags, EventFd};

#[derive(Debug)]
enum Target {
    /// A pipeline thread: woken by `unpark`; it registers itself before its first sleep.
    Thread(OnceLock<Thread>),
    /// The gateway: it sleeps in its network poll, which also watches this eventfd.
    EventFd(EventFd),
}

#[derive(Debug)]
pub struct Doorbell {
    sleeping: AtomicBool,
    target: Target,
}

impl Doorbell {
    /// A doorbell for a thread that sleeps with [`Doorbell::sleep`].
    pub fn for_thread() -> Doorbell {
        Doorbell { sleeping: AtomicBool::new(false), target: Target::Thread(OnceLock::new()) }
    }

    /// A doorbell backed by a non-blocking eventfd, for a thread that sleeps in poll/epoll/
    /// io_uring on [`Doorbell::wake_fd`].
    pub fn eventfd() -> io::Result<Doorbell> {
        let fd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        Ok(Doorbell { sleeping: AtomicBool::new(false), target: Target::EventFd(fd) })
    }

    /// A duplicate of the eventfd for the sleeper's poll set (`None` for a thread doorbell).
    pub fn wake_fd(&self) -> io::Result<Option<OwnedFd>> {
        match &self.target {
            Target::EventFd(fd) => fd.as_fd().try_clone_to_owned().map(Some),
            Target::Thread(_) => Ok(None),
        }
    }

    /// Producer side, after publishing work: wakes the consumer if it is (about to be) asleep.
    #[inline]
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.wake();
        }
    }

    /// Wakes the consumer whatever it is doing (shutdown, a control-plane command).
    pub fn wake(&self) {
        match &self.target {
            Target::Thread(thread) => {
                if let Some(thread) = thread.get() {
                    thread.unpark();
                }
            }
            Target::EventFd(fd) => {
                // EAGAIN: the counter is already huge, so the sleeper is being woken anyway.
                let _ = nix::unistd::write(fd.as_fd(), &1u64.to_ne_bytes());
            }
        }
    }

    /// Consumer side, step 1: announce the sleep. The caller must then check for work once
    /// more, and either [`Doorbell::cancel_sleep`] or sleep ([`Doorbell::sleep`], or its poll on
    /// the eventfd followed by `cancel_sleep`).
    #[inline]
    pub fn prepare_sleep(&self) {
        // Registered before the flag goes up, so a ring that sees the flag can always unpark.
        if let Target::Thread(thread) = &self.target {
            thread.get_or_init(std::thread::current);
        }
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    #[inline]
    pub fn cancel_sleep(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Consumer side, step 2 (thread doorbells): sleeps until rung or `timeout`, then clears
    /// the flag. A ring between `prepare_sleep` and here makes this return at once (the
    /// thread's park token).
    pub fn sleep(&self, timeout: Duration) {
        if let Target::Thread(thread) = &self.target {
            debug_assert_eq!(
                thread.get().map(|t| t.id()),
                Some(std::thread::current().id()),
                "one sleeper per doorbell, registered by prepare_sleep"
            );
            std::thread::park_timeout(timeout);
        } else {
            std::thread::sleep(timeout);
        }
        self.cancel_sleep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    /// A consumer that sleeps for up to a minute per wait still sees every one of 10,000 items
    /// promptly: a lost wake-up would stall this test for a minute (and fail its bound on total
    /// sleeps, which counts rounds, not time).
    #[test]
    fn no_wake_up_is_lost_between_the_last_check_and_the_sleep() {
        let bell = Arc::new(Doorbell::for_thread());
        let published = Arc::new(AtomicU64::new(0));
        const ITEMS: u64 = 10_000;
        let consumer = {
            let bell = Arc::clone(&bell);
            let published = Arc::clone(&published);
            std::thread::spawn(move || {
                let mut seen = 0;
                let mut timeouts = 0;
                while seen < ITEMS {
                    let now = published.load(Ordering::Acquire);
                    if now > seen {
                        seen = now;
                        continue;
                    }
                    bell.prepare_sleep();
                    if published.load(Ordering::Acquire) > seen {
                        bell.cancel_sleep();
                        continue;
                    }
                    let started = std::time::Instant::now();
                    bell.sleep(Duration::from_secs(60));
                    if started.elapsed() >= Duration::from_secs(60) {
                        timeouts += 1;
                    }
                }
                timeouts
            })
        };
        for _ in 0..ITEMS {
            published.fetch_add(1, Ordering::Release);
            bell.ring();
            if published.load(Ordering::Relaxed) % 64 == 0 {
                std::thread::yield_now();
            }
        }
        assert_eq!(consumer.join().unwrap(), 0, "a wake-up was lost: the consumer slept its whole timeout");
    }

    #[test]
    fn an_eventfd_doorbell_makes_its_fd_readable_only_while_someone_sleeps() {
        let bell = Doorbell::eventfd().unwrap();
        let fd = bell.wake_fd().unwrap().unwrap();
        let mut counter = [0u8; 8];
        bell.ring();
        assert_eq!(
            nix::unistd::read(fd.as_raw_fd(), &mut counter),
            Err(nix::errno::Errno::EAGAIN),
            "nobody asleep: ringing makes no syscall and leaves the fd quiet"
        );
        bell.prepare_sleep();
        bell.ring();
        assert_eq!(nix::unistd::read(fd.as_raw_fd(), &mut counter), Ok(8));
        assert_eq!(u64::from_ne_bytes(counter), 1);
    }
}
