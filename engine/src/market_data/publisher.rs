//! The `petrel-feed` thread: sends what the gateway committed to the feed journal as MoldUDP64
//! packets, to the multicast group and every unicast destination; a heartbeat when nothing was
//! sent for `heartbeat_interval_ms`; End of Session at shutdown, after the last message.
//!
//! It reads the journal with a `JournalTail` up to the sequence the gateway announced as
//! written (`FeedStats::recorded_sequence`), so it never reads half a commit, and sleeps
//! (`thread::park`) until the gateway's next commit wakes it or a heartbeat is due. Sending
//! starts at the first message this process records: what an earlier process recorded but did
//! not send is there for listeners to request (a gap shows at the first packet).

use super::stats::{add, bump, FeedStats};
use super::MarketDataError;
use crate::config::MarketDataConfig;
use petrel_journal::{JournalLocation, JournalTail, TailRecord};
use petrel_proto::moldudp64::{Header, PacketBuilder, END_OF_SESSION_COUNT, HEADER_BYTES, HEARTBEAT_COUNT};
use petrel_proto::Alpha;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a parked publisher sleeps before looking again (a missed wake costs this).
const PARK_MAX: Duration = Duration::from_millis(50);
/// End of Session is sent this many times: it is UDP, and a listener that misses it waits for
/// heartbeats that never come.
const END_OF_SESSION_REPEATS: u32 = 3;

pub(super) struct Publisher {
    thread: JoinHandle<()>,
}

impl Publisher {
    pub(super) fn start(
        md: &MarketDataConfig,
        location: JournalLocation,
        first_sequence: u64,
        stats: Arc<FeedStats>,
        stop: Arc<AtomicBool>,
    ) -> Result<Publisher, MarketDataError> {
        let sender = Sender::open(md)?;
        let session = session_field(&md.session);
        let state = PublisherState {
            sender,
            session,
            location,
            tail: None,
            next_sequence: first_sequence,
            packet: vec![0u8; md.max_packet_bytes as usize].into_boxed_slice(),
            records: Vec::with_capacity(4096),
            payloads: Vec::with_capacity(md.max_packet_bytes as usize * 2),
            heartbeat: Duration::from_millis(md.heartbeat_interval_ms),
            stats,
            stop,
        };
        let thread = std::thread::Builder::new()
            .name("petrel-feed".into())
            .spawn(move || state.run())
            .map_err(|source| MarketDataError::Thread { name: "petrel-feed", source })?;
        Ok(Publisher { thread })
    }

    /// The gateway committed more: wake the thread if it sleeps.
    pub(super) fn wake(&self) {
        self.thread.thread().unpark();
    }

    pub(super) fn join(self) {
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// The configured session as its wire field (checked by the configuration).
pub(super) fn session_field(session: &str) -> Alpha<10> {
    Alpha::new("session", session).expect("market_data.session is checked by the configuration")
}

/// One socket, every destination.
pub(super) struct Sender {
    socket: UdpSocket,
    destinations: Vec<SocketAddr>,
}

impl Sender {
    fn open(md: &MarketDataConfig) -> Result<Sender, MarketDataError> {
        let bind: SocketAddr = match md.multicast_interface {
            Some(ip) => (ip, 0).into(),
            None => ([0, 0, 0, 0], 0).into(),
        };
        let fail = |action, source| MarketDataError::Socket { action, addr: bind.to_string(), source };
        let socket = UdpSocket::bind(bind).map_err(|e| fail("bind the feed's socket to", e))?;
        if md.multicast_group.is_some() {
            socket.set_multicast_loop_v4(true).map_err(|e| fail("set IP_MULTICAST_LOOP on", e))?;
            socket.set_multicast_ttl_v4(md.multicast_ttl).map_err(|e| fail("set IP_MULTICAST_TTL on", e))?;
            if let Some(ip) = md.multicast_interface {
                set_multicast_if(&socket, ip).map_err(|e| fail("set IP_MULTICAST_IF on", e))?;
            }
        }
        let destinations = md.multicast_group.iter().chain(md.destinations.iter()).copied().collect();
        Ok(Sender { socket, destinations })
    }

    /// Sends one packet to every destination; true when every send went out.
    fn send(&self, packet: &[u8], stats: &FeedStats) -> bool {
        let mut all = true;
        for destination in &self.destinations {
            if self.socket.send_to(packet, destination).is_err() {
                bump(&stats.send_errors_total);
                all = false;
            }
        }
        all
    }
}

/// `IP_MULTICAST_IF` by address (std has no setter for it).
fn set_multicast_if(socket: &UdpSocket, ip: std::net::Ipv4Addr) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let addr = libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) };
    // SAFETY: a valid socket descriptor and a pointer to an in_addr of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&addr as *const libc::in_addr).cast(),
            std::mem::size_of::<libc::in_addr>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

struct PublisherState {
    sender: Sender,
    session: Alpha<10>,
    location: JournalLocation,
    /// Opened at the first message to send (the journal may not hold it yet at start).
    tail: Option<JournalTail>,
    next_sequence: u64,
    packet: Box<[u8]>,
    records: Vec<TailRecord>,
    payloads: Vec<u8>,
    heartbeat: Duration,
    stats: Arc<FeedStats>,
    stop: Arc<AtomicBool>,
}

impl PublisherState {
    fn run(mut self) {
        let mut last_sent = Instant::now();
        loop {
            // Read before the stop flag: what the gateway committed before stopping is sent.
            let stopping = self.stop.load(Ordering::Acquire);
            let recorded = self.stats.recorded_sequence.load(Ordering::Acquire);
            if recorded >= self.next_sequence {
                if self.send_through(recorded) {
                    last_sent = Instant::now();
                }
                continue;
            }
            if stopping {
                for _ in 0..END_OF_SESSION_REPEATS {
                    self.send_bare(END_OF_SESSION_COUNT);
                }
                bump(&self.stats.end_of_session_total);
                return;
            }
            let idle = last_sent.elapsed();
            if idle >= self.heartbeat {
                self.send_bare(HEARTBEAT_COUNT);
                bump(&self.stats.heartbeats_total);
                last_sent = Instant::now();
                continue;
            }
            std::thread::park_timeout((self.heartbeat - idle).min(PARK_MAX));
        }
    }

    /// Sends the messages up to `recorded` (one read's worth); true when something was sent.
    fn send_through(&mut self, recorded: u64) -> bool {
        if self.tail.is_none() {
            match JournalTail::open(&self.location, self.next_sequence) {
                Ok(tail) => self.tail = Some(tail),
                Err(e) => return self.skip_unreadable(recorded, &e),
            }
        }
        let tail = self.tail.as_mut().expect("opened above");
        self.records.clear();
        self.payloads.clear();
        let max_bytes = self.packet.len() * 16;
        if let Err(e) = tail.read(recorded, max_bytes, &mut self.records, &mut self.payloads) {
            self.tail = None;
            return self.skip_unreadable(recorded, &e);
        }
        let mut sent = false;
        let mut at = 0;
        while at < self.records.len() {
            let first = self.records[at].sequence;
            let mut builder = PacketBuilder::new(&mut self.packet).expect("max_packet_bytes holds a header");
            while at < self.records.len() {
                let r = self.records[at];
                if !builder.push(&self.payloads[r.payload_at..r.payload_at + r.payload_len]) {
                    break;
                }
                at += 1;
            }
            let count = u64::from(builder.count());
            let packet = builder.finish(self.session, first);
            self.sender.send(packet, &self.stats);
            bump(&self.stats.packets_total);
            add(&self.stats.bytes_total, packet.len() as u64);
            self.next_sequence = first + count;
            self.stats.sent_sequence.store(self.next_sequence - 1, Ordering::Relaxed);
            sent = true;
        }
        sent
    }

    /// The journal cannot be read where the publisher stands (a damaged or removed segment):
    /// counted, and the publisher moves on to what was recorded since, so the live feed goes
    /// on; listeners see the gap (and a request for it is refused).
    fn skip_unreadable(&mut self, recorded: u64, error: &petrel_journal::JournalError) -> bool {
        bump(&self.stats.journal_errors_total);
        tracing::error!(
            "market-data publisher cannot read the feed journal at {}: {error}",
            self.next_sequence
        );
        self.next_sequence = recorded + 1;
        self.stats.sent_sequence.store(recorded, Ordering::Relaxed);
        false
    }

    fn send_bare(&mut self, count: u16) {
        let header = Header { session: self.session, sequence: self.next_sequence, count };
        let n = header.encode(&mut self.packet[..HEADER_BYTES]).expect("a header fits");
        self.sender.send(&self.packet[..n], &self.stats);
        add(&self.stats.bytes_total, n as u64);
    }
}
