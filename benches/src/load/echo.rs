//! The physical baseline: a bare TCP server that answers each SoupBinTCP packet at once with
//! the message the engine would answer it with (Order Accepted for an Enter Order, Order
//! Replaced for a Replace, Order Canceled for a Cancel), of the same size, and nothing else:
//! no sequencing, matching or journal. Measured with the same client, it is the round trip
//! this host's loopback TCP, scheduler and client cost.
//!
//! One thread answers every connection from an epoll loop, reading each socket dry and
//! answering a whole read with one write: the shape of the engine's gateway (one network
//! thread), without its work. A thread per connection would cost a wake-up per message and,
//! on a small host, measure the scheduler more than the network.

use nix::poll::PollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use petrel_proto::ouch::{self, Inbound, Outbound};
use petrel_proto::soupbin::{
    self, next_client_packet, ClientPacket, FrameLimits, LoginAccepted, ServerPacket, SessionName,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Connections served at once; more are closed on accept.
pub const ECHO_CONNECTIONS_MAX: usize = 256;
const RX_BUFFER_BYTES: usize = 64 * 1024;
/// Answers are gathered per read and written with one send; bounded by what one read holds.
const TX_BUFFER_BYTES: usize = 4 * RX_BUFFER_BYTES;

/// A running echo server; stops (and joins its thread) when dropped.
pub struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Listens on `addr` (port 0 picks a free one) and serves from a background thread.
    pub fn start(addr: SocketAddr) -> std::io::Result<EchoServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER_TOKEN))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("echo-server".into())
            .spawn(move || serve(&listener, &epoll, &thread_stop))?;
        Ok(EchoServer { addr, stop, thread: Some(thread) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process ends (the `echo-server` command).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const LISTENER_TOKEN: u64 = u64::MAX;
/// How long the loop waits for events before it looks at the stop flag.
const POLL_TIMEOUT_MS: u16 = 50;

struct Conn {
    stream: TcpStream,
    rx: Box<[u8]>,
    len: usize,
    order_reference: u64,
}

fn serve(listener: &TcpListener, epoll: &Epoll, stop: &AtomicBool) {
    let mut conns: Vec<Option<Conn>> = (0..ECHO_CONNECTIONS_MAX).map(|_| None).collect();
    let mut tx = vec![0u8; TX_BUFFER_BYTES];
    let mut events = vec![EpollEvent::empty(); ECHO_CONNECTIONS_MAX + 1];
    while !stop.load(Ordering::Relaxed) {
        let n = match epoll.wait(&mut events, PollTimeout::from(POLL_TIMEOUT_MS)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        };
        for event in &events[..n] {
            if event.data() == LISTENER_TOKEN {
                accept_all(listener, epoll, &mut conns);
                continue;
            }
            let slot = event.data() as usize;
            let keep = conns[slot].as_mut().is_some_and(|c| serve_conn(c, &mut tx));
            if !keep {
                if let Some(c) = conns[slot].take() {
                    let _ = epoll.delete(&c.stream);
                }
            }
        }
    }
}

fn accept_all(listener: &TcpListener, epoll: &Epoll, conns: &mut [Option<Conn>]) {
    loop {
        let Ok((stream, _)) = listener.accept() else { return };
        // Beyond the bound the stream is dropped, which closes it.
        let Some(slot) = conns.iter().position(Option::is_none) else { continue };
        if stream.set_nodelay(true).is_err() || stream.set_nonblocking(true).is_err() {
            continue;
        }
        if epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, slot as u64)).is_err() {
            continue;
        }
        conns[slot] = Some(Conn {
            stream,
            rx: vec![0u8; RX_BUFFER_BYTES].into_boxed_slice(),
            len: 0,
            order_reference: 0,
        });
    }
}

/// Reads the socket dry, answering as it goes; false when the connection is over.
fn serve_conn(c: &mut Conn, tx: &mut [u8]) -> bool {
    loop {
        match c.stream.read(&mut c.rx[c.len..]) {
            Ok(0) => return false,
            Ok(n) => c.len += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
        let mut used = 0;
        let mut out = 0;
        let mut close = false;
        loop {
            match next_client_packet(&c.rx[used..c.len], FrameLimits::CLIENT_DEFAULT) {
                Ok(Some((packet, n))) => {
                    used += n;
                    match answer(&packet, &mut tx[out..], &mut c.order_reference) {
                        Answer::Bytes(k) => out += k,
                        Answer::Nothing => {}
                        Answer::Last(k) => {
                            out += k;
                            close = true;
                            break;
                        }
                        Answer::Close => {
                            close = true;
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    close = true;
                    break;
                }
            }
        }
        c.rx.copy_within(used..c.len, 0);
        c.len -= used;
        if out > 0 && write_all_nonblocking(&mut c.stream, &tx[..out]).is_err() {
            return false;
        }
        if close {
            return false;
        }
    }
}

/// Writes everything, waiting for the socket to drain when it is full (a client that reads
/// its answers never keeps it full for long).
fn write_all_nonblocking(stream: &mut TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let fd = std::os::fd::AsFd::as_fd(&*stream);
                let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
                nix::poll::poll(&mut fds, PollTimeout::from(1_000u16))?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

enum Answer {
    Bytes(usize),
    Nothing,
    /// These bytes, then close.
    Last(usize),
    Close,
}

fn answer(packet: &ClientPacket<'_>, buf: &mut [u8], order_reference: &mut u64) -> Answer {
    match packet {
        ClientPacket::LoginRequest(_) => {
            let accepted = LoginAccepted {
                session: SessionName::new("session", "ECHO").expect("a valid session name"),
                sequence_number: 1,
            };
            Answer::Bytes(accepted.encode(buf).expect("fits the answer buffer"))
        }
        ClientPacket::UnsequencedData(data) => {
            let Ok(inbound) = Inbound::decode(data) else { return Answer::Close };
            *order_reference += 1;
            let message = reply(&inbound, *order_reference);
            let n =
                soupbin::encode_packet_with(buf, soupbin::packet_type::SEQUENCED_DATA, |b| message.encode(b))
                    .expect("one answer per inbound message fits: the answer buffer is 4x the read buffer");
            Answer::Bytes(n)
        }
        ClientPacket::LogoutRequest => {
            // End of Session, then close: as the engine does on a logout.
            Answer::Last(ServerPacket::EndOfSession.encode(buf).expect("fits the answer buffer"))
        }
        ClientPacket::ClientHeartbeat | ClientPacket::Debug(_) => Answer::Nothing,
    }
}

/// The engine's answer to `inbound`, built from the request's own fields.
pub fn reply<'a>(inbound: &Inbound<'a>, order_reference: u64) -> Outbound<'a> {
    match *inbound {
        Inbound::EnterOrder(o) => Outbound::OrderAccepted(ouch::OrderAccepted {
            timestamp_ns: 0,
            user_ref_num: o.user_ref_num,
            side: o.side,
            quantity: o.quantity,
            symbol: o.symbol,
            price: o.price,
            time_in_force: o.time_in_force,
            display: o.display,
            order_reference_number: order_reference,
            capacity: o.capacity,
            intermarket_sweep: o.intermarket_sweep,
            cross_type: o.cross_type,
            order_state: ouch::OrderState::Live,
            cl_ord_id: o.cl_ord_id,
            appendage: ouch::Appendage::EMPTY,
        }),
        Inbound::ReplaceOrder(r) => Outbound::OrderReplaced(ouch::OrderReplaced {
            timestamp_ns: 0,
            orig_user_ref_num: r.orig_user_ref_num,
            user_ref_num: r.user_ref_num,
            side: ouch::Side::Buy,
            quantity: r.quantity,
            symbol: ouch::Symbol::BLANK,
            price: r.price,
            time_in_force: r.time_in_force,
            display: r.display,
            order_reference_number: order_reference,
            capacity: ouch::Capacity::Agency,
            intermarket_sweep: r.intermarket_sweep,
            cross_type: ouch::CrossType::ContinuousMarket,
            order_state: ouch::OrderState::Live,
            cl_ord_id: r.cl_ord_id,
            appendage: ouch::Appendage::EMPTY,
        }),
        Inbound::CancelOrder(c) => Outbound::OrderCanceled(ouch::OrderCanceled {
            timestamp_ns: 0,
            user_ref_num: c.user_ref_num,
            quantity: c.quantity,
            reason: ouch::CancelReason::UserRequested,
        }),
        Inbound::ModifyOrder(ouch::ModifyOrder { user_ref_num, .. })
        | Inbound::MassCancel(ouch::MassCancel { user_ref_num, .. }) => {
            Outbound::CancelReject { timestamp_ns: 0, user_ref_num }
        }
        Inbound::AccountQuery => Outbound::AccountQueryResponse(ouch::AccountQueryResponse {
            timestamp_ns: 0,
            next_user_ref_num: 1,
        }),
    }
}
