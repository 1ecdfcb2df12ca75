//! The open-loop client: logs the sessions in, sends at the offered rate, matches answers.

use super::flow::{Book, Flow, Order, Resting};
use super::{LoadError, Mix};
use hdrhistogram::Histogram;
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
    fn add(&mut self, o: &ResponseCounts) {
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
/// How long a receiver blocks in read before it looks at the stop flag.
const RX_POLL: Duration = Duration::from_millis(100);
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
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
    let mut receivers = Vec::with_capacity(sessions);
    for (i, (stream, rest)) in streams.iter().zip(leftovers).enumerate() {
        let reader = stream.try_clone().map_err(|source| io_error(&options.logins[i], source))?;
        let shared = shared.clone();
        let user = options.logins[i].user.clone();
        receivers.push(
            std::thread::Builder::new()
                .name(format!("load-rx-{i}"))
                .spawn(move || receive(reader, rest, i, &user, &shared))
                .map_err(|e| LoadError::Usage(format!("cannot start a receiver thread: {e}")))?,
        );
    }
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
    let mut latency_ns = new_histogram();
    let mut first_error = None;
    for (i, receiver) in receivers.into_iter().enumerate() {
        match receiver.join() {
            Ok(Ok(histogram)) => latency_ns.add(&histogram).expect("histograms of equal bounds"),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(LoadError::Protocol {
                    user: options.logins[i].user.clone(),
                    message: "the receiver thread panicked".into(),
                });
            }
        }
    }
    for stream in &streams {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let (sent, send_lag_ns) = match (sent, first_error) {
        (Err(e), _) | (Ok(_), Some(e)) => return Err(e),
        (Ok(v), None) => v,
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
                    stream.set_read_timeout(Some(RX_POLL)).map_err(|e| io_error(login, e))?;
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
    let mut send_lag_ns = new_histogram();
    let mut buf = [0u8; 128];
    let mut last_heartbeat = Instant::now();
    let mut sent = 0u64;
    let fail = |e: LoadError| {
        shared.failed.store(true, Ordering::SeqCst);
        Err(e)
    };
    for i in 0..total {
        let intended_ns = START_LEAD_NS + (i as u128 * 1_000_000_000 / options.rate_per_s as u128) as u64;
        wait_until(shared, intended_ns, options.spin, &mut last_heartbeat, streams)?;
        if shared.failed.load(Ordering::Relaxed) {
            break;
        }
        let session = flow.session_of(i);
        let order = {
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
            order
        };
        let n = encode_order(&mut buf, &order, options.mix.symbol());
        let now_ns = shared.now_ns();
        if let Err(e) = (&streams[session]).write_all(&buf[..n]) {
            return fail(io_error(&options.logins[session], e));
        }
        if intended_ns >= shared.warmup_ns {
            send_lag_ns.saturating_record(now_ns.saturating_sub(intended_ns));
        }
        sent += 1;
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

/// One session's receiver: timestamps each read and matches the answers in it.
fn receive(
    mut stream: TcpStream,
    leftover: Vec<u8>,
    session: usize,
    user: &str,
    shared: &Shared,
) -> Result<Histogram<u64>, LoadError> {
    let mut histogram = new_histogram();
    let mut buf = vec![0u8; RX_BUFFER_BYTES].into_boxed_slice();
    let mut len = leftover.len();
    assert!(len <= buf.len(), "login leftovers are bounded by the login buffer");
    buf[..len].copy_from_slice(&leftover);
    let result = loop {
        let now_ns = shared.now_ns();
        let mut used = 0;
        let mut ended = false;
        loop {
            match next_server_packet(&buf[used..len], FrameLimits::new(PACKET_BYTES_MAX)) {
                Ok(Some((packet, n))) => {
                    match packet {
                        ServerPacket::SequencedData(data) => match Outbound::decode(data) {
                            Ok(message) => on_message(&message, session, now_ns, shared, &mut histogram),
                            Err(e) => {
                                break_with(shared);
                                return Err(LoadError::Protocol {
                                    user: user.into(),
                                    message: format!("undecodable OUCH message: {e}"),
                                });
                            }
                        },
                        ServerPacket::EndOfSession => ended = true,
                        _ => {}
                    }
                    used += n;
                }
                Ok(None) => break,
                Err(e) => {
                    break_with(shared);
                    return Err(LoadError::Protocol {
                        user: user.into(),
                        message: format!("malformed packet: {e}"),
                    });
                }
            }
        }
        buf.copy_within(used..len, 0);
        len -= used;
        if ended {
            break if shared.stop.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(LoadError::Closed { user: user.into() })
            };
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => {
                break if shared.stop.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err(LoadError::Closed { user: user.into() })
                }
            }
            Ok(n) => len += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if shared.stop.load(Ordering::SeqCst) {
                    // Logged out and nothing more within the poll interval: done.
                    break Ok(());
                }
            }
            Err(e) if shared.stop.load(Ordering::SeqCst) && e.kind() == ErrorKind::ConnectionReset => {
                break Ok(())
            }
            Err(source) => break Err(LoadError::Io { user: user.into(), source }),
        }
    };
    match result {
        Ok(()) => Ok(histogram),
        Err(e) => {
            break_with(shared);
            Err(e)
        }
    }
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
