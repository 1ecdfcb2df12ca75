//! The receiver: one thread for all sessions, woken by epoll, reading each ready socket once
//! and timestamping what the read returned. One thread rather than one per session: on a
//! small host a wake-up per message per session measures the scheduler, not the target.

use super::feed_join::AckNote;
use super::result::new_histogram;
use super::session::{io_error, Session};
use super::{Shared, PACKET_BYTES_MAX};
use crate::load::LoadError;
use hdrhistogram::Histogram;
use nix::poll::PollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use petrel_proto::ouch::{Outbound, TimeInForce};
use petrel_proto::soupbin::{next_server_packet, FrameLimits, ServerPacket};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Read buffer of one session: many answers, far above the largest packet.
pub(super) const RX_BUFFER_BYTES: usize = 256 * 1024;
/// How long the receiver waits for data before it looks at the stop flag.
const RX_POLL_MS: u16 = 100;

/// One session's receive side: its socket and the bytes not yet cut into packets.
struct Rx {
    stream: TcpStream,
    user: String,
    buf: Box<[u8]>,
    len: usize,
    done: bool,
}

/// Every session's receive side, and the round trips measured so far.
pub(super) struct Receiver {
    rxs: Vec<Rx>,
    latency_ns: Histogram<u64>,
    /// The feed listener's ring, when the run listens to the feed: each Accepted of an order
    /// that may rest is noted there. Dropped with the receiver, which ends the listener.
    feed: Option<SyncSender<AckNote>>,
}

impl Receiver {
    /// `leftovers[i]`: the bytes that came after session `i`'s Login Accepted.
    pub(super) fn new(
        sessions: &[Session],
        leftovers: Vec<Vec<u8>>,
        feed: Option<SyncSender<AckNote>>,
    ) -> Result<Receiver, LoadError> {
        let mut rxs = Vec::with_capacity(sessions.len());
        for (session, rest) in sessions.iter().zip(leftovers) {
            let mut buf = vec![0u8; RX_BUFFER_BYTES].into_boxed_slice();
            assert!(rest.len() <= buf.len(), "login leftovers are bounded by the login buffer");
            buf[..rest.len()].copy_from_slice(&rest);
            rxs.push(Rx {
                stream: session.reader()?,
                user: session.user().into(),
                buf,
                len: rest.len(),
                done: false,
            });
        }
        Ok(Receiver { rxs, latency_ns: new_histogram(), feed })
    }

    /// Starts the receiver thread; it returns the round trips once every session has ended
    /// after the stop flag, or the first error (which also stops the sender).
    pub(super) fn spawn(
        self,
        shared: Arc<Shared>,
    ) -> Result<JoinHandle<Result<Histogram<u64>, LoadError>>, LoadError> {
        std::thread::Builder::new()
            .name("load-rx".into())
            .spawn(move || self.run(&shared))
            .map_err(|e| LoadError::Usage(format!("cannot start the receiver thread: {e}")))
    }

    fn run(mut self, shared: &Shared) -> Result<Histogram<u64>, LoadError> {
        match self.receive_all(shared) {
            Ok(()) => Ok(self.latency_ns),
            Err(e) => {
                shared.failed.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    fn receive_all(&mut self, shared: &Shared) -> Result<(), LoadError> {
        let epoll =
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| io_error(&self.rxs[0].user, e.into()))?;
        for (i, rx) in self.rxs.iter().enumerate() {
            epoll
                .add(&rx.stream, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                .map_err(|e| io_error(&rx.user, e.into()))?;
        }
        // Bytes that came with the Login Accepted.
        for (session, rx) in self.rxs.iter_mut().enumerate() {
            let now_ns = shared.now_ns();
            rx.process(session, now_ns, shared, &mut self.latency_ns, self.feed.as_ref())?;
        }
        let mut events = vec![EpollEvent::empty(); self.rxs.len()];
        while self.rxs.iter().any(|rx| !rx.done) {
            let n = match epoll.wait(&mut events, PollTimeout::from(RX_POLL_MS)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io_error(&self.rxs[0].user, e.into())),
            };
            if n == 0 && shared.stop.load(Ordering::SeqCst) {
                // Logged out and nothing more within the poll interval: done.
                break;
            }
            for event in &events[..n] {
                let session = event.data() as usize;
                if !self.rxs[session].done {
                    self.read_ready(session, &epoll, shared)?;
                }
            }
        }
        Ok(())
    }

    /// Reads a ready session once and handles what came; a session that ended after the stop
    /// flag is done and leaves the epoll set.
    fn read_ready(&mut self, session: usize, epoll: &Epoll, shared: &Shared) -> Result<(), LoadError> {
        let rx = &mut self.rxs[session];
        let read = rx.stream.read(&mut rx.buf[rx.len..]);
        let now_ns = shared.now_ns();
        match read {
            Ok(0) => {
                if !shared.stop.load(Ordering::SeqCst) {
                    return Err(LoadError::Closed { user: rx.user.clone() });
                }
                rx.done = true;
            }
            Ok(n) => {
                rx.len += n;
                rx.process(session, now_ns, shared, &mut self.latency_ns, self.feed.as_ref())?;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) if shared.stop.load(Ordering::SeqCst) && e.kind() == ErrorKind::ConnectionReset => {
                rx.done = true;
            }
            Err(source) => return Err(LoadError::Io { user: rx.user.clone(), source }),
        }
        if rx.done {
            let _ = epoll.delete(&rx.stream);
        }
        Ok(())
    }
}

impl Rx {
    /// Cuts the buffered bytes into packets and matches the answers, all received at `now_ns`.
    fn process(
        &mut self,
        session: usize,
        now_ns: u64,
        shared: &Shared,
        latency_ns: &mut Histogram<u64>,
        feed: Option<&SyncSender<AckNote>>,
    ) -> Result<(), LoadError> {
        let protocol = |user: &str, message: String| LoadError::Protocol { user: user.into(), message };
        let mut used = 0;
        loop {
            match next_server_packet(&self.buf[used..self.len], FrameLimits::new(PACKET_BYTES_MAX)) {
                Ok(Some((packet, n))) => {
                    match packet {
                        ServerPacket::SequencedData(data) => match Outbound::decode(data) {
                            Ok(message) => record_answer(&message, session, now_ns, shared, latency_ns, feed),
                            Err(e) => {
                                return Err(protocol(&self.user, format!("undecodable OUCH message: {e}")))
                            }
                        },
                        ServerPacket::EndOfSession => {
                            if !shared.stop.load(Ordering::SeqCst) {
                                return Err(LoadError::Closed { user: self.user.clone() });
                            }
                            self.done = true;
                        }
                        _ => {}
                    }
                    used += n;
                }
                Ok(None) => break,
                Err(e) => return Err(protocol(&self.user, format!("malformed packet: {e}"))),
            }
        }
        self.buf.copy_within(used..self.len, 0);
        self.len -= used;
        Ok(())
    }
}

/// Matches one message to its session's order in flight and, for a first answer to an order
/// intended after the warm-up, records its round trip from the intended send time and, for
/// an Accepted of an order that may rest, notes it for the feed listener.
fn record_answer(
    message: &Outbound<'_>,
    session: usize,
    now_ns: u64,
    shared: &Shared,
    latency_ns: &mut Histogram<u64>,
    feed: Option<&SyncSender<AckNote>>,
) {
    let intended_ns = shared.in_flight[session].lock().expect("session lock").answer(message);
    let Some(intended_ns) = intended_ns.filter(|&t| t >= shared.warmup_ns) else { return };
    latency_ns.saturating_record(now_ns.saturating_sub(intended_ns));
    if let (Some(feed), Outbound::OrderAccepted(a)) = (feed, message) {
        if a.time_in_force != TimeInForce::ImmediateOrCancel {
            let note = AckNote { order_ref: a.order_reference_number, intended_ns, acked_ns: now_ns };
            // Never wait for the listener: a full ring costs that order's join, not the run.
            if feed.try_send(note).is_err() {
                shared.feed_notes_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
