//! One SoupBinTCP session's sending side: connect and log in, then the packets the client
//! writes (OUCH orders, heartbeats, the logout). Its answers are read by the receiver.

use super::options::Login;
use super::receiver::RX_BUFFER_BYTES;
use super::PACKET_BYTES_MAX;
use crate::load::flow::Order;
use crate::load::LoadError;
use petrel_proto::ouch::{self, Inbound};
use petrel_proto::soupbin::{
    self, next_server_packet, packet_type, FrameLimits, LoginRequest, ServerPacket, SessionName,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in session: its socket and who it is logged in as.
pub(super) struct Session {
    stream: TcpStream,
    user: String,
}

impl Session {
    /// Connects, logs in asking for new messages only, and returns the session with any bytes
    /// that arrived after the Login Accepted.
    pub(super) fn connect(addr: SocketAddr, login: &Login) -> Result<(Session, Vec<u8>), LoadError> {
        let protocol = |message: String| LoadError::Protocol { user: login.user.clone(), message };
        let username = soupbin::Username::new("username", &login.user)
            .map_err(|e| protocol(format!("user name {:?}: {e}", login.user)))?;
        let password = soupbin::Password::new("password", &login.password)
            .map_err(|e| protocol(format!("password: {e}")))?;
        let mut stream = TcpStream::connect_timeout(&addr, LOGIN_TIMEOUT)
            .map_err(|source| LoadError::Connect { addr, source })?;
        // Each order goes out in its own segment at once, as a trading client's would.
        stream.set_nodelay(true).map_err(|e| io_error(&login.user, e))?;
        stream.set_read_timeout(Some(LOGIN_TIMEOUT)).map_err(|e| io_error(&login.user, e))?;
        let request = LoginRequest {
            username,
            password,
            requested_session: SessionName::BLANK,
            requested_sequence_number: 0,
        };
        let mut buf = [0u8; 64];
        let n = request.encode(&mut buf).expect("a login request fits 64 bytes");
        stream.write_all(&buf[..n]).map_err(|e| io_error(&login.user, e))?;
        let rest = await_login_accepted(&mut stream, addr, &login.user)?;
        stream.set_read_timeout(None).map_err(|e| io_error(&login.user, e))?;
        Ok((Session { stream, user: login.user.clone() }, rest))
    }

    pub(super) fn user(&self) -> &str {
        &self.user
    }

    /// A second handle on the socket, for the receiver.
    pub(super) fn reader(&self) -> Result<TcpStream, LoadError> {
        self.stream.try_clone().map_err(|source| io_error(&self.user, source))
    }

    /// Writes packets already encoded (orders from [`encode_order`]).
    pub(super) fn write(&self, bytes: &[u8]) -> Result<(), LoadError> {
        (&self.stream).write_all(bytes).map_err(|source| io_error(&self.user, source))
    }

    /// Keeps an idle session alive. A broken session is reported by its receiver, not here.
    pub(super) fn heartbeat(&self) {
        let mut hb = [0u8; 4];
        let n = soupbin::encode_packet(&mut hb, packet_type::CLIENT_HEARTBEAT, &[]).expect("fits");
        let _ = (&self.stream).write_all(&hb[..n]);
    }

    /// Asks the server to end the session; its End of Session tells the receiver to stop.
    pub(super) fn log_out(&self) {
        let mut logout = [0u8; 8];
        let n = soupbin::encode_packet(&mut logout, packet_type::LOGOUT_REQUEST, &[]).expect("logout fits");
        // The session may already be gone after a failure; its receiver reports why.
        let _ = (&self.stream).write_all(&logout[..n]);
    }

    pub(super) fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

pub(super) fn io_error(user: &str, source: std::io::Error) -> LoadError {
    LoadError::Io { user: user.into(), source }
}

/// Reads until the Login Accepted and returns the bytes after it; fails on a Login Rejected,
/// a malformed packet, a closed connection, or no answer within the login timeout.
fn await_login_accepted(stream: &mut TcpStream, addr: SocketAddr, user: &str) -> Result<Vec<u8>, LoadError> {
    let protocol = |message: String| LoadError::Protocol { user: user.into(), message };
    let mut rx = Vec::with_capacity(1024);
    let deadline = Instant::now() + LOGIN_TIMEOUT;
    loop {
        match next_server_packet(&rx, FrameLimits::new(PACKET_BYTES_MAX)) {
            Ok(Some((packet, used))) => match packet {
                ServerPacket::LoginAccepted(_) => return Ok(rx[used..].to_vec()),
                ServerPacket::LoginRejected(reason) => {
                    return Err(LoadError::LoginRejected {
                        user: user.into(),
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
        // Bounded by the receiver's buffer, which takes the bytes after the Login Accepted.
        if Instant::now() > deadline || rx.len() > RX_BUFFER_BYTES {
            return Err(protocol(format!("no Login Accepted within {} s", LOGIN_TIMEOUT.as_secs())));
        }
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk) {
            Ok(0) => return Err(LoadError::Closed { user: user.into() }),
            Ok(n) => rx.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(protocol(format!("no Login Accepted within {} s", LOGIN_TIMEOUT.as_secs())))
            }
            Err(e) => return Err(io_error(user, e)),
        }
    }
}

/// Writes the SoupBinTCP Unsequenced Data packet carrying `order`; returns its length.
pub(super) fn encode_order(buf: &mut [u8], order: &Order, symbol: &str) -> usize {
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
