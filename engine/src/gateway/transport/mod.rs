//! The network boundary of the gateway.
//!
//! Everything above this trait (sessions, protocol, routing) sees only connection ids, byte
//! slices and "closed": a kernel-bypass backend (AF_XDP with a user-space TCP stack, or
//! Solarflare ef_vi/TCPDirect) implements `Transport` and slots in without touching the session
//! or matching code. Two kernel backends exist: io_uring (preferred) and epoll (fallback, and
//! chosen where io_uring is disabled or filtered).

pub mod epoll;
pub mod uring;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
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
    /// Makes [`Transport::poll`] return as soon as `fd`, an eventfd that other threads write to
    /// wake the gateway (its doorbell), becomes readable; the transport reads it to re-arm it.
    /// Called once, before the first poll.
    fn set_wake_fd(&mut self, fd: OwnedFd) -> io::Result<()>;
    /// Waits up to `timeout` (zero: do not wait) for network activity or the wake fd, and
    /// queues what happened. Also hands the kernel what `send` has taken since the last poll.
    fn poll(&mut self, timeout: Duration) -> io::Result<()>;
    /// The next queued event, if any.
    fn next_event(&mut self) -> Option<NetEvent<'_>>;
    /// Takes as much of `bytes` as it can now without blocking and returns how much (0 when
    /// nothing fits). Taken bytes are delivered in order: written to the socket at once
    /// (epoll), or copied into the connection's send buffer and submitted at the next `poll`
    /// (io_uring). Never blocks.
    fn send(&mut self, conn: ConnId, bytes: &[u8]) -> io::Result<usize>;
    /// Closes a connection; no `Closed` event follows for it. Bytes `send` already took are
    /// still delivered before the socket is shut down (unless the peer is gone).
    fn close(&mut self, conn: ConnId);
    /// Ends a connection at once: what is queued for it, here and in the kernel, is discarded
    /// and the peer gets a reset. For a peer that stopped reading, whose megabytes of queued
    /// answers would otherwise hold memory while they trickle out through its closed window.
    /// No `Closed` event follows.
    fn abort(&mut self, conn: ConnId);
    /// Waits up to `timeout` until every byte `send` took has reached the kernel (closed
    /// connections included); `true` when nothing is left. The gateway calls it at shutdown so
    /// that End of Session reaches every client.
    fn drain_sends(&mut self, timeout: Duration) -> io::Result<bool>;
    /// The address the listener is bound to.
    fn local_addr(&self) -> SocketAddr;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn set_wake_fd(&mut self, fd: OwnedFd) -> io::Result<()> {
        (**self).set_wake_fd(fd)
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
    fn abort(&mut self, conn: ConnId) {
        (**self).abort(conn)
    }
    fn drain_sends(&mut self, timeout: Duration) -> io::Result<bool> {
        (**self).drain_sends(timeout)
    }
    fn local_addr(&self) -> SocketAddr {
        (**self).local_addr()
    }
}

/// Makes the socket's close discard what is unsent and reset the connection (`SO_LINGER` with
/// a zero timeout), instead of sending it out after the close.
pub(crate) fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // Only fails on a socket that is already gone, which is what the caller wants anyway.
    let _ = nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::Linger, &linger);
}
