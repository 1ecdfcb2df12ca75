//! The feed listener: a thread of its own that receives the engine's market-data feed
//! (TotalView-ITCH 5.0 over MoldUDP64, sent by unicast to `--feed-listen`), timestamps each
//! packet as it arrives, and joins every Add Order to its order's Accepted ([`FeedJoin`]).
//!
//! It never touches the sender or the OUCH receiver: the receiver hands it each Accepted
//! through a bounded ring and drops (and counts) a note when the ring is full rather than
//! wait. Everything it uses is allocated before the run; per packet it only reads, decodes in
//! place and records into fixed histograms.

use super::feed_join::{AckNote, FeedJoin, FeedLatency};
use super::Shared;
use crate::load::LoadError;
use petrel_proto::itch::Message;
use petrel_proto::moldudp64::decode_packet;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Accepted notes the ring holds: well over a second of new orders at the rates measured.
pub(super) const ACK_RING_NOTES: usize = 65_536;
/// A UDP datagram's largest payload.
const DATAGRAM_BYTES_MAX: usize = 65_535;
/// How long the listener waits for a packet before it looks at the ring again. The notes carry
/// their own receive times, so draining late costs nothing but ring room (10 ms of Accepted
/// notes is far below [`ACK_RING_NOTES`]); a shorter wait would only wake this thread more
/// often on the cores the engine and the load share.
const FEED_POLL: Duration = Duration::from_millis(10);
/// The kernel's receive buffer asked for: a burst of packets while this thread is descheduled.
const SOCKET_RECEIVE_BYTES: usize = 4 << 20;

/// What the feed listener saw over the run.
#[derive(Clone, Debug)]
pub struct FeedResult {
    pub latency: FeedLatency,
    /// MoldUDP64 packets received (heartbeats and End of Session included).
    pub packets: u64,
    /// ITCH messages received.
    pub messages: u64,
    /// Add Orders (`A` and `F`) received, of any order, warm-up included.
    pub add_orders: u64,
    /// Packets whose sequence number was above the next one expected: a gap.
    pub gaps: u64,
    /// Messages the gaps skipped.
    pub gap_messages: u64,
    /// Packets or messages that did not decode.
    pub malformed: u64,
    /// Accepted notes the OUCH receiver dropped because the ring was full: those orders are
    /// not joined.
    pub notes_dropped: u64,
}

pub(super) struct FeedListener {
    socket: UdpSocket,
    notes: Receiver<AckNote>,
    join: FeedJoin,
    buf: Box<[u8]>,
    /// The sequence number the next packet should start with; `None` before the first.
    next_sequence: Option<u64>,
    result: FeedResult,
}

impl FeedListener {
    /// Binds `addr` (before the sessions log in, so the whole run is heard) and the ring the
    /// OUCH receiver writes to.
    pub(super) fn bind(addr: SocketAddr) -> Result<(FeedListener, SyncSender<AckNote>), LoadError> {
        let usage = |what: &str, e: std::io::Error| {
            LoadError::Usage(format!("--feed-listen {addr}: cannot {what}: {e} (is another listener on it?)"))
        };
        let socket = UdpSocket::bind(addr).map_err(|e| usage("bind it", e))?;
        socket.set_read_timeout(Some(FEED_POLL)).map_err(|e| usage("set its timeout", e))?;
        let _ =
            nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBuf, &SOCKET_RECEIVE_BYTES);
        let (tx, notes) = sync_channel(ACK_RING_NOTES);
        let listener = FeedListener {
            socket,
            notes,
            join: FeedJoin::new(),
            buf: vec![0u8; DATAGRAM_BYTES_MAX].into_boxed_slice(),
            next_sequence: None,
            result: FeedResult {
                latency: FeedLatency::new(),
                packets: 0,
                messages: 0,
                add_orders: 0,
                gaps: 0,
                gap_messages: 0,
                malformed: 0,
                notes_dropped: 0,
            },
        };
        Ok((listener, tx))
    }

    /// Starts the thread. It ends once the OUCH receiver has ended (the ring's sender is
    /// dropped) and the ring is drained.
    pub(super) fn spawn(self, shared: Arc<Shared>) -> Result<JoinHandle<FeedResult>, LoadError> {
        std::thread::Builder::new()
            .name("load-feed".into())
            .spawn(move || self.run(&shared))
            .map_err(|e| LoadError::Usage(format!("cannot start the feed listener thread: {e}")))
    }

    fn run(mut self, shared: &Shared) -> FeedResult {
        loop {
            let receiver_ended = self.drain_notes();
            match self.socket.recv(&mut self.buf) {
                Ok(n) => {
                    let now_ns = shared.now_ns();
                    self.packet(n, now_ns);
                }
                Err(_) if receiver_ended => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                // Nothing else is expected of a bound UDP socket; whatever it is must not stop
                // the load, nor spin this thread on the cores the load shares.
                Err(_) => std::thread::sleep(FEED_POLL),
            }
        }
        self.result.notes_dropped = shared.feed_notes_dropped.load(Ordering::Relaxed);
        self.result.latency = self.join.into_latency();
        self.result
    }

    /// Joins every note waiting in the ring; true once the OUCH receiver has ended.
    fn drain_notes(&mut self) -> bool {
        loop {
            match self.notes.try_recv() {
                Ok(note) => self.join.acked(note),
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }

    /// One MoldUDP64 packet of `len` bytes in the buffer, received at `now_ns`.
    fn packet(&mut self, len: usize, now_ns: u64) {
        let r = &mut self.result;
        r.packets += 1;
        let Ok((header, messages)) = decode_packet(&self.buf[..len]) else {
            r.malformed += 1;
            return;
        };
        if header.is_end_of_session() {
            return;
        }
        // A heartbeat carries the next sequence number, a data packet its first: either above
        // the one expected means messages were lost.
        let expected = *self.next_sequence.get_or_insert(header.sequence);
        if header.sequence > expected {
            r.gaps += 1;
            r.gap_messages += header.sequence - expected;
        }
        let next = header.sequence + u64::from(header.count);
        self.next_sequence = Some(expected.max(next));
        for message in messages {
            r.messages += 1;
            match message.map(Message::decode) {
                Ok(Ok(Message::AddOrder(add))) => {
                    r.add_orders += 1;
                    self.join.added(add.order_ref, now_ns);
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => r.malformed += 1,
            }
        }
    }
}
