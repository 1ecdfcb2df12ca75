//! The `petrel-feed-snapshot` thread: a snapshot of the book for late joiners, in the spirit of
//! Nasdaq GLIMPSE. A subscriber connects over TCP and logs in with SoupBinTCP (any username and
//! password: the book is public, bind `snapshot_listen` where only subscribers reach it); it is
//! sent, as Sequenced Data, each instrument's Stock Directory and Stock Trading Action, an Add
//! Order for every resting order (by instrument, bids then asks, best price first, each level
//! in time priority), then End of Snapshot (`G`) with the sequence number of the next live feed
//! message to apply, then End of Session; the connection closes. The subscriber applies the
//! live feed from that number on (and requests what it missed from the retransmission server).
//!
//! The book is the feed's own ([`Replica`]), kept by reading the feed journal as the publisher
//! does, so a snapshot equals what a listener that saw every message holds, as of one feed
//! sequence number. Subscribers are served one at a time, each bounded by socket timeouts.

use super::replica::Replica;
use super::stats::FeedStats;
use super::MarketDataError;
use petrel_journal::{JournalLocation, JournalTail, TailRecord};
use petrel_proto::itch::end_of_snapshot;
use petrel_proto::soupbin::{self, packet_type, ClientPacket, FrameLimits, LoginAccepted};
use petrel_proto::Alpha;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the thread looks for subscribers and new feed messages while idle.
const POLL: Duration = Duration::from_millis(20);
/// A subscriber that sends no login or reads nothing for this long is cut off.
const SUBSCRIBER_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct SnapshotServer {
    thread: JoinHandle<()>,
}

impl SnapshotServer {
    pub(super) fn start(
        session: Alpha<10>,
        listen: SocketAddr,
        location: JournalLocation,
        stats: Arc<FeedStats>,
        stop: Arc<AtomicBool>,
    ) -> Result<SnapshotServer, MarketDataError> {
        let fail = |action, source| MarketDataError::Socket { action, addr: listen.to_string(), source };
        let listener =
            TcpListener::bind(listen).map_err(|e| fail("listen for snapshot subscribers on", e))?;
        listener.set_nonblocking(true).map_err(|e| fail("make non-blocking", e))?;
        let mut server =
            Server { session, listener, location, tail: None, replica: Replica::default(), stats, stop };
        let thread = std::thread::Builder::new()
            .name("petrel-feed-snapshot".into())
            .spawn(move || server.run())
            .map_err(|source| MarketDataError::Thread { name: "petrel-feed-snapshot", source })?;
        Ok(SnapshotServer { thread })
    }

    pub(super) fn join(self) {
        let _ = self.thread.join();
    }
}

struct Server {
    session: Alpha<10>,
    listener: TcpListener,
    location: JournalLocation,
    tail: Option<JournalTail>,
    replica: Replica,
    stats: Arc<FeedStats>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn run(&mut self) {
        let mut records: Vec<TailRecord> = Vec::with_capacity(4096);
        let mut payloads: Vec<u8> = Vec::with_capacity(1 << 20);
        while !self.stop.load(Ordering::Acquire) {
            self.catch_up(&mut records, &mut payloads);
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    // Whatever was recorded up to now is in the snapshot.
                    self.catch_up(&mut records, &mut payloads);
                    let served = self.serve(stream);
                    let counter = if served.is_ok() {
                        &self.stats.snapshot_sessions_total
                    } else {
                        &self.stats.snapshot_failed_total
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = served {
                        tracing::info!(%peer, "snapshot subscriber dropped: {e}");
                    }
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// Applies every message recorded so far to the replica.
    fn catch_up(&mut self, records: &mut Vec<TailRecord>, payloads: &mut Vec<u8>) {
        loop {
            let recorded = self.stats.recorded_sequence.load(Ordering::Acquire);
            if recorded <= self.replica.through {
                return;
            }
            if self.tail.is_none() {
                match JournalTail::open(&self.location, self.replica.through + 1) {
                    Ok(tail) => self.tail = Some(tail),
                    Err(e) => return tracing::error!("snapshot replica cannot read the feed journal: {e}"),
                }
            }
            records.clear();
            payloads.clear();
            let tail = self.tail.as_mut().expect("opened above");
            if let Err(e) = tail.read(recorded, 1 << 20, records, payloads) {
                self.tail = None;
                return tracing::error!("snapshot replica cannot read the feed journal: {e}");
            }
            for r in records.iter() {
                self.replica.apply(r.sequence, &payloads[r.payload_at..r.payload_at + r.payload_len]);
            }
        }
    }

    fn serve(&mut self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(SUBSCRIBER_TIMEOUT))?;
        stream.set_write_timeout(Some(SUBSCRIBER_TIMEOUT))?;
        stream.set_nodelay(true)?;
        read_login(&mut stream)?;
        let mut out = Vec::with_capacity(64 << 10);
        let mut packet = [0u8; 64];
        let accepted = LoginAccepted { session: self.session, sequence_number: 1 };
        let n = accepted.encode(&mut packet).map_err(std::io::Error::other)?;
        out.extend_from_slice(&packet[..n]);
        let next = self.replica.through + 1;
        for message in self.replica.snapshot().iter().map(Vec::as_slice).chain([&end_of_snapshot(next)[..]]) {
            let n = soupbin::encode_packet(&mut packet, packet_type::SEQUENCED_DATA, message)
                .map_err(std::io::Error::other)?;
            out.extend_from_slice(&packet[..n]);
            if out.len() >= 60 << 10 {
                stream.write_all(&out)?;
                out.clear();
            }
        }
        let n = soupbin::encode_packet(&mut packet, packet_type::END_OF_SESSION, &[])
            .map_err(std::io::Error::other)?;
        out.extend_from_slice(&packet[..n]);
        stream.write_all(&out)?;
        stream.flush()
    }
}

/// Reads the subscriber's Login Request (what it holds is not checked: see the module docs).
fn read_login(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 64];
    let mut len = 0usize;
    loop {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before logging in"));
        }
        len += n;
        match soupbin::next_client_packet(&buf[..len], FrameLimits::new(buf.len())) {
            Ok(Some((ClientPacket::LoginRequest(_), _))) => return Ok(()),
            Ok(Some(_)) => return Err(std::io::Error::other("the first packet is not a Login Request")),
            Ok(None) if len < buf.len() => {}
            Ok(None) | Err(_) => return Err(std::io::Error::other("not a SoupBinTCP Login Request")),
        }
    }
}
