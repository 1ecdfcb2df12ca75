//! The physical baseline: a bare TCP server that answers each SoupBinTCP packet at once with
//! the message the engine would answer it with (Order Accepted for an Enter Order, Order
//! Replaced for a Replace, Order Canceled for a Cancel), of the same size, and nothing else:
//! no sequencing, matching or journal. Measured with the same client, it is the round trip
//! this host's loopback TCP, scheduler and client cost.
//!
//! One blocking thread per connection: the quickest way for a bare server to answer on a
//! small host, and no batching to flatter it.

use petrel_proto::ouch::{self, Inbound, Outbound};
use petrel_proto::soupbin::{
    self, next_client_packet, ClientPacket, FrameLimits, LoginAccepted, ServerPacket, SessionName,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections served at once; more are closed on accept.
pub const ECHO_CONNECTIONS_MAX: usize = 256;
const RX_BUFFER_BYTES: usize = 64 * 1024;
/// Answers are gathered per read and written with one send; bounded by what one read holds.
const TX_BUFFER_BYTES: usize = 4 * RX_BUFFER_BYTES;
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// A running echo server; stops (and joins its threads) when dropped.
pub struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Listens on `addr` (port 0 picks a free one) and serves in background threads.
    pub fn start(addr: SocketAddr) -> std::io::Result<EchoServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor_stop = stop.clone();
        let acceptor = std::thread::Builder::new()
            .name("echo-accept".into())
            .spawn(move || accept_loop(listener, &acceptor_stop))?;
        Ok(EchoServer { addr, stop, acceptor: Some(acceptor) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process ends (the `echo-server` command).
    pub fn wait(mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, stop: &Arc<AtomicBool>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        connections.retain(|c| !c.is_finished());
        match listener.accept() {
            Ok((stream, _)) => {
                if connections.len() >= ECHO_CONNECTIONS_MAX {
                    continue; // dropping the stream closes it
                }
                let stop = stop.clone();
                if let Ok(handle) =
                    std::thread::Builder::new().name("echo-conn".into()).spawn(move || serve(stream, &stop))
                {
                    connections.push(handle);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

/// Serves one connection until the client logs out or closes, or the server stops.
fn serve(mut stream: TcpStream, stop: &AtomicBool) {
    if stream.set_nodelay(true).is_err() || stream.set_read_timeout(Some(ACCEPT_POLL)).is_err() {
        return;
    }
    let mut rx = vec![0u8; RX_BUFFER_BYTES];
    let mut tx = vec![0u8; TX_BUFFER_BYTES];
    let mut len = 0;
    let mut order_reference = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut rx[len..]) {
            Ok(0) => return,
            Ok(n) => len += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        let mut used = 0;
        let mut out = 0;
        let mut close = false;
        loop {
            match next_client_packet(&rx[used..len], FrameLimits::CLIENT_DEFAULT) {
                Ok(Some((packet, n))) => {
                    used += n;
                    match answer(&packet, &mut tx[out..], &mut order_reference) {
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
        rx.copy_within(used..len, 0);
        len -= used;
        if out > 0 && stream.write_all(&tx[..out]).is_err() {
            return;
        }
        if close {
            return;
        }
    }
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
