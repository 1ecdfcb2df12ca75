//! The open-loop sender: order `i` is due at `i / rate` after t0, whatever has come back.

use super::result::new_histogram;
use super::session::{encode_order, Session};
use super::{LoadOptions, Shared};
use crate::load::flow::Flow;
use crate::load::LoadError;
use hdrhistogram::Histogram;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The first order is intended this long after t0, leaving the receivers a moment to start.
pub(super) const START_LEAD_NS: u64 = 50_000_000;
/// Idle sessions are kept alive with a client heartbeat this often (the server drops a
/// session silent for its idle timeout, 15 s by default).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// Most orders one wake-up of the sender sends (when it is that far behind).
const SEND_BATCH_MAX: usize = 256;
/// Largest encoded order packet, with room to spare.
const ORDER_PACKET_BYTES_MAX: usize = 128;

pub(super) struct Sender<'a> {
    options: &'a LoadOptions,
    shared: &'a Shared,
    sessions: &'a [Session],
    flow: Flow,
    orders_total: u64,
    /// Index of the next order to send.
    next: u64,
    /// Orders due at once (the sender woke late) leave together, one write per session: a
    /// burst, as a busy client's would be, instead of one system call per order falling
    /// further behind.
    out: Vec<Vec<u8>>,
    /// Intended send times of the orders in `out`.
    batch_intended_ns: Vec<u64>,
    last_heartbeat: Instant,
    send_lag_ns: Histogram<u64>,
    sent: u64,
}

impl<'a> Sender<'a> {
    pub(super) fn new(
        options: &'a LoadOptions,
        shared: &'a Shared,
        flow: Flow,
        sessions: &'a [Session],
    ) -> Sender<'a> {
        Sender {
            options,
            shared,
            sessions,
            flow,
            orders_total: options.orders_total(),
            next: 0,
            out: sessions
                .iter()
                .map(|_| Vec::with_capacity(SEND_BATCH_MAX * ORDER_PACKET_BYTES_MAX))
                .collect(),
            batch_intended_ns: Vec::with_capacity(SEND_BATCH_MAX),
            last_heartbeat: Instant::now(),
            send_lag_ns: new_histogram(),
            sent: 0,
        }
    }

    /// Sends every order of the run, or stops early when the receiver failed. Returns the
    /// orders sent and how late each was; a failure here also stops the receiver.
    pub(super) fn run(mut self) -> Result<(u64, Histogram<u64>), LoadError> {
        // The default 50 µs timer slack would make every sleep that late; the sender asks for
        // the finest the kernel gives (per thread, so only the sender is affected).
        let _ = nix::sys::prctl::set_timerslack(1);
        match self.send_all() {
            Ok(()) => Ok((self.sent, self.send_lag_ns)),
            Err(e) => {
                self.shared.failed.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    fn send_all(&mut self) -> Result<(), LoadError> {
        while self.next < self.orders_total && !self.shared.failed.load(Ordering::Relaxed) {
            self.wait_until(self.intended_ns(self.next));
            let now_ns = self.shared.now_ns();
            self.fill_batch(now_ns)?;
            self.write_batch()?;
            self.record_lag();
        }
        Ok(())
    }

    fn intended_ns(&self, i: u64) -> u64 {
        START_LEAD_NS + (i as u128 * 1_000_000_000 / self.options.rate_per_s as u128) as u64
    }

    /// Encodes the orders due by `now_ns`, at most a batch, into their sessions' buffers.
    fn fill_batch(&mut self, now_ns: u64) -> Result<(), LoadError> {
        let shared = self.shared;
        let mut buf = [0u8; ORDER_PACKET_BYTES_MAX];
        self.batch_intended_ns.clear();
        while self.next < self.orders_total
            && self.intended_ns(self.next) <= now_ns
            && self.batch_intended_ns.len() < SEND_BATCH_MAX
        {
            let intended_ns = self.intended_ns(self.next);
            let session = self.flow.session_of(self.next);
            self.next += 1;
            let mut in_flight = shared.in_flight[session].lock().expect("session lock");
            let Some(order) = self.flow.next_order(session, in_flight.book_mut()) else { continue };
            if in_flight.is_full() {
                return Err(LoadError::Overloaded {
                    user: self.sessions[session].user().into(),
                    in_flight: in_flight.len(),
                    timeout_ms: self.options.response_timeout.as_millis() as u64,
                });
            }
            // Registered before the bytes leave, so the answer always finds it.
            in_flight.register(&order, intended_ns);
            drop(in_flight);
            let n = encode_order(&mut buf, &order, self.options.mix.symbol());
            self.out[session].extend_from_slice(&buf[..n]);
            self.batch_intended_ns.push(intended_ns);
        }
        Ok(())
    }

    fn write_batch(&mut self) -> Result<(), LoadError> {
        for (session, bytes) in self.out.iter_mut().enumerate() {
            if bytes.is_empty() {
                continue;
            }
            self.sessions[session].write(bytes)?;
            bytes.clear();
        }
        Ok(())
    }

    /// Records how late the batch just written left, and counts it as sent.
    fn record_lag(&mut self) {
        let written_ns = self.shared.now_ns();
        for &intended_ns in &self.batch_intended_ns {
            if intended_ns >= self.shared.warmup_ns {
                self.send_lag_ns.saturating_record(written_ns.saturating_sub(intended_ns));
            }
        }
        self.sent += self.batch_intended_ns.len() as u64;
    }

    /// Sleeps (and, for the last `spin`, spins) until `intended_ns` after t0, keeping idle
    /// sessions alive with heartbeats. Returns early when the run failed.
    fn wait_until(&mut self, intended_ns: u64) {
        let spin_ns = self.options.spin.as_nanos() as u64;
        loop {
            let now_ns = self.shared.now_ns();
            if now_ns >= intended_ns || self.shared.failed.load(Ordering::Relaxed) {
                return;
            }
            if self.last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
                self.last_heartbeat = Instant::now();
                for session in self.sessions {
                    session.heartbeat();
                }
            }
            let left_ns = intended_ns - now_ns;
            if left_ns > spin_ns {
                let sleep_ns = (left_ns - spin_ns).min(HEARTBEAT_EVERY.as_nanos() as u64 / 2);
                std::thread::sleep(Duration::from_nanos(sleep_ns));
            } else {
                std::hint::spin_loop();
            }
        }
    }
}
