//! The network boundary of the gateway.
//!
//! Everything above this trait (sessions, protocol, routing) sees only connection ids, byte
//! slices and "closed": a kernel-bypass backend (AF_XDP with a user-space TCP stack, or
//! Solarflare ef_vi/TCPDirect) implements `Transport` and slots in without touching the session
//! or matching code. Two kernel backends exist: io_uring (preferred) and epoll (fallback, and
//! chosen where io_uring is disabled or filtered).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Index of a connection in the gateway's fixed connection table.
pub type ConnId = u32;

#[derive(Debug)]
pub enum NetEvent<'a> {
    Accepted {
        conn: ConnId,
        peer: SocketAddr,
    },
    /// Bytes received; valid until the next call on the transport.
    Data {
        conn: ConnId,
        bytes: &'a [u8],
    },
    /// The peer closed, or the connection failed.
    Closed {
        conn: ConnId,
        error: Option<io::ErrorKind>,
    },
    /// A connection arrived while the table was full; it was closed at once.
    Refused {
        peer: SocketAddr,
    },
}

pub trait Transport: Send {
    /// A short name for logs and metrics (`io_uring`, `epoll`).
    fn name(&self) -> &'static str;
    /// Waits up to `timeout` (zero: do not wait) for network activity and queues what happened.
    fn poll(&mut self, timeout: Duration) -> io::Result<()>;
    /// The next queued event, if any.
    fn next_event(&mut self) -> Option<NetEvent<'_>>;
    /// Sends as much of `bytes` as the socket takes now; returns how much (0 when it would
    /// block). Never blocks.
    fn send(&mut self, conn: ConnId, bytes: &[u8]) -> io::Result<usize>;
    /// Closes a connection; no `Closed` event follows for it.
    fn close(&mut self, conn: ConnId);
    /// The address the listener is bound to.
    fn local_addr(&self) -> SocketAddr;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        (**self).poll(timeout)
    }
    fn next_event(&mut self) -> Option<NetEvent<'_>> {
        (**self).next_event()
    }
    fn send(&mut self, conn: ConnId, bytes: &[u8]) -> io::Result<usize> {
        (**self).send(conn, bytes)
    }
    fn close(&mut self, conn: ConnId) {
        (**self).close(conn)
    }
    fn local_addr(&self) -> SocketAddr {
        (**self).local_addr()
    }
}
