//! A small OUCH 5.0 / SoupBinTCP client for tests, built on petrel-proto's framer and decoders
//! (an independent client is exercised through [`crate::venv`]). It sends what a test asks,
//! byte for byte, and gives back what the server sent, decoded into owned values.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use petrel_proto::ouch::Outbound;
use petrel_proto::soupbin::{next_server_packet, FrameLimits, ServerPacket};

pub use petrel_proto::ouch::RejectReason as OuchReject;
pub use petrel_proto::soupbin::LoginRejectReason;

/// How long a read waits for the server before the test fails: far beyond the fsync stalls of
/// seconds a loaded machine shows; a passing run never waits it out.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Every sequenced data packet received, byte for byte as framed (length and type
    /// included): what a test compares across servers.
    pub sequenced: Vec<Vec<u8>>,
}

/// What the client got back: a SoupBinTCP packet, with OUCH decoded for sequenced data.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    LoginAccepted { session: String, sequence: u64 },
    LoginRejected(u8),
    Heartbeat,
    EndOfSession,
    Ouch(OwnedOutbound),
}

/// The fields tests look at, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedOutbound {
    Accepted { user_ref: u32, qty: u32, price: u64, order_ref: u64, cl_ord_id: String },
    Rejected { user_ref: u32, reason: u16 },
    Executed { user_ref: u32, qty: u32, price: u64, liquidity: u8, match_number: u64 },
    Canceled { user_ref: u32, qty: u32, reason: u8 },
    Replaced { orig_user_ref: u32, user_ref: u32, qty: u32, price: u64 },
    CancelReject { user_ref: u32 },
    MassCancelResponse { user_ref: u32 },
    SystemEvent { code: u8 },
    AccountQueryResponse { next_user_ref: u32 },
    Other(u8),
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr, READ_TIMEOUT).unwrap()
    }

    /// As [`Client::connect`], giving back the error (nothing listens, or nothing answers
    /// within `timeout`): for a test that tries one host after another.
    pub fn try_connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(Client { stream, buf: Vec::new(), sequenced: Vec::new() })
    }

    pub fn send_packet(&mut self, packet_type: u8, payload: &[u8]) {
        self.try_send_packet(packet_type, payload).unwrap();
    }

    pub fn login(&mut self, user: &str, password: &str, sequence: u64) -> Got {
        let mut payload = format!("{user:<6}{password:<10}{:<10}", "").into_bytes();
        payload.extend_from_slice(format!("{sequence:>20}").as_bytes());
        self.send_packet(b'L', &payload);
        self.recv().expect("login answer")
    }

    pub fn enter(&mut self, user_ref: u32, side: u8, qty: u32, symbol: &str, price: u64, tif: u8) {
        self.try_enter(user_ref, side, qty, symbol, price, tif).unwrap();
    }

    /// As [`Client::enter`], giving back the write error (the server may have closed).
    pub fn try_enter(
        &mut self,
        user_ref: u32,
        side: u8,
        qty: u32,
        symbol: &str,
        price: u64,
        tif: u8,
    ) -> std::io::Result<()> {
        let mut m = vec![b'O'];
        m.extend_from_slice(&user_ref.to_be_bytes());
        m.push(side);
        m.extend_from_slice(&qty.to_be_bytes());
        m.extend_from_slice(format!("{symbol:<8}").as_bytes());
        m.extend_from_slice(&price.to_be_bytes());
        m.extend_from_slice(&[tif, b'Y', b'A', b'N', b'N']);
        m.extend_from_slice(format!("{:<14}", format!("CL{user_ref}")).as_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        self.try_send_packet(b'U', &m)
    }

    /// As [`Client::cancel`], giving back the write error.
    pub fn try_cancel(&mut self, user_ref: u32, qty: u32) -> std::io::Result<()> {
        let mut m = vec![b'X'];
        m.extend_from_slice(&user_ref.to_be_bytes());
        m.extend_from_slice(&qty.to_be_bytes());
        self.try_send_packet(b'U', &m)
    }

    pub fn try_send_packet(&mut self, packet_type: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut bytes = ((payload.len() + 1) as u16).to_be_bytes().to_vec();
        bytes.push(packet_type);
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes)
    }

    pub fn cancel(&mut self, user_ref: u32, qty: u32) {
        self.try_cancel(user_ref, qty).unwrap();
    }

    pub fn replace(&mut self, orig: u32, user_ref: u32, qty: u32, price: u64) {
        let mut m = vec![b'U'];
        m.extend_from_slice(&orig.to_be_bytes());
        m.extend_from_slice(&user_ref.to_be_bytes());
        m.extend_from_slice(&qty.to_be_bytes());
        m.extend_from_slice(&price.to_be_bytes());
        m.extend_from_slice(b"0YN");
        m.extend_from_slice(format!("{:<14}", format!("CL{user_ref}")).as_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        self.send_packet(b'U', &m);
    }

    /// The next packet other than a server heartbeat, or None when the server closed.
    pub fn recv(&mut self) -> Option<Got> {
        loop {
            match self.recv_any()? {
                Got::Heartbeat => continue,
                other => return Some(other),
            }
        }
    }

    pub fn recv_any(&mut self) -> Option<Got> {
        loop {
            if let Some(got) = self.take_buffered() {
                return Some(got);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                // A signal (a child's exit, a tracer) interrupted the wait: read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read from the gateway: {e}"),
            }
        }
    }

    /// A packet already received whole, if any.
    fn take_buffered(&mut self) -> Option<Got> {
        match next_server_packet(&self.buf, FrameLimits::new(65_535)) {
            Ok(Some((packet, used))) => {
                if matches!(packet, ServerPacket::SequencedData(_)) {
                    self.sequenced.push(self.buf[..used].to_vec());
                }
                let got = convert(packet);
                self.buf.drain(..used);
                Some(got)
            }
            Ok(None) => None,
            Err(e) => panic!("server sent a malformed packet: {e}"),
        }
    }

    /// The next packet other than a server heartbeat that arrives within `wait`; `None` when
    /// none does (or the server closed). For asserting that the server says nothing.
    pub fn recv_within(&mut self, wait: Duration) -> Option<Got> {
        let deadline = std::time::Instant::now() + wait;
        let got = loop {
            match self.take_buffered() {
                Some(Got::Heartbeat) => continue,
                Some(got) => break Some(got),
                None => {}
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                // Nothing within the wait, or the server went (reset: a listener closed with
                // this connection still in its backlog).
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    break None
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read from the gateway: {e}"),
            }
        };
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        got
    }

    /// The next OUCH message.
    pub fn ouch(&mut self) -> OwnedOutbound {
        match self.recv() {
            Some(Got::Ouch(m)) => m,
            other => panic!("expected an OUCH message, got {other:?}"),
        }
    }

    /// True when the server closes the connection within the read timeout.
    pub fn closed_by_server(&mut self) -> bool {
        loop {
            match self.recv_any() {
                None => return true,
                Some(Got::Heartbeat) => continue,
                Some(_) => continue,
            }
        }
    }
}

fn convert(packet: ServerPacket<'_>) -> Got {
    match packet {
        ServerPacket::LoginAccepted(a) => {
            Got::LoginAccepted { session: a.session.trimmed().to_string(), sequence: a.sequence_number }
        }
        ServerPacket::LoginRejected(r) => Got::LoginRejected(r.code()),
        ServerPacket::ServerHeartbeat => Got::Heartbeat,
        ServerPacket::EndOfSession => Got::EndOfSession,
        ServerPacket::Debug(_) => Got::Ouch(OwnedOutbound::Other(b'+')),
        ServerPacket::SequencedData(data) => {
            Got::Ouch(match Outbound::decode(data).expect("valid OUCH from the gateway") {
                Outbound::OrderAccepted(a) => OwnedOutbound::Accepted {
                    user_ref: a.user_ref_num,
                    qty: a.quantity,
                    price: a.price.0,
                    order_ref: a.order_reference_number,
                    cl_ord_id: a.cl_ord_id.trimmed().to_string(),
                },
                Outbound::OrderRejected(r) => {
                    OwnedOutbound::Rejected { user_ref: r.user_ref_num, reason: r.reason.0 }
                }
                Outbound::OrderExecuted(x) => OwnedOutbound::Executed {
                    user_ref: x.user_ref_num,
                    qty: x.quantity,
                    price: x.price.0,
                    liquidity: x.liquidity_flag.0,
                    match_number: x.match_number,
                },
                Outbound::OrderCanceled(c) => OwnedOutbound::Canceled {
                    user_ref: c.user_ref_num,
                    qty: c.quantity,
                    reason: c.reason.code(),
                },
                Outbound::OrderReplaced(r) => OwnedOutbound::Replaced {
                    orig_user_ref: r.orig_user_ref_num,
                    user_ref: r.user_ref_num,
                    qty: r.quantity,
                    price: r.price.0,
                },
                Outbound::CancelReject { user_ref_num, .. } => {
                    OwnedOutbound::CancelReject { user_ref: user_ref_num }
                }
                Outbound::MassCancelResponse(m) => {
                    OwnedOutbound::MassCancelResponse { user_ref: m.user_ref_num }
                }
                Outbound::SystemEvent(e) => OwnedOutbound::SystemEvent { code: e.event_code.code() },
                Outbound::AccountQueryResponse(q) => {
                    OwnedOutbound::AccountQueryResponse { next_user_ref: q.next_user_ref_num }
                }
                other => OwnedOutbound::Other(format!("{other:?}").as_bytes()[0]),
            })
        }
    }
}
