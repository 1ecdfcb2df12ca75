//! The open-loop client: logs the sessions in, sends at the offered rate, matches answers.

use super::flow::{Book, Flow, Order, Resting};
use super::{LoadError, Mix};
use hdrhistogram::Histogram;
use nix::poll::PollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use petrel_proto::ouch::{self, Inbound, Outbound};
use petrel_proto::soupbin::{
    self, next_server_packet, packet_type, FrameLimits, LoginRequest, ServerPacket, SessionName,
};
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
}

/// First answers by kind, and the other messages seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseCounts {
    pub accepted: u64,
    pub replaced: u64,
    pub canceled: u64,
    /// Order Rejected for an Enter Order: never expected from a valid flow.
    pub rejected_new: u64,
    /// Order Rejected for a Replace: the order was filled while the replace was in flight.
    pub rejected_replace: u64,
    /// Cancel Reject: the order was filled (or reduced below the asked size) first.
    pub cancel_rejected: u64,
    /// Order Executed messages (either side); not acknowledgements.
    pub executions: u64,
    /// First-answer messages naming no order in flight: a protocol error of the target.
    pub unmatched: u64,
}

impl ResponseCounts {
    /// Adds another run's counts to these.
    pub fn add(&mut self, o: &ResponseCounts) {
        self.accepted += o.accepted;
        self.replaced += o.replaced;
        self.canceled += o.canceled;
        self.rejected_new += o.rejected_new;
        self.rejected_replace += o.rejected_replace;
        self.cancel_rejected += o.cancel_rejected;
        self.executions += o.executions;
        self.unmatched += o.unmatched;
    }

    /// Orders that got their first answer.
    pub fn acknowledged(&self) -> u64 {
        self.accepted
            + self.replaced
            + self.canceled
            + self.rejected_new
            + self.rejected_replace
            + self.cancel_rejected
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct LoadResult {
    /// Intended send time to first answer, ns, for orders intended after the warm-up.
    pub latency_ns: Histogram<u64>,
    /// How late the sender was against each intended send time, ns (after the warm-up): the
    /// client's own share of `latency_ns`.
    pub send_lag_ns: Histogram<u64>,
    pub sent: u64,
    pub counts: ResponseCounts,
    /// Orders still unanswered when the response timeout ran out after the last send.
    pub lost: u64,
    pub sessions: usize,
    pub rate_per_s: u64,
    pub duration: Duration,
    pub mix: &'static str,
}

/// Longest a histogram records: one minute, in ns.
const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Read buffer of one session: many answers, far above the largest packet.
const RX_BUFFER_BYTES: usize = 256 * 1024;
/// Largest server packet accepted: the most SoupBinTCP's 16-bit length can say.
const PACKET_BYTES_MAX: usize = soupbin::PACKET_BYTES_MAX_WIRE;
/// Idle sessions are kept alive with a client heartbeat this often (the server drops a
/// session silent for its idle timeout, 15 s by default).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How long the receiver waits for data before it looks at the stop flag.
const RX_POLL_MS: u16 = 100;
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Most orders one wake-up of the sender sends (when it is that far behind).
const SEND_BATCH_MAX: usize = 256;
/// The first order is intended this long after t0, leaving the receivers a moment to start.
const START_LEAD_NS: u64 = 50_000_000;

pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    New,
    Replace,
    Cancel,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: Kind,
    intended_ns: u64,
}

/// Shared between the sender and one session's receiver.
struct SessionState {
    book: Book,
    track_resting: bool,
    /// Orders awaiting their first answer, by the UserRefNum the answer carries. Several
    /// reductions of one order (LOBSTER) can be in flight at once; their answers come in order.
    pending: HashMap<u32, VecDeque<Pending>>,
    pending_len: usize,
    pending_max: usize,
    counts: ResponseCounts,
}

impl SessionState {
    fn take(&mut self, user_ref: u32, kinds: &[Kind]) -> Option<Pending> {
        let queue = self.pending.get_mut(&user_ref)?;
        let front = *queue.front()?;
        if !kinds.contains(&front.kind) {
            return None;
        }
        queue.pop_front();
        if queue.is_empty() {
            self.pending.remove(&user_ref);
        }
        self.pending_len -= 1;
        Some(front)
    }
}

struct Shared {
    sessions: Vec<Mutex<SessionState>>,
    t0: Instant,
    warmup_ns: u64,
    stop: AtomicBool,
    failed: AtomicBool,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        Instant::now().saturating_duration_since(self.t0).as_nanos() as u64
    }
}

/// Runs the load and returns what it measured. Fails when a session cannot log in, the
/// connection breaks, or the target falls further behind than the response timeout allows.
pub fn run_load(options: &LoadOptions) -> Result<LoadResult, LoadError> {
    if options.logins.is_empty() {
        return Err(LoadError::Usage("at least one session (login) is needed".into()));
    }
    if options.rate_per_s == 0 {
        return Err(LoadError::Usage("the offered rate must be at least 1 order/s".into()));
    }
    let sessions = options.logins.len();
    let mut streams = Vec::with_capacity(sessions);
    let mut leftovers = Vec::with_capacity(sessions);
    for login in &options.logins {
        let (stream, rest) = connect_and_login(options.target, login)?;
        streams.push(stream);
        leftovers.push(rest);
    }
    let flow = Flow::new(options.mix.clone(), sessions, options.seed);
    let per_session_rate = options.rate_per_s.div_ceil(sessions as u64);
    let pending_max =
        ((per_session_rate as u128 * options.response_timeout.as_nanos() / 1_000_000_000) as usize).max(64);
    let shared = Arc::new(Shared {
        sessions: (0..sessions)
            .map(|_| {
                Mutex::new(SessionState {
                    book: Book::new(options.first_user_ref.max(1), flow.resting_max_per_session()),
                    track_resting: options.mix.tracks_resting(),
                    pending: HashMap::with_capacity(pending_max),
                    pending_len: 0,
                    pending_max,
                    counts: ResponseCounts::default(),
                })
            })
            .collect(),
        t0: Instant::now(),
        warmup_ns: START_LEAD_NS + options.warmup.as_nanos() as u64,
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
    });
    let mut rxs = Vec::with_capacity(sessions);
    for (i, (stream, rest)) in streams.iter().zip(leftovers).enumerate() {
        let reader = stream.try_clone().map_err(|source| io_error(&options.logins[i], source))?;
        let mut buf = vec![0u8; RX_BUFFER_BYTES].into_boxed_slice();
        assert!(rest.len() <= buf.len(), "login leftovers are bounded by the login buffer");
        buf[..rest.len()].copy_from_slice(&rest);
        rxs.push(Rx {
            stream: reader,
            user: options.logins[i].user.clone(),
            buf,
            len: rest.len(),
            done: false,
        });
    }
    let receiver = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("load-rx".into())
            .spawn(move || receive(rxs, &shared))
            .map_err(|e| LoadError::Usage(format!("cannot start the receiver thread: {e}")))?
    };
    let sent = send(options, &shared, flow, &streams);
    // Wait for the last answers (or give up after the timeout), then log out.
    let drain_deadline = Instant::now() + options.response_timeout;
    while sent.is_ok() && !shared.failed.load(Ordering::Relaxed) && Instant::now() < drain_deadline {
        let in_flight: usize =
            shared.sessions.iter().map(|s| s.lock().expect("session lock").pending_len).sum();
        if in_flight == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    shared.stop.store(true, Ordering::SeqCst);
    let mut logout = [0u8; 8];
    let n = soupbin::encode_packet(&mut logout, packet_type::LOGOUT_REQUEST, &[]).expect("logout fits");
    for stream in &streams {
        // The session may already be gone after a failure; its receiver reports why.
        let _ = (&*stream).write_all(&logout[..n]);
    }
    let received = receiver.join().unwrap_or_else(|_| {
        Err(LoadError::Protocol {
            user: options.logins[0].user.clone(),
            message: "the receiver thread panicked".into(),
        })
    });
    for stream in &streams {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let ((sent, send_lag_ns), latency_ns) = match (sent, received) {
        (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
        (Ok(s), Ok(h)) => (s, h),
    };
    let mut counts = ResponseCounts::default();
    let mut lost = 0;
    for session in &shared.sessions {
        let state = session.lock().expect("session lock");
        counts.add(&state.counts);
        lost += state.pending_len as u64;
    }
    Ok(LoadResult {
        latency_ns,
        send_lag_ns,
        sent,
        counts,
        lost,
        sessions,
        rate_per_s: options.rate_per_s,
        duration: options.duration,
        mix: options.mix.name(),
    })
}

fn io_error(login: &Login, source: std::io::Error) -> LoadError {
    LoadError::Io { user: login.user.clone(), source }
}

/// Connects, logs in asking for new messages only, and returns the stream with any bytes
/// that arrived after the Login Accepted.
fn connect_and_login(addr: SocketAddr, login: &Login) -> Result<(TcpStream, Vec<u8>), LoadError> {
    let protocol = |message: String| LoadError::Protocol { user: login.user.clone(), message };
    let username = soupbin::Username::new("username", &login.user)
        .map_err(|e| protocol(format!("user name {:?}: {e}", login.user)))?;
    let password = soupbin::Password::new("password", &login.password)
        .map_err(|e| protocol(format!("password: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, LOGIN_TIMEOUT)
        .map_err(|source| LoadError::Connect { addr, source })?;
    // Each order goes out in its own segment at once, as a trading client's would.
    stream.set_nodelay(true).map_err(|e| io_error(login, e))?;
    stream.set_read_timeout(Some(LOGIN_TIMEOUT)).map_err(|e| io_error(login, e))?;
    let request = LoginRequest {
        username,
        password,
        requested_session: SessionName::BLANK,
        requested_sequence_number: 0,
    };
    let mut buf = [0u8; 64];
    let n = request.encode(&mut buf).expect("a login request fits 64 bytes");
    stream.write_all(&buf[..n]).map_err(|e| io_error(login, e))?;
    let mut rx = Vec::with_capacity(1024);
    let deadline = Instant::now() + LOGIN_TIMEOUT;
    loop {
        match next_server_packet(&rx, FrameLimits::new(PACKET_BYTES_MAX)) {
            Ok(Some((packet, used))) => match packet {
                ServerPacket::LoginAccepted(_) => {
                    let rest = rx[used..].to_vec();
                    stream.set_read_timeout(None).map_err(|e| io_error(login, e))?;
                    return Ok((stream, rest));
                }
                ServerPacket::LoginRejected(reason) => {
                    return Err(LoadError::LoginRejected {
                        user: login.user.clone(),
                        addr,
                        reason: reason.code() as char,
                    })
                }
                _ => {
                    rx.drain(..used);
                    continue;
                }
            },
            Ok(None) => {}
            Err(e) => return Err(protocol(format!("malformed packet while logging in: {e}"))),
        }
        if Instant::now() > deadline || rx.len() > RX_BUFFER_BYTES {
            return Err(protocol(format!("no Login Accepted within {} s", LOGIN_TIMEOUT.as_secs())));
        }
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk) {
            Ok(0) => return Err(LoadError::Closed { user: login.user.clone() }),
            Ok(n) => rx.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(protocol(format!("no Login Accepted within {} s", LOGIN_TIMEOUT.as_secs())))
            }
            Err(e) => return Err(io_error(login, e)),
        }
    }
}

/// The open-loop sender: order `i` is due at `i / rate` after t0, whatever has come back.
fn send(
    options: &LoadOptions,
    shared: &Shared,
    mut flow: Flow,
    streams: &[TcpStream],
) -> Result<(u64, Histogram<u64>), LoadError> {
    // The default 50 µs timer slack would make every sleep that late; the sender asks for
    // the finest the kernel gives (per thread, so only the sender is affected).
    let _ = nix::sys::prctl::set_timerslack(1);
    let total = (options.rate_per_s as u128 * options.duration.as_nanos() / 1_000_000_000) as u64;
    let intended = |i: u64| START_LEAD_NS + (i as u128 * 1_000_000_000 / options.rate_per_s as u128) as u64;
    let mut send_lag_ns = new_histogram();
    // Orders due at once (the sender woke late) leave together, one write per session: a
    // burst, as a busy client's would be, instead of one system call per order falling
    // further behind.
    let mut out: Vec<Vec<u8>> =
        (0..streams.len()).map(|_| Vec::with_capacity(SEND_BATCH_MAX * 128)).collect();
    let mut batch_intended_ns = Vec::with_capacity(SEND_BATCH_MAX);
    let mut buf = [0u8; 128];
    let mut last_heartbeat = Instant::now();
    let mut sent = 0u64;
    let fail = |e: LoadError| {
        shared.failed.store(true, Ordering::SeqCst);
        Err(e)
    };
    let mut i = 0;
    while i < total && !shared.failed.load(Ordering::Relaxed) {
        wait_until(shared, intended(i), options.spin, &mut last_heartbeat, streams)?;
        let now_ns = shared.now_ns();
        batch_intended_ns.clear();
        while i < total && intended(i) <= now_ns && batch_intended_ns.len() < SEND_BATCH_MAX {
            let intended_ns = intended(i);
            let session = flow.session_of(i);
            i += 1;
            let mut state = shared.sessions[session].lock().expect("session lock");
            let Some(order) = flow.next_order(session, &mut state.book) else { continue };
            let (key, kind) = match order {
                Order::Enter { user_ref, .. } => (user_ref, Kind::New),
                Order::Replace { user_ref, .. } => (user_ref, Kind::Replace),
                Order::Cancel { user_ref, .. } => (user_ref, Kind::Cancel),
            };
            if state.pending_len >= state.pending_max {
                return fail(LoadError::Overloaded {
                    user: options.logins[session].user.clone(),
                    in_flight: state.pending_len,
                    timeout_ms: options.response_timeout.as_millis() as u64,
                });
            }
            // Registered before the bytes leave, so the answer always finds it.
            state.pending.entry(key).or_default().push_back(Pending { kind, intended_ns });
            state.pending_len += 1;
            drop(state);
            let n = encode_order(&mut buf, &order, options.mix.symbol());
            out[session].extend_from_slice(&buf[..n]);
            batch_intended_ns.push(intended_ns);
        }
        for (session, bytes) in out.iter_mut().enumerate() {
            if bytes.is_empty() {
                continue;
            }
            if let Err(e) = (&streams[session]).write_all(bytes) {
                return fail(io_error(&options.logins[session], e));
            }
            bytes.clear();
        }
        let written_ns = shared.now_ns();
        for &intended_ns in &batch_intended_ns {
            if intended_ns >= shared.warmup_ns {
                send_lag_ns.saturating_record(written_ns.saturating_sub(intended_ns));
            }
        }
        sent += batch_intended_ns.len() as u64;
    }
    Ok((sent, send_lag_ns))
}

/// Sleeps (and, for the last `spin`, spins) until `intended_ns` after t0, keeping idle
/// sessions alive with heartbeats.
fn wait_until(
    shared: &Shared,
    intended_ns: u64,
    spin: Duration,
    last_heartbeat: &mut Instant,
    streams: &[TcpStream],
) -> Result<(), LoadError> {
    let spin_ns = spin.as_nanos() as u64;
    loop {
        let now_ns = shared.now_ns();
        if now_ns >= intended_ns || shared.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
            *last_heartbeat = Instant::now();
            let mut hb = [0u8; 4];
            let n = soupbin::encode_packet(&mut hb, packet_type::CLIENT_HEARTBEAT, &[]).expect("fits");
            for stream in streams {
                // A broken session is reported by its receiver.
                let _ = (&*stream).write_all(&hb[..n]);
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

/// Writes the SoupBinTCP Unsequenced Data packet carrying `order`; returns its length.
pub(crate) fn encode_order(buf: &mut [u8], order: &Order, symbol: &str) -> usize {
    let symbol = ouch::Symbol::new("symbol", symbol).expect("symbol checked when the options were built");
    let message = match *order {
        Order::Enter { user_ref, buy, qty, price, ioc } => Inbound::EnterOrder(ouch::EnterOrder {
            user_ref_num: user_ref,
            side: if buy { ouch::Side::Buy } else { ouch::Side::Sell },
            quantity: qty,
            symbol,
            price: ouch::Price(price),
            time_in_force: if ioc { ouch::TimeInForce::ImmediateOrCancel } else { ouch::TimeInForce::Day },
            display: ouch::Display::Visible,
            capacity: ouch::Capacity::Agency,
            intermarket_sweep: ouch::IntermarketSweep::NotEligible,
            cross_type: ouch::CrossType::ContinuousMarket,
            cl_ord_id: cl_ord_id(user_ref),
            appendage: ouch::Appendage::EMPTY,
        }),
        Order::Replace { orig_user_ref, user_ref, qty, price } => Inbound::ReplaceOrder(ouch::ReplaceOrder {
            orig_user_ref_num: orig_user_ref,
            user_ref_num: user_ref,
            quantity: qty,
            price: ouch::Price(price),
            time_in_force: ouch::TimeInForce::Day,
            display: ouch::Display::Visible,
            intermarket_sweep: ouch::IntermarketSweep::NotEligible,
            cl_ord_id: cl_ord_id(user_ref),
            appendage: ouch::Appendage::EMPTY,
        }),
        Order::Cancel { user_ref, qty } => {
            Inbound::CancelOrder(ouch::CancelOrder { user_ref_num: user_ref, quantity: qty })
        }
    };
    soupbin::encode_packet_with(buf, packet_type::UNSEQUENCED_DATA, |b| message.encode(b))
        .expect("an order message fits the send buffer")
}

/// "L" and the reference in decimal: unique per session, and readable in the engine's logs.
fn cl_ord_id(user_ref: u32) -> ouch::ClOrdId {
    let mut raw = [b' '; 14];
    raw[0] = b'L';
    let digits = user_ref.to_string();
    raw[1..1 + digits.len()].copy_from_slice(digits.as_bytes());
    ouch::ClOrdId::from_wire(raw).expect("ASCII digits are printable")
}

/// One session's receive side: its socket and the bytes not yet cut into packets.
struct Rx {
    stream: TcpStream,
    user: String,
    buf: Box<[u8]>,
    len: usize,
    done: bool,
}

/// The receiver: one thread for all sessions, woken by epoll, reading each ready socket once
/// and timestamping what the read returned. One thread rather than one per session: on a
/// small host a wake-up per message per session measures the scheduler, not the target.
fn receive(mut rxs: Vec<Rx>, shared: &Shared) -> Result<Histogram<u64>, LoadError> {
    let result = receive_loop(&mut rxs, shared);
    if result.is_err() {
        break_with(shared);
    }
    result
}

fn receive_loop(rxs: &mut [Rx], shared: &Shared) -> Result<Histogram<u64>, LoadError> {
    let mut histogram = new_histogram();
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .map_err(|e| LoadError::Io { user: rxs[0].user.clone(), source: e.into() })?;
    for (i, rx) in rxs.iter().enumerate() {
        epoll
            .add(&rx.stream, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
            .map_err(|e| LoadError::Io { user: rx.user.clone(), source: e.into() })?;
    }
    // Bytes that came with the Login Accepted.
    for (session, rx) in rxs.iter_mut().enumerate() {
        let now_ns = shared.now_ns();
        process(rx, session, now_ns, shared, &mut histogram)?;
    }
    let mut events = vec![EpollEvent::empty(); rxs.len()];
    while rxs.iter().any(|rx| !rx.done) {
        let n = match epoll.wait(&mut events, PollTimeout::from(RX_POLL_MS)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(LoadError::Io { user: rxs[0].user.clone(), source: e.into() }),
        };
        if n == 0 && shared.stop.load(Ordering::SeqCst) {
            // Logged out and nothing more within the poll interval: done.
            break;
        }
        for event in &events[..n] {
            let session = event.data() as usize;
            let rx = &mut rxs[session];
            if rx.done {
                continue;
            }
            let read = rx.stream.read(&mut rx.buf[rx.len..]);
            let now_ns = shared.now_ns();
            match read {
                Ok(0) => {
                    if !shared.stop.load(Ordering::SeqCst) {
                        return Err(LoadError::Closed { user: rx.user.clone() });
                    }
                    rx.done = true;
                    let _ = epoll.delete(&rx.stream);
                }
                Ok(n) => {
                    rx.len += n;
                    process(rx, session, now_ns, shared, &mut histogram)?;
                    if rx.done {
                        let _ = epoll.delete(&rx.stream);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) if shared.stop.load(Ordering::SeqCst) && e.kind() == ErrorKind::ConnectionReset => {
                    rx.done = true;
                    let _ = epoll.delete(&rx.stream);
                }
                Err(source) => return Err(LoadError::Io { user: rx.user.clone(), source }),
            }
        }
    }
    Ok(histogram)
}

/// Cuts the buffered bytes into packets and matches the answers, all received at `now_ns`.
fn process(
    rx: &mut Rx,
    session: usize,
    now_ns: u64,
    shared: &Shared,
    histogram: &mut Histogram<u64>,
) -> Result<(), LoadError> {
    let protocol = |user: &str, message: String| LoadError::Protocol { user: user.into(), message };
    let mut used = 0;
    loop {
        match next_server_packet(&rx.buf[used..rx.len], FrameLimits::new(PACKET_BYTES_MAX)) {
            Ok(Some((packet, n))) => {
                match packet {
                    ServerPacket::SequencedData(data) => match Outbound::decode(data) {
                        Ok(message) => on_message(&message, session, now_ns, shared, histogram),
                        Err(e) => return Err(protocol(&rx.user, format!("undecodable OUCH message: {e}"))),
                    },
                    ServerPacket::EndOfSession => {
                        if !shared.stop.load(Ordering::SeqCst) {
                            return Err(LoadError::Closed { user: rx.user.clone() });
                        }
                        rx.done = true;
                    }
                    _ => {}
                }
                used += n;
            }
            Ok(None) => break,
            Err(e) => return Err(protocol(&rx.user, format!("malformed packet: {e}"))),
        }
    }
    rx.buf.copy_within(used..rx.len, 0);
    rx.len -= used;
    Ok(())
}

fn break_with(shared: &Shared) {
    shared.failed.store(true, Ordering::SeqCst);
}

fn on_message(
    message: &Outbound<'_>,
    session: usize,
    now_ns: u64,
    shared: &Shared,
    histogram: &mut Histogram<u64>,
) {
    let mut guard = shared.sessions[session].lock().expect("session lock");
    let state = &mut *guard;
    let answered = match *message {
        Outbound::OrderAccepted(a) => {
            let p = state.take(a.user_ref_num, &[Kind::New]);
            if p.is_some() {
                state.counts.accepted += 1;
                if state.track_resting && a.time_in_force != ouch::TimeInForce::ImmediateOrCancel {
                    state.book.insert(Resting {
                        user_ref: a.user_ref_num,
                        buy: a.side == ouch::Side::Buy,
                        price: a.price.0,
                        qty: a.quantity,
                    });
                }
            }
            Some(p)
        }
        Outbound::OrderReplaced(r) => {
            let p = state.take(r.user_ref_num, &[Kind::Replace]);
            if p.is_some() {
                state.counts.replaced += 1;
                if state.track_resting {
                    state.book.insert(Resting {
                        user_ref: r.user_ref_num,
                        buy: r.side == ouch::Side::Buy,
                        price: r.price.0,
                        qty: r.quantity,
                    });
                }
            }
            Some(p)
        }
        Outbound::OrderRejected(r) => {
            let p = state.take(r.user_ref_num, &[Kind::New, Kind::Replace]);
            match p.map(|p| p.kind) {
                Some(Kind::New) => state.counts.rejected_new += 1,
                Some(_) => state.counts.rejected_replace += 1,
                None => {}
            }
            Some(p)
        }
        Outbound::OrderCanceled(c) => match state.take(c.user_ref_num, &[Kind::Cancel]) {
            Some(p) => {
                state.counts.canceled += 1;
                Some(Some(p))
            }
            None => {
                // An IOC remainder or an engine-initiated cancel: the order shrinks or goes.
                state.book.executed(c.user_ref_num, c.quantity);
                None
            }
        },
        Outbound::CancelReject { user_ref_num, .. } => {
            let p = state.take(user_ref_num, &[Kind::Cancel]);
            if p.is_some() {
                state.counts.cancel_rejected += 1;
            }
            Some(p)
        }
        Outbound::OrderExecuted(x) => {
            state.counts.executions += 1;
            state.book.executed(x.user_ref_num, x.quantity);
            None
        }
        _ => None,
    };
    match answered {
        Some(Some(p)) if p.intended_ns >= shared.warmup_ns => {
            histogram.saturating_record(now_ns.saturating_sub(p.intended_ns));
        }
        Some(Some(_)) => {}
        Some(None) => state.counts.unmatched += 1,
        None => {}
    }
}
