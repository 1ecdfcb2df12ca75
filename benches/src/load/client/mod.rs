//! The open-loop client: logs the sessions in, sends at the offered rate, matches answers.
//!
//! Two threads share one [`InFlight`] table per session (each under its own mutex): this
//! thread runs the [`Sender`], which registers every order before its bytes leave, and the
//! [`Receiver`] thread matches every answer to it. [`run_load`] wires them, in the order a
//! run goes; [`run_load_marked`] adds a third that sleeps until the warm-up ends and then
//! reads whatever the caller wants read there (the engine's own histograms).

mod feed;
mod feed_join;
mod in_flight;
mod options;
mod receiver;
mod result;
mod sender;
mod session;

pub use feed::FeedResult;
pub use feed_join::FeedLatency;
pub use options::{parse_rate, LoadOptions, Login};
pub use result::{LoadResult, ResponseCounts};

use super::flow::{Book, Flow};
use super::LoadError;
use feed::FeedListener;
use in_flight::InFlight;
use petrel_proto::soupbin;
use receiver::Receiver;
use sender::{Sender, START_LEAD_NS};
use session::Session;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest server packet accepted: the most SoupBinTCP's 16-bit length can say.
const PACKET_BYTES_MAX: usize = soupbin::PACKET_BYTES_MAX_WIRE;

/// What the sender and the receiver share for one run.
struct Shared {
    /// By session, in the order of the logins.
    in_flight: Vec<Mutex<InFlight>>,
    t0: Instant,
    /// Orders intended before this many ns after t0 are not recorded.
    warmup_ns: u64,
    /// Set once the run has logged out: a session ending now is no error.
    stop: AtomicBool,
    /// Set by whichever side failed first, to stop the other.
    failed: AtomicBool,
    /// Accepted notes the receiver could not hand to the feed listener (its ring was full).
    feed_notes_dropped: AtomicU64,
}

impl Shared {
    /// Starts the run's clock: t0 is now.
    fn new(options: &LoadOptions, flow: &Flow) -> Shared {
        let pending_max = options.in_flight_max_per_session();
        Shared {
            in_flight: (0..options.logins.len())
                .map(|_| {
                    let book = Book::new(options.first_user_ref.max(1), flow.resting_max_per_session());
                    Mutex::new(InFlight::new(book, options.mix.tracks_resting(), pending_max))
                })
                .collect(),
            t0: Instant::now(),
            warmup_ns: START_LEAD_NS + options.warmup.as_nanos() as u64,
            stop: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            feed_notes_dropped: AtomicU64::new(0),
        }
    }

    fn now_ns(&self) -> u64 {
        Instant::now().saturating_duration_since(self.t0).as_nanos() as u64
    }

    /// Orders awaiting their first answer over all sessions.
    fn in_flight_total(&self) -> usize {
        self.in_flight.iter().map(|s| s.lock().expect("session lock").len()).sum()
    }
}

/// Runs the load and returns what it measured. Fails when a session cannot log in, the
/// connection breaks, or the target falls further behind than the response timeout allows.
pub fn run_load(options: &LoadOptions) -> Result<LoadResult, LoadError> {
    run_load_marked(options, || ()).map(|(result, ())| result)
}

/// [`run_load`], also calling `at_record_start` on a thread of its own at the moment from which
/// orders are recorded (the end of the warm-up), and returning what it returned. A reading of
/// the target's own cumulative counters taken there and another after the run cover the orders
/// of the histogram, to within the commit or batch in flight at each end.
pub fn run_load_marked<T: Send>(
    options: &LoadOptions,
    at_record_start: impl FnOnce() -> T + Send,
) -> Result<(LoadResult, T), LoadError> {
    // 1. Check the options, bind the feed listener's socket (so that it hears the whole run)
    //    and log every session in, before the clock starts.
    options.validate()?;
    let feed = options.feed_listen.map(FeedListener::bind).transpose()?;
    let mut sessions = Vec::with_capacity(options.logins.len());
    let mut leftovers = Vec::with_capacity(options.logins.len());
    for login in &options.logins {
        let (session, rest) = Session::connect(options.target, login)?;
        sessions.push(session);
        leftovers.push(rest);
    }
    // 2. Start the clock with the state both threads share.
    let flow = Flow::new(options.mix.clone(), sessions.len(), options.seed);
    let shared = Arc::new(Shared::new(options, &flow));
    // 3. The feed listener, if any, and the receiver thread, starting with the bytes that came
    //    with each Login Accepted and telling the listener of each Accepted.
    let (feed, notes) = match feed {
        Some((listener, notes)) => (Some(listener.spawn(shared.clone())?), Some(notes)),
        None => (None, None),
    };
    let receiver = Receiver::new(&sessions, leftovers, notes)?.spawn(shared.clone())?;
    // 4. This thread sends every order at its intended time, while a scoped one waits for the
    //    end of the warm-up to call the marker (never on the sender, whose schedule it would
    //    delay).
    let (sent, marked) = std::thread::scope(|scope| {
        let marker = scope.spawn(|| {
            let record_start = shared.t0 + Duration::from_nanos(shared.warmup_ns);
            std::thread::sleep(record_start.saturating_duration_since(Instant::now()));
            at_record_start()
        });
        let sent = Sender::new(options, &shared, flow, &sessions).run();
        (sent, marker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    // 5. Wait for the last answers (or give up after the timeout), then log out, which ends
    //    the receiver.
    if sent.is_ok() {
        await_answers(&shared, options.response_timeout);
    }
    shared.stop.store(true, Ordering::SeqCst);
    for session in &sessions {
        session.log_out();
    }
    let received = receiver.join().unwrap_or_else(|_| {
        Err(LoadError::Protocol {
            user: options.logins[0].user.clone(),
            message: "the receiver thread panicked".into(),
        })
    });
    for session in &sessions {
        session.shutdown();
    }
    // The receiver's end closed the ring: the listener drains it and ends.
    let feed = feed.map(|f| f.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
    // 6. Sum up the sessions.
    let ((sent, send_lag_ns), latency_ns) = match (sent, received) {
        (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
        (Ok(s), Ok(h)) => (s, h),
    };
    let mut result = tally(options, &shared, sessions.len(), sent, send_lag_ns, latency_ns);
    result.feed = feed;
    Ok((result, marked))
}

/// The run's result from what the threads measured and the sessions' tables.
fn tally(
    options: &LoadOptions,
    shared: &Shared,
    sessions: usize,
    sent: u64,
    send_lag_ns: hdrhistogram::Histogram<u64>,
    latency_ns: hdrhistogram::Histogram<u64>,
) -> LoadResult {
    let mut counts = ResponseCounts::default();
    let mut lost = 0;
    for in_flight in &shared.in_flight {
        let in_flight = in_flight.lock().expect("session lock");
        counts.add(in_flight.counts());
        lost += in_flight.len() as u64;
    }
    LoadResult {
        latency_ns,
        send_lag_ns,
        sent,
        counts,
        lost,
        sessions,
        rate_per_s: options.rate_per_s,
        duration: options.duration,
        mix: options.mix.name(),
        feed: None,
    }
}

/// Returns once every order is answered, the run failed, or `timeout` has passed.
fn await_answers(shared: &Shared, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !shared.failed.load(Ordering::Relaxed) && Instant::now() < deadline {
        if shared.in_flight_total() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
