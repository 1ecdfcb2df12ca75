//! The `petrel-feed-requests` thread: the MoldUDP64 retransmission server. A listener that saw
//! a gap sends (session, first sequence, count); the answer is one ordinary downstream packet,
//! unicast to the requester, with the messages from the feed journal (as many as fit one
//! packet and `max_messages_per_request`: a listener asks again for the rest).
//!
//! Refused, counted and otherwise ignored: anything that is not a 20-byte request
//! (`malformed`), another session (`wrong_session`), sequence 0, a count of 0, or a first
//! sequence beyond what was recorded (`out_of_range`), and a requester over its rate
//! (`rate_limited`). The rate is a token bucket per requester address and port, in a table of
//! fixed size; nothing here allocates per request.

use super::publisher::session_field;
use super::stats::{add, bump, FeedStats};
use super::MarketDataError;
use crate::config::MarketDataConfig;
use petrel_journal::{JournalLocation, JournalTail, TailRecord};
use petrel_proto::moldudp64::{decode_request, PacketBuilder, HEADER_BYTES};
use petrel_proto::Alpha;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the thread looks at the stop flag while no request comes.
const POLL: Duration = Duration::from_millis(50);
/// Requesters tracked for rate limiting; a new one replaces the one seen longest ago.
const REQUESTERS_MAX: usize = 256;

pub(super) struct RequestServer {
    thread: JoinHandle<()>,
    pub(super) local_addr: SocketAddr,
}

impl RequestServer {
    pub(super) fn start(
        md: &MarketDataConfig,
        listen: SocketAddr,
        location: JournalLocation,
        stats: Arc<FeedStats>,
        stop: Arc<AtomicBool>,
    ) -> Result<RequestServer, MarketDataError> {
        let fail = |action, source| MarketDataError::Socket { action, addr: listen.to_string(), source };
        let socket = UdpSocket::bind(listen).map_err(|e| fail("bind the retransmission server to", e))?;
        socket.set_read_timeout(Some(POLL)).map_err(|e| fail("set a read timeout on", e))?;
        let local_addr = socket.local_addr().map_err(|e| fail("read the address of", e))?;
        let server = Server {
            socket,
            session: session_field(&md.session),
            location,
            tail: None,
            packet: vec![0u8; md.max_packet_bytes as usize].into_boxed_slice(),
            records: Vec::with_capacity(md.max_messages_per_request as usize),
            payloads: Vec::with_capacity(md.max_packet_bytes as usize),
            max_messages: md.max_messages_per_request,
            limiter: RateLimiter::new(md.requests_per_second_per_requester),
            stats,
            stop,
        };
        let thread = std::thread::Builder::new()
            .name("petrel-feed-requests".into())
            .spawn(move || server.run())
            .map_err(|source| MarketDataError::Thread { name: "petrel-feed-requests", source })?;
        Ok(RequestServer { thread, local_addr })
    }

    pub(super) fn join(self) {
        let _ = self.thread.join();
    }
}

struct Server {
    socket: UdpSocket,
    session: Alpha<10>,
    location: JournalLocation,
    /// Kept between requests: listeners usually ask for what follows their last answer.
    tail: Option<JournalTail>,
    packet: Box<[u8]>,
    records: Vec<TailRecord>,
    payloads: Vec<u8>,
    max_messages: u32,
    limiter: RateLimiter,
    stats: Arc<FeedStats>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn run(mut self) {
        // One byte more than a request: a longer datagram shows as too long, not as a request.
        let mut buf = [0u8; HEADER_BYTES + 1];
        while !self.stop.load(Ordering::Acquire) {
            let Ok((n, from)) = self.socket.recv_from(&mut buf) else { continue };
            self.serve(&buf[..n], from);
        }
    }

    fn serve(&mut self, datagram: &[u8], from: SocketAddr) {
        if !self.limiter.allow(from, Instant::now()) {
            return bump(&self.stats.requests_rate_limited_total);
        }
        let Ok(request) = decode_request(datagram) else {
            return bump(&self.stats.requests_malformed_total);
        };
        if request.session != self.session {
            return bump(&self.stats.requests_wrong_session_total);
        }
        let recorded = self.stats.recorded_sequence.load(Ordering::Acquire);
        if request.sequence == 0 || request.count == 0 || request.sequence > recorded {
            return bump(&self.stats.requests_out_of_range_total);
        }
        let wanted = u64::from(request.count).min(u64::from(self.max_messages));
        let last = (request.sequence + wanted - 1).min(recorded);
        match self.read(request.sequence, last) {
            Ok(()) => self.answer(request.sequence, from),
            Err(e) => {
                // Retention or damage: the request cannot be answered.
                self.tail = None;
                bump(&self.stats.requests_out_of_range_total);
                tracing::debug!("retransmission of {} refused: {e}", request.sequence);
            }
        }
    }

    fn read(&mut self, first: u64, last: u64) -> Result<(), petrel_journal::JournalError> {
        let reusable = self.tail.as_ref().is_some_and(|t| t.next_sequence() == first);
        if !reusable {
            self.tail = Some(JournalTail::open(&self.location, first)?);
        }
        self.records.clear();
        self.payloads.clear();
        let tail = self.tail.as_mut().expect("opened above");
        tail.read(last, self.packet.len(), &mut self.records, &mut self.payloads)
    }

    fn answer(&mut self, first: u64, to: SocketAddr) {
        let mut builder = PacketBuilder::new(&mut self.packet).expect("max_packet_bytes holds a header");
        let mut taken = 0usize;
        for r in &self.records {
            if !builder.push(&self.payloads[r.payload_at..r.payload_at + r.payload_len]) {
                break;
            }
            taken += 1;
        }
        let count = builder.count();
        let packet = builder.finish(self.session, first);
        if self.socket.send_to(packet, to).is_err() {
            bump(&self.stats.send_errors_total);
            return;
        }
        // What did not fit was read past: the next request for it reopens the tail there.
        if taken < self.records.len() {
            self.tail = None;
        }
        bump(&self.stats.requests_served_total);
        add(&self.stats.retransmitted_messages_total, u64::from(count));
    }
}

/// Token buckets per requester: `rate` requests a second, bursts of up to `rate`.
struct RateLimiter {
    rate: u32,
    buckets: Vec<Bucket>,
}

#[derive(Clone, Copy)]
struct Bucket {
    from: SocketAddr,
    tokens: f64,
    seen: Instant,
}

impl RateLimiter {
    fn new(rate: u32) -> RateLimiter {
        RateLimiter { rate, buckets: Vec::with_capacity(REQUESTERS_MAX) }
    }

    fn allow(&mut self, from: SocketAddr, now: Instant) -> bool {
        let rate = f64::from(self.rate);
        let index = match self.buckets.iter().position(|b| b.from == from) {
            Some(i) => i,
            None if self.buckets.len() < REQUESTERS_MAX => {
                self.buckets.push(Bucket { from, tokens: rate, seen: now });
                self.buckets.len() - 1
            }
            None => {
                let oldest = (0..self.buckets.len()).min_by_key(|&i| self.buckets[i].seen).unwrap_or(0);
                self.buckets[oldest] = Bucket { from, tokens: rate, seen: now };
                oldest
            }
        };
        let bucket = &mut self.buckets[index];
        let refill = now.saturating_duration_since(bucket.seen).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.seen = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requester_gets_its_burst_then_its_rate_and_others_are_not_affected() {
        let mut limiter = RateLimiter::new(10);
        let t0 = Instant::now();
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        assert_eq!((0..20).filter(|_| limiter.allow(a, t0)).count(), 10, "a burst of `rate`");
        assert!(limiter.allow(b, t0), "another requester has its own bucket");
        assert!(!limiter.allow(a, t0));
        assert!(limiter.allow(a, t0 + Duration::from_millis(100)), "one token per 1/rate seconds");
        assert!(!limiter.allow(a, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_requester_seen_longest_ago() {
        let mut limiter = RateLimiter::new(1);
        let t0 = Instant::now();
        for port in 0..(REQUESTERS_MAX as u16 + 10) {
            let from = SocketAddr::from(([127, 0, 0, 1], port));
            assert!(limiter.allow(from, t0 + Duration::from_micros(u64::from(port))));
        }
        assert_eq!(limiter.buckets.len(), REQUESTERS_MAX);
    }
}
